"""libvirt's QMP monitor log, condensed (``../shared/anchors/libvirt-9.0/*.qmp.txt``).

Per monitor (``--- ... NEW monitor``) the commands in order (``L<line> <time> SEND
<command> [<arguments>]``), each followed by the events QEMU sent meanwhile
(``EVENT <json>``) and its reply (``-> ok <return value>`` or ``-> ERROR <error
object>``), all as QEMU printed them; ``=== virsh ...`` lines name the virsh command
behind what follows.  Some logs cut lines at 600 characters (a reply that does not
parse is such a prefix).  ``*.sent.jsonl`` files hold the requests exactly as sent.
The replay tests and the recorder (:mod:`qmpdl.tools.record_probe`) read them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

_SEND = re.compile(r"^L\d+ (\d\d):(\d\d):(\d\d\.\d+) SEND (\S+)(?: (.*))?$")


@dataclass
class Exchange:
    """One command: the request, the events before its reply, the reply."""

    command: str
    arguments: dict[str, object] | None
    time: float
    #: the request line as libvirt sent it (None where not recorded)
    sent: str | None = None
    events: list[str] = field(default_factory=list)
    #: "ok" or "ERROR"
    outcome: str = ""
    #: the return value or error object as QEMU printed it
    value: str = ""
    #: whether the log cut the reply's line
    truncated: bool = False
    #: the ``=== virsh ...`` step it belongs to
    step: str = ""


@dataclass
class Session:
    """The exchanges on one monitor connection, and events after the last reply."""

    exchanges: list[Exchange] = field(default_factory=list)
    trailing_events: list[str] = field(default_factory=list)


def _complete(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def parse(path: Path) -> list[Session]:
    """The sessions of one ``*.qmp.txt`` (a log without monitor markers is one)."""
    sessions: list[Session] = []
    current: Session | None = None
    last: Exchange | None = None
    pending: list[str] = []
    step = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line.startswith("--- ") and "NEW monitor" in line:
            current = Session()
            sessions.append(current)
            last, pending = None, []
            continue
        if line.startswith("=== "):
            step = line[4:]
            continue
        if not line or line.startswith("#"):
            continue
        if current is None:
            current = Session()
            sessions.append(current)
        match = _SEND.match(line)
        if match:
            hours, minutes, seconds = match.group(1, 2, 3)
            arguments = json.loads(match.group(5)) if match.group(5) else None
            last = Exchange(
                match.group(4),
                arguments,
                int(hours) * 3600 + int(minutes) * 60 + float(seconds),
                events=pending,
                step=step,
            )
            pending = []
            current.exchanges.append(last)
        elif line.startswith("EVENT "):
            if last is not None and not last.outcome:
                last.events.append(line[6:])
            else:
                pending.append(line[6:])
        elif line.startswith("-> "):
            assert last is not None, line
            outcome, _, value = line[3:].partition(" ")
            last.outcome, last.value = outcome, value
            last.truncated = not _complete(value)
        else:
            raise ValueError(f"{path.name}: unexpected line {line[:80]!r}")
    if current is not None:
        current.trailing_events = pending
    return sessions


def with_sent(sessions: list[Session], sent: Path) -> list[Session]:
    """Attach the exact requests of ``*.sent.jsonl`` (one per command, in order)."""
    lines = [line for line in sent.read_text().splitlines() if line.strip()]
    exchanges = [e for s in sessions for e in s.exchanges]
    assert len(lines) == len(exchanges), (sent.name, len(lines), len(exchanges))
    for exchange, line in zip(exchanges, lines, strict=True):
        request = json.loads(line)
        assert request["execute"] == exchange.command, (line, exchange.command)
        assert request.get("arguments") == exchange.arguments, line
        exchange.sent = line
    return sessions
