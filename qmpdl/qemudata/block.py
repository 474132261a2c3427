"""The block graph of ``-blockdev`` and the drives ``-device`` attaches, as QEMU's
block queries describe them.

qmpdl's guests do no disk I/O, so the images are only looked at: a protocol node
(``file``, ``host_device``) reports its file's size and allocation, a ``raw`` node
its child's size, a ``qcow2`` node what the image header says (virtual size,
cluster size, version, features).  Every I/O counter is zero.

Orders are QEMU's: ``query-block`` and ``query-blockstats`` list the drives in the
order their devices were created; ``query-named-block-nodes`` lists the nodes newest
first (it prepends), ``query-blockstats`` with ``query-nodes`` oldest first.
"""

from __future__ import annotations

import os
import stat
import struct
from dataclasses import dataclass, field
from typing import Any

from qmpdl.config import MachineConfig
from qmpdl.profile import Profile

#: Protocol drivers: the node is a host file or device.
_PROTOCOLS = ("file", "host_device", "host_cdrom")
#: The qcow2 magic ("QFI\xfb") and the header fields read here.
_QCOW2_MAGIC = 0x514649FB
_QCOW2_HEADER = struct.Struct(">IIQIIQ")  # magic, version, backing off/len, bits, size
_QCOW2_V3 = struct.Struct(">QQQII")  # incompatible, compatible, autoclear, order, length
_QCOW2_V3_AT = 72
_QCOW2_COMPRESSION_AT = 104
#: qcow2 feature bits
_INCOMPAT_DIRTY = 1 << 0
_INCOMPAT_CORRUPT = 1 << 1
_INCOMPAT_EXTL2 = 1 << 4
_COMPAT_LAZY_REFCOUNTS = 1 << 0
#: Devices whose drive is their inner virtio device (the qdev path adds its name).
_VIRTIO_PROXIES = {"virtio-blk-pci": "virtio-backend", "virtio-blk-ccw": "virtio-backend"}
#: Devices that report an I/O status (they stop the VM on errors when told to).
_IO_STATUS = ("virtio-blk-pci", "virtio-blk-device", "scsi-hd", "scsi-cd", "ide-hd", "ide-cd")


@dataclass
class Node:
    """A named block node."""

    name: str
    driver: str
    options: dict[str, Any]
    file: Node | None = None
    children: list[tuple[str, Node]] = field(default_factory=list)

    @property
    def filename(self) -> str:
        if self.driver in _PROTOCOLS:
            return str(self.options.get("filename", ""))
        return self.file.filename if self.file is not None else ""

    @property
    def protocol(self) -> Node:
        """The node at the bottom of the ``file`` chain."""
        return self.file.protocol if self.file is not None else self

    @property
    def read_only(self) -> bool:
        if _flag(self.options.get("read-only")):
            return True
        if self.file is not None:
            return self.file.read_only
        # auto-read-only falls back to read-only only where writing is refused
        return _flag(self.options.get("auto-read-only")) and not os.access(self.filename, os.W_OK)


def _flag(value: Any) -> bool:
    return value is True or value in ("on", "true", "yes")


#: QEMU measures nodes in 512-byte sectors: a file's length is rounded up to them.
SECTOR = 512


