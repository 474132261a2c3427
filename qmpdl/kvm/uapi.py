"""The slice of the Linux KVM user API that qmpdl uses, for x86-64 hosts.

Every number and layout here comes from the kernel's uapi headers
(``<linux/kvm.h>``, ``<asm/kvm.h>`` for x86 and ``<asm-generic/ioctl.h>``); each
definition names the C macro or struct it mirrors.  ``tests/kvm/test_uapi.py`` pins the
sizes, the field offsets and the final ioctl numbers, so a typo here fails a test
instead of sending a wrong request to the kernel.
"""

from __future__ import annotations

import ctypes

# ---------------------------------------------------------------------------
# ioctl request encoding (asm-generic/ioctl.h: _IOC, _IO, _IOR, _IOW)
# ---------------------------------------------------------------------------

_IOC_NRSHIFT = 0
_IOC_TYPESHIFT = 8  # _IOC_NRSHIFT + _IOC_NRBITS (8)
_IOC_SIZESHIFT = 16  # _IOC_TYPESHIFT + _IOC_TYPEBITS (8)
_IOC_DIRSHIFT = 30  # _IOC_SIZESHIFT + _IOC_SIZEBITS (14)
_IOC_NONE = 0
_IOC_WRITE = 1
_IOC_READ = 2


def _ioc(direction: int, kind: int, nr: int, size: int) -> int:
    """``_IOC(dir, type, nr, size)``."""
    assert size < (1 << 14), "does not fit _IOC_SIZEBITS"
    return (
        (direction << _IOC_DIRSHIFT)
        | (kind << _IOC_TYPESHIFT)
        | (nr << _IOC_NRSHIFT)
        | (size << _IOC_SIZESHIFT)
    )


def _io(kind: int, nr: int) -> int:
    """``_IO(type, nr)``: no argument struct."""
    return _ioc(_IOC_NONE, kind, nr, 0)


def _ior(kind: int, nr: int, struct: type[ctypes.Structure]) -> int:
    """``_IOR(type, nr, struct)``: the kernel writes the struct."""
    return _ioc(_IOC_READ, kind, nr, ctypes.sizeof(struct))


def _iow(kind: int, nr: int, struct: type[ctypes.Structure]) -> int:
    """``_IOW(type, nr, struct)``: the kernel reads the struct."""
    return _ioc(_IOC_WRITE, kind, nr, ctypes.sizeof(struct))


# ---------------------------------------------------------------------------
# Structures (x86-64 layout; ctypes applies the same natural alignment as gcc)
# ---------------------------------------------------------------------------

_u8 = ctypes.c_uint8
_u16 = ctypes.c_uint16
_u32 = ctypes.c_uint32
_u64 = ctypes.c_uint64


class KvmUserspaceMemoryRegion(ctypes.Structure):
    """``struct kvm_userspace_memory_region`` (linux/kvm.h), 32 bytes."""

    _fields_ = (
        ("slot", _u32),
        ("flags", _u32),
        ("guest_phys_addr", _u64),
        ("memory_size", _u64),
        ("userspace_addr", _u64),
    )


class KvmDirtyLog(ctypes.Structure):
    """``struct kvm_dirty_log`` (linux/kvm.h), 16 bytes.

    ``dirty_bitmap`` is the union ``{void *dirty_bitmap; __u64 padding2;}``: a user
    address, one bit per page of the slot, which the kernel fills.
    """

    _fields_ = (
        ("slot", _u32),
        ("padding1", _u32),
        ("dirty_bitmap", _u64),
    )


class KvmEnableCap(ctypes.Structure):
    """``struct kvm_enable_cap`` (linux/kvm.h), 104 bytes."""

    _fields_ = (
        ("cap", _u32),
        ("flags", _u32),
        ("args", _u64 * 4),
        ("pad", _u8 * 64),
    )


class KvmRegs(ctypes.Structure):
    """``struct kvm_regs`` (asm/kvm.h, x86), 144 bytes."""

    _fields_ = tuple(
        (name, _u64)
        for name in (
            "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp",
            "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
            "rip", "rflags",
        )
    )  # fmt: skip


class KvmSegment(ctypes.Structure):
    """``struct kvm_segment`` (asm/kvm.h, x86), 24 bytes."""

    _fields_ = (
        ("base", _u64),
        ("limit", _u32),
        ("selector", _u16),
        ("type", _u8),
        ("present", _u8),
        ("dpl", _u8),
        ("db", _u8),
        ("s", _u8),
        ("l", _u8),
        ("g", _u8),
        ("avl", _u8),
        ("unusable", _u8),
        ("padding", _u8),
    )


class KvmDtable(ctypes.Structure):
    """``struct kvm_dtable`` (asm/kvm.h, x86), 16 bytes."""

    _fields_ = (
        ("base", _u64),
        ("limit", _u16),
        ("padding", _u16 * 3),
    )


