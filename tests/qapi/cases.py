"""The argument-validation cases recorded from real QEMU 7.2 (see record_goldens.py).

Each case is a command name and an ``arguments`` object.  ``SERVED`` cases use
qmpdl's own commands; ``FOREIGN`` cases use commands of the test schema in
``foreign/`` (nested objects, lists of objects, a union, narrow integers).

Rules for cases, because real QEMU runs the command when the arguments are
valid: never valid arguments for ``stop``, ``cont`` or ``quit``; valid
dirty-limit and dirty-rate arguments only where QEMU's own handler then fails
harmlessly (``cpu-index`` 99, ``calc-time`` 0).
"""

from __future__ import annotations

import json
import random
import string
from collections.abc import Mapping
from dataclasses import dataclass

from qmpdl.jsontypes import JsonObject, JsonValue

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
UINT64_MAX = (1 << 64) - 1

#: Values that are wrong for every scalar type except the one they are.
NOT_INT: list[JsonValue] = ["1", 1.0, 1.5, True, None, [], {}, INT64_MAX + 1, INT64_MIN - 1]
INT_OK: list[JsonValue] = [0, -1, INT64_MAX, INT64_MIN]
NOT_UINT: list[JsonValue] = ["1", 1.0, -0.5, True, None, [], {}, UINT64_MAX + 1, INT64_MIN - 1]
UINT_OK: list[JsonValue] = [0, UINT64_MAX, INT64_MAX + 1, -1, INT64_MIN]
NOT_STR: list[JsonValue] = [1, 1.5, True, None, [], {}]
NOT_BOOL: list[JsonValue] = [1, 0, "true", None, [], {}]
NOT_ENUM: list[JsonValue] = [1, True, None, [], {}, "bogus", "", "Page-Sampling"]


@dataclass(frozen=True)
class Case:
    """One request: ``{"execute": command, "arguments": arguments}``."""

    command: str
    arguments: JsonObject
    schema: str = "served"  # or "foreign"

    def key(self) -> str:
        """A text identifying the case (its schema, command and arguments in order)."""
        return json.dumps([self.schema, self.command, self.arguments])


def _with(base: JsonObject, **members: JsonValue) -> JsonObject:
    out = dict(base)
    out.update({k.replace("_", "-"): v for k, v in members.items()})
    return out


def _member_cases(
    command: str, base: Mapping[str, JsonValue], member: str, values: list[JsonValue]
) -> list[Case]:
    return [Case(command, {**base, member: value}) for value in values]


def _random_keys(rng: random.Random, count: int, avoid: set[str]) -> list[str]:
    keys: list[str] = []
    while len(keys) < count:
        key = "".join(rng.choice(string.ascii_lowercase + "-_") for _ in range(rng.randint(1, 9)))
        if key not in avoid and key not in keys:
            keys.append(key)
    return keys


def unexpected_cases(
    command: str,
    base: Mapping[str, JsonValue],
    seed: int,
    counts: list[int],
    schema: str = "served",
) -> list[Case]:
    """``base`` plus several unknown keys, spread before, between and after its members."""
    rng = random.Random(seed)
    out = []
    for count in counts:
        extra = _random_keys(rng, count, set(base))
        items = list(base.items())
        for key in extra:
            items.insert(rng.randint(0, len(items)), (key, 1))
        out.append(Case(command, dict(items), schema))
    return out


NO_ARG_COMMANDS = [
    "query-version",
    "query-commands",
    "query-status",
    "query-cpus-fast",
    "query-kvm",
    "query-yank",
    "query-vcpu-dirty-limit",
    "query-qmp-schema",
    "stop",
    "cont",
    "quit",
    "query-migrate",
    "query-migrate-capabilities",
    "query-migrate-parameters",
    "migrate_cancel",
    "migrate-pause",
]

#: Commands whose valid calls must not be sent to the real QEMU.
NEVER_VALID = {"stop", "cont", "quit"}


