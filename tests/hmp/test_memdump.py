"""``x`` and ``xp``: the ``/fmt`` argument, the dump layout, and guest memory of both backends.

The texts are QEMU 7.2's (the golden sessions replay them byte for byte); these tests pin
the pieces: the format parser and its remembered defaults, the value formats, the
chunked reads, and the parameter blocks of qmpdl's own guests read through QMP.
"""

from __future__ import annotations

import time
from dataclasses import asdict

import pytest

from qmpdl.hmp import DumpDefaults, MemoryReader, execute
from qmpdl.hmp.dumpfmt import DumpFormat, FormatError, parse_format
from qmpdl.hmp.memdump import dump_lines, format_unit, printc
from qmpdl.kvm import guest
from qmpdl.profile import get_profile
from qmpdl.workload import DEFAULT_WSS
from tests.conftest import need_kvm
from tests.hmp.fakes import FakeQmp
from tests.machine.conftest import Harness, MakeHarness

P72 = get_profile("7.2")


def run(line: str, memory: MemoryReader | None = None, defaults: DumpDefaults | None = None) -> str:
    return execute(line, profile=P72, qmp=FakeQmp(), memory=memory, dump_defaults=defaults)


def ram(content: bytes) -> MemoryReader:
    """Memory holding ``content`` from address 0 and nothing after it."""

    def read(addr: int, size: int) -> bytes:
        return content[addr : addr + size]

    return read


# --- /fmt ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "found", "end"),
    [
        ("", DumpFormat(1, "x", 4), 0),
        ("  0", DumpFormat(1, "x", 4), 2),
        ("/", DumpFormat(1, "x", 4), 1),
        ("/ 0", DumpFormat(1, "x", 4), 1),
        ("/10", DumpFormat(10, "x", 4), 3),
        ("/010xb 0", DumpFormat(10, "x", 1), 6),
        ("/c", DumpFormat(1, "c", 4), 2),
        ("/xdu", DumpFormat(1, "u", 4), 4),
        ("/bhwg", DumpFormat(1, "x", 8), 5),
        ("/L", DumpFormat(1, "x", 8), 2),
        ("/wx\t1", DumpFormat(1, "x", 4), 3),
        ("/i", DumpFormat(1, "i", -1), 2),
        ("/3ih", DumpFormat(3, "i", 2), 4),
        ("/4294967297", DumpFormat(1, "x", 4), 11),
        ("/2147483648", DumpFormat(-(1 << 31), "x", 4), 11),
    ],
)
def test_parse_format(text: str, found: DumpFormat, end: int) -> None:
    assert parse_format(text, 0, DumpDefaults()) == (found, end)


@pytest.mark.parametrize(
    ("text", "char"),
    [
        ("/z", "z"),
        ("/xz", "z"),
        ("/x4", "4"),
        ("/-1", "-"),
        ("/X", "X"),
        ("/B", "B"),
        ("/x/", "/"),
        ("/2xb0", "0"),
        ("/é", "\ufffd"),
        ("/x\x00", "\ufffd"),
        ("/\u0663x", "\ufffd"),  # an Arabic-Indic digit is no digit to C
    ],
)
def test_invalid_char_in_format(text: str, char: str) -> None:
    defaults = DumpDefaults("c", 2)
    with pytest.raises(FormatError) as info:
        parse_format(text, 0, defaults)
    assert info.value.message == f"invalid char in format: '{char}'"
    assert defaults == DumpDefaults("c", 2)


def test_defaults_are_remembered() -> None:
    defaults = DumpDefaults()
    assert asdict(defaults) == {"format": "x", "size": 4}
    parse_format("/2ob", 0, defaults)
    assert defaults == DumpDefaults("o", 1)
    assert parse_format("/3", 0, defaults)[0] == DumpFormat(3, "o", 1)
    assert parse_format("", 0, defaults)[0] == DumpFormat(1, "o", 1)
    parse_format("/d", 0, defaults)
    assert defaults == DumpDefaults("d", 1)


def test_i_keeps_the_remembered_size() -> None:
    defaults = DumpDefaults("x", 2)
    assert parse_format("/ig", 0, defaults)[0] == DumpFormat(1, "i", 8)
    assert defaults == DumpDefaults("i", 2)
    # the format stays "i": a size letter alone is not remembered either
    assert parse_format("/b", 0, defaults)[0] == DumpFormat(1, "i", 1)
    assert parse_format("", 0, defaults)[0] == DumpFormat(1, "i", -1)
    assert parse_format("/x", 0, defaults)[0] == DumpFormat(1, "x", 2)


def test_a_refused_line_still_remembers_its_format() -> None:
    defaults = DumpDefaults()
    out = run("xp /2cb $bogus", ram(bytes(8)), defaults)
    assert out == 'unknown register\r\nTry "help xp" for more information\r\n'
    assert defaults == DumpDefaults("c", 1)
    assert run("xp /ob 0 1", ram(bytes(8)), defaults).startswith("xp: extraneous")
    assert defaults == DumpDefaults("o", 1)


