"""qmpdl-plot: QEMU 7.2's real traces, qmpdl's own trace of a run and qmpdl-top
recordings rendered to PNG and HTML; the images are checked (size, drawn lines, ink in
the plot area) and the tables against the traces' own figures."""

from __future__ import annotations

import io
import json
import math
import time
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.image import imread

from qmpdl.observe.plot import html_page, limit_phases, main, png_bytes, render
from qmpdl.observe.run import RECORDING_MAGIC, RunFormatError, load
from tests.anchors.phases import converged_at
from tests.anchors.phases import limit_phases as qemu_limit_phases
from tests.anchors.traces import trace_names, traces_dir
from tests.observe.conftest import Observed, Qmp


def _ink(fig: Figure, png: bytes) -> list[float]:
    """Per axes: the share of coloured pixels inside it (data lines are coloured; the
    grid, frame and text are grey)."""
    image = imread(io.BytesIO(png))[:, :, :3]
    height = image.shape[0]
    out = []
    for ax in fig.axes:
        box = ax.get_window_extent()
        x0, x1 = int(box.x0) + 2, int(box.x1) - 2
        y0, y1 = height - int(box.y1) + 2, height - int(box.y0) - 2
        area = image[y0:y1, x0:x1]
        assert area.size > 0
        out.append(float((area.max(axis=2) - area.min(axis=2) > 0.3).mean()))
    return out


def _check_image(fig: Figure, png: bytes, vcpus: int) -> None:
    image = imread(io.BytesIO(png))
    assert image.shape[1] == 1000 and image.shape[0] >= 450  # 10 in x 100 dpi
    rate_ax = fig.axes[0]
    # at least a rate line or calc markers, and a limit, per vCPU
    assert len(rate_ax.get_lines()) >= 2 * vcpus
    for ink in _ink(fig, png):
        assert ink > 0.001, ink  # data drawn in every plot area (empty: ~0.0002)
    assert float(np.var(image[:, :, :3])) > 0.001


