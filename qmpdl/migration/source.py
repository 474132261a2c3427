"""The outgoing migration: QEMU's migration thread, precopy only.

setup (connect, header, dirty logging on, the whole RAM dirty: the *bulk* pass) ->
active (send dirty pages, rate-limited to ``max-bandwidth`` in 100 ms windows; when
what is left falls below what can go in ``downtime-limit`` at the measured bandwidth,
sync the dirty log; each sync is a new pass, ``MIGRATION_PASS``) -> completion (stop the
vCPUs, optionally wait in ``pre-switchover`` for ``migrate-continue``, sync again, send
the rest and the device state, wait for the destination's acknowledgement) ->
``completed`` (runstate ``postmigrate``).  Every sync more than a second after the
previous rate period checks whether the guest dirties memory faster than
``throttle-trigger-threshold`` % of what is transferred; the second time it does,
auto-converge throttles the CPUs or the ``dirty-limit`` capability limits every vCPU.

On a virtual clock (``-accel sim,clock=virtual``, :mod:`qmpdl.vtime`) writing to the
socket takes no time of that clock, so the stream takes it explicitly: the link moves
``max-bandwidth`` bytes per second of the clock (none: no time at all), in the rate
windows too and while the guest is stopped, so passes, the dirty-limit trigger and the
downtime come out as in real time, and the same on every run.  Before the thread
sleeps out what it sent, the stream carries the time it will be delivered (a SYNC
record) and, on a socket, waits for the destination to load everything before and
catch up; synthetic pages go as their first byte (MARKS records) and count as the full
pages they stand for.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from qmpdl.backend.base import PAGE_SIZE
from qmpdl.clock import Clock, parked, start_thread, unpark, wake
from qmpdl.errors import QmpdlError
from qmpdl.migration.host import OutgoingHost
from qmpdl.migration.uri import Channel, MigrationAddress, connect
from qmpdl.qapi.types import MigrationStatus
from qmpdl.threadname import name_this_thread
from qmpdl.vm.dirtylog import DirtyLogUser

if TYPE_CHECKING:
    # numpy and the stream are loaded by the thread, once it has connected (so a
    # destination loads its own meanwhile)
    import numpy as np
    import numpy.typing as npt

    from qmpdl.backend.base import VcpuBackend
    from qmpdl.migration.stream import StreamWriter

S = MigrationStatus

log = logging.getLogger("qmpdl")

#: QEMU's BUFFER_DELAY: rate limiting and bandwidth measurement window (ms).
BUFFER_DELAY_MS = 100
#: Seconds of floating-point slack in the window arithmetic (on a virtual clock a sleep
#: ends exactly at its deadline, and window + 0.1 s - window may be a hair short of it).
_SLACK = 1e-9
#: Pages read and sent per record.
BATCH_PAGES = 256


def stream_error(e: OSError, kind: str = "socket") -> str:
    """QEMU's text for a failed write to a ``kind`` channel (socket, file, command)."""
    text = str(e)
    if text.startswith(("Unable to", "Sibling", "Failed")):
        return text
    return f"Unable to write to {kind}: {e.strerror or text}"


class MigrationCancelled(QmpdlError):  # noqa: N818 (a control-flow signal, not an error)
    """The user cancelled; unwind without marking the migration failed."""


@dataclass
class SourceStats:
    """What query-migrate reports about the outgoing side (QEMU's mig_stats & co)."""

    start_time: float = 0.0
    setup_time: int = 0
    total_time: int = 0
    downtime: int = 0
    expected_downtime: int = 0
    transferred: int = 0
    precopy_bytes: int = 0
    downtime_bytes: int = 0
    normal_pages: int = 0
    zero_pages: int = 0
    remaining: int = 0
    dirty_sync_count: int = 0
    dirty_pages_rate: int = 0
    dirty_bytes_last_sync: int = 0
    mbps: float = 0.0
    pages_per_second: int = 0
    passes: list[dict[str, float]] = field(default_factory=list)


