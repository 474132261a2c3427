"""What changes between QEMU versions: the dirty-limit capability and parameters (spec
section 4), the other capability checks, parameter sets, ``-global`` and the texts of
8.1-10.2, taken from QEMU's sources (7.2 and 10.0 run here: see test_golden.py)."""

from __future__ import annotations

import json

import pytest

from qmpdl.cli import UsageError, parse_args
from qmpdl.errors import QMPError
from qmpdl.jsontypes import JsonObject
from qmpdl.migration.params import GlobalPropertyError, MigrationConfig
from qmpdl.profile import get_profile
from tests.migration_config.harness import Qmpdl

NEWER = ["8.1", "8.2", "9.0", "10.1"]
ALL = ["7.2", *NEWER]
RING = "sim,dirty-ring-size=4096"

CONFLICT = "dirty-limit conflicts with auto-converge either of then available currently"
NEEDS_RING = "dirty-limit requires KVM with accelerator property 'dirty-ring-size' set"
PERIOD_TEXT = "Parameter 'x-vcpu-dirty-limit-period' expects a value between 1 and 1000"
LIMIT_TEXT_OLD = "Parameter 'vcpu_dirty_limit' expects is invalid, it must greater then 1 MB/s"
LIMIT_TEXT = "Parameter 'vcpu_dirty_limit' must be greater than 1 MB/s"
RUNNING = "There's a migration process in progress"


def config(profile: str, *, ring: bool = True, **kwargs: object) -> MigrationConfig:
    return MigrationConfig(get_profile(profile), kvm_dirty_ring=ring, **kwargs)  # type: ignore[arg-type]


def error(action: object) -> str:
    assert callable(action)
    with pytest.raises(QMPError) as info:
        action()
    return info.value.desc


# --- the dirty-limit capability --------------------------------------------------------------


@pytest.mark.parametrize("profile", NEWER)
def test_dirty_limit_needs_kvm_with_a_ring(profile: str) -> None:
    c = config(profile, ring=False)
    assert error(lambda: c.set_capabilities([("dirty-limit", True)])) == NEEDS_RING
    assert not c.dirty_limit
    c.set_capabilities([("dirty-limit", False)])
    with_ring = config(profile)
    with_ring.set_capabilities([("dirty-limit", True)])
    assert with_ring.dirty_limit and with_ring.capabilities()["dirty-limit"]


@pytest.mark.parametrize("profile", NEWER)
@pytest.mark.parametrize(
    "steps",
    [
        [[("dirty-limit", True)], [("auto-converge", True)]],
        [[("auto-converge", True)], [("dirty-limit", True)]],
        [[("dirty-limit", True), ("auto-converge", True)]],
        [[("auto-converge", True), ("dirty-limit", True)]],
    ],
    ids=["dirty-limit-first", "auto-converge-first", "together", "together-reversed"],
)
def test_dirty_limit_conflicts_with_auto_converge(
    profile: str, steps: list[list[tuple[str, bool]]]
) -> None:
    c = config(profile)
    for step in steps[:-1]:
        c.set_capabilities(step)
    before = c.capabilities()
    assert error(lambda: c.set_capabilities(steps[-1])) == CONFLICT
    assert c.capabilities() == before  # nothing changed


@pytest.mark.parametrize("profile", NEWER)
def test_conflict_is_reported_before_the_missing_ring(profile: str) -> None:
    c = config(profile, ring=False)
    assert error(lambda: c.set_capabilities([("auto-converge", True), ("dirty-limit", True)])) == (
        CONFLICT
    )
    # turning one of them off in the same request resolves the conflict
    c.set_capabilities([("auto-converge", True)])
    assert error(lambda: c.set_capabilities([("auto-converge", False), ("dirty-limit", True)])) == (
        NEEDS_RING
    )


