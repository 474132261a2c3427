"""The emulated machine: run state, events, dirty logging, and what ties them together."""
