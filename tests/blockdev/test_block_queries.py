"""The block queries (and the device containers) of a domain with two disks and a
NIC, given as libvirt 9.0 gives them: ``-blockdev`` pairs (a ``file`` protocol node
under a ``qcow2`` or ``raw`` format node), ``-device virtio-blk-pci,drive=...``,
``-netdev`` + ``-device virtio-net-pci``, an I/O thread.

qmpdl and QEMU 7.2 look at the same image files; their answers must be identical
once the scratch directory's path is masked.  Offline the reference is QEMU's answer
recorded in ``golden-qemu-7.2.json`` (``python -m tests.blockdev.test_block_queries``
re-records it), where ``actual-size`` (what the host file system allocated) is masked
too.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from qmpdl.tools.normalize import normalize_line
from qmpdl.tools.qemu import qemu_binary
from tests.conftest import _require
from tests.qemudata import live

GOLDEN = Path(__file__).with_name("golden-qemu-7.2.json")
DIR = "<DIR>"

QUERIES: list[dict[str, Any] | str] = [
    {"execute": "query-block"},
    {"execute": "query-named-block-nodes"},
    {"execute": "query-named-block-nodes", "arguments": {"flat": True}},
    {"execute": "query-blockstats"},
    {"execute": "query-blockstats", "arguments": {"query-nodes": True}},
    {"execute": "query-iothreads"},
    {"execute": "qom-list", "arguments": {"path": "/machine/peripheral"}},
    {"execute": "qom-list", "arguments": {"path": "/objects"}},
]


def images(directory: Path) -> None:
    """A fresh 64 MiB qcow2 image and a 32 MiB raw one (made by qemu-img, or by hand)."""
    qcow2, raw = directory / "disk0.qcow2", directory / "disk1.raw"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(qcow2), "64M"], check=True)
    with open(raw, "wb") as f:
        f.truncate(32 << 20)


def machine(directory: Path) -> tuple[list[str], dict[str, object]]:
    """QEMU's options and the MachineConfig fields presenting the same domain."""
    blockdevs: list[dict[str, object]] = []
    devices: list[dict[str, object]] = []
    for i, (name, fmt) in enumerate((("disk0.qcow2", "qcow2"), ("disk1.raw", "raw"))):
        storage = f"libvirt-{2 - i}-storage"
        blockdevs.append(
            {
                "driver": "file",
                "filename": str(directory / name),
                "node-name": storage,
                "auto-read-only": True,
                "discard": "unmap",
            }
        )
        blockdevs.append(
            {
                "node-name": f"libvirt-{2 - i}-format",
                "read-only": False,
                "driver": fmt,
                "file": storage,
            }
        )
        devices.append(
            {
                "driver": "virtio-blk-pci",
                "bus": "pci.0",
                "addr": f"0x{4 + i}",
                "drive": f"libvirt-{2 - i}-format",
                "id": f"virtio-disk{i}",
            }
        )
    netdev = {"type": "user", "id": "hostnet0"}
    devices.append(
        {
            "driver": "virtio-net-pci",
            "netdev": "hostnet0",
            "id": "net0",
            "mac": "52:54:00:12:34:56",
            "bus": "pci.0",
            "addr": "0x3",
        }
    )
    objects = [{"qom-type": "iothread", "id": "iothread1"}]
    qemu = ["-machine", "pc-i440fx-7.2,usb=off", "-accel", "kvm", "-m", "128", "-S"]
    qemu += [x for o in objects for x in ("-object", json.dumps(o))]
    qemu += [x for b in blockdevs for x in ("-blockdev", json.dumps(b))]
    qemu += ["-netdev", json.dumps(netdev)]
    qemu += [x for d in devices for x in ("-device", json.dumps(d))]
    fields: dict[str, object] = {
        "machine_type": "pc-i440fx-7.2",
        "machine_props": {"usb": "off"},
        "objects": objects,
        "blockdevs": blockdevs,
        "netdevs": [netdev],
        "devices": devices,
    }
    return qemu, fields


def answers(argv: list[str], directory: Path) -> list[str]:
    lines = live.answers(argv, QUERIES, workdir=directory)
    return [normalize_line(line.replace(str(directory), DIR)).rstrip("\r\n") for line in lines]


def run_qemu(directory: Path) -> list[str]:
    binary = qemu_binary()
    assert binary is not None
    qemu, _ = machine(directory)
    return answers([binary, "-nographic", "-nodefaults", *qemu], directory)


def run_qmpdl(directory: Path) -> list[str]:
    _, fields = machine(directory)
    argv = [sys.executable, "-m", "qmpdl.tools.serve_config", json.dumps(fields)]
    argv += ["--qemu-version", "7.2", "-accel", "sim", "-m", "128", "-S"]
    return answers(argv, directory)


_SIZE = re.compile(r'"actual-size": \d+')


def offline(lines: list[str]) -> list[str]:
    return [_SIZE.sub('"actual-size": N', line) for line in lines]


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    if shutil.which("qemu-img") is None:
        if _require("QMPDL_REQUIRE_QEMU"):
            pytest.fail("qemu-img (Debian's qemu-utils) is not installed (QMPDL_REQUIRE_QEMU=1)")
        pytest.skip("qemu-img is not installed")
    images(tmp_path)
    return tmp_path


def test_block_queries_match_recorded_qemu(directory: Path) -> None:
    golden = json.loads(GOLDEN.read_text())
    assert offline(run_qmpdl(directory)) == golden


@pytest.mark.qemu
def test_block_queries_match_live_qemu(directory: Path) -> None:
    qemu = run_qemu(directory)
    assert run_qmpdl(directory) == qemu
    assert offline(qemu) == json.loads(GOLDEN.read_text()), "re-record the golden"


def main() -> int:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        images(Path(tmp))
        GOLDEN.write_text(json.dumps(offline(run_qemu(Path(tmp))), indent=1) + "\n")
    print(f"wrote {GOLDEN}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