def _file_sizes(path: str) -> tuple[int, int]:
    """(size in whole sectors, allocated bytes) of a host file or block device (zeros
    when missing)."""
    try:
        info = os.stat(path)
    except OSError:
        return 0, 0
    size = info.st_size
    if stat.S_ISBLK(info.st_mode):
        with open(path, "rb") as device:
            size = device.seek(0, os.SEEK_END)
    return -(-size // SECTOR) * SECTOR, info.st_blocks * 512


def _qcow2_header(path: str) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as image:
            head = image.read(_QCOW2_COMPRESSION_AT + 1)
    except OSError:
        return None
    if len(head) < _QCOW2_HEADER.size:
        return None
    magic, version, _, _, cluster_bits, size = _QCOW2_HEADER.unpack_from(head)
    if magic != _QCOW2_MAGIC:
        return None
    header = {"version": version, "cluster_bits": cluster_bits, "size": size}
    incompat = compat = 0
    refcount_order, compression = 4, 0
    if version >= 3 and len(head) >= _QCOW2_V3_AT + _QCOW2_V3.size:
        incompat, compat, _, refcount_order, length = _QCOW2_V3.unpack_from(head, _QCOW2_V3_AT)
        if length > _QCOW2_COMPRESSION_AT and len(head) > _QCOW2_COMPRESSION_AT:
            compression = head[_QCOW2_COMPRESSION_AT]
    header |= {
        "incompat": incompat,
        "compat": compat,
        "refcount_order": refcount_order,
        "compression": compression,
    }
    return header


class BlockGraph:
    """The nodes of ``-blockdev`` and the drives of ``-device``."""

    def __init__(self, config: MachineConfig, profile: Profile, counters: list[str]) -> None:
        """``counters``: the integer members of ``BlockDeviceStats`` in this version."""
        self.profile = profile
        self.counters = counters
        self.nodes: list[Node] = []
        by_name: dict[str, Node] = {}
        for options in config.blockdevs:
            node = self._node(options, by_name)
            if node is not None:
                by_name[node.name] = node
        #: (device, root node) in device creation order
        self.drives = [
            (device, by_name[str(device["drive"])])
            for device in config.devices
            if str(device.get("drive")) in by_name
        ]

    def _node(self, options: dict[str, Any], by_name: dict[str, Node]) -> Node | None:
        file = options.get("file")
        child = None
        if isinstance(file, dict):
            child = self._node(file, by_name)
        elif isinstance(file, str):
            child = by_name.get(file)
        name = options.get("node-name")
        if name is None:
            return None
        node = Node(str(name), str(options.get("driver")), options, child)
        if child is not None:
            node.children.append(("file", child))
        self.nodes.append(node)
        return node

    # -- descriptions -------------------------------------------------------------------------

    def image(self, node: Node) -> dict[str, Any]:
        filename = node.filename
        size, allocated = _file_sizes(node.protocol.filename)
        image: dict[str, Any] = {"filename": filename, "format": node.driver}
        image["dirty-flag"] = False
        image["actual-size"] = allocated
        image["virtual-size"] = size
        if node.driver == "qcow2":
            header = _qcow2_header(node.protocol.filename)
            if header is not None:
                image["virtual-size"] = header["size"]
                image["cluster-size"] = 1 << header["cluster_bits"]
                image["dirty-flag"] = bool(header["incompat"] & _INCOMPAT_DIRTY)
                image["format-specific"] = {"type": "qcow2", "data": self._qcow2(header)}
        elif node.driver in _PROTOCOLS and self.profile.has("image-info-block-node-info"):
            image["format-specific"] = {"type": "file", "data": {}}
        return image

    @staticmethod
    def _qcow2(header: dict[str, Any]) -> dict[str, Any]:
        if header["version"] < 3:
            return {"compat": "0.10", "refcount-bits": 16, "compression-type": "zlib"}
        return {
            "compat": "1.1",
            "lazy-refcounts": bool(header["compat"] & _COMPAT_LAZY_REFCOUNTS),
            "corrupt": bool(header["incompat"] & _INCOMPAT_CORRUPT),
            "extended-l2": bool(header["incompat"] & _INCOMPAT_EXTL2),
            "refcount-bits": 1 << header["refcount_order"],
            "compression-type": "zstd" if header["compression"] == 1 else "zlib",
        }

    def device_info(self, node: Node) -> dict[str, Any]:
        """The node as a ``BlockDeviceInfo``."""
        cache = node.options.get("cache")
        cache = cache if isinstance(cache, dict) else {}
        info: dict[str, Any] = {
            "file": node.filename,
            "node-name": node.name,
            "ro": node.read_only,
            "drv": node.driver,
            "backing_file_depth": 0,
            "children": [{"child": role, "node-name": c.name} for role, c in node.children],
            "active": True,
            "encrypted": False,
            "detect_zeroes": str(node.options.get("detect-zeroes", "off")),
            "image": self.image(node),
            "cache": {
                "writeback": True,
                "direct": _flag(cache.get("direct")),
                "no-flush": _flag(cache.get("no-flush")),
            },
            "write_threshold": 0,
        }
        for limit in ("bps", "bps_rd", "bps_wr", "iops", "iops_rd", "iops_wr"):
            info[limit] = 0
        return info

    def named_nodes(self) -> list[dict[str, Any]]:
        return [self.device_info(n) for n in reversed(self.nodes)]

    def block_info(self) -> list[dict[str, Any]]:
        out = []
        for device, node in self.drives:
            info: dict[str, Any] = {
                "device": "",
                "qdev": self._qdev(device),
                "type": "unknown",
                "removable": False,
                "locked": False,
                "inserted": self.device_info(node),
            }
            if device["driver"] in _IO_STATUS:
                info["io-status"] = "ok"
            out.append(info)
        return out

    @staticmethod
    def _qdev(device: dict[str, Any]) -> str:
        inner = _VIRTIO_PROXIES.get(str(device["driver"]))
        if "id" not in device:
            return ""
        if inner is None:
            return str(device["id"])
        return f"/machine/peripheral/{device['id']}/{inner}"

    # -- statistics ---------------------------------------------------------------------------

    def _stats(self, *, accounting: bool) -> dict[str, Any]:
        """A ``BlockDeviceStats`` of a device or node that did no I/O."""
        stats: dict[str, Any] = dict.fromkeys(self.counters, 0)
        stats |= {"account_invalid": accounting, "account_failed": accounting, "timed_stats": []}
        return stats

    def node_stats(self, node: Node) -> dict[str, Any]:
        entry: dict[str, Any] = {"node-name": node.name, "stats": self._stats(accounting=False)}
        if node.driver in ("file", "host_device"):
            entry["driver-specific"] = {
                "driver": node.driver,
                "discard-nb-ok": 0,
                "discard-nb-failed": 0,
                "discard-bytes-ok": 0,
            }
        if node.file is not None:
            entry["parent"] = self.node_stats(node.file)
        return entry

    def block_stats(self, *, query_nodes: bool) -> list[dict[str, Any]]:
        if query_nodes:
            return [self.node_stats(n) for n in self.nodes]
        out = []
        for device, node in self.drives:
            entry = self.node_stats(node)
            entry |= {"device": "", "qdev": self._qdev(device)}
            entry["stats"] = self._stats(accounting=True)
            out.append(entry)
        return out
