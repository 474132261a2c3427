"""The migration part of ``query-qmp-schema`` in 9.0 and 10.1.

7.2's entries are compared with the live QEMU in tests/qapi.  For 9.0 and 10.1 the
expected members, features and enumeration values below were read from the
``query-qmp-schema`` replies of QEMU 9.0.0 and 10.1.0 that libvirt's test suite keeps
(``tests/qemucapabilitiesdata/caps_9.0.0_x86_64.replies`` and
``caps_10.1.0_x86_64.replies``; x86_64 builds with zstd, without qpl, uadk and qatzip).
"""

from __future__ import annotations

from typing import Any

import pytest

from qmpdl.profile import get_profile
from qmpdl.qapi import QapiSchema


class Entries:
    def __init__(self, profile: str) -> None:
        reply: list[Any] = list(QapiSchema.load(get_profile(profile)).introspect())
        self.by_name: dict[str, Any] = {e["name"]: e for e in reply}
        self.order: list[str] = [e["name"] for e in reply]

    def __getitem__(self, name: str) -> Any:
        return self.by_name[name]

    def ref(self, name: str, key: str) -> Any:
        return self.by_name[self.by_name[name][key]]

    def member_type(self, entry: Any, member: str) -> Any:
        found = [m for m in entry["members"] if m["name"] == member]
        assert found, member
        name = found[0]["type"]
        return self.by_name[name.strip("[]")] if name.strip("[]").isdigit() else name


def members(entry: Any) -> list[tuple[str, list[str]]]:
    return [(m["name"], m.get("features", [])) for m in entry["members"]]


def names(entry: Any) -> list[str]:
    return [m["name"] for m in entry["members"]]


DEP = ["deprecated"]
UNSTABLE = ["unstable"]

COMMANDS = [
    "query-migrate",
    "migrate-set-capabilities",
    "query-migrate-capabilities",
    "migrate-set-parameters",
    "query-migrate-parameters",
    "MIGRATION",
    "MIGRATION_PASS",
    "migrate_cancel",
    "migrate-continue",
    "migrate",
    "migrate-incoming",
    "migrate-pause",
]


@pytest.mark.parametrize("profile", ["7.2", "9.0", "10.1"])
def test_command_order_and_flags(profile: str) -> None:
    e = Entries(profile)
    listed = [n for n in e.order if n in COMMANDS]
    assert listed == COMMANDS
    assert e.order.index("migrate-pause") < e.order.index("calc-dirty-rate")
    assert e["migrate-pause"]["allow-oob"] is True
    assert "allow-oob" not in e["migrate"]


def test_migration_info_10_1() -> None:
    e = Entries("10.1")
    info = e.ref("query-migrate", "ret-type")
    assert members(info) == [
        ("status", []), ("ram", []), ("vfio", []), ("xbzrle-cache", []), ("total-time", []),
        ("expected-downtime", []), ("downtime", []), ("setup-time", []),
        ("cpu-throttle-percentage", []), ("error-desc", []), ("blocked-reasons", []),
        ("postcopy-blocktime", []), ("postcopy-vcpu-blocktime", []),
        ("postcopy-latency", UNSTABLE), ("postcopy-latency-dist", UNSTABLE),
        ("postcopy-vcpu-latency", UNSTABLE), ("postcopy-non-vcpu-latency", UNSTABLE),
        ("socket-address", []), ("dirty-limit-throttle-time-per-round", []),
        ("dirty-limit-ring-full-time", []),
    ]  # fmt: skip
    assert e.member_type(info, "status")["values"] == [
        "none", "setup", "cancelling", "cancelled", "active", "postcopy-active",
        "postcopy-paused", "postcopy-recover-setup", "postcopy-recover", "completed",
        "failed", "colo", "pre-switchover", "device", "wait-unplug",
    ]  # fmt: skip
    assert "skipped" not in names(e.member_type(info, "ram"))
    socket = e.member_type(info, "socket-address")
    inet = e[next(v["type"] for v in socket["variants"] if v["case"] == "inet")]
    assert names(inet) == [
        "host", "port", "numeric", "to", "ipv4", "ipv6", "keep-alive", "keep-alive-count",
        "keep-alive-idle", "keep-alive-interval", "mptcp",
    ]  # fmt: skip


