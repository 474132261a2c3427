"""qmpdl's guest programs: tiny 32-bit loops that write, read or idle, and count passes.

Each vCPU runs one program instance, in flat 32-bit protected mode without paging,
over its own working set.  A program finds everything through ``EBX``, the address of
its vCPU's *parameter block* (one 4 KiB page per vCPU, so a vCPU's counter writes dirty
only its own block page).  The machine code was assembled once with GNU ``as --32``
and is kept here as bytes next to its listing; nothing is assembled at run time.

Guest physical memory layout (:class:`~qmpdl.kvm.vm.KvmVm`, slot 0 at GPA 0)::

    0x0000_0000  unused page
    0x0000_1000  code page (read only by convention)
                 +0x00 write   +0x40 read   +0x80 idle
    0x0001_0000  parameter block of vCPU 0; vCPU i at 0x0001_0000 + i * 0x1000
                 (up to MAX_VCPUS = 240 blocks, ending at 1 MiB)
    0x0010_0000  working sets (1 MiB up to the end of RAM), chosen per vCPU

Parameter block (little-endian u32 fields)::

    +0x00 base    first byte of the working set (page aligned)
    +0x04 end     first byte after it (base + pages * 4096)
    +0x08 delay   iterations of the per-page delay loop (read every page)
    +0x0C passes  completed passes, incremented by the guest (wraps at 2**32)
    +0x10 port    I/O port that gets one '#' per pass (0: no output)
    +0x14 limit   halt while passes >= limit (0: run forever); raise it and resume

``write`` (64-byte slot at 0x1000; the same bytes run under QEMU, see
:func:`multiboot_image`)::

    00  8b 33        pass: mov    esi, [ebx]         ; base
    02  8b 7b 04           mov    edi, [ebx+4]       ; end
    05  fe 06        page: inc    byte [esi]         ; dirty this page
    07  8b 4b 08           mov    ecx, [ebx+8]       ; delay (re-read: may change live)
    0a  e3 03              jecxz  next
    0c  49          delay: dec    ecx
    0d  75 fd              jnz    delay
    0f  81 c6 00 10 00 00  next: add esi, 0x1000     ; next page
    15  39 fe              cmp    esi, edi
    17  72 ec              jb     page
    19  ff 43 0c           inc    dword [ebx+12]     ; passes += 1
    1c  8b 53 10           mov    edx, [ebx+16]      ; port
    1f  85 d2              test   edx, edx
    21  74 03              jz     nout
    23  b0 23              mov    al, '#'
    25  ee                 out    dx, al
    26  8b 43 14     nout: mov    eax, [ebx+20]      ; limit
    29  85 c0              test   eax, eax
    2b  74 d3              jz     pass
    2d  3b 43 0c           cmp    eax, [ebx+12]
    30  77 ce              ja     pass
    32  f4           halt: hlt
    33  eb f1              jmp    nout           ; resumed: re-check the limit

Per page the writer executes ``2 * delay + 6`` instructions (``2 * 0 + 5`` with
delay 0: the ``jecxz`` skips the loop).  The anchors' guest ran ``inc`` + 16 NOPs + 3
= 20 (delay 7 here).

``read`` (at 0x1040) is ``write`` with ``8a 06  mov al, [esi]`` in place of the
``inc``: it writes guest RAM only through its pass counter.  ``idle`` (at 0x1080)::

    00  f4           loop: hlt                       ; exits to the VMM (no irqchip)
    01  ff 43 0c           inc    dword [ebx+12]     ; counts resumptions
    04  eb fa              jmp    loop

Pacing on the PVM host: these programs are always emulated, at about 0.5 us per
instruction whatever the instruction, so the writer's rate is inversely proportional
to its ``2 * delay + 6`` instructions per page.  One write fault emulates up to 1024
instructions and logs every page they write without checking the ring's soft limit
(64 reserved entries): with ``n`` instructions per page up to ``1023 // n + 1`` entries
land past the soft limit, so fewer than 17 (delay <= 5) may overflow the ring.
Measured in :class:`~qmpdl.kvm.vm.KvmVm` with a 4096-entry ring (the host is shared
and itself virtualised: +-8 % between runs)::

    delay  instructions/page  MiB/s    most entries past the soft limit
      0          5            stuck after 6 ring-fulls (overflow)
      5         16             477     63 of 64: unsafe
      6         18            400-466  52   <- DEFAULT_DELAY
      7         20            380-410  47   (the anchors' 16-NOP guest: ~405 here)
      8         22             367     46
     16         38             212     26
     32         70             119     14
     64        134              62      6

Under QEMU 7.2 on the same host (:func:`multiboot_image`, dirty limit in service)
delay 6 ran at ~416 MiB/s and the anchors' 16-NOP loop at ~400.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

from qmpdl.kvm import uapi
from qmpdl.kvm.vm import KvmVm
from qmpdl.target import PAGE_SIZE

MiB: Final = 1 << 20

CODE_BASE: Final = 0x1000
BLOCK_BASE: Final = 0x10000
#: Lowest working-set address.
WS_BASE: Final = 0x100000
MAX_VCPUS: Final = (WS_BASE - BLOCK_BASE) // PAGE_SIZE

# Parameter block field offsets.
OFF_BASE: Final = 0x00
OFF_END: Final = 0x04
OFF_DELAY: Final = 0x08
OFF_PASSES: Final = 0x0C
OFF_PORT: Final = 0x10
OFF_LIMIT: Final = 0x14
_BLOCK: Final = struct.Struct("<6I")

#: Delay loop count of the writer by default: 18 instructions per page, ~430 MiB/s on
#: the PVM host (the anchors' guest: 430-470 under QEMU), at most 57 ring entries past
#: the soft limit (64 reserved).
DEFAULT_DELAY: Final = 6
#: Smallest delay that cannot overflow a dirty ring on the PVM host.
MIN_SAFE_DELAY: Final = 6
#: Largest delay the block holds (about an hour per page on PVM).
MAX_DELAY: Final = (1 << 32) - 1
#: PVM calibration: MiB/s x instructions per page, both programs (~0.49 us/instruction;
#: delay 6, 18 instructions, ~430 MiB/s).  Hardware KVM runs the loop natively, far
#: faster: there a rate needs measuring, and :func:`set_delay` adjusting live.
PVM_MIB_S_X_INSTRUCTIONS: Final = 430.0 * 18

WRITE_CODE: Final = bytes.fromhex(
    "8b33"  # pass: mov esi, [ebx]
    "8b7b04"  # mov edi, [ebx+4]
    "fe06"  # page: inc byte [esi]
    "8b4b08"  # mov ecx, [ebx+8]
    "e303"  # jecxz next
    "49"  # delay: dec ecx
    "75fd"  # jnz delay
    "81c600100000"  # next: add esi, 0x1000
    "39fe"  # cmp esi, edi
    "72ec"  # jb page
    "ff430c"  # inc dword [ebx+12]
    "8b5310"  # mov edx, [ebx+16]
    "85d2"  # test edx, edx
    "7403"  # jz nout
    "b023"  # mov al, '#'
    "ee"  # out dx, al
    "8b4314"  # nout: mov eax, [ebx+20]
    "85c0"  # test eax, eax
    "74d3"  # jz pass
    "3b430c"  # cmp eax, [ebx+12]
    "77ce"  # ja pass
    "f4"  # halt: hlt
    "ebf1"  # jmp nout
)
READ_CODE: Final = WRITE_CODE[:5] + bytes.fromhex("8a06") + WRITE_CODE[7:]
IDLE_CODE: Final = bytes.fromhex(
    "f4"  # loop: hlt
    "ff430c"  # inc dword [ebx+12]
    "ebfa"  # jmp loop
)


class Program(enum.Enum):
    """A guest program and its entry address in the code page."""

    WRITE = CODE_BASE + 0x00
    READ = CODE_BASE + 0x40
    IDLE = CODE_BASE + 0x80

    @property
    def code(self) -> bytes:
        """The program's machine code."""
        return _CODE[self]


