"""The migration status machine: QEMU's compare-and-set, checked against the table."""

from __future__ import annotations

import pytest

from qmpdl.migration.state import (
    INCOMING_TRANSITIONS,
    OUTGOING_TRANSITIONS,
    IllegalTransitionError,
    MigrationStatus,
    StatusMachine,
)

S = MigrationStatus


def test_a_precopy_migration_walks_the_table() -> None:
    m = StatusMachine("outgoing", OUTGOING_TRANSITIONS)
    path = [S.SETUP, S.ACTIVE, S.PRE_SWITCHOVER, S.DEVICE, S.COMPLETED, S.SETUP, S.CANCELLING]
    old = S.NONE
    for new in path:
        assert m.transition(old, new)
        old = new
    assert m.transition(S.CANCELLING, S.CANCELLING)  # a second migrate_cancel
    assert m.transition(S.CANCELLING, S.CANCELLED)
    assert m.status == S.CANCELLED


def test_a_stale_old_status_changes_nothing() -> None:
    m = StatusMachine("outgoing", OUTGOING_TRANSITIONS)
    m.transition(S.NONE, S.SETUP)
    assert not m.transition(S.ACTIVE, S.COMPLETED)
    assert m.status == S.SETUP


@pytest.mark.parametrize(
    ("path", "bad"),
    [
        ([S.SETUP], S.COMPLETED),
        ([S.SETUP, S.CANCELLING], S.COMPLETED),
        ([S.SETUP, S.FAILED], S.ACTIVE),
        ([], S.ACTIVE),
    ],
)
def test_a_change_the_table_lacks_is_a_bug(
    path: list[MigrationStatus], bad: MigrationStatus
) -> None:
    m = StatusMachine("outgoing", OUTGOING_TRANSITIONS)
    old = S.NONE
    for new in path:
        m.transition(old, new)
        old = new
    with pytest.raises(IllegalTransitionError) as info:
        m.transition(old, bad)
    assert str(info.value) == f"outgoing migration cannot go from {old.value} to {bad.value}"
    assert m.status == old


def test_incoming() -> None:
    m = StatusMachine("incoming", INCOMING_TRANSITIONS)
    assert m.transition(S.NONE, S.ACTIVE)  # before 9.0: no setup status
    assert m.transition(S.ACTIVE, S.FAILED)
    with pytest.raises(IllegalTransitionError):
        m.transition(S.FAILED, S.ACTIVE)
