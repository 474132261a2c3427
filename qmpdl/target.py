"""The emulated target's constants (x86-64, as QEMU's ``TARGET_PAGE_*``)."""

from __future__ import annotations

#: Target page size: a dirty-ring entry, a migrated page and a dirty-rate sample stand
#: for one 4 KiB page.
PAGE_SIZE = 4096
