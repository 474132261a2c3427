"""The differences from QEMU (7.2 and 10.0) that qmpdl keeps on purpose: the one list.

Each entry names a case of the corpus, the QEMU versions it differs on, says why qmpdl
answers differently, and gives qmpdl's expected normalised transcript: literal lines
after QEMU's greeting, or for ``help``/``info`` QEMU's own transcript with the listings
restricted to the commands qmpdl serves (QEMU lists about 150 commands, qmpdl only what
it serves, in QEMU's order and with QEMU's texts).  ``test_differential.py`` checks that
QEMU's golden still differs and that qmpdl gives exactly the expected transcript.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

from qmpdl.tools.targets import VERSIONS
from tests.hmp.live import served_entries

#: A transcript as :func:`qmpdl.tools.diff.normalized` gives it.
Lines = list[str]

_REPLY = re.compile(r"^(step \d+: <<< )(.*)(\r\n)$", re.DOTALL)


@dataclass(frozen=True)
class Intended:
    """Why a case differs, and what qmpdl answers there."""

    reason: str
    #: qmpdl's transcript after QEMU's greeting, literally ...
    lines: tuple[str, ...] = ()
    #: ... or computed from QEMU's golden transcript of the case
    derive: Callable[[Lines], Lines] | None = None
    #: the QEMU versions on which the case differs
    versions: tuple[str, ...] = VERSIONS

    def expected(self, qemu: Lines) -> Lines:
        if self.derive is not None:
            return self.derive(qemu)
        return [qemu[0], *self.lines]


def intended(version: str) -> dict[str, Intended]:
    """The intended differences from QEMU ``version``."""
    return {name: entry for name, entry in INTENDED.items() if version in entry.versions}


def served_listing(text: str) -> str:
    """QEMU's ``help``/``info`` output reduced to the entries of the commands qmpdl
    serves, in QEMU's order."""
    text = "\r\n" + text
    found: list[tuple[int, str]] = []
    for entry in served_entries():
        at = text.find("\r\n" + entry)
        if at >= 0:
            found.append((at, entry))
    return "".join(entry for _, entry in sorted(found))


def served_listings(qemu: Lines) -> Lines:
    """QEMU's transcript with every HMP reply reduced by :func:`served_listing`."""
    out: Lines = []
    for line in qemu:
        match = _REPLY.match(line)
        if match is None:
            out.append(line)
            continue
        reply = json.loads(match.group(2))
        if not (isinstance(reply, dict) and isinstance(reply.get("return"), str)):
            out.append(line)
            continue
        if json.dumps(reply) != match.group(2):
            raise ValueError(f"cannot re-encode {line!r} byte for byte")
        reply["return"] = served_listing(reply["return"])
        out.append(match.group(1) + json.dumps(reply) + match.group(3))
    return out


_NEGOTIATION = ('step 0: >>> {"execute": "qmp_capabilities"}', 'step 0: <<< {"return": {}}\r\n')

_LISTING = (
    "qmpdl serves only the dirty-limit/dirty-rate commands and a few basics; QEMU lists "
    "all of its ~150 HMP commands.  qmpdl's listing must be QEMU's restricted to the "
    "served commands (same texts, same order)."
)
_CRASH = (
    "QEMU 7.2 without KVM dereferences the NULL kvm_state in calc-dirty-rate's mode "
    "check and crashes (fixed in 8.1, 'kvm: Fix crash due to access uninitialized "
    "kvm_state'); qmpdl answers as QEMU 8.1+ does: without a ring, dirty-ring mode is "
    "refused and dirty-bitmap mode measures (TCG logs dirty pages too)."
)

_DISASSEMBLY = (
    "QEMU (7.2, 10.0) disassembles 'x /i' and 'xp /i' with Capstone; qmpdl has no x86 "
    "disassembler and answers as a QEMU whose target has none ('0xADDR: Asm output not "
    "supported on this arch', once per command).  Everything else about /i is QEMU's: "
    "the format is remembered (a later 'xp 0' is /i again), the size is left alone, and "
    "'Can not dump without CPU' comes first (tests/hmp golden sessions)."
)


def _hmp_exchange(step: int, line: str, reply: str) -> tuple[str, str]:
    """A ``human-monitor-command`` step of a normalised transcript."""
    request = {"execute": "human-monitor-command", "arguments": {"command-line": line}}
    return (
        f"step {step}: >>> {json.dumps(request)}",
        f"step {step}: <<< {json.dumps({'return': reply})}\r\n",
    )


