"""Keyword and hybrid search over a :class:`~o1_retriever.index.ChromaIndex`.

* ``mode="keyword"``: BM25 over the collection's keyword index (:mod:`o1_retriever.index.keyword`).
* ``mode="hybrid"``: the dense top :data:`DEPTH` and the keyword top :data:`DEPTH` fused
  (:func:`fuse`; :data:`DEFAULT_FUSION`, each side's scores min-max normalised over its list and
  averaged, was chosen on a dev split, see docs/performance.md).
* Thoughts expand both sides: the dense side embeds them as it always does, the keyword side
  searches the query repeated :data:`QUERY_REPEAT` times followed by the thoughts (Query2doc's
  recipe for BM25: the repeats keep the query's own words weighted above the thoughts'). So
  ``thinking=True/False/"auto"`` means the same in every mode; with ``"auto"`` the gate reads the
  dense top 10, as in dense mode.
* Every hit carries its rank on each side (``Hit.ranks``: ``{"dense": 3, "keyword": None}``,
  ``None`` when that side did not return it in its top :data:`DEPTH`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from o1_retriever.errors import InvalidQueryError
from o1_retriever.index import keyword as kw
from o1_retriever.index.results import HASH_KEY, SOURCE_KEY, Hit, SearchResult
from o1_retriever.search import thinking_mode

if TYPE_CHECKING:
    from o1_retriever.gate import GateProfile

MODES = ("dense", "keyword", "hybrid")
FUSION_METHODS = ("rrf", "minmax")
DEPTH = 100  # candidates each side gives the fusion
# Query2doc repeats the query 5 times before the pseudo-document; chosen on the dev split among 1, 3, 5
# (200 SciFact train claims, SmolLM2 k=3 x 64 tokens: bm25+thinking 0.608, 0.653, 0.668; BM25 alone 0.673)
QUERY_REPEAT = 5


@dataclass(frozen=True)
class Fusion:
    """How two ranked lists become one. ``rrf``: reciprocal rank fusion, each side contributes
    ``1 / (rrf_k + rank)``; ``minmax``: each side's scores scaled to [0, 1] over its list.
    ``keyword_weight`` weighs the keyword side's part (the dense side gets ``1 - keyword_weight``)."""

    method: str = "rrf"
    rrf_k: int = 60
    keyword_weight: float = 0.5

    def __post_init__(self) -> None:
        if self.method not in FUSION_METHODS:
            raise InvalidQueryError(f"fusion must be one of {', '.join(FUSION_METHODS)}, got {self.method!r}")
        if not 0.0 <= self.keyword_weight <= 1.0:
            raise InvalidQueryError(f"keyword_weight must lie in [0, 1], got {self.keyword_weight!r}")

    @property
    def name(self) -> str:
        if self.method == "rrf":
            return f"rrf(k={self.rrf_k}, keyword weight {self.keyword_weight:g})"
        return f"minmax(keyword weight {self.keyword_weight:g})"


#: chosen on a dev split (200 seeded SciFact train claims, no thinking; benchmarks/hybrid.py):
#: nDCG@10 0.7355, against 0.7278 for the best reciprocal rank fusion (k=30) and 0.6726 / 0.6621
#: for BM25 / dense alone (docs/performance.md)
DEFAULT_FUSION = Fusion("minmax", 60, 0.5)
#: ``search --mode``'s default, chosen on the same dev split (hybrid +6.3 over BM25 there)
DEFAULT_MODE = "hybrid"


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise InvalidQueryError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    return mode


def keyword_query(query: str, thoughts: Sequence[str], repeat: int = QUERY_REPEAT) -> str:
    """The keyword side's query: the query alone, or repeated and followed by its thoughts."""
    if not thoughts:
        return query
    return " ".join([query] * repeat + list(thoughts))


def _parts(run: Mapping[str, float], fusion: Fusion) -> dict[str, float]:
    if fusion.method == "rrf":
        return {doc: 1.0 / (fusion.rrf_k + rank) for rank, doc in enumerate(run, 1)}
    if not run:
        return {}
    low, high = min(run.values()), max(run.values())
    span = high - low
    return {doc: (s - low) / span if span > 0 else 1.0 for doc, s in run.items()}


