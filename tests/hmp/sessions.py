"""What the golden file records: command lines run against real QEMU 7.2, in sessions.

A step is one of

``{"hmp": LINE}``          run LINE through ``human-monitor-command``.  Optional keys:
                           ``cpu_index`` (passed along), ``respond`` (the reply qmpdl's
                           side gets for a command that changes state, default
                           ``{"return": {}}``; queries are answered by the live QEMU),
                           ``subset`` (the output lists commands: qmpdl prints only the
                           ones it serves, so compare with the matching part of QEMU's);
``{"qmp": REQUEST}``       a plain QMP command, to record state; ``stable`` marks replies
                           that must be the same on every run;
``{"sleep": SECONDS}``     let a limit period pass.
``{"wait": STATUS}``       poll ``query-dirty-rate`` until its status is STATUS: the end
                           of a measurement is waited for, never slept for (a busy host
                           may take longer than its period), and so is its start (QEMU's
                           thread marks it ``measuring`` when it gets to run, which on a
                           busy host can be after the next command).

A session on a machine without a CPU says ``"cpu": False``: qmpdl's monitor then gets no
guest memory; otherwise ``x``/``xp`` read QEMU's own (see :mod:`tests.hmp.live`).
"""

from __future__ import annotations

from typing import Any

#: Machine arguments: no vCPU at all / two idle vCPUs that run SeaBIOS.
NONE_ARGS = ["-accel", "kvm,dirty-ring-size=4096", "-machine", "none"]
PC_ARGS = ["-accel", "kvm,dirty-ring-size=4096", "-machine", "pc", "-smp", "2", "-m", "128"]
#: The same machine paused before its first instruction: RAM is zero, the BIOS is there.
PAUSED_ARGS = [*PC_ARGS, "-S"]

#: Some bytes of the SeaBIOS image at the top of the first 4 GiB (QEMU 7.2's), by content.
BIOS_CODE = 0xFFFD48D8  # code: units with the top bit set
BIOS_QUOTE = 0xFFFF0768  # "...doesn't match.\n": ' and \n
BIOS_CRLF = 0xFFFF2200  # AML with \r\n
BIOS_BACKSLASH = 0xFFFD28B0  # 0x5c
BIOS_DEL = 0xFFFD2A58  # 0x7f and bytes above it
BIOS_BANNER = 0xFFFF0410  # "SeaBIOS (version %s)\n" between NULs

#: Seconds to let SeaBIOS finish before the dirty ring is used (see shared/anchors).
PC_BOOT_WAIT = 6.0

Step = dict[str, Any]


def _hmp(line: str, **extra: Any) -> Step:
    return {"hmp": line, **extra}


def _qmp(execute: str, *, stable: bool = True) -> Step:
    return {"qmp": {"execute": execute}, "stable": stable}


def _error(desc: str) -> dict[str, Any]:
    return {"error": {"class": "GenericError", "desc": desc}}


