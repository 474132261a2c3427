"""Domain XML for qmpdl under libvirt, and a domain as the tests drive it with virsh."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from tests.libvirt.daemon import PrivateLibvirtd


def domain_xml(
    name: str,
    emulator: Path,
    *,
    backend: str,
    workdir: Path,
    vcpus: int = 2,
    memory_mib: int = 128,
    disk: bool = False,
    nic: bool = False,
    serial: bool = True,
    dirty_ring: bool = True,
    qmpdl_args: tuple[str, ...] = (),
) -> str:
    """A domain like the anchors' (KVM with a 4096-entry dirty ring), qmpdl as its
    emulator, ``backend`` (``sim``/``kvm``) chosen with ``QMPDL_BACKEND``, qmpdl's own
    options passed through ``<qemu:arg>``."""
    devices = [f"    <emulator>{escape(str(emulator))}</emulator>"]
    if disk:
        image = workdir / f"{name}.img"
        image.write_bytes(bytes(1 << 20))
        devices.append(
            "    <disk type='file' device='disk'><driver name='qemu' type='raw'/>"
            f"<source file='{escape(str(image))}'/><target dev='vda' bus='virtio'/></disk>"
        )
    if nic:
        devices.append("    <interface type='user'><model type='virtio'/></interface>")
    if serial:
        devices.append("    <serial type='pty'/>")
        devices.append("    <console type='pty'/>")
    devices += [
        "    <controller type='usb' model='none'/>",
        "    <memballoon model='none'/>",
    ]
    args = "".join(f"\n    <qemu:arg value='{escape(a)}'/>" for a in qmpdl_args)
    ring = "\n      <dirty-ring state='on' size='4096'/>" if dirty_ring else ""
    return f"""<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>{name}</name>
  <memory unit='MiB'>{memory_mib}</memory>
  <vcpu placement='static'>{vcpus}</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
  </os>
  <features>
    <kvm>{ring}
      <hidden state='off'/>
    </kvm>
  </features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
{chr(10).join(devices)}
  </devices>
  <qemu:commandline>{args}
    <qemu:env name='QMPDL_BACKEND' value='{backend}'/>
  </qemu:commandline>
</domain>
"""


class Domain:
    """One domain of the private libvirtd."""

    def __init__(self, libvirtd: PrivateLibvirtd, name: str) -> None:
        self.libvirtd = libvirtd
        self.name = name

    def virsh(self, command: str, *args: str, check: bool = True) -> str:
        return self.libvirtd.virsh(command, self.name, *args, check=check).stdout

    def qmp(self, execute: str, arguments: dict[str, Any] | None = None) -> Any:
        """``virsh qemu-monitor-command``: the reply's ``return``."""
        request: dict[str, Any] = {"execute": execute}
        if arguments is not None:
            request["arguments"] = arguments
        reply = json.loads(self.virsh("qemu-monitor-command", json.dumps(request)))
        assert "return" in reply, reply
        return reply["return"]

    def hmp(self, line: str) -> str:
        return self.virsh("qemu-monitor-command", "--hmp", line)

    def state(self) -> str:
        return self.virsh("domstate", "--reason").strip()

    def wait_state(self, prefix: str, timeout: float = 120.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            state = self.state()
            if state.startswith(prefix) or time.monotonic() > deadline:
                return state
            time.sleep(0.2)

    def stats(self, *groups: str) -> dict[str, str]:
        """``virsh domstats [--GROUP...]`` as a dict."""
        out = self.libvirtd.virsh("domstats", *(f"--{g}" for g in groups), self.name).stdout
        values: dict[str, str] = {}
        for line in out.splitlines()[1:]:
            key, sep, value = line.strip().partition("=")
            if sep:
                values[key] = value
        return values

    def dirty_rate(self, mode: str, seconds: int = 1, timeout: float = 60.0) -> dict[str, str]:
        """``virsh domdirtyrate-calc`` in ``mode``, then ``domstats --dirtyrate`` once
        the measurement is done."""
        args = ["--seconds", str(seconds)]
        if mode != "page-sampling":
            args += ["--mode", mode]
        self.virsh("domdirtyrate-calc", *args)
        deadline = time.monotonic() + timeout
        while True:
            stats = self.stats("dirtyrate")
            if stats.get("dirtyrate.calc_status") == "2" or time.monotonic() > deadline:
                return stats
            time.sleep(0.25)
