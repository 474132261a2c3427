"""A minimal KVM virtual machine: one RAM slot, N vCPUs, KVM's dirty ring or bitmap.

No devices, no interrupt controller, no BIOS: the vCPUs run qmpdl's own guest programs
(:mod:`qmpdl.kvm.guest`) in flat 32-bit protected mode.  Everything the host kernel
offers for dirty tracking is exposed as is, so a backend can reproduce what QEMU does:

* ring mode (``ring_entries > 0``): each vCPU has a ring of :class:`~.uapi.KvmDirtyGfn`
  entries mmapped from its fd; :meth:`KvmVcpu.harvest` collects the entries KVM
  published and marks them for reset, :meth:`KvmVm.reset_dirty_rings` makes KVM
  write-protect those pages again;
* bitmap mode (``ring_entries == 0``): :meth:`KvmVm.get_dirty_log`.

Threads: :meth:`KvmVcpu.run` releases the GIL for the whole ``KVM_RUN``; each vCPU
should be run by one thread.  A kick is ``vcpu.immediate_exit = True`` followed by a
signal (with a Python handler installed, e.g. ``signal.signal(SIGUSR1, lambda *a:
None)``) sent with ``signal.pthread_kill`` to the thread inside :meth:`KvmVcpu.run`,
which then raises :class:`InterruptedError`; the runner clears ``immediate_exit``.
:meth:`KvmVm.close` must not race with a running vCPU: stop the threads first.

Facts measured on the PVM host (``kvm_pvm``, see :func:`host_is_pvm`), which a backend
has to live with:

* the soft-full exit comes at exactly ``size - 64`` used entries (64 reserved, no PML);
* a 32-bit guest without paging is always emulated (about 0.5 us per instruction),
  with or without dirty logging;
* while logging, *every* emulated guest write pushes a ring entry, also to a page
  already dirty and not yet reset (hardware KVM pushes only the first write after a
  reset): the ring counts writes, which equals distinct pages only for working sets
  larger than the ring;
* one write fault emulates up to 1024 instructions without checking the soft limit,
  so a guest with fewer than ~16 instructions per page write overflows the ring, after
  which KVM and the VMM disagree on the ring position and every run ends in a ring-full
  exit with nothing to harvest (:attr:`KvmVcpu.ring_stuck`; recoverable with
  ``harvest(resync=True)``).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import mmap
import os
import platform
from dataclasses import dataclass
from typing import Final, NamedTuple

import numpy as np
import numpy.typing as npt

from qmpdl.closing import Closing
from qmpdl.kvm import uapi
from qmpdl.target import PAGE_SIZE

KVM_DEVICE: Final = "/dev/kvm"
#: The one memory slot: all of guest RAM, at guest physical address 0.
RAM_SLOT: Final = 0
#: Smallest ring KVM accepts: one host page of entries.
RING_MIN_ENTRIES: Final = PAGE_SIZE // ctypes.sizeof(uapi.KvmDirtyGfn)
#: After this many ring-full exits in a row with nothing to harvest, the ring is
#: considered stuck (see :attr:`KvmVcpu.empty_full_exits`).
STUCK_RING_FULL_EXITS: Final = 3

#: numpy view of ``struct kvm_dirty_gfn``
DIRTY_GFN_DTYPE: Final = np.dtype([("flags", "<u4"), ("slot", "<u4"), ("offset", "<u8")])
assert DIRTY_GFN_DTYPE.itemsize == ctypes.sizeof(uapi.KvmDirtyGfn)

_EMPTY_OFFSETS: Final[npt.NDArray[np.uint64]] = np.zeros(0, dtype=np.uint64)
_EMPTY_OFFSETS.flags.writeable = False


_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = (
    ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long,
)  # fmt: skip
_libc.munmap.restype = ctypes.c_int
_libc.munmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t)
_MAP_FAILED: Final = ctypes.c_void_p(-1).value


class _FdMapping:
    """A shared read/write mapping of a KVM fd made with libc's ``mmap``.

    Python's :class:`mmap.mmap` would ``dup()`` the fd for every mapping (three fds per
    vCPU); these mappings are private to :class:`KvmVcpu`, which drops every view of
    them before :meth:`close`.
    """

    def __init__(self, fd: int, length: int, offset: int) -> None:
        address = _libc.mmap(
            None, length, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_SHARED, fd, offset
        )
        if address in (None, _MAP_FAILED):
            err = ctypes.get_errno()
            raise OSError(err, f"mmap of KVM fd {fd} at {offset:#x}: {os.strerror(err)}")
        self.address: int = address
        self.length = length

    def view(self) -> ctypes.Array[ctypes.c_char]:
        """The mapped bytes as a ctypes array (valid until :meth:`close`)."""
        return (ctypes.c_char * self.length).from_address(self.address)

    def close(self) -> None:
        if self.length:
            _libc.munmap(self.address, self.length)
            self.length = 0


def _ioctl(fd: int, request: int, arg: int | ctypes.Structure = 0) -> int:
    """``ioctl(2)``; a ctypes struct is passed by address and updated in place."""
    if isinstance(arg, ctypes.Structure):
        # mutate_flag=True: the kernel's output is copied back into the struct.
        return int(fcntl.ioctl(fd, request, memoryview(arg).cast("B"), True))
    return int(fcntl.ioctl(fd, request, arg))


def _check_extension(fd: int, cap: int) -> int:
    """``KVM_CHECK_EXTENSION``: 0 when unsupported, else a cap-specific positive value."""
    return _ioctl(fd, uapi.KVM_CHECK_EXTENSION, cap)


def _open_kvm() -> int:
    fd = os.open(KVM_DEVICE, os.O_RDWR | os.O_CLOEXEC)
    try:
        version = _ioctl(fd, uapi.KVM_GET_API_VERSION)
        if version != uapi.KVM_API_VERSION:
            raise OSError(f"KVM API version {version}, expected {uapi.KVM_API_VERSION}")
    except BaseException:
        os.close(fd)
        raise
    return fd


def kvm_module() -> str:
    """The loaded KVM vendor module (``kvm_pvm``, ``kvm_intel``, ``kvm_amd``) or ``""``."""
    for name in ("kvm_pvm", "kvm_intel", "kvm_amd"):
        if os.path.isdir(f"/sys/module/{name}"):
            return name
    return ""


def host_is_pvm() -> bool:
    """True when ``/dev/kvm`` is PVM (software virtualisation; see the module notes)."""
    return kvm_module() == "kvm_pvm"


def kvm_available() -> bool:
    """True on an x86-64 host whose ``/dev/kvm`` opens and speaks API version 12."""
    if platform.machine() != "x86_64":
        return False
    try:
        os.close(_open_kvm())
    except OSError:
        return False
    return True


class KvmInitError(NamedTuple):
    """Why QEMU's ``kvm_init`` fails on this host: the reason as QEMU says it before 9.2,
    and the errno it fails with (the text of "failed to initialize kvm: ...")."""

    reason: str
    error: int
    #: the reason as an error report says it from 9.2, where that differs
    #: (``ioctl(KVM_CREATE_VM) failed`` lost the errno's number)
    reported: str | None = None

    def text(self, error_report: bool) -> str:
        return self.reported if error_report and self.reported else self.reason


def kvm_init_error() -> KvmInitError | None:
    """Why QEMU's ``kvm_init`` would fail on this host; None when KVM is usable.

    The same steps in the same order: open ``/dev/kvm``, ``KVM_GET_API_VERSION``
    (an ioctl that fails, e.g. on a device that is not KVM, counts as too old),
    ``KVM_CREATE_VM`` (retried on EINTR; EBUSY when another hypervisor holds the CPU).
    """

    try:
        fd = os.open(KVM_DEVICE, os.O_RDWR | os.O_CLOEXEC)
    except OSError as e:
        return KvmInitError(
            f"Could not access KVM kernel module: {e.strerror}", e.errno or errno.EIO
        )
    try:
        try:
            version = _ioctl(fd, uapi.KVM_GET_API_VERSION)
        except OSError as e:
            return KvmInitError("kvm version too old", e.errno or errno.EIO)
        if version < uapi.KVM_API_VERSION:
            return KvmInitError("kvm version too old", errno.EINVAL)
        if version > uapi.KVM_API_VERSION:
            return KvmInitError("kvm version not supported", errno.EINVAL)
        while True:
            try:
                os.close(_ioctl(fd, uapi.KVM_CREATE_VM, 0))
            except InterruptedError:
                continue
            except OSError as e:
                code = e.errno or errno.EIO
                return KvmInitError(
                    f"ioctl(KVM_CREATE_VM) failed: {code} {os.strerror(code)}",
                    code,
                    f"ioctl(KVM_CREATE_VM) failed: {os.strerror(code)}",
                )
            return None
    finally:
        os.close(fd)


def kvm_capability(cap: int) -> int:
    """``KVM_CHECK_EXTENSION`` on ``/dev/kvm`` (0 when KVM is not usable at all)."""
    try:
        fd = _open_kvm()
    except OSError:
        return 0
    try:
        return _check_extension(fd, cap)
    finally:
        os.close(fd)


def dirty_ring_max_entries() -> int:
    """Largest dirty ring KVM offers, in entries; 0 when the ring is unsupported."""
    ring_bytes = max(
        kvm_capability(uapi.KVM_CAP_DIRTY_LOG_RING_ACQ_REL),
        kvm_capability(uapi.KVM_CAP_DIRTY_LOG_RING),
    )
    return ring_bytes // ctypes.sizeof(uapi.KvmDirtyGfn)


@dataclass(frozen=True)
class HarvestResult:
    """What one :meth:`KvmVcpu.harvest` collected."""

    #: entries collected: one per page first written since its last reset (on PVM:
    #: one per emulated write, see the module notes)
    count: int
    #: page numbers (guest frame numbers: slot 0 starts at GPA 0) in ring order;
    #: empty when offsets were not asked for
    offsets: npt.NDArray[np.uint64]
    #: entries skipped to resynchronise with KVM after a ring overflow (see
    #: :meth:`KvmVcpu.harvest`); their pages are lost to dirty tracking
    skipped: int = 0


class KvmVcpu:
    """One vCPU: its fd, its ``kvm_run`` page and (in ring mode) its dirty ring.

    Created by :class:`KvmVm`.  :meth:`run` and :meth:`harvest` may run in different
    threads (QEMU's flush harvests rings of running vCPUs), but only one thread may
    harvest a given vCPU at a time.
    """

    def __init__(self, vm_fd: int, index: int, mmap_size: int, ring_entries: int) -> None:
        self.index = index
        #: entries in this vCPU's dirty ring (0: no ring)
        self.ring_entries = ring_entries
        #: used entries at which KVM exits with ``KVM_EXIT_DIRTY_RING_FULL`` (the
        #: kernel's soft limit: size minus ``KVM_DIRTY_RING_RSVD_ENTRIES``; measured
        #: on the PVM host, which adds nothing for a CPU dirty-log buffer)
        self.soft_limit = max(ring_entries - uapi.KVM_DIRTY_RING_RSVD_ENTRIES, 0)
        #: entries harvested so far (the fetch index, never wrapped)
        self.harvested = 0
        #: consecutive ring-full exits whose harvest found nothing (a stuck ring)
        self.empty_full_exits = 0
        #: reason of the last exit :meth:`run` returned (``KVM_EXIT_INTR`` after a kick)
        self.last_exit = -1
        self._full_exit_pending = False  # a ring-full exit not followed by a harvest yet
        self._closed = False
        self._run: uapi.KvmRun | None = None
        self._run_map: _FdMapping | None = None
        self._ring_map: _FdMapping | None = None
        self._ring: npt.NDArray[np.void] | None = None
        self._flags: npt.NDArray[np.uint32] = np.zeros(0, dtype=np.uint32)
        self._offsets: npt.NDArray[np.uint64] = np.zeros(0, dtype=np.uint64)
        self._clean: npt.NDArray[np.bool_] = np.zeros(0, dtype=np.bool_)  # scan scratch
        self.fd = _ioctl(vm_fd, uapi.KVM_CREATE_VCPU, index)
        try:
            self._run_map = _FdMapping(self.fd, mmap_size, 0)
            self._run = uapi.KvmRun.from_address(self._run_map.address)
            if ring_entries:
                self._ring_map = _FdMapping(
                    self.fd,
                    ring_entries * DIRTY_GFN_DTYPE.itemsize,
                    uapi.KVM_DIRTY_LOG_PAGE_OFFSET * PAGE_SIZE,
                )
                self._ring = np.frombuffer(memoryview(self._ring_map.view()), DIRTY_GFN_DTYPE)
                self._flags = self._ring["flags"]
                self._offsets = self._ring["offset"]
                self._clean = np.zeros(ring_entries, dtype=np.bool_)
        except BaseException:
            self.close()
            raise

    # -- running ---------------------------------------------------------------

    @property
    def kvm_run(self) -> uapi.KvmRun:
        """The shared ``struct kvm_run`` (exit details such as ``exit.io``); do not keep
        it (or its members) past :meth:`close`: it points into the unmapped page."""
        if self._run is None:
            raise ValueError(f"vCPU {self.index} is closed")
        return self._run

    def run(self) -> int:
        """``KVM_RUN`` until the next exit to user space; returns the exit reason.

        Raises :class:`InterruptedError` when a signal (a kick) or ``immediate_exit``
        ended the run before the guest exited by itself.
        """
        try:
            fcntl.ioctl(self.fd, uapi.KVM_RUN, 0)
        except InterruptedError:
            self.last_exit = uapi.KVM_EXIT_INTR
            raise
        reason = int(self.kvm_run.exit_reason)
        self.last_exit = reason
        if reason == uapi.KVM_EXIT_DIRTY_RING_FULL:
            self._full_exit_pending = True
        return reason

    @property
    def immediate_exit(self) -> bool:
        """``kvm_run->immediate_exit``: while set, ``KVM_RUN`` returns at once (EINTR)."""
        return bool(self.kvm_run.immediate_exit)

    @immediate_exit.setter
    def immediate_exit(self, value: bool) -> None:
        self.kvm_run.immediate_exit = 1 if value else 0

    def io_data(self) -> bytes:
        """After ``KVM_EXIT_IO``: the bytes the guest wrote (``OUT``) or must read."""
        io = self.kvm_run.exit.io
        assert self._run_map is not None
        return ctypes.string_at(self._run_map.address + int(io.data_offset), io.size * io.count)

    # -- registers ---------------------------------------------------------------

    def get_regs(self) -> uapi.KvmRegs:
        """``KVM_GET_REGS``."""
        regs = uapi.KvmRegs()
        _ioctl(self.fd, uapi.KVM_GET_REGS, regs)
        return regs

    def set_regs(self, regs: uapi.KvmRegs) -> None:
        """``KVM_SET_REGS``."""
        _ioctl(self.fd, uapi.KVM_SET_REGS, regs)

    def get_sregs(self) -> uapi.KvmSregs:
        """``KVM_GET_SREGS``."""
        sregs = uapi.KvmSregs()
        _ioctl(self.fd, uapi.KVM_GET_SREGS, sregs)
        return sregs

    def set_sregs(self, sregs: uapi.KvmSregs) -> None:
        """``KVM_SET_SREGS``."""
        _ioctl(self.fd, uapi.KVM_SET_SREGS, sregs)

    def enter_flat_protected_mode(self) -> None:
        """Flat 32-bit protected mode: CS/DS/ES/FS/GS/SS base 0, limit 4 GiB, paging off.

        The segment registers' hidden parts are loaded directly; no GDT exists in
        guest memory, so the guest must never reload a segment register.  Interrupts
        stay disabled (no IDT either).
        """
        sregs = self.get_sregs()
        for name, selector, seg_type in (
            ("cs", 0x08, 0x0B),  # code: execute/read, accessed
            ("ds", 0x10, 0x03),  # data: read/write, accessed
            ("es", 0x10, 0x03),
            ("fs", 0x10, 0x03),
            ("gs", 0x10, 0x03),
            ("ss", 0x10, 0x03),
        ):
            seg: uapi.KvmSegment = getattr(sregs, name)
            seg.base, seg.limit, seg.selector, seg.type = 0, 0xFFFFFFFF, selector, seg_type
            seg.present, seg.dpl, seg.db, seg.s, seg.l, seg.g = 1, 0, 1, 1, 0, 1
            seg.avl, seg.unusable = 0, 0
        sregs.cr0 = (sregs.cr0 | 0x1) & ~0x80000000  # CR0.PE on, CR0.PG off
        sregs.cr4 = 0
        sregs.efer = 0
        self.set_sregs(sregs)

    # -- dirty ring --------------------------------------------------------------

    def dirty_pending(self) -> int:
        """Entries KVM published that :meth:`harvest` has not collected yet (read only)."""
        return self._dirty_run(self.harvested % self.ring_entries) if self._ring is not None else 0

    def harvest(self, *, offsets: bool = True, resync: bool = False) -> HarvestResult:
        """Collect the dirty entries from the fetch index on and mark them for reset.

        The caller then issues :meth:`KvmVm.reset_dirty_rings` (also after an empty
        harvest: QEMU always does), which re-protects the pages and frees the entries.

        Memory ordering (x86-64, TSO): KVM writes an entry's ``slot``/``offset``, then
        ``smp_wmb()``, then ``flags = DIRTY``.  We load all ``flags`` first (one
        vectorised pass), and only then the ``offset`` of the entries seen dirty; x86
        never reorders a load before an earlier load, so those offsets are the ones
        published (acquire).  We then store ``flags = RESET``; x86 never moves a store
        before earlier loads, so KVM cannot recycle an entry we are still reading
        (release).  Plain loads and stores are thus the acquire/release accesses
        ``KVM_CAP_DIRTY_LOG_RING_ACQ_REL`` asks for.  Entries KVM publishes during the
        scan may be missed; the next harvest collects them.

        ``resync``: after a ring overflow (the PVM host bug: KVM pushed more entries
        than the ring holds) the fetch index points at entries KVM already recycled,
        nothing is dirty there, and both sides wait forever: every run ends in a
        ring-full exit with nothing to harvest.  With ``resync=True`` and nothing dirty
        at the fetch index, the whole ring is searched; the non-dirty gap before the
        first dirty entry is marked for reset and skipped (:attr:`HarvestResult.skipped`).
        Only valid while this vCPU is not in :meth:`run`, i.e. from its own thread.

        Counts ring-full exits whose first harvest came back empty in
        :attr:`empty_full_exits` (reset by any non-empty harvest); see :attr:`ring_stuck`.
        """
        ring = self._ring
        if ring is None:
            raise ValueError(f"vCPU {self.index} has no dirty ring")
        size = self.ring_entries
        pos = self.harvested % size
        count = self._dirty_run(pos)
        skipped = 0
        if count == 0 and resync:
            skipped = self._gap_before_dirty(pos)
            if skipped:
                self._mark_reset(pos, skipped)
                self.harvested += skipped
                pos = self.harvested % size
                count = self._dirty_run(pos)
        after_full_exit, self._full_exit_pending = self._full_exit_pending, False
        if count == 0:
            if after_full_exit:
                self.empty_full_exits += 1
            return HarvestResult(0, _EMPTY_OFFSETS, skipped)
        self.empty_full_exits = 0
        got = self._read_offsets(pos, count) if offsets else _EMPTY_OFFSETS
        self._mark_reset(pos, count)
        self.harvested += count
        return HarvestResult(count, got, skipped)

    @property
    def ring_stuck(self) -> bool:
        """At least :data:`STUCK_RING_FULL_EXITS` ring-full exits in a row found nothing
        to harvest: the ring overflowed (PVM host bug) and running on would spin."""
        return self.empty_full_exits >= STUCK_RING_FULL_EXITS

    def _dirty_run(self, pos: int) -> int:
        """Number of consecutive dirty entries from ring position ``pos`` (wrapping)."""
        size = self.ring_entries
        n = self._leading_dirty(pos, size)
        if n == size - pos and pos:
            n += self._leading_dirty(0, pos)
        return n

    def _leading_dirty(self, start: int, end: int) -> int:
        """Length of the run of dirty entries at ``start`` (not past ``end``).

        Dirty and not yet harvested is ``flags == DIRTY`` exactly: per the uapi's
        lifecycle table a set RESET bit means "to reset", whatever the DIRTY bit says.
        One comparison into a preallocated mask, then ``argmax`` finds the first clean.
        """
        if start == end:
            return 0
        clean = self._clean[start:end]
        np.not_equal(self._flags[start:end], uapi.KVM_DIRTY_GFN_F_DIRTY, out=clean)
        first = int(clean.argmax())
        return first if clean[first] else end - start

    def _read_offsets(self, pos: int, count: int) -> npt.NDArray[np.uint64]:
        end = pos + count
        size = self.ring_entries
        if end <= size:
            return self._offsets[pos:end].copy()
        return np.concatenate((self._offsets[pos:], self._offsets[: end - size]))

    def _mark_reset(self, pos: int, count: int) -> None:
        end = pos + count
        size = self.ring_entries
        if end <= size:
            self._flags[pos:end] = uapi.KVM_DIRTY_GFN_F_RESET
        else:
            self._flags[pos:] = uapi.KVM_DIRTY_GFN_F_RESET
            self._flags[: end - size] = uapi.KVM_DIRTY_GFN_F_RESET

    def _gap_before_dirty(self, pos: int) -> int:
        """Distance from ``pos`` to the first DIRTY entry after it (0: none anywhere)."""
        dirty = np.flatnonzero(self._flags == uapi.KVM_DIRTY_GFN_F_DIRTY)
        if dirty.size == 0:
            return 0
        return int(((dirty - pos) % self.ring_entries).min())

    # -- teardown ----------------------------------------------------------------

    def close(self) -> None:
        """Unmap the ``kvm_run`` page and the ring, close the fd (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._run = None
        self._ring = None
        self._flags = np.zeros(0, dtype=np.uint32)
        self._offsets = np.zeros(0, dtype=np.uint64)
        self._clean = np.zeros(0, dtype=np.bool_)
        for mapping in (self._ring_map, self._run_map):
            if mapping is not None:
                mapping.close()
        self._ring_map = self._run_map = None
        if getattr(self, "fd", -1) >= 0:
            os.close(self.fd)
            self.fd = -1


def _unmap(mapping: mmap.mmap | None) -> None:
    """Unmap now, or (while a caller still holds a view of it) when the last view dies."""
    if mapping is None:
        return
    # On BufferError the exporting view keeps the mmap object; its deallocation unmaps.
    with contextlib.suppress(BufferError):
        mapping.close()


class KvmVm(Closing):
    """A VM with ``ram_size`` bytes of RAM at GPA 0 (slot 0) and ``nr_vcpus`` vCPUs.

    ``ring_entries``: dirty ring size per vCPU (a power of two, at least 256 and at
    most :func:`dirty_ring_max_entries`), or 0 for the dirty bitmap.  The ring cap is
    enabled before any vCPU exists, with ``KVM_CAP_DIRTY_LOG_RING_ACQ_REL`` when the
    host offers it.  Dirty logging starts off (:meth:`set_dirty_logging`).
    """

    def __init__(self, ram_size: int, nr_vcpus: int, ring_entries: int = 0) -> None:
        if ram_size <= 0 or ram_size % PAGE_SIZE:
            raise ValueError(f"RAM size {ram_size} is not a positive multiple of {PAGE_SIZE}")
        if nr_vcpus <= 0:
            raise ValueError("at least one vCPU")
        self.ram_size = ram_size
        self.ring_entries = ring_entries
        #: whether the ring was enabled with the acquire/release cap
        self.ring_acq_rel = False
        self.dirty_logging = False
        self.vcpus: list[KvmVcpu] = []
        self._closed = False
        self.fd = -1
        self._ram_map: mmap.mmap | None = None
        self.memory: npt.NDArray[np.uint8] = np.zeros(0, dtype=np.uint8)
        self._bitmap: npt.NDArray[np.uint64] = np.zeros(
            (ram_size // PAGE_SIZE + 63) // 64, dtype=np.uint64
        )
        try:
            self._create(nr_vcpus)
        except BaseException:
            self.close()
            raise

    def _create(self, nr_vcpus: int) -> None:
        kvm = _open_kvm()
        try:
            max_vcpus = _check_extension(kvm, uapi.KVM_CAP_MAX_VCPUS) or _check_extension(
                kvm, uapi.KVM_CAP_NR_VCPUS
            )
            if nr_vcpus > max_vcpus:
                raise ValueError(f"{nr_vcpus} vCPUs, KVM allows {max_vcpus}")
            mmap_size = _ioctl(kvm, uapi.KVM_GET_VCPU_MMAP_SIZE)
            self.fd = _ioctl(kvm, uapi.KVM_CREATE_VM, 0)
        finally:
            os.close(kvm)
        if self.ring_entries:
            self._enable_ring()
        # Guest RAM: one private anonymous mapping, registered as slot 0 at GPA 0.
        self._ram_map = mmap.mmap(
            -1, self.ram_size, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS,
            mmap.PROT_READ | mmap.PROT_WRITE,
        )  # fmt: skip
        self.memory = np.frombuffer(self._ram_map, dtype=np.uint8)
        self._set_slot(0)
        for index in range(nr_vcpus):
            self.vcpus.append(KvmVcpu(self.fd, index, mmap_size, self.ring_entries))

    def _enable_ring(self) -> None:
        entries = self.ring_entries
        gfn_size = DIRTY_GFN_DTYPE.itemsize
        if entries & (entries - 1) or entries < RING_MIN_ENTRIES:
            raise ValueError(f"dirty ring size {entries}: not a power of two >= 256")
        for cap in (uapi.KVM_CAP_DIRTY_LOG_RING_ACQ_REL, uapi.KVM_CAP_DIRTY_LOG_RING):
            max_bytes = _check_extension(self.fd, cap)
            if max_bytes:
                break
        else:
            raise OSError("KVM has no dirty ring (KVM_CAP_DIRTY_LOG_RING)")
        if entries * gfn_size > max_bytes:
            raise ValueError(f"dirty ring size {entries}: KVM allows {max_bytes // gfn_size}")
        enable = uapi.KvmEnableCap(cap=cap)
        enable.args[0] = entries * gfn_size
        _ioctl(self.fd, uapi.KVM_ENABLE_CAP, enable)
        self.ring_acq_rel = cap == uapi.KVM_CAP_DIRTY_LOG_RING_ACQ_REL

    def _set_slot(self, flags: int) -> None:
        region = uapi.KvmUserspaceMemoryRegion(
            slot=RAM_SLOT,
            flags=flags,
            guest_phys_addr=0,
            memory_size=self.ram_size,
            userspace_addr=self.memory.ctypes.data,
        )
        _ioctl(self.fd, uapi.KVM_SET_USER_MEMORY_REGION, region)

    # -- dirty tracking ----------------------------------------------------------------

    def set_dirty_logging(self, enabled: bool) -> None:
        """Set or clear ``KVM_MEM_LOG_DIRTY_PAGES`` on the RAM slot.

        Enabling write-protects every page: the next write to each is logged (ring
        entry or bitmap bit).  Disabling leaves entries already in the rings there.
        """
        self._set_slot(uapi.KVM_MEM_LOG_DIRTY_PAGES if enabled else 0)
        self.dirty_logging = enabled

    def reset_dirty_rings(self) -> int:
        """``KVM_RESET_DIRTY_RINGS``: re-protect and free every entry marked for reset
        (all vCPUs); returns how many KVM reset."""
        return _ioctl(self.fd, uapi.KVM_RESET_DIRTY_RINGS)

    def get_dirty_bitmap(self) -> npt.NDArray[np.uint64]:
        """Bitmap mode: ``KVM_GET_DIRTY_LOG`` of the RAM slot, one bit per page dirtied
        since the previous call (KVM clears and re-protects).  The array is reused by
        the next call."""
        if self.ring_entries:
            raise ValueError("KVM_GET_DIRTY_LOG needs a VM without dirty ring")
        log = uapi.KvmDirtyLog(slot=RAM_SLOT, dirty_bitmap=self._bitmap.ctypes.data)
        _ioctl(self.fd, uapi.KVM_GET_DIRTY_LOG, log)
        return self._bitmap

    def get_dirty_log(self) -> int:
        """Bitmap mode: number of pages dirtied since the previous call."""
        return int(np.bitwise_count(self.get_dirty_bitmap()).sum())

    # -- teardown -------------------------------------------------------------------

    def close(self) -> None:
        """Close every vCPU, the VM fd and unmap guest RAM (idempotent).

        Views of :attr:`memory` kept by the caller keep the RAM mapping alive until
        they are garbage; everything else is released here.
        """
        if self._closed:
            return
        self._closed = True
        for vcpu in self.vcpus:
            vcpu.close()
        self.vcpus = []
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        self.memory = np.zeros(0, dtype=np.uint8)
        _unmap(self._ram_map)
        self._ram_map = None
