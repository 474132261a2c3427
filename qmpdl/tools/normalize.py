"""The small, explicit normaliser applied before comparing qmpdl's bytes with QEMU's.

Only what legitimately differs between two runs is masked:

* event timestamps (wall clock);
* the greeting's ``package`` (a build string);
* measured values: ``current-rate``, ``dirty-rate``, ``start-time``, ``thread-id`` and
  their HMP spellings (rates depend on what the guest does, times on when it ran);
* a migration's times and RAM counters in ``query-migrate`` (they depend on timing and
  on what RAM the machine has: QEMU's counts its firmware too), and the port a
  ``tcp:HOST:0`` listener got.

Everything else - keys, key order, separators, escapes, error texts, ``calc-time``,
``limit-rate`` - is compared byte for byte.
"""

from __future__ import annotations

import re

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
            r'"(setup-time|total-time|downtime|expected-downtime|transferred|remaining|total'
            r"|duplicate|normal|normal-bytes|dirty-pages-rate|mbps|dirty-sync-count"
            r'|pages-per-second|precopy-bytes|downtime-bytes)": -?[\d.e+-]+'
        ),
        r'"\1": N',
    ),
    (re.compile(r'"port": "\d+"'), '"port": "N"'),
    (re.compile(r"(tcp:[^\s\\]+):\d+"), r"\1:N"),
]
_PACKAGE = re.compile(r'"package": "(?:[^"\\]|\\.)*"')


def normalize_line(line: str) -> str:
    for pattern, replacement in _RULES:
        line = pattern.sub(replacement, line)
    return line


def normalize_greeting(line: str) -> str:
    return _PACKAGE.sub('"package": "P"', normalize_line(line))
