"""The schema language, 'if' conditions, the model, and the generated types."""

from __future__ import annotations

from pathlib import Path

import pytest

from qmpdl.profile import get_profile, profile_names
from qmpdl.qapi import QapiSchema
from qmpdl.qapi import types as generated
from qmpdl.qapi.conditions import ConditionError, evaluate
from qmpdl.qapi.gen import DEFERRED_PATH, TYPES_PATH, generate, main
from qmpdl.qapi.introspect import introspect
from qmpdl.qapi.naming import camel, enum_member, field_name
from qmpdl.qapi.parser import QapiParseError, parse_doc, parse_schema
from qmpdl.qapi.schema import (
    EMPTY_OBJECT,
    ObjectType,
    QapiSchemaError,
    build_schema,
    check_expressions,
)


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "qapi-schema.json").write_text(text, encoding="utf-8")
    return tmp_path


# -- conditions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cond", "expected"),
    [
        (None, True),
        ("a", True),
        ("b", False),
        ({"not": "b"}, True),
        ({"all": ["a", "b"]}, False),
        ({"any": ["a", "b"]}, True),
        ({"all": ["a", {"not": {"any": ["b", "c"]}}]}, True),
    ],
)
def test_conditions(cond: object, expected: bool) -> None:
    assert evaluate(cond, lambda f: f == "a") is expected  # type: ignore[arg-type]


def test_bad_conditions_are_rejected() -> None:
    with pytest.raises(ConditionError):
        evaluate({"nand": ["a"]}, lambda f: True)
    with pytest.raises(ConditionError):
        evaluate({"all": "a"}, lambda f: True)


# -- the language and the model -------------------------------------------------------------


SAMPLE = """
# plain comment
##
# = A module title
##

##
# @E:
#
# An enum.
#
# @x: the x
##
{ 'enum': 'E', 'data': [ 'x', { 'name': 'y', 'if': 'f' }, 'z' ] }

{ 'struct': 'Base', 'data': { 'b': 'int' } }
{ 'struct': 'S', 'base': 'Base',
  'data': { '*o': { 'type': 'E', 'if': { 'not': 'f' } }, 'l': [ 'str' ] } }
{ 'union': 'U', 'base': { 'kind': 'E' }, 'discriminator': 'kind',
  'data': { 'z': 'S', 'y': { 'type': 'Base', 'if': 'f' } } }
{ 'command': 'c', 'data': { '*only-new': { 'type': 'int', 'if': 'f' } },
  'returns': 'U', 'allow-oob': true, 'features': [ { 'name': 'unstable', 'if': 'f' } ] }
{ 'command': 'moved', 'if': { 'not': 'f' } }
{ 'event': 'EV', 'data': { 's': 'S' } }
{ 'command': 'moved', 'if': 'f', 'allow-preconfig': true }
"""


def test_definitions_follow_the_active_features(tmp_path: Path) -> None:
    exprs = parse_schema(source=write(tmp_path, SAMPLE))
    old = build_schema(exprs, lambda f: False)
    new = build_schema(exprs, lambda f: f == "f")

    enum_old, enum_new = old.types["E"], new.types["E"]
    assert enum_old.values == ["x", "z"] and enum_new.values == ["x", "y", "z"]  # type: ignore[union-attr]
    s_old, s_new = old.types["S"], new.types["S"]
    assert isinstance(s_old, ObjectType) and isinstance(s_new, ObjectType)
    assert [m.name for m in s_old.members] == ["b", "o", "l"]
    assert [m.name for m in s_new.members] == ["b", "l"]

    union = new.types["U"]
    assert isinstance(union, ObjectType) and union.variants is not None
    assert [(v.case, v.type.name) for v in union.variants.branches] == [
        ("z", "S"),
        ("y", "Base"),
        ("x", EMPTY_OBJECT),
    ]
    union_old = old.types["U"]
    assert isinstance(union_old, ObjectType) and union_old.variants is not None
    assert [v.case for v in union_old.variants.branches] == ["z", "x"]

    # A command whose every member is conditional away has no argument type.
    assert old.commands["c"].arg_type is None
    assert new.commands["c"].arg_type is not None
    assert old.commands["c"].features == () and new.commands["c"].features == ("unstable",)
    assert old.commands["c"].allow_oob
    # Two definitions of one name, exclusive conditions: each version has one.
    assert not old.commands["moved"].allow_preconfig and new.commands["moved"].allow_preconfig
    assert list(new.commands) == ["c", "moved"]


