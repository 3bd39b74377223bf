"""Paired comparisons of two systems over the same queries (scipy's bootstrap)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping


@dataclass(frozen=True)
class PairedDifference:
    """Mean per-query difference ``b - a`` of a metric, in points (x100), with a paired
    bootstrap confidence interval, and how many queries went each way."""

    mean: float
    low: float
    high: float
    queries: int
    wins: int
    losses: int

    def __str__(self) -> str:
        return f"{self.mean:+.1f} [{self.low:+.1f}, {self.high:+.1f}]"

    def to_dict(self) -> dict[str, float | int]:
        return {"mean": self.mean, "low": self.low, "high": self.high, "queries": self.queries, "wins": self.wins, "losses": self.losses}


def paired_difference(
    a: Mapping[str, Mapping[str, float]],
    b: Mapping[str, Mapping[str, float]],
    metric: str = "nDCG@10",
    *,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> PairedDifference:
    """Compare per-query scores (query id -> {metric: value}) of system ``b`` against ``a`` on
    the queries both have: the mean difference and a percentile bootstrap interval over
    queries (resampling the per-query differences keeps the pairing). Seeded: the same inputs
    give the same interval."""
    import numpy as np
    from scipy.stats import bootstrap

    common = sorted(set(a) & set(b))
    if not common:
        raise ValueError("the two systems share no query")
    diffs = np.array([b[q][metric] - a[q][metric] for q in common], dtype=np.float64) * 100
    if len(diffs) < 2 or np.all(diffs == diffs[0]):
        low = high = float(diffs.mean())
    else:
        ci = bootstrap(
            (diffs,), np.mean, confidence_level=confidence, n_resamples=resamples, method="percentile", random_state=np.random.default_rng(seed)
        ).confidence_interval
        low, high = float(ci.low), float(ci.high)
    return PairedDifference(float(diffs.mean()), low, high, len(common), int((diffs > 0).sum()), int((diffs < 0).sum()))
