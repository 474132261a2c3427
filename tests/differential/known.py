"""Differences from QEMU 7.2 found by the corpus and not fixed yet.

Each case here is an ``xfail(strict=True)`` in ``test_differential.py``: it fails the
suite as soon as qmpdl matches QEMU there (then remove the entry).  Deliberate
differences are not listed here but in ``intended.py``.
"""

from __future__ import annotations

KNOWN: dict[str, str] = {
    "hmp.registers": (
        "HMP expressions over human-monitor-command cannot read vCPU registers: qmpdl "
        "answers 'unknown register' for $eax, $pc, $eip, $cs, where QEMU evaluates the "
        "current vCPU's registers (at reset under -S: eax 0, pc 0xfff0, cs 0xf000); "
        "needs the register state of the vCPUs behind commands/hmp.py (RegisterLookup)"
    ),
}
