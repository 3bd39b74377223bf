"""The latency / quality frontier of thinking (``o1-retriever frontier``).

One point per setting: thoughts per query k and new tokens per thought, always thinking and
adaptive (``auto``, the gate deciding per query), and the same thoughts on the keyword side
(``bm25+thinking``) and in hybrid retrieval (``hybrid+thinking``); dense retrieval, BM25 and
hybrid without thinking are the reference lines.

* Quality: nDCG@10 of every query of the split through
  :func:`~o1_retriever.evaluation.retrieval.evaluate_retrieval` (exact search; thoughts through the
  thought cache, so a rerun, or ``eval`` with the same settings, generates nothing again).
* Latency: what one ``search`` costs, measured query by query on a seeded sample of the split
  with fresh thoughts (the cache is bypassed, so cached thoughts never make a setting look
  free): the plain path (encode, top-10 search, gate) and the thinking path (generate k thoughts,
  encode query + thoughts, search). Always-thinking costs the thinking path; ``auto`` costs the
  plain path plus, for the queries its gate sends on, the thinking path. The keyword systems
  cost the thinking path plus their keyword side (BM25's, or hybrid's extra over dense, from the
  reference runs): generation dominates, and bm25+thinking is charged the dense encoding it skips.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from o1_retriever.config import EmbedderConfig
from o1_retriever.embedder import ThinkingEmbedder
from o1_retriever.evaluation.beir import BeirDataset
from o1_retriever.evaluation.retrieval import DocumentStore, EvaluationError, System, evaluate_retrieval
from o1_retriever.gate import DEPTH, GateProfile
from o1_retriever.thinkers.base import SamplingConfig


@dataclass
class FrontierPoint:
    name: str  # "k=3, 64 tokens" / "auto, k=3, 64 tokens"
    thoughts: int
    max_new_tokens: int
    auto: bool
    ndcg: float
    vs_dense: dict[str, float]
    thought_share: float
    latency_ms: float
    latency_p95_ms: float
    mode: str = "dense"  # dense | keyword (bm25+thinking) | hybrid (hybrid+thinking)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class FrontierResults:
    dataset: str
    split: str
    queries: int
    latency_queries: int
    dense: dict[str, float]  # {"ndcg", "latency_ms"}
    bm25: dict[str, float]
    hybrid: dict[str, float] = field(default_factory=dict)
    points: list[FrontierPoint] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "split": self.split,
            "queries": self.queries,
            "latency_queries": self.latency_queries,
            "dense": self.dense,
            "bm25": self.bm25,
            "hybrid": self.hybrid,
            "points": [p.to_dict() for p in self.points],
            "settings": self.settings,
        }


def frontier(
    dataset: BeirDataset,
    config: EmbedderConfig | None = None,
    *,
    thoughts: Sequence[int] = (1, 2, 3),
    tokens: Sequence[int] = (16, 32, 64),
    gate: GateProfile | None = None,
    latency_queries: int = 50,
    seed: int = 0,
    db: str | Path | None = None,
    show_progress: bool = True,
) -> FrontierResults:
    """Evaluate every (k, tokens) setting, always thinking and ``auto``, on ``dataset``."""
    from o1_retriever.evaluation.stats import paired_difference

    config = config or EmbedderConfig()
    gate = gate or GateProfile.load()
    base = ThinkingEmbedder.from_config(config)
    agg = config.aggregation
    for k in thoughts:  # a thinker that cannot think (or a setting that cannot fit) is refused before any work
        for t in tokens:
            ThinkingEmbedder(base.thinker, base.encoder, thoughts=k, sampling=_sampling(config, t)).check_thinker()
    store = DocumentStore(dataset, base, db=db, show_progress=show_progress)  # embedded once, shared by every setting
    reference = evaluate_retrieval(dataset, [System("bm25", "bm25"), System("dense", "dense"), System("hybrid", "hybrid")], config, embedder=base, store=store, show_progress=show_progress)
    dense = reference.system("dense")
    qids = list(dataset.queries)
    sample = sorted(random.Random(seed).sample(qids, min(latency_queries, len(qids))))
    plain_ms = _plain_latencies(ThinkingEmbedder(None, base.encoder), store, [dataset.queries[q] for q in sample], gate)
    out = FrontierResults(
        dataset.name, dataset.split, len(qids), len(sample),
        dense={"ndcg": dense.metrics["nDCG@10"], "latency_ms": float(np.mean([ms for ms, _ in plain_ms]))},
        bm25={"ndcg": reference.system("bm25").metrics["nDCG@10"], "latency_ms": reference.system("bm25").latency_ms},
        # the keyword side's cost on top of dense: what hybrid's batched eval adds to dense's
        hybrid={"ndcg": reference.system("hybrid").metrics["nDCG@10"], "latency_ms": float(np.mean([ms for ms, _ in plain_ms])) + max(0.0, reference.system("hybrid").latency_ms - dense.latency_ms)},
        settings={"encoder": config.encoder, "thinker": config.thinker, "aggregation": agg, "temperature": config.sampling.temperature, "seed": config.sampling.seed, "gate": gate.to_dict()},
    )
    for k in thoughts:
        for t in tokens:
            sampling = _sampling(config, t)
            embedder = ThinkingEmbedder(base.thinker, base.encoder, aggregation=agg, thoughts=k, sampling=sampling, cache=base.cache, strict=base.strict)
            results = evaluate_retrieval(
                dataset, [System(f"thinking[{agg}]", "thinking", agg), System("thinking[auto]", "auto", agg), System("bm25+thinking", "bm25+thinking", agg), System("hybrid+thinking", "hybrid+thinking", agg)],
                config, embedder=embedder, gate=gate, store=store, show_progress=show_progress,
            )
            failed = [s for s in results.systems if s.failed]
            if failed:  # a point with no thinking in it would sit on the dense line as if measured
                raise EvaluationError(f"frontier: k={k}, {t} tokens: {failed[0].name} failed ({failed[0].failed})")
            fresh = ThinkingEmbedder(base.thinker, base.encoder, aggregation=agg, thoughts=k, sampling=sampling, cache=None, strict=base.strict)
            think_ms = _thinking_latencies(fresh, store, [dataset.queries[q] for q in sample])
            always_ms = think_ms
            auto_ms = [p + (th if decision else 0.0) for (p, decision), th in zip(plain_ms, think_ms)]
            # the keyword systems: the thinking path (its generation dominates) plus their keyword side
            keyword_ms = [ms + reference.system("bm25").latency_ms for ms in think_ms]
            hybrid_ms = [ms + out.hybrid["latency_ms"] - out.dense["latency_ms"] for ms in think_ms]
            for system, latencies, auto, mode, label in (
                (results.system(f"thinking[{agg}]"), always_ms, False, "dense", ""),
                (results.system("thinking[auto]"), auto_ms, True, "dense", "auto, "),
                (results.system("bm25+thinking"), keyword_ms, False, "keyword", "bm25+thinking, "),
                (results.system("hybrid+thinking"), hybrid_ms, False, "hybrid", "hybrid+thinking, "),
            ):
                out.points.append(FrontierPoint(
                    name=label + f"k={k}, {t} tokens",
                    thoughts=k,
                    max_new_tokens=t,
                    auto=auto,
                    ndcg=system.metrics["nDCG@10"],
                    vs_dense=paired_difference(dense.per_query, system.per_query).to_dict(),
                    thought_share=system.thought_share,
                    latency_ms=float(np.mean(latencies)),
                    latency_p95_ms=float(np.percentile(latencies, 95)),
                    mode=mode,
                ))
    return out


def _sampling(config: EmbedderConfig, tokens: int) -> SamplingConfig:
    """The sampling of one setting: the config's, with ``tokens`` new tokens per thought."""
    return SamplingConfig(max_new_tokens=tokens, temperature=config.sampling.temperature, top_p=config.sampling.top_p, seed=config.sampling.seed)


