"""Tests of the human monitor (qmpdl.hmp)."""
