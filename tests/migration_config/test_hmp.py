"""The migration HMP commands in the versions after 7.2 (7.2 itself: test_golden.py).

The expected texts follow QEMU's ``migration/migration-hmp-cmds.c`` of each version
(spec section 3): 8.1 adds the dirty-limit lines, 8.2 ``avail-switchover-bandwidth`` and
``mode``, 9.0 ``zero-page-detection``, 9.1 drops the compression and block migration
lines and adds ``direct-io``, 10.1 reorganises ``info migrate`` (``-a``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from qmpdl.hmp import execute
from qmpdl.jsontypes import JsonObject
from qmpdl.profile import get_profile
from tests.hmp.fakes import FakeQmp
from tests.migration_config.harness import Qmpdl

RING = "sim,dirty-ring-size=4096"


def hmp(q: Qmpdl, line: str) -> str:
    request = {"execute": "human-monitor-command", "arguments": {"command-line": line}}
    reply = json.loads(q.reply(json.dumps(request)))
    text = reply["return"]
    assert isinstance(text, str)
    return text.replace("\r\n", "\n")


def machine(profile: str, accel: str = RING) -> Qmpdl:
    return Qmpdl(["--qemu-version", profile, "-accel", accel])


_HEAD = """announce-initial: 50 ms
announce-max: 550 ms
announce-rounds: 5
announce-step: 100 ms
"""
_COMPRESS = """compress-level: 1
compress-threads: 8
compress-wait-thread: on
decompress-threads: 2
"""
_THROTTLE = """throttle-trigger-threshold: 50
cpu-throttle-initial: 20
cpu-throttle-increment: 10
cpu-throttle-tailslow: off
max-cpu-throttle: 99
tls-creds: ''
tls-hostname: ''
max-bandwidth: 134217728 bytes/second
"""
_TAIL_8_1 = """downtime-limit: 300 ms
x-checkpoint-delay: 20000 ms
block-incremental: off
multifd-channels: 2
multifd-compression: none
xbzrle-cache-size: 67108864 bytes
max-postcopy-bandwidth: 0
tls-authz: ''
x-vcpu-dirty-limit-period: 1000 ms
vcpu-dirty-limit: 1 MB/s
"""

PARAMETERS = {
    "8.1": _HEAD + _COMPRESS + _THROTTLE + _TAIL_8_1,
    "8.2": _HEAD
    + _COMPRESS
    + _THROTTLE
    + "avail-switchover-bandwidth: 0 bytes/second\n"
    + _TAIL_8_1
    + "mode: normal\n",
    "9.0": _HEAD
    + _COMPRESS
    + _THROTTLE
    + "avail-switchover-bandwidth: 0 bytes/second\n"
    + _TAIL_8_1.replace(
        "multifd-compression: none\n",
        "multifd-compression: none\nzero-page-detection: multifd\n",
    )
    + "mode: normal\n",
    "10.1": _HEAD
    + _THROTTLE
    + """avail-switchover-bandwidth: 0 bytes/second
downtime-limit: 300 ms
x-checkpoint-delay: 20000 ms
multifd-channels: 2
multifd-compression: none
zero-page-detection: multifd
xbzrle-cache-size: 67108864 bytes
max-postcopy-bandwidth: 0
tls-authz: ''
x-vcpu-dirty-limit-period: 1000 ms
vcpu-dirty-limit: 1 MB/s
mode: normal
direct-io: off
""",
    "10.2": _HEAD
    + _THROTTLE.replace("max-bandwidth:", "tls-authz: ''\nmax-bandwidth:")
    + """avail-switchover-bandwidth: 0 bytes/second
