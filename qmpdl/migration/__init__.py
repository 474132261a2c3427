"""Live migration between qmpdl processes: capabilities and parameters (params), the
migration engine (state machine, RAM stream, throttling triggers), as QEMU does them."""
