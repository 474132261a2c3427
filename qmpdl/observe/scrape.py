"""Reading a ``--metrics`` endpoint back: one scrape, parsed with prometheus-client's
own parser, as samples keyed by name and labels (``qmpdl-top --metrics`` and the tests)."""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class Scrape:
    """The samples of one scrape: ``(sample name, sorted label items) -> value``."""

    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float]
    #: metric family name -> type (gauge, counter, ...)
    types: dict[str, str]

    def value(self, name: str, **labels: str) -> float | None:
        return self.samples.get((name, tuple(sorted(labels.items()))))

    def per_vcpu(self, name: str) -> dict[int, float]:
        """``name``'s samples by their ``cpu_index`` label."""
        out = {}
        for (sample, labels), value in self.samples.items():
            if sample == name:
                cpu = dict(labels).get("cpu_index")
                if cpu is not None:
                    out[int(cpu)] = value
        return out


def parse(text: str) -> Scrape:
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    types = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return Scrape(samples, types)


def metrics_url(where: str) -> str:
    """``HOST:PORT`` or a URL -> the URL to scrape."""
    if "://" in where:
        return where
    return f"http://{where}/metrics"


def scrape(where: str, timeout: float = 5.0) -> Scrape:
    """Fetch and parse ``where`` (raises OSError / ValueError)."""
    with urllib.request.urlopen(metrics_url(where), timeout=timeout) as reply:
        return parse(reply.read().decode())
