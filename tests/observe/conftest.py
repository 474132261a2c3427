"""Shared pieces of the observation tests: qmpdl with two monitors and ``--metrics``,
a small JSON QMP client, scraping."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from qmpdl.observe.scrape import Scrape, scrape
from qmpdl.tools.launch import QmpdlProcess
from qmpdl.tools.rawqmp import RawQMP


class QmpError(Exception):
    pass


class Qmp:
    """A negotiated monitor connection returning each command's ``return`` value."""

    def __init__(self, path: str, timeout: float = 30.0) -> None:
        self.raw = RawQMP(path, timeout=timeout)
        self.raw.negotiate()
        #: requests sent, by command (the metrics must count exactly these)
        self.sent: dict[str, int] = {"qmp_capabilities": 1}

    def __call__(self, command: str, **arguments: Any) -> Any:
        request: dict[str, Any] = {"execute": command}
        if arguments:
            request["arguments"] = arguments
        self.sent[command] = self.sent.get(command, 0) + 1
        reply = json.loads(self.raw.command(json.dumps(request).encode()))
        if "error" in reply:
            raise QmpError(reply["error"]["desc"])
        return reply["return"]

    def close(self) -> None:
        self.raw.close()


_URL = re.compile(r"metrics on (http://\S+)")


class Observed(QmpdlProcess):
    """qmpdl with monitors ``a.sock`` and ``b.sock`` and ``--metrics 127.0.0.1:0``."""

    def __init__(self, args: list[str], *, metrics: bool = True) -> None:
        extra = ["--metrics", "127.0.0.1:0"] if metrics else []
        super().__init__(["-qmp", "unix:b.sock,server=on,wait=off", *extra, *args])
        self.a = str(self.dir / "qmp.sock")
        self.b = str(self.dir / "b.sock")
        self.wait_for_path(self.b)
        self.url = self._metrics_url() if metrics else ""

    def _metrics_url(self, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            m = _URL.search(self.stderr())
            if m:
                return m[1]
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"no metrics URL: {self.stderr()}")
            time.sleep(0.02)

    def scrape(self) -> Scrape:
        return scrape(self.url)


@pytest.fixture
def observed() -> Iterator[list[Observed]]:
    """Observed processes made by a test, all stopped after it."""
    made: list[Observed] = []
    yield made
    for proc in made:
        proc.close()


def rates(limits: list[dict[str, int]]) -> dict[int, tuple[int, int]]:
    """query-vcpu-dirty-limit -> {cpu-index: (current-rate, limit-rate)}."""
    return {e["cpu-index"]: (e["current-rate"], e["limit-rate"]) for e in limits}
