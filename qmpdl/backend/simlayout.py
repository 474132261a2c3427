"""Where the simulated vCPUs' working sets lie in guest RAM (no numpy: the sim backend
checks the layout when the machine is built, before its model exists)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from qmpdl.backend.base import PAGE_SIZE
from qmpdl.workload import Workload

PAGES_PER_MIB = (1 << 20) // PAGE_SIZE


class Region(NamedTuple):
    """Where a vCPU's working set lies in guest RAM (page numbers)."""

    first_page: int
    pages: int


def layout(workloads: Sequence[Workload], ram_pages: int) -> list[Region]:
    """Place each vCPU's working set in RAM after the first MiB, one after another."""
    base = PAGES_PER_MIB
    usable = max(ram_pages - base, 0)
    n = len(workloads)
    share = usable // n if n else 0
    regions = []
    for w in workloads:
        if w.kind == "idle":
            regions.append(Region(base, 0))
            continue
        pages = (w.wss // PAGE_SIZE) if w.wss is not None else min(99 * PAGES_PER_MIB, share)
        pages = max(pages, 1)
        regions.append(Region(base, pages))
        base += pages
    if base > ram_pages:
        raise ValueError(
            f"working sets need {base * PAGE_SIZE >> 20} MiB but guest RAM is "
            f"{ram_pages * PAGE_SIZE >> 20} MiB (raise -m or lower wss=)"
        )
    return regions
