"""Retrieval evaluation: several systems over one shared document index, scored exactly.

* The documents of a (dataset, encoder) pair are embedded once into a persistent Chroma
  collection (core :class:`~o1_retriever.index.ChromaIndex`, under
  ``$O1_RETRIEVER_HOME/eval/chroma``); later runs only re-embed what changed.
* Chroma's HNSW search is approximate; evaluation scores every stored vector instead (exact
  cosine, the vectors are unit length), so figures are exact and reproducible.
* Systems: ``bm25`` (bm25s), ``dense`` (same encoder, no thinking), ``hyde`` (thoughts only),
  ``thinking`` (once per aggregation asked for: ``thinking[o1]``, ``thinking[o1+query]``),
  ``auto`` (``thinking[auto]``: a :class:`~o1_retriever.gate.GateProfile` reads each query's plain
  top-10 and thinks only where retrieval looks uncertain), and ``unified`` / ``unified-dense``
  when a unified model is given; ``bm25+thinking``, ``hybrid`` and ``hybrid+thinking``
  (:mod:`o1_retriever.evaluation.hybrid`: keyword search and its fusion with dense, as
  ``search --mode keyword|hybrid``; thinking with the first aggregation).
* Latency is per query: the batched encoding and search divided evenly, plus the generation
  time of the query's own thoughts in this run (thoughts read from the cache cost nothing; a
  llama.cpp thinker generates one query at a time, so its per-query times are exact). Each
  system reports the mean and the 95th percentile, and the share of queries that thought.
* Thoughts are generated once per run (:mod:`o1_retriever.evaluation.thinking`); every thinking
  system then reads them from the thought cache. A thinker that cannot think is refused before
  the documents are embedded; a thinking system whose queries all fell back is marked failed
  with the reason (``SystemResult.failed``), never reported with the plain query's figures.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from o1_retriever.config import EmbedderConfig
from o1_retriever.embedder import ThinkingEmbedder
from o1_retriever.errors import O1RetrieverError
from o1_retriever.evaluation.beir import BeirDataset
from o1_retriever.evaluation.hybrid import KEYWORD_KINDS, corpus_bm25, keyword_references, keyword_system
from o1_retriever.evaluation.metrics import evaluate_run
from o1_retriever.evaluation.thinking import Generation, counting, failure_reason, think_all

if TYPE_CHECKING:
    from o1_retriever.gate import GateProfile

log = logging.getLogger(__name__)

SYSTEMS = ("bm25", "dense", "hyde", "thinking", "auto", "bm25+thinking", "hybrid", "hybrid+thinking")
THINKING_KINDS = {"thinking", "auto", "bm25+thinking", "hybrid+thinking"}
STORE_KINDS = {"dense", "thinking", "auto", "hybrid", "hybrid+thinking"}  # those that search the document vectors
AGGREGATIONS = ("o1", "o1+query", "hyde")


class EvaluationError(O1RetrieverError, ValueError):
    """Bad evaluation settings (unknown system, aggregation, ...)."""


@dataclass
class System:
    """One system of a run. ``kind`` is bm25 | dense | thinking | auto | unified | unified-dense |
    bm25+thinking | hybrid | hybrid+thinking."""

    name: str
    kind: str
    aggregation: str | None = None


def parse_systems(systems: str | Sequence[str], aggregations: str | Sequence[str] = "o1+query", unified: bool = False) -> list[System]:
    """``"bm25,dense,hyde,thinking,auto"`` -> systems; ``thinking`` becomes one system per
    aggregation; ``auto`` (adaptive thinking: the gate decides per query) uses the first one."""
    names = [s.strip() for s in (systems.split(",") if isinstance(systems, str) else systems) if s.strip()]
    aggs = [a.strip() for a in (aggregations.split(",") if isinstance(aggregations, str) else aggregations) if a.strip()]
    unknown = [s for s in names if s not in SYSTEMS]
    if unknown:
        raise EvaluationError(f"unknown system {unknown[0]!r}; choose from {', '.join(SYSTEMS)}")
    bad = [a for a in aggs if a not in AGGREGATIONS]
    if bad:
        raise EvaluationError(f"unknown aggregation {bad[0]!r}; choose from {', '.join(AGGREGATIONS)}")
    if {"thinking", "auto", "bm25+thinking", "hybrid+thinking"} & set(names) and not aggs:
        raise EvaluationError("the thinking and auto systems need at least one aggregation")
    out: list[System] = []
    for name in dict.fromkeys(names):
        if name == "bm25":
            out.append(System("bm25", "bm25"))
        elif name == "dense":
            out.append(System("dense", "dense"))
        elif name == "hyde":
            out.append(System("hyde", "thinking", "hyde"))
        elif name == "auto":
            out.append(System("thinking[auto]", "auto", aggs[0]))
        elif name in ("bm25+thinking", "hybrid", "hybrid+thinking"):
            out.append(System(name, name, aggs[0] if name.endswith("thinking") else None))
        else:
            out.extend(System(f"thinking[{a}]", "thinking", a) for a in dict.fromkeys(aggs))
    if unified:
        out += [System("unified-dense", "unified-dense"), System("unified", "unified", "o1")]
    if not out:
        raise EvaluationError("no systems to evaluate")
    return out


# -- the shared document index -------------------------------------------------------------------
def collection_name(dataset: BeirDataset, embedder: ThinkingEmbedder) -> str:
    """One collection per (dataset folder, encoder fingerprint)."""
    key = json.dumps({"corpus": str(dataset.corpus_path.resolve()), "encoder": embedder.fingerprint()}, sort_keys=True)
    slug = re.sub(r"[^a-zA-Z0-9._-]+", "-", dataset.name).strip("-._")[:40] or "beir"
    return f"eval-{slug}-{hashlib.sha1(key.encode()).hexdigest()[:12]}"


def eval_db() -> Path:
    from o1_retriever.models import home

    return home() / "eval" / "chroma"


class DocumentStore:
    """The corpus embedded once in Chroma, searched exactly (cosine over every stored vector)."""

    def __init__(self, dataset: BeirDataset, embedder: ThinkingEmbedder, *, db: str | Path | None = None, show_progress: bool = True) -> None:
        from o1_retriever.index import ChromaIndex

        self.index = ChromaIndex(collection_name(dataset, embedder), embedder, path=db or eval_db())
        ids: list[str] = []
        texts: dict[str, str] = {}

        def documents():
            for doc in dataset.documents():
                ids.append(doc.id)
                texts[doc.id] = doc.text
                yield doc

        self.stats = self.index.add(documents(), show_progress=show_progress)
        self.texts = texts
        self.ids = list(dict.fromkeys(ids))
        self.matrix = self._load(self.ids)

    def _load(self, ids: list[str], page: int = 4096) -> np.ndarray:
        rows: dict[str, Any] = {}
        for start in range(0, len(ids), page):
            got = self.index.collection.get(ids=ids[start : start + page], include=["embeddings"])
            rows.update(zip(got["ids"], got["embeddings"]))
        missing = [i for i in ids if i not in rows]
        if missing:
            raise O1RetrieverError(f"{len(missing)} documents are missing from collection {self.index.name!r} (first: {missing[0]!r})")
        return np.asarray([rows[i] for i in ids], dtype=np.float32)

    def search(self, vectors: np.ndarray, k: int = 100) -> list[dict[str, float]]:
        """Exact top-``k`` {document id: cosine} for each query vector."""
        return exact_search(vectors, self.matrix, self.ids, k)


def exact_search(vectors: np.ndarray, matrix: np.ndarray, ids: Sequence[str], k: int = 100, chunk: int = 256) -> list[dict[str, float]]:
    """Exact top-``k`` {document id: cosine} of each query vector against every row of
    ``matrix`` (unit vectors, one per id), best first."""
    k = min(k, len(ids))
    out: list[dict[str, float]] = []
    for start in range(0, len(vectors), chunk):
        scores = np.asarray(vectors[start : start + chunk], dtype=np.float32) @ matrix.T
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        for row, cand in zip(scores, top):
            order = cand[np.argsort(-row[cand], kind="stable")]
            out.append({ids[j]: float(row[j]) for j in order})
    return out


# -- results -------------------------------------------------------------------------------------
@dataclass
class SystemResult:
    name: str
    metrics: dict[str, float]
    latencies_ms: list[float]  # one per query, in query order
    thoughts_per_query: float
    generated_per_query: float
    fallbacks: int
    per_query: dict[str, dict[str, float]]
    aggregation: str | None = None  # of the thinking systems
    thought: dict[str, bool] = field(default_factory=dict)  # query id -> thought about it
    decisions: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)  # auto: the gate's
    run: dict[str, dict[str, float]] = field(default_factory=dict, repr=False)
    thoughts: dict[str, list[str]] = field(default_factory=dict, repr=False)
    failed: str | None = None  # why a thinking system has no result (its queries all fell back)

    @property
    def latency_ms(self) -> float:
        """Mean latency per query."""
        return float(np.mean(self.latencies_ms)) if self.latencies_ms else 0.0

    @property
    def latency_p95_ms(self) -> float:
        return float(np.percentile(self.latencies_ms, 95)) if self.latencies_ms else 0.0

    @property
    def thought_share(self) -> float:
        """Share of the queries whose vector used thoughts."""
        return sum(self.thought.values()) / len(self.thought) if self.thought else 0.0

    def to_dict(self) -> dict[str, Any]:
        if self.failed:  # its figures would be the plain query's: none are written
            return {"failed": self.failed, "thought_share": self.thought_share, "fallbacks": self.fallbacks}
        out = {
            "metrics": self.metrics,
            "latency_ms": self.latency_ms,
            "latency_p95_ms": self.latency_p95_ms,
            "thought_share": self.thought_share,
            "thoughts_per_query": self.thoughts_per_query,
            "generated_per_query": self.generated_per_query,
            "fallbacks": self.fallbacks,
            "per_query": self.per_query,
        }
        if self.decisions:
            out["gate"] = self.decisions
        return out


@dataclass
class RetrievalResults:
    dataset: str
    split: str
    queries: int
    settings: dict[str, Any]
    systems: list[SystemResult]

    def system(self, name: str) -> SystemResult:
        for s in self.systems:
            if s.name == name:
                return s
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "split": self.split,
            "queries": self.queries,
            "settings": self.settings,
            "systems": {s.name: s.to_dict() for s in self.systems},
            "comparisons": self.comparisons,
        }

    @cached_property
    def comparisons(self) -> dict[str, dict[str, Any]]:
        """Each system's nDCG@10 against ``dense`` (and ``thinking[auto]`` against always
        thinking with the same aggregation): mean difference in points with a paired bootstrap
        95 % interval."""
        from o1_retriever.evaluation.stats import paired_difference

        names = {s.name: s for s in self.systems if not s.failed}
        out: dict[str, dict[str, Any]] = {}
        for s in names.values():
            refs = {}
            if "dense" in names and s.name != "dense":
                refs["dense"] = names["dense"]
            if s.name == "thinking[auto]":
                always = names.get(f"thinking[{s.aggregation}]")
                if always is not None:
                    refs[always.name] = always
            if s.name == "unified" and "unified-dense" in names:
                refs["unified-dense"] = names["unified-dense"]
            refs.update(keyword_references(s.name, names))
            comparison = {ref: paired_difference(r.per_query, s.per_query).to_dict() for ref, r in refs.items() if r.per_query and s.per_query}
            if comparison:
                out[s.name] = comparison
        return out


# -- the runner ----------------------------------------------------------------------------------
def evaluate_retrieval(
    dataset: BeirDataset,
    systems: Sequence[System],
    config: EmbedderConfig | None = None,
    *,
    embedder: ThinkingEmbedder | None = None,
    unified: str | None = None,
    gate: GateProfile | None = None,
    store: DocumentStore | None = None,
    k: int = 100,
    db: str | Path | None = None,
    show_progress: bool = True,
) -> RetrievalResults:
    """Run every system on the dataset's queries and score it.

    ``embedder`` (or one built from ``config``) provides the encoder for dense/hyde/thinking;
    ``unified`` names a unified model for the ``unified*`` systems; ``gate`` is the profile of
    the ``auto`` system (default: the built-in one); ``store`` reuses a
    :class:`DocumentStore` of the same dataset and encoder (runs over several settings).
    """
    from o1_retriever.gate import GateProfile

    config = config or EmbedderConfig()
    gate = gate or GateProfile.load()
    qids = list(dataset.queries)
    texts = [dataset.queries[q] for q in qids]
    kinds = {s.kind for s in systems}
    results: list[SystemResult] = []
    needs_thinker = bool(kinds & THINKING_KINDS)
    with tempfile.TemporaryDirectory(prefix="o1-eval-") as tmp, ExitStack() as stack:
        if embedder is None and kinds & (STORE_KINDS | THINKING_KINDS):
            embedder = ThinkingEmbedder.from_config(config if needs_thinker else replace(config, thinker="none"))
        if needs_thinker and embedder is not None:
            embedder.check_thinker()  # a thinker that cannot think is refused before the corpus is embedded
        if kinds & STORE_KINDS and store is None:
            assert embedder is not None
            store = DocumentStore(dataset, embedder, db=db, show_progress=show_progress)
        counter = stack.enter_context(counting(embedder, Path(tmp))) if (embedder is not None and needs_thinker) else None
        generation = Generation()
        if needs_thinker:
            if counter is None:
                raise EvaluationError("the hyde/thinking/auto/+thinking systems need a thinker (got --thinker none)")
            phase = think_all(embedder, texts, show_progress=show_progress)
            generation = Generation(dict(counter.seconds), counter.generated, phase.error)  # what this run generated, once
        bm25 = corpus_bm25(dataset, store, show_progress) if kinds & set(KEYWORD_KINDS) else None
        for system in systems:
            if system.kind in KEYWORD_KINDS:
                results.append(SystemResult(**keyword_system(system, dataset, bm25, texts, qids, k, embedder=embedder, store=store, generation=generation)))
            elif system.kind in ("dense", "thinking"):
                assert embedder is not None and store is not None
                results.append(_dense(system, dataset, embedder, store, texts, qids, k, generation))
            elif system.kind == "auto":
                assert embedder is not None and store is not None
                results.append(_auto(system, dataset, embedder, store, texts, qids, k, generation, gate))
        if kinds & {"unified", "unified-dense"}:
            if not unified:
                raise EvaluationError("the unified systems need a unified model (--unified PATH)")
            u_embedder = ThinkingEmbedder.from_config(replace(config, model=unified, aggregation="o1"))
            u_store = DocumentStore(dataset, u_embedder, db=db, show_progress=show_progress)
            u_counter = stack.enter_context(counting(u_embedder, Path(tmp) / "unified"))
            u_generation = Generation()
            if any(s.kind == "unified" for s in systems):
                phase = think_all(u_embedder, texts, show_progress=show_progress, desc="thinking (unified)")
                u_generation = Generation(dict(u_counter.seconds), u_counter.generated, phase.error) if u_counter else Generation()
            for system in systems:
                if system.kind == "unified-dense":
                    results.append(_dense(replace(system, kind="dense"), dataset, u_embedder, u_store, texts, qids, k, u_generation))
                elif system.kind == "unified":
                    results.append(_dense(replace(system, kind="thinking"), dataset, u_embedder, u_store, texts, qids, k, u_generation))
    # what was run: the embedder's own settings when one was passed in, else the config's
    thinker = embedder.thinker if embedder is not None and needs_thinker else None
    settings = {
        "encoder": embedder.encoder.identity if embedder is not None else config.encoder,
        "thinker": thinker.identity if thinker is not None else None,
        "model": config.model,
        "unified": unified,
        "thoughts": embedder.thoughts if thinker is not None else 0,
        "sampling": (embedder.sampling if thinker is not None else config.sampling).as_dict(),
        "prompt": thinker.prompt.name if thinker is not None else config.prompt,
        "k": k,
        "exact_search": True,
    }
    if "auto" in kinds:
        settings["gate"] = gate.to_dict()
    return RetrievalResults(dataset.name, dataset.split, len(qids), settings, results)


def _dense(system: System, dataset: BeirDataset, embedder: ThinkingEmbedder, store: DocumentStore, texts: list[str], qids: list[str], k: int, generation: Generation) -> SystemResult:
    thinking = system.kind == "thinking"
    embedder.forget_vectors()  # every system pays for its own encoding
    start = time.perf_counter()
    embedded = embedder.embed_queries(texts, thinking=thinking, aggregation=system.aggregation, return_thoughts=True)
    hits = store.search(np.stack([e.vector for e in embedded]), k=k)
    each = 1000 * (time.perf_counter() - start) / max(1, len(qids))
    latencies = [each + (generation.ms(t) if thinking else 0.0) for t in texts]
    run = dict(zip(qids, hits))
    metrics, per_query = evaluate_run(dataset.qrels, run)
    n = max(1, len(qids))
    thought = {q: bool(e.thinking and e.thoughts) for q, e in zip(qids, embedded)}
    return SystemResult(
        system.name,
        metrics,
        latencies,
        sum(len(e.thoughts) for e in embedded) / n if thinking else 0.0,
        generation.thoughts / n if thinking else 0.0,
        sum(e.fallback for e in embedded),
        per_query,
        aggregation=system.aggregation if thinking else None,
        thought=thought,
        run=run,
        thoughts={q: e.thoughts for q, e in zip(qids, embedded)} if thinking else {},
        failed=failure_reason(thought, len(qids) if thinking else 0, generation),
    )


def _auto(system: System, dataset: BeirDataset, embedder: ThinkingEmbedder, store: DocumentStore, texts: list[str], qids: list[str], k: int, generation: Generation, gate: GateProfile) -> SystemResult:
    """Adaptive thinking exactly as ``ChromaIndex.search(thinking="auto")`` runs it
    (:func:`o1_retriever.search.search_with_gate`), over the exact document store."""
    from o1_retriever.search import search_with_gate

    embedder.forget_vectors()  # every system pays for its own encoding
    done = search_with_gate(
        embedder, texts, lambda vectors, n: store.search(np.stack(vectors), k=n), lambda hits: list(hits.values()), gate, k=k, aggregation=system.aggregation
    )
    chosen = [i for i, d in enumerate(done.decisions) if d.think]
    plain_each = 1000 * done.plain_seconds / max(1, len(qids))
    think_each = 1000 * done.thinking_seconds / max(1, len(chosen))
    latencies = [plain_each + (think_each + generation.ms(t) if d.think else 0.0) for t, d in zip(texts, done.decisions)]
    run = {q: dict(list(h.items())[:k]) for q, h in zip(qids, done.hits)}
    metrics, per_query = evaluate_run(dataset.qrels, run)
    thoughts = {qids[i]: done.embeddings[i].thoughts for i in chosen}
    n = max(1, len(qids))
    thought = {q: bool(e.thinking and e.thoughts) for q, e in zip(qids, done.embeddings)}
    return SystemResult(
        system.name,
        metrics,
        latencies,
        sum(len(t) for t in thoughts.values()) / n,
        sum(len(thoughts[qids[i]]) for i in chosen if texts[i] in generation.seconds) / n,
        sum(done.embeddings[i].fallback for i in chosen),
        per_query,
        aggregation=system.aggregation,
        thought=thought,
        decisions={q: d.to_dict() for q, d in zip(qids, done.decisions)},
        run=run,
        thoughts=thoughts,
        failed=failure_reason(thought, len(chosen), generation),
    )
