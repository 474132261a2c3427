"""The KVM uapi mirror: sizes, field offsets and ioctl numbers as the C compiler sees
them in <linux/kvm.h> (values printed by a gcc program once, on x86-64, against the
installed linux-libc-dev 6.1 headers)."""

from __future__ import annotations

import ctypes

import pytest

from qmpdl.kvm import uapi

SIZES = {
    uapi.KvmUserspaceMemoryRegion: 32,
    uapi.KvmDirtyLog: 16,
    uapi.KvmEnableCap: 104,
    uapi.KvmRegs: 144,
    uapi.KvmSegment: 24,
    uapi.KvmDtable: 16,
    uapi.KvmSregs: 312,
    uapi.KvmRun: 2352,
    uapi.KvmDirtyGfn: 16,
}

IOCTLS = {
    "KVM_GET_API_VERSION": 0xAE00,
    "KVM_CREATE_VM": 0xAE01,
    "KVM_CHECK_EXTENSION": 0xAE03,
    "KVM_GET_VCPU_MMAP_SIZE": 0xAE04,
    "KVM_CREATE_VCPU": 0xAE41,
    "KVM_GET_DIRTY_LOG": 0x4010AE42,
    "KVM_SET_USER_MEMORY_REGION": 0x4020AE46,
    "KVM_ENABLE_CAP": 0x4068AEA3,
    "KVM_RESET_DIRTY_RINGS": 0xAEC7,
    "KVM_GET_STATS_FD": 0xAECE,
    "KVM_RUN": 0xAE80,
    "KVM_GET_REGS": 0x8090AE81,
    "KVM_SET_REGS": 0x4090AE82,
    "KVM_GET_SREGS": 0x8138AE83,
    "KVM_SET_SREGS": 0x4138AE84,
}


@pytest.mark.parametrize(
    ("struct", "size"), SIZES.items(), ids=lambda v: getattr(v, "__name__", "")
)
def test_struct_sizes(struct: type[ctypes.Structure], size: int) -> None:
    assert ctypes.sizeof(struct) == size


def test_field_offsets() -> None:
    assert uapi.KvmSregs.cr0.offset == 224
    assert uapi.KvmSregs.efer.offset == 264
    assert uapi.KvmSregs.interrupt_bitmap.offset == 280
    assert uapi.KvmSegment.unusable.offset == 22
    assert uapi.KvmRun.immediate_exit.offset == 1
    assert uapi.KvmRun.exit_reason.offset == 8
    assert uapi.KvmRun.exit.offset == 32
    assert uapi.KvmRun.kvm_valid_regs.offset == 288
    assert uapi.KvmRun.s.offset == 304
    exit_base = uapi.KvmRun.exit.offset
    assert exit_base + uapi.KvmRunIo.port.offset == 34
    assert exit_base + uapi.KvmRunIo.data_offset.offset == 40
    assert exit_base + uapi.KvmRunMmio.len.offset == 48
    assert exit_base + uapi.KvmRunMmio.is_write.offset == 52
    assert exit_base + uapi.KvmRunInternal.data.offset == 40
    assert exit_base + uapi.KvmRunFailEntry.cpu.offset == 40
    assert uapi.KvmDirtyGfn.offset.offset == 8
    assert uapi.KvmEnableCap.args.offset == 8
    assert uapi.KvmEnableCap.pad.offset == 40
    assert uapi.KvmDirtyLog.dirty_bitmap.offset == 8


@pytest.mark.parametrize(("name", "number"), IOCTLS.items())
def test_ioctl_numbers(name: str, number: int) -> None:
    assert getattr(uapi, name) == number


def test_constants() -> None:
    assert uapi.KVM_CAP_DIRTY_LOG_RING == 192
    assert uapi.KVM_CAP_DIRTY_LOG_RING_ACQ_REL == 223
    assert uapi.KVM_CAP_BINARY_STATS_FD == 203
    assert uapi.KVM_CAP_MAX_VCPUS == 66
    assert uapi.KVM_EXIT_DIRTY_RING_FULL == 31
    assert uapi.KVM_DIRTY_LOG_PAGE_OFFSET == 64
    assert (uapi.KVM_DIRTY_GFN_F_DIRTY, uapi.KVM_DIRTY_GFN_F_RESET) == (1, 2)
    assert uapi.exit_reason_name(31) == "DIRTY_RING_FULL"
    assert uapi.exit_reason_name(99) == "99?"
