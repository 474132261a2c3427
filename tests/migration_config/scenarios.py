"""What the golden files record from real QEMU 7.2 and 10.0 (see :mod:`record_golden`).

* ``SESSIONS``: request sequences played against one fresh QEMU each (``-accel
  kvm,dirty-ring-size=4096 -machine none``).  A request is a JSON text, or an HMP line
  (sent as ``human-monitor-command``).  Only the configuration surface is played here:
  capabilities, parameters and their HMP commands.
* ``GLOBALS``: ``-global`` option lists; QEMU's stderr and exit status, or on success
  its parameters, capabilities and ``info migrate`` globals.
* a real migration between two QEMUs, for ``info migrate`` (see :mod:`record_golden`).
"""

from __future__ import annotations

import json

from qmpdl.jsontypes import JsonValue

#: QEMU's machine options (qmpdl plays them as ``-accel sim,dirty-ring-size=4096``).
QEMU_ARGS = ["-accel", "kvm,dirty-ring-size=4096", "-machine", "none"]
QMPDL_MACHINE = ["-accel", "sim,dirty-ring-size=4096"]


def qmpdl_args(version: str) -> list[str]:
    """qmpdl answering as QEMU ``version`` on the same machine."""
    return ["--qemu-version", version, *QMPDL_MACHINE]


def caps(*pairs: tuple[str, bool]) -> str:
    items = [{"capability": name, "state": state} for name, state in pairs]
    return json.dumps({"execute": "migrate-set-capabilities", "arguments": {"capabilities": items}})


def params(**members: JsonValue) -> str:
    arguments = {key.replace("_", "-"): value for key, value in members.items()}
    return json.dumps({"execute": "migrate-set-parameters", "arguments": arguments})


def query(name: str) -> str:
    return json.dumps({"execute": name})


QCAPS = query("query-migrate-capabilities")
QPARAMS = query("query-migrate-parameters")
ON, OFF = True, False

_SINGLE_CAPS = [
    "xbzrle", "rdma-pin-all", "auto-converge", "zero-blocks", "compress", "events",
    "postcopy-ram", "x-colo", "release-ram", "block", "return-path",
    "pause-before-switchover", "multifd", "dirty-bitmaps", "postcopy-blocktime",
    "late-block-activate", "x-ignore-shared", "validate-uuid", "background-snapshot",
    "zero-copy-send", "postcopy-preempt", "dirty-limit", "switchover-ack", "mapped-ram",
]  # fmt: skip

CAPABILITIES = [
    QCAPS,
    "info migrate_capabilities",
    # every capability alone on a fresh set, then off again
    *[step for name in _SINGLE_CAPS for step in (caps((name, ON)), caps((name, OFF)))],
    # combinations and the order of the checks
    caps(("multifd", ON), ("xbzrle", ON)),
    caps(("multifd", ON), ("compress", ON)),
    caps(("multifd", OFF), ("xbzrle", OFF)),
    caps(("compress", ON), ("xbzrle", ON)),
    caps(("compress", OFF), ("xbzrle", OFF)),
    caps(("postcopy-ram", ON), ("x-ignore-shared", ON)),
    caps(("postcopy-ram", ON), ("multifd", ON)),
    caps(("postcopy-preempt", ON), ("compress", ON)),
    caps(("postcopy-preempt", ON)),
    caps(("zero-copy-send", ON), ("multifd", ON), ("xbzrle", ON)),
    caps(("auto-converge", ON), ("postcopy-preempt", OFF), ("zero-copy-send", ON)),
    caps(("dirty-bitmaps", ON), ("background-snapshot", ON)),
    caps(("postcopy-ram", OFF), ("multifd", OFF), ("dirty-bitmaps", OFF), ("auto-converge", OFF)),
    caps(("background-snapshot", ON)),
    caps(("xbzrle", ON)),
    caps(("return-path", ON)),
    caps(("background-snapshot", OFF)),
    caps(("events", ON), ("events", OFF), ("events", ON)),
    # dirty-limit (8.1+) conflicts with auto-converge, together and in either order
    caps(("dirty-limit", ON), ("auto-converge", ON)),
    caps(("auto-converge", ON)),
    caps(("dirty-limit", ON)),
    caps(("auto-converge", OFF)),
    caps(("dirty-limit", ON)),
    caps(("auto-converge", ON)),
    caps(("dirty-limit", ON), ("auto-converge", OFF)),
    QCAPS,
    caps(("dirty-limit", OFF)),
    caps(),
    QCAPS,
    "info migrate_capabilities",
]

