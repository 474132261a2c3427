"""``x /fmt addr`` and ``xp /fmt addr``: dump guest memory (QEMU's ``memory_dump``).

The dump covers ``size * count`` bytes (a C ``int``: it wraps at 32 bits, and nothing
is printed when it is not positive), in lines of 8 bytes for 1-byte units and of 16
bytes otherwise.  A line is the address in 16 hex digits and ``:``, then a blank and
each unit, read little-endian:

=====  ==================================================================================
``x``  ``0x`` and the value zero-padded to two digits per byte
``d``  the value right-aligned in 3, 5, 10 or 20 columns; only 8-byte units can be
       negative (smaller ones are zero-extended)
``u``  the same, unsigned
``o``  C's ``%#o`` (a leading ``0`` unless the value is 0) in 3, 6, 11 or 22 columns
``c``  every byte in quotes, printable ASCII as is, ``\\'`` ``\\\\`` ``\\n`` ``\\r``
       escaped, the rest as ``\\xNN``; the line length and byte count still follow
       the size, so ``/2cw`` prints 8 characters
=====  ==================================================================================

A line whose bytes are not all backed by memory ends the dump with
`` Cannot access memory``.  The address goes on by the line length, wrapping at 2**64.

``xp`` reads guest physical memory.  ``x`` reads virtual memory as the current vCPU sees
it: qmpdl's vCPUs run without paging (simulated ones sit in x86's reset state, real
mode; the kvm guest programs run flat 32-bit protected mode), where QEMU translates a
virtual address to the same physical one (A20 is enabled from reset), so both read the
same bytes here.  On a machine without a CPU (``-machine none``) ``x`` prints ``Can not
dump without CPU`` and ``xp`` finds no memory at all.

``i`` (disassembly) is not implemented: QEMU 7.2 disassembles with Capstone, which qmpdl
does not carry.  qmpdl answers as a QEMU whose target has no disassembler does (one line,
``0xADDRESS: Asm output not supported on this arch``); see tests/differential/intended.py.
"""

from __future__ import annotations

from qmpdl.cint import U64_MASK, to_i32, to_i64
from qmpdl.hmp.command import Args, MemoryReader, Monitor

#: Bytes read from the backend at a time; a whole number of lines of any size.
_CHUNK = 4096
#: Columns of a value, per format and unit size (QEMU derives them from the bit count).
_DIGITS = {
    "x": {1: 2, 2: 4, 4: 8, 8: 16},
    "o": {1: 3, 2: 6, 4: 11, 8: 22},
    "d": {1: 3, 2: 5, 4: 10, 8: 20},
    "u": {1: 3, 2: 5, 4: 10, 8: 20},
}
_CHAR_ESCAPES = {ord("'"): "\\'", ord("\\"): "\\\\", ord("\n"): "\\n", ord("\r"): "\\r"}


def printc(value: int) -> str:
    """A byte as QEMU's ``monitor_printc`` quotes it."""
    if value in _CHAR_ESCAPES:
        text = _CHAR_ESCAPES[value]
    elif 32 <= value <= 126:
        text = chr(value)
    else:
        text = f"\\x{value:02x}"
    return f"'{text}'"


def format_unit(fmt: str, value: int, size: int) -> str:
    """One unsigned ``value`` of ``size`` bytes in format ``fmt`` (one of ``xduoc``)."""
    if fmt == "c":
        return printc(value)
    digits = _DIGITS[fmt][size]
    if fmt == "x":
        return f"0x{value:0{digits}x}"
    if fmt == "o":
        return (f"0{value:o}" if value else "0").rjust(digits)
    if fmt == "d":
        return str(to_i64(value)).rjust(digits)
    return str(value).rjust(digits)


def _no_memory(addr: int, size: int) -> bytes:
    """The memory of a machine without a CPU: none."""
    return b""


def dump_lines(read: MemoryReader, count: int, fmt: str, size: int, addr: int) -> list[str]:
    """The lines of a dump of ``count`` units of ``size`` bytes from ``addr`` (``fmt``
    one of ``xduoc``), each ending in a newline."""
    length = to_i32(size * count)
    line_size = 8 if size == 1 else 16
    unit = 1 if fmt == "c" else size
    addr &= U64_MASK
    lines: list[str] = []
    while length > 0:
        # A chunk holds whole lines: only the last line of the dump may be shorter.
        wanted = min(length, _CHUNK)
        data = read(addr, wanted)
        for offset in range(0, wanted, line_size):
            here = (addr + offset) & U64_MASK
            used = min(line_size, wanted - offset)
            if len(data) < offset + used:
                lines.append(f"{here:016x}: Cannot access memory\n")
                return lines
            values = (
                int.from_bytes(data[offset + i : offset + i + unit], "little")
                for i in range(0, used, unit)
            )
            units = "".join(" " + format_unit(fmt, value, unit) for value in values)
            lines.append(f"{here:016x}:{units}\n")
        addr = (addr + wanted) & U64_MASK
        length -= wanted
    return lines


def _memory_dump(mon: Monitor, args: Args, physical: bool) -> None:
    count, fmt, size, addr = args["count"], args["format"], args["size"], args["addr"]
    assert isinstance(count, int) and isinstance(fmt, str)
    assert isinstance(size, int) and isinstance(addr, int)
    if mon.memory is None and (fmt == "i" or not physical):
        mon.print("Can not dump without CPU\n")
        return
    if fmt == "i":
        mon.print(f"0x{addr & U64_MASK:08x}: Asm output not supported on this arch\n")
        return
    read = mon.memory if mon.memory is not None else _no_memory
    for line in dump_lines(read, count, fmt, size, addr):
        mon.print(line)


def hmp_memory_dump(mon: Monitor, args: Args) -> None:
    """``x /fmt addr``: virtual memory of the current vCPU."""
    _memory_dump(mon, args, physical=False)


def hmp_physical_memory_dump(mon: Monitor, args: Args) -> None:
    """``xp /fmt addr``: guest physical memory."""
    _memory_dump(mon, args, physical=True)