def served_cases() -> list[Case]:
    """Cases for every command qmpdl serves."""
    cases: list[Case] = []
    for i, command in enumerate(NO_ARG_COMMANDS):
        cases.append(Case(command, {"foo": 1}))
        cases.append(Case(command, {"arguments": None}))
        cases.extend(unexpected_cases(command, {}, 100 + i, [2, 3, 5, 9, 17]))
        if command not in NEVER_VALID and command != "query-qmp-schema":
            cases.append(Case(command, {}))

    # qmp_capabilities: an optional array of enum values.
    qc = "qmp_capabilities"
    cases += _member_cases(qc, {}, "enable", ["oob", 1, True, None, {}])
    bad_items: list[JsonValue] = [1, None, True, [], {}, "foo", "", "OOB"]
    cases += [Case(qc, {"enable": [v]}) for v in bad_items]
    cases += [
        Case(qc, {"enable": ["oob", "foo"]}),
        Case(qc, {"enable": ["oob", 7, "foo"]}),
        Case(qc, {"enable": [], "x": 1}),
        Case(qc, {"x": 1, "enable": ["bad"]}),
        Case(qc, {}),
        Case(qc, {"enable": []}),
        Case(qc, {"enable": ["oob"]}),
    ]
    cases += unexpected_cases(qc, {"enable": []}, 7, [2, 4, 8])

    # human-monitor-command: required str, optional int.
    hmc = "human-monitor-command"
    ok: JsonObject = {"command-line": "info version"}
    cases.append(Case(hmc, {}))
    cases.append(Case(hmc, {"cpu-index": 0}))
    cases += _member_cases(hmc, {}, "command-line", NOT_STR)
    cases += _member_cases(hmc, ok, "cpu-index", NOT_INT)
    cases += [
        Case(hmc, {"cpu-index": "x", "command-line": 1}),
        Case(hmc, {"cpu-index": "x"}),
        Case(hmc, {"command-line": "info version", "cpu-index": 0, "bogus": 1}),
        Case(hmc, ok),
    ]
    cases += unexpected_cases(hmc, ok, 8, [2, 6])

    # set-vcpu-dirty-limit: optional int, required uint64.
    svdl = "set-vcpu-dirty-limit"
    cases.append(Case(svdl, {}))
    cases.append(Case(svdl, {"cpu-index": 99}))
    cases += _member_cases(svdl, {"cpu-index": 99}, "dirty-rate", NOT_UINT + UINT_OK)
    cases += _member_cases(svdl, {"dirty-rate": 100}, "cpu-index", NOT_INT)
    cases += [Case(svdl, {"cpu-index": v, "dirty-rate": 1}) for v in [99, INT64_MAX, -99]]
    cases += [
        Case(svdl, {"dirty-rate": "x", "cpu-index": "y"}),
        Case(svdl, {"cpu-index": "y"}),
        Case(svdl, {"foo": 1, "cpu-index": 1.5, "dirty-rate": 1}),
        Case(svdl, {"foo": 1}),
        Case(svdl, {"foo": 1, "dirty-rate": "x"}),
        Case(svdl, {"dirty-rate": 1, "cpu-index": 99, "foo": 1}),
    ]
    cases += unexpected_cases(svdl, {"cpu-index": 99, "dirty-rate": 1}, 9, [1, 2, 3, 4, 7, 12])
    cases += unexpected_cases(svdl, {"dirty-rate": 1}, 10, [2, 5, 11])

    # cancel-vcpu-dirty-limit: optional int.
    cvdl = "cancel-vcpu-dirty-limit"
    cases += _member_cases(cvdl, {}, "cpu-index", NOT_INT)
    cases += [Case(cvdl, {}), Case(cvdl, {"cpu-index": 99})]
    cases += unexpected_cases(cvdl, {"cpu-index": 99}, 11, [1, 3, 6])

    # calc-dirty-rate: required int64, optional int, optional enum; no
    # calc-time-unit before 8.2.
    cdr = "calc-dirty-rate"
    bad_time: JsonObject = {"calc-time": 0}
    cases.append(Case(cdr, {}))
    cases.append(Case(cdr, {"mode": "dirty-ring"}))
    cases += _member_cases(cdr, {}, "calc-time", NOT_INT)
    cases += _member_cases(cdr, bad_time, "sample-pages", NOT_INT)
    cases += _member_cases(cdr, bad_time, "mode", NOT_ENUM)
    cases += _member_cases(cdr, bad_time, "calc-time-unit", ["second", "millisecond", 1])
    cases += [
        Case(cdr, {"mode": "bogus", "sample-pages": "x", "calc-time": "y"}),
        Case(cdr, {"mode": "bogus", "sample-pages": "x"}),
        Case(cdr, {"mode": "bogus", "calc-time": 0}),
        Case(cdr, {"calc-time": 0, "sample-pages": 512, "mode": "page-sampling"}),
        Case(cdr, bad_time),
        Case(cdr, {"calc-time": INT64_MAX}),
    ]
    cases += unexpected_cases(cdr, {"calc-time": 0, "mode": "page-sampling"}, 12, [2, 5])

    # query-dirty-rate: no arguments before 8.2.
    qdr = "query-dirty-rate"
    cases += _member_cases(qdr, {}, "calc-time-unit", ["second", "bogus", 1])
    cases += [Case(qdr, {}), Case(qdr, {"calc-time-unit": "second", "x": 1})]
    cases += unexpected_cases(qdr, {}, 13, [1, 4])
    return cases + migration_cases() + harness_cases()


