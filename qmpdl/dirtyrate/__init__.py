"""Measuring dirty page rates: per vCPU from the dirty ring (shared with the throttle),
and ``calc-dirty-rate`` / ``query-dirty-rate`` in all three modes."""
