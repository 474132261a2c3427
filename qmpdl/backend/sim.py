"""The ``sim`` accelerator: :class:`~qmpdl.backend.simmodel.SimModel` behind the backend
interface, driven by a :class:`~qmpdl.clock.Clock`.

There are no vCPU threads: the model is advanced to "now" whenever something reads or
changes it, under one lock.  Waiting (a flush that must wait for penalty sleeps to end)
goes through the clock.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from qmpdl.backend.base import PAGE_SIZE, RamBlock, VcpuBackend, VcpuProgress
from qmpdl.backend.registry import Accelerator, BackendRequest
from qmpdl.backend.simlayout import layout
from qmpdl.clock import Clock, wake
from qmpdl.errors import ConfigError
from qmpdl.trace import NULL_TRACER, Tracer
from qmpdl.workload import Workload

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from qmpdl.backend.registers import X86Registers
    from qmpdl.backend.simmodel import SimModel


class SimBackend(VcpuBackend):
    """Simulated vCPUs in real (or virtual) time."""

    def __init__(
        self,
        workloads: Sequence[Workload],
        ram_size: int,
        ring_size: int,
        clock: Clock,
        *,
        kick_interrupts_sleep: bool,
        start_paused: bool = False,
        tracer: Tracer = NULL_TRACER,
        thread_id: int | None = None,
    ) -> None:
        self.clock = clock
        #: QEMU's trace events of the vCPUs (``dirtylimit_vcpu_execute``)
        self.tracer = tracer
        self.ring_size = ring_size
        self.nr_vcpus = len(workloads)
        self.ram_size = ram_size
        self._lock = threading.Lock()
        self._wakeup = threading.Event()
        # The model (numpy arrays) is made when something first looks at the vCPUs; what
        # happened to them before (start, pause, resume) is replayed into it then.
        layout(workloads, ram_size // PAGE_SIZE)  # a working set that does not fit: now
        self._model: SimModel | None = None
        self._model_args = (list(workloads), ram_size, ring_size, clock.monotonic())
        self._kick_interrupts_sleep = kick_interrupts_sleep
        self._history: list[tuple[bool, float]] = []
        self._start_paused = start_paused
        self._thread_id = threading.get_native_id()
        #: the id shown whatever the thread (a virtual clock's runs show the same)
        self._shown_thread_id = thread_id
        #: destination: the first byte of every page received
        self._received: npt.NDArray[np.uint8] | None = None
        #: penalty sleeps already traced, per vCPU (from when the model is made)
        self._traced_sleeps: npt.NDArray[np.int64] | None = None

    @classmethod
    def build(cls, request: BackendRequest, accelerator: Accelerator) -> SimBackend:
        try:
            return cls(
                request.workloads,
                request.config.ram_size,
                request.ring_size,
                request.clock,
                kick_interrupts_sleep=request.kick_interrupts_sleep,
                start_paused=request.start_paused,
                tracer=request.tracer,
                thread_id=request.thread_id,
            )
        except ValueError as e:
            raise ConfigError(f"--workload: {e}") from None

    @property
    def model(self) -> SimModel:
        """The vCPUs' model, made on first use (callers hold the lock)."""
        model = self._model
        if model is None:
            from qmpdl.backend.simmodel import SimModel

            workloads, ram_size, ring_size, created = self._model_args
            model = SimModel(
                workloads,
                ram_size,
                ring_size,
                now=created,
                kick_interrupts_sleep=self._kick_interrupts_sleep,
                start_paused=True,
            )
            for running, at in self._history:
                _run(model, running, at)
            self._model = model
            self._traced_sleeps = model.penalty_sleeps.copy()
        return model

    def _run(self, running: bool) -> None:
        """Resume or pause the vCPUs now (recorded until the model exists)."""
        now = self.clock.monotonic()
        if self._model is None:
            self._history.append((running, now))
        else:
            _run(self._model, running, now)

    def start(self, on_internal_error: Callable[[str], None]) -> None:
        # simulated vCPUs cannot fail: ``on_internal_error`` is never called
        with self._lock:
            self._thread_id = threading.get_native_id()
            if not self._start_paused:
                self._run(True)

    def shutdown(self) -> None:
        wake(self.clock, self._wakeup)
        with self._lock:
            self._run(False)

    def _wait_for_kick(self) -> float:
        """Block until a kick issued now has reached every vCPU; return that time."""
        with self._lock:
            done = self.model.kick_completion(self.clock.monotonic())
        self.clock.sleep_until(done, self._wakeup)
        return max(done, self.clock.monotonic())

    def pause(self) -> None:
        with self._lock:
            if self._model is None:  # nothing has throttled a vCPU: no sleep to wait for
                self._run(False)
                return
        at = self._wait_for_kick()
        with self._lock:
            self.model.pause(max(at, self.model.t))

    def resume(self) -> None:
        with self._lock:
            self._run(True)

    def set_dirty_logging(self, enabled: bool) -> None:
        with self._lock:
            self.model.set_logging(self.clock.monotonic(), enabled)

    def update_throttle(self, in_service: bool, penalties_us: Sequence[int]) -> None:
        with self._lock:
            now = self.clock.monotonic()
            self.model.advance(now)
            self._trace_sleeps()
            self.model.set_throttle(now, in_service, penalties_us)

    def _trace_sleeps(self) -> None:
        """``dirtylimit_vcpu_execute`` for the penalty sleeps since the last call (lock
        held, model advanced).  The model has no vCPU threads, so the sleeps of a window
        are written when the window is read: their timestamps bunch."""
        if not self.tracer.enabled("dirtylimit_vcpu_execute"):
            return
        import numpy as np  # loaded with the model already

        sleeps = self.model.penalty_sleeps
        traced = self._traced_sleeps
        new = sleeps if traced is None else sleeps - traced
        for cpu in np.flatnonzero(new).tolist():
            text = f"CPU[{cpu}] sleep {round(float(self.model.penalty[cpu]) * 1e6)} us"
            for _ in range(int(new[cpu])):
                self.tracer("dirtylimit_vcpu_execute", text)
        self._traced_sleeps = sleeps.copy()

    def keep_penalty_sleep_on_kick(self, keep: bool) -> None:
        with self._lock:
            self.model.kick_keeps_sleep = keep

    def penalty_sleep_seconds(self) -> list[float] | None:
        with self._lock:
            self.model.advance(self.clock.monotonic())
            return [float(x) for x in self.model.slept]

    def ring_full_exits(self) -> list[int] | None:
        with self._lock:
            self.model.advance(self.clock.monotonic())
            return [int(x) for x in self.model.ring_full_exits]

    def dirty_pages(self) -> list[int]:
        with self._lock:
            self.model.advance(self.clock.monotonic())
            self._trace_sleeps()
            return [int(x) for x in self.model.dirty]

    def flush_dirty_rings(self) -> None:
        self.flush_after_kick(self._wait_for_kick())

    def kick_completion_time(self) -> float:
        """When a kick issued now will have reached every vCPU (a virtual clock's
        throttle waits for it with a timer, not a sleep)."""
        with self._lock:
            return self.model.kick_completion(self.clock.monotonic())

    def flush_after_kick(self, at: float) -> None:
        """The second half of :meth:`flush_dirty_rings`, the kick completed at ``at``."""
        with self._lock:
            self.model.flush(max(at, self.model.t))
            self._trace_sleeps()

    def sync_dirty_bitmap(self) -> int:
        with self._lock:
            return self.model.sync_bitmap(self.clock.monotonic())

    def ram_blocks(self) -> list[RamBlock]:
        return [RamBlock("pc.ram", self.ram_size)]

    def page_digests(self, block: str, pages: Sequence[int]) -> list[int]:
        with self._lock:
            self.model.advance(self.clock.monotonic())
            return self.model.page_digests(pages)

    def thread_ids(self) -> list[int]:
        shown = self._shown_thread_id
        return [self._thread_id if shown is None else shown] * self.nr_vcpus

    def progress(self) -> list[VcpuProgress]:
        with self._lock:
            m = self.model
            m.advance(self.clock.monotonic())
            out = []
            for i, kind in enumerate(m.kinds):
                done_pages = m.written[i] if kind == "write" else m.read[i]
                wss = m.regions[i].pages
                out.append(
                    VcpuProgress(
                        i,
                        kind,
                        float(done_pages / wss) if wss else 0.0,
                        float(done_pages * PAGE_SIZE),
                    )
                )
            return out

    # ------------------------------------------------------------------ migration

    @property
    def ram_pages(self) -> int:
        return self.ram_size // PAGE_SIZE

    def migration_sync(self) -> npt.NDArray[np.bool_]:
        """As QEMU's bitmap sync with the dirty ring: flush every ring first (a kick that
        waits for a penalty sleep to end from 8.2, and cuts it short before), so on
        8.2+ a throttled writer's sleep paces the migration's passes - and the
        switchover that follows a sync finds the writer just awake (QEMU 10.0: 14-16 ms
        of downtime where a stop during the sleep would wait for it)."""
        if not self.ring_size:
            with self._lock:
                return self.model.migration_sync(self.clock.monotonic())
        at = self._wait_for_kick()
        with self._lock:
            self.model.flush(max(at, self.model.t))
            return self.model.migration_sync(self.model.t)

    def migration_stop(self) -> None:
        with self._lock:
            self.model.migration_stop()

    def read_pages(self, pages: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.bool_], bytes]:
        """Synthetic content with honest sizes: a written page is its counter byte
        followed by zeros; the rest of RAM is zero pages."""
        with self._lock:
            self.model.advance(self.clock.monotonic())
            values = self.model.page_values(pages)
        zero = values == 0
        import numpy as np

        data = np.zeros((int((~zero).sum()), PAGE_SIZE), dtype=np.uint8)
        data[:, 0] = values[~zero]
        return zero, data.tobytes()

    def page_marks(self, pages: npt.NDArray[np.int64]) -> npt.NDArray[np.uint8]:
        """The same content as :meth:`read_pages`, as each page's first byte."""
        with self._lock:
            self.model.advance(self.clock.monotonic())
            return self.model.page_values(pages)

    def write_pages(
        self, pages: npt.NDArray[np.int64], zero: npt.NDArray[np.bool_], data: bytes
    ) -> None:
        import numpy as np

        block = np.frombuffer(data, dtype=np.uint8).reshape(-1, PAGE_SIZE)
        self.write_page_marks(pages, zero, block[:, 0])

    def write_page_marks(
        self, pages: npt.NDArray[np.int64], zero: npt.NDArray[np.bool_], marks: npt.NDArray[Any]
    ) -> None:
        import numpy as np

        if self._received is None:
            self._received = np.zeros(self.model.ram_pages, dtype=np.uint8)
        self._received[pages[zero]] = 0
        self._received[pages[~zero]] = marks

    def export_state(self) -> dict[str, Any]:
        with self._lock:
            self.model.advance(self.clock.monotonic())
            return {"sim": self.model.export_progress()}

    def import_state(self, state: dict[str, Any]) -> None:
        progress = state.get("sim")
        if not isinstance(progress, dict) or len(progress.get("written", [])) != self.nr_vcpus:
            raise ValueError("the guest state does not fit this machine")
        import numpy as np

        with self._lock:
            self.model.import_progress(self.clock.monotonic(), progress)
            expected = self.model.page_values(np.arange(self.model.ram_pages, dtype=np.int64))
        received = self._received if self._received is not None else np.zeros_like(expected)
        wrong = int((expected != received).sum())
        if wrong:
            raise ValueError(f"{wrong} pages of guest memory do not match the guest state")

    def workload_rates(self) -> list[tuple[str, float, float]]:
        """Per vCPU: its kind, and the MiB/s it writes and reads while running."""
        from qmpdl.backend.simlayout import PAGES_PER_MIB

        with self._lock:
            m = self.model
            write, read = m.base_rates()
            return [
                (kind, float(w) / PAGES_PER_MIB, float(r) / PAGES_PER_MIB)
                for kind, w, r in zip(m.kinds, write, read, strict=True)
            ]

    def set_workload_rates(self, write: Sequence[float], read: Sequence[float]) -> None:
        """From now on each vCPU writes ``write`` and reads ``read`` MiB/s while it runs
        (a writer's working set stays; a vCPU that is no writer writes nothing)."""
        import numpy as np

        from qmpdl.backend.simlayout import PAGES_PER_MIB

        with self._lock:
            self.model.set_rates(
                self.clock.monotonic(),
                np.asarray(write, dtype=np.float64) * PAGES_PER_MIB,
                np.asarray(read, dtype=np.float64) * PAGES_PER_MIB,
            )

    def set_cpu_throttle(self, percent: int) -> None:
        with self._lock:
            self.model.set_cpu_throttle(self.clock.monotonic(), percent)

    def read_physical(self, addr: int, size: int) -> bytes:
        """Synthetic memory: every written page holds its counter byte, and each vCPU's
        parameter block (the layout of the kvm guest programs) its working set and pass
        counter, so xp reads the same fields on both backends."""
        out = bytearray(size)
        end = min(addr + size, self.ram_size)
        if addr >= end:
            return bytes(out)
        first, last = addr // PAGE_SIZE, (end - 1) // PAGE_SIZE
        import numpy as np

        from qmpdl.kvm import guest

        pages = np.arange(first, last + 1, dtype=np.int64)
        with self._lock:
            m = self.model
            m.advance(self.clock.monotonic())
            values = m.page_values(pages)
            blocks = {}
            for i, kind in enumerate(m.kinds):
                region = m.regions[i]
                done = m.written[i] if kind == "write" else m.read[i]
                passes = int(done // region.pages) if region.pages and kind != "idle" else 0
                base = region.first_page * PAGE_SIZE if region.pages else 0
                end_ws = base + region.pages * PAGE_SIZE if region.pages else 0
                blocks[guest.BLOCK_BASE // PAGE_SIZE + i] = struct.pack(
                    "<6I", base, end_ws, 0, passes & 0xFFFFFFFF, 0, 0
                )
        for page, value in zip(pages.tolist(), values.tolist(), strict=True):
            page_start = page * PAGE_SIZE
            content = blocks.get(page, bytes([value]) if value else b"")
            for i, byte in enumerate(content):
                at = page_start + i - addr
                if 0 <= at < end - addr:
                    out[at] = byte
        return bytes(out)

    def registers(self, cpu_index: int) -> X86Registers:
        from qmpdl.backend.registers import x86_reset_state

        # The model has no instruction stream: its vCPUs show QEMU's reset state.
        return x86_reset_state()


def _run(model: SimModel, running: bool, at: float) -> None:
    if running:
        model.resume(at)
    else:
        model.pause(at)