class OutgoingMigration:
    """One outgoing migration, run in its own thread ("live_migration")."""

    def __init__(
        self,
        host: OutgoingHost,
        backend: VcpuBackend,
        address: MigrationAddress,
        channel: Channel | None = None,
        *,
        clock: Clock,
        always_device_state: bool = False,
        virtual_time: bool = False,
        channel_filter: Callable[[Channel], Channel] | None = None,
    ) -> None:
        self.host = host
        self.backend = backend
        self.address = address
        #: 10.0+: the switchover always passes through status ``device``
        self.always_device_state = always_device_state
        #: the machine's clock (virtual under -accel sim,clock=virtual: qmpdl.vtime)
        self.clock = clock
        #: the clock is virtual: sends take its time (see the module's text)
        self.virtual_time = virtual_time
        #: a scenario's stream faults for this migration
        self._channel_filter = channel_filter
        #: virtual time: when the link has delivered everything sent so far
        self._link_free = 0.0
        self.stats = SourceStats(start_time=self.clock.monotonic())
        #: opened by the command for exec: and file: (None: connected by the thread)
        self.channel: Channel | None = channel
        #: made by the thread (see the imports)
        self.writer: StreamWriter
        #: the pages still to send (QEMU's migration bitmap), from the first sync on
        self.bitmap: npt.NDArray[np.bool_]
        self._cursor = 0
        self._threshold = 0.0
        self._window_start = 0.0
        self._window_bytes = 0
        self._iter_bytes = 0
        self._iter_pages = 0
        self._period_start = 0.0
        self._period_dirty = 0
        self._period_xfer_start = 0
        #: QEMU's pause_sem: migrate-continue (or a cancel) releases pre-switchover
        self._pause_sem = threading.Semaphore(0)
        #: cuts the rate limiter's sleep short on cancel
        self._wakeup = threading.Event()
        self.was_running = False
        self.thread = threading.Thread(target=self._bh_run, name="live_migration", daemon=True)

    # ------------------------------------------------------------------ control

    def start(self) -> None:
        start_thread(self.thread, self.clock)

    def cancel(self) -> None:
        """migrate_cancel: unblock whatever the thread waits on."""
        wake(self.clock, self._wakeup)
        unpark(self.clock, self.thread)
        self._pause_sem.release()
        if self.channel is not None:
            self.channel.shutdown()

    def resume_from_pause(self) -> None:
        """migrate-continue: post the pause semaphore (as QEMU, even outside the pause:
        a later pre-switchover then passes at once)."""
        unpark(self.clock, self.thread)
        self._pause_sem.release()

    def _check(self) -> None:
        if self.host.status == S.CANCELLING:
            raise MigrationCancelled

    # ------------------------------------------------------------------ the thread

    def _bh_run(self) -> None:
        name_this_thread()
        m = self.host
        try:
            if self.channel is None:
                try:
                    self.channel = connect(self.address)
                except OSError as e:
                    m.fail(str(e), from_state=S.SETUP)
                    return
            if self._channel_filter is not None:
                self.channel = self._channel_filter(self.channel)
            from qmpdl.migration.stream import StreamWriter

            self.writer = StreamWriter()
            self._check()
            self._send(
                self.writer.header(
                    self.backend.ram_size, self.backend.nr_vcpus, m.machine_description()
                )
            )
            m.dirty_log(DirtyLogUser.MIGRATION, True)
            self.bitmap = self.backend.migration_sync()
            self._count_sync(0)
            self.stats.setup_time = int((self.clock.monotonic() - self.stats.start_time) * 1000)
            m.transition(S.SETUP, S.ACTIVE)
            self._period_start = self._window_start = self.clock.monotonic()
            self._iterate()
        except MigrationCancelled:
            pass
        except OSError as e:
            m.fail(stream_error(e, self.channel.kind if self.channel is not None else "socket"))
        except Exception as e:  # a bug must not leave the migration hanging
            log.exception("migration failed unexpectedly")
            m.fail(f"internal error: {e}")
        finally:
            self._finish()

    def _iterate(self) -> None:
        m = self.host
        while m.status == S.ACTIVE:
            self._check()
            if not self._rate_exceeded():
                pending = int(self.bitmap.sum()) * PAGE_SIZE
                if pending < self._threshold:
                    self._sync()
                    pending = int(self.bitmap.sum()) * PAGE_SIZE
                if not pending or pending < self._threshold:
                    self._complete()
                    return
                self._send_pages(limit=True)
            self._rate_limit()

    def _complete(self) -> None:
        m = self.host
        self.stats.downtime = 0
        downtime_start = self.clock.monotonic()
        self.was_running = m.stop_vm()
        #: QEMU's current_active_state: what completion moves to ``completed``
        current = S.ACTIVE
        if m.settings.pause_before_switchover:
            m.transition(S.ACTIVE, S.PRE_SWITCHOVER)
            with parked(self.clock):
                self._pause_sem.acquire()
            self._check()
            m.transition(S.PRE_SWITCHOVER, S.DEVICE)
            current = S.DEVICE
        elif self.always_device_state:
            m.transition(S.ACTIVE, S.DEVICE)
            current = S.DEVICE
        self._check()
        self._sync()
        while self.bitmap.any():
            self._send_pages(limit=False)
        self._send(self.writer.pass_end(self.stats.dirty_sync_count))
        state = dict(self.backend.export_state())
        state["runstate"] = m.source_runstate()
        self._send(self.writer.state(state))
        if self.virtual_time:
            self._pay(always=True)  # the destination catches up with the end
            self._check()
        self._send(self.writer.end())
        # QEMU's downtime and total time end here, with everything sent; qmpdl's own
        # stream then waits for the destination's acknowledgement (QEMU's precopy
        # without a return path waits for nothing)
        end = self.clock.monotonic()
        if self.channel is not None and self.channel.duplex:
            self._await_ack()
        self.stats.downtime = int((end - downtime_start) * 1000)
        self.stats.total_time = int((end - self.stats.start_time) * 1000)
        transfer_time = self.stats.total_time - self.stats.setup_time
        if transfer_time:
            self.stats.mbps = self.stats.transferred * 8.0 / transfer_time / 1000
        self.stats.remaining = 0
        # The run state becomes postmigrate afterwards, when the thread winds up
        # (MigrationManager.finished): as on QEMU 10.0, where a query-status right after
        # the "completed" event can still answer finish-migrate.
        m.transition(current, S.COMPLETED)

    def _await_ack(self) -> None:
        """The destination's answer to END (after a stream with SYNC records, once its
        guest has started), or to a SYNC."""
        assert self.channel is not None
        reply = self.channel.recv(1)
        if not reply:
            raise OSError("Unable to read from socket: Connection reset by peer")
        if reply != b"\0":
            raise OSError("Sibling indicated error 1")

    def _finish(self) -> None:
        m = self.host
        m.finished(self)
        # then what QEMU's cleanup bottom half does
        self.backend.migration_stop()
        m.dirty_log(DirtyLogUser.MIGRATION, False)
        if self.channel is not None:
            self.channel.close()
        m.cleaned_up()

    # ------------------------------------------------------------------ sending

    def _send(self, data: bytes, size: int | None = None) -> None:
        """Send ``data``, which stands for ``size`` bytes of the stream (a MARKS
        record's PAGES; default: its length); they count as precopy while the guest
        runs, else as downtime (QEMU's ram_transferred_add)."""
        assert self.channel is not None
        n = len(data) if size is None else size
        before = self.clock.monotonic()
        self.channel.sendall(data, n)
        if self.virtual_time:
            bandwidth = self.host.settings.max_bandwidth
            if bandwidth:
                self._link_free = max(self._link_free, before) + n / bandwidth
        self.stats.transferred += n
        self._window_bytes += n
        if self.host.guest_running():
            self.stats.precopy_bytes += n
        else:
            self.stats.downtime_bytes += n

    def _next_pages(self, count: int) -> npt.NDArray[np.int64]:
        """The next ``count`` dirty pages at or after the cursor (wrapping)."""
        import numpy as np

        found = np.flatnonzero(self.bitmap[self._cursor :])[:count] + self._cursor
        if len(found) < count:
            extra = np.flatnonzero(self.bitmap[: self._cursor])[: count - len(found)]
            found = np.concatenate([found, extra])
        return found.astype(np.int64)

    def _window_limit(self) -> int:
        """Bytes allowed per rate window; 0 means no limit (as in QEMU, a
        ``max-bandwidth`` below 10 bytes/s rounds to 0, which disables limiting)."""
        return self.host.settings.max_bandwidth // (1000 // BUFFER_DELAY_MS)

    def _budget_pages(self) -> int:
        """Pages that still fit in this rate window (at least one, at most a batch)."""
        limit = self._window_limit()
        if not limit:
            return BATCH_PAGES
        left = int((limit - self._window_bytes) // (PAGE_SIZE + 8)) + 1
        return max(1, min(BATCH_PAGES, left))

    def _send_pages(self, *, limit: bool) -> None:
        """Send dirty pages until the rate limit (or the bitmap) runs out."""
        while self.bitmap.any():
            self._check()
            pages = self._next_pages(self._budget_pages() if limit else BATCH_PAGES)
            marks = self.backend.page_marks(pages) if self.virtual_time else None
            if marks is not None:
                zero = marks == 0
                self._send(*self.writer.marks(pages, zero, marks))
            else:
                zero, data = self.backend.read_pages(pages)
                self._send(self.writer.pages(pages, zero, data))
            self.bitmap[pages] = False
            # query-migrate's remaining is live, as QEMU's migration_dirty_pages
            self.stats.remaining -= len(pages) * PAGE_SIZE
            self._cursor = int(pages[-1]) + 1 if len(pages) else 0
            self.stats.normal_pages += int((~zero).sum())
            self.stats.zero_pages += int(zero.sum())
            self._iter_pages += len(pages)
            if limit and self._rate_exceeded():
                return
        self._cursor = 0

    # ------------------------------------------------------------------ syncs and rates

    def _sync(self) -> None:
        """QEMU's migration_bitmap_sync: collect what was dirtied, maybe throttle."""
        self._send(self.writer.pass_end(self.stats.dirty_sync_count))
        new = self.backend.migration_sync()
        added = int((new & ~self.bitmap).sum())
        self.bitmap |= new
        self._count_sync(added)

    def _count_sync(self, added: int) -> None:
        m = self.host
        self.stats.dirty_sync_count += 1
        self._period_dirty += added
        remaining = int(self.bitmap.sum()) * PAGE_SIZE
        self.stats.dirty_bytes_last_sync = remaining
        self.stats.remaining = remaining
        now = self.clock.monotonic()
        if (now - self._period_start) * 1000 > 1000:
            m.period_ended(
                self._period_dirty * PAGE_SIZE, self.stats.transferred - self._period_xfer_start
            )
            period_ms = (now - self._period_start) * 1000
            self.stats.dirty_pages_rate = int(self._period_dirty * 1000 / period_ms)
            self._period_start = now
            self._period_dirty = 0
            self._period_xfer_start = self.stats.transferred
        self.stats.passes.append({"t": now - self.stats.start_time, "remaining": remaining})
        m.pass_done(self.stats.dirty_sync_count)

    def _rate_exceeded(self) -> bool:
        limit = self._window_limit()
        return bool(limit) and self._window_bytes >= limit

    def _pay(self, *, always: bool = False) -> None:
        """Virtual time: the link delivers what was sent.  The destination learns when
        (a SYNC record; on a socket the thread waits until it has caught up), then the
        thread sleeps until then.  ``always``: a SYNC even if nothing is due."""
        assert self.channel is not None
        now = self.clock.monotonic()
        due = max(self._link_free, now)
        if due <= now and not always:
            return
        self.channel.sendall(self.writer.sync(due), 0)
        if self.channel.duplex:
            self._await_ack()
        if due > now:
            self.clock.sleep_until(due, self._wakeup)

    def _rate_limit(self) -> None:
        """Update the counters once per window; sleep out an exhausted window."""
        if self.virtual_time:
            self._pay()
            self._check()
        now = self.clock.monotonic()
        self._update_counters(now)
        if self._rate_exceeded():
            wait = self._window_start + BUFFER_DELAY_MS / 1000 - now
            if wait > _SLACK:
                self.clock.sleep_until(now + wait, self._wakeup)
            self._update_counters(self.clock.monotonic())

    def _update_counters(self, now: float) -> None:
        elapsed_ms = (now - self._window_start) * 1000
        if elapsed_ms < BUFFER_DELAY_MS - _SLACK * 1000:
            return
        transferred = self.stats.transferred - self._iter_bytes
        bandwidth = transferred / elapsed_ms  # bytes per ms
        self._threshold = bandwidth * self.host.settings.downtime_limit
        self.stats.mbps = transferred * 8.0 / (elapsed_ms / 1000) / 1e6
        self.stats.pages_per_second = int(self._iter_pages / (elapsed_ms / 1000))
        if self.stats.dirty_pages_rate and transferred > 10000 and bandwidth:
            self.stats.expected_downtime = int(self.stats.dirty_bytes_last_sync / bandwidth)
        self._window_start = now
        self._window_bytes = 0
        self._iter_bytes = self.stats.transferred
        self._iter_pages = 0
