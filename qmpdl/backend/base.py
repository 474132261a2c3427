"""The small interface every vCPU backend implements.

The throttle and the dirty-rate code talk to vCPUs only through :class:`VcpuBackend`,
so they do not know whether the vCPUs are simulated (``sim``) or real (``kvm``).

Vocabulary (QEMU's):

* *dirty ring*: a per-vCPU ring of ``ring_size`` entries, one per page first written
  since the ring was last harvested; the vCPU exits (``KVM_EXIT_DIRTY_RING_FULL``) when
  it is (softly) full.
* *harvest* (QEMU: reap): move a ring's entries into that vCPU's ``dirty_pages`` counter
  and reset them, which write-protects the pages again.
* *penalty*: ``throttle_us_per_full``, slept by a vCPU at each ring-full exit while the
  dirty limit is in service and enabled for it.
* *kick*: force every vCPU out of the guest (what QEMU's ring flush does).
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy is imported when the vCPUs first need it, not at start-up
    import numpy as np
    import numpy.typing as npt

    from qmpdl.vm.registers import X86Registers

from qmpdl.trace import NULL_TRACER, Tracer

PAGE_SIZE = 4096

#: Ring entries KVM keeps in reserve: the ring counts as full this many entries early
#: (64 on this host's KVM; QEMU's arithmetic ignores it).
RING_RESERVED_ENTRIES = 64

#: Largest ring KVM accepts (``KVM_DIRTY_RING_MAX_ENTRIES``).
RING_MAX_ENTRIES = 65536


@dataclass(frozen=True)
class RamBlock:
    """A guest RAM block as dirty-rate page sampling sees it."""

    name: str
    size: int


@dataclass(frozen=True)
class VcpuProgress:
    """Guest-observable work of one vCPU: passes over its working set."""

    cpu_index: int
    kind: str
    passes: float
    #: bytes written (writers) or read (readers) so far
    bytes_done: float


class VcpuBackend(abc.ABC):
    """The present vCPUs of one machine and their dirty-page tracking.

    Thread-safety: every method may be called from any thread.
    """

    #: dirty ring entries per vCPU; 0 when the ring is off (dirty bitmap instead)
    ring_size: int
    #: present vCPUs (``-smp N``), indexed 0..nr_vcpus-1
    nr_vcpus: int
    #: guest RAM in bytes
    ram_size: int
    #: called (from any thread) when a vCPU cannot go on; the machine replaces it
    on_internal_error: Callable[[str], None] = staticmethod(logging.getLogger("qmpdl").error)
    #: QEMU's trace events of the vCPUs (``dirtylimit_vcpu_execute``); the machine sets it
    tracer: Tracer = NULL_TRACER

    @abc.abstractmethod
    def start(self) -> None:
        """Create the vCPUs and let them run (or stay paused if started paused)."""

    @abc.abstractmethod
    def shutdown(self) -> None:
        """Stop every vCPU and release everything (threads, fds, mappings)."""

    @abc.abstractmethod
    def pause(self) -> None:
        """Stop all vCPUs (QMP ``stop``); returns once none runs guest code."""

    @abc.abstractmethod
    def resume(self) -> None:
        """Let the vCPUs run again (QMP ``cont``)."""

    @abc.abstractmethod
    def set_dirty_logging(self, enabled: bool) -> None:
        """Start or stop dirty tracking of guest RAM (QEMU's global dirty log on/off).

        Starting write-protects every page; stopping harvests what the rings hold.
        """

    @abc.abstractmethod
    def update_throttle(self, in_service: bool, penalties_us: Sequence[int]) -> None:
        """What a vCPU must do at its next ring-full exits.

        ``in_service``: harvest only the vCPU's own ring (else every ring, and the
        once-a-second reaper runs).  ``penalties_us[i]``: microseconds vCPU ``i`` sleeps
        per ring-full (0 unless the limit applies to it).
        """

    def keep_penalty_sleep_on_kick(self, keep: bool) -> None:  # noqa: B027 - optional
        """``keep``: a kick (ring flush, ``stop``) neither cuts a penalty sleep short nor
        waits for it - the sleeping vCPU is out of the guest, its ring is harvested and it
        sleeps on.  Asked for by the ``target`` throttle controller only; without it the
        profile's behaviour holds (7.2: cut short, 8.2+: waited for)."""

    def penalty_sleep_seconds(self) -> list[float] | None:
        """Per vCPU: seconds spent in penalty sleeps so far, the current one included
        (monotonic); None where the backend does not keep count."""
        return None

    def ring_full_exits(self) -> list[int] | None:
        """Per vCPU: dirty-ring-full exits so far (monotonic); None where not counted."""
        return None

    @abc.abstractmethod
    def dirty_pages(self) -> list[int]:
        """Per vCPU: ring entries harvested so far (monotonic; no flush)."""

    @abc.abstractmethod
    def flush_dirty_rings(self) -> None:
        """Kick every vCPU out of the guest and harvest all rings (blocks like QEMU's)."""

    @abc.abstractmethod
    def sync_dirty_bitmap(self) -> int:
        """Bitmap mode (no ring): pages newly dirtied since the previous sync."""

    @abc.abstractmethod
    def ram_blocks(self) -> list[RamBlock]:
        """The migratable RAM blocks."""

    @abc.abstractmethod
    def page_digests(self, block: str, pages: Sequence[int]) -> list[int]:
        """A digest of each page's current content (page sampling compares two reads)."""

    @abc.abstractmethod
    def thread_ids(self) -> list[int]:
        """Host thread id running each vCPU (``query-cpus-fast``'s ``thread-id``)."""

    @abc.abstractmethod
    def progress(self) -> list[VcpuProgress]:
        """Guest-observable work of each vCPU."""

    @abc.abstractmethod
    def registers(self, cpu_index: int) -> X86Registers:
        """vCPU ``cpu_index``'s registers (HMP's ``$eax`` & co)."""

    @abc.abstractmethod
    def read_physical(self, addr: int, size: int) -> bytes:
        """Guest physical memory ``[addr, addr + size)`` (HMP's ``xp``); the part past
        the end of RAM reads as zeros.

        Both backends lay guest memory out alike (:mod:`qmpdl.kvm.guest`): vCPU ``i``'s
        parameter block at ``0x10000 + i * 0x1000`` holds its pass counter at
        ``+0x0c``, so a client can watch every vCPU's progress the way it would in QEMU.
        """

    # ------------------------------------------------------------------ migration

    @property
    @abc.abstractmethod
    def ram_pages(self) -> int:
        """Guest RAM in pages."""

    @abc.abstractmethod
    def migration_sync(self) -> npt.NDArray[np.bool_]:
        """Migration's bitmap sync: one flag per RAM page, set for the pages written
        since the previous call (every page on the first call after tracking started,
        QEMU's bulk stage).  Needs dirty logging on (the MIGRATION user)."""

    @abc.abstractmethod
    def migration_stop(self) -> None:
        """Forget the migration's dirty tracking (the next sync starts over)."""

    @abc.abstractmethod
    def read_pages(self, pages: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.bool_], bytes]:
        """The content of ``pages``: which are all zeros, and the others' bytes in order."""

    @abc.abstractmethod
    def write_pages(
        self, pages: npt.NDArray[np.int64], zero: npt.NDArray[np.bool_], data: bytes
    ) -> None:
        """Destination: store received pages (``data`` holds the non-zero ones)."""

    @abc.abstractmethod
    def export_state(self) -> dict[str, Any]:
        """vCPU and guest state sent at switchover (after the VM stopped)."""

    @abc.abstractmethod
    def import_state(self, state: dict[str, Any]) -> None:
        """Destination: take over the state; raises ValueError if the received memory
        does not match it."""

    @abc.abstractmethod
    def set_cpu_throttle(self, percent: int) -> None:
        """Auto-converge: make every vCPU sleep ``percent`` % of the time (0: off)."""
