"""What a vCPU backend implements, split by role.

A backend is one class that serves four roles, each a :class:`typing.Protocol` that the
part using it is handed:

* :class:`VcpuRunner` (run control): start, pause, resume and stop the vCPUs - the
  machine's run state;
* :class:`DirtyTracker` (dirty tracking): dirty rings or the bitmap and the penalty
  sleeps - the dirty log, the dirty limit and the dirty-rate measurement;
* :class:`GuestMemory` (memory access): RAM blocks, page contents and registers - the
  dirty-rate page sampling and HMP's ``xp`` / ``$eax``;
* :class:`MigrationSupport` (migration): RAM as pages and the device state - the
  migration.

:class:`VcpuBackend` is all four.  The parts do not know whether the vCPUs are simulated
(``sim``) or real (``kvm``); :mod:`qmpdl.backend.registry` says which class serves which
``-accel``.

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

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

if TYPE_CHECKING:  # numpy is imported when the vCPUs first need it, not at start-up
    import numpy as np
    import numpy.typing as npt

    from qmpdl.backend.registers import X86Registers

from qmpdl.target import PAGE_SIZE

__all__ = [
    "PAGE_SIZE",
    "RING_MAX_ENTRIES",
    "RING_RESERVED_ENTRIES",
    "DirtyTracker",
    "GuestMemory",
    "MigrationSupport",
    "RamBlock",
    "VcpuBackend",
    "VcpuProgress",
    "VcpuRunner",
]

#: Ring entries KVM keeps in reserve: the ring counts as full this many entries early
#: (64 on this host's KVM; QEMU's arithmetic ignores it).
RING_RESERVED_ENTRIES = 64

#: Largest ring KVM accepts (``KVM_DIRTY_RING_MAX_ENTRIES``).
RING_MAX_ENTRIES = 65536


class RamBlock(NamedTuple):
    """A guest RAM block as dirty-rate page sampling sees it."""

    name: str
    size: int


class VcpuProgress(NamedTuple):
    """Guest-observable work of one vCPU: passes over its working set."""

    cpu_index: int
    kind: str
    passes: float
    #: bytes written (writers) or read (readers) so far
    bytes_done: float


class VcpuRunner(Protocol):
    """Run control: the present vCPUs as the machine's run state drives them.

    Thread-safety (every role): every method may be called from any thread.
    """

    #: present vCPUs (``-smp N``), indexed 0..nr_vcpus-1
    nr_vcpus: int

    def start(self, on_internal_error: Callable[[str], None]) -> None:
        """Create the vCPUs and let them run (or stay paused if started paused).
        ``on_internal_error`` is called (from any thread) when a vCPU cannot go on."""

    def shutdown(self) -> None:
        """Stop every vCPU and release everything (threads, fds, mappings)."""

    def pause(self) -> None:
        """Stop all vCPUs (QMP ``stop``); returns once none runs guest code."""

    def resume(self) -> None:
        """Let the vCPUs run again (QMP ``cont``)."""

    def set_cpu_throttle(self, percent: int) -> None:
        """Auto-converge: make every vCPU sleep ``percent`` % of the time (0: off)."""

    def thread_ids(self) -> list[int]:
        """Host thread id running each vCPU (``query-cpus-fast``'s ``thread-id``)."""

    def progress(self) -> list[VcpuProgress]:
        """Guest-observable work of each vCPU."""

    def kvm_stats_fds(self) -> tuple[int, list[int]] | None:
        """The VM's and each vCPU's KVM file descriptor (``query-stats`` reads KVM's
        binary statistics from them); None where there is no real KVM VM."""
        return None


class DirtyTracker(Protocol):
    """Dirty tracking: the dirty rings (or the bitmap) and the penalty sleeps."""

    #: dirty ring entries per vCPU; 0 when the ring is off (dirty bitmap instead)
    ring_size: int
    nr_vcpus: int

    def set_dirty_logging(self, enabled: bool) -> None:
        """Start or stop dirty tracking of guest RAM (QEMU's global dirty log on/off).

        Starting write-protects every page; stopping harvests what the rings hold.
        """

    def update_throttle(self, in_service: bool, penalties_us: Sequence[int]) -> None:
        """What a vCPU must do at its next ring-full exits.

        ``in_service``: harvest only the vCPU's own ring (else every ring, and the
        once-a-second reaper runs).  ``penalties_us[i]``: microseconds vCPU ``i`` sleeps
        per ring-full (0 unless the limit applies to it).
        """

    def keep_penalty_sleep_on_kick(self, keep: bool) -> None:
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

    def dirty_pages(self) -> list[int]:
        """Per vCPU: ring entries harvested so far (monotonic; no flush)."""

    def flush_dirty_rings(self) -> None:
        """Kick every vCPU out of the guest and harvest all rings (blocks like QEMU's)."""

    def sync_dirty_bitmap(self) -> int:
        """Bitmap mode (no ring): pages newly dirtied since the previous sync."""


class GuestMemory(Protocol):
    """Memory access: guest RAM and the vCPUs' registers, as monitors read them."""

    #: guest RAM in bytes
    ram_size: int

    def ram_blocks(self) -> list[RamBlock]:
        """The migratable RAM blocks."""

    def page_digests(self, block: str, pages: Sequence[int]) -> list[int]:
        """A digest of each page's current content (page sampling compares two reads)."""

    def registers(self, cpu_index: int) -> X86Registers:
        """vCPU ``cpu_index``'s registers (HMP's ``$eax`` & co)."""

    def read_physical(self, addr: int, size: int) -> bytes:
        """Guest physical memory ``[addr, addr + size)`` (HMP's ``xp``); the part past
        the end of RAM reads as zeros.

        Both backends lay guest memory out alike (:mod:`qmpdl.kvm.guest`): vCPU ``i``'s
        parameter block at ``0x10000 + i * 0x1000`` holds its pass counter at
        ``+0x0c``, so a client can watch every vCPU's progress the way it would in QEMU.
        """


class MigrationSupport(Protocol):
    """Migration: guest RAM as pages with their own dirty tracking, and the state sent
    at switchover."""

    @property
    def ram_pages(self) -> int:
        """Guest RAM in pages."""

    def migration_sync(self) -> npt.NDArray[np.bool_]:
        """Migration's bitmap sync: one flag per RAM page, set for the pages written
        since the previous call (every page on the first call after tracking started,
        QEMU's bulk stage).  Needs dirty logging on (the MIGRATION user)."""

    def migration_stop(self) -> None:
        """Forget the migration's dirty tracking (the next sync starts over)."""

    def read_pages(self, pages: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.bool_], bytes]:
        """The content of ``pages``: which are all zeros, and the others' bytes in order."""

    def write_pages(
        self, pages: npt.NDArray[np.int64], zero: npt.NDArray[np.bool_], data: bytes
    ) -> None:
        """Destination: store received pages (``data`` holds the non-zero ones)."""

    def page_marks(self, pages: npt.NDArray[np.int64]) -> npt.NDArray[np.uint8] | None:
        """Synthetic memory, where every page is its first byte followed by zeros: each
        page's first byte (0: a zero page), so a stream can carry pages as that byte
        alone; None where memory is real (the default)."""
        return None

    def write_page_marks(
        self, pages: npt.NDArray[np.int64], zero: npt.NDArray[np.bool_], marks: npt.NDArray[Any]
    ) -> None:
        """Destination: store pages received as their first bytes (``marks``: the
        non-zero pages'); by default as the full pages they stand for."""
        import numpy as np

        data = np.zeros((len(marks), PAGE_SIZE), dtype=np.uint8)
        data[:, 0] = marks
        self.write_pages(pages, zero, data.tobytes())

    def export_state(self) -> dict[str, Any]:
        """vCPU and guest state sent at switchover (after the VM stopped)."""

    def import_state(self, state: dict[str, Any]) -> None:
        """Destination: take over the state; raises ValueError if the received memory
        does not match it."""


class VcpuBackend(VcpuRunner, DirtyTracker, GuestMemory, MigrationSupport, Protocol):
    """A whole backend: every role.  Backends subclass it (and so inherit the optional
    members' defaults); the parts that use them ask for the one role they need."""