@pytest.mark.parametrize("profile", ALL)
def test_no_capability_change_while_a_migration_runs(profile: str) -> None:
    running = [False]
    c = config(profile, migration_running=lambda: running[0])
    c.set_capabilities([("events", True)])
    running[0] = True
    assert error(lambda: c.set_capabilities([("events", False)])) == RUNNING
    assert error(lambda: c.set_capabilities([])) == RUNNING
    assert c.events
    # parameters may change during a migration
    c.set_parameters({"downtime-limit": 250})
    assert c.downtime_limit == 250


@pytest.mark.parametrize("profile", ALL)
def test_dirty_limit_over_qmp(profile: str) -> None:
    request = json.dumps(
        {
            "execute": "migrate-set-capabilities",
            "arguments": {"capabilities": [{"capability": "dirty-limit", "state": True}]},
        }
    )
    with (
        Qmpdl(["--qemu-version", profile, "-accel", RING]) as ring,
        Qmpdl(["--qemu-version", profile, "-accel", "sim"]) as plain,
        Qmpdl(["--qemu-version", profile, "-accel", "tcg"]) as tcg,
    ):
        if profile == "7.2":
            unknown = "Parameter 'capability' does not accept value 'dirty-limit'"
            for machine in (ring, plain, tcg):
                assert json.loads(machine.reply(request))["error"]["desc"] == unknown
            return
        assert ring.reply(request) == '{"return": {}}'
        for machine in (plain, tcg):
            assert json.loads(machine.reply(request))["error"]["desc"] == NEEDS_RING
        caps = json.loads(ring.reply('{"execute": "query-migrate-capabilities"}'))["return"]
        assert {"capability": "dirty-limit", "state": True} in caps
        assert ring.machine.migration_config.dirty_limit


# --- the dirty-limit parameters ----------------------------------------------------------------


@pytest.mark.parametrize("profile", NEWER)
def test_dirty_limit_parameters(profile: str) -> None:
    c = config(profile)
    assert (c.x_vcpu_dirty_limit_period, c.vcpu_dirty_limit) == (1000, 1)
    for bad in (0, 1001, 1 << 63):
        assert error(lambda v=bad: c.set_parameters({"x-vcpu-dirty-limit-period": v})) == (
            PERIOD_TEXT
        )
    for good in (1, 1000, 500):
        c.set_parameters({"x-vcpu-dirty-limit-period": good})
        assert c.x_vcpu_dirty_limit_period == good
    limit_text = LIMIT_TEXT if profile in ("9.0", "10.1") else LIMIT_TEXT_OLD
    assert error(lambda: c.set_parameters({"vcpu-dirty-limit": 0})) == limit_text
    for good in (1, 50, (1 << 64) - 1):
        c.set_parameters({"vcpu-dirty-limit": good})
        assert c.vcpu_dirty_limit == good
    query = c.query_parameters().model_dump(by_alias=True, exclude_none=True)
    assert query["x-vcpu-dirty-limit-period"] == 500
    assert query["vcpu-dirty-limit"] == (1 << 64) - 1


@pytest.mark.parametrize("profile", NEWER)
def test_dirty_limit_parameters_over_qmp(profile: str) -> None:
    def set_params(machine: Qmpdl, **members: object) -> str:
        arguments = {k.replace("_", "-"): v for k, v in members.items()}
        request = {"execute": "migrate-set-parameters", "arguments": arguments}
        return machine.reply(json.dumps(request))

    with Qmpdl(["--qemu-version", profile, "-accel", RING]) as q:
        query = json.loads(q.reply('{"execute": "query-migrate-parameters"}'))["return"]
        assert query["x-vcpu-dirty-limit-period"] == 1000 and query["vcpu-dirty-limit"] == 1
        assert json.loads(set_params(q, x_vcpu_dirty_limit_period=1001))["error"]["desc"] == (
            PERIOD_TEXT
        )
        assert json.loads(set_params(q, x_vcpu_dirty_limit_period="1"))["error"]["desc"] == (
            "Parameter 'x-vcpu-dirty-limit-period' expects uint64"
        )
        # checks in QEMU's order: the period is checked before the limit
        both = json.loads(set_params(q, vcpu_dirty_limit=0, x_vcpu_dirty_limit_period=0))
        assert both["error"]["desc"] == PERIOD_TEXT
        assert set_params(q, vcpu_dirty_limit=50, x_vcpu_dirty_limit_period=200) == (
            '{"return": {}}'
        )
        assert q.machine.migration_config.vcpu_dirty_limit == 50
        assert q.machine.migration_config.x_vcpu_dirty_limit_period == 200


