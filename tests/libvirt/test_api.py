"""The libvirt Python API (``libvirt_qemu.qemuMonitorCommand``,
``virDomain.startDirtyRateCalc``, ``virConnect.getAllDomainStats`` with the dirty-rate
group) against qmpdl, on sim and kvm vCPUs.  Debian's binding runs in the system
Python (see ``api_flow.py``)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.libvirt.conftest import DomainFactory

pytestmark = pytest.mark.slow

SYSTEM_PYTHON = "/usr/bin/python3"
FLOW = Path(__file__).with_name("api_flow.py")


def test_python_api_flow(domains: DomainFactory, backend: str) -> None:
    dom = domains.start(backend)
    result = subprocess.run(
        [SYSTEM_PYTHON, str(FLOW), dom.libvirtd.uri, dom.name],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["set"] == {"return": {}, "id": out["set"]["id"]}
    assert out["set"]["id"].startswith("libvirt-")
    limits = out["query"]["return"]
    assert [(v["cpu-index"], v["limit-rate"]) for v in limits] == [(0, 80), (1, 80)]
    assert out["hmp"].startswith("vcpu[0], limit rate 80 (MB/s), current rate ")
    assert out["cancel"]["return"] == {}
    for mode, stats in out["dirtyrate"].items():
        assert stats["dirtyrate.calc_status"] == 2, (mode, stats)
        assert stats["dirtyrate.calc_mode"] == mode
        assert stats["dirtyrate.megabytes_per_second"] > 50, (mode, stats)
    ring = out["dirtyrate"]["dirty-ring"]
    assert ring["dirtyrate.vcpu.0.megabytes_per_second"] > 25
    assert ring["dirtyrate.vcpu.1.megabytes_per_second"] > 25
    assert out["all_domains"][dom.name]["dirtyrate.calc_mode"] == "dirty-ring"
    assert out["state"] == [1, 1]  # running, booted
