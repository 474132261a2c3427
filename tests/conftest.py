"""Shared fixtures.

Tests that need real QEMU (an oracle: 7.2, or 10.0 for the newer profile) or
``/dev/kvm`` skip where those are absent, unless ``QMPDL_REQUIRE_QEMU=1`` /
``QMPDL_REQUIRE_KVM=1`` is set (``.ci/run`` sets both): then a missing dependency is a
failure, never a silent skip.  ``QMPDL_REQUIRE_QEMU`` may also list the oracles required
(``7.2`` or ``7.2,10.0``); ``1`` requires every one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from qmpdl.tools.qemu import QemuProcess, kvm_usable, oracle


def _require(env: str) -> bool:
    return os.environ.get(env, "") not in ("", "0")


def qemu_required(version: str) -> bool:
    """True when QMPDL_REQUIRE_QEMU makes a missing QEMU ``version`` a failure."""
    value = os.environ.get("QMPDL_REQUIRE_QEMU", "")
    if value in ("", "0"):
        return False
    return value == "1" or version in value.split(",")


def qemu_problem(version: str = "7.2") -> str | None:
    """Why real QEMU ``version`` with KVM cannot run here (None: it can)."""
    if oracle(version).path() is None:
        return oracle(version).missing()
    if not kvm_usable():
        return "/dev/kvm is not usable"
    return None


def need_qemu(version: str = "7.2") -> None:
    """Skip (or fail, under QMPDL_REQUIRE_QEMU) unless real QEMU ``version`` with KVM can run."""
    problem = qemu_problem(version)
    if problem:
        if qemu_required(version):
            pytest.fail(f"{problem} (QMPDL_REQUIRE_QEMU={os.environ['QMPDL_REQUIRE_QEMU']})")
        pytest.skip(problem)


def need_kvm() -> None:
    """Skip (or fail, under QMPDL_REQUIRE_KVM=1) unless /dev/kvm is usable."""
    if not kvm_usable():
        if _require("QMPDL_REQUIRE_KVM"):
            pytest.fail("/dev/kvm is not usable (QMPDL_REQUIRE_KVM=1)")
        pytest.skip("/dev/kvm is not usable")


@pytest.fixture
def real_qemu() -> Iterator[QemuProcess]:
    """Real QEMU 7.2 with -accel kvm,dirty-ring-size=4096 -machine none."""
    need_qemu()
    with QemuProcess() as qemu:
        yield qemu


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A ``qemu``-marked test needs its QEMU: its ``version`` parameter, the marker's
    argument (``@pytest.mark.qemu("10.0")``), or 7.2; a ``kvm``-marked one /dev/kvm.
    Missing, the test skips - or fails under QMPDL_REQUIRE_QEMU / QMPDL_REQUIRE_KVM,
    before its fixtures run.  (A hook, not a fixture added at collection time: pytest
    has fixed each test's fixtures by then and would never run it.)"""
    marker = item.get_closest_marker("qemu")
    if marker is not None:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "version" in callspec.params:
            need_qemu(str(callspec.params["version"]))
        elif marker.args:
            need_qemu(str(marker.args[0]))
        else:
            need_qemu()
    if item.get_closest_marker("kvm") is not None:
        need_kvm()