def test_docs_are_parsed(tmp_path: Path) -> None:
    exprs = parse_schema(source=write(tmp_path, SAMPLE))
    doc = exprs[0].doc
    assert doc is not None
    assert (doc.symbol, doc.body, doc.args) == ("E", "An enum.", {"x": "the x"})
    doc = parse_doc(
        [
            "@c:",
            "",
            "Text.",
            "",
            "@a: one",
            "    two",
            "",
            "Features:",
            "",
            "@f: feat",
            "",
            "Since: 1.0",
        ]
    )
    assert doc.args == {"a": "one two"} and doc.features == {"f": "feat"}
    assert doc.sections == {"Since": "1.0"}


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("{ 'enum': 'E', 'data': [ 'x' ] ", QapiParseError),
        ("{ 'enum': 'E' 'data': [] }", QapiParseError),
        ("{ 'enum': \"E\" }", QapiParseError),
        ("##\n# @E:\n{ 'enum': 'E', 'data': [] }", QapiParseError),
        ("{ 'struct': 'S', 'data': { 'a': 'Nope' } }", QapiSchemaError),
        ("{ 'enum': 'E', 'data': [] }\n{ 'enum': 'E', 'data': [] }", QapiSchemaError),
        ("{ 'alternate': 'A', 'data': {} }", QapiSchemaError),
        ("{ 'struct': 'S', 'data': {}, 'bogus': true }", QapiSchemaError),
        (
            "{ 'struct': 'B', 'data': { 'a': 'int' } }\n"
            "{ 'struct': 'S', 'base': 'B', 'data': { 'a': 'str' } }",
            QapiSchemaError,
        ),
    ],
)
def test_malformed_schemas(tmp_path: Path, text: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        build_schema(parse_schema(source=write(tmp_path, text)), lambda f: False)


def test_unknown_if_features_are_rejected(tmp_path: Path) -> None:
    exprs = parse_schema(source=write(tmp_path, "{ 'command': 'c', 'if': 'no-such' }"))
    with pytest.raises(QapiSchemaError, match="no-such"):
        check_expressions(exprs, lambda f: f == "known")


def test_includes_are_read_once_at_first_use(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text("{ 'include': 'b.json' }\n{ 'command': 'in-a' }")
    (tmp_path / "b.json").write_text("{ 'command': 'in-b' }")
    write(tmp_path, "{ 'include': 'a.json' }\n{ 'include': 'b.json' }\n{ 'command': 'top' }")
    names = [e.expr["command"] for e in parse_schema(source=tmp_path)]
    assert names == ["in-b", "in-a", "top"]


#: What libvirt's probe and domain start (and virsh domstats) use.
HARNESS_COMMANDS = {
    "query-target",
    "query-machines",
    "query-cpu-definitions",
    "query-cpu-model-expansion",
    "qom-list-types",
    "qom-list-properties",
    "device-list-properties",
    "qom-list",
    "qom-get",
    "query-tpm-models",
    "query-tpm-types",
    "query-command-line-options",
    "query-sev-capabilities",
    "query-sgx-capabilities",
    "query-hotpluggable-cpus",
    "query-iothreads",
    "query-named-block-nodes",
    "query-block",
    "query-blockstats",
    "set-action",
    "query-name",
    "query-uuid",
    "query-stats",
    "query-stats-schemas",
    "system_reset",
    "system_powerdown",
}


def test_served_commands_and_flags() -> None:
    schema = QapiSchema.load(get_profile("7.2"))
    assert set(schema.command_names()) == {
        "qmp_capabilities",
        "query-version",
        "query-commands",
        "query-qmp-schema",
        "query-status",
        "stop",
        "cont",
        "query-cpus-fast",
        "query-kvm",
        "quit",
        "human-monitor-command",
        "set-vcpu-dirty-limit",
        "cancel-vcpu-dirty-limit",
        "query-vcpu-dirty-limit",
        "calc-dirty-rate",
        "query-dirty-rate",
        "query-yank",
        "query-migrate",
        "migrate-set-capabilities",
        "query-migrate-capabilities",
        "migrate-set-parameters",
        "query-migrate-parameters",
        "migrate_cancel",
        "migrate-continue",
        "migrate",
        "migrate-incoming",
        "migrate-pause",
        *HARNESS_COMMANDS,
        "query-chardev",
    }
    pause = schema.command("migrate-pause")
    assert pause is not None and pause.allow_oob
    yank = schema.command("query-yank")
    assert yank is not None and yank.allow_oob and not yank.allow_preconfig
    hmc = schema.command("human-monitor-command")
    assert hmc is not None and hmc.features == ("savevm-monitor-nodes",)
    assert schema.command("nope") is None
    assert schema.event("SHUTDOWN") is not None and schema.event("SUSPEND") is None
    assert QapiSchema.load(get_profile("7.2")) is schema


def test_every_profile_builds() -> None:
    for name in profile_names():
        assert QapiSchema.load(get_profile(name)).introspect()


# -- generated types -----------------------------------------------------------------------


def test_generated_types_are_up_to_date() -> None:
    core, deferred = generate()
    assert TYPES_PATH.read_text(encoding="utf-8") == core, (
        "qmpdl/qapi/types.py is stale: run python -m qmpdl.qapi.gen"
    )
    assert DEFERRED_PATH.read_text(encoding="utf-8") == deferred, (
        "qmpdl/qapi/types_deferred.py is stale: run python -m qmpdl.qapi.gen"
    )


def test_generated_schema_data_is_up_to_date() -> None:
    from qmpdl.qapi.gen import SCHEMA_DATA_PATH
    from qmpdl.qapi.load import render_schema_data, schema_for, source_schema_for

    assert SCHEMA_DATA_PATH.read_text(encoding="utf-8") == render_schema_data(), (
        "qmpdl/qapi/schema_data.py is stale: run python -m qmpdl.qapi.gen"
    )
    from qmpdl.profile import DATA_FILES, load_source, render_profile_data
    from qmpdl.profile_data import TABLES
    from qmpdl.qapi.gen import PROFILE_DATA_PATH

    assert PROFILE_DATA_PATH.read_text(encoding="utf-8") == render_profile_data(), (
        "qmpdl/profile_data.py is stale: run python -m qmpdl.qapi.gen"
    )
    assert {name: load_source(name) for name in DATA_FILES} == TABLES
    from qmpdl.cmdline.machine import render_machine_data
    from qmpdl.qapi.gen import MACHINE_DATA_PATH

    assert MACHINE_DATA_PATH.read_text(encoding="utf-8") == render_machine_data(), (
        "qmpdl/cmdline/machine_data.py is stale: run python -m qmpdl.qapi.gen"
    )
    from qmpdl.cmdline.machine import data_version
    from qmpdl.qemudata import store

    for name in profile_names():
        assert data_version(get_profile(name)) == store.data_version(get_profile(name))
    # built from either, the schema is the same (what query-qmp-schema shows of it)
    for name in profile_names():
        profile = get_profile(name)
        assert introspect(schema_for(profile)) == introspect(source_schema_for(profile))


def test_gen_check_mode(tmp_path: Path) -> None:
    paths = ["--output", str(tmp_path / "types.py")]
    paths += ["--deferred-output", str(tmp_path / "types_deferred.py")]
    assert main(["--check", *paths]) == 1
    assert main(paths) == 0
    assert main(["--check", *paths]) == 0


def test_deferred_models_stay_out_of_the_core_module() -> None:
    """The harness commands' classes are not built at start-up; a core class never
    needs a deferred one."""
    from qmpdl.qapi import types_deferred

    assert "query-machines" in types_deferred.COMMAND_ARGS
    assert "MachineInfo" in types_deferred.STRUCTS and "MachineInfo" not in generated.STRUCTS
    assert "query-cpus-fast" in generated.COMMAND_ARGS
    assert not set(types_deferred.STRUCTS) & set(generated.STRUCTS)
    assert not set(types_deferred.ENUMS) & set(generated.ENUMS)
    # CpuInstanceProperties serves query-cpus-fast too: it stays in the core module
    assert "CpuInstanceProperties" in generated.STRUCTS


def test_generated_names() -> None:
    assert generated.DirtyRateMeasureMode.PAGE_SAMPLING.value == "page-sampling"
    assert (
        generated.DirtyRateMeasureMode("page-sampling")
        is generated.DirtyRateMeasureMode.PAGE_SAMPLING
    )
    assert isinstance(generated.DirtyRateMeasureMode.PAGE_SAMPLING, str)
    assert generated.SysEmuTarget.X86_64.value == "x86_64"
    assert generated.COMMAND_ARGS["set-vcpu-dirty-limit"] is generated.SetVcpuDirtyLimitArgs
    assert generated.COMMAND_ARGS["qmp_capabilities"] is generated.QmpCapabilitiesArgs
    assert generated.COMMAND_ARGS["human-monitor-command"] is generated.HumanMonitorCommandArgs
    assert generated.COMMAND_ARGS["calc-dirty-rate"] is generated.CalcDirtyRateArgs
    assert {
        "SHUTDOWN": generated.ShutdownEvent,
        "MIGRATION": generated.MigrationEvent,
        "MIGRATION_PASS": generated.MigrationPassEvent,
    } == generated.EVENT_DATA
    assert generated.STRUCTS["DirtyLimitInfo"] is generated.DirtyLimitInfo
    assert generated.VARIANTS["CpuInfoFast"] == {"s390x": generated.CpuInfoFastVariantS390x}
    fields = generated.SetVcpuDirtyLimitArgs.model_fields
    assert fields["cpu_index"].alias == "cpu-index" and not fields["cpu_index"].is_required()
    assert fields["dirty_rate"].is_required()
    # only in some versions -> optional
    assert not generated.StatusInfo.model_fields["singlestep"].is_required()
    assert not generated.DirtyRateInfo.model_fields["calc_time_unit"].is_required()
    assert generated.DirtyRateInfo.model_fields["calc_time"].is_required()


def test_naming() -> None:
    assert camel("set-vcpu-dirty-limit") == "SetVcpuDirtyLimit"
    assert camel("SHUTDOWN") == "Shutdown"
    assert camel("qmp_capabilities") == "QmpCapabilities"
    assert field_name("cpu-index") == "cpu_index"
    assert field_name("json") == "json_"
    assert field_name("if") == "if_"
    assert enum_member("page-sampling") == "PAGE_SAMPLING"
    assert enum_member("9p") == "_9P"