#: The harness commands without arguments (system_reset and system_powerdown: never
#: valid, QEMU would reset or press the power button).
HARNESS_NO_ARG = [
    "query-target",
    "query-machines",
    "query-cpu-definitions",
    "query-tpm-models",
    "query-tpm-types",
    "query-sev-capabilities",
    "query-sgx-capabilities",
    "query-hotpluggable-cpus",
    "query-iothreads",
    "query-block",
    "query-name",
    "query-uuid",
    "system_reset",
    "system_powerdown",
    "query-chardev",
]


def harness_cases() -> list[Case]:
    """Cases for the commands libvirt's probe and domain start use."""
    cases: list[Case] = []
    for i, command in enumerate(HARNESS_NO_ARG):
        cases.append(Case(command, {"foo": 1}))
        cases += unexpected_cases(command, {}, 200 + i, [2, 4])
        if command not in ("system_reset", "system_powerdown"):
            cases.append(Case(command, {}))

    qlt = "qom-list-types"
    cases += _member_cases(qlt, {}, "implements", NOT_STR)
    cases += _member_cases(qlt, {}, "abstract", NOT_BOOL)
    cases += [Case(qlt, {"implements": 1, "abstract": 1}), Case(qlt, {"abstract": True, "x": 1})]
    cases += unexpected_cases(qlt, {"implements": "device"}, 210, [2, 5])
    for command in ("qom-list-properties", "device-list-properties"):
        cases.append(Case(command, {}))
        cases += _member_cases(command, {}, "typename", NOT_STR)
        cases += unexpected_cases(command, {"typename": "pci-device"}, 211, [1, 3])
    cases.append(Case("qom-list", {}))
    cases += _member_cases("qom-list", {}, "path", NOT_STR)
    qg = "qom-get"
    cases += [Case(qg, {}), Case(qg, {"path": "/machine"}), Case(qg, {"property": "type"})]
    cases += _member_cases(qg, {"path": "/machine"}, "property", NOT_STR)
    cases += _member_cases(qg, {"property": "type"}, "path", NOT_STR)
    cases += unexpected_cases(qg, {"path": "/machine", "property": "type"}, 212, [1, 4])

    qcme = "query-cpu-model-expansion"
    model: JsonObject = {"name": "qemu64"}
    cases += [
        Case(qcme, {}),
        Case(qcme, {"type": "full"}),
        Case(qcme, {"model": model}),
        Case(qcme, {"type": "compatible", "model": model}),
        Case(qcme, {"type": "static", "model": {}}),
        Case(qcme, {"type": "static", "model": {"name": 1}}),
        Case(qcme, {"type": "static", "model": {"name": "qemu64", "x": 1}}),
        Case(qcme, {"type": "static", "model": "qemu64"}),
    ]
    cases += _member_cases(qcme, {"model": model}, "type", NOT_ENUM)
    cases += unexpected_cases(qcme, {"type": "full", "model": model}, 213, [1, 3])

    qclo = "query-command-line-options"
    cases += _member_cases(qclo, {}, "option", NOT_STR)
    cases += [Case(qclo, {}), Case(qclo, {"option": "machine"})]
    cases += unexpected_cases(qclo, {"option": "machine"}, 214, [2])
    cases += [Case("query-named-block-nodes", {"flat": v}) for v in [*NOT_BOOL, True]]
    cases += [Case("query-blockstats", {"query-nodes": v}) for v in [*NOT_BOOL, False]]
    cases += unexpected_cases("query-named-block-nodes", {"flat": True}, 215, [2])

    sa = "set-action"
    cases += _member_cases(sa, {}, "reboot", [*NOT_ENUM, "reset"])
    cases += _member_cases(sa, {}, "shutdown", ["pause", "off", 1])
    cases += _member_cases(sa, {}, "panic", ["exit-failure", "bogus"])
    cases += _member_cases(sa, {}, "watchdog", ["inject-nmi", "nmi"])
    cases += [
        Case(sa, {}),
        Case(sa, {"reboot": "bogus", "panic": "bogus"}),
        Case(sa, {"reboot": "reset", "shutdown": "poweroff", "panic": "none"}),
    ]
    cases += unexpected_cases(sa, {"reboot": "reset"}, 216, [1, 3, 6])

    qs = "query-stats"
    cases += [
        Case(qs, {}),
        Case(qs, {"target": "bogus"}),
        Case(qs, {"target": 1}),
        Case(qs, {"target": "vm"}),
        Case(qs, {"target": "vm", "vcpus": []}),
        Case(qs, {"target": "vcpu", "vcpus": "x"}),
        Case(qs, {"target": "vcpu", "vcpus": [1]}),
        Case(qs, {"target": "vcpu", "vcpus": []}),
        Case(qs, {"target": "vm", "providers": {}}),
        Case(qs, {"target": "vm", "providers": [{}]}),
        Case(qs, {"target": "vm", "providers": [{"provider": "xen"}]}),
        Case(qs, {"target": "vm", "providers": [{"provider": "kvm", "names": "x"}]}),
        Case(qs, {"target": "vm", "providers": [{"provider": "kvm", "x": 1}]}),
        Case(qs, {"target": "vm", "providers": [{"provider": "kvm", "names": []}]}),
        Case(qs, {"providers": []}),
    ]
    cases += unexpected_cases(qs, {"target": "vcpu"}, 217, [1, 4])
    qss = "query-stats-schemas"
    cases += _member_cases(qss, {}, "provider", ["kvm", "cryptodev", 1, None])
    cases += [Case(qss, {})]
    cases += unexpected_cases(qss, {"provider": "kvm"}, 218, [2])
    return cases


