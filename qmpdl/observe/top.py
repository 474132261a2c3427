"""``qmpdl-top --qmp SOCKET``: the dirty limit of a running qmpdl or QEMU, live.

One row per vCPU: its dirty rate, its limit, a sparkline of the last minute, its
penalty per ring-full and the ring-full time (from a qmpdl ``--metrics`` endpoint, see
:mod:`qmpdl.observe.view`); the migration's status, remaining bytes and throttle fields
while one runs.  Keys: ``l`` limit the selected vCPU, ``a`` limit all, ``c`` cancel the
selected vCPU's limit, ``x`` cancel all, ``d`` run calc-dirty-rate now, ``q`` quit.

It talks QMP through qemu.qmp's QMPClient, so it works against QEMU as against qmpdl.
A QMP socket serves one client at a time: qmpdl-top says that it holds the monitor, and
if the monitor accepts the connection but sends no greeting (someone else holds it) it
says so and exits, or waits with ``--wait``.  Give QEMU or qmpdl a second ``-qmp``
socket to watch a VM that libvirt or a script already drives.

Rates of vCPUs without a limit come from a dirty-ring ``calc-dirty-rate`` every
``--calc-interval`` seconds.  That measurement flushes the dirty rings like the
throttle's own does, so it nudges a running throttle; ``--calc-interval 0`` turns it off.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections.abc import Callable, Sequence
from typing import IO, Any, ClassVar

from qemu.qmp import ConnectError, ExecuteError, QMPClient
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Input, Label, Static

from qmpdl.errors import QmpdlError
from qmpdl.observe.view import Recorder, TopState

PROG = "qmpdl-top"
COLUMNS = (
    ("cpu", "vCPU", 5),
    ("rate", "MiB/s", 7),
    ("source", "from", 6),
    ("limit", "limit", 7),
    ("spark", "last minute", 32),
    ("penalty", "penalty us/full", 16),
    ("full", "ring-full us", 13),
)


class MonitorBusyError(QmpdlError):
    """The socket accepted the connection but no greeting came."""


def parse_address(text: str) -> str | tuple[str, int]:
    """A unix socket path, or ``HOST:PORT`` for TCP."""
    host, colon, port = text.rpartition(":")
    if colon and port.isdigit() and "/" not in text:
        return (host.strip("[]") or "127.0.0.1", int(port))
    return text


async def connect(
    client: QMPClient,
    address: str | tuple[str, int],
    timeout: float,
    busy: Callable[[], bool] | None = None,
) -> None:
    """Connect and negotiate; MonitorBusyError when no greeting comes in ``timeout``.

    With ``busy``, called once the greeting is late: if it returns true, keep waiting
    on the same connection (it is queued at the monitor, which greets it when its
    client leaves; a fresh connect could find that queue full) instead of giving up."""
    attempt = asyncio.ensure_future(client.connect(address))
    done, _ = await asyncio.wait({attempt}, timeout=timeout)
    if attempt in done:
        attempt.result()
        return
    if busy is not None and busy():
        await attempt
        return
    attempt.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await attempt  # the cancelled connect ends (a failure then is no news)
    with contextlib.suppress(Exception):
        await client.disconnect()
    raise MonitorBusyError


class RateDialog(ModalScreen[int | None]):
    """Asks for a dirty page rate limit in MB/s."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "cancel")]

    def __init__(self, title: str, value: int | None) -> None:
        super().__init__()
        self.title_text = title
        self.value = value

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.title_text)
            yield Input(
                value="" if self.value is None else str(self.value),
                placeholder="MB/s",
                type="integer",
                id="rate",
            )
            yield Label("Enter: set   Esc: cancel")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        self.dismiss(int(text) if text.isdigit() else None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class TopApp(App[int]):
    """The live view."""

    TITLE = PROG
    CSS = """
    #head { height: auto; padding: 0 1; }
    #vcpus { height: 1fr; }
    #migration { height: auto; padding: 0 1; }
    #status { height: auto; padding: 0 1; color: $warning; }
    RateDialog { align: center middle; }
    #dialog { width: 50; height: auto; border: round $accent; padding: 0 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("l", "limit_one", "limit vCPU"),
        Binding("a", "limit_all", "limit all"),
        Binding("c", "cancel_one", "cancel vCPU"),
        Binding("x", "cancel_all", "cancel all"),
        Binding("d", "calc", "calc-dirty-rate"),
        Binding("q", "quit_top", "quit"),
    ]

    def __init__(
        self,
        client: QMPClient,
        where: str,
        *,
        metrics: str | None,
        interval: float,
        calc_interval: float,
        record: IO[str] | None,
    ) -> None:
        super().__init__()
        self.client = client
        self.where = where
        self.metrics = metrics
        self.interval = interval
        self.calc_interval = calc_interval
        self.state = TopState()
        self.record_to = record
        self.recorder: Recorder | None = None
        self.calc_mode = "dirty-ring"
        self.calc_running = False
        self.calc_forced = False
        self.next_calc = 0.0
        self.lost: str | None = None

    # ---------------------------------------------------------------- layout

    def compose(self) -> ComposeResult:
        yield Static(id="head")
        yield DataTable(id="vcpus", cursor_type="row", zebra_stripes=True)
        yield Static(id="migration")
        yield Static(id="status")
        yield Footer()

    async def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for key, label, width in COLUMNS:
            table.add_column(label, key=key, width=width)
        try:
            await self._setup()
        except (ExecuteError, ConnectionError, EOFError) as e:
            self.lost = f"{self.where}: {e}"
            self.exit(1)
            return
        self.run_worker(self._poll_forever(), exclusive=True, group="poll")

    async def _setup(self) -> None:
        greeting = self.client.greeting
        version = "?"
        if greeting is not None:
            q: Any = greeting.QMP.version["qemu"]
            version = f"{q['major']}.{q['minor']}.{q['micro']}"
        self.state.target = f"QEMU {version} at {self.where}"
        commands: Any = await self.client.execute("query-commands")
        self.state.commands = frozenset(c["name"] for c in commands)
        cpus: Any = await self.client.execute("query-cpus-fast")
        self.state.set_vcpus(sorted(c["cpu-index"] for c in cpus))
        table = self.query_one(DataTable)
        for cpu in self.state.vcpus:
            table.add_row(*self.state.row(cpu), key=str(cpu))
        if self.record_to is not None:
            self.recorder = Recorder(self.record_to, self.state.target)
        missing = self.state.missing()
        if missing:
            self.state.message = "not available here: " + "; ".join(missing)

    # ---------------------------------------------------------------- polling

    async def _poll_forever(self) -> None:
        while True:
            try:
                await self._poll()
            except (ConnectionError, EOFError) as e:
                self.lost = f"{self.where}: connection lost ({e or 'closed'})"
                self.exit(1)
                return
            self._render()
            await asyncio.sleep(self.interval)

    async def _execute(self, command: str, arguments: dict[str, Any] | None = None) -> Any:
        if self.client.runstate.name != "RUNNING":
            raise ConnectionError("the monitor closed the connection")
        return await self.client.execute(command, arguments)

    async def _poll(self) -> None:
        s = self.state
        status: Any = await self._execute("query-status")
        s.runstate = status["status"]
        if "query-vcpu-dirty-limit" in s.commands:
            limits: Any = await self._execute("query-vcpu-dirty-limit")
            s.update_limits(limits)
        if "query-migrate" in s.commands:
            s.migration = dict(await self._execute("query-migrate"))
        await self._calc_step()
        if self.metrics:
            await self._scrape()
        now = time.monotonic()
        s.tick(now)
        if self.recorder is not None:
            self.recorder.sample(s, now)

    async def _calc_step(self, force: bool = False) -> None:
        s = self.state
        if not {"calc-dirty-rate", "query-dirty-rate"} <= s.commands:
            return
        if self.calc_running:
            info: Any = await self._execute("query-dirty-rate")
            if s.update_calc(info):
                self.calc_running = False
                if self.calc_forced:
                    self.calc_forced = False
                    s.message = f"calc-dirty-rate ({self.calc_mode}): measured"
            return
        due = self.calc_interval > 0 and s.needs_calc() and time.monotonic() >= self.next_calc
        if not (due or force):
            return
        arguments: dict[str, Any] = {"calc-time": 1}
        if self.calc_mode == "dirty-ring":
            arguments["mode"] = "dirty-ring"
        try:
            await self._execute("calc-dirty-rate", arguments)
        except ExecuteError as e:
            desc = str(e)
            if self.calc_mode == "dirty-ring" and "not enabled" in desc:
                # No dirty ring: only a VM-wide page-sampling rate is to be had.
                self.calc_mode = "page-sampling"
                s.message = f"calc-dirty-rate dirty-ring: {desc} (page-sampling: VM-wide only)"
                await self._calc_step(force=True)
                return
            elif "already being measured" not in desc:
                s.message = f"calc-dirty-rate: {desc}"
                self.next_calc = time.monotonic() + max(self.calc_interval, 1)
                return
        self.calc_running = True
        self.calc_forced = force
        self.next_calc = time.monotonic() + max(self.calc_interval, 1)

    async def _scrape(self) -> None:
        from qmpdl.observe.scrape import scrape

        assert self.metrics is not None
        try:
            got = await asyncio.to_thread(scrape, self.metrics, 2.0)
        except (OSError, ValueError) as e:
            self.state.metrics_ok = False
            self.state.message = f"metrics {self.metrics}: {e}"
            return
        self.state.update_metrics(
            got.per_vcpu("qmpdl_vcpu_throttle_us_per_full"),
            got.per_vcpu("qmpdl_vcpu_ring_full_time_us"),
        )

    # ---------------------------------------------------------------- drawing

    def _render(self) -> None:
        s = self.state
        head = (
            f"{s.target}   run state: {s.runstate}"
            + (f"   VM {s.vm_rate} MiB/s (page-sampling)" if s.vm_rate is not None else "")
            + "\nholding this monitor: QMP serves one client at a time, others wait until "
            "you quit (q)"
        )
        if not self.metrics:
            head += "\npenalty and ring-full time: n/a (QMP does not carry them; qmpdl: "
            head += "--metrics HOST:PORT here and on qmpdl)"
        self.query_one("#head", Static).update(head)
        table = self.query_one(DataTable)
        for cpu in s.vcpus:
            for (key, _, _), value in zip(COLUMNS, s.row(cpu), strict=True):
                table.update_cell(str(cpu), key, value)
        self.query_one("#migration", Static).update(s.migration_line())
        self.query_one("#status", Static).update(s.message)

    # ---------------------------------------------------------------- keys

    def _selected(self) -> int | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return int(key) if key is not None else None

    async def _act(self, command: str, arguments: dict[str, Any], text: str) -> None:
        try:
            await self._execute(command, arguments)
            self.state.message = f"{text}: done"
        except ExecuteError as e:
            self.state.message = f"{text}: {e!s}"
        except (ConnectionError, EOFError) as e:
            self.state.message = f"{text}: {e}"
        if self.recorder is not None:
            self.recorder.action(self.state.message, time.monotonic())
        self._render()

    def _ask(self, cpu: int | None) -> None:
        current = self.state.vcpus[cpu].limit if cpu is not None else None
        title = f"Dirty page rate limit of vCPU {cpu}" if cpu is not None else "Limit every vCPU"

        def done(rate: int | None) -> None:
            if rate is None:
                return
            arguments: dict[str, Any] = {"dirty-rate": rate}
            if cpu is not None:
                arguments["cpu-index"] = cpu
            where = f"vCPU {cpu}" if cpu is not None else "all vCPUs"
            self.run_worker(
                self._act("set-vcpu-dirty-limit", arguments, f"limit {where} to {rate} MB/s")
            )

        self.push_screen(RateDialog(title + " (MB/s):", current), done)

    def action_limit_one(self) -> None:
        cpu = self._selected()
        if cpu is not None:
            self._ask(cpu)

    def action_limit_all(self) -> None:
        self._ask(None)

    def action_cancel_one(self) -> None:
        cpu = self._selected()
        if cpu is not None:
            self.state.message = f"cancelling the limit of vCPU {cpu}..."
            self._render()
            self.run_worker(
                self._act(
                    "cancel-vcpu-dirty-limit", {"cpu-index": cpu}, f"cancel limit of vCPU {cpu}"
                )
            )

    def action_cancel_all(self) -> None:
        self.state.message = "cancelling every limit..."
        self._render()
        self.run_worker(self._act("cancel-vcpu-dirty-limit", {}, "cancel every limit"))

    async def action_calc(self) -> None:
        self.state.message = f"calc-dirty-rate ({self.calc_mode}, 1 s)..."
        self._render()
        try:
            await self._calc_step(force=True)
        except (ConnectionError, EOFError) as e:
            self.state.message = f"calc-dirty-rate: {e}"

    def action_quit_top(self) -> None:
        self.exit(0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--qmp", required=True, help="QMP socket: PATH or HOST:PORT")
    parser.add_argument(
        "--metrics", metavar="URL", help="a qmpdl --metrics endpoint (HOST:PORT or URL)"
    )
    parser.add_argument("--record", metavar="FILE", help="save what is seen (for qmpdl-plot)")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between polls")
    parser.add_argument(
        "--calc-interval",
        type=float,
        default=5.0,
        help="seconds between calc-dirty-rate runs for vCPUs without a limit (0: never)",
    )
    parser.add_argument(
        "--greeting-timeout",
        type=float,
        default=3.0,
        help="seconds to wait for the monitor's greeting before calling it busy",
    )
    parser.add_argument(
        "--wait", action="store_true", help="if the monitor is busy, wait until it is free"
    )
    opts = parser.parse_args(argv)
    if opts.interval <= 0:
        parser.error("--interval must be positive")
    try:
        return asyncio.run(_run(opts))
    except KeyboardInterrupt:
        return 0


async def _run(opts: argparse.Namespace) -> int:
    address = parse_address(opts.qmp)
    client = QMPClient(PROG)
    text = (
        f"{PROG}: {opts.qmp}: connected, but no QMP greeting within "
        f"{opts.greeting_timeout:g} s: the monitor is busy with another client (a QMP "
        "socket serves one client at a time). Not taking it"
    )

    def busy() -> bool:
        if opts.wait:
            print(text + "; waiting until it is free (--wait).", file=sys.stderr, flush=True)
        return bool(opts.wait)

    try:
        await connect(client, address, opts.greeting_timeout, busy)
    except MonitorBusyError:
        print(text + "; use another -qmp socket, or --wait.", file=sys.stderr)
        return 2
    except (ConnectError, OSError) as e:
        print(f"{PROG}: cannot connect to {opts.qmp}: {e}", file=sys.stderr)
        return 1
    record = None
    if opts.record:
        try:
            record = open(opts.record, "w")  # noqa: SIM115 - open for the app's life
        except OSError as e:
            await client.disconnect()
            print(f"{PROG}: {opts.record}: {e.strerror}", file=sys.stderr)
            return 1
    app = TopApp(
        client,
        opts.qmp,
        metrics=opts.metrics,
        interval=opts.interval,
        calc_interval=opts.calc_interval,
        record=record,
    )
    try:
        status = await app.run_async()
    finally:
        with contextlib.suppress(Exception):
            await client.disconnect()
        if record is not None:
            record.close()
    if app.lost:
        print(f"{PROG}: {app.lost}", file=sys.stderr)
    return status if status is not None else 1


if __name__ == "__main__":
    sys.exit(main())
