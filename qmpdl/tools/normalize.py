"""The small, explicit normaliser applied before comparing qmpdl's bytes with QEMU's.

Only what legitimately differs between two runs is masked:

* event timestamps (wall clock);
* the greeting's ``package`` (a build string);
* measured values: ``current-rate``, ``dirty-rate``, ``start-time``, ``thread-id`` and
  their HMP spellings (rates depend on what the guest does, times on when it ran), and
  ``calc-time`` in milliseconds (the measured duration);
* a migration's times, RAM counters and throttle figures in ``query-migrate`` and ``info
  migrate`` (they depend on timing; ``total``, the RAM size, is compared), and the port
  a ``tcp:HOST:0`` listener got;
* how many dirty-sync passes a migration took after its first: ``MIGRATION_PASS`` from
  2 on reads ``"pass": N``, and a run of them in a row is one line (a guest that dirties
  memory needs more passes on a slower or busier host, on QEMU as on qmpdl).

Everything else - keys, key order, separators, escapes, error texts, ``calc-time``,
``limit-rate`` - is compared byte for byte.
"""

from __future__ import annotations

import re

#: The start of a line of HMP output inside a JSON string (after an escaped line end).
_LINE = r"(?<=\\n)"

_RULES: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r'"timestamp": \{"seconds": -?\d+, "microseconds": -?\d+\}'),
        '"timestamp": {"seconds": S, "microseconds": U}',
    ),
    (re.compile(r'"(current-rate|dirty-rate|start-time|thread-id)": -?\d+'), r'"\1": N'),
    (re.compile(r"current rate -?\d+ \(MB/s\)"), "current rate N (MB/s)"),
    (re.compile(r"Dirty rate: -?\d+ \(MB/s\)"), "Dirty rate: N (MB/s)"),
    (re.compile(r"Start Time: -?\d+ \(ms\)"), "Start Time: N (ms)"),
    (re.compile(r"thread_id=\d+"), "thread_id=N"),
    (
        re.compile(
            r'"(setup-time|total-time|downtime|expected-downtime|transferred|remaining'
            r"|duplicate|normal|normal-bytes|dirty-pages-rate|mbps|dirty-sync-count"
            r"|pages-per-second|precopy-bytes|downtime-bytes|cpu-throttle-percentage"
            r'|dirty-limit-throttle-time-per-round|dirty-limit-ring-full-time)": -?[\d.e+-]+'
        ),
        r'"\1": N',
    ),
    # the same values as HMP's "info migrate" prints them
    (
        re.compile(_LINE + r"(total time|expected downtime|downtime|setup): \d+ ms"),
        r"\1: N ms",
    ),
    (
        re.compile(
            _LINE + r"(transferred ram|remaining ram|normal bytes|precopy ram|downtime ram"
            r"|xbzrle transferred): \d+ kbytes"
        ),
        r"\1: N kbytes",
    ),
    (re.compile(_LINE + r"throughput: [\d.]+ mbps"), "throughput: N mbps"),
    (re.compile(_LINE + r"(duplicate|normal|dirty pages rate): \d+ pages"), r"\1: N pages"),
    (
        re.compile(_LINE + r"(dirty sync count|pages-per-second|cpu throttle percentage): \d+"),
        r"\1: N",
    ),
    (
        re.compile(_LINE + r"(dirty-limit throttle time|dirty-limit ring full time): \d+ us"),
        r"\1: N us",
    ),
    # calc-time in milliseconds is the measured duration (8.2+)
    (
        re.compile(r'("calc-time-unit": "millisecond", "start-time": N, "calc-time": )\d+'),
        r"\1N",
    ),
    (re.compile(r'"port": "\d+"'), '"port": "N"'),
    (re.compile(r"(tcp:[^\s\\]+):\d+"), r"\1:N"),
]
_PACKAGE = re.compile(r'"package": "(?:[^"\\]|\\.)*"')
_LATER_PASS = re.compile(r'("event": "MIGRATION_PASS", "data": \{"pass": )(?!1\})\d+\}')


def normalize_line(line: str) -> str:
    for pattern, replacement in _RULES:
        line = pattern.sub(replacement, line)
    return line


def normalize_transcript(lines: list[str]) -> list[str]:
    """Every line normalised (the greeting with its package), then the later passes of a
    migration folded (see the module's list)."""
    out: list[str] = []
    for raw in lines:
        line = normalize_greeting(raw) if "greeting: " in raw[:14] else normalize_line(raw)
        line = _LATER_PASS.sub(r"\1N}", line)
        if out and line == out[-1] and '"pass": N}' in line:
            continue
        out.append(line)
    return out


def normalize_greeting(line: str) -> str:
    return _PACKAGE.sub('"package": "P"', normalize_line(line))