_BITMAP: dict[str, JsonValue] = {
    "node-name": "n",
    "alias": "a",
    "bitmaps": [{"name": "b", "alias": "c"}],
}

PARAMETERS = [
    QPARAMS,
    "info migrate_parameters",
    params(compress_level=10),
    params(compress_threads=0),
    params(decompress_threads=0),
    params(throttle_trigger_threshold=0),
    params(throttle_trigger_threshold=101),
    params(cpu_throttle_initial=0),
    params(cpu_throttle_initial=100),
    params(cpu_throttle_increment=0),
    params(cpu_throttle_increment=100),
    params(downtime_limit=2000001),
    params(downtime_limit=-1),
    params(downtime_limit=2000000),
    params(max_bandwidth=18446744073709551615),
    params(max_bandwidth=-1),
    params(multifd_channels=0),
    params(multifd_zlib_level=10),
    params(multifd_zstd_level=21),
    params(multifd_zlib_level=4, multifd_zstd_level=5),
    params(xbzrle_cache_size=4095),
    params(xbzrle_cache_size=6000),
    params(xbzrle_cache_size=4096),
    params(max_cpu_throttle=100),
    params(max_cpu_throttle=19),
    params(max_cpu_throttle=30),
    params(cpu_throttle_initial=40),
    params(cpu_throttle_initial=40, max_cpu_throttle=50),
    params(announce_initial=100001),
    params(announce_max=100001),
    params(announce_rounds=1001),
    params(announce_step=0),
    params(announce_step=10001),
    params(throttle_trigger_threshold=0, downtime_limit=2000001),
    params(announce_step=0, compress_level=10),
    QPARAMS,
    "info migrate_parameters",
    # block-bitmap-mapping: shape checks of QEMU's alias map
    params(block_bitmap_mapping=[]),
    QPARAMS,
    "info migrate_parameters",
    params(block_bitmap_mapping=[{**_BITMAP, "alias": "1a"}]),
    params(block_bitmap_mapping=[{**_BITMAP, "alias": "a b"}]),
    params(block_bitmap_mapping=[{**_BITMAP, "alias": ""}]),
    params(block_bitmap_mapping=[{**_BITMAP, "alias": "a" * 256}]),
    params(block_bitmap_mapping=[_BITMAP, {**_BITMAP, "alias": "b"}]),
    params(block_bitmap_mapping=[_BITMAP, {**_BITMAP, "node-name": "m"}]),
    params(
        block_bitmap_mapping=[
            {**_BITMAP, "bitmaps": [{"name": "b", "alias": "x"}, {"name": "b", "alias": "y"}]}
        ]
    ),
    params(
        block_bitmap_mapping=[
            {**_BITMAP, "bitmaps": [{"name": "b", "alias": "x"}, {"name": "c", "alias": "x"}]}
        ]
    ),
    params(block_bitmap_mapping=[{**_BITMAP, "bitmaps": [{"name": "b", "alias": "x y"}]}]),
    params(block_bitmap_mapping=[{"node-name": "", "alias": "a", "bitmaps": []}]),
    params(
        block_bitmap_mapping=[
            {
                "node-name": "n",
                "alias": "a-b.c_d",
                "bitmaps": [{"name": "b", "alias": "x", "transform": {"persistent": True}}],
            },
            {"node-name": "m", "alias": "e", "bitmaps": []},
        ]
    ),
    QPARAMS,
    "info migrate_parameters",
    # tls: null means "", strings are kept
    params(tls_creds="abc", tls_hostname="h", tls_authz="z"),
    QPARAMS,
    "info migrate_parameters",
    params(tls_creds=None, tls_hostname=None, tls_authz=None),
    QPARAMS,
    # a capability that makes later parameter changes fail
    caps(("multifd", ON), ("zero-copy-send", ON)),
    params(tls_creds="x"),
    params(multifd_compression="zlib"),
    params(tls_hostname="x"),
    params(multifd_compression="none"),
    caps(("zero-copy-send", OFF), ("multifd", OFF)),
    params(multifd_compression="zstd"),
    caps(("multifd", ON), ("zero-copy-send", ON)),
    params(multifd_compression="none"),
    params(tls_creds="t"),
    caps(("multifd", ON), ("zero-copy-send", ON)),
    params(tls_creds=""),
    caps(("multifd", ON), ("zero-copy-send", ON)),
    QPARAMS,
    # the dirty-limit parameters (8.1+)
    params(vcpu_dirty_limit=0),
    params(vcpu_dirty_limit=1),
    params(vcpu_dirty_limit=-1),
    params(vcpu_dirty_limit=100),
    params(x_vcpu_dirty_limit_period=0),
    params(x_vcpu_dirty_limit_period=1001),
    params(x_vcpu_dirty_limit_period=500),
    params(x_vcpu_dirty_limit_period=1000, vcpu_dirty_limit=0),
    params(x_vcpu_dirty_limit_period=0, throttle_trigger_threshold=0),
    QPARAMS,
    "info migrate_parameters",
]

