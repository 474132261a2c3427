"""The in-process machines some monitor tests read guest memory from."""

from __future__ import annotations

from tests.machine.conftest import make_machine  # noqa: F401  (fixture)
