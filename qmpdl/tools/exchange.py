"""Exchange scripts: exact bytes to a QMP endpoint, exact lines back.

A script is JSON::

    {"name": "split-object",
     "target": "ring",                      # a machine of qmpdl.tools.targets
     "steps": [
       {"send": "{\\"execute\\": \\"qmp_capabilities\\"}"},
       {"send": ["{\\"exec", "ute\\": \\"query-status\\"}"]},  # two writes
       {"send_hex": "ff", "replies": 1},
       {"poll": "{\\"execute\\": \\"query-dirty-rate\\"}", "until": "measured"},
       {"sleep": 1.5},
       {"send": "{\\"execute\\": \\"quit\\"}", "replies": 2, "eof": true}
     ]}

Each step sends (``send``: text sent as UTF-8, a list for several separate writes;
``send_hex``: raw bytes) and then reads ``replies`` lines (default 1; events count as
lines).  ``poll`` repeats a request until its reply matches the regular expression
``until`` and records only that reply.  ``eof`` expects the connection to close after
the replies.  After the last step the runner waits for stray output (``drain`` seconds,
default 0.3), so an extra reply is caught too.  The greeting is the first line recorded.

The runner talks to any unix or TCP QMP endpoint; what it records is a
:class:`Transcript`: per step, the exact lines received (``\\r\\n`` included).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from qmpdl.tools.rawqmp import RawQMP

#: Pause between the writes of a split ``send``, so the server reads them separately.
SPLIT_PAUSE = 0.02
EOF_MARK = "<EOF>"


class Step(BaseModel):
    """One action of a script."""

    model_config = ConfigDict(extra="forbid")

    send: str | list[str] | None = None
    send_hex: str | list[str] | None = None
    poll: str | None = None
    until: str | None = None
    sleep: float | None = None
    replies: int = Field(default=1, ge=0)
    eof: bool = False
    timeout: float = 60.0

    def chunks(self) -> list[bytes]:
        if self.send is not None:
            parts = [self.send] if isinstance(self.send, str) else self.send
            return [p.encode("utf-8") for p in parts]
        if self.send_hex is not None:
            parts = [self.send_hex] if isinstance(self.send_hex, str) else self.send_hex
            return [bytes.fromhex(p) for p in parts]
        return []

    def describe(self) -> str:
        if self.poll is not None:
            return f"poll {self.poll} until /{self.until}/"
        if self.sleep is not None:
            return f"sleep {self.sleep}"
        return " | ".join(c.decode("latin-1") for c in self.chunks())


class Script(BaseModel):
    """A named exchange against one machine configuration."""

    model_config = ConfigDict(extra="forbid")

    name: str
    target: str = "ring"
    #: the cases that change the machine need a process of their own
    fresh: bool = False
    steps: list[Step]
    drain: float = 0.3
    #: what the case covers (for reports)
    group: str = "misc"


class Record(BaseModel):
    sent: str
    received: list[str]


class Transcript(BaseModel):
    """What an endpoint answered to a script."""

    greeting: str
    steps: list[Record]
    trailing: list[str] = []

    def lines(self) -> list[str]:
        out = [f"greeting: {self.greeting}"]
        for i, record in enumerate(self.steps):
            out.append(f"step {i}: >>> {record.sent}")
            out.extend(f"step {i}: <<< {line}" for line in record.received)
        out.extend(f"after: <<< {line}" for line in self.trailing)
        return out


def _line(conn: RawQMP, timeout: float) -> str:
    return conn.read_line(timeout).decode("latin-1")


def run_script(address: str | tuple[str, int], script: Script) -> Transcript:
    """Play ``script`` against the QMP endpoint at ``address``."""
    with RawQMP(address, timeout=30) as conn:
        greeting = _line(conn, 30)
        records: list[Record] = []
        for step in script.steps:
            received: list[str] = []
            if step.sleep is not None:
                time.sleep(step.sleep)
            elif step.poll is not None:
                pattern = re.compile(step.until or ".")
                deadline = time.monotonic() + step.timeout
                while True:
                    conn.send(step.poll.encode("utf-8"))
                    line = _line(conn, step.timeout)
                    if pattern.search(line) or time.monotonic() > deadline:
                        received.append(line)
                        break
                    time.sleep(0.02)
            else:
                chunks = step.chunks()
                for i, chunk in enumerate(chunks):
                    if i:
                        time.sleep(SPLIT_PAUSE)
                    conn.send(chunk)
                try:
                    for _ in range(step.replies):
                        received.append(_line(conn, step.timeout))
                    if step.eof:
                        received.extend(line.decode("latin-1") for line in conn.read_available(5))
                        received.append(EOF_MARK)
                except EOFError:
                    received.append(EOF_MARK)
                except TimeoutError:
                    received.append("<TIMEOUT>")
            records.append(Record(sent=step.describe(), received=received))
            if received and received[-1] == EOF_MARK:
                break
        trailing = []
        if not (records and records[-1].received and records[-1].received[-1] == EOF_MARK):
            trailing = [line.decode("latin-1") for line in conn.read_available(script.drain)]
    return Transcript(greeting=greeting, steps=records, trailing=trailing)


def load_scripts(path: Path) -> list[Script]:
    """A script file holds one script object or a list of them."""
    data = json.loads(path.read_text())
    items = data if isinstance(data, list) else [data]
    return [Script.model_validate(item) for item in items]


Kind = Literal["qemu", "qmpdl"]