def test_dirty_limit_parameters_do_not_exist_in_7_2() -> None:
    with Qmpdl(["--qemu-version", "7.2", "-accel", RING]) as q:
        for member in ("x-vcpu-dirty-limit-period", "vcpu-dirty-limit"):
            request = {"execute": "migrate-set-parameters", "arguments": {member: 1}}
            reply = json.loads(q.reply(json.dumps(request)))
            assert reply["error"]["desc"] == f"Parameter '{member}' is unexpected"


# --- capabilities and parameters per version ----------------------------------------------


CAPS_7_2 = [
    "xbzrle", "rdma-pin-all", "auto-converge", "zero-blocks", "compress", "events",
    "postcopy-ram", "x-colo", "release-ram", "block", "return-path",
    "pause-before-switchover", "multifd", "dirty-bitmaps", "postcopy-blocktime",
    "late-block-activate", "x-ignore-shared", "validate-uuid", "background-snapshot",
    "zero-copy-send", "postcopy-preempt",
]  # fmt: skip
CAPS_8_1 = [*CAPS_7_2, "switchover-ack", "dirty-limit"]
CAPS_9_0 = [*CAPS_8_1, "mapped-ram"]
CAPS_10_1 = [c for c in CAPS_9_0 if c not in ("compress", "block")]


@pytest.mark.parametrize(
    ("profile", "names"),
    [
        ("7.2", CAPS_7_2),
        ("8.1", CAPS_8_1),
        ("8.2", CAPS_8_1),
        ("9.0", CAPS_9_0),
        ("10.1", CAPS_10_1),
    ],
)
def test_capabilities_of_each_version(profile: str, names: list[str]) -> None:
    c = config(profile)
    assert [item.capability.value for item in c.query_capabilities()] == names
    assert not any(item.state for item in c.query_capabilities())


PARAMS_7_2 = {
    "announce-initial": 50, "announce-max": 550, "announce-rounds": 5, "announce-step": 100,
    "compress-level": 1, "compress-threads": 8, "compress-wait-thread": True,
    "decompress-threads": 2, "throttle-trigger-threshold": 50, "cpu-throttle-initial": 20,
    "cpu-throttle-increment": 10, "cpu-throttle-tailslow": False, "tls-creds": "",
    "tls-hostname": "", "tls-authz": "", "max-bandwidth": 134217728, "downtime-limit": 300,
    "x-checkpoint-delay": 20000, "block-incremental": False, "multifd-channels": 2,
    "xbzrle-cache-size": 67108864, "max-postcopy-bandwidth": 0, "max-cpu-throttle": 99,
    "multifd-compression": "none", "multifd-zlib-level": 1, "multifd-zstd-level": 1,
}  # fmt: skip
PARAMS_8_1 = {**PARAMS_7_2, "x-vcpu-dirty-limit-period": 1000, "vcpu-dirty-limit": 1}
PARAMS_8_2 = {**PARAMS_8_1, "avail-switchover-bandwidth": 0, "mode": "normal"}
PARAMS_9_0 = {**PARAMS_8_2, "zero-page-detection": "multifd"}
PARAMS_10_1 = {
    **{
        k: v
        for k, v in PARAMS_9_0.items()
        if k
        not in (
            "compress-level",
            "compress-threads",
            "compress-wait-thread",
            "decompress-threads",
            "block-incremental",
        )
    },
    "multifd-qatzip-level": 1,
    "direct-io": False,
}
PARAMS_10_2 = {**PARAMS_10_1, "cpr-exec-command": []}