#: ``KVM_NR_INTERRUPTS`` (asm/kvm.h, x86)
KVM_NR_INTERRUPTS = 256


class KvmSregs(ctypes.Structure):
    """``struct kvm_sregs`` (asm/kvm.h, x86), 312 bytes; ``cr0`` sits at byte 224."""

    _fields_ = (
        ("cs", KvmSegment),
        ("ds", KvmSegment),
        ("es", KvmSegment),
        ("fs", KvmSegment),
        ("gs", KvmSegment),
        ("ss", KvmSegment),
        ("tr", KvmSegment),
        ("ldt", KvmSegment),
        ("gdt", KvmDtable),
        ("idt", KvmDtable),
        ("cr0", _u64),
        ("cr2", _u64),
        ("cr3", _u64),
        ("cr4", _u64),
        ("cr8", _u64),
        ("efer", _u64),
        ("apic_base", _u64),
        ("interrupt_bitmap", _u64 * ((KVM_NR_INTERRUPTS + 63) // 64)),
    )


class KvmRunIo(ctypes.Structure):
    """``kvm_run.io`` (``KVM_EXIT_IO``): the bytes are at ``data_offset`` in kvm_run."""

    _fields_ = (
        ("direction", _u8),
        ("size", _u8),
        ("port", _u16),
        ("count", _u32),
        ("data_offset", _u64),
    )


class KvmRunMmio(ctypes.Structure):
    """``kvm_run.mmio`` (``KVM_EXIT_MMIO``)."""

    _fields_ = (
        ("phys_addr", _u64),
        ("data", _u8 * 8),
        ("len", _u32),
        ("is_write", _u8),
    )


class KvmRunFailEntry(ctypes.Structure):
    """``kvm_run.fail_entry`` (``KVM_EXIT_FAIL_ENTRY``)."""

    _fields_ = (
        ("hardware_entry_failure_reason", _u64),
        ("cpu", _u32),
    )


class KvmRunInternal(ctypes.Structure):
    """``kvm_run.internal`` (``KVM_EXIT_INTERNAL_ERROR``)."""

    _fields_ = (
        ("suberror", _u32),
        ("ndata", _u32),
        ("data", _u64 * 16),
    )


class KvmRunHw(ctypes.Structure):
    """``kvm_run.hw`` (``KVM_EXIT_UNKNOWN``)."""

    _fields_ = (("hardware_exit_reason", _u64),)


class KvmRunExit(ctypes.Union):
    """The exit-reason union of ``struct kvm_run``, fixed at 256 bytes by its
    ``char padding[256]`` member; only the members qmpdl reads are spelled out."""

    _fields_ = (
        ("hw", KvmRunHw),
        ("fail_entry", KvmRunFailEntry),
        ("io", KvmRunIo),
        ("mmio", KvmRunMmio),
        ("internal", KvmRunInternal),
        ("padding", ctypes.c_char * 256),
    )


#: ``SYNC_REGS_SIZE_BYTES`` (linux/kvm.h)
SYNC_REGS_SIZE_BYTES = 2048


class KvmRun(ctypes.Structure):
    """``struct kvm_run`` (linux/kvm.h) as laid out on x86 (no s390 ``psw_*``),
    2352 bytes; it is the start of the vCPU fd's mmap (``KVM_GET_VCPU_MMAP_SIZE`` is
    larger: the pages after it hold the PIO data and the coalesced MMIO ring)."""

    _fields_ = (
        ("request_interrupt_window", _u8),
        ("immediate_exit", _u8),
        ("padding1", _u8 * 6),
        ("exit_reason", _u32),
        ("ready_for_interrupt_injection", _u8),
        ("if_flag", _u8),
        ("flags", _u16),
        ("cr8", _u64),
        ("apic_base", _u64),
        ("exit", KvmRunExit),
        ("kvm_valid_regs", _u64),
        ("kvm_dirty_regs", _u64),
        ("s", ctypes.c_char * SYNC_REGS_SIZE_BYTES),
    )


class KvmDirtyGfn(ctypes.Structure):
    """``struct kvm_dirty_gfn`` (linux/kvm.h), 16 bytes: one dirty ring entry.

    ``slot`` is ``(address space << 16) | slot id``; ``offset`` is the page number
    within the slot (not a byte offset).
    """

    _fields_ = (
        ("flags", _u32),
        ("slot", _u32),
        ("offset", _u64),
    )


# ---------------------------------------------------------------------------
# Constants
# ---------------------------------------------------------------------------

#: ``KVMIO`` (linux/kvm.h): the ioctl type byte
KVMIO = 0xAE
#: ``KVM_API_VERSION`` (linux/kvm.h): the only version a VMM may accept
KVM_API_VERSION = 12

# Capabilities (``KVM_CAP_*``, linux/kvm.h)
KVM_CAP_USER_MEMORY = 3
KVM_CAP_NR_VCPUS = 9
KVM_CAP_MAX_VCPUS = 66
KVM_CAP_IMMEDIATE_EXIT = 136
KVM_CAP_DIRTY_LOG_RING = 192
KVM_CAP_BINARY_STATS_FD = 203
KVM_CAP_DIRTY_LOG_RING_ACQ_REL = 223

#: ``KVM_MEM_LOG_DIRTY_PAGES`` (linux/kvm.h): memory slot flag
KVM_MEM_LOG_DIRTY_PAGES = 1 << 0

# Exit reasons (``KVM_EXIT_*``, linux/kvm.h)
KVM_EXIT_UNKNOWN = 0
KVM_EXIT_EXCEPTION = 1
KVM_EXIT_IO = 2
KVM_EXIT_HYPERCALL = 3
KVM_EXIT_DEBUG = 4
KVM_EXIT_HLT = 5
KVM_EXIT_MMIO = 6
KVM_EXIT_IRQ_WINDOW_OPEN = 7
KVM_EXIT_SHUTDOWN = 8
KVM_EXIT_FAIL_ENTRY = 9
KVM_EXIT_INTR = 10
KVM_EXIT_INTERNAL_ERROR = 17
KVM_EXIT_SYSTEM_EVENT = 24
KVM_EXIT_X86_RDMSR = 29
KVM_EXIT_X86_WRMSR = 30
KVM_EXIT_DIRTY_RING_FULL = 31

#: ``KVM_EXIT_IO_IN`` / ``KVM_EXIT_IO_OUT`` (linux/kvm.h): ``kvm_run.io.direction``
KVM_EXIT_IO_IN = 0
KVM_EXIT_IO_OUT = 1

# Dirty ring entry flags (``KVM_DIRTY_GFN_F_*``, linux/kvm.h)
KVM_DIRTY_GFN_F_DIRTY = 1 << 0
KVM_DIRTY_GFN_F_RESET = 1 << 1
KVM_DIRTY_GFN_F_MASK = 0x3

#: ``KVM_DIRTY_LOG_PAGE_OFFSET`` (asm/kvm.h, x86): page offset of the dirty ring in
#: the vCPU fd's mmap space
KVM_DIRTY_LOG_PAGE_OFFSET = 64

#: ``KVM_DIRTY_RING_RSVD_ENTRIES`` (include/linux/kvm_dirty_ring.h, kernel-internal):
#: the ring is "soft full" at ``size - reserved`` used entries, where reserved is this
#: plus ``kvm_cpu_dirty_log_size()`` (the Intel PML buffer on some kernels, 0 here)
KVM_DIRTY_RING_RSVD_ENTRIES = 64
#: ``KVM_DIRTY_RING_MAX_ENTRIES`` (include/linux/kvm_dirty_ring.h, kernel-internal)
KVM_DIRTY_RING_MAX_ENTRIES = 65536

# ioctls, system (/dev/kvm fd)
KVM_GET_API_VERSION = _io(KVMIO, 0x00)
KVM_CREATE_VM = _io(KVMIO, 0x01)
KVM_CHECK_EXTENSION = _io(KVMIO, 0x03)  # also a VM ioctl (KVM_CAP_CHECK_EXTENSION_VM)
KVM_GET_VCPU_MMAP_SIZE = _io(KVMIO, 0x04)

# ioctls, VM fd
KVM_CREATE_VCPU = _io(KVMIO, 0x41)
KVM_GET_DIRTY_LOG = _iow(KVMIO, 0x42, KvmDirtyLog)
KVM_SET_USER_MEMORY_REGION = _iow(KVMIO, 0x46, KvmUserspaceMemoryRegion)
KVM_ENABLE_CAP = _iow(KVMIO, 0xA3, KvmEnableCap)  # VM ioctl with KVM_CAP_ENABLE_CAP_VM
KVM_RESET_DIRTY_RINGS = _io(KVMIO, 0xC7)
KVM_GET_STATS_FD = _io(KVMIO, 0xCE)  # also a vCPU ioctl

# ioctls, vCPU fd
KVM_RUN = _io(KVMIO, 0x80)
KVM_GET_REGS = _ior(KVMIO, 0x81, KvmRegs)
KVM_SET_REGS = _iow(KVMIO, 0x82, KvmRegs)
KVM_GET_SREGS = _ior(KVMIO, 0x83, KvmSregs)
KVM_SET_SREGS = _iow(KVMIO, 0x84, KvmSregs)

#: Names of the exit reasons above, for messages.
EXIT_REASON_NAMES: dict[int, str] = {
    value: name.removeprefix("KVM_EXIT_")
    for name, value in dict(globals()).items()
    if name.startswith("KVM_EXIT_")
    and not name.startswith("KVM_EXIT_IO_")
    and isinstance(value, int)
}


def exit_reason_name(reason: int) -> str:
    """``"DIRTY_RING_FULL"`` for 31, ``"31?"``-style text for reasons not listed here."""
    return EXIT_REASON_NAMES.get(reason, f"{reason}?")
