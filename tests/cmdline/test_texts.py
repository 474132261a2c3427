"""qmpdl takes every case of :mod:`tests.cmdline.cases` as QEMU 7.2 does: the same
stderr, byte for byte after the program name, and the same result (running, or the same
exit status), against the recording in ``golden-qemu-7.2.json`` - and that recording is
what the real binary still does (``-m qemu``)."""

from __future__ import annotations

import pytest

from tests.cmdline.cases import CASES, INTENDED, Case
from tests.cmdline.runner import load_golden, qmpdl_argv, run_case

GOLDEN = load_golden()


def test_every_case_is_recorded() -> None:
    assert set(GOLDEN) == {c.name for c in CASES}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_qmpdl_reads_the_command_line_as_qemu(case: Case) -> None:
    expected = GOLDEN[case.name]
    outcome = run_case(qmpdl_argv(), case.base, list(case.args))
    assert outcome.stderr == expected["stderr"], outcome
    if case.name in INTENDED:
        assert outcome.status == "1"
    else:
        assert outcome.status == expected["status"]


@pytest.mark.qemu
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_the_recording_is_what_qemu_does(case: Case) -> None:
    outcome = run_case(["qemu-system-x86_64"], case.base, list(case.args))
    assert outcome.stderr == GOLDEN[case.name]["stderr"], outcome
    if case.name not in INTENDED:
        assert outcome.status == GOLDEN[case.name]["status"]