def test_execute_without_defaults_starts_afresh_each_time() -> None:
    memory = ram(bytes(16))
    assert run("xp /2xb 0", memory) == "0000000000000000: 0x00 0x00\r\n"
    assert run("xp 0", memory) == "0000000000000000: 0x00000000\r\n"
    shared = DumpDefaults()
    run("xp /2xb 0", memory, shared)
    assert run("xp 0", memory, shared) == "0000000000000000: 0x00\r\n"


# --- values ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "value", "size", "text"),
    [
        ("x", 0xAB, 1, "0xab"),
        ("x", 0x1, 2, "0x0001"),
        ("x", 0xDEADBEEF, 4, "0xdeadbeef"),
        ("x", 1, 8, "0x0000000000000001"),
        ("o", 0, 1, "  0"),
        ("o", 8, 1, "010"),
        ("o", 0o377, 1, "0377"),
        ("o", 0xFFFF, 2, "0177777"),
        ("o", 1, 4, "         01"),
        ("o", (1 << 64) - 1, 8, "01777777777777777777777"),
        ("d", 255, 1, "255"),
        ("d", 0xFFFF, 2, "65535"),
        ("d", 0xFFFFFFFF, 4, "4294967295"),
        ("d", (1 << 64) - 1, 8, "                  -1"),
        ("d", 1 << 63, 8, "-9223372036854775808"),
        ("u", (1 << 64) - 1, 8, "18446744073709551615"),
        ("u", 7, 2, "    7"),
        ("c", 0x41, 1, "'A'"),
    ],
)
def test_format_unit(fmt: str, value: int, size: int, text: str) -> None:
    assert format_unit(fmt, value, size) == text


@pytest.mark.parametrize(
    ("byte", "text"),
    [
        (0, "'\\x00'"),
        (0x1F, "'\\x1f'"),
        (0x20, "' '"),
        (0x27, "'\\''"),
        (0x5C, "'\\\\'"),
        (0x0A, "'\\n'"),
        (0x0D, "'\\r'"),
        (0x09, "'\\x09'"),
        (0x7E, "'~'"),
        (0x7F, "'\\x7f'"),
        (0xFF, "'\\xff'"),
    ],
)
def test_printc(byte: int, text: str) -> None:
    assert printc(byte) == text


# --- the dump --------------------------------------------------------------------------


def test_line_lengths_follow_the_unit_size() -> None:
    content = bytes(range(64))
    assert dump_lines(ram(content), 9, "x", 1, 0) == [
        "0000000000000000: 0x00 0x01 0x02 0x03 0x04 0x05 0x06 0x07\n",
        "0000000000000008: 0x08\n",
    ]
    assert dump_lines(ram(content), 5, "x", 4, 4) == [
        "0000000000000004: 0x07060504 0x0b0a0908 0x0f0e0d0c 0x13121110\n",
        "0000000000000014: 0x17161514\n",
    ]
    # "c" prints bytes, but the count and the line length still follow the size
    assert dump_lines(ram(b"abcdefghijklmnopqrst"), 5, "c", 4, 0) == [
        "0000000000000000:" + "".join(f" '{c}'" for c in "abcdefghijklmnop") + "\n",
        "0000000000000010: 'q' 'r' 's' 't'\n",
    ]


def test_the_byte_count_is_a_c_int() -> None:
    memory = ram(bytes(64))
    assert dump_lines(memory, 0, "x", 4, 0) == []
    assert dump_lines(memory, -1, "x", 4, 0) == []
    assert dump_lines(memory, (1 << 30) + 1, "x", 4, 0) == ["0000000000000000: 0x00000000\n"]


def test_a_line_not_wholly_readable_ends_the_dump() -> None:
    memory = ram(bytes(20))
    assert dump_lines(memory, 4, "x", 8, 0) == [
        "0000000000000000: 0x0000000000000000 0x0000000000000000\n",
        "0000000000000010: Cannot access memory\n",
    ]
    assert dump_lines(memory, 4, "x", 1, 16) == ["0000000000000010: 0x00 0x00 0x00 0x00\n"]
    assert dump_lines(memory, 1, "x", 1, 1 << 40) == ["0000010000000000: Cannot access memory\n"]


def test_memory_is_read_a_page_at_a_time() -> None:
    asked: list[tuple[int, int]] = []

    def read(addr: int, size: int) -> bytes:
        asked.append((addr, size))
        return bytes(size)

    lines = dump_lines(read, 1250, "x", 4, 0x1234)
    assert asked == [(0x1234, 4096), (0x2234, 904)]
    assert len(lines) == 313 and lines[-1] == "00000000000025b4: 0x00000000 0x00000000\n"


def test_addresses_wrap_at_64_bits() -> None:
    def everything(addr: int, size: int) -> bytes:
        return b"\xff" * size

    assert dump_lines(everything, 3, "x", 8, -8) == [
        "fffffffffffffff8: 0xffffffffffffffff 0xffffffffffffffff\n",
        "0000000000000008: 0xffffffffffffffff\n",
    ]