max-postcopy-bandwidth: 0 bytes/second
downtime-limit: 300 ms
x-checkpoint-delay: 20000 ms
multifd-channels: 2
multifd-compression: none
zero-page-detection: multifd
xbzrle-cache-size: 67108864 bytes
x-vcpu-dirty-limit-period: 1000 ms
vcpu-dirty-limit: 1 MB/s
mode: normal
direct-io: off
cpr-exec-command:
""",
}


@pytest.mark.parametrize("profile", sorted(PARAMETERS))
def test_info_migrate_parameters(profile: str) -> None:
    with machine(profile) as q:
        assert hmp(q, "info migrate_parameters") == PARAMETERS[profile]


@pytest.mark.parametrize("profile", ["8.1", "9.0", "10.1"])
def test_set_dirty_limit_parameters(profile: str) -> None:
    with machine(profile) as q:
        # both are read as sizes: suffixes count
        assert hmp(q, "migrate_set_parameter vcpu-dirty-limit 1k") == ""
        assert hmp(q, "migrate_set_parameter x-vcpu-dirty-limit-period 0x1F4") == ""
        text = hmp(q, "info migrate_parameters")
        assert "x-vcpu-dirty-limit-period: 500 ms\nvcpu-dirty-limit: 1024 MB/s\n" in text
        assert hmp(q, "migrate_set_parameter x-vcpu-dirty-limit-period 1k") == (
            "Error: Parameter 'x-vcpu-dirty-limit-period' expects a value between 1 and 1000\n"
        )
        limit = (
            "Parameter 'vcpu_dirty_limit' must be greater than 1 MB/s"
            if profile != "8.1"
            else "Parameter 'vcpu_dirty_limit' expects is invalid, it must greater then 1 MB/s"
        )
        assert hmp(q, "migrate_set_parameter vcpu-dirty-limit 0") == f"Error: {limit}\n"
        assert hmp(q, "migrate_set_parameter vcpu-dirty-limit 1x") == (
            "Error: Parameter 'vcpu-dirty-limit' expects a non-negative number below 2^64\n"
            "Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\n"
            "and exabytes, respectively.\n"
        )


@pytest.mark.parametrize("profile", ["8.1", "10.1"])
def test_set_dirty_limit_capability(profile: str) -> None:
    with machine(profile) as q:
        assert "dirty-limit: off\n" in hmp(q, "info migrate_capabilities")
        assert hmp(q, "migrate_set_capability dirty-limit on") == ""
        assert "dirty-limit: on\n" in hmp(q, "info migrate_capabilities")
        assert hmp(q, "migrate_set_capability auto-converge on") == (
            "Error: dirty-limit conflicts with auto-converge either of then available currently\n"
        )
    with machine(profile, "sim") as q:
        assert hmp(q, "migrate_set_capability dirty-limit on") == (
            "Error: dirty-limit requires KVM with accelerator property 'dirty-ring-size' set\n"
        )


def test_hex_sizes_with_suffix() -> None:
    with machine("7.2") as old, machine("10.1") as new:
        assert hmp(old, "migrate_set_parameter max-bandwidth 0x2k") == (
            "warning: Using a multiplier suffix on hex numbers is deprecated: 0x2k\n"
        )
        assert "max-bandwidth: 2048 bytes/second\n" in hmp(old, "info migrate_parameters")
        assert hmp(new, "migrate_set_parameter max-bandwidth 0x2k") == "Error: Invalid size 0x2k\n"
        # B and E are hex digits: 0x2B is 43, in MiB
        assert hmp(new, "migrate_set_parameter max-bandwidth 0x2B") == ""
        assert "max-bandwidth: 45088768 bytes/second\n" in hmp(new, "info migrate_parameters")


def test_unknown_names_of_each_version() -> None:
    with machine("10.1") as q:
        assert hmp(q, "migrate_set_parameter compress-level 1") == (
            "Error: invalid parameter value: compress-level\n"
        )
        assert hmp(q, "migrate_set_capability block on") == (
            "Error: invalid parameter value: block\n"
        )
        assert hmp(q, "migrate_set_parameter direct-io on") == ""
        assert hmp(q, "migrate_set_parameter mode cpr-transfer") == ""
        assert hmp(q, "migrate_set_parameter mode bogus") == (
            "Error: Parameter 'mode' does not accept value 'bogus'\n"
        )
        assert hmp(q, "migrate_set_parameter multifd-qatzip-level 0") == (
            "Error: Parameter 'multifd_qatzip_level' expects a value between 1 and 9\n"
        )
    with machine("8.2") as q:
        assert hmp(q, "migrate_set_parameter mode cpr-transfer") == (
            "Error: Parameter 'mode' does not accept value 'cpr-transfer'\n"
        )


# --- info migrate ---------------------------------------------------------------------------

_RAM: JsonObject = {
    "transferred": 1024,
    "remaining": 1073741824,
    "total": 1073741824,
    "duplicate": 200,
    "skipped": 0,
    "normal": 3,
    "normal-bytes": 12288,
    "dirty-pages-rate": 0,
    "mbps": 0.5,
    "dirty-sync-count": 1,
    "postcopy-requests": 0,
    "page-size": 4096,
    "multifd-bytes": 0,
    "pages-per-second": 100,
    "precopy-bytes": 999,
    "downtime-bytes": 0,
    "postcopy-bytes": 0,
    "dirty-sync-missed-zero-copy": 0,
}

ACTIVE: JsonObject = {
    "status": "active",
    "total-time": 2500,
    "setup-time": 3,
    "expected-downtime": 300,
    "ram": _RAM,
    "dirty-limit-throttle-time-per-round": 1234,
    "dirty-limit-ring-full-time": 5678,
}


def info_migrate(profile: str, reply: Mapping[str, Any], line: str = "info migrate") -> str:
    text = execute(line, profile=get_profile(profile), qmp=FakeQmp({"query-migrate": dict(reply)}))
    return text.replace("\r\n", "\n")


_ACTIVE_BODY = """Migration status: active
total time: 2500 ms
expected downtime: 300 ms
setup: 3 ms
transferred ram: 1 kbytes
throughput: 0.50 mbps
remaining ram: 1048576 kbytes
total ram: 1048576 kbytes
duplicate: 200 pages
skipped: 0 pages
normal: 3 pages
normal bytes: 12 kbytes
dirty sync count: 1
page size: 4 kbytes
multifd bytes: 0 kbytes
pages-per-second: 100
precopy ram: 0 kbytes
dirty-limit throttle time: 1234 us
dirty-limit ring full time: 5678 us
"""


@pytest.mark.parametrize("profile", ["8.1", "9.0"])
def test_info_migrate_dirty_limit_lines(profile: str) -> None:
    globals_ = (
        "globals:\nstore-global-state: on\nonly-migratable: off\nsend-configuration: on\n"
        "send-section-footer: on\ndecompress-error-check: on\nclear-bitmap-shift: 18\n"
    )
    assert info_migrate(profile, ACTIVE) == globals_ + _ACTIVE_BODY


def test_info_migrate_in_7_2_has_no_dirty_limit_lines() -> None:
    # the members do not exist in 7.2's query-migrate; a reply without them
    reply = {k: v for k, v in ACTIVE.items() if not k.startswith("dirty-limit")}
    text = info_migrate("7.2", reply)
    assert "dirty-limit" not in text and "skipped: 0 pages\n" in text


_NEW_DEFAULT = """Status: \t\tactive
Time (ms): \t\ttotal=2500, setup=3, exp_down=300
RAM info:
  Throughput (Mbps): \t0.50
  Sizes: \t\tpagesize=4 KiB, total=1 GiB
  Transfers: \t\ttransferred=1 KiB, remain=1 GiB
    Channels: \t\tprecopy=999 B, multifd=0 B, postcopy=0 B
    Page Types: \tnormal=3, zero=200
  Page Rates (pps): \ttransfer=100
  Others: \t\tdirty_syncs=1
