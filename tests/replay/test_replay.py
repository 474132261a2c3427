"""libvirt 9.0's exchanges with QEMU 7.2, replayed against qmpdl reply by reply.

Recorded in ``../shared/anchors/libvirt-9.0`` (required in CI, see
QMPDL_REQUIRE_ANCHORS): the capability probe (two QEMU processes: ``-machine none``
with KVM, then with TCG), and one domain's life on one monitor connection - its start
(``b``), the virsh commands of ``c`` (dirty limit and dirty rate through
qemu-monitor-command, domdirtyrate-calc, domstats) and ``d`` (suspend, resume,
domstats --vcpu, destroy).  Every reply and event must be QEMU's after the usual
normalising, except the differences in ``intended.py``, each checked its own way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tests.replay.intended import INTENDED
from tests.replay.recording import Session, domain_session, load
from tests.replay.replay import (
    PROBE_KVM,
    PROBE_TCG,
    Played,
    ReplayMachine,
    domain,
    normalized,
    play_machine,
)


@dataclass(frozen=True)
class Recording:
    machine: Callable[[], ReplayMachine]
    sessions: Callable[[], list[Session]]


RECORDINGS = {
    "probe-kvm": Recording(lambda: PROBE_KVM, lambda: [load("a-probe-real-x86_64")[0]]),
    "probe-tcg": Recording(lambda: PROBE_TCG, lambda: [load("a-probe-real-x86_64")[1]]),
    "domain": Recording(domain, lambda: [domain_session()]),
}


def verdict(played: Played) -> tuple[str, list[str]]:
    """``identical``, ``prefix`` (the recording cut the reply, qmpdl's starts with
    it), ``intended`` or ``differs``, with the problems found."""
    exchange = played.exchange
    events = [normalized(e) for e in played.events]
    if events != [normalized(e) for e in exchange.events]:
        return "differs", [f"events {played.events} vs {exchange.events}"]
    if not exchange.outcome:  # after the last reply: only events
        return "identical", []
    intended = INTENDED.get(exchange.command)
    if intended is not None:
        problems = intended.check(played)
        return ("intended", []) if not problems else ("differs", problems)
    ours, theirs = normalized(played.value), normalized(exchange.value)
    if played.outcome == exchange.outcome:
        if ours == theirs:
            return "identical", []
        if exchange.truncated and ours.startswith(theirs):
            return "prefix", []
    return "differs", [f"{played.outcome} {ours[:400]} vs {exchange.outcome} {theirs[:400]}"]


_PLAYED: dict[str, list[Played]] = {}


def played(name: str) -> list[Played]:
    if name not in _PLAYED:
        recording = RECORDINGS[name]
        _PLAYED[name] = play_machine(recording.machine(), recording.sessions())
    return _PLAYED[name]


@pytest.mark.slow
@pytest.mark.parametrize("name", list(RECORDINGS))
def test_replay(name: str) -> None:
    problems = []
    for item in played(name):
        kind, found = verdict(item)
        if kind == "differs":
            problems.append(f"{item.exchange.command} {item.exchange.arguments}: {found}")
    assert not problems, "\n".join(problems)


@pytest.mark.slow
def test_figures() -> None:
    """What the README reports (shown with ``pytest -s``)."""
    lines = []
    total: dict[str, int] = {}
    for name in RECORDINGS:
        counts: dict[str, int] = {}
        for item in played(name):
            kind, _ = verdict(item)
            counts[kind] = counts.get(kind, 0) + 1
            total[kind] = total.get(kind, 0) + 1
        lines.append(f"{name}: {counts}")
    lines.append(f"all: {total}")
    for command, intended in INTENDED.items():
        lines.append(f"intended {command}: {intended.reason}")
    print("\n" + "\n".join(lines))
    assert "differs" not in total
    assert total["identical"] > 480