def _plain_latencies(embedder: ThinkingEmbedder, store: DocumentStore, queries: list[str], gate: GateProfile) -> list[tuple[float, bool]]:
    """(ms, the gate sends it on to thinking) of the plain path, one query at a time (a fresh
    embedder: no query vector remembered from the quality runs)."""
    out = []
    for q in queries:
        start = time.perf_counter()
        vector = embedder.embed_queries([q], thinking=False)
        top = store.search(vector, k=DEPTH)[0]
        decision = gate.decide(list(top.values()))
        out.append((1000 * (time.perf_counter() - start), decision.think))
    return out


def _thinking_latencies(embedder: ThinkingEmbedder, store: DocumentStore, queries: list[str]) -> list[float]:
    """ms of the thinking path with fresh thoughts (no cache), one query at a time."""
    out = []
    for q in queries:
        start = time.perf_counter()
        vector = embedder.embed_queries([q], thinking=True)
        store.search(vector, k=DEPTH)
        out.append(1000 * (time.perf_counter() - start))
    return out


def frontier_table(results: FrontierResults) -> str:
    from o1_retriever.evaluation.report import markdown_table

    rows: list[list[Any]] = [
        ["bm25", f"{results.bm25['ndcg']:.3f}", "", f"{results.bm25['latency_ms']:.1f}", "", "0%"],
        ["dense", f"{results.dense['ndcg']:.3f}", "", f"{results.dense['latency_ms']:.1f}", "", "0%"],
    ]
    if results.hybrid:
        rows.append(["hybrid", f"{results.hybrid['ndcg']:.3f}", "", f"{results.hybrid['latency_ms']:.1f}", "", "0%"])
    for p in results.points:
        d = p.vs_dense
        rows.append([p.name, f"{p.ndcg:.3f}", f"{d['mean']:+.1f} [{d['low']:+.1f}, {d['high']:+.1f}]", f"{p.latency_ms:.0f}", f"{p.latency_p95_ms:.0f}", f"{p.thought_share:.0%}"])
    return markdown_table(["setting", "nDCG@10", "vs dense (95% CI)", "mean ms/query", "p95 ms", "thought share"], rows)


