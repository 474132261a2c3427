"""The throttle's quality goals of issue #6, as a check of per-period rates.

For one phase (a quota held for ``n`` periods, numbered from 1 = the first period
measured after the quota was set, the workload restarted, ...):

* every mean of 3 consecutive periods from the 3rd period on lies within +-10 % of the
  quota (``settled_from``: the first period from which that holds for every window);
* the mean of the 10 periods after the first such window (periods 6-15) lies within
  +-5 %;
* the per-period standard deviation from the 3rd period on is at most 10 % of the quota
  or one ring's worth per period, whichever is larger.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

#: Periods not judged after a change (the first measures the old state, the second the
#: first adjustment).
FREE_PERIODS = 2
WINDOW = 3
WINDOW_TOLERANCE = 0.10
LONG = 10
LONG_TOLERANCE = 0.05
SD_SHARE = 0.10


@dataclass(frozen=True)
class GoalReport:
    """How one phase's rates measure up (errors relative to the quota)."""

    quota: float
    periods: int
    #: first period from which every 3-period mean is within +-10 % (None: never)
    settled_from: int | None
    #: largest |3-period mean - quota| / quota over the windows from period 3 on
    worst_window_error: float
    #: mean of periods 6-15 and its error (None if the phase is shorter)
    long_mean: float | None
    long_error: float | None
    #: mean and population sd of periods 3..n
    settled_mean: float
    sd: float
    sd_limit: float

    @property
    def windows_met(self) -> bool:
        return self.worst_window_error <= WINDOW_TOLERANCE

    @property
    def long_met(self) -> bool:
        return self.long_error is not None and self.long_error <= LONG_TOLERANCE

    @property
    def sd_met(self) -> bool:
        return self.sd <= self.sd_limit

    @property
    def met(self) -> bool:
        return self.windows_met and self.long_met and self.sd_met

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "windows_met": self.windows_met,
            "long_met": self.long_met,
            "sd_met": self.sd_met,
            "met": self.met,
        }

    def describe(self) -> str:
        long = f"{self.long_error:+.1%}" if self.long_error is not None else "n/a"
        return (
            f"quota {self.quota:g}: settled from period {self.settled_from}, worst 3-mean "
            f"{self.worst_window_error:.1%}, 10-mean {long}, mean {self.settled_mean:.1f} "
            f"sd {self.sd:.1f} (limit {self.sd_limit:.1f})"
        )


def judge(
    rates: Sequence[float], quota: float, ring_mib: float, period_s: float = 1.0
) -> GoalReport:
    """Check one phase's per-period rates (``rates[0]`` is period 1) against the goals."""
    n = len(rates)
    first = FREE_PERIODS  # index of period 3
    windows = [
        abs(statistics.mean(rates[i : i + WINDOW]) - quota) / quota
        for i in range(first, n - WINDOW + 1)
    ]
    settled_from = None
    for start in range(n - WINDOW + 1):
        if all(
            abs(statistics.mean(rates[i : i + WINDOW]) - quota) / quota <= WINDOW_TOLERANCE
            for i in range(start, n - WINDOW + 1)
        ):
            settled_from = start + 1
            break
    long_start = first + WINDOW
    long = rates[long_start : long_start + LONG]
    long_mean = statistics.mean(long) if len(long) == LONG else None
    settled = rates[first:] or rates
    return GoalReport(
        quota=quota,
        periods=n,
        settled_from=settled_from,
        worst_window_error=max(windows) if windows else float("inf"),
        long_mean=long_mean,
        long_error=abs(long_mean - quota) / quota if long_mean is not None else None,
        settled_mean=statistics.mean(settled),
        sd=statistics.pstdev(settled),
        sd_limit=max(SD_SHARE * quota, ring_mib / period_s),
    )
