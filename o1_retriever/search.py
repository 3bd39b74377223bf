"""The query side of a search: how ``thinking=`` is spelled (:func:`thinking_mode`) and adaptive
thinking (:func:`search_with_gate`).

Layers, one way: this module sits above the embedder (:mod:`o1_retriever.embedder`, which
embeds queries with or without thoughts) and the gate (:mod:`o1_retriever.gate`, which only
decides from a plain search's scores), and below the stores that search vectors: the Chroma
index (:meth:`ChromaIndex.search_many <o1_retriever.index.ChromaIndex.search_many>`) and
``eval``'s exact document store each hand :func:`search_with_gate` their own vector search.
Nothing here imports a store, and the gate imports nothing of this.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Generic, Sequence, TypeVar

import numpy as np

from o1_retriever.errors import InvalidQueryError
from o1_retriever.gate import DEPTH, GateDecision, GateProfile

if TYPE_CHECKING:
    from o1_retriever.embedder import QueryEmbedding, ThinkingEmbedder

#: one query's hits as a store returns them (a list of ``Hit`` for Chroma, ``{id: score}`` for
#: ``eval``'s exact store)
R = TypeVar("R")

#: a vector search: each vector's top ``n`` hits, best first (``search(vectors, n)``)
VectorSearch = Callable[[list[np.ndarray], int], list[R]]

THINKING_MODES = ("auto", "always", "never")


def thinking_mode(thinking: bool | str | None) -> bool | str | None:
    """``True``/``"always"`` -> True, ``False``/``"never"`` -> False, ``"auto"``, or None (think
    when the embedder has a thinker); anything else is an :class:`InvalidQueryError`."""
    if thinking is None or isinstance(thinking, bool):
        return thinking
    if thinking in THINKING_MODES:
        return {"always": True, "never": False}.get(thinking, "auto")
    raise InvalidQueryError(f"thinking must be True, False, None or one of {', '.join(THINKING_MODES)}; got {thinking!r}")


@dataclass
class GatedSearch(Generic[R]):
    """What :func:`search_with_gate` did for each query: the query embedding used (plain, or
    with thoughts), the hits searched with it, the gate's decision, and the seconds of its two
    phases (the plain one for every query, the thinking one for those the gate sent on)."""

    embeddings: list[QueryEmbedding]
    hits: list[R]
    decisions: list[GateDecision]
    plain_seconds: float
    thinking_seconds: float


def search_with_gate(
    embedder: ThinkingEmbedder,
    queries: Sequence[str],
    search: VectorSearch[R],
    scores: Callable[[R], Sequence[float]],
    gate: GateProfile,
    *,
    k: int = DEPTH,
    thoughts: int | None = None,
    aggregation: str | None = None,
) -> GatedSearch[R]:
    """Adaptive thinking, the one implementation ``ChromaIndex.search(thinking="auto")`` and
    ``eval``'s auto system share: embed the queries plainly, ``search`` the vectors
    (``search(vectors, n)`` returns each vector's top ``n`` hits, best first, ``n`` being ``k``
    (hits per query) or :data:`~o1_retriever.gate.DEPTH` if more; ``scores`` gives a hit list's
    similarities), let ``gate`` decide from the top :data:`~o1_retriever.gate.DEPTH`, then embed
    the chosen queries with ``thoughts`` thoughts each (``embedder.embed_queries``; the bare
    query's vector is reused) and search again. A query's hits may be longer than ``k``: the
    caller cuts."""
    depth = max(k, DEPTH)
    start = time.perf_counter()
    embeddings: list[QueryEmbedding] = embedder.embed_queries(list(queries), thinking=False, return_thoughts=True)
    hits = search([e.vector for e in embeddings], depth)
    decisions = [gate.decide(list(scores(h))[:DEPTH]) for h in hits]
    plain_seconds = time.perf_counter() - start
    chosen = [i for i, d in enumerate(decisions) if d.think]
    start = time.perf_counter()
    if chosen:
        deep: list[QueryEmbedding] = embedder.embed_queries(
            [queries[i] for i in chosen], thinking=True, thoughts=thoughts, aggregation=aggregation, return_thoughts=True
        )
        for i, e, h in zip(chosen, deep, search([e.vector for e in deep], depth)):
            embeddings[i], hits[i] = e, h
    return GatedSearch(embeddings, hits, decisions, plain_seconds, time.perf_counter() - start)
