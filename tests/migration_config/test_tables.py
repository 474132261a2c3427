"""The migration tables (one row per parameter, per capability) against the schema of
every profile and against the properties recorded from the real QEMU binaries."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

import qmpdl
from qmpdl.migration.capabilities import capabilities_of
from qmpdl.migration.parameters import GLOBALS, PARAMETER, enum_values, parameters_of
from qmpdl.migration.params import GlobalPropertyError, MigrationConfig
from qmpdl.profile import get_profile, profile_names
from qmpdl.qapi import QapiSchema
from qmpdl.qapi.schema import EnumType, ObjectType

DATA = Path(qmpdl.__file__).parent / "data"


@pytest.mark.parametrize("version", profile_names())
def test_rows_exist_where_the_schema_has_them(version: str) -> None:
    profile = get_profile(version)
    types = QapiSchema.load(profile).schema.types
    params = types["MigrationParameters"]
    caps = types["MigrationCapability"]
    names = types["MigrationParameter"]
    assert isinstance(params, ObjectType) and isinstance(caps, EnumType)
    assert isinstance(names, EnumType)
    members = {m.name for m in params.members}
    assert {p.name for p in parameters_of(profile)} == members
    assert set(names.values) == members
    assert [c.name for c in capabilities_of(profile)] == caps.values
    for p in parameters_of(profile):
        if p.enum is not None:
            assert p.default in enum_values(profile, p.enum)


def _recorded_properties(version: str) -> list[str]:
    with gzip.open(DATA / f"qemu-{version}-qom-properties.json.gz") as f:
        recorded = json.load(f)
    table = recorded["properties"]
    return [table[i]["name"] for i in recorded["device"]["migration"]]


@pytest.mark.parametrize("version", ["7.2", "10.0"])
def test_global_properties_are_the_recorded_ones(version: str) -> None:
    """Every property of QEMU's migration object (recorded from the binary) is one of
    the tables', and no other."""
    config = MigrationConfig(get_profile(version), kvm_dirty_ring=True)
    ours = {config.property_name(p) for p in config.properties()}
    assert ours == set(_recorded_properties(version))


def test_multifd_clean_tls_termination_is_a_10_0_property() -> None:
    new = MigrationConfig(
        get_profile("10.0"),
        kvm_dirty_ring=True,
        global_properties=[("multifd-clean-tls-termination", "off")],
    )
    assert new.globals["multifd-clean-tls-termination"] is False
    assert MigrationConfig(get_profile("10.0"), kvm_dirty_ring=True).globals[
        "multifd-clean-tls-termination"
    ]
    with pytest.raises(GlobalPropertyError) as info:
        MigrationConfig(
            get_profile("7.2"),
            kvm_dirty_ring=True,
            global_properties=[("multifd-clean-tls-termination", "off")],
        )
    assert str(info.value) == (
        "can't apply global migration.multifd-clean-tls-termination=off: "
        "Property 'migration.multifd-clean-tls-termination' not found"
    )


def test_every_row_has_its_readers() -> None:
    for p in PARAMETER.values():
        if p.prop_kind == "enum" or p.hmp == "enum":
            assert p.enum is not None, p.name
    assert len({g.name for g in GLOBALS}) == len(GLOBALS)
