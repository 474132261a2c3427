"""A toy backend: all it takes to add one is this module and one registry entry.

Each vCPU writes fresh pages at its workload's rate while it runs and dirty logging is
on; every ``ring_size`` pages its dirty ring fills and it sleeps the penalty the dirty
limit gave it.  That is a fluid model - no pages, no threads - but it is enough for
QEMU's throttle to limit it.  It does not migrate and has no memory to show.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from qmpdl.backend.base import RamBlock, VcpuBackend, VcpuProgress
from qmpdl.backend.registers import X86Registers, x86_reset_state
from qmpdl.backend.registry import Accelerator, BackendRequest
from qmpdl.clock import Clock
from qmpdl.target import PAGE_SIZE

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

#: The registry entry (``ACCELERATORS.register(ENTRY)``): ``-accel toy``, shown to
#: clients as KVM with a dirty ring.
ENTRY = Accelerator("toy", "tests.backends.toy:ToyBackend", presents_as="kvm")


class ToyBackend(VcpuBackend):
    def __init__(self, rates_mib: Sequence[float], ram_size: int, ring_size: int, clock: Clock):
        self.nr_vcpus = len(rates_mib)
        self.ram_size = ram_size
        self.ring_size = ring_size
        self.clock = clock
        self._pages_per_s = [r * (1 << 20) / PAGE_SIZE for r in rates_mib]
        self._lock = threading.Lock()
        self._running = False
        self._logging = False
        self._penalties_us = [0] * self.nr_vcpus
        self._dirty = [0.0] * self.nr_vcpus
        self._since = clock.monotonic()

    @classmethod
    def build(cls, request: BackendRequest, accelerator: Accelerator) -> ToyBackend:
        rates = [w.rate if w.kind == "write" else 0.0 for w in request.workloads]
        return cls(rates, request.config.ram_size, request.ring_size, request.clock)

    def _advance(self) -> None:
        """Count the pages written since the last change (lock held)."""
        now = self.clock.monotonic()
        elapsed, self._since = now - self._since, now
        if not (self._running and self._logging):
            return
        for i, rate in enumerate(self._pages_per_s):
            if rate and self.ring_size:
                # one ring of pages, then a penalty sleep: the rate that leaves
                ring_time = self.ring_size / rate + self._penalties_us[i] / 1e6
                self._dirty[i] += elapsed * self.ring_size / ring_time

    def _run(self, running: bool) -> None:
        with self._lock:
            self._advance()
            self._running = running

    # run control
    def start(self, on_internal_error: Callable[[str], None]) -> None:
        self._run(True)  # toy vCPUs never fail

    def shutdown(self) -> None:
        self._run(False)

    def pause(self) -> None:
        self._run(False)

    def resume(self) -> None:
        self._run(True)

    def set_cpu_throttle(self, percent: int) -> None:
        raise NotImplementedError("the toy backend does not migrate")

    def thread_ids(self) -> list[int]:
        return [threading.get_native_id()] * self.nr_vcpus

    def progress(self) -> list[VcpuProgress]:
        return []

    # dirty tracking
    def set_dirty_logging(self, enabled: bool) -> None:
        with self._lock:
            self._advance()
            self._logging = enabled

    def update_throttle(self, in_service: bool, penalties_us: Sequence[int]) -> None:
        with self._lock:
            self._advance()
            self._penalties_us = list(penalties_us)

    def dirty_pages(self) -> list[int]:
        with self._lock:
            self._advance()
            return [int(d) for d in self._dirty]

    def flush_dirty_rings(self) -> None:
        pass  # nothing waits in a ring: the count is always up to date

    def sync_dirty_bitmap(self) -> int:
        return 0

    # memory access
    def ram_blocks(self) -> list[RamBlock]:
        return [RamBlock("pc.ram", self.ram_size)]

    def page_digests(self, block: str, pages: Sequence[int]) -> list[int]:
        return [0] * len(pages)

    def registers(self, cpu_index: int) -> X86Registers:
        return x86_reset_state()

    def read_physical(self, addr: int, size: int) -> bytes:
        return bytes(size)

    # migration
    @property
    def ram_pages(self) -> int:
        return self.ram_size // PAGE_SIZE

    def migration_sync(self) -> npt.NDArray[np.bool_]:
        raise NotImplementedError("the toy backend does not migrate")

    def migration_stop(self) -> None:
        raise NotImplementedError("the toy backend does not migrate")

    def read_pages(self, pages: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.bool_], bytes]:
        raise NotImplementedError("the toy backend does not migrate")

    def write_pages(
        self, pages: npt.NDArray[np.int64], zero: npt.NDArray[np.bool_], data: bytes
    ) -> None:
        raise NotImplementedError("the toy backend does not migrate")

    def export_state(self) -> dict[str, Any]:
        raise NotImplementedError("the toy backend does not migrate")

    def import_state(self, state: dict[str, Any]) -> None:
        raise NotImplementedError("the toy backend does not migrate")
