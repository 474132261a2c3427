"""qmpdl against QEMU 7.2, script by script (the corpus in ``corpus/``).

Offline, every script is played on qmpdl (as each script's target machine) and its
normalised transcript must equal QEMU's golden one - except the intended differences
(``intended.py``: there qmpdl must give exactly the transcript listed) and the known
ones (``known.py``: strict xfails).  With QEMU installed (``qemu`` marker) the scripts
are played on QEMU too and every golden must still be what QEMU answers.
"""

from __future__ import annotations

import difflib
import json

import pytest

from qmpdl.tools.targets import TARGETS
from tests.conftest import need_qemu
from tests.differential.corpus import corpus_files, load_corpus
from tests.differential.intended import INTENDED, served_listing
from tests.differential.known import KNOWN
from tests.differential.record import load_golden
from tests.differential.runner import play_normalized
from tests.differential.summary import figures, report
from tests.hmp.live import subset_of

Transcripts = dict[str, list[str]]

SCRIPTS = list(load_corpus())
CASES = [s.name for s in SCRIPTS]
GOLDEN = load_golden()


def _diff(qemu: list[str], qmpdl: list[str], name: str) -> str:
    lines = difflib.unified_diff(qemu, qmpdl, f"{name} (QEMU)", f"{name} (qmpdl)", lineterm="")
    return "\n".join(line.rstrip("\r\n") for line in lines)


@pytest.fixture(scope="module")
def qmpdl_transcripts() -> Transcripts:
    return play_normalized("qmpdl", SCRIPTS)


@pytest.fixture(scope="module")
def qemu_transcripts() -> Transcripts:
    need_qemu()
    return play_normalized("qemu", SCRIPTS)


# ------------------------------------------------------------------ the corpus itself


def test_corpus_is_well_formed() -> None:
    assert len(SCRIPTS) >= 150
    assert len(set(CASES)) == len(CASES), "case names must be unique"
    for path in corpus_files():
        data = json.loads(path.read_text())
        assert isinstance(data, list), path
        assert {item["group"] for item in data} == {path.stem}, path
    for script in SCRIPTS:
        assert script.target in TARGETS, script.name
        assert script.name.split(".")[0] in script.group, script.name
        changes = any(step.eof or step.poll is not None for step in script.steps)
        assert script.fresh or not changes, f"{script.name} changes the machine: fresh"


def test_golden_covers_the_corpus() -> None:
    assert list(GOLDEN) == CASES, "re-record: python -m tests.differential.record"
    for name, lines in GOLDEN.items():
        assert "<TIMEOUT>" not in " ".join(lines), f"{name}: a step expects too many replies"
        # every reply belongs to the step that caused it
        assert not any(line.startswith("after: ") for line in lines), name


def test_lists_name_corpus_cases() -> None:
    assert set(INTENDED) <= set(CASES)
    assert set(KNOWN) <= set(CASES)
    assert not set(INTENDED) & set(KNOWN)


def test_listing_filter_agrees_with_hmp_subset_check() -> None:
    """The derived help listings are what tests/hmp calls a served subset of QEMU's."""
    for name in ("hmp.help", "hmp.info-list"):
        reply = json.loads(GOLDEN[name][-1].split(" <<< ", 1)[1])["return"]
        ours = served_listing(reply)
        assert "set_vcpu_dirty_limit" in ours or "vcpu_dirty_limit" in ours
        assert subset_of(ours, reply)
        assert len(ours) < len(reply) / 5


# ------------------------------------------------------------------ qmpdl vs the goldens


def _compared() -> list[object]:
    cases: list[object] = []
    for name in CASES:
        if name in INTENDED:
            continue
        marks = [pytest.mark.xfail(strict=True, reason=KNOWN[name])] if name in KNOWN else []
        cases.append(pytest.param(name, marks=marks, id=name))
    return cases


@pytest.mark.parametrize("name", _compared())
def test_qmpdl_matches_qemu(name: str, qmpdl_transcripts: Transcripts) -> None:
    ours = qmpdl_transcripts[name]
    assert ours == GOLDEN[name], _diff(GOLDEN[name], ours, name)


@pytest.mark.parametrize("name", list(INTENDED))
def test_intended_difference(name: str, qmpdl_transcripts: Transcripts) -> None:
    expected = INTENDED[name].expected(GOLDEN[name])
    assert expected != GOLDEN[name], f"{name} no longer differs from QEMU: remove it"
    ours = qmpdl_transcripts[name]
    assert ours == expected, _diff(expected, ours, f"{name} expected")


def test_figures(qmpdl_transcripts: Transcripts) -> None:
    """The README's figures (shown with ``pytest -s``); every case is accounted for."""
    result = figures(SCRIPTS, qmpdl_transcripts, GOLDEN)
    print("\n" + "\n".join(report(SCRIPTS, result)))
    assert not result.unexplained and not result.stale
    total = len(result.identical) + len(result.intended) + len(result.known)
    assert total == len(SCRIPTS)


# ------------------------------------------------------------------ the goldens vs QEMU


@pytest.mark.qemu
@pytest.mark.parametrize("name", CASES)
def test_golden_is_current(name: str, qemu_transcripts: Transcripts) -> None:
    live = qemu_transcripts[name]
    assert live == GOLDEN[name], _diff(GOLDEN[name], live, f"{name} golden vs live QEMU")