@pytest.mark.parametrize(
    ("profile", "expected"),
    [
        ("7.2", PARAMS_7_2),
        ("8.1", PARAMS_8_1),
        ("8.2", PARAMS_8_2),
        ("9.0", PARAMS_9_0),
        ("10.1", PARAMS_10_1),
        ("10.2", PARAMS_10_2),
    ],
)
def test_parameters_of_each_version(profile: str, expected: JsonObject) -> None:
    with Qmpdl(["--qemu-version", profile, "-accel", RING]) as q:
        reply = json.loads(q.reply('{"execute": "query-migrate-parameters"}'))["return"]
        assert reply == expected


@pytest.mark.parametrize("profile", ALL)
def test_engine_accessors(profile: str) -> None:
    c = config(profile)
    assert (c.max_bandwidth, c.downtime_limit, c.throttle_trigger_threshold) == (128 << 20, 300, 50)
    assert (c.cpu_throttle_initial, c.cpu_throttle_increment, c.max_cpu_throttle) == (20, 10, 99)
    assert not c.cpu_throttle_tailslow and not c.events and not c.pause_before_switchover
    c.set_capabilities(
        [("events", True), ("pause-before-switchover", True), ("auto-converge", True)]
    )
    c.set_parameters(
        {
            "max-bandwidth": 3000000,
            "downtime-limit": 1,
            "throttle-trigger-threshold": 30,
            "cpu-throttle-initial": 40,
            "cpu-throttle-increment": 5,
            "cpu-throttle-tailslow": True,
            "max-cpu-throttle": 90,
        }
    )
    assert c.events and c.pause_before_switchover and c.auto_converge and not c.dirty_limit
    assert (c.max_bandwidth, c.downtime_limit, c.throttle_trigger_threshold) == (3000000, 1, 30)
    assert (c.cpu_throttle_initial, c.cpu_throttle_increment, c.max_cpu_throttle) == (40, 5, 90)
    assert c.cpu_throttle_tailslow


# --- the other capability checks ----------------------------------------------------------


@pytest.mark.parametrize(
    ("profile", "expected"),
    [
        ("7.2", None),
        ("8.1", "Postcopy is not yet compatible with multifd"),
        ("9.0", "Postcopy is not yet compatible with multifd"),
        ("10.1", None),
    ],
)
def test_postcopy_with_multifd(profile: str, expected: str | None) -> None:
    c = config(profile)
    change = [("postcopy-ram", True), ("multifd", True)]
    if expected is None:
        c.set_capabilities(change)
    else:
        assert error(lambda: c.set_capabilities(change)) == expected


@pytest.mark.parametrize("profile", ALL)
def test_xbzrle_with_multifd_or_compress(profile: str) -> None:
    checked = profile not in ("7.2", "8.1")
    for other, text in (
        ("multifd", "Multifd is not compatible with xbzrle"),
        ("compress", "Compression is not compatible with xbzrle"),
    ):
        c = config(profile)
        if other not in c.capability_names:
            continue
        change = [(other, True), ("xbzrle", True)]
        if checked:
            assert error(lambda ch=change, cfg=c: cfg.set_capabilities(ch)) == text
        else:
            c.set_capabilities(change)


@pytest.mark.parametrize("profile", NEWER)
def test_switchover_ack_requires_return_path(profile: str) -> None:
    c = config(profile)
    text = "Capability 'switchover-ack' requires capability 'return-path'"
    assert error(lambda: c.set_capabilities([("switchover-ack", True)])) == text
    c.set_capabilities([("switchover-ack", True), ("return-path", True)])
    assert error(lambda: c.set_capabilities([("return-path", False)])) == text


