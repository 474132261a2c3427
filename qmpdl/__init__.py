"""qmpdl: a QMP server that answers exactly as QEMU does for the vCPU dirty page rate limit.

The package is layered like QEMU itself:

* :mod:`qmpdl.qjson` - QEMU's JSON dialect: streaming lexer/parser (bytes in, values out)
  and the encoder that writes replies byte-identical to QEMU's.
* :mod:`qmpdl.qapi` - the QAPI schema in ``schema/``: argument validation with QEMU's
  texts, output ordering, ``query-qmp-schema``.
* :mod:`qmpdl.qmp` - the QMP protocol core (no I/O) and the in-band dispatcher.
* :mod:`qmpdl.server` - asyncio at the edge: sockets, chardevs, signals.
* :mod:`qmpdl.vm`, :mod:`qmpdl.dirtylimit`, :mod:`qmpdl.dirtyrate`, :mod:`qmpdl.backend` -
  the machine: run state, vCPUs, the throttle, dirty-rate measurement.
* :mod:`qmpdl.hmp` - the human monitor behind ``human-monitor-command``.
"""

__version__ = "0.1.0"
