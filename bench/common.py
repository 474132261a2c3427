"""Shared pieces of the benchmarks: where results go, what machine they ran on."""

from __future__ import annotations

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
    qemu = subprocess.run(
        ["qemu-system-x86_64", "--version"], capture_output=True, text=True, check=False
    ).stdout.splitlines()
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
        "qemu": qemu[0] if qemu else "not installed",
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


def qemu_path() -> str:
    """``qemu-system-x86_64``, or exit with how to install it."""
    from qmpdl.tools.qemu import qemu_binary

    binary = qemu_binary()
    if binary is None:
        raise SystemExit("qemu-system-x86_64 not found: apt-get install -y qemu-system-x86")
    return binary
