"""Every migration capability, one row each, and QEMU's checks of a capability set.

A row says in which versions the capability exists (``feature`` / ``unless``; the
QAPI schema's ``'if'`` conditions say the same, which a test checks) and which
``-global migration.PROP`` property turns it on (``prop``).  The rows are in the
``MigrationCapability`` enumeration's order, which is the order of
``query-migrate-capabilities`` and ``info migrate_capabilities``.
:func:`check_capabilities` is ``migrate_caps_check``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from qmpdl.errors import QMPError
from qmpdl.jsontypes import JsonValue

if TYPE_CHECKING:
    from qmpdl.profile import Profile


@dataclass(frozen=True)
class Presence:
    """A row that exists in the versions with profile feature ``feature`` (if given)
    and without ``unless`` (if given)."""

    name: str
    feature: str | None = None
    unless: str | None = None

    def present(self, profile: Profile) -> bool:
        has = profile.has
        return (self.feature is None or has(self.feature)) and (
            self.unless is None or not has(self.unless)
        )


@dataclass(frozen=True)
class CapabilitySpec(Presence):
    """One migration capability."""

    #: the ``-global migration.PROP`` (a bool) that sets it, if any
    prop: str | None = None


def _c(name: str, prop: str | None = None, **kw: str) -> CapabilitySpec:
    return CapabilitySpec(name=name, prop=prop, **kw)


_OLD = "migration-block-compress-removed"

#: Every capability any version has, in enumeration order.
CAPABILITIES: tuple[CapabilitySpec, ...] = (
    _c("xbzrle", "x-xbzrle"),
    _c("rdma-pin-all", "x-rdma-pin-all"),
    _c("auto-converge", "x-auto-converge"),
    _c("zero-blocks", "x-zero-blocks"),
    _c("compress", "x-compress", unless=_OLD),
    _c("events", "x-events"),
    _c("postcopy-ram", "x-postcopy-ram"),
    _c("x-colo", "x-colo"),
    _c("release-ram", "x-release-ram"),
    _c("block", "x-block", unless=_OLD),
    _c("return-path", "x-return-path"),
    _c("pause-before-switchover"),
    _c("multifd", "x-multifd"),
    _c("dirty-bitmaps"),
    _c("postcopy-blocktime"),
    _c("late-block-activate"),
    _c("x-ignore-shared"),
    _c("validate-uuid"),
    _c("background-snapshot", "x-background-snapshot"),
    _c("zero-copy-send", "x-zero-copy-send"),
    _c("postcopy-preempt", "x-postcopy-preempt"),
    _c("switchover-ack", "x-switchover-ack", feature="migration-switchover-ack"),
    _c("dirty-limit", "x-dirty-limit", feature="dirty-limit-migration"),
    _c("mapped-ram", "mapped-ram", feature="migration-mapped-ram"),
)


def capabilities_of(profile: Profile) -> list[CapabilitySpec]:
    """The capabilities of ``profile``'s QEMU version, in enumeration order."""
    return [c for c in CAPABILITIES if c.present(profile)]


#: Capabilities ``background-snapshot`` cannot be combined with, in QEMU's order.
_BACKGROUND_SNAPSHOT_CONFLICTS = (
    "postcopy-ram",
    "dirty-bitmaps",
    "postcopy-blocktime",
    "late-block-activate",
    "return-path",
    "multifd",
    "pause-before-switchover",
    "auto-converge",
    "release-ram",
    "rdma-pin-all",
    "compress",
    "xbzrle",
    "x-colo",
    "validate-uuid",
    "zero-copy-send",
)

ZERO_COPY_TEXT = "Zero copy only available for non-compressed non-TLS multifd migration"
MAPPED_RAM_TEXT = "Mapped-ram only available for non-compressed non-TLS multifd migration"


def check_capabilities(
    profile: Profile,
    old: Mapping[str, bool],
    new: Mapping[str, bool],
    *,
    params: Mapping[str, JsonValue],
    kvm_dirty_ring: bool,
    incoming_started: Callable[[], bool],
) -> None:
    """QEMU's ``migrate_caps_check`` for ``profile``'s version: ``new`` replaces ``old``
    with the parameters ``params`` in force; raises on the first failure."""
    has = profile.has

    def on(name: str) -> bool:
        return new.get(name, False)

    if on("postcopy-ram"):
        # The host-support probe (only for a destination) always succeeds here.
        if on("x-ignore-shared"):
            raise QMPError("Postcopy is not compatible with ignore-shared")
        if (
            on("multifd")
            and has("migration-multifd-postcopy-check")
            and not has("migration-multifd-postcopy")
        ):
            raise QMPError("Postcopy is not yet compatible with multifd")
    if on("background-snapshot"):
        # Write tracking (userfaultfd-wp) is available and the RAM is plain.
        for conflict in _BACKGROUND_SNAPSHOT_CONFLICTS:
            if on(conflict):
                raise QMPError(f"Background-snapshot is not compatible with {conflict}")
    if on("zero-copy-send") and (
        not on("multifd")
        or on("compress")
        or on("xbzrle")
        or params.get("multifd-compression") != "none"
        or params.get("tls-creds")
    ):
        raise QMPError(ZERO_COPY_TEXT)
    incoming_checks = has("migration-incoming-started-checks")
    relaxed = has("migration-incoming-started-relaxed")
    if on("postcopy-preempt"):
        if not on("postcopy-ram"):
            raise QMPError("Postcopy preempt requires postcopy-ram")
        if on("compress"):
            raise QMPError("Postcopy preempt not compatible with compress")
        if (
            incoming_checks
            and not (relaxed and old.get("postcopy-preempt", False))
            and incoming_started()
        ):
            raise QMPError("Postcopy preempt must be set before incoming starts")
    if on("multifd"):
        if on("compress"):
            raise QMPError("Multifd is not compatible with compress")
        if incoming_checks and not (relaxed and old.get("multifd", False)) and incoming_started():
            raise QMPError("Multifd must be set before incoming starts")
    if on("switchover-ack") and not on("return-path"):
        raise QMPError("Capability 'switchover-ack' requires capability 'return-path'")
    if on("dirty-limit"):
        if on("auto-converge"):
            raise QMPError(
                "dirty-limit conflicts with auto-converge either of then available currently"
            )
        if not kvm_dirty_ring:
            raise QMPError(
                "dirty-limit requires KVM with accelerator property 'dirty-ring-size' set"
            )
    if has("migration-xbzrle-checks"):
        if on("multifd") and on("xbzrle"):
            raise QMPError("Multifd is not compatible with xbzrle")
        if on("compress") and on("xbzrle"):
            raise QMPError("Compression is not compatible with xbzrle")
    if on("mapped-ram"):
        if on("xbzrle"):
            raise QMPError("Mapped-ram migration is incompatible with xbzrle")
        if on("compress"):
            raise QMPError("Mapped-ram migration is incompatible with compression")
        if on("postcopy-ram"):
            raise QMPError("Mapped-ram migration is incompatible with postcopy")
