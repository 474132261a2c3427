"""The libvirt Python API against a running qmpdl domain; run by Debian's python3.

Debian's ``python3-libvirt`` is built for the system interpreter (``/usr/bin/python3``),
not for the project's, so :mod:`tests.libvirt.test_api` runs this file there:
``/usr/bin/python3 api_flow.py URI DOMAIN`` prints one JSON object with what each call
returned.  Standard library and ``libvirt`` only.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import libvirt
import libvirt_qemu


def monitor(dom: Any, request: dict[str, Any]) -> Any:
    return json.loads(libvirt_qemu.qemuMonitorCommand(dom, json.dumps(request), 0))


def dirtyrate_stats(conn: Any, dom: Any) -> dict[str, Any]:
    records = conn.domainListGetStats([dom], libvirt.VIR_DOMAIN_STATS_DIRTYRATE, 0)
    return dict(records[0][1])


def main(uri: str, name: str) -> dict[str, Any]:
    conn = libvirt.open(uri)
    dom = conn.lookupByName(name)
    out: dict[str, Any] = {"version": conn.getVersion()}
    out["set"] = monitor(dom, {"execute": "set-vcpu-dirty-limit", "arguments": {"dirty-rate": 80}})
    out["query"] = monitor(dom, {"execute": "query-vcpu-dirty-limit"})
    out["hmp"] = libvirt_qemu.qemuMonitorCommand(
        dom, "info vcpu_dirty_limit", libvirt_qemu.VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP
    )
    out["cancel"] = monitor(dom, {"execute": "cancel-vcpu-dirty-limit"})
    modes = {
        "page-sampling": libvirt.VIR_DOMAIN_DIRTYRATE_MODE_PAGE_SAMPLING,
        "dirty-ring": libvirt.VIR_DOMAIN_DIRTYRATE_MODE_DIRTY_RING,
    }
    out["dirtyrate"] = {}
    for mode, flag in modes.items():
        dom.startDirtyRateCalc(1, flag)
        deadline = time.monotonic() + 60
        stats = dirtyrate_stats(conn, dom)
        while stats.get("dirtyrate.calc_status") != libvirt.VIR_DOMAIN_DIRTYRATE_MEASURED:
            if time.monotonic() > deadline:
                break
            time.sleep(0.25)
            stats = dirtyrate_stats(conn, dom)
        out["dirtyrate"][mode] = stats
    everything = conn.getAllDomainStats(libvirt.VIR_DOMAIN_STATS_DIRTYRATE, 0)
    out["all_domains"] = {d.name(): dict(s) for d, s in everything}
    out["state"] = dom.state()
    conn.close()
    return out


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2])))