@pytest.mark.parametrize("profile", ["9.0", "10.1"])
def test_mapped_ram(profile: str) -> None:
    c = config(profile)
    for other, text in (
        ("xbzrle", "Mapped-ram migration is incompatible with xbzrle"),
        ("postcopy-ram", "Mapped-ram migration is incompatible with postcopy"),
    ):
        assert error(lambda o=other: c.set_capabilities([("mapped-ram", True), (o, True)])) == text
    c.set_capabilities([("mapped-ram", True)])
    # QEMU checks the *current* compression and TLS: this change passes ...
    c.set_parameters({"multifd-compression": "zlib"})
    # ... and from now on every change fails
    text = "Mapped-ram only available for non-compressed non-TLS multifd migration"
    assert error(lambda: c.set_parameters({"downtime-limit": 100})) == text


@pytest.mark.parametrize(("profile", "relaxed"), [("8.1", False), ("9.0", False), ("10.1", True)])
def test_multifd_and_preempt_must_precede_incoming(profile: str, relaxed: bool) -> None:
    started = [False]
    c = config(profile, incoming_started=lambda: started[0])
    c.set_capabilities([("multifd", True)])
    started[0] = True
    if relaxed:
        c.set_capabilities([("events", True)])  # multifd stays on: allowed from 10.0
    else:
        assert error(lambda: c.set_capabilities([("events", True)])) == (
            "Multifd must be set before incoming starts"
        )
    fresh = config(profile, incoming_started=lambda: True)
    assert error(lambda: fresh.set_capabilities([("multifd", True)])) == (
        "Multifd must be set before incoming starts"
    )
    assert error(
        lambda: fresh.set_capabilities([("postcopy-ram", True), ("postcopy-preempt", True)])
    ) == ("Postcopy preempt must be set before incoming starts")


def test_no_incoming_checks_in_7_2() -> None:
    c = config("7.2", incoming_started=lambda: True)
    c.set_capabilities([("multifd", True), ("postcopy-ram", True), ("postcopy-preempt", True)])


# --- the other parameter checks ------------------------------------------------------------


@pytest.mark.parametrize(
    ("profile", "applied"), [("7.2", False), ("8.2", False), ("9.0", True), ("10.1", True)]
)
def test_multifd_levels(profile: str, applied: bool) -> None:
    c = config(profile)
    if applied:
        assert error(lambda: c.set_parameters({"multifd-zlib-level": 10})) == (
            "Parameter 'multifd_zlib_level' expects a value between 0 and 9"
        )
        assert error(lambda: c.set_parameters({"multifd-zstd-level": 21})) == (
            "Parameter 'multifd_zstd_level' expects a value between 0 and 20"
        )
    else:  # accepted without a check, and ignored
        c.set_parameters({"multifd-zlib-level": 10, "multifd-zstd-level": 21})
    c.set_parameters({"multifd-zlib-level": 4, "multifd-zstd-level": 5})
    expected = (4, 5) if applied else (1, 1)
    assert (c.parameter("multifd-zlib-level"), c.parameter("multifd-zstd-level")) == expected


def test_qatzip_level_in_10_1() -> None:
    c = config("10.1")
    text = "Parameter 'multifd_qatzip_level' expects a value between 1 and 9"
    for bad in (0, 10):
        assert error(lambda v=bad: c.set_parameters({"multifd-qatzip-level": v})) == text
    c.set_parameters({"multifd-qatzip-level": 9})
    assert c.parameter("multifd-qatzip-level") == 9


