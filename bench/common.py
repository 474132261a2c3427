"""Shared pieces of the benchmarks: where results go, what machine they ran on, how
QEMU and qmpdl are started, the options every benchmark takes."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def machine() -> dict[str, Any]:
    """A description of the host, stored with every result."""
    from qmpdl.tools.qemu import ORACLES

    qemus = {}
    for version, oracle in ORACLES.items():
        path = oracle.path()
        if path is not None:
            out = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
            qemus[version] = out.stdout.splitlines()[0]
    try:
        from qmpdl.kvm.vm import kvm_module

        kvm = kvm_module()
    except Exception:  # the bench must not fail on a machine without KVM
        kvm = "unavailable"
    with open("/proc/cpuinfo") as f:
        models = {line.split(":", 1)[1].strip() for line in f if line.startswith("model name")}
    return {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "host": platform.node(),
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
        "cpu_model": sorted(models),
        "kvm": kvm,
        "python": sys.version.split()[0],
        "qemu": qemus.get("7.2", "not installed"),
        "qemus": qemus,
        "loadavg": os.getloadavg(),
    }


def save(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **data}, indent=1) + "\n")
    return path


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def mean_sd(values: list[float]) -> tuple[float, float]:
    if not values:
        return float("nan"), float("nan")
    return statistics.mean(values), statistics.pstdev(values)


def qemu_command(version: str = "7.2") -> list[str]:
    """QEMU ``version``'s binary (and ``-L`` directory), or exit with how to get it."""
    from qmpdl.tools.qemu import oracle

    command = oracle(version).command()
    if command is None:
        raise SystemExit(oracle(version).missing())
    return command


def qemu_available(version: str) -> bool:
    from qmpdl.tools.qemu import oracle

    return oracle(version).path() is not None


def qemu_argv(*args: str, version: str = "7.2") -> list[str]:
    """QEMU ``version`` as every benchmark runs it: KVM with a 4096-entry dirty ring, a
    pc board, no display or default devices; ``args`` add the rest."""
    return [
        *qemu_command(version),
        "-accel",
        "kvm,dirty-ring-size=4096",
        "-machine",
        "pc",
        "-nographic",
        "-nodefaults",
        *args,
    ]


def qmpdl_argv(*args: str) -> list[str]:
    """qmpdl from this checkout's Python; ``args`` are its options."""
    return [sys.executable, "-m", "qmpdl", *args]


def parser(doc: str | None, quick: str) -> argparse.ArgumentParser:
    """The options every benchmark has: ``--quick`` (what it does: ``quick``),
    ``--runs`` and ``--report JSON``; the description is the docstring's first line."""
    out = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    out.add_argument("--quick", action="store_true", help=quick)
    out.add_argument("--runs", type=int, default=3)
    out.add_argument("--report", metavar="JSON", help="print the table(s) of a saved result")
    return out
