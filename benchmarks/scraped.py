"""What the benchmarks read from ``/metrics``: the figures an operator's Prometheus would show,
printed beside the benchmark's own, so the two can be compared (docs/operations.md, "Metrics")."""

from __future__ import annotations

import math

from prometheus_client.parser import text_string_to_metric_families


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    """Every sample of one scrape: (name, labels, value)."""
    return [(s.name, dict(s.labels), s.value) for f in text_string_to_metric_families(text) for s in f.samples]


def total(scrape: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float:
    """The sum of ``name`` over the samples whose labels include ``labels``."""
    return sum(v for n, ls, v in scrape if n == name and all(ls.get(k) == x for k, x in labels.items()))


def quantile(scrape: list[tuple[str, dict[str, str], float]], name: str, q: float, **labels: str) -> float:
    """``histogram_quantile(q, sum by (le) (name_bucket{labels}))`` as Prometheus computes it: the
    bucket the rank falls in, interpolated linearly (NaN without observations)."""
    buckets: dict[float, float] = {}
    for n, ls, v in scrape:
        if n == f"{name}_bucket" and all(ls.get(k) == x for k, x in labels.items()):
            le = float(ls["le"])
            buckets[le] = buckets.get(le, 0.0) + v
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] == 0:
        return math.nan
    rank = q * buckets[bounds[-1]]
    lower, below = 0.0, 0.0
    for le in bounds:
        if buckets[le] >= rank:
            if math.isinf(le):
                return lower  # Prometheus answers the highest finite bound
            return lower + (le - lower) * (rank - below) / max(buckets[le] - below, 1e-12)
        lower, below = le, buckets[le]
    return lower
