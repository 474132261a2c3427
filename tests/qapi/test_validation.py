"""Argument validation against real QEMU 7.2 and 10.0 (goldens) and the profile
differences."""

from __future__ import annotations

import json
import random
import re
import string
from functools import cache
from pathlib import Path

import pytest

from qmpdl.errors import QMPError
from qmpdl.jsontypes import JsonObject
from qmpdl.profile import get_profile
from qmpdl.qapi import QapiSchema
from qmpdl.qapi.parser import parse_schema
from qmpdl.qapi.schema import Schema, build_schema
from qmpdl.qapi.types import (
    CalcDirtyRateArgs,
    DirtyRateMeasureMode,
    HumanMonitorCommandArgs,
    QmpCapabilitiesArgs,
    QMPCapability,
    QueryStatusArgs,
    SetVcpuDirtyLimitArgs,
    TimeUnit,
)
from qmpdl.qapi.visitor import InputVisitor
from qmpdl.tools.qemu import ORACLES, QemuProcess
from tests.conftest import need_qemu
from tests.qapi.cases import UINT64_MAX, all_cases
from tests.qapi.live import connect
from tests.qapi.record_goldens import record_cases, validation_path

VERSIONS = list(ORACLES)

#: Texts of QEMU's argument-validation layer (anything else comes later, from the
#: command's own handler, and means "the arguments were accepted").
VALIDATION_TEXT = re.compile(
    r"^(Parameter '.*' (is missing|is unexpected|expects [a-z0-9_]+|does not accept value '.*')"
    r"|Invalid parameter type for '.*', expected: [A-Za-z]+)$"
)
#: Handler texts that happen to look like validation texts.
HANDLER_TEXT = re.compile(r"expects (a value between|an integer in the range)")

FOREIGN = Path(__file__).with_name("foreign")


@cache
def foreign_schema() -> Schema:
    return build_schema(parse_schema(source=FOREIGN), lambda _feature: False)


def qemu_validation_error(reply: str) -> str | None:
    """The validation error QEMU reported, or None if validation passed."""
    if reply == "ok":
        return None
    desc = json.loads(reply)["error"]["desc"]
    assert isinstance(desc, str)
    if VALIDATION_TEXT.match(desc) and not HANDLER_TEXT.search(desc):
        return desc
    return None


def our_validation_error(
    schema: str, command: str, arguments: JsonObject, version: str = "7.2"
) -> str | None:
    try:
        if schema == "served":
            QapiSchema.load(get_profile(version)).parse_arguments(command, arguments)
        else:
            typ = foreign_schema().commands[command].arg_type
            InputVisitor().visit_arguments(typ, arguments)
    except QMPError as exc:
        assert exc.error_class == "GenericError"
        return exc.desc
    return None


@cache
def goldens(version: str = "7.2") -> list[dict[str, object]]:
    rows = json.loads(validation_path(version).read_text(encoding="ascii"))
    assert isinstance(rows, list)
    return rows


@pytest.mark.parametrize("version", VERSIONS)
def test_goldens_match_the_case_table(version: str) -> None:
    recorded = [(r["schema"], r["command"], r["arguments"]) for r in goldens(version)]
    wanted = [(c.schema, c.command, c.arguments) for c in all_cases()]
    assert recorded == wanted, "cases changed: run python -m tests.qapi.record_goldens"


def _compared() -> list[object]:
    """(version, case index) pairs: the foreign schema is QEMU 7.2's (its
    migrate-set-parameters still has the compress members), so its cases compare
    with 7.2 only; the served ones with every version."""
    return [
        pytest.param(version, index, id=f"{version}-{index}")
        for version in VERSIONS
        for index, case in enumerate(all_cases())
        if case.schema == "served" or version == "7.2"
    ]


@pytest.mark.parametrize(("version", "index"), _compared())
def test_validation_matches_qemu(version: str, index: int) -> None:
    row = goldens(version)[index]
    schema, command, arguments, reply = (
        row["schema"],
        row["command"],
        row["arguments"],
        row["reply"],
    )
    assert isinstance(schema, str) and isinstance(command, str) and isinstance(reply, str)
    assert isinstance(arguments, dict)
    ours = our_validation_error(schema, command, arguments, version)
    assert ours == qemu_validation_error(reply)


