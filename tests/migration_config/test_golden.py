"""The migration configuration surface against real QEMU 7.2 and 10.0, byte for byte.

The golden files (``python -m tests.migration_config.record_golden``) hold QEMU's
replies; qmpdl (the matching profile, simulated vCPUs with a dirty ring) must give the
same bytes for every request, the same ``-global`` errors, and print the same ``info
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
from tests.conftest import need_qemu
from tests.hmp.fakes import FakeQmp
from tests.migration_config.harness import Qmpdl
from tests.migration_config.record_golden import (
    PROG,
    VERSIONS,
    as_request,
    golden_path,
    record_globals,
    record_migration,
    record_sessions,
)
from tests.migration_config.scenarios import SESSIONS, qmpdl_args


@cache
def golden(version: str = "7.2") -> dict[str, Any]:
    data: dict[str, Any] = json.loads(golden_path(version).read_text(encoding="utf-8"))
    return data


@pytest.mark.parametrize("version", VERSIONS)
def test_golden_covers_the_scenarios(version: str) -> None:
    sessions = golden(version)["sessions"]
    recorded = {name: [step for step, _ in rows] for name, rows in sessions.items()}
    assert recorded == SESSIONS, (
        "scenarios changed: run python -m tests.migration_config.record_golden"
    )


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("session", sorted(SESSIONS))
def test_session_replies_match_qemu(session: str, version: str) -> None:
    with Qmpdl(qmpdl_args(version)) as qmpdl:
        for step, qemu_reply in golden(version)["sessions"][session]:
            assert qmpdl.reply(as_request(step).decode()) == qemu_reply, step


def _argv(globals_: list[str], version: str) -> list[str]:
    argv = qmpdl_args(version)
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


def _rows(kind: str) -> list[object]:
    return [
        pytest.param(version, index, id=f"{version}-{index}")
        for version in VERSIONS
        for index in range(len(golden(version)[kind]))
    ]


@pytest.mark.parametrize(("version", "index"), _rows("globals"))
def test_global_options_match_qemu(
    version: str, index: int, capsys: pytest.CaptureFixture[str]
) -> None:
    row = golden(version)["globals"][index]
    argv = _argv(row["globals"], version)
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


@pytest.mark.parametrize(("version", "index"), _rows("info_migrate"))
def test_info_migrate_prints_what_qemu_prints(version: str, index: int) -> None:
    row = golden(version)["info_migrate"][index]
    assert _info_migrate(row["query_migrate"], version) == row["info_migrate"], row["what"]


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.parametrize("version", VERSIONS)
def test_golden_is_current(tmp_path: Path, version: str) -> None:
    """Real QEMU still answers as recorded; a fresh real migration prints as qmpdl does."""
    need_qemu(version)
    assert record_sessions(version) == golden(version)["sessions"]
    assert record_globals(version) == golden(version)["globals"]
    for row in record_migration(tmp_path, version):
        text = _info_migrate(row["query_migrate"], version)
        assert text == row["info_migrate"], row["what"]
