"""qmpdl against QEMU 7.2 and 10.0, script by script (the corpus in ``corpus/``).

Offline, every script is played on qmpdl answering as each QEMU version (as each
script's target machine) and its normalised transcript must equal that QEMU's golden one
- except the intended differences (``intended.py``: there qmpdl must give exactly the
transcript listed) and the known ones (``known.py``: strict xfails).  With that QEMU
available (``qemu`` marker) the scripts are played on it too and every golden must still
be what QEMU answers.
"""

from __future__ import annotations

import difflib
import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from qmpdl.profile import get_profile
from qmpdl.tools.targets import TARGETS, VERSIONS
from tests.conftest import need_qemu, qemu_problem
from tests.differential.corpus import corpus_files, load_corpus, scripts_for
from tests.differential.intended import INTENDED, intended, served_listing
from tests.differential.known import KNOWN
from tests.differential.record import load_golden
from tests.differential.runner import play_normalized
from tests.differential.summary import figures, report
from tests.hmp.live import subset_of

Transcripts = dict[str, list[str]]

SCRIPTS = list(load_corpus())
CASES = [s.name for s in SCRIPTS]
#: the scripts and case names of each QEMU version
PLAYED = {version: scripts_for(version) for version in VERSIONS}
CASES_OF = {version: [s.name for s in PLAYED[version]] for version in VERSIONS}
GOLDEN = {version: load_golden(version) for version in VERSIONS}


def _diff(qemu: list[str], qmpdl: list[str], name: str) -> str:
    lines = difflib.unified_diff(qemu, qmpdl, f"{name} (QEMU)", f"{name} (qmpdl)", lineterm="")
    return "\n".join(line.rstrip("\r\n") for line in lines)


@pytest.fixture(scope="module")
def _played() -> dict[tuple[str, str], Transcripts]:
    """Transcripts by (kind, version), each played once per module."""
    return {}


def _play(kinds: list[str], version: str, played: dict[tuple[str, str], Transcripts]) -> None:
    """Play the corpus on each of ``kinds`` not played yet, side by side (each play's time
    is its longest scripts', so two at once take about as long as one)."""
    todo = [kind for kind in kinds if (kind, version) not in played]
    with ThreadPoolExecutor(max_workers=max(len(todo), 1)) as pool:
        jobs = {k: pool.submit(play_normalized, k, PLAYED[version], version=version) for k in todo}
        for kind, job in jobs.items():
            played[kind, version] = job.result()


@pytest.fixture
def qmpdl_transcripts(version: str, _played: dict[tuple[str, str], Transcripts]) -> Transcripts:
    _play(["qmpdl"] if qemu_problem(version) else ["qmpdl", "qemu"], version, _played)
    return _played["qmpdl", version]


@pytest.fixture
def qemu_transcripts(version: str, _played: dict[tuple[str, str], Transcripts]) -> Transcripts:
    need_qemu(version)
    _play(["qmpdl", "qemu"], version, _played)
    return _played["qemu", version]


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
        peer = TARGETS[script.target].peer is not None
        assert script.fresh or not peer, f"{script.name} migrates: fresh"
        assert script.since is None or get_profile(script.since).name == script.since
        assert script.applies_to(VERSIONS[-1]), f"{script.name}: no oracle plays it"


@pytest.mark.parametrize("version", VERSIONS)
def test_golden_covers_the_corpus(version: str) -> None:
    golden = GOLDEN[version]
    assert list(golden) == CASES_OF[version], "re-record: python -m tests.differential.record"
    for name, lines in golden.items():
        assert "<TIMEOUT>" not in " ".join(lines), f"{name}: a step expects too many replies"
        # every reply belongs to the step that caused it
        assert not any(line.startswith("after: ") for line in lines), name


def test_lists_name_corpus_cases() -> None:
    assert set(INTENDED) <= set(CASES)
    assert set(KNOWN) == set(VERSIONS)
    for version in VERSIONS:
        assert {e for i in INTENDED.values() for e in i.versions} <= set(VERSIONS)
        assert set(intended(version)) <= set(CASES_OF[version])
        assert set(KNOWN[version]) <= set(CASES_OF[version])
        assert not set(intended(version)) & set(KNOWN[version])


@pytest.mark.parametrize("version", VERSIONS)
def test_listing_filter_agrees_with_hmp_subset_check(version: str) -> None:
    """The derived help listings are what tests/hmp calls a served subset of QEMU's."""
    for name in ("hmp.help", "hmp.info-list"):
        reply = json.loads(GOLDEN[version][name][-1].split(" <<< ", 1)[1])["return"]
        ours = served_listing(reply)
        assert "set_vcpu_dirty_limit" in ours or "vcpu_dirty_limit" in ours
        assert subset_of(ours, reply)
        assert len(ours) < len(reply) / 5


# ------------------------------------------------------------------ qmpdl vs the goldens


def _compared() -> list[object]:
    cases: list[object] = []
    for version in VERSIONS:
        for name in CASES_OF[version]:
            if name in intended(version):
                continue
            known = KNOWN[version].get(name)
            marks = [pytest.mark.xfail(strict=True, reason=known)] if known else []
            cases.append(pytest.param(version, name, marks=marks, id=f"{version}-{name}"))
    return cases


@pytest.mark.parametrize(("version", "name"), _compared())
def test_qmpdl_matches_qemu(version: str, name: str, qmpdl_transcripts: Transcripts) -> None:
    ours = qmpdl_transcripts[name]
    golden = GOLDEN[version][name]
    assert ours == golden, _diff(golden, ours, f"{name} ({version})")


@pytest.mark.parametrize(
    ("version", "name"),
    [
        pytest.param(version, name, id=f"{version}-{name}")
        for version in VERSIONS
        for name in intended(version)
    ],
)
def test_intended_difference(version: str, name: str, qmpdl_transcripts: Transcripts) -> None:
    golden = GOLDEN[version][name]
    expected = intended(version)[name].expected(golden)
    assert expected != golden, f"{name} no longer differs from QEMU {version}: remove it"
    ours = qmpdl_transcripts[name]
    assert ours == expected, _diff(expected, ours, f"{name} ({version}) expected")


@pytest.mark.parametrize("version", VERSIONS)
def test_figures(version: str, qmpdl_transcripts: Transcripts) -> None:
    """The README's figures (shown with ``pytest -s``); every case is accounted for."""
    result = figures(PLAYED[version], qmpdl_transcripts, GOLDEN[version], version)
    print("\n" + "\n".join(report(result)))
    assert not result.unexplained and not result.stale
    total = len(result.identical) + len(result.intended) + len(result.known)
    assert total == len(PLAYED[version])


# ------------------------------------------------------------------ the goldens vs QEMU


@pytest.mark.qemu
@pytest.mark.parametrize(
    ("version", "name"),
    [pytest.param(v, name, id=f"{v}-{name}") for v in VERSIONS for name in CASES_OF[v]],
)
def test_golden_is_current(version: str, name: str, qemu_transcripts: Transcripts) -> None:
    live = qemu_transcripts[name]
    golden = GOLDEN[version][name]
    assert live == golden, _diff(golden, live, f"{name} golden vs live QEMU {version}")