@pytest.mark.parametrize("version", VERSIONS)
def test_goldens_cover_every_served_command(version: str) -> None:
    served = {r["command"] for r in goldens(version) if r["schema"] == "served"}
    assert served == set(QapiSchema.load(get_profile(version)).schema.commands)


@pytest.mark.qemu
@pytest.mark.parametrize("version", VERSIONS)
def test_goldens_are_current(version: str) -> None:
    """Real QEMU still answers every case exactly as recorded."""
    need_qemu(version)
    with QemuProcess(version=version) as qemu, connect(qemu) as qmp:
        assert record_cases(qmp, all_cases()) == goldens(version)


def _random_keys(rng: random.Random, avoid: set[str]) -> list[str]:
    alphabet = string.ascii_letters + string.digits + "-_."
    count = rng.choice([2, 3, 4, 6, 9, 14, 25, 40])
    keys: list[str] = []
    while len(keys) < count:
        key = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))
        if key not in avoid and key not in keys:
            keys.append(key)
    return keys


@pytest.mark.qemu
@pytest.mark.parametrize("version", VERSIONS)
def test_unexpected_key_choice_matches_qemu_live(version: str) -> None:
    """Many random sets of unknown keys: QEMU and qmpdl report the same one.

    The reported key depends on QDict order, then GLib's hash-table layout
    (resizes included, also the shrink after removing visited members).
    """
    need_qemu(version)
    rng = random.Random(2024)
    schema = QapiSchema.load(get_profile(version))
    with QemuProcess(version=version) as qemu, connect(qemu) as qmp:
        for _ in range(300):
            choices: list[tuple[str, JsonObject]] = [
                ("query-status", {}),
                ("set-vcpu-dirty-limit", {"cpu-index": 99, "dirty-rate": 1}),
                ("calc-dirty-rate", {"calc-time": 0, "sample-pages": 5, "mode": "dirty-ring"}),
                ("human-monitor-command", {"command-line": "info version"}),
            ]
            command, known = rng.choice(choices)
            items = list(known.items())
            for key in _random_keys(rng, set(known)):
                items.insert(rng.randint(0, len(items)), (key, None))
            arguments: JsonObject = dict(items)
            request = json.dumps({"execute": command, "arguments": arguments})
            theirs = json.loads(qmp.command(request.encode()))["error"]["desc"]
            with pytest.raises(QMPError) as ours:
                schema.parse_arguments(command, arguments)
            assert ours.value.desc == theirs, arguments


# -- what the validated arguments look like ---------------------------------------------


def test_arguments_become_models() -> None:
    schema = QapiSchema.load(get_profile("7.2"))
    args = schema.parse_arguments("set-vcpu-dirty-limit", {"dirty-rate": -1})
    assert args == SetVcpuDirtyLimitArgs(cpu_index=None, dirty_rate=UINT64_MAX)
    args = schema.parse_arguments("set-vcpu-dirty-limit", {"dirty-rate": 5, "cpu-index": -3})
    assert isinstance(args, SetVcpuDirtyLimitArgs)
    assert (args.cpu_index, args.dirty_rate) == (-3, 5)
    args = schema.parse_arguments("calc-dirty-rate", {"calc-time": 1, "mode": "dirty-ring"})
    assert args == CalcDirtyRateArgs(calc_time=1, mode=DirtyRateMeasureMode.DIRTY_RING)
    assert isinstance(args, CalcDirtyRateArgs) and args.mode is DirtyRateMeasureMode.DIRTY_RING
    args = schema.parse_arguments("qmp_capabilities", {"enable": ["oob"]})
    assert args == QmpCapabilitiesArgs(enable=[QMPCapability.OOB])
    assert schema.parse_arguments("query-status", {}) == QueryStatusArgs()
    args = schema.parse_arguments("human-monitor-command", {"command-line": "info cpus"})
    assert args == HumanMonitorCommandArgs(command_line="info cpus")