def migration_cases() -> list[Case]:
    """Cases for the migration commands (QEMU runs the valid ones: they only change
    capabilities and parameters, or fail harmlessly in the handler)."""
    cases: list[Case] = []
    msc = "migrate-set-capabilities"
    events: JsonObject = {"capability": "events", "state": True}
    cases += [
        Case(msc, {}),
        Case(msc, {"capabilities": {}}),
        Case(msc, {"capabilities": None}),
        Case(msc, {"capabilities": [1]}),
        Case(msc, {"capabilities": [{}]}),
        Case(msc, {"capabilities": [{"capability": "events"}]}),
        Case(msc, {"capabilities": [{"state": True}]}),
        Case(msc, {"capabilities": [events, {"capability": "dirty-limit", "state": True}]}),
        Case(msc, {"capabilities": [{"capability": "switchover-ack", "state": False}]}),
        Case(msc, {"capabilities": [{"capability": "events", "state": "on"}]}),
        Case(msc, {"capabilities": [events, {**events, "x": 1}]}),
        Case(msc, {"capabilities": [events]}),
        Case(msc, {"capabilities": [{**events, "state": False}]}),
        Case(msc, {"capabilities": []}),
    ]
    cases += unexpected_cases(msc, {"capabilities": []}, 31, [1, 3])

    msp = "migrate-set-parameters"
    parameters: list[tuple[str, list[JsonValue]]] = [
        ("announce-initial", [-1, "1", 1.5, UINT64_MAX + 1]),
        ("throttle-trigger-threshold", [256, -1, "50", 50]),
        ("cpu-throttle-tailslow", [1, "on", False]),
        ("tls-creds", [1, True, [], {}, None, ""]),
        ("tls-hostname", [1.5]),
        ("tls-authz", [None]),
        ("max-bandwidth", [-1, "1", 1.5, 134217728]),
        ("downtime-limit", [-5, "x", 300]),
        ("x-checkpoint-delay", [1 << 32, -1, 20000]),
        ("multifd-compression", [1, "bogus", "qpl", "none"]),
        ("multifd-zlib-level", [256]),
        ("block-bitmap-mapping", [{}, [1], [{}], [{"node-name": "n", "alias": 1}]]),
        ("x-vcpu-dirty-limit-period", [1000]),
        ("vcpu-dirty-limit", [1]),
        ("mode", ["normal"]),
        ("direct-io", [False]),
    ]
    for member, values in parameters:
        cases += [Case(msp, {member: value}) for value in values]
    cases += [
        Case(msp, {"block-bitmap-mapping": [{"node-name": "n", "alias": "a", "bitmaps": [{}]}]}),
        Case(
            msp,
            {
                "block-bitmap-mapping": [
                    {"node-name": "n", "alias": "a", "bitmaps": [{"name": "b", "alias": "c"}]},
                    {"node-name": "m", "alias": "d", "bitmaps": [{"name": "b", "alias": 7}]},
                ]
            },
        ),
        Case(msp, {"x-checkpoint-delay": 1 << 32, "compress-level": 256}),
        Case(msp, {"tls-creds": 1, "announce-max": "x"}),
        Case(msp, {}),
    ]
    cases += unexpected_cases(msp, {"downtime-limit": 300}, 32, [1, 4])

    # Never valid: a valid call would start a migration.
    mig = "migrate"
    cases += [
        Case(mig, {}),
        Case(mig, {"uri": 1}),
        Case(mig, {"blk": True}),
        Case(mig, {"uri": "tcp:127.0.0.1:1", "blk": "x"}),
        Case(mig, {"uri": "tcp:127.0.0.1:1", "detach": 1, "resume": 1}),
        # (10.0 takes an empty channels list beside uri: an address it cannot parse)
        Case(mig, {"uri": "tcp:127.0.0.1", "channels": []}),
        Case(mig, {"uri": "tcp:127.0.0.1:1", "channels": [{}]}),
    ]
    cases += unexpected_cases(mig, {"uri": "tcp:127.0.0.1:1"}, 33, [1, 2, 5])

    mi = "migrate-incoming"
    cases += [
        Case(mi, {}),
        Case(mi, {"uri": None}),
        Case(mi, {"uri": "tcp:127.0.0.1:0", "exit-on-error": False}),
        Case(mi, {"uri": "tcp:127.0.0.1:0"}),
    ]
    cases += unexpected_cases(mi, {"uri": "defer"}, 34, [1, 3])

    mc = "migrate-continue"
    cases += _member_cases(mc, {}, "state", [*NOT_ENUM, "pre-switchover"])
    cases += [Case(mc, {})]
    cases += unexpected_cases(mc, {"state": "active"}, 35, [1, 2])
    return cases