def test_migration_info_9_0() -> None:
    e = Entries("9.0")
    info = e.ref("query-migrate", "ret-type")
    assert ("disk", DEP) in members(info) and ("compression", DEP) in members(info)
    assert "postcopy-latency" not in names(info)
    ram = e.member_type(info, "ram")
    assert ("skipped", DEP) in members(ram)
    assert "postcopy-recover-setup" not in e.member_type(info, "status")["values"]


CAPS_10_1 = [
    ("xbzrle", []), ("rdma-pin-all", []), ("auto-converge", []), ("zero-blocks", DEP),
    ("events", []), ("postcopy-ram", []), ("x-colo", UNSTABLE), ("release-ram", []),
    ("return-path", []), ("pause-before-switchover", []), ("multifd", []),
    ("dirty-bitmaps", []), ("postcopy-blocktime", []), ("late-block-activate", []),
    ("x-ignore-shared", UNSTABLE), ("validate-uuid", []), ("background-snapshot", []),
    ("zero-copy-send", []), ("postcopy-preempt", []), ("switchover-ack", []),
    ("dirty-limit", []), ("mapped-ram", []),
]  # fmt: skip
CAPS_9_0 = [
    ("xbzrle", []), ("rdma-pin-all", []), ("auto-converge", []), ("zero-blocks", []),
    ("compress", DEP), ("events", []), ("postcopy-ram", []), ("x-colo", UNSTABLE),
    ("release-ram", []), ("block", DEP), ("return-path", []),
    ("pause-before-switchover", []), ("multifd", []), ("dirty-bitmaps", []),
    ("postcopy-blocktime", []), ("late-block-activate", []), ("x-ignore-shared", UNSTABLE),
    ("validate-uuid", []), ("background-snapshot", []), ("zero-copy-send", []),
    ("postcopy-preempt", []), ("switchover-ack", []), ("dirty-limit", []),
    ("mapped-ram", []),
]  # fmt: skip


@pytest.mark.parametrize(("profile", "expected"), [("9.0", CAPS_9_0), ("10.1", CAPS_10_1)])
def test_capability_enum(profile: str, expected: list[tuple[str, list[str]]]) -> None:
    e = Entries(profile)
    arg = e.ref("migrate-set-capabilities", "arg-type")
    status = e.member_type(arg, "capabilities")
    assert names(status) == ["capability", "state"]
    enum = e.member_type(status, "capability")
    assert [(m["name"], m.get("features", [])) for m in enum["members"]] == expected


PARAMS_10_1 = [
    "announce-initial", "announce-max", "announce-rounds", "announce-step",
    "throttle-trigger-threshold", "cpu-throttle-initial", "cpu-throttle-increment",
    "cpu-throttle-tailslow", "tls-creds", "tls-hostname", "tls-authz", "max-bandwidth",
    "avail-switchover-bandwidth", "downtime-limit", "x-checkpoint-delay", "multifd-channels",
    "xbzrle-cache-size", "max-postcopy-bandwidth", "max-cpu-throttle", "multifd-compression",
    "multifd-zlib-level", "multifd-qatzip-level", "multifd-zstd-level", "block-bitmap-mapping",
    "x-vcpu-dirty-limit-period", "vcpu-dirty-limit", "mode", "zero-page-detection", "direct-io",
]  # fmt: skip


