"""query-qmp-schema against real QEMU 7.2 and 10.0, and what changes with the version."""

from __future__ import annotations

import json
import re
from functools import cache

import pytest

from qmpdl.jsontypes import JsonObject, JsonValue
from qmpdl.profile import get_profile
from qmpdl.qapi import QapiSchema
from qmpdl.tools.qemu import ORACLES, QemuProcess
from tests.conftest import need_qemu
from tests.qapi.live import connect
from tests.qapi.record_goldens import load_schema_golden, record_schema
from tests.qapi.schema_compare import compare_schemas

VERSIONS = list(ORACLES)


@cache
def golden(version: str = "7.2") -> dict[str, list[JsonValue]]:
    return load_schema_golden(version)


def roots(schema: QapiSchema) -> list[str]:
    return [*schema.schema.commands, *schema.schema.events]


def entries(profile: str) -> dict[str, JsonObject]:
    out: dict[str, JsonObject] = {}
    for entry in QapiSchema.load(get_profile(profile)).introspect():
        assert isinstance(entry, dict)
        out[str(entry["name"])] = entry
    return out


def resolve(profile: str, ref: str) -> JsonObject:
    return entries(profile)[ref]


def member_names(entry: JsonObject) -> list[str]:
    members = entry["members"]
    assert isinstance(members, list)
    return [str(m["name"]) for m in members if isinstance(m, dict)]


@pytest.mark.parametrize("version", VERSIONS)
def test_reply_matches_qemu(version: str) -> None:
    schema = QapiSchema.load(get_profile(version))
    theirs = golden(version)["entries"]
    problems = compare_schemas(schema.introspect(), theirs, roots(schema))
    assert problems == []
    # ...and nothing QEMU reaches from these roots is missing on our side.
    assert len(schema.introspect()) == len(theirs)


@pytest.mark.parametrize("version", VERSIONS)
def test_commands_and_events_come_first_in_qemu_order(version: str) -> None:
    ours = [e["name"] for e in entries(version).values() if e["meta-type"] in ("command", "event")]
    theirs = [
        e["name"]
        for e in golden(version)["entries"]
        if isinstance(e, dict) and e["meta-type"] in ("command", "event")
    ]
    assert ours == theirs
    reply = QapiSchema.load(get_profile(version)).introspect()
    kinds = [e["meta-type"] for e in reply if isinstance(e, dict)]
    first_type = next(i for i, k in enumerate(kinds) if k not in ("command", "event"))
    assert all(k not in ("command", "event") for k in kinds[first_type:])


def test_masked_names_are_numbered_in_order_of_first_reference() -> None:
    seen: list[str] = []
    for entry in QapiSchema.load(get_profile("10.1")).introspect():
        for number in re.findall(r'"\[*(\d+)\]*"', json.dumps(entry)):
            if number not in seen:
                seen.append(number)
    assert seen == [str(i) for i in range(len(seen))]


@pytest.mark.parametrize("version", VERSIONS)
def test_query_commands_order_is_reverse_definition_order(version: str) -> None:
    schema = QapiSchema.load(get_profile(version))
    assert schema.command_names() == golden(version)["query-commands"]


def test_reply_is_its_own_marshalled_form() -> None:
    """Marshalling the reply as [SchemaInfo] changes nothing (QEMU does that since 6.0)."""
    schema = QapiSchema.load(get_profile("10.1"))
    reply = schema.introspect()
    marshalled = schema.return_value("query-qmp-schema", reply)
    assert json.dumps(marshalled) == json.dumps(reply)


def test_all_integer_types_are_int_and_optional_members_default_null() -> None:
    limit = entries("7.2")["set-vcpu-dirty-limit"]
    arg = resolve("7.2", str(limit["arg-type"]))
    assert arg["members"] == [
        {"name": "cpu-index", "type": "int", "default": None},
        {"name": "dirty-rate", "type": "int"},
    ]
    assert entries("7.2")["query-yank"]["allow-oob"] is True
    assert "allow-oob" not in entries("7.2")["query-status"]


