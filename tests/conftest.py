"""Shared fixtures.

Tests that need real QEMU (the oracle) or ``/dev/kvm`` skip where those are absent,
unless ``QMPDL_REQUIRE_QEMU=1`` / ``QMPDL_REQUIRE_KVM=1`` is set (``.ci/run`` sets both):
then a missing dependency is a failure, never a silent skip.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from qmpdl.tools.qemu import QemuProcess, kvm_usable, qemu_binary


def _require(env: str) -> bool:
    return os.environ.get(env, "") not in ("", "0")


def need_qemu() -> None:
    """Skip (or fail, under QMPDL_REQUIRE_QEMU=1) unless real QEMU with KVM can run."""
    problem = None
    if qemu_binary() is None:
        problem = "qemu-system-x86_64 is not installed"
    elif not kvm_usable():
        problem = "/dev/kvm is not usable"
    if problem:
        if _require("QMPDL_REQUIRE_QEMU"):
            pytest.fail(f"{problem} (QMPDL_REQUIRE_QEMU=1)")
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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "qemu" in item.keywords and "real_qemu" not in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.usefixtures("_need_qemu_marker"))


@pytest.fixture
def _need_qemu_marker() -> None:
    need_qemu()
