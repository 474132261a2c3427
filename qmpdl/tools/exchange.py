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
lines), or with ``through_reply`` every line up to and including the first that is not
an event (the command's reply, however many events come before it: their number may
depend on the QEMU version); ``wait`` then reads on until a line matches that regular
expression (an event that comes later).  ``poll`` repeats a request until its reply
matches the regular expression ``until`` and records only that reply (``quiet``: only
that it matched); events that arrive meanwhile are dropped.  ``eof`` expects the
connection to close after the replies.  ``monitor: "dst"`` sends a step to the target's
migration destination instead (its greeting is recorded second), and ``@NAME@`` in a
request is the target's value for this server (``@DIR@``: its scratch directory).  After
the last step the runner waits for stray output (``drain`` seconds, default 0.3), so an
extra reply is caught too.  The greeting is the first line recorded.

The runner talks to any unix or TCP QMP endpoint; what it records is a
:class:`Transcript`: per step, the exact lines received (``\\r\\n`` included).
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from qmpdl.tools.rawqmp import RawQMP

#: Pause between the writes of a split ``send``, so the server reads them separately.
SPLIT_PAUSE = 0.02
EOF_MARK = "<EOF>"
#: What a ``quiet`` poll records.
MATCHED_MARK = "<matched>"


class Step(BaseModel):
    """One action of a script."""

    model_config = ConfigDict(extra="forbid")

    send: str | list[str] | None = None
    send_hex: str | list[str] | None = None
    poll: str | None = None
    until: str | None = None
    sleep: float | None = None
    replies: int = Field(default=1, ge=0)
    through_reply: bool = False
    #: after the replies, read on until a line matches this regular expression
    wait: str | None = None
    #: a ``poll`` records only that its reply matched, not the reply
    quiet: bool = False
    eof: bool = False
    timeout: float = 60.0
    #: the monitor: the target's own ("src") or its migration destination's ("dst")
    monitor: Literal["src", "dst"] = "src"

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
        text = " | ".join(c.decode("latin-1") for c in self.chunks())
        return text if self.wait is None else f"{text} (then until /{self.wait}/)"


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
    #: the first QEMU version with the behaviour the script exercises (None: any); the
    #: differential suite plays it only on oracles at least that new
    since: str | None = None

    def applies_to(self, version: str) -> bool:
        """True when the script is meant for QEMU ``version`` (``"MAJOR.MINOR"``)."""
        if self.since is None:
            return True
        return _release(version) >= _release(self.since)


class Record(BaseModel):
    sent: str
    received: list[str]
    monitor: Literal["src", "dst"] = "src"


class Transcript(BaseModel):
    """What an endpoint answered to a script."""

    greeting: str
    steps: list[Record]
    trailing: list[str] = []
    #: the destination monitor's greeting, when the script talked to it
    peer_greeting: str | None = None

    def lines(self) -> list[str]:
        out = [f"greeting: {self.greeting}"]
        if self.peer_greeting is not None:
            out.append(f"dst greeting: {self.peer_greeting}")
        for i, record in enumerate(self.steps):
            step = f"step {i}" if record.monitor == "src" else f"step {i} dst"
            out.append(f"{step}: >>> {record.sent}")
            out.extend(f"{step}: <<< {line}" for line in record.received)
        out.extend(f"after: <<< {line}" for line in self.trailing)
        return out


def _release(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def _is_event(line: str) -> bool:
    return line.startswith('{"timestamp": ') and '"event": ' in line


def _line(conn: RawQMP, timeout: float) -> str:
    return conn.read_line(timeout).decode("latin-1")


def substitute(text: str, variables: Mapping[str, str]) -> str:
    """``text`` with every ``@NAME@`` replaced by ``variables[NAME]``."""
    for name, value in variables.items():
        text = text.replace(f"@{name}@", value)
    return text


def _poll(conn: RawQMP, step: Step, variables: Mapping[str, str]) -> list[str]:
    assert step.poll is not None
    pattern = re.compile(step.until or ".")
    request = substitute(step.poll, variables).encode("utf-8")
    deadline = time.monotonic() + step.timeout
    while True:
        conn.send(request)
        line = _line(conn, step.timeout)
        while _is_event(line):  # events that come meanwhile are not the reply
            line = _line(conn, step.timeout)
        if pattern.search(line):
            return [MATCHED_MARK if step.quiet else line]
        if time.monotonic() > deadline:
            return [line]
        time.sleep(0.02)


def _exchange(conn: RawQMP, step: Step, variables: Mapping[str, str]) -> list[str]:
    received: list[str] = []
    try:
        for i, chunk in enumerate(step.chunks()):
            if i:
                time.sleep(SPLIT_PAUSE)
            conn.send(substitute(chunk.decode("latin-1"), variables).encode("latin-1"))
    except OSError:  # the server is gone (a destination exits when its migration fails)
        return [EOF_MARK]
    try:
        if step.through_reply:
            while not received or _is_event(received[-1]):
                received.append(_line(conn, step.timeout))
        for _ in range(0 if step.through_reply else step.replies):
            received.append(_line(conn, step.timeout))
        if step.wait is not None:
            pattern = re.compile(step.wait)
            while not (received and pattern.search(received[-1])):
                received.append(_line(conn, step.timeout))
        if step.eof:
            received.extend(line.decode("latin-1") for line in conn.read_available(5))
            received.append(EOF_MARK)
    except EOFError:
        received.append(EOF_MARK)
    except TimeoutError:
        received.append("<TIMEOUT>")
    return received


def run_script(
    address: str | tuple[str, int],
    script: Script,
    *,
    peer: str | tuple[str, int] | None = None,
    variables: Mapping[str, str] | None = None,
) -> Transcript:
    """Play ``script`` against the QMP endpoint at ``address`` (and the steps for the
    destination against ``peer``); ``@NAME@`` in requests becomes ``variables[NAME]``."""
    values = variables or {}
    uses_peer = any(step.monitor == "dst" for step in script.steps)
    if uses_peer and peer is None:
        raise ValueError(f"{script.name}: its target has no destination monitor")
    with contextlib.ExitStack() as stack:
        conn = stack.enter_context(RawQMP(address, timeout=30))
        greeting = _line(conn, 30)
        conns = {"src": conn}
        peer_greeting = None
        if uses_peer:
            assert peer is not None
            conns["dst"] = stack.enter_context(RawQMP(peer, timeout=30))
            peer_greeting = _line(conns["dst"], 30)
        records: list[Record] = []
        for step in script.steps:
            on = conns[step.monitor]
            if step.sleep is not None:
                time.sleep(step.sleep)
                received: list[str] = []
            elif step.poll is not None:
                received = _poll(on, step, values)
            else:
                received = _exchange(on, step, values)
            records.append(Record(sent=step.describe(), received=received, monitor=step.monitor))
            if received and received[-1] == EOF_MARK:
                break
        trailing = []
        if not (records and records[-1].received and records[-1].received[-1] == EOF_MARK):
            trailing = [line.decode("latin-1") for line in conn.read_available(script.drain)]
            if uses_peer:
                trailing += [
                    f"dst: {line.decode('latin-1')}" for line in conns["dst"].read_available(0.1)
                ]
    return Transcript(
        greeting=greeting, steps=records, trailing=trailing, peer_greeting=peer_greeting
    )


def load_scripts(path: Path) -> list[Script]:
    """A script file holds one script object or a list of them."""
    data = json.loads(path.read_text())
    items = data if isinstance(data, list) else [data]
    return [Script.model_validate(item) for item in items]


Kind = Literal["qemu", "qmpdl"]