@pytest.mark.parametrize("profile", ALL)
def test_checks_see_the_whole_result(profile: str) -> None:
    c = config(profile)
    c.set_parameters({"max-cpu-throttle": 30})
    text = (
        "Parameter 'max_cpu_throttle' expects an integer in the range of cpu_throttle_initial to 99"
    )
    assert error(lambda: c.set_parameters({"cpu-throttle-initial": 40})) == text
    c.set_parameters({"cpu-throttle-initial": 40, "max-cpu-throttle": 50})
    assert (c.cpu_throttle_initial, c.max_cpu_throttle) == (40, 50)


# --- -global ---------------------------------------------------------------------------


def global_error(profile: str, *settings: str, accel: str = RING) -> str:
    argv = ["--qemu-version", profile, "-accel", accel]
    for setting in settings:
        argv += ["-global", setting]
    with pytest.raises(UsageError) as info:
        parse_args(argv)
    return str(info.value)


@pytest.mark.parametrize("profile", NEWER)
def test_dirty_limit_globals(profile: str) -> None:
    assert global_error(profile, "migration.x-vcpu-dirty-limit-period=0") == f"qmpdl: {PERIOD_TEXT}"
    limit_text = LIMIT_TEXT if profile in ("9.0", "10.1") else LIMIT_TEXT_OLD
    assert global_error(profile, "migration.vcpu-dirty-limit=0") == f"qmpdl: {limit_text}"
    assert (
        global_error(profile, "migration.x-dirty-limit=on", accel="sim") == f"qmpdl: {NEEDS_RING}"
    )
    assert (
        global_error(profile, "migration.x-dirty-limit=on", "migration.x-auto-converge=on")
        == f"qmpdl: {CONFLICT}"
    )
    assert global_error(profile, "migration.vcpu-dirty-limit=1x") == (
        "qmpdl: can't apply global migration.vcpu-dirty-limit=1x: "
        "Parameter 'vcpu-dirty-limit' expects uint64"
    )
    with Qmpdl(
        [
            "--qemu-version",
            profile,
            "-accel",
            RING,
            "-global",
            "migration.x-vcpu-dirty-limit-period=500",
            "-global",
            "migration.vcpu-dirty-limit=0x20",
            "-global",
            "migration.x-dirty-limit=on",
        ]
    ) as q:
        c = q.machine.migration_config
        assert (c.x_vcpu_dirty_limit_period, c.vcpu_dirty_limit, c.dirty_limit) == (500, 32, True)


def test_globals_of_10_1() -> None:
    assert global_error("10.1", "migration.decompress-error-check=off") == (
        "qmpdl: can't apply global migration.decompress-error-check=off: "
        "Property 'migration.decompress-error-check' not found"
    )
    assert global_error("10.1", "migration.multifd-qatzip-level=0") == (
        "qmpdl: Parameter 'multifd_qatzip_level' expects a value between 1 and 9"
    )
    assert global_error("10.1", "migration.announce-step=0x1k") == (
        "qmpdl: can't apply global migration.announce-step=0x1k: Parameter 'announce-step' "
        "expects a non-negative number below 2^64\n"
        "Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\n"
        "and exabytes, respectively."
    )
    c = config("10.1", global_properties=[("send-switchover-start", "off"), ("mode", "cpr-reboot")])
    assert c.globals["send-switchover-start"] is False
    assert c.parameter("mode") == "cpr-reboot"
    with pytest.raises(GlobalPropertyError, match="does not accept value 'bogus'"):
        config("10.1", global_properties=[("zero-page-detection", "bogus")])


def test_global_option_spellings() -> None:
    argv = ["--qemu-version", "7.2", "-accel", RING]
    config_ = parse_args(
        [
            *argv,
            "-global",
            "migration.x-downtime-limit=500",
            "-global",
            "driver=migration,property=x-events,value=on",
            "-global",
            "kvm-pit.lost_tick_policy=discard",
        ]
    )
    assert config_.migration_globals == [("x-downtime-limit", "500"), ("x-events", "on")]
    assert global_error("7.2", "migration=x") == (
        "qmpdl: -global migration=x: Invalid parameter 'migration'"
    )
