"""Where qmpdl's answer to a recorded libvirt exchange may differ from QEMU's, and why.

Each entry names a command and says how its answer is compared instead of byte for
byte; the comparison still has to pass.  Everything not listed here must be
identical after :func:`qmpdl.tools.normalize.normalize_line` (replies the recording
cut at 600 characters: the recorded prefix).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

from qmpdl.jsontypes import JsonObject, JsonValue
from tests.differential.test_schema import Reply, WireComparison
from tests.qapi.record_goldens import reachable
from tests.replay.replay import Played


@dataclass(frozen=True)
class Intended:
    reason: str
    #: problems found comparing qmpdl's answer with QEMU's (empty: as intended)
    check: Callable[[Played], list[str]]


def _schema(played: Played) -> list[str]:
    ours: list[JsonObject] = json.loads(played.value)
    theirs: list[JsonObject] = json.loads(played.exchange.value)
    roots = Reply(ours, []).roots()
    mine: list[JsonValue] = list(ours)
    problems = WireComparison(mine, list(theirs)).run(roots)
    if len(ours) != len(reachable(theirs, roots)):
        problems.append(f"{len(ours)} entries, QEMU reaches {len(reachable(theirs, roots))}")
    return problems


def _commands(played: Played) -> list[str]:
    ours = [c["name"] for c in json.loads(played.value)]
    theirs = [c["name"] for c in json.loads(played.exchange.value)]
    wanted = set(ours)
    restricted = [name for name in theirs if name in wanted]
    return [] if ours == restricted else [f"{ours} is not QEMU's list restricted: {restricted}"]


_VALUE = re.compile(r'"value": (?:-?\d+|true|false|\[[\d, ]*\])')


def _masked(text: str) -> str:
    return _VALUE.sub('"value": V', text)


def _stats(played: Played) -> list[str]:
    ours, theirs = _masked(played.value), _masked(played.exchange.value)
    same = ours.startswith(theirs) if played.exchange.truncated else ours == theirs
    return [] if same else [f"{ours[:300]} vs {theirs[:300]}"]


def _chardev(played: Played) -> list[str]:
    if played.outcome == "ERROR":
        expected = {
            "class": "CommandNotFound",
            "desc": "The command query-chardev has not been found",
        }
        return [] if json.loads(played.value) == expected else [played.value]
    chardevs = json.loads(played.value)
    return [] if all(c["filename"].startswith("unix:") for c in chardevs) else [played.value]


INTENDED: dict[str, Intended] = {
    "query-qmp-schema": Intended(
        "qmpdl describes only what it serves: the entries reachable from its commands "
        "and events must be QEMU's (type numbers mapped by structure, keys in wire "
        "order), as in tests/differential/test_schema.py",
        _schema,
    ),
    "query-commands": Intended(
        "qmpdl lists only the commands it serves: QEMU's list restricted to them, in QEMU's order",
        _commands,
    ),
    "query-stats": Intended(
        "KVM's counters count what the guest did; qmpdl's vCPUs run no operating "
        "system (the sim backend reports zero): compared with every value masked",
        _stats,
    ),
    "query-chardev": Intended(
        "the monitor's socket is the replay's own; query-chardev is served by the "
        "harness-opts branch (CommandNotFound until it is merged)",
        _chardev,
    ),
}
