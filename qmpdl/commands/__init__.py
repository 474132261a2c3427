"""QMP command handlers, one module per area, registered by name in
:mod:`qmpdl.commands.registry`.  Argument validation and return-value shaping come from
the schema (:mod:`qmpdl.qapi`); a handler gets a typed arguments model and returns a
model (or list, or plain value)."""
