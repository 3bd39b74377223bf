"""Adaptive thinking: decide per query whether thinking is worth its cost.

The plain query vector is computed anyway (the bare query is part of ``o1+query``), so a first
plain search costs milliseconds; the gate reads the scores of its top 10 and thinks only where
retrieval looks uncertain. The signals are post-retrieval query-performance predictors from
the IR literature, computed from the top-10 cosine similarities ``s_1 >= ... >= s_10``:

* ``top1`` - ``s_1``, the best match's similarity (a low maximum: nothing in the collection is
  close to the query as typed);
* ``margin`` - ``s_1 - s_2`` (a clear winner: the first hit stands out);
* ``spread`` - the standard deviation of the top 10 (Shtok et al.'s NQC without its corpus
  normaliser: a flat list means the retriever cannot tell the candidates apart);
* ``lead`` - ``s_1`` minus the mean of the top 10 (WIG-like: how far the best stands above the rest);
* ``zlead`` - ``lead / spread``, scale-free, so it transfers across encoders whose cosine
  ranges differ.

A :class:`GateProfile` says which signal, which side thinks (below or above the threshold) and
the threshold; ``o1-retriever calibrate`` fits one on data that is not the test (a budget caps
the share of queries that think) and writes it as JSON. :data:`DEFAULT_PROFILE` is what users
who never calibrate get: fitted on SciFact ``train`` (MiniLM + the offline SmolLM2 thinker).

This module only decides: it reads scores and embeds or searches nothing. The gated search (a
plain pass, the decisions, a thinking pass for the queries that think) is
:func:`o1_retriever.search.search_with_gate`, above the embedder.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from o1_retriever.errors import O1RetrieverError

SIGNALS = ("top1", "margin", "spread", "lead", "zlead")
SIDES = ("below", "above")
DEPTH = 10  # hits the signals read
PROFILE_VERSION = 1


class GateError(O1RetrieverError, ValueError):
    """A gate profile that cannot be read or used."""


def signals(scores: Sequence[float]) -> dict[str, float]:
    """Every signal from a query's top similarities (best first; the first :data:`DEPTH` are
    read). An empty list (an empty collection) gives NaN everywhere."""
    top = np.asarray(sorted(scores, reverse=True)[:DEPTH], dtype=np.float64)
    if top.size == 0:
        return {name: math.nan for name in SIGNALS}
    second = top[1] if top.size > 1 else top[0]
    spread = float(top.std())
    lead = float(top[0] - top.mean())
    return {
        "top1": float(top[0]),
        "margin": float(top[0] - second),
        "spread": spread,
        "lead": lead,
        "zlead": lead / spread if spread > 1e-9 else 0.0,
    }


@dataclass(frozen=True)
class GateDecision:
    """Whether one query thinks, and why (shown in ``--json`` and the adapters' metadata).
    ``value`` is None when the plain search found nothing (an empty collection)."""

    think: bool
    signal: str
    value: float | None
    threshold: float
    side: str

    @property
    def reason(self) -> str:
        if self.value is None:
            return "no hits: nothing to rank, no thinking"
        relation = {True: {"below": "<", "above": ">"}, False: {"below": ">=", "above": "<="}}[self.think][self.side]
        verdict = "uncertain, thinking" if self.think else "confident, no thinking"
        return f"{self.signal} {self.value:.4f} {relation} {self.threshold:.4f}: {verdict}"

    def to_dict(self) -> dict[str, Any]:
        return {"think": self.think, "signal": self.signal, "value": self.value, "threshold": self.threshold, "side": self.side, "reason": self.reason}


class _UnsetThreshold(float):
    """The threshold of a ``GateProfile()`` given none: 0.05 as in 0.1, which is not the built-in
    profile's (:data:`DEFAULT_PROFILE`). Deprecated: 0.3 will require it."""


@dataclass(frozen=True)
class GateProfile:
    """Which signal decides, on which side a query thinks, and the threshold.

    ``side="below"``: think when the signal is below ``threshold`` (e.g. a small top-1/top-2
    margin); ``"above"`` the opposite. ``info`` records where the profile came from (data,
    budget, encoder, what calibration measured) and is not used for deciding.

    The built-in profile is ``GateProfile.load()`` (:data:`DEFAULT_PROFILE`), not
    ``GateProfile()``: without a ``threshold`` the profile is a margin gate at 0.05 and a
    ``DeprecationWarning`` says so (pass ``threshold``; 0.3 will require it).
    """

    signal: str = "margin"
    threshold: float = _UnsetThreshold(0.05)
    side: str = "below"
    info: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if type(self.threshold) is _UnsetThreshold:
            warnings.warn(
                f"GateProfile() without a threshold is a margin gate at 0.05, not the built-in profile ({DEFAULT_PROFILE.signal} "
                f"{DEFAULT_PROFILE.threshold:.4f}, calibrated on SciFact train): use GateProfile.load() for the built-in one, or pass threshold=",
                DeprecationWarning,
                stacklevel=3,
            )
            object.__setattr__(self, "threshold", float(self.threshold))
        if self.signal not in SIGNALS:
            raise GateError(f"unknown gate signal {self.signal!r}; choose one of {', '.join(SIGNALS)}")
        if self.side not in SIDES:
            raise GateError(f"unknown gate side {self.side!r}; choose below or above")
        if not isinstance(self.threshold, (int, float)) or math.isnan(self.threshold):
            raise GateError(f"gate threshold must be a number, got {self.threshold!r}")

    def decide(self, scores: Sequence[float]) -> GateDecision:
        """The decision for one query from its plain top similarities. A query with no hits
        (empty collection) does not think: there is nothing to rank."""
        value = signals(scores)[self.signal]
        if math.isnan(value):
            return GateDecision(False, self.signal, None, self.threshold, self.side)
        think = value < self.threshold if self.side == "below" else value > self.threshold
        return GateDecision(bool(think), self.signal, value, self.threshold, self.side)

    # -- files ---------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"version": PROFILE_VERSION, **asdict(self)}

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")
        return path

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "gate profile") -> "GateProfile":
        if not isinstance(data, Mapping) or data.get("version") != PROFILE_VERSION:
            raise GateError(f"{where}: not a version-{PROFILE_VERSION} gate profile (write one with o1-retriever calibrate)")
        try:
            return cls(signal=data["signal"], threshold=float(data["threshold"]), side=data["side"], info=dict(data.get("info") or {}))
        except (KeyError, TypeError, ValueError) as exc:
            raise GateError(f"{where}: malformed gate profile ({exc})") from None

    @classmethod
    def load(cls, path: str | Path | None = None) -> "GateProfile":
        """A profile written by ``o1-retriever calibrate``; ``None`` or ``"default"``: the
        built-in :data:`DEFAULT_PROFILE`."""
        if path is None or str(path) in ("", "default"):
            return DEFAULT_PROFILE
        path = Path(path).expanduser()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise GateError(f"{path}: no such gate profile (write one with o1-retriever calibrate)") from None
        except (OSError, ValueError) as exc:
            raise GateError(f"{path}: unreadable gate profile ({exc})") from None
        return cls.from_dict(data, str(path))


