"""QEMU's QEMUMachine (``python/qemu/machine/`` of QEMU's tree), vendored for the tests.

``machine.py`` and ``console_socket.py`` are QEMU's files, licence headers included
(GPL-2.0; console_socket.py GPL-2.0-or-later), as QEMU 8.2 has them: the monitor is
passed as an inherited socket (``-chardev socket,id=mon,fd=N``) and the QMP connection
uses the ``qemu.qmp`` package's API - 8.0's file with QEMU's later patches for that API
applied ("python/qmp/legacy: remove open_with_socket() calls", the ``connect()`` in
``_post_launch``, ``cmd()`` renamed ``cmd_raw()`` and ``command()`` renamed ``cmd()``).  This
``__init__.py`` is qmpdl's: QEMU's also exports the qtest machine, not vendored here.
"""

from .machine import AbnormalShutdown, QEMUMachine, QEMUMachineError, VMLaunchFailure

__all__ = ["AbnormalShutdown", "QEMUMachine", "QEMUMachineError", "VMLaunchFailure"]
