"""A migration on the virtual clock: the link takes ``max-bandwidth`` time, the
destination follows the source's clock without being stepped, the same run gives the
same bytes, and stream faults hit the migration they name."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

from qmpdl.vtime.scenario import ScenarioError, load_scenario
from tests.vtime.helpers import SECOND, VIRTUAL, Vm, vm

#: the example's guest: a writer whose working set does not fit in the downtime at
#: 20 MB/s (see examples/test_virtual_time.py)
WRITER = (
    *("-accel", "sim,dirty-ring-size=1024,clock=virtual", "--seed", "3"),
    *("-m", "32M", "--workload", "0:write,rate=256,wss=12M"),
)


@contextmanager
def destinations(workdir: Path, count: int, *options: str) -> Iterator[tuple[list[Vm], list[str]]]:
    """``count`` destinations listening on their own sockets, and their URIs."""
    with ExitStack() as stack:
        dsts, uris = [], []
        for i in range(count):
            uri = f"unix:{workdir}/mig{i}.sock"
            dsts.append(
                stack.enter_context(vm(*options, "-incoming", uri, workdir=workdir, name=f"d{i}"))
            )
            uris.append(uri)
        yield dsts, uris


def run_until(src: Vm, states: tuple[str, ...], seconds: float, step: float = 0.25) -> Any:
    """Step the source until its migration reaches one of ``states`` (or time is up)."""
    waited = 0.0
    info = src.ok("query-migrate")
    while info["status"] not in states and waited < seconds:
        src.step(step)
        waited += step
        info = src.ok("query-migrate")
    return info


# ---------------------------------------------------------------- the link's time


def test_sending_n_bytes_at_b_bytes_per_second_takes_n_over_b() -> None:
    """A paused guest's bulk pass: nothing is dirtied meanwhile, so the migration sends
    its RAM once; at B bytes/s its N bytes take N/B seconds of the clock (within one
    100 ms rate window), and the destination's clock is there too."""
    bandwidth = 10_000_000
    workdir = Path(tempfile.mkdtemp(prefix="qmpdl-vtime-"))
    guest = (*VIRTUAL, "-m", "32M", "--workload", "0:write,rate=100,wss=8M")
    with destinations(workdir, 1, *guest) as ((dst,), (uri,)), vm(*guest, workdir=workdir) as src:
        src.step(1.0)  # 100 MiB written over 8 MiB: every page of the working set
        src.ok("stop")
        src.ok("migrate-set-parameters", **{"max-bandwidth": bandwidth})
        start = src.now()
        src.ok("migrate", uri=uri)
        src.step(0.5)
        early = src.ok("query-migrate")
        assert early["status"] == "active"
        info = run_until(src, ("completed", "failed"), 5.0, step=0.05)
        assert info["status"] == "completed"
        sent = info["ram"]["transferred"]
        assert sent > 8 << 20  # the working set went as full pages (4 KiB each)
        expected_ms = sent / bandwidth * 1000
        assert abs(info["total-time"] - expected_ms) <= 100, (info["total-time"], expected_ms)
        # half a second in, half a second's worth had gone
        assert abs(early["ram"]["transferred"] - bandwidth / 2) <= bandwidth / 10
        assert src.now() - start < (expected_ms / 1000 + 0.1) * SECOND
        # the destination loaded it all at the instant the source finished
        assert dst.ok("query-status")["status"] == "paused"  # the source's run state
        done_at = start + info["total-time"] * 1_000_000
        assert abs(dst.now() - done_at) <= 2_000_000


# ---------------------------------------------------------------- the whole run


def _converging_run(workdir: Path) -> tuple[Any, list[dict[str, Any]], list[dict[str, Any]], Any]:
    """The example's migration (converges only with dirty-limit): the source's last
    query-migrate, both sides' events, and the destination's status right after."""
    workdir.mkdir()
    with (
        destinations(workdir, 1, *WRITER) as ((dst,), (uri,)),
        vm(*WRITER, workdir=workdir) as src,
    ):
        caps = [{"capability": c, "state": True} for c in ("dirty-limit", "events")]
        dst.ok("migrate-set-capabilities", capabilities=caps[1:])
        src.ok("migrate-set-capabilities", capabilities=caps)
        src.ok("migrate-set-parameters", **{"max-bandwidth": 20_000_000, "downtime-limit": 400})
        src.step(1.0)
        src.ok("migrate", uri=uri)
        info = run_until(src, ("completed", "failed"), 10.0, step=0.5)
        status = dst.ok("query-status")  # no wait: the destination is done already
        dst.ok("query-migrate")
        return info, src.events, dst.events, status


def test_the_destination_follows_and_every_run_is_the_same(tmp_path: Path) -> None:
    first = _converging_run(tmp_path / "a")
    info, src_events, dst_events, status = first
    assert info["status"] == "completed"
    assert status["status"] == "running"
    assert info["dirty-limit-throttle-time-per-round"] > 0  # the trigger fired

    # the destination's events carry the source's times: it resumes when the source
    # completes, after the downtime that began with the source's STOP
    def at(events: list[dict[str, Any]], name: str, status: str | None = None) -> int:
        (event,) = [
            e
            for e in events
            if e["event"] == name and (status is None or e["data"]["status"] == status)
        ]
        ts = event["timestamp"]
        return int(ts["seconds"]) * 1_000_000 + int(ts["microseconds"])

    completed = at(src_events, "MIGRATION", "completed")
    assert at(dst_events, "RESUME") == completed
    assert at(dst_events, "MIGRATION", "completed") == completed
    assert (completed - at(src_events, "STOP")) // 1000 == info["downtime"]
    assert info["downtime"] > 0  # the rest went at 20 MB/s after the stop
    # and a second run in two new processes: the same bytes, timestamps included
    assert _converging_run(tmp_path / "b") == first


