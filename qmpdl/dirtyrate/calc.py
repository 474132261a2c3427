"""``calc-dirty-rate`` / ``query-dirty-rate``: one asynchronous measurement at a time.

``calc-dirty-rate`` checks its arguments in QEMU's order and with its texts, resets the
status to ``unstarted`` and starts a ``get_dirtyrate`` thread, which moves it to
``measuring`` and, when done, ``measured``.  Three modes:

* ``page-sampling``: hash ``sample-pages`` random pages per GiB of each RAM block,
  wait, hash them again; rate = changed samples x block MiB / (samples x seconds);
* ``dirty-ring``: per-vCPU rates from the dirty ring over the window (summed for the VM);
* ``dirty-bitmap``: pages newly dirty in the log bitmap over the window.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from qmpdl.backend.base import GuestMemory
from qmpdl.cint import to_i64
from qmpdl.clock import Clock, start_thread
from qmpdl.dirtyrate.measure import (
    DirtyRateMeasurer,
    MeasurementAbortedError,
    now_ms,
    rate_mib_per_s,
)
from qmpdl.errors import QMPError
from qmpdl.profile import Profile
from qmpdl.qapi.types import (
    DirtyRateInfo,
    DirtyRateStatus,
    DirtyRateVcpu,
    TimeUnit,
)
from qmpdl.qapi.types import DirtyRateMeasureMode as MeasureMode
from qmpdl.target import PAGE_SIZE
from qmpdl.threadname import name_this_thread
from qmpdl.trace import NULL_TRACER, Tracer
from qmpdl.vm.bql import BigLock
from qmpdl.vm.dirtylog import DirtyLog, DirtyLogUser

if TYPE_CHECKING:
    import random

MIN_SAMPLE_PAGES = 128
MAX_SAMPLE_PAGES = 16384
DEFAULT_SAMPLE_PAGES = 512
#: RAM blocks smaller than this (bytes) are not sampled.
MIN_RAMBLOCK_SIZE = 128 << 10


@dataclass
class _Stat:
    dirty_rate: int = -1
    start_time: int = 0
    #: milliseconds from 8.2, else seconds (as QEMU stores it)
    calc_time: int = 0
    sample_pages: int = 0
    vcpu_rates: list[int] = field(default_factory=list)


class DirtyRateCalc(DirtyRateMeasurer):
    """The machine-wide dirty-rate measurement state (QEMU keeps it in statics)."""

    def __init__(
        self,
        *,
        dirty_log: DirtyLog,
        memory: GuestMemory,
        clock: Clock,
        profile: Profile,
        shutdown: threading.Event,
        bql: BigLock | None = None,
        rng: random.Random | None = None,
        tracer: Tracer = NULL_TRACER,
    ) -> None:
        super().__init__(dirty_log, clock, profile, shutdown, bql=bql, tracer=tracer)
        #: page sampling reads guest RAM
        self.memory = memory
        #: page sampling's choices (made when a measurement first samples)
        self._rng = rng
        self._lock = threading.Lock()
        self.status = DirtyRateStatus.UNSTARTED
        self.mode = MeasureMode.PAGE_SAMPLING
        self._stat = _Stat()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ QMP

    def calc_dirty_rate(
        self,
        calc_time: int,
        calc_time_unit: TimeUnit | None,
        sample_pages: int | None,
        mode: MeasureMode | None,
    ) -> None:
        """``calc-dirty-rate``: validate, then start a measurement thread."""
        if self.status == DirtyRateStatus.MEASURING:
            raise QMPError("the dirty rate is already being measured.")
        if self.profile.has("calc-time-unit"):
            unit = calc_time_unit or TimeUnit.SECOND
            calc_time_ms = to_i64(calc_time * 1000) if unit == TimeUnit.SECOND else calc_time
            if not 50 <= calc_time_ms <= 60000:
                raise QMPError("Calculation time is out of range [50ms, 60000ms].")
            stored_calc_time = calc_time_ms
        else:
            if not 1 <= calc_time <= 60:
                raise QMPError("calc-time is out of range[1, 60].")
            calc_time_ms = calc_time * 1000
            stored_calc_time = calc_time
        mode = mode or MeasureMode.PAGE_SAMPLING
        if sample_pages is not None:
            if self.profile.has("sample-pages-page-sampling-only"):
                if mode != MeasureMode.PAGE_SAMPLING:
                    raise QMPError("sample-pages is used only in page-sampling mode")
            elif mode == MeasureMode.DIRTY_RING:
                raise QMPError("either sample-pages or dirty-ring can be specified.")
            if not MIN_SAMPLE_PAGES <= sample_pages <= MAX_SAMPLE_PAGES:
                raise QMPError(
                    f"sample-pages is out of range[{MIN_SAMPLE_PAGES}, {MAX_SAMPLE_PAGES}]."
                )
        else:
            sample_pages = DEFAULT_SAMPLE_PAGES
        ring = self.dirty_log.backend.ring_size > 0
        if (mode == MeasureMode.DIRTY_RING and not ring) or (
            mode == MeasureMode.DIRTY_BITMAP and ring
        ):
            raise QMPError(f"mode {mode} is not enabled, use other method instead.")
        with self._lock:
            self.status = DirtyRateStatus.UNSTARTED
            self.mode = mode
            self._stat = _Stat(
                dirty_rate=-1,
                start_time=self._start_time_s(),
                calc_time=stored_calc_time,
                sample_pages=sample_pages,
            )
        started = threading.Event()
        thread = threading.Thread(
            target=self._bh_measure,
            args=(mode, calc_time_ms, sample_pages, started),
            name="get_dirtyrate",
            daemon=True,
        )
        self._thread = thread
        start_thread(thread, self.clock)
        # QEMU's thread marks the measurement started within microseconds, before any
        # next command; a Python thread waits for the GIL, so the command waits for it.
        started.wait(1.0)

    def query_dirty_rate(self, calc_time_unit: TimeUnit | None = None) -> DirtyRateInfo:
        """``query-dirty-rate``."""
        with self._lock:
            stat = self._stat
            status = self.status
            mode = self.mode
        has_unit = self.profile.has("calc-time-unit")
        unit = calc_time_unit or TimeUnit.SECOND
        calc_time = stat.calc_time
        if has_unit and unit == TimeUnit.SECOND:
            calc_time = calc_time // 1000
        measured = status == DirtyRateStatus.MEASURED
        sample_pages = stat.sample_pages
        vcpus = None
        if measured and mode != MeasureMode.PAGE_SAMPLING:
            sample_pages = 0
        if measured and mode == MeasureMode.DIRTY_RING:
            vcpus = [DirtyRateVcpu(id=i, dirty_rate=r) for i, r in enumerate(stat.vcpu_rates)]
        return DirtyRateInfo(
            status=status,
            start_time=stat.start_time,
            calc_time=calc_time,
            calc_time_unit=unit if has_unit else None,
            sample_pages=sample_pages,
            mode=mode,
            dirty_rate=stat.dirty_rate if measured else None,
            vcpu_dirty_rate=vcpus,
        )

    def join(self, timeout: float | None = None) -> None:
        """Wait for a running measurement (tests; machine exit)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    # ------------------------------------------------------------------ measuring

    def _start_time_s(self) -> int:
        if self.profile.has("dirtyrate-start-time-epoch"):
            return int(self.clock.wall())
        return now_ms(self.clock) // 1000

    def _to_stored(self, ms: int) -> int:
        return ms if self.profile.has("calc-time-unit") else ms // 1000

    def _bh_measure(
        self, mode: MeasureMode, calc_time_ms: int, sample_pages: int, started: threading.Event
    ) -> None:
        name_this_thread()
        with self._lock:
            proceed = self.status == DirtyRateStatus.UNSTARTED
            if proceed:
                self.status = DirtyRateStatus.MEASURING
        started.set()
        if not proceed:
            return
        try:
            if mode == MeasureMode.DIRTY_RING:
                self._dirty_ring(calc_time_ms)
            elif mode == MeasureMode.DIRTY_BITMAP:
                self._dirty_bitmap(calc_time_ms)
            else:
                self._page_sampling(calc_time_ms, sample_pages)
        except MeasurementAbortedError:
            return
        self._trace("dirtyrate_calculate", f"dirty rate: {self._stat.dirty_rate} MB/s")
        with self._lock:
            if self.status == DirtyRateStatus.MEASURING:
                self.status = DirtyRateStatus.MEASURED

    def _dirty_ring(self, calc_time_ms: int) -> None:
        with self._bql:
            self.dirty_log.start(DirtyLogUser.DIRTY_RATE)
        self._stat.start_time = self._start_time_s()
        try:
            result = self.vcpu_calculate_dirtyrate(
                calc_time_ms, DirtyLogUser.DIRTY_RATE, one_shot=True
            )
        except MeasurementAbortedError:
            self.dirty_log.stop(DirtyLogUser.DIRTY_RATE)
            raise
        self._stat.calc_time = self._to_stored(result.duration_ms)
        self._stat.vcpu_rates = result.rates
        for i, rate in enumerate(result.rates):
            self._trace("dirtyrate_do_calculate_vcpu", f"vcpu[{i}]: {rate} MB/s")
        self._stat.dirty_rate = sum(result.rates)

    def _dirty_bitmap(self, calc_time_ms: int) -> None:
        with self._bql:
            self.dirty_log.start(DirtyLogUser.DIRTY_RATE)
            # The first sync may report every page dirty: discard it.
            self.dirty_log.sync()
        start_pages = self.dirty_log.total_dirty_pages
        start_ms = now_ms(self.clock)
        self._stat.start_time = self._start_time_s()
        try:
            duration = self.wait_window(calc_time_ms, start_ms)
        finally:
            if self._shutdown.is_set():
                self.dirty_log.stop(DirtyLogUser.DIRTY_RATE)
        self._stat.calc_time = self._to_stored(duration)
        self.dirty_log.sync()
        self.dirty_log.stop(DirtyLogUser.DIRTY_RATE)
        pages = self.dirty_log.total_dirty_pages - start_pages
        self._stat.dirty_rate = rate_mib_per_s(pages, duration, self.profile)

    def _page_sampling(self, calc_time_ms: int, sample_pages: int) -> None:
        start_ms = now_ms(self.clock)
        start_time = self._start_time_s()
        samples: list[tuple[str, int, list[int], list[int]]] = []
        for block in self.memory.ram_blocks():
            if block.size < MIN_RAMBLOCK_SIZE:
                continue
            count = (block.size * sample_pages) >> 30
            pages = block.size // PAGE_SIZE
            if not count or not pages:
                continue
            rng = self._rng
            if rng is None:
                import random

                rng = self._rng = random.Random()
            vfns = [rng.randrange(0, max(pages - 1, 1)) for _ in range(count)]
            samples.append((block.name, pages, vfns, self.memory.page_digests(block.name, vfns)))
        duration = self.wait_window(calc_time_ms, start_ms)
        self._stat.start_time = start_time
        self._stat.calc_time = self._to_stored(duration)
        dirty = total = block_mib = 0
        for name, pages, vfns, before in samples:
            after = self.memory.page_digests(name, vfns)
            dirty += sum(1 for a, b in zip(before, after, strict=True) if a != b)
            total += len(vfns)
            block_mib += (pages * PAGE_SIZE) >> 20
        if total:
            self._stat.dirty_rate = dirty * block_mib * 1000 // (total * duration)
