"""The simulated vCPUs: a closed-form model of writers, readers and dirty rings.

No threads and no clock here: :meth:`SimModel.advance` moves the whole machine from its
current time to a later one, processing every ring-full exit, penalty sleep, harvest and
reaper tick that falls in between.  Time is passed in by the caller (real or virtual),
and the state is a handful of numpy arrays, so thousands of vCPUs cost no threads and
advancing them is vectorised.

The model, per vCPU (all rates while the vCPU runs, i.e. not paused and not asleep):

* a *writer* touches page after page of its working set (``wss`` pages) at ``rate``
  pages/s; a page first written since the last harvest of this vCPU's ring takes one
  ring entry, so pages since the last harvest = ``min(written since, wss)``;
* its ring counts as full ``RING_RESERVED_ENTRIES`` entries before ``ring_size`` (KVM's
  soft-full); at that moment the vCPU exits, the ring is harvested (its own only, while
  the dirty limit is in service; every vCPU's ring otherwise) and, if a penalty applies
  to it, the vCPU sleeps ``penalty`` seconds before running on;
* a writer whose working set is smaller than the ring never fills it: only flushes,
  reaper ticks and other vCPUs' ring-full harvests empty it;
* a *reader* reads at its rate and never dirties anything; an *idle* vCPU does nothing.

Kicks (a flush of all rings, ``stop``) end a penalty sleep at once when
``kick_interrupts_sleep`` (QEMU before 8.2 used ``usleep``, which a signal cuts short);
otherwise the caller waits for the sleeps to end (:meth:`SimModel.kick_completion`).
With ``kick_keeps_sleep`` (the ``target`` throttle controller) a kick does neither: the
sleeper is out of the guest already, its ring is harvested, and it sleeps on; and the
pages a flush harvests lengthen the vCPU's next penalty by their share of a ring.
Penalty sleep is counted per vCPU (``slept``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from qmpdl.backend.base import PAGE_SIZE, RING_RESERVED_ENTRIES
from qmpdl.backend.simlayout import PAGES_PER_MIB, layout
from qmpdl.workload import Workload

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


#: Seconds between the dirty-ring reaper's harvests (QEMU's "kvm-reaper" thread).
REAPER_PERIOD = 1.0

_NO_SLEEP = -math.inf
#: Slack for comparing event times computed in floating point.
_EPS = 1e-12


class SimModel:
    """State and dynamics of all simulated vCPUs of one machine."""

    def __init__(
        self,
        workloads: Sequence[Workload],
        ram_size: int,
        ring_size: int,
        *,
        now: float,
        kick_interrupts_sleep: bool,
        start_paused: bool = False,
    ) -> None:
        n = len(workloads)
        self.nr_vcpus = n
        self.ring_size = ring_size
        self.ram_pages = ram_size // PAGE_SIZE
        self.kick_interrupts_sleep = kick_interrupts_sleep
        #: a kick neither cuts a penalty sleep nor waits for it, and the penalty is
        #: charged per page (``target`` controller; see :attr:`charged`)
        self.kick_keeps_sleep = False
        #: pages other harvests (flushes) took from a vCPU's ring since its last
        #: ring-full: with ``kick_keeps_sleep`` its next sleep is longer by that share of
        #: a ring, so a flush does not restart the fill/sleep cycle for free
        self.charged: FloatArray = np.zeros(n)
        #: seconds each vCPU spent in penalty sleeps so far
        self.slept: FloatArray = np.zeros(n)
        #: entries at which a ring counts as full
        self.soft_full = max(ring_size - RING_RESERVED_ENTRIES, 1) if ring_size else 0
        self.regions = layout(workloads, self.ram_pages)
        self.kinds = [w.kind for w in workloads]
        wss = np.array([r.pages for r in self.regions], dtype=np.float64)
        rate = np.array([w.rate * PAGES_PER_MIB for w in workloads], dtype=np.float64)
        writer = np.array([w.kind == "write" for w in workloads], dtype=np.bool_)
        reader = np.array([w.kind == "read" for w in workloads], dtype=np.bool_)
        self.wss: FloatArray = wss
        self._base_write_rate: FloatArray = np.where(writer, rate, 0.0)
        self._base_read_rate: FloatArray = np.where(reader, rate, 0.0)
        #: pages/s written while running (0 for readers and idle vCPUs)
        self.write_rate: FloatArray = self._base_write_rate.copy()
        #: pages/s read while running
        self.read_rate: FloatArray = self._base_read_rate.copy()
        #: auto-converge: the share of time (percent) every vCPU is made to sleep
        self.cpu_throttle = 0
        #: migration: ``written`` at the last dirty-page sync (None: not tracking)
        self._mig_mark: FloatArray | None = None
        self._region_first = np.array([r.first_page for r in self.regions], dtype=np.int64)
        self._region_pages = np.array([r.pages for r in self.regions], dtype=np.int64)
        self._is_writer = writer
        #: writers able to fill their ring on their own
        self.fills: BoolArray = writer & (rate > 0) & (wss >= self.soft_full) & (ring_size > 0)
        #: pages written since this vCPU's ring was last harvested (ring holds min(., wss))
        self.since: FloatArray = np.zeros(n)
        #: pages written since the last dirty-bitmap sync (bitmap mode)
        self.bitmap_since: FloatArray = np.zeros(n)
        self.written: FloatArray = np.zeros(n)
        self.read: FloatArray = np.zeros(n)
        self.dirty: IntArray = np.zeros(n, dtype=np.int64)
        self.sleep_until: FloatArray = np.full(n, _NO_SLEEP)
        self.penalty: FloatArray = np.zeros(n)
        #: counts for tests and statistics
        self.ring_full_exits: IntArray = np.zeros(n, dtype=np.int64)
        self.penalty_sleeps: IntArray = np.zeros(n, dtype=np.int64)
        self.sleeps_cut_short = 0
        self.t = now
        self.start = now
        self.paused = start_paused
        self.logging = False
        self.in_service = False
        self._reaper_next = now + REAPER_PERIOD

    # ------------------------------------------------------------------ queries

    def ring_entries(self) -> FloatArray:
        """Entries currently in each ring (fractional: pages are written continuously)."""
        return np.minimum(self.since, self.wss)

    def asleep(self) -> BoolArray:
        return self.sleep_until > self.t

    # ------------------------------------------------------------------ mutations

    def set_logging(self, t: float, enabled: bool) -> None:
        self.advance(t)
        if enabled == self.logging:
            return
        if not enabled:
            self._harvest_all()
        self.logging = enabled
        self.since[:] = 0.0
        self.bitmap_since[:] = 0.0

    def set_throttle(self, t: float, in_service: bool, penalties_us: Sequence[int]) -> None:
        self.advance(t)
        self.in_service = in_service
        self.penalty = np.asarray(penalties_us, dtype=np.float64) / 1e6

    def kick_completion(self, t: float) -> float:
        """When a kick issued at ``t`` has reached every vCPU (sleepers answer on waking)."""
        self.advance(t)
        if self.kick_interrupts_sleep or self.kick_keeps_sleep:
            return t
        return max(t, float(self.sleep_until.max(initial=_NO_SLEEP)))

    def kick(self, t: float) -> None:
        """Every vCPU leaves the guest at ``t``; interruptible sleeps end here."""
        self.advance(t)
        if self.kick_interrupts_sleep and not self.kick_keeps_sleep:
            cut = self.sleep_until > t + _EPS
            self.sleeps_cut_short += int(cut.sum())
            self.sleep_until[cut] = t

    def flush(self, t: float) -> None:
        """Kick at ``t`` (see :meth:`kick_completion`) and harvest every ring."""
        self.kick(t)
        self._harvest_all()

    def pause(self, t: float) -> None:
        self.kick(t)
        self.paused = True

    def resume(self, t: float) -> None:
        self.advance(t)
        self.paused = False

    def sync_bitmap(self, t: float) -> int:
        """Pages newly dirtied since the previous sync (dirty-bitmap mode)."""
        self.advance(t)
        dirty = int(np.floor(np.minimum(self.bitmap_since, self.wss)).sum())
        self.bitmap_since[:] = 0.0
        return dirty

    # ------------------------------------------------------------------ dynamics

    def advance(self, t: float) -> None:
        """Move every vCPU from ``self.t`` to ``t``."""
        if t <= self.t:
            return
        if self.paused:
            self.t = t
        elif not self.logging or self.ring_size == 0:
            self._run_untracked(t)
        elif self.in_service:
            self._run_in_service(t)
        else:
            self._run_with_reaper(t)
        if self._reaper_next <= self.t:
            self._reaper_next += math.ceil((self.t - self._reaper_next) / REAPER_PERIOD + _EPS) * (
                REAPER_PERIOD
            )

    def _active_time(self, t: float) -> tuple[FloatArray, FloatArray]:
        """Per vCPU: when it runs from (after any sleep) and for how long until ``t``;
        the part of a sleep begun earlier that falls before ``t`` counts as slept."""
        begin = np.maximum(self.sleep_until, self.t)
        self.slept += np.minimum(begin, t) - self.t
        return begin, np.maximum(t - begin, 0.0)

    def _finish(self, t: float) -> None:
        self.sleep_until[self.sleep_until <= t] = _NO_SLEEP
        self.t = t

    def _run_untracked(self, t: float) -> None:
        """No dirty ring in use: pages are written (and counted in the bitmap if logging)."""
        _, active = self._active_time(t)
        pages = self.write_rate * active
        self.written += pages
        self.read += self.read_rate * active
        if self.logging:
            self.bitmap_since += pages
        self._finish(t)

    def _run_in_service(self, t: float) -> None:
        """Dirty limit in service: each vCPU harvests only its own ring; closed form."""
        begin, active = self._active_time(t)
        self.read += self.read_rate * active
        rate = self.write_rate
        fills = self.fills & (active > 0)
        # Writers that cannot fill their ring just write.
        small = ~self.fills
        self.written[small] += rate[small] * active[small]
        self.since[small] += rate[small] * active[small]
        if not fills.any():
            self._finish(t)
            return
        idx = np.flatnonzero(fills)
        r = rate[idx]
        full = float(self.soft_full)
        ring0 = np.minimum(self.since[idx], full)
        first_full = begin[idx] + (full - ring0) / r
        reaches = first_full <= t + _EPS
        # Those whose ring does not fill before t.
        no = idx[~reaches]
        grow = rate[no] * active[no]
        self.since[no] += grow
        self.written[no] += grow
        yes = idx[reaches]
        if yes.size:
            r = rate[yes]
            p = self.penalty[yes]
            # The first ring-full's sleep also covers the pages flushes took since the
            # last one (0 unless the penalty is charged per page): delta longer.
            delta = p * self.charged[yes] / full
            self.charged[yes] = 0.0
            u = np.minimum(first_full[reaches], t)
            cycle = full / r + p
            extra = np.maximum(np.floor((t - u - delta) / cycle + _EPS), 0.0)
            fulls = 1 + extra
            last_full = np.where(extra > 0, u + delta + extra * cycle, u)
            p_now = np.where(extra > 0, p, p + delta)
            rem = t - last_full
            self.slept[yes] += np.where(extra > 0, p + delta + (extra - 1) * p, 0.0) + np.minimum(
                p_now, rem
            )
            sleeping = rem < p_now - _EPS
            ring1 = np.where(sleeping, 0.0, np.maximum(rem - p_now, 0.0) * r)
            self.written[yes] += (
                (full - np.minimum(self.since[yes], full)) + (fulls - 1) * full + ring1
            )
            self.dirty[yes] += (fulls * self.soft_full).astype(np.int64)
            self.since[yes] = ring1
            self.ring_full_exits[yes] += fulls.astype(np.int64)
            slept = p > 0
            self.penalty_sleeps[yes] += np.where(slept, fulls, 0).astype(np.int64)
            self.sleep_until[yes] = np.where(sleeping, last_full + p_now, _NO_SLEEP)
        self._finish(t)

    def _run_with_reaper(self, t: float) -> None:
        """Logging with the ring, limit not in service: a ring-full harvests every ring,
        and the reaper harvests every ring once a second."""
        full = float(self.soft_full)
        while self.t < t:
            begin = np.maximum(self.sleep_until, self.t)
            with np.errstate(divide="ignore", invalid="ignore"):
                ttf = np.where(
                    self.fills,
                    begin + (full - np.minimum(self.since, full)) / self.write_rate,
                    math.inf,
                )
            nxt = float(ttf.min(initial=math.inf))
            e = min(nxt, self._reaper_next, t)
            _, active = self._active_time(e)
            pages = self.write_rate * active
            self.written += pages
            self.since += pages
            self.read += self.read_rate * active
            self._finish(e)
            if e >= nxt - _EPS and nxt <= t:
                who = int(np.argmin(ttf))
                self.since[who] = full
                self.ring_full_exits[who] += 1
                self._harvest_all()
            elif e >= self._reaper_next - _EPS and self._reaper_next <= t:
                self._harvest_all()
                self._reaper_next += REAPER_PERIOD

    def _harvest_all(self) -> None:
        ring = np.minimum(self.since, self.wss)
        entries = np.floor(ring + 1e-9)
        self.dirty += entries.astype(np.int64)
        if self.kick_keeps_sleep and self.in_service:
            self.charged += entries
        # A saturated small working set restarts empty; otherwise keep the partial page.
        self.since = np.where(self.since > self.wss, 0.0, np.maximum(self.since - entries, 0.0))

    # ------------------------------------------------------------------ content

    def page_values(self, pages: npt.NDArray[np.int64]) -> npt.NDArray[np.uint8]:
        """The first byte of each page, the one the guest increments (a writer's page is
        that byte and zeros; every other page is all zeros; a page written n > 0 times
        holds 1 + (n - 1) mod 255)."""
        values = np.zeros(len(pages), dtype=np.uint8)
        cpu = np.searchsorted(self._region_first, pages, side="right") - 1
        valid = cpu >= 0
        cpu = np.where(valid, cpu, 0)
        offset = pages - self._region_first[cpu]
        size = self._region_pages[cpu]
        inside = valid & (offset >= 0) & (offset < size) & self._is_writer[cpu]
        total = np.floor(self.written[cpu]).astype(np.int64)
        writes = np.where(total > offset, (total - 1 - offset) // np.maximum(size, 1) + 1, 0)
        # 1..255 and round again: a written page never reads as a zero page (after
        # 256 passes a plain count mod 256 would, and on a virtual clock the whole
        # working set hits that at the same instant)
        w = writes[inside]
        values[inside] = np.where(w > 0, (w - 1) % 255 + 1, 0).astype(np.uint8)
        return values

    def page_digests(self, pages: Sequence[int]) -> list[int]:
        """Digest of each guest page's content (page sampling compares two reads)."""
        values = self.page_values(np.asarray(pages, dtype=np.int64))
        return [hash((int(p), int(v))) & 0xFFFFFFFF for p, v in zip(pages, values, strict=True)]

    # ------------------------------------------------------------------ migration

    def migration_sync(self, t: float) -> npt.NDArray[np.bool_]:
        """Pages written since the previous call (all of RAM on the first call)."""
        self.advance(t)
        dirty = np.zeros(self.ram_pages, dtype=np.bool_)
        if self._mig_mark is None:
            dirty[:] = True
        else:
            for cpu in np.flatnonzero(self._is_writer):
                first, size = int(self._region_first[cpu]), int(self._region_pages[cpu])
                start, end = int(self._mig_mark[cpu]), int(self.written[cpu])
                if end - start >= size:
                    dirty[first : first + size] = True
                elif end > start:
                    a, b = start % size, end % size
                    if a < b:
                        dirty[first + a : first + b] = True
                    else:
                        dirty[first + a : first + size] = True
                        dirty[first : first + b] = True
        self._mig_mark = np.floor(self.written)
        return dirty

    def migration_stop(self) -> None:
        self._mig_mark = None

    def set_cpu_throttle(self, t: float, percent: int) -> None:
        """Auto-converge: every vCPU runs only (100 - percent) % of the time."""
        self.advance(t)
        self.cpu_throttle = percent
        share = (100 - percent) / 100
        self.write_rate = self._base_write_rate * share
        self.read_rate = self._base_read_rate * share

    def base_rates(self) -> tuple[FloatArray, FloatArray]:
        """Pages/s each vCPU writes and reads while running, before auto-converge."""
        return self._base_write_rate.copy(), self._base_read_rate.copy()

    def set_rates(self, t: float, write: FloatArray, read: FloatArray) -> None:
        """From ``t`` each vCPU writes ``write`` and reads ``read`` pages/s while running
        (before auto-converge's share; only writers write): a scenario's phases."""
        self.advance(t)
        self._base_write_rate = np.where(self._is_writer, write, 0.0)
        self._base_read_rate = np.asarray(read, dtype=np.float64).copy()
        share = (100 - self.cpu_throttle) / 100
        self.write_rate = self._base_write_rate * share
        self.read_rate = self._base_read_rate * share
        fits = (self.wss >= self.soft_full) & (self.ring_size > 0)
        self.fills = self._is_writer & (self.write_rate > 0) & fits

    def export_progress(self) -> dict[str, list[float]]:
        return {"written": [float(x) for x in self.written], "read": [float(x) for x in self.read]}

    def import_progress(self, t: float, progress: dict[str, list[float]]) -> None:
        self.advance(t)
        self.written = np.asarray(progress["written"], dtype=np.float64)
        self.read = np.asarray(progress["read"], dtype=np.float64)