HMP = [
    "migrate_set_capability",
    "migrate_set_capability xbzrle",
    "migrate_set_capability xbzrle maybe",
    "migrate_set_capability xbzrle On",
    "migrate_set_capability foo on",
    "migrate_set_capability xbzrle on",
    "migrate_set_capability xbzrle off extra",
    "migrate_set_capability dirty-limit on",
    "migrate_set_capability zero-copy-send on",
    "migrate_set_capability xbzrle yes",
    "migrate_set_capability xbzrle 1",
    'migrate_set_capability "xbzrle" off',
    "migrate_set_capability xbzrle off",
    "help migrate_set_capability",
    "help migrate_set_parameter",
    "help info migrate",
    "help info migrate_parameters",
    "help info migrate_capabilities",
    "migrate_set_parameter",
    "migrate_set_parameter downtime-limit",
    "migrate_set_parameter foo 1",
    "migrate_set_parameter downtime-limit 1k",
    "migrate_set_parameter downtime-limit 1.5k",
    "migrate_set_parameter downtime-limit 1.k",
    "migrate_set_parameter downtime-limit 1.5",
    "migrate_set_parameter downtime-limit 1e3",
    "migrate_set_parameter downtime-limit abc",
    "migrate_set_parameter downtime-limit -1",
    "migrate_set_parameter downtime-limit 0x10",
    "migrate_set_parameter downtime-limit 0x1k",
    "migrate_set_parameter downtime-limit 16M",
    "migrate_set_parameter downtime-limit 16E",
    "migrate_set_parameter downtime-limit 99999999999999999999",
    "migrate_set_parameter downtime-limit 99999999999999999999k",
    "migrate_set_parameter downtime-limit -0",
    "migrate_set_parameter downtime-limit -1k",
    "migrate_set_parameter downtime-limit .5k",
    "migrate_set_parameter downtime-limit -.5k",
    "migrate_set_parameter downtime-limit 1.0000001k",
    "migrate_set_parameter downtime-limit 0.0000000000000000000001k",
    "migrate_set_parameter max-bandwidth .5",
    "migrate_set_parameter max-bandwidth 1.99999999999999999999b",
    "migrate_set_parameter xbzrle-cache-size -1",
    "migrate_set_parameter max-bandwidth 10",
    "migrate_set_parameter max-bandwidth 10k",
    "migrate_set_parameter max-bandwidth 10b",
    "migrate_set_parameter max-bandwidth 0.5",
    "migrate_set_parameter max-bandwidth abc",
    "migrate_set_parameter max-bandwidth 9E",
    "migrate_set_parameter max-bandwidth 8E",
    "migrate_set_parameter max-bandwidth 7E",
    "migrate_set_parameter max-bandwidth -1",
    "migrate_set_parameter cpu-throttle-initial 300",
    "migrate_set_parameter cpu-throttle-initial abc",
    "migrate_set_parameter cpu-throttle-initial -1",
    "migrate_set_parameter cpu-throttle-initial 0x20",
    "migrate_set_parameter cpu-throttle-initial 010",
    "migrate_set_parameter cpu-throttle-initial 1k",
    "migrate_set_parameter cpu-throttle-initial 0",
    "migrate_set_parameter cpu-throttle-tailslow maybe",
    "migrate_set_parameter cpu-throttle-tailslow on",
    "migrate_set_parameter cpu-throttle-tailslow yes",
    "migrate_set_parameter cpu-throttle-tailslow true",
    "migrate_set_parameter cpu-throttle-tailslow 1",
    "migrate_set_parameter tls-creds foo",
    'migrate_set_parameter tls-creds ""',
    'migrate_set_parameter tls-hostname "a b"',
    "migrate_set_parameter block-bitmap-mapping x",
    "migrate_set_parameter x-checkpoint-delay 5000000000",
    "migrate_set_parameter x-checkpoint-delay 1k",
    "migrate_set_parameter multifd-compression zstd",
    "migrate_set_parameter multifd-compression bogus",
    "migrate_set_parameter multifd-compression none",
    "migrate_set_parameter xbzrle-cache-size 1M",
    "migrate_set_parameter xbzrle-cache-size 1000",
    "migrate_set_parameter xbzrle-cache-size 9E",
    "migrate_set_parameter xbzrle-cache-size abc",
    "migrate_set_parameter max-postcopy-bandwidth 1k",
    "migrate_set_parameter announce-initial 1k",
    "migrate_set_parameter announce-rounds 7",
    "migrate_set_parameter block-incremental on",
    "migrate_set_parameter compress-wait-thread off",
    "migrate_set_parameter compress-level 9",
    "migrate_set_parameter x-vcpu-dirty-limit-period 1",
    "migrate_set_parameter vcpu-dirty-limit 1",
    "migrate_set_parameter multifd-zlib-level 4",
    "migrate_set_parameter downtime-limit 1 2",
    "migrate_set_parameter vcpu-dirty-limit 0",
    "migrate_set_parameter vcpu-dirty-limit -1",
    "migrate_set_parameter vcpu-dirty-limit 2k",
    "migrate_set_parameter vcpu-dirty-limit 100",
    "migrate_set_parameter x-vcpu-dirty-limit-period 0",
    "migrate_set_parameter x-vcpu-dirty-limit-period 1001",
    "migrate_set_parameter x-vcpu-dirty-limit-period 500",
    "migrate_set_capability auto-converge on",
    "migrate_set_capability dirty-limit on",
    "migrate_set_capability auto-converge off",
    "migrate_set_capability dirty-limit on",
    "info migrate_parameters",
    "info migrate_capabilities",
    "info migrate x",
    "info migrate_capabilities x",
    "info migrate_parameters x",
    QPARAMS,
]

