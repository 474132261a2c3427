"""Live migration between qmpdl processes, as QEMU does it.

* what can be set: :mod:`.parameters` (one row per parameter), :mod:`.capabilities`
  (one row per capability), :mod:`.params` (``MigrationConfig``: the state and
  QEMU's rules over those tables);
* the engine: :mod:`.manager` (the commands' entry points), :mod:`.state` (the status
  state machine), :mod:`.source` / :mod:`.incoming` (the two threads, which see the
  manager through the protocols of :mod:`.host`), :mod:`.throttle` (auto-converge and
  the dirty-limit trigger), :mod:`.uri` (addresses and channels), :mod:`.stream` (the
  wire format).
"""