def test_models_are_frozen_and_strict_about_fields() -> None:
    args = SetVcpuDirtyLimitArgs(dirty_rate=1)
    with pytest.raises(AttributeError, match="immutable"):
        args.dirty_rate = 2  # type: ignore[misc]
    with pytest.raises(TypeError, match="SetVcpuDirtyLimitArgs has no field 'bogus'"):
        SetVcpuDirtyLimitArgs.model_validate({"dirty-rate": 1, "bogus": 2})


def test_unknown_command_is_command_not_found() -> None:
    with pytest.raises(QMPError) as exc:
        QapiSchema.load(get_profile("7.2")).parse_arguments("nonexistent-cmd", {})
    assert (exc.value.error_class, exc.value.desc) == (
        "CommandNotFound",
        "The command nonexistent-cmd has not been found",
    )


# -- profile differences -----------------------------------------------------------------

PROFILE_CASES: list[tuple[str, str, JsonObject, str | None]] = [
    (
        "7.2",
        "calc-dirty-rate",
        {"calc-time": 1, "calc-time-unit": "second"},
        "Parameter 'calc-time-unit' is unexpected",
    ),
    (
        "8.1",
        "calc-dirty-rate",
        {"calc-time": 1, "calc-time-unit": "second"},
        "Parameter 'calc-time-unit' is unexpected",
    ),
    ("8.2", "calc-dirty-rate", {"calc-time": 1, "calc-time-unit": "second"}, None),
    ("10.1", "calc-dirty-rate", {"calc-time": 1, "calc-time-unit": "millisecond"}, None),
    (
        "10.1",
        "calc-dirty-rate",
        {"calc-time": 1, "calc-time-unit": "minute"},
        "Parameter 'calc-time-unit' does not accept value 'minute'",
    ),
    (
        "10.1",
        "calc-dirty-rate",
        {"calc-time": 1, "calc-time-unit": 1},
        "Invalid parameter type for 'calc-time-unit', expected: string",
    ),
    ("10.1", "calc-dirty-rate", {"calc-time-unit": "second"}, "Parameter 'calc-time' is missing"),
    (
        "10.1",
        "calc-dirty-rate",
        {"calc-time": 1, "calc-time-unit": None, "sample-pages": "x"},
        "Invalid parameter type for 'calc-time-unit', expected: string",
    ),
    (
        "7.2",
        "query-dirty-rate",
        {"calc-time-unit": "second"},
        "Parameter 'calc-time-unit' is unexpected",
    ),
    ("10.1", "query-dirty-rate", {"calc-time-unit": "second"}, None),
    (
        "10.1",
        "query-dirty-rate",
        {"calc-time-unit": "second", "x": 1},
        "Parameter 'x' is unexpected",
    ),
    ("10.1", "set-vcpu-dirty-limit", {"dirty-rate": -1}, None),
    ("10.1", "set-vcpu-dirty-limit", {"dirty-rate": 1.0}, "Parameter 'dirty-rate' expects uint64"),
]


@pytest.mark.parametrize(("profile", "command", "arguments", "error"), PROFILE_CASES)
def test_profile_differences(
    profile: str, command: str, arguments: JsonObject, error: str | None
) -> None:
    schema = QapiSchema.load(get_profile(profile))
    if error is None:
        schema.parse_arguments(command, arguments)
    else:
        with pytest.raises(QMPError) as exc:
            schema.parse_arguments(command, arguments)
        assert exc.value.desc == error


def test_calc_time_unit_reaches_the_model() -> None:
    schema = QapiSchema.load(get_profile("10.1"))
    args = schema.parse_arguments("query-dirty-rate", {"calc-time-unit": "millisecond"})
    assert args.model_dump() == {"calc_time_unit": TimeUnit.MILLISECOND}


def test_arguments_must_be_an_object() -> None:
    with pytest.raises(QMPError) as exc:
        QapiSchema.load(get_profile("7.2")).parse_arguments("stop", [])  # type: ignore[arg-type]
    assert exc.value.desc == "QMP input member 'arguments' must be an object"
