"""``-machine`` and ``-cpu``: the machine types and properties QEMU 7.2 has on x86_64.

QEMU reads ``-machine`` with keyval (``type`` implied) and applies the properties when it
creates the machine, so its errors there carry no option location.
"""

from __future__ import annotations

from qmpdl.qemuopts import OptionError, parse_bool, split_opts

#: ``qemu-system-x86_64 -machine help`` (QEMU 7.2), aliases to what they stand for.
ALIASES = {"pc": "pc-i440fx-7.2", "q35": "pc-q35-7.2"}
_I440FX = [
    "7.2", "7.1", "7.0", "6.2", "6.1", "6.0", "5.2", "5.1", "5.0", "4.2", "4.1", "4.0",
    "3.1", "3.0", "2.9", "2.8", "2.7", "2.6", "2.5", "2.4", "2.3", "2.2", "2.12", "2.11",
    "2.10", "2.1", "2.0", "1.7", "1.6", "1.5", "1.4",
]  # fmt: skip
_Q35 = [
    "7.2", "7.1", "7.0", "6.2", "6.1", "6.0", "5.2", "5.1", "5.0", "4.2", "4.1", "4.0.1",
    "4.0", "3.1", "3.0", "2.9", "2.8", "2.7", "2.6", "2.5", "2.4", "2.12", "2.11", "2.10",
]  # fmt: skip
MACHINE_TYPES = frozenset(
    ["microvm", "isapc", "none", "x-remote"]
    + [f"pc-i440fx-{v}" for v in _I440FX]
    + [f"pc-q35-{v}" for v in _Q35]
    + list(ALIASES)
)

#: What every machine has (``-machine none,help``).
_COMMON = frozenset(
    [
        "append",
        "boot",
        "confidential-guest-support",
        "dt-compatible",
        "dtb",
        "dump-guest-core",
        "dumpdtb",
        "firmware",
        "graphics",
        "initrd",
        "kernel",
        "mem-merge",
        "memory-backend",
        "memory-encryption",
        "memory",
        "phandle-start",
        "smp",
        "suppress-vmdesc",
        "usb",
    ]
)
#: What the pc boards add (``-machine pc,help``; q35 has the same).
_PC = _COMMON | frozenset(
    [
        "acpi",
        "bus-lock-ratelimit",
        "default-bus-bypass-iommu",
        "hpet",
        "i8042",
        "max-fw-size",
        "max-ram-below-4g",
        "pic",
        "pit",
        "sata",
        "sgx-epc",
        "smbios-entry-point-type",
        "smbus",
        "smm",
        "vmport",
        "x-oem-id",
        "x-oem-table-id",
    ]
)
_MICROVM = _COMMON | frozenset(
    [
        "acpi",
        "auto-kernel-cmdline",
        "bus-lock-ratelimit",
        "ioapic2",
        "isa-serial",
        "pcie",
        "pic",
        "pit",
        "rtc",
        "sgx-epc",
        "smm",
        "x-oem-id",
        "x-oem-table-id",
        "x-option-roms",
    ]
)
_BOOL = frozenset(
    [
        "dump-guest-core",
        "mem-merge",
        "graphics",
        "suppress-vmdesc",
        "usb",
        "hpet",
        "i8042",
        "sata",
        "smbus",
        "default-bus-bypass-iommu",
        "pit",
        "dumpdtb",
        "auto-kernel-cmdline",
        "ioapic2",
        "isa-serial",
        "x-option-roms",
    ]
)
_ON_OFF_AUTO = frozenset(["acpi", "smm", "vmport", "pic", "pcie", "rtc"])
#: ``-machine`` keys that set accelerator properties (QEMU's legacy spellings).
_ACCEL_KEYS = frozenset(("accel", "kernel-irqchip", "kvm-shadow-mem"))


def resolve(machine_type: str) -> str:
    """The machine type an alias stands for (``pc`` -> ``pc-i440fx-7.2``)."""
    return ALIASES.get(machine_type, machine_type)


def _properties(resolved: str) -> frozenset[str]:
    if resolved == "microvm":
        return _MICROVM
    if resolved.startswith(("pc-", "isapc")):
        return _PC
    return _COMMON


def parse_machine(text: str) -> dict[str, str]:
    """``-machine TEXT`` as keyval with ``type`` implied (the later key wins)."""
    out: dict[str, str] = {}
    for i, part in enumerate(split_opts(text)):
        key, eq, value = part.partition("=")
        if not eq:
            if i == 0:
                out["type"] = part
                continue
            raise OptionError(f"Expected '=' after parameter '{part}'")
        out[key] = value
    return out


