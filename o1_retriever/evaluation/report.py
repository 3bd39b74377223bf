"""Reports: markdown tables, ``results.json`` and matplotlib plots (Agg backend, no display)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence

from o1_retriever.evaluation.metrics import MEASURES
from o1_retriever.evaluation.retrieval import RetrievalResults


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return "nan" if math.isnan(v) else f"{v:.3f}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def retrieval_table(results: RetrievalResults) -> str:
    """One row per system: metrics, nDCG@10 against dense (and auto against always thinking)
    in points with paired bootstrap 95 % intervals, latency (mean, p95), thought share. A system
    that failed (thinking failed for all its queries) shows no figures, only "failed" and why."""
    comparisons = results.comparisons
    headers = ["system", *MEASURES, "nDCG@10 vs dense", "vs always (auto) or own no-thinking (unified)", "latency ms/query", "p95 ms", "thought share", "thoughts/query", "generated/query"]

    def versus(name: str, ref: str | None) -> str:
        found = comparisons.get(name, {})
        if ref is None:  # the comparison that is not against dense (auto vs its always-thinking system)
            ref = next((r for r in found if r != "dense"), None)
        if ref is None or ref not in found:
            return ""
        c = found[ref]
        return f"{c['mean']:+.1f} [{c['low']:+.1f}, {c['high']:+.1f}]"

    rows = [
        [
            s.name, *(s.metrics[m] for m in MEASURES), versus(s.name, "dense"), versus(s.name, None),
            f"{s.latency_ms:.1f}", f"{s.latency_p95_ms:.1f}", f"{s.thought_share:.0%}", f"{s.thoughts_per_query:g}", f"{s.generated_per_query:g}",
        ]
        if not s.failed
        else [s.name, *("—" for _ in MEASURES), f"failed: {s.failed}", "", "—", "—", f"{s.thought_share:.0%}", "—", "—"]
        for s in results.systems
    ]
    return markdown_table(headers, rows)


def write_json(path: Path, payload: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False, allow_nan=True) + "\n", encoding="utf-8")
    return path


def pyplot():
    """matplotlib's pyplot on the Agg backend (files, no display), for every plot of the evaluation
    package (the retrieval and RAG reports, the frontier)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def retrieval_plot(results: RetrievalResults, path: Path) -> Path:
    """Bar chart of nDCG@10 per system, with the mean query latency beside it; a failed system
    has no bars, only the word "failed" (its reason is in the table and results.json)."""
    plt = pyplot()
    names = [s.name for s in results.systems]
    ndcg = [0.0 if s.failed else s.metrics["nDCG@10"] for s in results.systems]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(4 + 1.6 * len(names), 4))
    bars = ax1.bar(names, ndcg, color="tab:blue")
    ax1.bar_label(bars, labels=["failed" if s.failed else f"{v:.3f}" for s, v in zip(results.systems, ndcg)])
    ax1.set_ylim(0, max(ndcg + [0.1]) * 1.15)
    ax1.set_ylabel("nDCG@10")
    ax1.set_title(f"{results.dataset} ({results.split}, {results.queries} queries)")
    latency = [0.0 if s.failed else s.latency_ms for s in results.systems]
    bars = ax2.bar(names, latency, color="tab:orange")
    ax2.bar_label(bars, labels=["failed" if s.failed else f"{v:.0f}" for s, v in zip(results.systems, latency)])
    ax2.set_ylabel("mean latency (ms/query)")
    ax2.set_yscale("symlog", linthresh=1.0)
    ax2.set_ylim(0, max(latency + [1.0]) * 4)
    ax2.set_title("query latency")
    for ax in (ax1, ax2):
        ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def grouped_plot(title: str, groups: dict[str, dict[str, float]], path: Path, ylabel: str = "score") -> Path:
    """Bars of several metrics (x) for several variants (one colour each), NaN shown as 0."""
    plt = pyplot()
    import numpy as np

    variants = list(groups)
    metrics = list(dict.fromkeys(m for g in groups.values() for m in g))
    x = np.arange(len(metrics))
    width = 0.8 / max(1, len(variants))
    fig, ax = plt.subplots(figsize=(3 + 1.3 * len(metrics), 4))
    for i, variant in enumerate(variants):
        values = [groups[variant].get(m, float("nan")) for m in metrics]
        bars = ax.bar(x + i * width, [0 if math.isnan(v) else v for v in values], width, label=variant)
        ax.bar_label(bars, labels=["nan" if math.isnan(v) else f"{v:.2f}" for v in values], fontsize=7)
    ax.set_xticks(x + width * (len(variants) - 1) / 2, metrics, rotation=30, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_retrieval_report(results: RetrievalResults, out: Path) -> dict[str, Path]:
    out = Path(out)
    table = retrieval_table(results)
    paths = {
        "json": write_json(out / "results.json", results.to_dict()),
        "plot": retrieval_plot(results, out / "ndcg_latency.png"),
        "table": out / "results.md",
    }
    header = f"{results.dataset} ({results.split}), {results.queries} queries\n\n"
    paths["table"].write_text(header + table + "\n", encoding="utf-8")
    return paths


def rag_table(results: Any) -> str:
    """Metrics (rows) x variants (columns), each cell ``mean (n NaN)`` when NaNs occurred."""
    variants = list(results.means)
    metrics = list(dict.fromkeys(m for v in variants for m in results.means[v]))
    rows = []
    for m in metrics:
        row: list[Any] = [m]
        for v in variants:
            mean, nan = results.means[v][m], results.nans[v][m]
            cell = "nan" if math.isnan(mean) else f"{mean:.3f}"
            row.append(cell + (f" ({nan} NaN)" if nan else ""))
        rows.append(row)
    nan_total = {v: sum(results.nans[v].values()) for v in variants}
    rows.append(["NaN scores", *(str(nan_total[v]) for v in variants)])
    return markdown_table(["metric", *variants], rows)


def changed_list(results: Any, limit: int = 10) -> str:
    lines = [f"Thinking changed the answer to {len(results.changed)} of {results.questions} questions:"]
    for c in results.changed[:limit]:
        lines.append(f"- {c['question']} (gold: {c['gold']}): with thinking {c['with_thinking']!r}, without {c['without_thinking']!r}")
    if len(results.changed) > limit:
        lines.append(f"- ... {len(results.changed) - limit} more in changed.json")
    return "\n".join(lines)


def write_rag_report(results: Any, out: Path) -> dict[str, Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    jsonl = out / "answers.jsonl"
    with jsonl.open("w", encoding="utf-8") as fh:
        for record in results.records:
            fh.write(json.dumps(record.to_dict(), ensure_ascii=False) + "\n")
    table = out / "rag_results.md"
    table.write_text(
        f"{results.dataset}, {results.questions} questions, top-{results.settings['k']} passages\n\n"
        + rag_table(results) + "\n\n" + changed_list(results) + "\n",
        encoding="utf-8",
    )
    return {
        "jsonl": jsonl,
        "table": table,
        "json": write_json(out / "rag_results.json", results.to_dict()),
        "changed": write_json(out / "changed.json", results.changed),
        "plot": grouped_plot(f"RAGAS on {results.dataset} ({results.questions} questions)", results.means, out / "ragas.png"),
    }
