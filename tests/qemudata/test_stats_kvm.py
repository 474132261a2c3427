"""query-stats and query-stats-schemas with real vCPUs (``-accel kvm``): qmpdl reads
its own VM's KVM statistics as QEMU reads its VM's, so with the same host KVM the
schemas are identical, and the statistics differ only in what the guests did."""

from __future__ import annotations

import json
import re
import sys
from typing import Any

import pytest

from qmpdl.tools.qemu import qemu_binary
from tests.conftest import need_kvm
from tests.qemudata.live import answers

REQUESTS: list[dict[str, Any] | str] = [
    {"execute": "query-stats-schemas"},
    {"execute": "query-stats-schemas", "arguments": {"provider": "kvm"}},
    {"execute": "query-stats", "arguments": {"target": "vm"}},
    {"execute": "query-stats", "arguments": {"target": "vcpu"}},
    {
        "execute": "query-stats",
        "arguments": {
            "target": "vcpu",
            "vcpus": ["/machine/unattached/device[2]"],
            "providers": [{"provider": "kvm", "names": ["exits", "halt_wait_hist"]}],
        },
    },
]
_VALUE = re.compile(r'"value": (?:\d+|true|false|\[[\d, ]*\])')


@pytest.mark.kvm
@pytest.mark.qemu
def test_kvm_statistics_as_qemu_reads_them() -> None:
    need_kvm()
    binary = qemu_binary()
    assert binary is not None
    machine = ["-S", "-m", "128", "-smp", "2"]
    qemu_argv = [binary, "-nodefaults", "-nographic", "-machine", "pc", "-accel", "kvm"]
    qemu = answers([*qemu_argv, *machine], REQUESTS)
    ours_argv = [sys.executable, "-m", "qmpdl", "--qemu-version", "7.2", "-accel", "kvm"]
    ours = answers([*ours_argv, *machine], REQUESTS)
    assert ours[:2] == qemu[:2]
    assert [_VALUE.sub("V", line) for line in ours[2:]] == [
        _VALUE.sub("V", line) for line in qemu[2:]
    ]
    # the same statistics with their shapes: histograms as many buckets as QEMU's
    shapes = [json.loads(line)["return"] for line in (ours[4], qemu[4])]
    assert [
        [len(s["value"]) if isinstance(s["value"], list) else 1 for s in r["stats"]]
        for r in shapes[0]
    ] == [
        [len(s["value"]) if isinstance(s["value"], list) else 1 for s in r["stats"]]
        for r in shapes[1]
    ]
