"""What QEMU answers about itself, recorded from the real binaries.

The harness queries (types and their properties, machine types, CPU models, vCPU
objects, command-line options, ...) are answered from data recorded per QEMU version
by :mod:`qmpdl.tools.record_probe` (``qmpdl/data/qemu-VERSION/*.json.gz``).  Nothing
here is read before a command needs it: start-up pays nothing for it.
"""
