"""The differential suite: exchange scripts played on qmpdl and on real QEMU 7.2.

``corpus/`` holds the scripts (one file per group, each playable with ``qmpdl-diff``),
``golden-qemu-7.2.json`` QEMU's normalised transcripts (``python -m
tests.differential.record``), ``intended.py`` the differences qmpdl keeps on purpose.
"""
