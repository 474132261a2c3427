"""Third-party test harness code, vendored unchanged (see each package's README)."""
