"""The keyword systems of ``eval``: ``bm25``, ``bm25+thinking``, ``hybrid`` and ``hybrid+thinking``.

They search exactly as ``o1-retriever search --mode keyword|hybrid`` does: the same BM25
(:class:`~o1_retriever.index.keyword.BM25`), the same keyword query with thoughts
(:func:`~o1_retriever.index.hybrid.keyword_query`) and the same fusion
(:func:`~o1_retriever.index.hybrid.fuse`) of the dense and keyword top ``k``. The dense side is
the exact search of the :class:`~o1_retriever.evaluation.retrieval.DocumentStore`.

Latency per query: each side's batched search divided evenly, plus the fusion, plus (the
thinking systems) the generation time of the query's own thoughts in this run, as for ``thinking``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from o1_retriever.evaluation.metrics import evaluate_run
from o1_retriever.evaluation.thinking import Generation, failure_reason
from o1_retriever.index.hybrid import DEFAULT_FUSION, QUERY_REPEAT, Fusion, fuse, keyword_query
from o1_retriever.index.keyword import BM25

if TYPE_CHECKING:
    from o1_retriever.embedder import ThinkingEmbedder
    from o1_retriever.evaluation.beir import BeirDataset

KEYWORD_KINDS = ("bm25", "bm25+thinking", "hybrid", "hybrid+thinking")


def corpus_bm25(dataset: BeirDataset, store: Any, show_progress: bool) -> BM25:
    """BM25 over the corpus (the store's texts when there is one: the same chunks as dense)."""
    if store is not None:
        ids, docs = store.ids, [store.texts[i] for i in store.ids]
    else:
        corpus = {d.id: d.text for d in dataset.documents()}
        ids, docs = list(corpus), list(corpus.values())
    return BM25(ids, docs, show_progress=show_progress)


def keyword_system(
    system: Any,
    dataset: BeirDataset,
    bm25: BM25,
    texts: list[str],
    qids: list[str],
    k: int,
    *,
    embedder: ThinkingEmbedder | None = None,
    store: Any = None,
    generation: Any = None,
    fusion: Fusion = DEFAULT_FUSION,
    repeat: int = QUERY_REPEAT,
) -> dict[str, Any]:
    """One keyword system (``system``, a :class:`~o1_retriever.evaluation.retrieval.System` whose
    ``kind`` is in :data:`KEYWORD_KINDS`) over every query: the fields of its
    :class:`~o1_retriever.evaluation.retrieval.SystemResult` (``store`` is the run's
    ``DocumentStore``, ``generation`` what its thinking phase generated)."""
    thinking = system.kind.endswith("+thinking")
    thoughts: list[list[str]] = [[] for _ in texts]
    fallbacks = 0
    dense_seconds = 0.0
    dense_runs: list[dict[str, float]] = []
    if system.kind.startswith("hybrid"):
        assert embedder is not None and store is not None
        embedder.forget_vectors()  # every system pays for its own encoding
        start = time.perf_counter()
        embedded = embedder.embed_queries(texts, thinking=thinking, aggregation=system.aggregation, return_thoughts=True)
        dense_runs = store.search(np.stack([e.vector for e in embedded]), k=k)
        dense_seconds = time.perf_counter() - start
        thoughts = [e.thoughts if e.thinking else [] for e in embedded]
        fallbacks = sum(e.fallback for e in embedded)
    elif thinking:
        assert embedder is not None
        thoughts = _thoughts(embedder, texts)
        fallbacks = sum(not t for t in thoughts)
    start = time.perf_counter()
    keyword_runs = bm25.search([keyword_query(q, t, repeat) for q, t in zip(texts, thoughts)], k=k)
    runs = [dict(list(fuse(d, kw, fusion).items())[:k]) for d, kw in zip(dense_runs, keyword_runs)] if dense_runs else keyword_runs
    each = 1000 * (time.perf_counter() - start + dense_seconds) / max(1, len(qids))
    latencies = [each + (generation.ms(t) if thinking and generation is not None else 0.0) for t in texts]
    run = dict(zip(qids, runs))
    metrics, per_query = evaluate_run(dataset.qrels, run)
    n = max(1, len(qids))
    thought = {q: bool(t) for q, t in zip(qids, thoughts)}
    return dict(
        name=system.name,
        # as for the dense thinking systems: all queries fell back, so no figures of its own
        failed=failure_reason(thought, len(qids) if thinking else 0, generation or Generation()),
        metrics=metrics,
        latencies_ms=latencies,
        thoughts_per_query=sum(len(t) for t in thoughts) / n,
        generated_per_query=(generation.thoughts / n) if thinking and generation is not None else 0.0,
        fallbacks=fallbacks,
        per_query=per_query,
        aggregation=system.aggregation if thinking else None,
        thought=thought,
        run=run,
        thoughts=dict(zip(qids, thoughts)) if thinking else {},
    )


def _thoughts(embedder: ThinkingEmbedder, texts: list[str]) -> list[list[str]]:
    """Each query's thoughts (from the run's thought cache); ``[]`` where the thinker failed
    (the query then searches plainly, as ``search`` falls back)."""
    from o1_retriever.errors import O1RetrieverError

    try:
        return embedder.think(texts)
    except O1RetrieverError:
        if embedder.strict:
            raise
        return [[] for _ in texts]


def keyword_references(name: str, names: dict[str, Any]) -> dict[str, Any]:
    """The systems a keyword system is compared with (paired intervals), besides ``dense``:
    ``bm25`` for every keyword system, and the same system without thinking for the thinking ones."""
    refs = {}
    if name.startswith("hybrid+thinking") and "hybrid" in names:  # first: the report's second column shows it
        refs["hybrid"] = names["hybrid"]
    if name != "bm25" and name.split("[")[0] in KEYWORD_KINDS and "bm25" in names:
        refs["bm25"] = names["bm25"]
    return refs