_CODE: Final = {Program.WRITE: WRITE_CODE, Program.READ: READ_CODE, Program.IDLE: IDLE_CODE}


def code_page() -> bytes:
    """The 4 KiB code page: each program in its 64-byte slot, ``hlt`` elsewhere."""
    page = bytearray(b"\xf4" * PAGE_SIZE)
    for program, code in _CODE.items():
        start = program.value - CODE_BASE
        assert len(code) <= 0x40
        page[start : start + len(code)] = code
    return bytes(page)


@dataclass(frozen=True)
class GuestParams:
    """What one vCPU runs: a program and its parameter block's contents."""

    program: Program
    #: working set: first byte (page aligned, >= :data:`WS_BASE`) and size in bytes
    ws_base: int = WS_BASE
    ws_size: int = 0
    delay: int = DEFAULT_DELAY
    #: halt after this many passes (0: never)
    pass_limit: int = 0
    #: I/O port written once per pass (0: none; every write is a ``KVM_EXIT_IO``)
    port: int = 0

    @property
    def wss_pages(self) -> int:
        """Pages per pass (0 for the idle program)."""
        return 0 if self.program is Program.IDLE else self.ws_size // PAGE_SIZE

    def validate(self, ram_size: int) -> None:
        """Raise :class:`ValueError` unless the program can run in ``ram_size`` bytes."""
        if self.program is Program.IDLE:
            return
        if self.ws_base % PAGE_SIZE or self.ws_size % PAGE_SIZE or self.ws_size <= 0:
            raise ValueError("working set must be whole pages, at least one")
        if self.ws_base < WS_BASE or self.ws_base + self.ws_size > min(ram_size, 1 << 32):
            raise ValueError(
                f"working set {self.ws_base:#x}+{self.ws_size:#x} outside "
                f"{WS_BASE:#x}..{min(ram_size, 1 << 32):#x}"
            )
        if not 0 <= self.delay < 1 << 32:
            raise ValueError(f"delay {self.delay}: must be 0..2**32-1")

    def block(self) -> bytes:
        """The parameter block's first 24 bytes (passes = 0)."""
        return _BLOCK.pack(
            self.ws_base, self.ws_base + self.ws_size, self.delay, 0, self.port, self.pass_limit
        )