@pytest.mark.parametrize("run", trace_names())
def test_qemu_traces_render(run: str, tmp_path: Path) -> None:
    path = traces_dir() / f"{run}.qemu-trace.log.gz"
    r = load(path)
    nr = 2 if run.startswith("smp2") else 1
    assert r.vcpus == list(range(nr))
    assert all(len(r.rates[c]) >= 5 for c in range(nr))
    assert r.penalties, "QEMU traces every penalty sleep"
    fig = render(r)
    png = png_bytes(fig)
    _check_image(fig, png, nr)
    assert len(fig.axes) == 2  # rates, penalty
    # The table's phases agree with the anchors' own reading of the trace.
    if nr == 1:
        ours = [p for p in limit_phases(r) if p.cpu == 0]
        theirs = qemu_limit_phases(run)
        assert [p.limit for p in ours] == [p.quota for p in theirs]
        assert [p.periods for p in ours] == [len(p.rates) for p in theirs]
        assert [p.first_within for p in ours] == [converged_at(p.rates, p.quota) for p in theirs]
    out, page = tmp_path / "run.png", tmp_path / "run.html"
    assert main([str(path), "-o", str(out), "--html", str(page)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = page.read_text()
    assert "data:image/png;base64," in text
    assert "<script" not in text and "http" not in text.replace("http-equiv", "")


def _wait_periods(proc: Observed, qmp: Qmp, periods: int, timeout: float = 60) -> set[int]:
    """vCPU 0's current-rate readings until ``periods`` throttle periods have passed
    (counted by the metrics: consecutive periods often read the same)."""
    seen: set[int] = set()
    deadline = time.monotonic() + timeout
    while (proc.scrape().value("qmpdl_dirtylimit_periods_total") or 0) < periods:
        assert time.monotonic() < deadline
        seen.add(qmp("query-vcpu-dirty-limit")[0]["current-rate"])
        time.sleep(0.2)
    return seen - {0}


def test_qmpdls_own_trace_renders_with_its_penalties(
    observed: list[Observed], tmp_path: Path
) -> None:
    trace = tmp_path / "qmpdl-trace.log"
    proc = Observed(
        [
            "-smp",
            "2",
            "-accel",
            "sim,dirty-ring-size=4096",
            "-trace",
            "dirtylimit_*",
            "-trace",
            "dirtyrate_*",
            "-D",
            str(trace),
        ],
    )
    observed.append(proc)
    qmp = Qmp(proc.a)
    qmp("set-vcpu-dirty-limit", **{"cpu-index": 0, "dirty-rate": 100})
    shown = _wait_periods(proc, qmp, 4)
    qmp("cancel-vcpu-dirty-limit")
    qmp("quit")
    proc.wait()
    r = load(trace)
    assert r.vcpus == [0, 1]
    rates = [v for v in r.rates[0].v if not math.isnan(v)]
    assert shown and shown <= set(rates)  # what QMP showed is what the trace holds
    assert r.limits[0].v[0] == 100 and r.limits[0].v[-1] == 0
    assert r.penalties[0].v and max(v for v in r.penalties[0].v if not math.isnan(v)) > 0
    assert 1 not in r.penalties  # vCPU 1 was never limited: it never slept
    fig = render(r)
    _check_image(fig, png_bytes(fig), 2)
    (phase,) = [p for p in limit_phases(r) if p.cpu == 0]
    assert phase.limit == 100 and phase.periods >= 4


def test_migration_phases_from_qmpdls_trace(observed: list[Observed], tmp_path: Path) -> None:
    trace = tmp_path / "src-trace.log"
    machine = ["-smp", "1", "-m", "64M", "-accel", "sim,dirty-ring-size=4096"]
    dst = Observed([*machine, "-incoming", "defer"], metrics=False)
    observed.append(dst)
    src = Observed(
        [
            *machine,
            "--workload",
            "all:write,rate=400",
            "-trace",
            "dirtylimit_*",
            "-trace",
            "dirtyrate_*",
            "-trace",
            "migrate_set_state",
            "-trace",
            "migration_*",
            "-D",
            str(trace),
        ],
        metrics=False,
    )
    observed.append(src)
    Qmp(dst.a)("migrate-incoming", uri=f"unix:{dst.dir / 'mig.sock'}")
    qmp = Qmp(src.a)
    qmp("migrate-set-capabilities", capabilities=[{"capability": "dirty-limit", "state": True}])
    # 1 GbE; vcpu-dirty-limit stays at its default (1 MB/s): the writer converges
    qmp("migrate-set-parameters", **{"max-bandwidth": 125_000_000})
    qmp("migrate", uri=f"unix:{dst.dir / 'mig.sock'}")
    deadline = time.monotonic() + 90
    while (info := qmp("query-migrate"))["status"] != "completed":
        assert info["status"] in ("setup", "active", "device"), info
        assert time.monotonic() < deadline, info
        time.sleep(0.2)
    qmp("quit")
    src.wait()
    r = load(trace)
    labels = [p.label for p in r.phases]
    # QEMU 9.1+ (the default profile is 10.0) always passes through "device" at switchover
    assert labels == ["setup", "active", "device", "completed"]
    # Whether the dirty limit engaged before the end depends on the machine's speed;
    # when it did, it is the migration's own (vcpu-dirty-limit's default, 1 MB/s).
    if r.limits:
        assert any(text == "migration limits the guest" for _, text in r.events)
        assert r.limits[0].v[0] == 1
    fig = render(r)
    png = png_bytes(fig)
    assert imread(io.BytesIO(png)).shape[1] == 1000
    spans = [p for ax in fig.axes for p in ax.patches]
    assert len(spans) == len(fig.axes) * len(labels)  # every phase shaded on every axes


def _recording(path: Path) -> Path:
    lines = [{RECORDING_MAGIC: 1, "target": "QEMU 7.2.22 at qmp.sock"}]
    for i in range(30):
        limited = i >= 5
        lines.append(
            {
                "t": i * 0.5,
                "vcpus": [
                    {
                        "cpu": 0,
                        "rate": 110 if limited else 450,
                        "source": "limit" if limited else "calc",
                        "limit": 100 if limited else None,
                        "penalty_us": 70000 if limited else None,
                    }
                ],
                "migration": {"status": "active" if 10 <= i < 20 else "none"},
            }
        )
    lines.insert(7, {"t": 2.5, "action": "set-vcpu-dirty-limit dirty-rate=100: ok"})
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    return path


def test_a_recording_renders(tmp_path: Path) -> None:
    r = load(_recording(tmp_path / "rec.jsonl"))
    assert r.source == "recording" and r.vcpus == [0]
    assert len(r.calc_rates[0]) == 5 and len(r.rates[0]) == 25
    assert [(p.label, p.start, p.end) for p in r.phases] == [("active", 5.0, 10.0)]
    assert (2.5, "set-vcpu-dirty-limit dirty-rate=100: ok") in r.events
    fig = render(r)
    png = png_bytes(fig)
    _check_image(fig, png, 1)
    page = html_page(r, png)
    assert "<td>active</td><td>5.0</td><td>10.0</td>" in page


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty file"),
        ('{"a": 1}\n', "a JSON file, but not a qmpdl-top recording"),
        ("hello\n", "neither a trace log"),
        ("dirtylimit_set_vcpu CPU[0] set dirty page rate limit 5\n", "-msg timestamp=on"),
        ("1@2.5:kvm_dirty_ring_full vcpu 0\n", "no dirty-limit, dirty-rate or migration events"),
    ],
)
def test_unreadable_runs_are_clear_errors(
    content: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "run.log"
    path.write_text(content)
    with pytest.raises(RunFormatError, match=message):
        load(path)
    assert main([str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"qmpdl-plot: {path}: ") and message in err
    assert main([str(tmp_path / "missing.log")]) == 1
