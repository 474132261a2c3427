"""KVM's binary statistics (``KVM_GET_STATS_FD`` on a VM or vCPU fd).

The file holds a header, one descriptor per statistic (flags, exponent, number of
values, where they are, a histogram's bucket size, the name) and the values (64-bit
each); layouts as in ``<linux/kvm.h>`` (``struct kvm_stats_header``/``_desc``:
24 and 16 bytes before the name, pinned by ``tests/kvm/test_stats.py``).
"""

from __future__ import annotations

import fcntl
import os
import struct
from dataclasses import dataclass

from qmpdl.kvm import uapi

_HEADER = struct.Struct("=IIIIII")  # flags, name_size, num_desc, id/desc/data offsets
_DESC = struct.Struct("=IhHII")  # flags, exponent, size, offset, bucket_size

#: Descriptor flag fields
TYPE_MASK = 0xF
TYPE_CUMULATIVE, TYPE_INSTANT, TYPE_PEAK, TYPE_LINEAR_HIST, TYPE_LOG_HIST = range(5)
UNIT_SHIFT, UNIT_MASK = 4, 0xF << 4
UNIT_NONE, UNIT_BYTES, UNIT_SECONDS, UNIT_CYCLES, UNIT_BOOLEAN = (u << 4 for u in range(5))
BASE_SHIFT, BASE_MASK = 8, 0xF << 8
BASE_POW10, BASE_POW2 = 0 << 8, 1 << 8


@dataclass(frozen=True)
class Descriptor:
    name: str
    flags: int
    exponent: int
    size: int
    offset: int
    bucket_size: int


class StatsFile:
    """The statistics of one VM or vCPU: descriptors read once, values each time."""

    def __init__(self, owner_fd: int) -> None:
        self.fd = int(fcntl.ioctl(owner_fd, uapi.KVM_GET_STATS_FD, 0))
        _, name_size, count, _, desc_offset, self.data_offset = _HEADER.unpack(
            os.pread(self.fd, _HEADER.size, 0)
        )
        step = _DESC.size + name_size
        raw = os.pread(self.fd, step * count, desc_offset)
        self.descriptors: list[Descriptor] = []
        for i in range(count):
            flags, exponent, size, offset, bucket = _DESC.unpack_from(raw, i * step)
            name = raw[i * step + _DESC.size : (i + 1) * step].split(b"\0", 1)[0].decode()
            self.descriptors.append(Descriptor(name, flags, exponent, size, offset, bucket))
        self.data_size = max((d.offset + d.size * 8 for d in self.descriptors), default=0)

    def values(self) -> dict[str, list[int]]:
        """Each statistic's values, by name."""
        data = os.pread(self.fd, self.data_size, self.data_offset)
        return {
            d.name: list(struct.unpack_from(f"={d.size}Q", data, d.offset))
            for d in self.descriptors
        }

    def close(self) -> None:
        os.close(self.fd)