SESSIONS = {"capabilities": CAPABILITIES, "parameters": PARAMETERS, "hmp": HMP}

#: ``-global`` option lists (each element one ``-global`` argument).
GLOBALS: list[list[str]] = [
    ["migration.foo=1"],
    ["migration.x-vcpu-dirty-limit-period=5"],
    ["migration.x-dirty-limit=on"],
    ["migration.vcpu-dirty-limit=0"],
    ["migration.vcpu-dirty-limit=7"],
    ["migration.x-vcpu-dirty-limit-period=0"],
    ["migration.x-vcpu-dirty-limit-period=1001"],
    ["migration.x-dirty-limit=on", "migration.x-auto-converge=on"],
    ["migration.x-downtime-limit=abc"],
    ["migration.x-downtime-limit=3000000"],
    ["migration.x-downtime-limit=0x10"],
    ["migration.x-downtime-limit=010"],
    ["migration.x-downtime-limit=-1"],
    ["migration.announce-step=.5k"],
    ["migration.announce-step=-1"],
    ["migration.announce-step=16E"],
    ["migration.x-max-bandwidth=abc"],
    ["migration.x-max-bandwidth=1k"],
    ["migration.announce-step=1.5k"],
    ["migration.announce-step=0x1k"],
    ["migration.announce-step=0x1B"],
    ["migration.announce-step=0"],
    ["migration.x-auto-converge=maybe"],
    ["migration.x-auto-converge=y"],
    ["migration.x-auto-converge=Y"],
    ["migration.x-postcopy-preempt=on"],
    ["migration.x-postcopy-preempt=on", "migration.x-downtime-limit=3000000"],
    ["migration.x-downtime-limit=3000000", "migration.x-cpu-throttle-initial=0"],
    ["migration.foo=1", "migration.x-downtime-limit=abc"],
    ["migration.max-cpu-throttle=300"],
    ["migration.max-cpu-throttle=5"],
    ["migration.xbzrle-cache-size=5"],
    ["migration.multifd-compression=bogus"],
    ["migration.multifd-compression=zstd"],
    ["migration.multifd-zlib-level=10"],
    ["migration.multifd-zlib-level=9", "migration.multifd-zstd-level=20"],
    ["migration.tls-creds=abc"],
    ["migration.x-zero-copy-send=on"],
    ["migration.x-multifd=on", "migration.x-zero-copy-send=on"],
    ["migration.x-checkpoint-delay=-1"],
    ["migration.clear-bitmap-shift=3"],
    ["migration.x-clear-bitmap-shift=20", "migration.store-global-state=off"],
    ["migration.send-configuration=off", "migration.decompress-error-check=no"],
    ["migration.x-events=on", "migration.x-cpu-throttle-initial=50"],
    ["driver=migration,property=x-downtime-limit,value=500"],
    ["migration.x-xbzrle"],
    ["migration=x"],
]