INTENDED: dict[str, Intended] = {
    "hmp.help": Intended(_LISTING, derive=served_listings),
    "hmp.help-alias": Intended(_LISTING, derive=served_listings),
    "hmp.info-list": Intended(_LISTING, derive=served_listings),
    "hmp.help-info": Intended(_LISTING, derive=served_listings),
    "requests.unserved-command": Intended(
        "qmpdl serves only its commands (README, 'What is served'): any other QEMU "
        "command is CommandNotFound.",
        lines=(
            *_NEGOTIATION,
            'step 1: >>> {"execute": "query-pci", "id": 1}',
            'step 1: <<< {"id": 1, "error": {"class": "CommandNotFound", '
            '"desc": "The command query-pci has not been found"}}\r\n',
            'step 2: >>> {"execute": "query-pci", "arguments": {"x": 1}}',
            'step 2: <<< {"error": {"class": "CommandNotFound", '
            '"desc": "The command query-pci has not been found"}}\r\n',
        ),
    ),
    "hmp.memory-dump-disassembly": Intended(
        _DISASSEMBLY,
        lines=(
            *_NEGOTIATION,
            *_hmp_exchange(1, "xp /3i 0", "0x00000000: Asm output not supported on this arch\r\n"),
            *_hmp_exchange(
                2, "x /2i 0x100000", "0x00100000: Asm output not supported on this arch\r\n"
            ),
            *_hmp_exchange(3, "xp 0", "0x00000000: Asm output not supported on this arch\r\n"),
            *_hmp_exchange(4, "xp /x 0", "0000000000000000: 0x00000000\r\n"),
        ),
    ),
    "tcg.dirty-ring-mode": Intended(
        _CRASH,
        versions=("7.2",),
        lines=(
            *_NEGOTIATION,
            'step 1: >>> {"execute": "calc-dirty-rate", "arguments": {"calc-time": 1, '
            '"mode": "dirty-ring"}, "id": "crash"}',
            'step 1: <<< {"id": "crash", "error": {"class": "GenericError", '
            '"desc": "mode dirty-ring is not enabled, use other method instead."}}\r\n',
            'step 2: >>> {"execute": "query-dirty-rate"}',
            'step 2: <<< {"return": {"status": "unstarted", "sample-pages": 0, '
            '"mode": "page-sampling", "start-time": N, "calc-time": 0}}\r\n',
        ),
    ),
    "tcg.dirty-bitmap-mode": Intended(
        _CRASH,
        versions=("7.2",),
        lines=(
            *_NEGOTIATION,
            'step 1: >>> {"execute": "calc-dirty-rate", "arguments": {"calc-time": 1, '
            '"mode": "dirty-bitmap"}}',
            'step 1: <<< {"return": {}}\r\n',
            'step 2: >>> poll {"execute": "query-dirty-rate"} until /"status": "measured"/',
            'step 2: <<< {"return": {"status": "measured", "sample-pages": 0, "dirty-rate": N, '
            '"mode": "dirty-bitmap", "start-time": N, "calc-time": 1}}\r\n',
            'step 3: >>> {"execute": "human-monitor-command", "arguments": '
            '{"command-line": "info dirty_rate"}}',
            'step 3: <<< {"return": "Status: measured\\r\\nStart Time: N (ms)\\r\\n'
            "Sample Pages: 0 (per GB)\\r\\nPeriod: 1 (sec)\\r\\nMode: dirty-bitmap\\r\\n"
            'Dirty rate: N (MB/s)\\r\\n"}\r\n',
        ),
    ),
    "tcg.hmp-dirty-ring": Intended(
        _CRASH,
        versions=("7.2",),
        lines=(
            *_NEGOTIATION,
            'step 1: >>> {"execute": "human-monitor-command", "arguments": '
            '{"command-line": "calc_dirty_rate -r 1"}}',
            'step 1: <<< {"return": "Error: mode dirty-ring is not enabled, use other method '
            'instead.\\r\\n"}\r\n',
            'step 2: >>> {"execute": "query-dirty-rate"}',
            'step 2: <<< {"return": {"status": "unstarted", "sample-pages": 0, '
            '"mode": "page-sampling", "start-time": N, "calc-time": 0}}\r\n',
        ),
    ),
    "tcg.hmp-dirty-bitmap": Intended(
        _CRASH,
        versions=("7.2",),
        lines=(
            *_NEGOTIATION,
            'step 1: >>> {"execute": "human-monitor-command", "arguments": '
            '{"command-line": "calc_dirty_rate -b 1"}}',
            'step 1: <<< {"return": "Starting dirty rate measurement with period 1 '
            "seconds\\r\\n[Please use 'info dirty_rate' to check results]\\r\\n\"}\r\n",
            'step 2: >>> poll {"execute": "query-dirty-rate"} until /"status": "measured"/',
            'step 2: <<< {"return": {"status": "measured", "sample-pages": 0, "dirty-rate": N, '
            '"mode": "dirty-bitmap", "start-time": N, "calc-time": 1}}\r\n',
        ),
    ),
}