def test_profile_differences() -> None:
    # calc-time-unit (8.2)
    old = resolve("7.2", str(entries("7.2")["calc-dirty-rate"]["arg-type"]))
    new = resolve("10.1", str(entries("10.1")["calc-dirty-rate"]["arg-type"]))
    assert member_names(old) == ["calc-time", "sample-pages", "mode"]
    assert member_names(new) == ["calc-time", "calc-time-unit", "sample-pages", "mode"]
    assert entries("7.2")["query-dirty-rate"]["arg-type"] == entries("7.2")["stop"]["arg-type"]
    info = resolve("10.1", str(entries("10.1")["query-dirty-rate"]["ret-type"]))
    assert "calc-time-unit" in member_names(info)

    # StatusInfo.singlestep: plain (7.2), deprecated (8.1, 8.2), gone (9.0)
    def singlestep(profile: str) -> JsonObject | None:
        status = resolve(profile, str(entries(profile)["query-status"]["ret-type"]))
        found = [m for m in status["members"] if isinstance(m, dict) and m["name"] == "singlestep"]  # type: ignore[union-attr]
        return found[0] if found else None

    assert singlestep("7.2") == {"name": "singlestep", "type": "bool"}
    assert singlestep("8.2") == {"name": "singlestep", "type": "bool", "features": ["deprecated"]}
    assert singlestep("9.0") is None

    # CpuInfoFast.qom-type and query-kvm's new module (10.1)
    def cpu_info(profile: str) -> JsonObject:
        ret = str(entries(profile)["query-cpus-fast"]["ret-type"])
        return resolve(profile, str(resolve(profile, ret)["element-type"]))

    assert member_names(cpu_info("10.1"))[:3] == ["cpu-index", "qom-type", "qom-path"]
    assert "qom-type" not in member_names(cpu_info("9.0"))
    members = cpu_info("10.1")["members"]
    assert isinstance(members, list) and isinstance(members[-1], dict)
    values = resolve("10.1", str(members[-1]["type"]))["values"]
    assert isinstance(values, list)
    assert "nios2" not in values and "cris" not in values and "x86_64" in values
    names = [name for name in entries("10.1") if not name.isdigit() and not name.startswith("[")]
    # 10.1: the accelerator module follows qdev, before the machine module
    assert names.index("query-kvm") == names.index("device-list-properties") + 1
    assert names.index("query-kvm") < names.index("query-cpus-fast")
    names = [name for name in entries("9.0") if not name.isdigit() and not name.startswith("[")]
    assert names.index("query-kvm") == names.index("system_powerdown") + 1


@pytest.mark.qemu
@pytest.mark.parametrize("version", VERSIONS)
def test_golden_is_current(version: str) -> None:
    """The recorded schema entries are still what the real QEMU answers."""
    need_qemu(version)
    with QemuProcess(version=version) as qemu, connect(qemu) as qmp:
        live = record_schema(qmp, roots(QapiSchema.load(get_profile(version))))
    recorded = golden(version)
    assert live["entries"] == recorded["entries"]
    assert [list(e) for e in live["entries"]] == [list(e) for e in recorded["entries"]]  # type: ignore[arg-type]
    assert live["query-commands"] == recorded["query-commands"]


@pytest.mark.qemu
@pytest.mark.parametrize("version", VERSIONS)
def test_allow_preconfig_flags_match_qemu(version: str) -> None:
    """In --preconfig state QEMU runs exactly the commands flagged allow-preconfig.

    Every command gets an unknown argument, so nothing runs: a command allowed in
    preconfig state fails validation (on that argument, or on a missing one), the
    others are refused before it.
    """
    need_qemu(version)
    schema = QapiSchema.load(get_profile(version))
    args = ["-accel", "kvm,dirty-ring-size=4096", "-machine", "none", "--preconfig"]
    with QemuProcess(args, version=version) as qemu, connect(qemu) as qmp:
        for name in schema.command_names():
            command = schema.command(name)
            assert command is not None
            request = json.dumps({"execute": name, "arguments": {"zz": 1}})
            desc = json.loads(qmp.command(request.encode()))["error"]["desc"]
            refused = (
                f"The command '{name}' is permitted only after machine initialization has completed"
            )
            assert (desc != refused) == command.allow_preconfig, name
            assert desc == refused or desc.startswith("Parameter '"), desc
