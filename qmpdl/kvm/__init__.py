"""Real vCPUs: a small KVM virtual machine with KVM's dirty ring, and the guest
programs it runs.

* :mod:`qmpdl.kvm.uapi`: ioctl numbers and struct layouts from the kernel headers;
* :mod:`qmpdl.kvm.vm`: :class:`KvmVm` / :class:`KvmVcpu` (run, kick, harvest);
* :mod:`qmpdl.kvm.guest`: the write / read / idle programs, loading them, their pass
  counters, and the writer as a multiboot kernel for real QEMU.
"""

from qmpdl.kvm.guest import DEFAULT_DELAY, GuestParams, Program, load, passes
from qmpdl.kvm.vm import (
    HarvestResult,
    KvmVcpu,
    KvmVm,
    dirty_ring_max_entries,
    host_is_pvm,
    kvm_available,
)

__all__ = [
    "DEFAULT_DELAY",
    "GuestParams",
    "HarvestResult",
    "KvmVcpu",
    "KvmVm",
    "Program",
    "dirty_ring_max_entries",
    "host_is_pvm",
    "kvm_available",
    "load",
    "passes",
]