def _by_version(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """A ``respond`` whose text changed after 7.2 (``new``: QEMU 10.0's)."""
    return {"by_version": {"7.2": old, "10.0": new}}


_PARSING = [
    _hmp(""),
    _hmp("   "),
    _hmp("foo"),
    _hmp("  foo bar"),
    _hmp("foo\u0000"),
    _hmp("info foo"),
    _hmp("info  foo  bar"),
    _hmp("info/x"),
    _hmp("stop x"),
    _hmp("  stop x"),
    _hmp("stop/x"),
    _hmp("stop x\u0000y"),
    _hmp("c x"),
    _hmp("info version extra"),
    _hmp("  info   version  x"),
    _hmp("set_vcpu_dirty_limit"),
    _hmp("set_vcpu_dirty_limit abc"),
    _hmp("set_vcpu_dirty_limit 100x"),
    _hmp("set_vcpu_dirty_limit 1 2 3"),
    _hmp("set_vcpu_dirty_limit (1"),
    _hmp("set_vcpu_dirty_limit 1/0"),
    _hmp("set_vcpu_dirty_limit 1%0"),
    _hmp("set_vcpu_dirty_limit 2 * (3 / (1 - 1))"),
    _hmp("set_vcpu_dirty_limit 'a"),
    _hmp("set_vcpu_dirty_limit '"),
    _hmp("set_vcpu_dirty_limit 'é'"),
    _hmp("set_vcpu_dirty_limit '\u0000'"),
    _hmp("set_vcpu_dirty_limit 99999999999999999999"),
    _hmp("set_vcpu_dirty_limit $eax"),
    _hmp("set_vcpu_dirty_limit $"),
    _hmp("set_vcpu_dirty_limit -"),
    _hmp("set_vcpu_dirty_limit 1+"),
    _hmp("set_vcpu_dirty_limit é"),
    _hmp("set_vcpu_dirty_limit \u0000"),
    _hmp("cancel_vcpu_dirty_limit x"),
    _hmp("calc_dirty_rate"),
    _hmp("calc_dirty_rate 0"),
    _hmp("calc_dirty_rate 1 -1"),
    _hmp("calc_dirty_rate -r -b 1"),
    _hmp("calc_dirty_rate -b -r 1"),
    _hmp("calc_dirty_rate -x 1"),
    _hmp("calc_dirty_rate -1"),
    _hmp("calc_dirty_rate -"),
    _hmp("calc_dirty_rate -é 1"),
    _hmp("calc_dirty_rate 1 -r"),
    _hmp("calc_dirty_rate -rb 1"),
]

_HELP = [
    _hmp("help", subset=True),
    _hmp("?", subset=True),
    _hmp("help   ", subset=True),
    _hmp("info", subset=True),
    _hmp("info   ", subset=True),
    _hmp("help info", subset=True),
    _hmp("help stop"),
    _hmp("help stop extra"),
    _hmp("help s"),
    _hmp("help ?"),
    _hmp("? stop"),
    _hmp("help c"),
    _hmp("help cont|c"),
    _hmp("help set_vcpu_dirty_limit"),
    _hmp("help cancel_vcpu_dirty_limit"),
    _hmp("help calc_dirty_rate"),
    _hmp("help info vcpu_dirty_limit"),
    _hmp("help info dirty_rate extra"),
    _hmp("help  info   status"),
    _hmp("help info cpus"),
    _hmp("help info version"),
    _hmp("help info kvm"),
    _hmp("help info foo"),
    _hmp("help info info"),
    _hmp("help foo bar"),
    _hmp('help "foo bar"'),
    _hmp('help "sto\\"p"'),
    _hmp('help "foo'),
    _hmp('help "a\\x"'),
    _hmp("help " + " ".join(["x"] * 17)),
]

_INFO = [
    _hmp("info version"),
    _hmp("info kvm"),
    _hmp("info status"),
    _hmp("info cpus"),
    _hmp("info vcpu_dirty_limit"),
    _hmp("info dirty_rate"),
]

_DIRTY_LIMIT = [
    _hmp("cancel_vcpu_dirty_limit"),
    _hmp("cancel_vcpu_dirty_limit 99", respond=_error("incorrect cpu index specified")),
    _hmp("cancel_vcpu_dirty_limit -2", respond=_error("incorrect cpu index specified")),
    _hmp("set_vcpu_dirty_limit 100 -1"),
    _qmp("query-vcpu-dirty-limit"),
    _hmp("info vcpu_dirty_limit"),
    _hmp("set_vcpu_dirty_limit -5"),
    _qmp("query-vcpu-dirty-limit"),
    _hmp("info vcpu_dirty_limit"),
    _hmp("set_vcpu_dirty_limit 08", respond=_error("incorrect cpu index specified")),
    _hmp("set_vcpu_dirty_limit 0x10 0"),
    _qmp("query-vcpu-dirty-limit"),
    _hmp("set_vcpu_dirty_limit 'a' - 2 * 3"),
    _qmp("query-vcpu-dirty-limit"),
    _hmp("set_vcpu_dirty_limit ~0 & 0xff | 0x100 ^ 1"),
    _qmp("query-vcpu-dirty-limit"),
    _hmp("set_vcpu_dirty_limit -7 / 2 + -7 % 2 + 100"),
    _qmp("query-vcpu-dirty-limit"),
    _hmp("set_vcpu_dirty_limit 9223372036854775808"),
    _qmp("query-vcpu-dirty-limit"),
    _hmp("info vcpu_dirty_limit"),
    _hmp("set_vcpu_dirty_limit 18446744073709551615"),
    _hmp("info vcpu_dirty_limit"),
    _hmp("set_vcpu_dirty_limit '''"),
    _hmp("set_vcpu_dirty_limit ( 2 ) "),
    _hmp("set_vcpu_dirty_limit \t3\t"),
    _hmp("set_vcpu_dirty_limit 010 + 0X1f"),
    _qmp("query-vcpu-dirty-limit"),
    _hmp("set_vcpu_dirty_limit 100 1", respond=_error("incorrect cpu index specified")),
    _hmp("set_vcpu_dirty_limit 5 (-2)", respond=_error("incorrect cpu index specified")),
    _hmp("set_vcpu_dirty_limit 5 -2"),
    _qmp("query-vcpu-dirty-limit"),
    _hmp("set_vcpu_dirty_limit 0"),
    _hmp("info vcpu_dirty_limit"),
    _hmp("set_vcpu_dirty_limit 7"),
    _hmp("cancel_vcpu_dirty_limit -1"),
    _hmp("info vcpu_dirty_limit"),
]

_DIRTY_RATE_NONE = [
    _hmp(
        "calc_dirty_rate 61",
        respond=_by_version(
            _error("calc-time is out of range[1, 60]."),
            _error("Calculation time is out of range [50ms, 60000ms]."),
        ),
    ),
    _hmp(
        "calc_dirty_rate 1 5",
        respond=_error("sample-pages is out of range[128, 16384]."),
    ),
    _hmp(
        "calc_dirty_rate -r 1 256",
        respond=_by_version(
            _error("either sample-pages or dirty-ring can be specified."),
            _error("sample-pages is used only in page-sampling mode"),
        ),
    ),
    _hmp(
        "calc_dirty_rate -b 1",
        respond=_error("mode dirty-bitmap is not enabled, use other method instead."),
    ),
    _hmp("calc_dirty_rate 1 (-1)"),
    {"wait": "measured"},
    _hmp("info dirty_rate"),
    _qmp("query-dirty-rate", stable=False),
    _hmp("calc_dirty_rate 1 128"),
    {"wait": "measured"},
    _hmp("info dirty_rate"),
]

_RUN_STATE = [
    _hmp("s"),
    _hmp("info status"),
    _hmp("stop"),
    _hmp("c"),
    _hmp("info status"),
    _hmp("stop"),
    _hmp("cont"),
    _hmp("cont"),
    _hmp("info status"),
]

_PC = [
    _hmp("info cpus"),
    _hmp("info cpus", cpu_index=1),
    _hmp("info cpus", cpu_index=0),
    {
        "qmp": {
            "execute": "human-monitor-command",
            "arguments": {"command-line": "info cpus", "cpu-index": 2},
        },
        "stable": True,
    },
    _hmp("info status"),
    _hmp("calc_dirty_rate -r 1"),
    _hmp("info dirty_rate"),
    {"wait": "measured"},
    _hmp("info dirty_rate"),
    # long enough for the next two steps to find it still measuring, on any host
    _hmp("calc_dirty_rate 5 256"),
    {"wait": "measuring"},
    _hmp("info dirty_rate"),
    _hmp("calc_dirty_rate 1", respond=_error("the dirty rate is already being measured.")),
    {"wait": "measured"},
    _hmp("info dirty_rate"),
    _hmp(
        "calc_dirty_rate -b 1",
        respond=_error("mode dirty-bitmap is not enabled, use other method instead."),
    ),
    _hmp("set_vcpu_dirty_limit 200 1"),
    _hmp("info vcpu_dirty_limit"),
    {"sleep": 1.3},
    _hmp("info vcpu_dirty_limit"),
    _hmp("set_vcpu_dirty_limit 300"),
    _hmp("info vcpu_dirty_limit"),
    _hmp("cancel_vcpu_dirty_limit 0"),
    _hmp("info vcpu_dirty_limit"),
    _hmp("cancel_vcpu_dirty_limit 5", respond=_error("incorrect cpu index specified")),
    _hmp("set_vcpu_dirty_limit 100 2", respond=_error("incorrect cpu index specified")),
    _hmp("cancel_vcpu_dirty_limit"),
    _hmp("info vcpu_dirty_limit"),
    _hmp("stop"),
    _hmp("info status"),
    _hmp("info cpus", cpu_index=1),
    _hmp("cont"),
    _hmp("q"),
]

_NO_CPU_MEMORY = [
    _hmp("xp 0"),
    _hmp("xp /2xg 0x100000"),
    _hmp("x 0"),
    _hmp("x /0x 0"),
    _hmp("xp /0x 0"),
    _hmp("xp /3i 0"),
    _hmp("xp /c 0"),
    _hmp("xp 0"),
    _hmp("xp /z 0"),
    _hmp("x"),
]


def _formats(addr: int, letter: str) -> list[Step]:
    """Every unit size of one format over the same 24 bytes."""
    return [
        _hmp(f"xp /24{letter}b {addr:#x}"),
        _hmp(f"xp /12{letter}h {addr:#x}"),
        _hmp(f"xp /6{letter}w {addr:#x}"),
        _hmp(f"xp /3{letter}g {addr:#x}"),
    ]


_MEMORY_LAYOUT = [
    _hmp("help x"),
    _hmp("help xp"),
    _hmp("xp 0"),
    _hmp("x 0"),
    _hmp("xp /4x 0x100000"),
    _hmp("xp /20xb 0"),
    _hmp("xp /20xh 0"),
    _hmp("xp /20xw 0"),
    _hmp("xp /5xg 0"),
    _hmp("xp /5xL 0"),
    _hmp("x /9xg 0x100"),
    *_formats(BIOS_CODE, "x"),
    *_formats(BIOS_CODE, "d"),
    *_formats(BIOS_CODE, "u"),
    *_formats(BIOS_CODE, "o"),
    _hmp(f"xp /3og {BIOS_BANNER:#x}"),
    _hmp(f"xp /20ob {BIOS_BANNER:#x}"),
    _hmp("xp /20ow 0"),
    _hmp("xp /20dg 0"),
    _hmp(f"xp /64c {BIOS_QUOTE:#x}"),
    _hmp(f"xp /32cb {BIOS_CRLF:#x}"),
    _hmp(f"xp /16cb {BIOS_BACKSLASH:#x}"),
    _hmp(f"xp /16cb {BIOS_DEL:#x}"),
    _hmp(f"xp /2cw {BIOS_BANNER:#x}"),
    _hmp(f"xp /3cg {BIOS_BANNER:#x}"),
    _hmp(f"x /5ch {BIOS_BANNER:#x}"),
    _hmp("xp /16xb 0xfffffff0"),
    _hmp("x /16xb 0xfffffff0"),
    _hmp("xp /3cg 0xfffffff0"),
    _hmp("xp /8xb 0xe0000"),
    _hmp("xp /600xg 0xfffd0000"),
]

_MEMORY_ENDS = [
    _hmp("xp /4xg 0x7fffff0"),
    _hmp("xp /4xg 0x7fffff8"),
    _hmp("x /4xg 0x7fffff8"),
    _hmp("xp /2xg 0x8000000"),
    _hmp("x /xb 0x8000000"),
    _hmp("xp /xb 0xfec00000"),
    _hmp("xp /4xw 0xfffbfff8"),
    _hmp("xp /xb 0x100000000"),
    _hmp("x /xb 0x100000000"),
    _hmp("xp -16"),
    _hmp("xp /2xg 0xfffffffffffffff8"),
    _hmp("x /2xg -8"),
]

_MEMORY_PARSING = [
    _hmp("xp"),
    _hmp("x"),
    _hmp("xp /"),
    _hmp("xp   /"),
    _hmp("xp / 0"),
    _hmp("xp/ 0"),
    _hmp("xp/x 0"),
    _hmp("x/2xb 0"),
    _hmp("xp /2xb\t0"),
    _hmp("xp /2xb0"),
    _hmp("xp /2xb 0x"),
    _hmp("xp 0 1"),
    _hmp("xp ( 0"),
    _hmp("xp /x 1/0"),
    _hmp("xp /z 0"),
    _hmp("xp /xz 0"),
    _hmp("xp /x4 0"),
    _hmp("xp /-1x 0"),
    _hmp("xp /X 0"),
    _hmp("xp /B 0"),
    _hmp("xp /é 0"),
    _hmp("xp /x\u0000 0"),
    _hmp("xp /x/ 0"),
    _hmp("xp /x, 0"),
    _hmp("xp /xwb 0"),
    _hmp("xp /bxw 0"),
    _hmp("xp /xdu 0"),
    _hmp("xp /008xb 0"),
    _hmp("xp /0x 0"),
    _hmp("xp /4294967297xb 0"),
    _hmp("xp /4294967298xb 0"),
    _hmp("xp /2147483648xb 0"),
    _hmp("xp /2147483649xb 0"),
    _hmp("xp /1073741825xw 0"),
    _hmp("xp /536870913xg 0"),
    _hmp("xp /9999999999999999999999xb 0"),
    _hmp("x /2xw 0x100", cpu_index=1),
    _hmp("xp /2xw 0x100", cpu_index=1),
]

_MEMORY_DEFAULTS = [
    _hmp("xp /xw 0"),
    _hmp("xp /2xb 0"),
    _hmp("xp 0"),
    _hmp("xp /3 0"),
    _hmp("xp /c 0x100"),
    _hmp("xp 0x100"),
    _hmp("x /h 0"),
    _hmp("xp /4 0"),
    _hmp("xp /d 0"),
    _hmp("xp /2g 0"),
    _hmp("xp /o 0"),
    _hmp("xp /u 0"),
    _hmp("xp /x 0"),
    # a refused line still remembers the /fmt it got through
    _hmp("xp /2cb $bogus"),
    _hmp("xp 0"),
    _hmp("xp /ow 0 1"),
    _hmp("xp 0"),
    _hmp("xp /dz 0"),
    _hmp("xp 0"),
    # "i" is remembered as the format, leaves the size alone, and ignores size letters
    _hmp("xp /xh 0"),
    _hmp("xp /ib $bogus"),
    _hmp("xp /g $bogus"),
    _hmp("xp /x 0"),
    _hmp("xp /ig $bogus"),
    _hmp("xp /u 0"),
    _hmp("xp /xw 0"),
]

SESSIONS: list[dict[str, Any]] = [
    {
        "name": "machine-none",
        "args": NONE_ARGS,
        "boot_wait": 0.0,
        "cpu": False,
        "steps": [
            *_PARSING,
            *_HELP,
            *_INFO,
            *_DIRTY_LIMIT,
            *_DIRTY_RATE_NONE,
            *_RUN_STATE,
            _hmp("quit"),
        ],
    },
    {"name": "pc-smp2", "args": PC_ARGS, "boot_wait": PC_BOOT_WAIT, "steps": _PC},
    {
        "name": "none-memory",
        "args": NONE_ARGS,
        "boot_wait": 0.0,
        "cpu": False,
        "steps": _NO_CPU_MEMORY,
    },
    {
        "name": "pc-paused-memory",
        "args": PAUSED_ARGS,
        "boot_wait": 0.0,
        "steps": [*_MEMORY_LAYOUT, *_MEMORY_ENDS, *_MEMORY_PARSING, *_MEMORY_DEFAULTS],
    },
]