def test_without_a_cpu() -> None:
    assert run("x 0") == "Can not dump without CPU\r\n"
    assert run("x /0x 0") == "Can not dump without CPU\r\n"
    assert run("xp /i 0") == "Can not dump without CPU\r\n"
    assert run("xp /2xg 0") == "0000000000000000: Cannot access memory\r\n"
    assert run("xp /0x 0") == ""


def test_disassembly_is_not_supported() -> None:
    memory = ram(bytes(64))
    text = "0x00000010: Asm output not supported on this arch\r\n"
    assert run("x /3i 16", memory) == text
    assert run("xp /0i 0x10", memory) == text
    assert (
        run("xp /i -1", memory) == "0xffffffffffffffff: Asm output not supported on this arch\r\n"
    )


# --- through QMP, on qmpdl's machines --------------------------------------------------


def _block_line(vcpu: int, fields: tuple[int, ...], fmt: str = "x") -> str:
    address = guest.block_address(vcpu)
    units = [format_unit(fmt, value, 4) for value in fields]
    return (
        f"{address:016x}: {' '.join(units[:4])}\r\n{address + 16:016x}: {' '.join(units[4:])}\r\n"
    )


def _hmp(h: Harness, line: str) -> str:
    out = h.qmp("human-monitor-command", {"command-line": line})
    assert isinstance(out, str)
    return out


def _working_sets(nr_vcpus: int) -> list[tuple[int, int]]:
    """(base, end) of each vCPU's default working set: 99 MiB after 99 MiB from 1 MiB."""
    return [
        (guest.WS_BASE + i * DEFAULT_WSS, guest.WS_BASE + (i + 1) * DEFAULT_WSS)
        for i in range(nr_vcpus)
    ]


def _passes(h: Harness, vcpu: int) -> int:
    """vCPU ``vcpu``'s pass counter, as ``xp`` shows it."""
    out = _hmp(h, f"xp /uw {guest.block_address(vcpu) + guest.OFF_PASSES:#x}")
    return int(out.split(":")[1])


def test_sim_parameter_blocks(make_machine: MakeHarness) -> None:
    h = make_machine("-accel", "sim", "-S", "-smp", "2", "-m", "256M")
    for vcpu, (base, end) in enumerate(_working_sets(2)):
        fields = (base, end, 0, 0, 0, 0)
        assert _hmp(h, f"xp /6wx {guest.block_address(vcpu):#x}") == _block_line(vcpu, fields)
        assert _hmp(h, f"x /6xw {guest.block_address(vcpu):#x}") == _block_line(vcpu, fields)
    # the register of QEMU's reset state: eax is 0; $pc (0xfffffff0) is past RAM here
    assert _hmp(h, "xp /xw $eax") == "0000000000000000: 0x00000000\r\n"
    assert _hmp(h, "x /4xb $pc") == "00000000fffffff0: Cannot access memory\r\n"
    assert _hmp(h, "xp /2xg 0xffffff8") == "000000000ffffff8: Cannot access memory\r\n"
    assert _hmp(h, "xp /xg 0xffffff8") == "000000000ffffff8: 0x0000000000000000\r\n"


def test_sim_pass_counters_move(make_machine: MakeHarness) -> None:
    h = make_machine("-accel", "sim", "-smp", "1", "--workload", "all:write,wss=4M")
    deadline = time.monotonic() + 120
    while _passes(h, 0) == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _passes(h, 0) > 0


def test_the_format_is_remembered_per_machine(make_machine: MakeHarness) -> None:
    first = make_machine("-accel", "sim", "-S")
    second = make_machine("-accel", "sim", "-S")
    assert _hmp(first, "xp /2ub 0") == "0000000000000000:   0   0\r\n"
    assert _hmp(first, "xp 0") == "0000000000000000:   0\r\n"
    assert _hmp(first, "x 0") == "0000000000000000:   0\r\n"
    assert _hmp(second, "xp 0") == "0000000000000000: 0x00000000\r\n"


def test_kvm_parameter_blocks_and_code(make_machine: MakeHarness) -> None:
    need_kvm()
    h = make_machine("-accel", "kvm", "-S", "-smp", "2", "-m", "256M")
    for vcpu, (base, end) in enumerate(_working_sets(2)):
        fields = (base, end, guest.DEFAULT_DELAY, 0, 0, 0)
        assert _hmp(h, f"xp /6wx {guest.block_address(vcpu):#x}") == _block_line(vcpu, fields)
    # the vCPU waits at the writer's first instruction, $ebx at its parameter block
    code = guest.WRITE_CODE[:8]
    assert _hmp(h, "x /8xb $pc") == (
        f"{guest.CODE_BASE:016x}: {' '.join(f'0x{b:02x}' for b in code)}\r\n"
    )
    base, end = _working_sets(2)[0]
    assert _hmp(h, "xp /2xw $ebx") == f"0000000000010000: 0x{base:08x} 0x{end:08x}\r\n"
    h.qmp("cont")
    deadline = time.monotonic() + 120
    while _passes(h, 1) == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _passes(h, 1) > 0