def foreign_cases() -> list[Case]:
    """Cases for the commands of the foreign test schema."""

    def f(command: str, arguments: JsonObject) -> Case:
        return Case(command, arguments, "foreign")

    cases: list[Case] = []
    msc = "migrate-set-capabilities"
    ok_item: JsonObject = {"capability": "events", "state": True}
    cases += [
        f(msc, {}),
        f(msc, {"capabilities": {}}),
        f(msc, {"capabilities": [1]}),
        f(msc, {"capabilities": [ok_item, None]}),
        f(msc, {"capabilities": [{}]}),
        f(msc, {"capabilities": [{"capability": "events"}]}),
        f(msc, {"capabilities": [ok_item, {"capability": "bogus", "state": True}]}),
        f(msc, {"capabilities": [ok_item, ok_item, {"capability": 1, "state": True}]}),
        f(msc, {"capabilities": [{"capability": "events", "state": "yes"}]}),
        f(msc, {"capabilities": [ok_item, {"capability": "events", "state": True, "x": 1}]}),
        f(msc, {"capabilities": [{"state": 1, "capability": "bogus"}]}),
        f(msc, {"capabilities": [ok_item]}),
        f(msc, {"capabilities": []}),
        f(msc, {"capabilities": [{"capability": "events", "state": True, "b": 1, "a": 2}]}),
    ]
    cases += unexpected_cases(msc, {"capabilities": [ok_item]}, 21, [2, 5], "foreign")

    msp = "migrate-set-parameters"
    parameters: list[tuple[str, list[JsonValue]]] = [
        ("compress-level", [255, 256, -1, 1.0, "1", None, UINT64_MAX, UINT64_MAX + 1]),
        ("compress-wait-thread", [1, True]),
        ("max-bandwidth", [UINT64_MAX, -1, "1", 1.5, UINT64_MAX + 1]),
        ("downtime-limit", [-5, "x", 2000]),
        ("x-checkpoint-delay", [(1 << 32) - 1, 1 << 32, -1, "x"]),
    ]
    for member, values in parameters:
        cases += [f(msp, {member: value}) for value in values]
    cases += [
        f(msp, {"x-checkpoint-delay": 1 << 32, "compress-level": 256}),
        f(msp, {"downtime-limit": "x", "compress-threads": 300}),
    ]

    cha = "chardev-add"
    file_ok: JsonObject = {"type": "file", "data": {"out": "/dev/null"}}
    cases += [
        f(cha, {}),
        f(cha, {"id": "c0"}),
        f(cha, {"id": 1, "backend": 1}),
        f(cha, {"id": "c0", "backend": 1}),
        f(cha, {"id": "c0", "backend": {}}),
        f(cha, {"id": "c0", "backend": {"type": "bogus"}}),
        f(cha, {"id": "c0", "backend": {"type": 7}}),
        f(cha, {"id": "c0", "backend": {"type": "file"}}),
        f(cha, {"id": "c0", "backend": {"type": "file", "data": []}}),
        f(cha, {"id": "c0", "backend": {"type": "file", "data": {}}}),
        f(cha, {"id": "c0", "backend": {"type": "file", "data": {"out": 1}}}),
        f(cha, {"id": "c0", "backend": {"type": "file", "data": {"out": "/dev/null", "x": 1}}}),
        f(cha, {"id": "c0", "backend": {"type": "file", "data": {"out": "o", "logappend": 1}}}),
        f(cha, {"id": "c0", "backend": {**file_ok, "zz": 1}}),
        f(cha, {"id": "c0", "backend": {**file_ok, "zz": 1, "yy": 2, "xx": 3}}),
        f(cha, {"id": "c0", "backend": {"type": "null", "data": {}}}),
        f(cha, {"id": "c0", "backend": file_ok, "extra": {"a": 1}}),
        f(cha, {"id": "c0", "backend": file_ok}),
    ]
    return cases


def all_cases() -> list[Case]:
    """Every recorded case, served first."""
    return served_cases() + foreign_cases()
