"""The QEMU command-line options qmpdl reads, one module per kind of option.

Each module turns option text into configuration and refuses what QEMU 7.2 refuses,
with its text: :mod:`.chardev` (``-chardev`` and the legacy ``-qmp``/``-monitor``/
``-serial`` forms), :mod:`.objects` (``-object``, ``-audiodev``, ``-netdev``,
``-blockdev``, ``-device``, ``-drive``), :mod:`.machine` (``-machine``, ``-cpu``,
``-m``) and :mod:`.misc` (the options with nothing to configure beyond a check).
:mod:`qmpdl.cli` drives them in command-line order.  Nothing here does I/O.
"""