"""
_NEW_ALL = (
    _NEW_DEFAULT
    + """Globals:
  store-global-state: on
  only-migratable: off
  send-configuration: on
  send-section-footer: on
  send-switchover-start: on
  clear-bitmap-shift: 18
Dirty-limit Throttle (us): 1234
Dirty-limit Ring Full (us): 5678
"""
)


def test_info_migrate_reorganised_in_10_1() -> None:
    reply = {k: v for k, v in ACTIVE.items() if k != "ram"}
    reply["ram"] = {k: v for k, v in _RAM.items() if k != "skipped"}
    assert info_migrate("10.1", reply) == _NEW_DEFAULT
    assert info_migrate("10.1", reply, "info migrate -a") == _NEW_ALL
    assert info_migrate("10.1", reply, "info migrate -b") == (
        'migrate: unsupported option -b\nTry "help info migrate" for more information\n'
    )
    assert info_migrate("9.0", reply, "info migrate -a") == (
        "migrate: extraneous characters at the end of line\n"
        'Try "help info migrate" for more information\n'
    )


def test_info_migrate_10_1_without_a_migration() -> None:
    assert info_migrate("10.1", {}) == ""
    assert info_migrate("10.1", {}, "info migrate -a") == (
        "Globals:\n  store-global-state: on\n  only-migratable: off\n  send-configuration: on\n"
        "  send-section-footer: on\n  send-switchover-start: on\n  clear-bitmap-shift: 18\n"
    )
    failed = {"status": "failed", "error-desc": "Connection refused"}
    assert info_migrate("10.1", failed) == "Status: \t\tfailed (Connection refused)\n"
    listening = {"socket-address": [{"type": "inet", "host": "0.0.0.0", "port": "4444"}]}
    assert info_migrate("10.1", listening) == "Sockets: [\n\ttcp:0.0.0.0:4444\n]\n"
    assert info_migrate("8.2", listening).endswith("socket address: [\n\ttcp:0.0.0.0:4444\n]\n")


def test_info_migrate_uses_the_machines_globals() -> None:
    with Qmpdl(
        ["--qemu-version", "10.1", "-accel", RING, "-global", "migration.store-global-state=off"]
    ) as q:
        text = execute(
            "info migrate -a",
            profile=q.machine.profile,
            qmp=FakeQmp({"query-migrate": {}}),
            migration_globals=q.machine.migration_config.globals,
        )
        assert "  store-global-state: off\r\n" in text


def test_cpr_exec_command_in_10_2() -> None:
    """10.2: migrate_set_parameter takes the rest of the line; cpr-exec-command is read
    as a shell command line (g_shell_parse_argv) and printed word by word."""
    with machine("10.2") as q:
        line = "migrate_set_parameter cpr-exec-command qemu -incoming 'unix:/tmp/a b' \\x"
        assert hmp(q, line) == ""
        reply = json.loads(q.reply('{"execute": "query-migrate-parameters"}'))["return"]
        assert reply["cpr-exec-command"] == ["qemu", "-incoming", "unix:/tmp/a b", "x"]
        assert hmp(q, "info migrate_parameters").endswith(
            "cpr-exec-command: qemu -incoming unix:/tmp/a b x\n"
        )
        assert hmp(q, "migrate_set_parameter cpr-exec-command 'open") == (
            "Error: Text ended before matching quote was found for '. (The text was “'open”)\n"
        )
        assert hmp(q, "migrate_set_parameter downtime-limit 1 2") == (
            "Error: Parameter 'downtime-limit' expects a non-negative number below 2^64\n"
            "Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\n"
            "and exabytes, respectively.\n"
        )
    with machine("10.1") as q:
        assert hmp(q, "migrate_set_parameter downtime-limit 1 2") == (
            "migrate_set_parameter: extraneous characters at the end of line\n"
            'Try "help migrate_set_parameter" for more information\n'
        )
        assert hmp(q, "migrate_set_parameter cpr-exec-command x") == (
            "Error: invalid parameter value: cpr-exec-command\n"
        )
