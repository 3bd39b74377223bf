"""IR metrics from a standard implementation: ir-measures with its pytrec_eval provider
(trec_eval's definitions: linear gains in nDCG, ties broken by document id)."""

from __future__ import annotations

from typing import Mapping

#: report name -> ir-measures measure name
MEASURES: dict[str, str] = {"nDCG@10": "nDCG@10", "Recall@100": "R@100", "MRR@10": "RR@10"}


def evaluate_run(
    qrels: Mapping[str, Mapping[str, int]],
    run: Mapping[str, Mapping[str, float]],
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Score a run (query id -> {document id: score}) against qrels.

    Returns ``(means, per_query)``: the mean of each metric over *every* judged query (a query
    the run has no documents for counts as 0, where pytrec_eval alone would leave it out), and
    each query's values.
    """
    import ir_measures

    measures = {name: ir_measures.parse_measure(spec) for name, spec in MEASURES.items()}
    by_measure = {str(m): name for name, m in measures.items()}
    qrels = {q: {d: int(r) for d, r in docs.items()} for q, docs in qrels.items()}
    run = {q: {d: float(s) for d, s in docs.items()} for q, docs in run.items() if q in qrels and docs}
    per_query: dict[str, dict[str, float]] = {q: {name: 0.0 for name in measures} for q in qrels}
    if run:
        evaluator = ir_measures.pytrec_eval.evaluator(list(measures.values()), qrels)
        for metric in evaluator.iter_calc(run):
            per_query[metric.query_id][by_measure[str(metric.measure)]] = float(metric.value)
    n = max(1, len(per_query))
    means = {name: sum(v[name] for v in per_query.values()) / n for name in measures}
    return means, per_query
