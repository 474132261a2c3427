"""Give memory back to the system once a burst of traffic is over.

glibc serves a block above its mmap threshold (128 KiB at first) with a private
mapping, returned on free; but each such block freed raises the threshold (up to 32
MiB), after which blocks of that size come from the heap and stay in the process.  A
monitor's large blocks are socket reads (256 KiB) and reply buffers under a flood: after
one flood they would be heap blocks for good, and the process keeps what the flood took.
Fixing the threshold keeps them mappings: freed, they are gone.
"""

from __future__ import annotations

import ctypes

#: mallopt's M_MMAP_THRESHOLD (glibc's malloc.h).
M_MMAP_THRESHOLD = -3
#: glibc's initial threshold, kept for good.
MMAP_THRESHOLD = 128 << 10


def keep_large_blocks_mapped() -> bool:
    """Fix glibc's mmap threshold; False where there is no glibc (nothing to do)."""
    # the process's own symbols: glibc's, where it is the C library (no search for the
    # library file, which would run ldconfig)
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
