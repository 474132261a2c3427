"""The fuzz targets of bench/fuzz.py: every crasher the fuzzer ever found replays
cleanly (``tests/fuzz_regressions/TARGET-*.bin``), and a short fixed-seed slice of
coverage-guided fuzzing finds nothing (the million-input run is a benchmark:
``python3 -m bench.fuzz``, results in bench/results/fuzz.json)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.fuzz import run_target
from bench.fuzz_targets import TARGETS

REGRESSIONS = Path(__file__).parent / "fuzz_regressions"
#: Inputs per target in the CI slice (a few seconds each).
SLICE = 1500


@pytest.mark.parametrize(
    "path", sorted(REGRESSIONS.glob("*.bin")), ids=lambda p: p.name.removesuffix(".bin")
)
def test_crasher_replays_cleanly(path: Path) -> None:
    TARGETS[path.name.split("-", 1)[0]](path.read_bytes())


def test_every_target_has_a_name_the_regressions_can_use() -> None:
    assert all("-" not in name for name in TARGETS)
    assert {p.name.split("-", 1)[0] for p in REGRESSIONS.glob("*.bin")} <= set(TARGETS)


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_fixed_seed_slice(target: str, tmp_path: Path) -> None:
    pytest.importorskip("atheris")
    stats = run_target(target, SLICE, seed=1, hang=10.0, findings=tmp_path)
    assert stats["exit_status"] == 0, stats
    assert stats["inputs"] >= SLICE, stats
    assert stats["crashes"] == [] and stats["hangs"] == [], stats


def test_hmp_target_starts_from_the_recorded_sessions() -> None:
    """The HMP seeds and the QMP replies the HMP target answers with come from the
    recorded HMP sessions (tests/hmp/golden-qemu-*.json): a moved golden fails here."""
    from bench.fuzz import _seeds
    from bench.fuzz_targets import _hmp_replies

    seeds = _seeds("hmp")
    assert b"\0\0\0\0info vcpu_dirty_limit" in seeds
    assert len(set(seeds)) == len(seeds)
    assert {"query-vcpu-dirty-limit", "query-dirty-rate"} <= set(_hmp_replies())