def test_parameters_10_1() -> None:
    e = Entries("10.1")
    for command, key, tls in (
        ("migrate-set-parameters", "arg-type", "alternate"),
        ("query-migrate-parameters", "ret-type", "str"),
    ):
        entry = e.ref(command, key)
        assert names(entry) == PARAMS_10_1
        features = {m["name"]: m.get("features", []) for m in entry["members"]}
        assert features["x-checkpoint-delay"] == UNSTABLE
        assert features["x-vcpu-dirty-limit-period"] == UNSTABLE
        assert all(m.get("default", "absent") is None for m in entry["members"])
        creds = e.member_type(entry, "tls-creds")
        assert (creds["meta-type"] if isinstance(creds, dict) else creds) == tls
        assert e.member_type(entry, "mode")["values"] == ["normal", "cpr-reboot", "cpr-transfer"]
        assert e.member_type(entry, "zero-page-detection")["values"] == [
            "none",
            "legacy",
            "multifd",
        ]
        assert e.member_type(entry, "multifd-compression")["values"] == ["none", "zlib", "zstd"]
    alternate = e.member_type(e.ref("migrate-set-parameters", "arg-type"), "tls-creds")
    assert alternate["members"] == [{"type": "str"}, {"type": "null"}]


def test_parameters_9_0() -> None:
    e = Entries("9.0")
    entry = e.ref("migrate-set-parameters", "arg-type")
    features = {m["name"]: m.get("features", []) for m in entry["members"]}
    for name in ("compress-level", "compress-threads", "compress-wait-thread"):
        assert features[name] == DEP
    assert features["decompress-threads"] == DEP and features["block-incremental"] == DEP
    assert "direct-io" not in features and "multifd-qatzip-level" not in features
    assert e.member_type(entry, "mode")["values"] == ["normal", "cpr-reboot"]


def test_migrate_arguments() -> None:
    new = Entries("10.1")
    migrate = new.ref("migrate", "arg-type")
    assert migrate["members"][0] == {"name": "uri", "type": "str", "default": None}
    assert members(migrate) == [("uri", []), ("channels", []), ("detach", DEP), ("resume", [])]
    assert members(new.ref("migrate-incoming", "arg-type")) == [
        ("uri", []),
        ("channels", []),
        ("exit-on-error", []),
    ]
    channel = new.member_type(migrate, "channels")
    assert names(channel) == ["channel-type", "addr"]
    assert new.member_type(channel, "channel-type")["values"] == ["main", "cpr"]
    addr = new.member_type(channel, "addr")
    assert addr["tag"] == "transport"
    assert [v["case"] for v in addr["variants"]] == ["socket", "exec", "rdma", "file"]
    old = Entries("9.0")
    assert members(old.ref("migrate", "arg-type")) == [
        ("uri", []), ("channels", []), ("blk", DEP), ("inc", DEP), ("detach", []), ("resume", []),
    ]  # fmt: skip
    assert names(old.ref("migrate-incoming", "arg-type")) == ["uri", "channels"]
    first = Entries("8.1")
    assert first.ref("migrate", "arg-type")["members"][0] == {"name": "uri", "type": "str"}


def test_migration_schema_10_2() -> None:
    """10.2 (read from the sources): MigrationStatus postcopy-device, MigMode cpr-exec,
    parameter cpr-exec-command (a list of strings)."""
    e = Entries("10.2")
    info = e.ref("query-migrate", "ret-type")
    values = e.member_type(info, "status")["values"]
    assert values[values.index("active") : values.index("active") + 3] == [
        "active", "postcopy-device", "postcopy-active",
    ]  # fmt: skip
    params = e.ref("query-migrate-parameters", "ret-type")
    assert names(params)[-1] == "cpr-exec-command"
    assert e.member_type(params, "mode")["values"] == [
        "normal", "cpr-reboot", "cpr-transfer", "cpr-exec",
    ]  # fmt: skip
    older = Entries("10.1")
    assert (
        "postcopy-device"
        not in older.member_type(older.ref("query-migrate", "ret-type"), "status")["values"]
    )
    assert "cpr-exec-command" not in names(older.ref("query-migrate-parameters", "ret-type"))