def frontier_plot(results: FrontierResults, path: Path) -> Path:
    """nDCG@10 against mean ms/query (log scale): one point per setting, dense and BM25 as lines."""
    from o1_retriever.evaluation.report import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    kinds = ((False, "dense", "o", "tab:blue", "always thinking"), (True, "dense", "^", "tab:green", "auto (gate)"),
             (False, "keyword", "s", "tab:orange", "bm25+thinking"), (False, "hybrid", "D", "tab:purple", "hybrid+thinking"))
    for auto, mode, marker, color, label in kinds:
        pts = [p for p in results.points if p.auto == auto and p.mode == mode]
        ax.scatter([p.latency_ms for p in pts], [p.ndcg for p in pts], marker=marker, color=color, label=label, zorder=3)
        for p in pts:
            ax.annotate(f"k={p.thoughts},{p.max_new_tokens}", (p.latency_ms, p.ndcg), textcoords="offset points", xytext=(4, 3), fontsize=7, color=color)
    ax.axhline(results.dense["ndcg"], color="tab:gray", linestyle="--", label=f"dense ({results.dense['latency_ms']:.0f} ms)")
    ax.axhline(results.bm25["ndcg"], color="tab:orange", linestyle=":", label=f"BM25 ({results.bm25['latency_ms']:.1f} ms)")
    if results.hybrid:
        ax.axhline(results.hybrid["ndcg"], color="tab:purple", linestyle="-.", label=f"hybrid ({results.hybrid['latency_ms']:.0f} ms)")
    ax.set_xscale("log")
    ax.set_xlabel(f"mean ms/query (one query at a time, fresh thoughts; {results.latency_queries} queries)")
    ax.set_ylabel(f"nDCG@10 ({results.queries} queries)")
    ax.set_title(f"{results.dataset} ({results.split}): thinking's latency / quality frontier")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_frontier_report(results: FrontierResults, out: Path) -> dict[str, Path]:
    from o1_retriever.evaluation.report import write_json

    out = Path(out)
    table = frontier_table(results)
    paths = {"json": write_json(out / "frontier.json", results.to_dict()), "plot": frontier_plot(results, out / "frontier.png"), "table": out / "frontier.md"}
    paths["table"].write_text(
        f"{results.dataset} ({results.split}), nDCG@10 over {results.queries} queries; latency over {results.latency_queries} queries, "
        f"one at a time with fresh thoughts\n\n{table}\n",
        encoding="utf-8",
    )
    return paths