def block_address(vcpu_index: int) -> int:
    """Guest physical address of vCPU ``vcpu_index``'s parameter block."""
    if not 0 <= vcpu_index < MAX_VCPUS:
        raise ValueError(f"vCPU index {vcpu_index}: guest programs support {MAX_VCPUS} vCPUs")
    return BLOCK_BASE + vcpu_index * PAGE_SIZE


def split_working_sets(ram_size: int, nr_vcpus: int) -> list[tuple[int, int]]:
    """Equal, page-aligned ``(base, size)`` slices of RAM above :data:`WS_BASE`."""
    pages = (min(ram_size, 1 << 32) - WS_BASE) // PAGE_SIZE // nr_vcpus
    if pages <= 0:
        raise ValueError(f"{ram_size} bytes of RAM leave no working set for {nr_vcpus} vCPUs")
    size = pages * PAGE_SIZE
    return [(WS_BASE + i * size, size) for i in range(nr_vcpus)]


def load(vm: KvmVm, vcpu_index: int, params: GuestParams) -> None:
    """Make vCPU ``vcpu_index`` start ``params.program`` at its next run.

    Writes the code page and the vCPU's parameter block (pass counter 0), switches the
    vCPU to flat protected mode and points ``EIP`` at the program, ``EBX`` at the block.
    The vCPU must not be running.
    """
    params.validate(vm.ram_size)
    block = block_address(vcpu_index)
    if block + PAGE_SIZE > vm.ram_size:
        raise ValueError(f"RAM of {vm.ram_size} bytes has no block for vCPU {vcpu_index}")
    vm.memory[CODE_BASE : CODE_BASE + PAGE_SIZE] = memoryview(code_page())
    vm.memory[block : block + PAGE_SIZE] = 0
    vm.memory[block : block + _BLOCK.size] = memoryview(params.block())
    vcpu = vm.vcpus[vcpu_index]
    vcpu.enter_flat_protected_mode()
    regs = uapi.KvmRegs()
    regs.rip = params.program.value
    regs.rbx = block
    regs.rflags = 0x2  # bit 1 is reserved-set; IF off
    vcpu.set_regs(regs)