def check_machine(machine_type: str | None, props: dict[str, str]) -> None:
    """What QEMU checks when it creates the machine (no option location)."""
    resolved = resolve(machine_type or "pc")
    if resolved not in MACHINE_TYPES:
        raise OptionError("unsupported machine type\nUse -machine help to list supported machines")
    known = _properties(resolved)
    for key, value in props.items():
        if key in _ACCEL_KEYS:
            continue
        if key not in known:
            raise OptionError(f"Property '{resolved}-machine.{key}' not found")
        if key in _BOOL:
            parse_bool(key, value)
        elif key in _ON_OFF_AUTO and value not in ("on", "off", "auto"):
            raise OptionError(f"Parameter '{key}' does not accept value '{value}'")


#: The CPU models of ``qemu-system-x86_64 -cpu help`` (QEMU 7.2); qmpdl's vCPUs run its
#: guest programs whatever the model, which only shows in what QMP reports.
CPU_MODELS = frozenset(
    [
        "486",
        "486-v1",
        "Broadwell",
        "Broadwell-IBRS",
        "Broadwell-noTSX",
        "Broadwell-noTSX-IBRS",
        "Broadwell-v1",
        "Broadwell-v2",
        "Broadwell-v3",
        "Broadwell-v4",
        "Cascadelake-Server",
        "Cascadelake-Server-noTSX",
        "Cascadelake-Server-v1",
        "Cascadelake-Server-v2",
        "Cascadelake-Server-v3",
        "Cascadelake-Server-v4",
        "Cascadelake-Server-v5",
        "Conroe",
        "Conroe-v1",
        "Cooperlake",
        "Cooperlake-v1",
        "Cooperlake-v2",
        "Denverton",
        "Denverton-v1",
        "Denverton-v2",
        "Denverton-v3",
        "Dhyana",
        "Dhyana-v1",
        "Dhyana-v2",
        "EPYC",
        "EPYC-IBPB",
        "EPYC-Milan",
        "EPYC-Milan-v1",
        "EPYC-Rome",
        "EPYC-Rome-v1",
        "EPYC-Rome-v2",
        "EPYC-v1",
        "EPYC-v2",
        "EPYC-v3",
        "Haswell",
        "Haswell-IBRS",
        "Haswell-noTSX",
        "Haswell-noTSX-IBRS",
        "Haswell-v1",
        "Haswell-v2",
        "Haswell-v3",
        "Haswell-v4",
        "Icelake-Server",
        "Icelake-Server-noTSX",
        "Icelake-Server-v1",
        "Icelake-Server-v2",
        "Icelake-Server-v3",
        "Icelake-Server-v4",
        "Icelake-Server-v5",
        "Icelake-Server-v6",
        "IvyBridge",
        "IvyBridge-IBRS",
        "IvyBridge-v1",
        "IvyBridge-v2",
        "KnightsMill",
        "KnightsMill-v1",
        "Nehalem",
        "Nehalem-IBRS",
        "Nehalem-v1",
        "Nehalem-v2",
        "Opteron_G1",
        "Opteron_G1-v1",
        "Opteron_G2",
        "Opteron_G2-v1",
        "Opteron_G3",
        "Opteron_G3-v1",
        "Opteron_G4",
        "Opteron_G4-v1",
        "Opteron_G5",
        "Opteron_G5-v1",
        "Penryn",
        "Penryn-v1",
        "SandyBridge",
        "SandyBridge-IBRS",
        "SandyBridge-v1",
        "SandyBridge-v2",
        "Skylake-Client",
        "Skylake-Client-IBRS",
        "Skylake-Client-noTSX-IBRS",
        "Skylake-Client-v1",
        "Skylake-Client-v2",
        "Skylake-Client-v3",
        "Skylake-Client-v4",
        "Skylake-Server",
        "Skylake-Server-IBRS",
        "Skylake-Server-noTSX-IBRS",
        "Skylake-Server-v1",
        "Skylake-Server-v2",
        "Skylake-Server-v3",
        "Skylake-Server-v4",
        "Skylake-Server-v5",
        "Snowridge",
        "Snowridge-v1",
        "Snowridge-v2",
        "Snowridge-v3",
        "Snowridge-v4",
        "Westmere",
        "Westmere-IBRS",
        "Westmere-v1",
        "Westmere-v2",
        "athlon",
        "athlon-v1",
        "core2duo",
        "core2duo-v1",
        "coreduo",
        "coreduo-v1",
        "kvm32",
        "kvm32-v1",
        "kvm64",
        "kvm64-v1",
        "n270",
        "n270-v1",
        "pentium",
        "pentium-v1",
        "pentium2",
        "pentium2-v1",
        "pentium3",
        "pentium3-v1",
        "phenom",
        "phenom-v1",
        "qemu32",
        "qemu32-v1",
        "qemu64",
        "qemu64-v1",
        "base",
        "host",
        "max",
    ]
)
DEFAULT_CPU = "qemu64"


def check_cpu(text: str) -> str:
    """``-cpu MODEL[,features]``: the model (QEMU: ``unable to find CPU model``)."""
    model = text.split(",", 1)[0]
    if model not in CPU_MODELS:
        raise OptionError(f"unable to find CPU model '{model}'")
    return model
