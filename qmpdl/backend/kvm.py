"""The ``kvm`` accelerator: real vCPUs in /dev/kvm running qmpdl's guest programs.

One OS thread per vCPU runs ``KVM_RUN`` (``fcntl.ioctl`` releases the GIL).  What each
thread does at an exit, as QEMU's vCPU threads do:

* ``KVM_EXIT_DIRTY_RING_FULL``: harvest this vCPU's ring while the dirty limit is in
  service (every ring otherwise), always followed by ``KVM_RESET_DIRTY_RINGS``; then, if
  a penalty applies to it, sleep ``throttle_us_per_full``.  A ring KVM reports full
  with nothing in it (this host's KVM can overflow its rings) is never spun on: after a
  few empty harvests the VM stops with ``internal-error``;
* ``KVM_EXIT_HLT`` (the idle program): wait until kicked;
* ``EINTR`` (a kick): acknowledge it and go on;
* anything else (shutdown, failed entry, internal error, I/O): a log line, then the VM
  stops in ``internal-error`` with a STOP event, as QEMU does.

A *kick* (QEMU's): set ``immediate_exit`` and send SIGUSR1 to the vCPU thread, then wait
until the thread acknowledges that it left the guest.  A vCPU asleep in its penalty
acknowledges at once when the profile's sleep is interruptible (QEMU before 8.2 used
``usleep``, which the signal cuts short), else when its sleep ends; with the ``target``
throttle controller (``keep_penalty_sleep_on_kick``) it counts as out of the guest at
once and sleeps on, and the entries flushes took from its ring lengthen its next
penalty by their share of a ring.  Flushing the rings (every measurement window) and
pausing (``stop``) are kicks.  A reaper thread harvests every ring once a second unless
the dirty limit is in service.  Ring-full exits are counted and penalty sleeps timed
per vCPU (the throttle's ``target`` controller and ``--metrics`` read them).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from qmpdl import report
from qmpdl.backend.base import PAGE_SIZE, RamBlock, VcpuBackend, VcpuProgress
from qmpdl.backend.registers import SEGMENTS, Segment, X86Registers, x86_reset_state
from qmpdl.backend.registry import Accelerator, BackendRequest, SerialPort
from qmpdl.clock import Clock
from qmpdl.errors import ConfigError
from qmpdl.kvm import guest
from qmpdl.kvm.uapi import (
    KVM_EXIT_DIRTY_RING_FULL,
    KVM_EXIT_HLT,
    KVM_EXIT_INTR,
    KVM_EXIT_IO,
    KVM_EXIT_IO_OUT,
    exit_reason_name,
)
from qmpdl.kvm.vm import KvmVcpu, KvmVm
from qmpdl.threadname import name_this_thread
from qmpdl.trace import NULL_TRACER, Tracer
from qmpdl.workload import Workload

log = logging.getLogger(__name__)

#: QEMU's SIG_IPI.
KICK_SIGNAL = signal.SIGUSR1
#: Ring resyncs in a row that still find nothing before a vCPU is given up.
RESYNC_LIMIT = 3
#: Seconds between the reaper's harvests.
REAPER_PERIOD = 1.0
#: QEMU's CPU_THROTTLE_TIMESLICE_NS (auto-converge), in seconds.
CPU_THROTTLE_TIMESLICE = 0.010


@dataclass
class _VcpuState:
    """What the backend and one vCPU thread share (under ``KvmBackend._cond``)."""

    vcpu: KvmVcpu
    workload: Workload
    #: kicks requested / acknowledged
    kicks: int = 0
    acked: int = 0
    #: set by every kick: ends a halt (the idle program)
    wake: threading.Event = field(default_factory=threading.Event)
    #: set by kicks that cut a penalty sleep short (7.2), and at shutdown
    cut_sleep: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    native_id: int = 0
    parked: bool = False
    failed_resyncs: int = 0
    #: asleep in a penalty that kicks leave alone (``keep_penalty_sleep_on_kick``)
    sleeping: bool = False
    #: dirty-ring-full exits so far
    ring_fulls: int = 0
    #: seconds slept in penalties, and when the current penalty sleep began
    slept: float = 0.0
    sleep_began: float | None = None
    #: entries harvested from its ring since its last penalty (with
    #: ``keep_penalty_sleep_on_kick``: the next penalty is charged for them too)
    charged: int = 0
    #: auto-converge: seconds to sleep once the pending kick is served
    throttle_sleep: float = 0.0
    #: work for the vCPU thread, run once it is out of the guest (QEMU's run_on_cpu)
    work: list[Callable[[], None]] = field(default_factory=list)


class KvmBackend(VcpuBackend):
    """Real vCPUs with KVM's dirty ring."""

    def __init__(
        self,
        workloads: Sequence[Workload],
        ram_size: int,
        ring_size: int,
        clock: Clock,
        *,
        kick_interrupts_sleep: bool,
        start_paused: bool = False,
        serial: SerialPort | None = None,
        tracer: Tracer = NULL_TRACER,
    ) -> None:
        self.clock = clock
        #: QEMU's trace events of the vCPUs (``dirtylimit_vcpu_execute``)
        self.tracer = tracer
        #: called (from any thread) when a vCPU cannot go on; given at :meth:`start`
        self._on_internal_error: Callable[[str], None] = logging.getLogger("qmpdl").error
        self.ring_size = ring_size
        self.nr_vcpus = len(workloads)
        self.ram_size = ram_size
        self.kick_interrupts_sleep = kick_interrupts_sleep
        #: kicks neither cut penalty sleeps nor wait for them (``target`` controller)
        self._keep_sleep = False
        self.vm = KvmVm(ram_size, self.nr_vcpus, ring_size)
        #: where the guests' pass characters go (QEMU's ``-serial``), if anywhere
        self.serial = serial
        self._serial_lock = threading.Lock()
        self.layout = guest.load_programs(
            self.vm, list(workloads), port=guest.COM1 if serial is not None else 0
        )
        self._cond = threading.Condition()
        self._vcpus = [_VcpuState(v, w) for v, w in zip(self.vm.vcpus, workloads, strict=True)]
        self._paused = True
        self._start_paused = start_paused
        self._shutdown = threading.Event()
        self._in_service = False
        self._penalties = [0] * self.nr_vcpus
        #: serialises harvests (QEMU reaps under the BQL / slots lock)
        self._reap_lock = threading.Lock()
        self._dirty = [0] * self.nr_vcpus
        self._logging = False
        self._reaper: threading.Thread | None = None
        self._closed = False
        #: migration: pages dirtied since the last sync (None: not tracking)
        self._mig_bitmap: npt.NDArray[np.bool_] | None = None
        self._cpu_throttle = 0
        self._throttle_wakeup = threading.Event()
        self._throttle_thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    def build(cls, request: BackendRequest, accelerator: Accelerator) -> KvmBackend:
        """Real vCPUs; the accelerator's checks and texts are QEMU's."""
        from qmpdl.kvm.vm import dirty_ring_max_entries, kvm_init_error

        config, profile = request.config, request.profile
        ring = config.accel.dirty_ring_size
        where = f"-accel {accelerator.name}" + (f",dirty-ring-size={ring}" if ring else "")
        problem = kvm_init_error()
        if problem is not None:
            failed = f"{where}: failed to initialize kvm: {os.strerror(problem.error)}"
            if profile.has("kvm-init-error-report"):
                message = problem.text(error_report=True)
                raise ConfigError(f"{where}: {message}\n{report.PROG}: {failed}")
            # QEMU: a bare line before 9.2
            print(problem.text(error_report=False), file=sys.stderr, flush=True)
            raise ConfigError(failed)
        if ring:
            maximum = dirty_ring_max_entries()
            if not maximum:
                report.warning("KVM dirty ring not available, using bitmap method")
                ring = 0
            elif ring > maximum:
                raise ConfigError(
                    f"{where}: KVM dirty ring size {ring} too big (maximum is {maximum}).  "
                    f"Please use a smaller value.\n{report.PROG}: {where}: failed to "
                    "initialize kvm: Invalid argument"
                )
        try:
            return cls(
                request.workloads,
                config.ram_size,
                ring,
                request.clock,
                kick_interrupts_sleep=request.kick_interrupts_sleep,
                start_paused=request.start_paused,
                serial=request.serial,
                tracer=request.tracer,
            )
        except ValueError as e:
            raise ConfigError(f"--workload: {e}") from None
        except OSError as e:
            raise ConfigError(
                f"-accel {accelerator.name}: failed to initialize kvm: {e.strerror or e}"
            ) from None

    def start(self, on_internal_error: Callable[[str], None]) -> None:
        self._on_internal_error = on_internal_error
        # The kick signal only has to interrupt KVM_RUN (EINTR); its handler does nothing.
        signal.signal(KICK_SIGNAL, lambda signum, frame: None)
        signal.siginterrupt(KICK_SIGNAL, True)
        for state in self._vcpus:
            state.thread = threading.Thread(
                target=self._bh_vcpu,
                args=(state,),
                name=f"CPU {state.vcpu.index}/KVM",
                daemon=True,
            )
            state.thread.start()
        if self.ring_size:
            self._reaper = threading.Thread(target=self._bh_reaper, name="kvm-reaper", daemon=True)
            self._reaper.start()
        with self._cond:
            while not all(s.native_id for s in self._vcpus):
                self._cond.wait()
        if not self._start_paused:
            self.resume()

    def shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._shutdown.set()
        with self._cond:
            self._paused = True
            self._cond.notify_all()
        for state in self._vcpus:
            self._kick(state)
        for state in self._vcpus:
            if state.thread is not None:
                state.thread.join()
        if self._reaper is not None:
            self._reaper.join()
        self._throttle_wakeup.set()
        if self._throttle_thread is not None:
            self._throttle_thread.join()
        self.vm.close()

    # ------------------------------------------------------------------ kicks

    def _kick(self, state: _VcpuState) -> int:
        """Ask one vCPU to leave the guest; returns the kick number to wait for."""
        with self._cond:
            state.kicks += 1
            number = state.kicks
        state.vcpu.immediate_exit = True
        state.wake.set()
        if (
            (self.kick_interrupts_sleep and not self._keep_sleep)
            or self._shutdown.is_set()
            or (self._keep_sleep and self._paused)
        ):
            state.cut_sleep.set()
        if state.native_id and state.thread is not None and state.thread.is_alive():
            with contextlib.suppress(ProcessLookupError):
                signal.pthread_kill(state.thread.ident or 0, KICK_SIGNAL)
        return number

    def _kick_all(self) -> None:
        """Kick every vCPU and wait until each has left the guest (or is parked)."""
        numbers = [self._kick(state) for state in self._vcpus]
        with self._cond:
            while not all(
                s.acked >= n
                or s.parked
                or s.sleeping
                or s.thread is None
                or not s.thread.is_alive()
                for s, n in zip(self._vcpus, numbers, strict=True)
            ):
                self._cond.wait(0.5)

    def _ack(self, state: _VcpuState) -> None:
        with self._cond:
            if state.acked != state.kicks:
                state.acked = state.kicks
                self._cond.notify_all()

    # ------------------------------------------------------------------ the vCPU thread

    def _bh_vcpu(self, state: _VcpuState) -> None:
        name_this_thread()
        with self._cond:
            state.native_id = threading.get_native_id()
            self._cond.notify_all()
        vcpu = state.vcpu
        while not self._shutdown.is_set():
            with self._cond:
                if self._paused:
                    state.parked = True
                    state.acked = state.kicks
                    self._cond.notify_all()
                    while self._paused and not self._shutdown.is_set():
                        self._cond.wait()
                    state.parked = False
                    continue
                pending = state.acked != state.kicks
            vcpu.immediate_exit = False
            with self._cond:
                pending = pending or state.acked != state.kicks
            if pending:
                self._ack(state)
                self._run_work(state)
                self._throttle_pause(state)
                continue
            try:
                reason = vcpu.run()
            except InterruptedError:
                reason = KVM_EXIT_INTR
            self._ack(state)
            self._run_work(state)
            self._throttle_pause(state)
            if reason == KVM_EXIT_DIRTY_RING_FULL:
                self._ring_full(state)
            elif reason == KVM_EXIT_HLT:
                state.wake.wait()
                state.wake.clear()
            elif reason == KVM_EXIT_IO and self._serial_out(vcpu):
                pass
            elif reason != KVM_EXIT_INTR:
                self._unexpected_exit(state, reason)

    def _run_work(self, state: _VcpuState) -> None:
        with self._cond:
            work, state.work = state.work, []
        for item in work:
            item()

    def _run_on_vcpu(self, state: _VcpuState, fn: Callable[[], None]) -> None:
        """Run ``fn`` in the vCPU's own thread while it is out of the guest, and wait."""
        done = threading.Event()

        def item() -> None:
            try:
                fn()
            finally:
                done.set()

        with self._cond:
            parked = state.parked or state.thread is None or not state.thread.is_alive()
            if not parked:
                state.work.append(item)
        if parked:
            fn()
            return
        self._kick(state)
        done.wait(5)

    def read_physical(self, addr: int, size: int) -> bytes:
        end = min(addr + size, self.ram_size)
        data = bytes(self.vm.memory[addr:end]) if addr < end else b""
        return data + bytes(size - len(data))

    def registers(self, cpu_index: int) -> X86Registers:
        state = self._vcpus[cpu_index]
        out: list[X86Registers] = []

        def read() -> None:
            regs, sregs = state.vcpu.get_regs(), state.vcpu.get_sregs()
            general = {
                name: int(getattr(regs, "r" + name[1:]))
                for name in ("eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi")
            }
            general.update({f"r{i}": int(getattr(regs, f"r{i}")) for i in range(8, 16)})
            segments = {
                name: Segment(int(seg.selector), int(seg.base), int(seg.limit))
                for name in SEGMENTS
                for seg in (getattr(sregs, name),)
            }
            out.append(X86Registers(general, int(regs.rflags), int(regs.rip), segments))

        self._run_on_vcpu(state, read)
        return out[0] if out else x86_reset_state()

    def _throttle_pause(self, state: _VcpuState) -> None:
        """Auto-converge's sleep, requested by the throttle thread with a kick."""
        sleep, state.throttle_sleep = state.throttle_sleep, 0.0
        if sleep > 0 and not self._shutdown.is_set():
            self._shutdown.wait(sleep)

    def _ring_full(self, state: _VcpuState) -> None:
        state.ring_fulls += 1
        own = self._in_service
        harvested = self._harvest([state] if own else self._vcpus)
        if harvested[state.vcpu.index] == 0 and state.vcpu.ring_stuck:
            # KVM says full, the ring holds nothing where we read: it overflowed (this
            # host's KVM under tight write loops).  Never spin: find the entries.
            if self._resync(state):
                return
            state.failed_resyncs += 1
            if state.failed_resyncs >= RESYNC_LIMIT:
                self._fail(
                    f"vCPU {state.vcpu.index}: KVM reports its dirty ring full but it is "
                    "empty even after a resync (ring overflow, a host KVM bug); "
                    "stopping the VM"
                )
            return
        state.failed_resyncs = 0
        mine, others = harvested[state.vcpu.index], 0
        if self._keep_sleep:
            with self._reap_lock:
                others, state.charged = max(state.charged - mine, 0), 0
        penalty = self._penalties[state.vcpu.index] if self._in_service else 0
        if penalty > 0:
            self.tracer("dirtylimit_vcpu_execute", f"CPU[{state.vcpu.index}] sleep {penalty} us")
            state.cut_sleep.clear()
            if self._shutdown.is_set():
                return
            if self._keep_sleep:
                # Charged per page: what flushes took from the ring since the last
                # penalty lengthens this one by its share of a ring.
                if mine > 0:
                    penalty = round(penalty * (1 + min(others, mine) / mine))
                # Kicks find the vCPU out of the guest: they harvest and let it sleep on.
                with self._cond:
                    state.sleeping = True
                    state.sleep_began = self.clock.monotonic()
                    self._cond.notify_all()
                try:
                    state.cut_sleep.wait(penalty / 1e6)
                finally:
                    with self._cond:
                        state.sleeping = False
                        if state.sleep_began is not None:
                            state.slept += self.clock.monotonic() - state.sleep_began
                        state.sleep_began = None
                return
            # A kick ends the sleep early only where usleep did (before 8.2).
            began = self.clock.monotonic()
            with self._cond:
                state.sleep_began = began
            try:
                state.cut_sleep.wait(penalty / 1e6)
            finally:
                with self._cond:
                    state.slept += self.clock.monotonic() - began
                    state.sleep_began = None

    def _serial_out(self, vcpu: KvmVcpu) -> bool:
        """A pass character written to COM1; False for any other port access."""
        io = vcpu.kvm_run.exit.io
        if self.serial is None or io.port != guest.COM1 or io.direction != KVM_EXIT_IO_OUT:
            return False
        with self._serial_lock:
            self.serial.write(vcpu.io_data())
            self.serial.flush()
        return True

    def _resync(self, state: _VcpuState) -> bool:
        """Skip the recycled part of an overflowed ring (own thread only)."""
        with self._reap_lock:
            result = state.vcpu.harvest(offsets=False, resync=True)
            self._dirty[state.vcpu.index] += result.count
            self.vm.reset_dirty_rings()
        if result.skipped:
            log.warning(
                "vCPU %d: dirty ring overflowed (host KVM bug); skipped %d entries",
                state.vcpu.index,
                result.skipped,
            )
        return result.count > 0

    def _unexpected_exit(self, state: _VcpuState, reason: int) -> None:
        self._fail(
            f"vCPU {state.vcpu.index}: unexpected KVM exit {exit_reason_name(reason)} "
            f"({reason}); stopping the VM"
        )

    def _fail(self, message: str) -> None:
        with self._cond:
            self._paused = True
            self._cond.notify_all()
        threading.Thread(target=self._on_internal_error, args=(message,), daemon=True).start()

    # ------------------------------------------------------------------ harvesting

    def _harvest(self, states: Sequence[_VcpuState]) -> list[int]:
        """Harvest the rings of ``states`` into their counters; entries per vCPU."""
        counts = [0] * self.nr_vcpus
        with self._reap_lock:
            bitmap = self._mig_bitmap
            for state in states:
                result = state.vcpu.harvest(offsets=bitmap is not None)
                counts[state.vcpu.index] = result.count
                self._dirty[state.vcpu.index] += result.count
                if self._keep_sleep and self._in_service:
                    state.charged += result.count
                if bitmap is not None and result.count:
                    offsets = result.offsets[result.offsets < len(bitmap)]
                    bitmap[offsets.astype(np.int64)] = True
            self.vm.reset_dirty_rings()
        return counts

    def _bh_reaper(self) -> None:
        name_this_thread()
        while not self._shutdown.wait(REAPER_PERIOD):
            if not self._in_service and self._logging:
                self._harvest(self._vcpus)

    # ------------------------------------------------------------------ VcpuBackend

    def pause(self) -> None:
        with self._cond:
            self._paused = True
            self._cond.notify_all()
        self._kick_all()
        with self._cond:
            while not all(
                s.parked or s.thread is None or not s.thread.is_alive() for s in self._vcpus
            ):
                self._cond.wait(0.5)

    def resume(self) -> None:
        with self._cond:
            self._paused = False
            self._cond.notify_all()

    def set_dirty_logging(self, enabled: bool) -> None:
        if not enabled and self.ring_size:
            self._harvest(self._vcpus)
        self._logging = enabled
        self.vm.set_dirty_logging(enabled)

    def update_throttle(self, in_service: bool, penalties_us: Sequence[int]) -> None:
        self._penalties = list(penalties_us)
        self._in_service = in_service

    def keep_penalty_sleep_on_kick(self, keep: bool) -> None:
        self._keep_sleep = keep

    def penalty_sleep_seconds(self) -> list[float] | None:
        now = self.clock.monotonic()
        with self._cond:
            return [
                s.slept + (now - s.sleep_began if s.sleep_began is not None else 0.0)
                for s in self._vcpus
            ]

    def ring_full_exits(self) -> list[int] | None:
        with self._cond:
            return [s.ring_fulls for s in self._vcpus]

    def dirty_pages(self) -> list[int]:
        with self._reap_lock:
            return list(self._dirty)

    def flush_dirty_rings(self) -> None:
        self._kick_all()
        if self.ring_size:
            self._harvest(self._vcpus)

    def sync_dirty_bitmap(self) -> int:
        return self.vm.get_dirty_log()

    def ram_blocks(self) -> list[RamBlock]:
        return [RamBlock("pc.ram", self.ram_size)]

    def page_digests(self, block: str, pages: Sequence[int]) -> list[int]:
        memory = self.vm.memory
        return [zlib.crc32(memory[p * PAGE_SIZE : (p + 1) * PAGE_SIZE].data) for p in pages]

    def kvm_stats_fds(self) -> tuple[int, list[int]]:
        return self.vm.fd, [v.fd for v in self.vm.vcpus]

    def thread_ids(self) -> list[int]:
        return [s.native_id for s in self._vcpus]

    def progress(self) -> list[VcpuProgress]:
        out = []
        for state in self._vcpus:
            passes = guest.passes(self.vm, state.vcpu.index)
            wss = self.layout[state.vcpu.index].wss_pages
            out.append(
                VcpuProgress(
                    state.vcpu.index,
                    state.workload.kind,
                    float(passes),
                    float(passes * wss * PAGE_SIZE),
                )
            )
        return out

    # ------------------------------------------------------------------ migration

    @property
    def ram_pages(self) -> int:
        return self.ram_size // PAGE_SIZE

    def _rows(self) -> npt.NDArray[np.uint8]:
        return self.vm.memory[: self.ram_pages * PAGE_SIZE].reshape(-1, PAGE_SIZE)

    def migration_sync(self) -> npt.NDArray[np.bool_]:
        """With the ring: kick every vCPU, harvest every ring, and return the pages the
        harvests saw since the last sync.  Without: KVM's dirty bitmap."""
        if self._mig_bitmap is None:
            with self._reap_lock:
                self._mig_bitmap = np.zeros(self.ram_pages, dtype=np.bool_)
            if not self.ring_size:
                self.vm.get_dirty_bitmap()
            return np.ones(self.ram_pages, dtype=np.bool_)
        if self.ring_size:
            self.flush_dirty_rings()
            with self._reap_lock:
                dirty = self._mig_bitmap.copy()
                self._mig_bitmap[:] = False
            return dirty
        words = self.vm.get_dirty_bitmap()
        bits = np.unpackbits(words.view(np.uint8), bitorder="little").astype(np.bool_)
        return bits[: self.ram_pages]

    def migration_stop(self) -> None:
        with self._reap_lock:
            self._mig_bitmap = None

    def read_pages(self, pages: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.bool_], bytes]:
        rows = self._rows()[pages]
        zero: npt.NDArray[np.bool_] = np.logical_not(rows.any(axis=1))
        return zero, rows[~zero].tobytes()

    def write_pages(
        self, pages: npt.NDArray[np.int64], zero: npt.NDArray[np.bool_], data: bytes
    ) -> None:
        rows = self._rows()
        rows[pages[zero]] = 0
        rows[pages[~zero]] = np.frombuffer(data, dtype=np.uint8).reshape(-1, PAGE_SIZE)

    def export_state(self) -> dict[str, Any]:
        # The programs keep all their state in guest memory (their parameter blocks):
        # the destination starts them again at their loop and they count on.
        return {"kvm": {"programs": [p.program.name for p in self.layout]}}

    def import_state(self, state: dict[str, Any]) -> None:
        mine = [p.program.name for p in self.layout]
        theirs = (
            state.get("kvm", {}).get("programs") if isinstance(state.get("kvm"), dict) else None
        )
        if theirs != mine:
            raise ValueError(f"the guest programs {theirs} do not match this machine's {mine}")

    def set_cpu_throttle(self, percent: int) -> None:
        self._cpu_throttle = percent
        if percent and self._throttle_thread is None:
            self._throttle_thread = threading.Thread(
                target=self._bh_cpu_throttle, name="cpu-throttle", daemon=True
            )
            self._throttle_thread.start()
        self._throttle_wakeup.set()

    def _bh_cpu_throttle(self) -> None:
        """QEMU's cpu-throttle timer: every timeslice / (1 - pct) each vCPU is asked to
        sleep pct / (1 - pct) timeslices."""
        name_this_thread()
        while not self._shutdown.is_set():
            percent = self._cpu_throttle
            if not percent:
                self._throttle_wakeup.wait()
                self._throttle_wakeup.clear()
                continue
            share = percent / 100
            if self._throttle_wakeup.wait(CPU_THROTTLE_TIMESLICE / (1 - share)):
                self._throttle_wakeup.clear()
                continue
            for state in self._vcpus:
                state.throttle_sleep = share / (1 - share) * CPU_THROTTLE_TIMESLICE
                self._kick(state)
