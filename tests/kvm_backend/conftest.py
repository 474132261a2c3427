"""The kvm backend's tests need /dev/kvm with the dirty ring (required in CI)."""

from __future__ import annotations

import pytest

from qmpdl.kvm.vm import dirty_ring_max_entries
from tests.conftest import need_kvm
from tests.machine.conftest import make_machine  # noqa: F401  (fixture)


@pytest.fixture(autouse=True)
def _kvm_with_dirty_ring() -> None:
    need_kvm()
    if dirty_ring_max_entries() < 4096:
        pytest.skip("KVM has no dirty ring of 4096 entries")