class WorkloadLike(Protocol):
    """What :func:`load_programs` needs of a workload (``qmpdl.workload.Workload``)."""

    @property
    def kind(self) -> str: ...  # "write", "read" or "idle"

    @property
    def rate(self) -> float: ...  # MiB/s

    @property
    def wss(self) -> int | None: ...  # bytes; None: 99 MiB or an equal share of RAM

    @property
    def delay(self) -> int | None: ...  # pacing loop count; None: from the rate


#: Working set of a workload that does not say (the anchors' guest: 99 MiB).
DEFAULT_WSS: Final = 99 * MiB


def delay_for_rate(mib_s: float) -> int:
    """The delay that makes a program run at about ``mib_s`` on the PVM host, never
    below :data:`MIN_SAFE_DELAY` (which caps the writer near 430 MiB/s); 0 MiB/s gives
    :data:`MAX_DELAY`."""
    if mib_s <= 0:
        return MAX_DELAY
    delay = round((PVM_MIB_S_X_INSTRUCTIONS / mib_s - 6) / 2)
    return min(max(delay, MIN_SAFE_DELAY), MAX_DELAY)


def load_programs(
    vm: KvmVm, workloads: Sequence[WorkloadLike], *, port: int = 0
) -> list[GuestParams]:
    """Load workload ``i`` on vCPU ``i``: disjoint working sets from :data:`WS_BASE` on
    (``wss`` rounded up to whole pages; unset: 99 MiB or an equal share of the RAM
    above :data:`WS_BASE`, whichever is less), the workload's delay or one from its
    rate, and ``port`` for the pass characters (0: none).  Returns what each vCPU got.
    Raises :class:`ValueError` when the working sets do not fit."""
    if len(workloads) != len(vm.vcpus):
        raise ValueError(f"{len(workloads)} workloads for {len(vm.vcpus)} vCPUs")
    space = min(vm.ram_size, 1 << 32) - WS_BASE
    share = max(space // max(len(workloads), 1) // PAGE_SIZE * PAGE_SIZE, PAGE_SIZE)
    loaded: list[GuestParams] = []
    base = WS_BASE
    for index, workload in enumerate(workloads):
        program = Program[workload.kind.upper()]
        if program is Program.IDLE:
            params = GuestParams(program)
        else:
            size = workload.wss if workload.wss is not None else min(DEFAULT_WSS, share)
            size = -(-size // PAGE_SIZE) * PAGE_SIZE
            delay = workload.delay if workload.delay is not None else delay_for_rate(workload.rate)
            params = GuestParams(program, base, size, delay, port=port)
            base += size
        load(vm, index, params)
        loaded.append(params)
    return loaded


def set_delay(vm: KvmVm, vcpu_index: int, delay: int) -> None:
    """Change a running program's pace: it re-reads the delay before every page."""
    if not 0 <= delay <= MAX_DELAY:
        raise ValueError(f"delay {delay}: must be 0..{MAX_DELAY}")
    at = block_address(vcpu_index) + OFF_DELAY
    vm.memory[at : at + 4] = memoryview(delay.to_bytes(4, "little"))


def _field(vm: KvmVm, vcpu_index: int, offset: int) -> int:
    at = block_address(vcpu_index) + offset
    return int.from_bytes(vm.memory[at : at + 4].tobytes(), "little")


def passes(vm: KvmVm, vcpu_index: int) -> int:
    """Passes vCPU ``vcpu_index`` completed (its guest counter; safe while it runs)."""
    return _field(vm, vcpu_index, OFF_PASSES)


def working_set_size(vm: KvmVm, vcpu_index: int) -> int:
    """Bytes per pass of vCPU ``vcpu_index``'s program, as its block says."""
    return _field(vm, vcpu_index, OFF_END) - _field(vm, vcpu_index, OFF_BASE)


# -- the same writer as a multiboot kernel for real QEMU ------------------------------

#: Where QEMU loads the image (``-kernel``; the a.out kludge addresses say so).
MULTIBOOT_LOAD: Final = 0x100000
#: The anchors' guest wrote 99 MiB per pass; the image occupies 1..1.008 MiB.
MULTIBOOT_WS: Final = (2 * MiB, 101 * MiB)
COM1: Final = 0x3F8
#: What the writer prints per pass (SeaBIOS's own console output never contains it).
PASS_CHAR: Final = b"#"
_MB_MAGIC: Final = 0x1BADB002
_MB_FLAGS: Final = 1 << 16  # MULTIBOOT_AOUT_KLUDGE: the header gives the load addresses


def multiboot_image(
    ws_base: int = MULTIBOOT_WS[0],
    ws_end: int = MULTIBOOT_WS[1],
    delay: int = DEFAULT_DELAY,
    port: int = COM1,
) -> bytes:
    """A multiboot (v1) kernel running :data:`WRITE_CODE` for ``qemu-system-x86_64
    -kernel``; it prints :data:`PASS_CHAR` to ``port`` per pass over ``ws_base..ws_end``.

    Image (loaded at 1 MiB, 8 KiB)::

        0x000  multiboot header: magic, flags (a.out kludge), checksum, header_addr,
               load_addr, load_end_addr, bss_end_addr (0), entry_addr (0x100020)
        0x020  e4 92           in     al, 0x92           ; fast A20 on
               0c 02           or     al, 2
               e6 92           out    0x92, al
               bb <block>      mov    ebx, 0x101000
               eb 13           jmp    0x40
        0x040  WRITE_CODE, byte for byte
        0x1000 parameter block page (port = COM1, limit 0)

    QEMU's multiboot option ROM enters at ``entry_addr`` in flat 32-bit protected
    mode with interrupts off, like :func:`load` does for our vCPUs.
    """
    params = GuestParams(Program.WRITE, ws_base, ws_end - ws_base, delay, 0, port)
    params.validate(1 << 32)
    size = 2 * PAGE_SIZE
    block = MULTIBOOT_LOAD + PAGE_SIZE
    entry = MULTIBOOT_LOAD + 0x20
    header = struct.pack(
        "<8I",
        _MB_MAGIC,
        _MB_FLAGS,
        (-(_MB_MAGIC + _MB_FLAGS)) & 0xFFFFFFFF,
        MULTIBOOT_LOAD,  # header_addr: the header is the first thing loaded
        MULTIBOOT_LOAD,  # load_addr
        MULTIBOOT_LOAD + size,  # load_end_addr
        0,  # bss_end_addr: no bss
        entry,
    )
    stub = bytes.fromhex("e4920c02e692") + b"\xbb" + struct.pack("<I", block) + b"\xeb\x13"
    image = bytearray(b"\xf4" * PAGE_SIZE) + bytearray(PAGE_SIZE)
    image[0 : len(header)] = header
    image[0x20 : 0x20 + len(stub)] = stub
    assert 0x20 + len(stub) + 0x13 == 0x40
    assert WRITE_CODE[0x23:0x25] == b"\xb0" + PASS_CHAR
    image[0x40 : 0x40 + len(WRITE_CODE)] = WRITE_CODE
    image[PAGE_SIZE : PAGE_SIZE + _BLOCK.size] = params.block()
    return bytes(image)


def serial_passes(output: bytes) -> int:
    """Passes in a serial log of :func:`multiboot_image` (firmware text before ignored)."""
    return output.count(PASS_CHAR)


def write_multiboot_image(path: str | Path, **kwargs: int) -> Path:
    """Write :func:`multiboot_image` (same keyword arguments) to ``path``."""
    target = Path(path)
    target.write_bytes(multiboot_image(**kwargs))
    return target