def fuse(dense: Mapping[str, float], keyword: Mapping[str, float], fusion: Fusion = DEFAULT_FUSION) -> dict[str, float]:
    """Fused ``{id: score}``, best first, of two ``{id: score}`` runs given best first (the
    one fusion ``search`` and ``eval`` share). Ties keep the better dense rank first."""
    d, kw = _parts(dense, fusion), _parts(keyword, fusion)
    w = fusion.keyword_weight
    scores = {doc: (1 - w) * d.get(doc, 0.0) + w * kw.get(doc, 0.0) for doc in dict.fromkeys([*dense, *keyword])}
    return dict(sorted(scores.items(), key=lambda item: -item[1]))


def search_modes(
    index: Any,
    queries: Sequence[str],
    k: int,
    *,
    mode: str,
    thinking: bool | str | None,
    thoughts: int | None,
    where: dict | None,
    gate: GateProfile | None,
    fusion: Fusion | None = None,
) -> list[SearchResult]:
    """Keyword or hybrid search of ``index``, a :class:`~o1_retriever.index.ChromaIndex` (see the
    module's description)."""
    check_mode(mode)
    fusion = fusion or DEFAULT_FUSION
    depth = max(k, DEPTH)
    wanted = thinking_mode(thinking)
    plain = wanted is False or (wanted is None and index.embedder.thinker is None)
    # the dense pass: the dense side of hybrid, and where thoughts (and auto's decisions) come from
    dense = None
    if mode == "hybrid" or not plain:
        dense = index.search_many(queries, depth, thinking=thinking, thoughts=thoughts, where=where, gate=gate)
    keyword_index = kw.load(index)
    texts = [keyword_query(q, r.thoughts if r.thinking else []) for q, r in zip(queries, dense)] if dense else list(queries)
    keyword_runs = keyword_index.bm25.search(texts, k=depth)
    found = _lookup(index, {doc for run in keyword_runs for doc in run}, where)
    out = []
    for i, query in enumerate(queries):
        keyword_run = {doc: s for doc, s in keyword_runs[i].items() if doc in found}  # a deleted chunk is never served
        dense_hits = {h.id: h for h in dense[i].hits} if dense else {}
        if mode == "keyword":
            ranked = dict(list(keyword_run.items())[:k])
        else:
            ranked = dict(list(fuse({d: h.score for d, h in dense_hits.items()}, keyword_run, fusion).items())[:k])
        ranks = {"dense": {d: r for r, d in enumerate(dense_hits, 1)}, "keyword": {d: r for r, d in enumerate(keyword_run, 1)}}
        if mode == "keyword":
            del ranks["dense"]
        hits = [_hit(doc, score, dense_hits, found, ranks) for doc, score in ranked.items()]
        base = dense[i] if dense else SearchResult(query, [], [], False)
        out.append(SearchResult(base.query, base.thoughts, hits, base.thinking, base.fallback, base.gate, mode=mode))
    return out


def _lookup(index: Any, ids: set[str], where: dict | None) -> dict[str, tuple[str, dict[str, Any]]]:
    """``{id: (text, metadata)}`` of the ids the collection holds now (and that match ``where``)."""
    if not ids:
        return {}
    got = index._call(lambda: index.collection.get(ids=sorted(ids), where=where, include=["documents", "metadatas"]))
    return {
        i: (t or "", {k: v for k, v in (m or {}).items() if k not in (HASH_KEY, SOURCE_KEY)})
        for i, t, m in zip(got["ids"], got["documents"] or [], got["metadatas"] or [])
    }


def _hit(doc: str, score: float, dense_hits: Mapping[str, Hit], found: Mapping[str, tuple[str, dict]], ranks: Mapping[str, Mapping[str, int]]) -> Hit:
    """A fused hit with its rank on each side (``None``: not in that side's list)."""
    text, meta = (dense_hits[doc].text, dense_hits[doc].metadata) if doc in dense_hits else found[doc]
    return Hit(doc, float(score), text, dict(meta), ranks={side: of.get(doc) for side, of in ranks.items()})
