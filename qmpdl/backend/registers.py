"""vCPU registers as QEMU's monitor names them (``$eax``, ``$pc``, ``$cs.base``...).

QEMU's x86 monitor knows the general registers (``eax`` .. ``edi`` with ``sp``/``fp``
aliases, and ``r8`` .. ``r15`` on x86-64, all full 64-bit), ``eflags``, ``eip``, each
segment's selector, ``.base`` and ``.limit`` (selectors and limits read as signed 32-bit
numbers), and ``pc`` (``eip`` plus the code segment's base).
"""

from __future__ import annotations

from dataclasses import dataclass, field

_GENERAL = ("eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi",
            "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15")  # fmt: skip
_ALIASES = {"sp": "esp", "fp": "ebp"}
SEGMENTS = ("cs", "ds", "es", "ss", "fs", "gs")


def _i32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >> 31 else value


@dataclass(frozen=True)
class Segment:
    selector: int
    base: int
    limit: int


@dataclass(frozen=True)
class X86Registers:
    """One vCPU's registers (general registers in QEMU's order: eax, ecx, edx, ...)."""

    general: dict[str, int]
    eflags: int
    eip: int
    segments: dict[str, Segment] = field(default_factory=dict)

    def lookup(self, name: str) -> int | None:
        """The value of ``$name`` as QEMU's monitor evaluates it, None if unknown."""
        name = _ALIASES.get(name, name)
        if name in self.general:
            return self.general[name]
        if name == "eflags":
            return self.eflags
        if name == "eip":
            return self.eip
        if name == "pc":
            return self.eip + self.segments["cs"].base
        seg, _, part = name.partition(".")
        if seg in self.segments:
            s = self.segments[seg]
            if not part:
                return _i32(s.selector)
            if part == "base":
                return s.base
            if part == "limit":
                return _i32(s.limit)
        return None


def x86_reset_state() -> X86Registers:
    """A QEMU x86 vCPU before it ran (``-S``): real mode at 0xf000:0xfff0, EDX holding
    the CPU signature of QEMU's default model (checked on QEMU 7.2)."""
    general = dict.fromkeys(_GENERAL, 0)
    general["edx"] = 0x60FB1
    segments = {s: Segment(0, 0, 0xFFFF) for s in SEGMENTS}
    segments["cs"] = Segment(0xF000, 0xFFFF0000, 0xFFFF)
    return X86Registers(general, eflags=0x2, eip=0xFFF0, segments=segments)
