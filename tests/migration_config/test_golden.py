"""The migration configuration surface against real QEMU 7.2, byte for byte.

The golden file (``python -m tests.migration_config.record_golden``) holds QEMU's
replies; qmpdl (profile 7.2, simulated vCPUs with a dirty ring) must give the same
bytes for every request, the same ``-global`` errors, and print the same ``info
migrate`` for the same ``query-migrate`` reply.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from qmpdl.cli import UsageError, parse_args
from qmpdl.hmp import execute
from qmpdl.jsontypes import JsonValue
from qmpdl.profile import get_profile
from tests.hmp.fakes import FakeQmp
from tests.migration_config.harness import Qmpdl
from tests.migration_config.record_golden import (
    GOLDEN,
    PROG,
    as_request,
    record_globals,
    record_migration,
    record_sessions,
)
from tests.migration_config.scenarios import QMPDL_ARGS, SESSIONS


@cache
def golden() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(GOLDEN.read_text(encoding="utf-8"))
    return data


def test_golden_covers_the_scenarios() -> None:
    recorded = {name: [step for step, _ in rows] for name, rows in golden()["sessions"].items()}
    assert recorded == SESSIONS, (
        "scenarios changed: run python -m tests.migration_config.record_golden"
    )


@pytest.mark.parametrize("session", sorted(SESSIONS))
def test_session_replies_match_qemu(session: str) -> None:
    with Qmpdl(QMPDL_ARGS) as qmpdl:
        for step, qemu_reply in golden()["sessions"][session]:
            assert qmpdl.reply(as_request(step).decode()) == qemu_reply, step


def _argv(globals_: list[str]) -> list[str]:
    argv = list(QMPDL_ARGS)
    for item in globals_:
        argv += ["-global", item]
    return argv


def _info_migrate_globals(qmpdl: Qmpdl) -> str:
    """``info migrate`` of a fresh machine (no migration yet: query-migrate is {})."""
    return execute(
        "info migrate",
        profile=qmpdl.machine.profile,
        qmp=FakeQmp({"query-migrate": {}}),
        migration_globals=qmpdl.machine.migration_config.globals,
    )


@pytest.mark.parametrize("index", range(len(golden()["globals"])))
def test_global_options_match_qemu(index: int, capsys: pytest.CaptureFixture[str]) -> None:
    row = golden()["globals"][index]
    argv = _argv(row["globals"])
    stderr = row["stderr"].replace(f"{PROG}:", "qmpdl:")
    if row["status"]:
        with pytest.raises(UsageError) as info:
            parse_args(argv)
        assert str(info.value) + "\n" == stderr
        return
    parse_args(argv)
    assert capsys.readouterr().err == stderr
    with Qmpdl(argv) as qmpdl:
        parameters = json.loads(qmpdl.reply('{"execute": "query-migrate-parameters"}'))
        capabilities = json.loads(qmpdl.reply('{"execute": "query-migrate-capabilities"}'))
        assert parameters["return"] == row["parameters"]
        assert capabilities["return"] == row["capabilities"]
        assert _info_migrate_globals(qmpdl) == row["info_migrate"]


def _info_migrate(reply: JsonValue, profile: str = "7.2") -> str:
    return execute(
        "info migrate", profile=get_profile(profile), qmp=FakeQmp({"query-migrate": reply})
    )


@pytest.mark.parametrize("index", range(len(golden()["info_migrate"])))
def test_info_migrate_prints_what_qemu_prints(index: int) -> None:
    row = golden()["info_migrate"][index]
    assert _info_migrate(row["query_migrate"]) == row["info_migrate"], row["what"]


@pytest.mark.qemu
@pytest.mark.slow
def test_golden_is_current(tmp_path: Path) -> None:
    """Real QEMU still answers as recorded; a fresh real migration prints as qmpdl does."""
    assert record_sessions() == golden()["sessions"]
    assert record_globals() == golden()["globals"]
    for row in record_migration(tmp_path):
        assert _info_migrate(row["query_migrate"]) == row["info_migrate"], row["what"]
