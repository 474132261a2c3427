"""An in-process machine with its command executor (no sockets).

``make_machine(*argv, clock=VirtualClock())`` runs the machine on a virtual clock: a
measurement's sleep ends at once, exactly at its deadline, and the simulated vCPUs
dirty memory for exactly that long, so the figures do not depend on how promptly a
busy host wakes the measuring thread.  (Only for tests in which one thread sleeps at a
time: the throttle thread would run its periods back to back.)"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from qmpdl.cli import parse_args
from qmpdl.clock import Clock
from qmpdl.commands.executor import CommandExecutor
from qmpdl.errors import QMPError
from qmpdl.jsontypes import JsonObject, JsonValue
from qmpdl.qapi import QapiSchema
from qmpdl.system import build_machine
from qmpdl.system.machine import Machine


class Harness:
    def __init__(self, argv: list[str], clock: Clock | None = None) -> None:
        self.machine: Machine = build_machine(parse_args(argv), clock)
        self.machine.start()
        self.executor = CommandExecutor(self.machine, QapiSchema.load(self.machine.profile))

    def qmp(self, command: str, arguments: JsonObject | None = None) -> Any:
        """The command's ``return`` value (JSON; ``Any`` so tests can index it freely)."""
        result: JsonValue = self.executor.call_sync(command, arguments or {})
        return result

    def error(self, command: str, arguments: JsonObject | None = None) -> str:
        with pytest.raises(QMPError) as info:
            self.qmp(command, arguments)
        return info.value.desc

    def close(self) -> None:
        self.machine.teardown()


MakeHarness = Callable[..., Harness]


@pytest.fixture
def make_machine() -> Iterator[MakeHarness]:
    made: list[Harness] = []

    def make(*argv: str, clock: Clock | None = None) -> Harness:
        h = Harness(list(argv), clock)
        made.append(h)
        return h

    yield make
    for h in made:
        h.close()