# -- calibration ---------------------------------------------------------------------------------
@dataclass
class Calibration:
    """What :func:`calibrate` chose and what it measured on the calibration queries."""

    profile: GateProfile
    queries: int
    thought_share: float
    ndcg_dense: float
    ndcg_always: float
    ndcg_auto: float
    coverage: float  # share of thinking's changes (sum of |gain|) on the queries that think
    objective: str = "coverage"
    candidates: list[dict[str, Any]] = field(default_factory=list, repr=False)


OBJECTIVES = ("coverage", "ndcg")


def calibrate(
    scores: Mapping[str, Sequence[float]],
    dense: Mapping[str, float],
    thinking: Mapping[str, float],
    *,
    budget: float = 0.5,
    objective: str = "coverage",
    signals_to_try: Sequence[str] = SIGNALS,
) -> Calibration:
    """Fit a gate: for every signal and side, every threshold that keeps the share of thinking
    queries within ``budget``, scored by ``objective``; ties go to fewer queries thinking, then
    to the order of :data:`SIGNALS`. Deterministic.

    Objectives:

    - ``coverage`` (default): the share of everything thinking changes (the sum over queries of
      the absolute difference of nDCG@10 with and without thinking) that falls on the queries the
      gate sends to thinking. It does not depend on whether thinking helped or hurt on the
      calibration queries, only on *where* it changes rankings, so ``auto`` tracks
      always-thinking at a fraction of its cost, wherever thinking pays on average.
    - ``ndcg``: the mean nDCG@10 when the queries that think get their ``thinking`` score and the
      others their ``dense`` one; it also bets on where thinking helped on these queries, which
      only pays when the signals predict the sign of the gain.

    Args:
        scores: query id -> the plain search's top similarities.
        dense: query id -> nDCG@10 without thinking.
        thinking: query id -> nDCG@10 with thinking.
        budget: the largest share of queries allowed to think (0-1).
        objective: ``coverage`` or ``ndcg`` (see above).
        signals_to_try: the signals considered.
    """
    if not 0 < budget <= 1:
        raise GateError(f"the thinking budget must be in (0, 1], got {budget}")
    if objective not in OBJECTIVES:
        raise GateError(f"unknown calibration objective {objective!r}; choose one of {', '.join(OBJECTIVES)}")
    qids = sorted(set(scores) & set(dense) & set(thinking))
    if len(qids) < 10:
        raise GateError(f"calibration needs at least 10 queries with scores, got {len(qids)}")
    plain = np.array([dense[q] for q in qids])
    gain = np.array([thinking[q] for q in qids]) - plain
    values = {s: np.array([signals(scores[q])[s] for q in qids]) for s in signals_to_try}
    n = len(qids)
    best: tuple[float, int, int] | None = None
    chosen: GateProfile | None = None
    best_ndcg = best_coverage = 0.0
    candidates = []
    for rank, signal in enumerate(signals_to_try):
        v = values[signal]
        order = np.argsort(v, kind="stable")
        for side in SIDES:
            ranked = order if side == "below" else order[::-1]
            sorted_v = v[ranked]
            cumulative = np.concatenate([[0.0], np.cumsum(gain[ranked])])
            changed = np.concatenate([[0.0], np.cumsum(np.abs(gain[ranked]))])
            for m in range(0, int(math.floor(budget * n)) + 1):
                # the first m queries on this side think; the threshold sits between the m-th and
                # (m+1)-th value, and ties straddling it cannot be split
                if 0 < m < n and sorted_v[m - 1] == sorted_v[m]:
                    continue
                threshold = _between(sorted_v, m, side)
                ndcg = float(plain.mean() + cumulative[m] / n)
                coverage = float(changed[m] / changed[-1]) if changed[-1] > 0 else 0.0
                key = (round(coverage if objective == "coverage" else ndcg, 12), -m, -rank)
                candidates.append({"signal": signal, "side": side, "threshold": threshold, "share": m / n, "ndcg": ndcg, "coverage": coverage})
                if best is None or key > best:
                    best, chosen, best_ndcg, best_coverage = key, GateProfile(signal, threshold, side), ndcg, coverage
    assert chosen is not None and best is not None
    share = -best[1] / n
    return Calibration(chosen, n, share, float(plain.mean()), float(plain.mean() + gain.mean()), best_ndcg, best_coverage, objective, candidates)


def _between(sorted_values: np.ndarray, m: int, side: str) -> float:
    """A threshold that puts exactly the first ``m`` sorted values on the thinking side."""
    if m == 0:
        edge = sorted_values[0]
        return float(edge - 1.0) if side == "below" else float(edge + 1.0)
    if m == len(sorted_values):
        edge = sorted_values[-1]
        return float(edge + 1.0) if side == "below" else float(edge - 1.0)
    return float((sorted_values[m - 1] + sorted_values[m]) / 2)


def _default_profile() -> GateProfile:
    from importlib.resources import files

    source = files("o1_retriever") / "data" / "gate_default.json"
    return GateProfile.from_dict(json.loads(source.read_text(encoding="utf-8")), "the built-in gate profile")


#: The built-in gate: written by ``o1-retriever calibrate ../shared/data/scifact --split train
#: --thinker llamacpp:smollm2 --budget 0.5`` with the default thinking settings (one 32-token
#: thought since 0.2; coverage objective, MiniLM); ``info`` records the calibration data, the
#: settings and what it measured there. A change of the defaults calibrates it again (a test
#: checks that they agree).
DEFAULT_PROFILE = _default_profile()
