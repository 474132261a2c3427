"""The guest programs and the multiboot image as bytes (no KVM needed)."""

from __future__ import annotations

import itertools
import struct
from pathlib import Path

import pytest

from qmpdl.kvm import guest


def test_code_page_slots() -> None:
    page = guest.code_page()
    assert len(page) == 4096
    for program in guest.Program:
        start = program.value - guest.CODE_BASE
        assert start % 64 == 0
        assert page[start : start + len(program.code)] == program.code
    # Only the one load/store instruction differs between writer and reader.
    pairs = zip(guest.WRITE_CODE, guest.READ_CODE, strict=True)
    diff = [i for i, (w, r) in enumerate(pairs) if w != r]
    assert diff == [5]
    assert guest.WRITE_CODE[5:7] == b"\xfe\x06"  # inc byte [esi]
    assert guest.READ_CODE[5:7] == b"\x8a\x06"  # mov al, [esi]


def test_layout_fits_below_the_working_sets() -> None:
    assert guest.block_address(0) >= guest.CODE_BASE + 4096
    assert guest.block_address(guest.MAX_VCPUS - 1) + 4096 == guest.WS_BASE
    with pytest.raises(ValueError):
        guest.block_address(guest.MAX_VCPUS)


def test_split_working_sets() -> None:
    sets = guest.split_working_sets(64 << 20, 3)
    assert sets[0][0] == guest.WS_BASE
    for (base, size), (next_base, _) in itertools.pairwise(sets):
        assert base + size == next_base and size % 4096 == 0
    assert sets[-1][0] + sets[-1][1] <= 64 << 20


def test_params_validation() -> None:
    good = guest.GuestParams(guest.Program.WRITE, guest.WS_BASE, 4096)
    good.validate(2 << 20)
    assert struct.unpack("<6I", good.block()) == (
        guest.WS_BASE, guest.WS_BASE + 4096, guest.DEFAULT_DELAY, 0, 0, 0,
    )  # fmt: skip
    for bad in (
        guest.GuestParams(guest.Program.WRITE, guest.WS_BASE, 0),
        guest.GuestParams(guest.Program.WRITE, guest.WS_BASE - 4096, 8192),
        guest.GuestParams(guest.Program.READ, guest.WS_BASE + 1, 4096),
        guest.GuestParams(guest.Program.WRITE, guest.WS_BASE, 4 << 20),
        guest.GuestParams(guest.Program.WRITE, guest.WS_BASE, 4096, delay=-1),
    ):
        with pytest.raises(ValueError):
            bad.validate(2 << 20)
    guest.GuestParams(guest.Program.IDLE).validate(2 << 20)


def test_multiboot_image(tmp_path: Path) -> None:
    image = guest.multiboot_image()
    magic, flags, checksum, header, load, load_end, bss_end, entry = struct.unpack_from(
        "<8I", image
    )
    assert (magic, flags) == (0x1BADB002, 0x10000)
    assert (magic + flags + checksum) & 0xFFFFFFFF == 0
    assert header == load == guest.MULTIBOOT_LOAD
    assert load_end == load + len(image) and bss_end == 0
    # The entry stub sets EBX to the block and jumps to the writer, byte-identical to ours.
    stub = image[entry - load :]
    assert stub[6] == 0xBB
    block = struct.unpack_from("<I", stub, 7)[0]
    assert image[0x40 : 0x40 + len(guest.WRITE_CODE)] == guest.WRITE_CODE
    base, end, delay, passes, port, limit = struct.unpack_from("<6I", image, block - load)
    assert (base, end) == guest.MULTIBOOT_WS
    assert (delay, passes, port, limit) == (guest.DEFAULT_DELAY, 0, guest.COM1, 0)
    # QEMU must not take it for a Linux bzImage ("HdrS" at 0x202).
    assert image[0x202:0x206] != b"HdrS"
    path = guest.write_multiboot_image(tmp_path / "writer.img", delay=9)
    assert path.read_bytes() == guest.multiboot_image(delay=9)


def test_serial_passes() -> None:
    assert guest.serial_passes(b"SeaBIOS (version 1.16.2)\r\nBooting from ROM..\r\n###") == 3


def test_delay_for_rate() -> None:
    assert guest.delay_for_rate(450) == guest.MIN_SAFE_DELAY  # capped: faster overflows
    assert guest.delay_for_rate(430) == guest.DEFAULT_DELAY
    delays = [guest.delay_for_rate(r) for r in (300, 200, 100, 10)]
    assert delays == sorted(delays) and len(set(delays)) == 4
    assert guest.delay_for_rate(0) == guest.MAX_DELAY