# ---------------------------------------------------------------- stream faults


def _scenario(tmp_path: Path, migration: str, name: str = "faults") -> str:
    path = tmp_path / f"{name}.toml"
    path.write_text(
        f"[[faults]]\nkind = 'migration-stream'\naction = 'cut'\noffset = 1000000\n"
        f"migration = {migration}\n"
    )
    return str(path)


@pytest.mark.parametrize(
    ("migration", "outcomes"),
    [
        ("1", ["failed", "completed"]),
        ("'each'", ["failed", "failed"]),
        ("2", ["cancelled", "failed"]),
    ],
)
def test_a_stream_fault_hits_the_migration_it_names(
    tmp_path: Path, migration: str, outcomes: list[str]
) -> None:
    """A cut in the first, in each, or in the second migration of the source (the
    first one cancelled, so a second may start); each on a destination of its own."""
    workdir = Path(tempfile.mkdtemp(prefix="qmpdl-vtime-", dir=tmp_path))
    guest = ("-m", "64M", "--workload", "0:write,rate=100,wss=4M")
    scenario = _scenario(tmp_path, migration)
    with (
        destinations(workdir, 2, *VIRTUAL, *guest) as (dsts, uris),
        vm(*VIRTUAL, *guest, "--scenario", scenario, workdir=workdir) as src,
    ):
        src.step(1.0)
        src.ok("migrate-set-parameters", **{"max-bandwidth": 20_000_000})
        seen = []
        for n, (dst, uri) in enumerate(zip(dsts, uris, strict=True)):
            src.ok("migrate", uri=uri)
            if outcomes[n] == "cancelled":
                src.step(0.02)  # under 1 MB sent: not cut
                src.ok("migrate_cancel")
                src.step(0.1)
                info = src.ok("query-migrate")
            else:
                info = run_until(src, ("completed", "failed"), 10.0)
            seen.append(info["status"])
            if info["status"] == "failed":
                assert info["error-desc"] == "Unable to write to socket: Broken pipe"
            if info["status"] != "completed":
                assert dst.proc.proc.wait(30) == 1  # its load failed
            else:
                assert dst.ok("query-status")["status"] == "running"
        assert seen == outcomes
        # each cut where the scenario says, in the bytes ram.transferred counts
        cuts = src.proc.stderr().count("scenario: migration stream cut at byte 1000000")
        assert cuts == outcomes.count("failed")


def test_the_migration_a_fault_names_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as err:
        load_scenario(_scenario(tmp_path, "0"))
    assert (
        "faults.toml:5: faults[0].migration-stream.migration: Value error, 0: expected the "
        "number of an outgoing migration of the process (1: the first) or 'each'"
    ) in str(err.value)
    with pytest.raises(ScenarioError, match=r"other\.toml:5: .*'first': expected"):
        load_scenario(_scenario(tmp_path, "'first'", "other"))


# ---------------------------------------------------------------- the stream's records


def _marks_stream(damage_at: int | None = None) -> tuple[bytes, int]:
    import numpy as np

    from qmpdl.migration.stream import StreamWriter

    w = StreamWriter()
    pages = np.array([3, 4, 9], dtype=np.int64)
    marks = np.array([7, 0, 200], dtype=np.uint8)
    record, size = w.marks(pages, marks == 0, marks)
    if damage_at is not None:
        record = record[:damage_at] + bytes([record[damage_at] ^ 0xFF]) + record[damage_at + 1 :]
    head = w.header(16 * 4096, 1, {})
    return head + record + w.sync(1001.5) + w.pass_end(1) + w.end(), size


def test_marks_and_sync_records() -> None:
    from qmpdl.migration.stream import Pages, StreamReader, Sync

    stream, size = _marks_stream()
    assert size == 5 + 3 * 8 + 2 * 4096  # what the PAGES record would be
    reader = StreamReader()
    for i in range(0, len(stream), 3):  # any chunking
        reader.feed(stream[i : i + 3])
    records = list(reader.records())
    pages = next(r for r in records if isinstance(r, Pages))
    assert pages.pages.tolist() == [3, 4, 9] and pages.zero.tolist() == [False, True, False]
    assert pages.marks is not None and pages.marks.tolist() == [7, 200]
    assert [r.time for r in records if isinstance(r, Sync)] == [1001.5]


@pytest.mark.parametrize("at", range(1, 39))
def test_a_damaged_marks_record_fails_and_never_hangs(at: int) -> None:
    """Every byte of a MARKS record (but its type) flipped: an error, not a wait."""
    from qmpdl.migration.stream import StreamError, StreamReader

    stream, _ = _marks_stream(damage_at=at)
    reader = StreamReader()
    reader.feed(stream)
    with pytest.raises(StreamError):
        list(reader.records())
