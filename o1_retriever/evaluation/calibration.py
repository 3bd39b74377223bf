"""Fit the adaptive-thinking gate on labelled queries (``o1-retriever calibrate``).

The calibration set is evaluated twice through :func:`~o1_retriever.evaluation.retrieval.evaluate_retrieval`
(plain dense retrieval and always thinking, exact search); each query's plain top-10
similarities give the gate's signals, and the per-query nDCG@10 of both runs says where thinking
changed the ranking and whether for the better. :func:`o1_retriever.gate.calibrate` then picks
the signal, side and threshold that best meet the objective (``coverage`` by default) within the
thinking budget. Calibrate on data you will not report on (a ``train`` split); the profile
records what it was fitted on.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from o1_retriever.config import EmbedderConfig
from o1_retriever.embedder import ThinkingEmbedder
from o1_retriever.evaluation.beir import BeirDataset
from o1_retriever.evaluation.retrieval import EvaluationError, RetrievalResults, System, evaluate_retrieval
from o1_retriever.gate import DEPTH, OBJECTIVES, Calibration, GateError, calibrate


def calibrate_gate(
    dataset: BeirDataset,
    config: EmbedderConfig | None = None,
    *,
    budget: float = 0.5,
    objective: str = "coverage",
    embedder: ThinkingEmbedder | None = None,
    db: str | Path | None = None,
    show_progress: bool = True,
) -> tuple[Calibration, RetrievalResults]:
    """Evaluate ``dataset`` without and with thinking (``config.aggregation``) and fit a gate
    for ``budget`` (the largest share of queries that may think). Returns the calibration (its
    ``profile.info`` says what it was fitted on and what it measured there) and the two runs.
    ``objective``: see :func:`o1_retriever.gate.calibrate`."""
    if objective not in OBJECTIVES:  # before minutes of evaluation
        raise GateError(f"unknown calibration objective {objective!r}; choose one of {', '.join(OBJECTIVES)}")
    if not 0 < budget <= 1:
        raise GateError(f"the thinking budget must be in (0, 1], got {budget}")
    config = config or EmbedderConfig()
    aggregation = embedder.aggregation.value if embedder is not None else config.aggregation
    always = System(f"thinking[{aggregation}]", "thinking", aggregation)
    results = evaluate_retrieval(dataset, [System("dense", "dense"), always], config, embedder=embedder, db=db, show_progress=show_progress)
    dense, thinking = results.system("dense"), results.system(always.name)
    if thinking.failed:  # a gate fitted on no thinking would say nothing
        raise EvaluationError(f"cannot calibrate: {always.name} failed ({thinking.failed})")
    scores = {q: list(hits.values())[:DEPTH] for q, hits in dense.run.items()}
    fitted = calibrate(
        scores,
        {q: m["nDCG@10"] for q, m in dense.per_query.items()},
        {q: m["nDCG@10"] for q, m in thinking.per_query.items()},
        budget=budget,
        objective=objective,
    )
    settings = results.settings
    info = {
        "calibrated_on": {"dataset": dataset.name, "split": dataset.split, "queries": fitted.queries},
        "budget": budget,
        "objective": objective,
        "encoder": settings["encoder"],
        "thinker": settings["thinker"],
        "thoughts": settings["thoughts"],
        "sampling": settings["sampling"],
        "aggregation": aggregation,
        "measured": {
            "thought_share": fitted.thought_share,
            "ndcg_dense": fitted.ndcg_dense,
            "ndcg_always": fitted.ndcg_always,
            "ndcg_auto": fitted.ndcg_auto,
            "coverage": fitted.coverage,
        },
    }
    fitted.profile = replace(fitted.profile, info=info)
    return fitted, results
