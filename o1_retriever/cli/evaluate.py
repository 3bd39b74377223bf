"""``o1-retriever eval``, ``calibrate``, ``frontier`` and ``rag-eval`` (heavy imports stay inside
the functions so ``--help`` is fast)."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from o1_retriever.cli.app import command, err, out
from o1_retriever.config import EmbedderConfig

Dataset = Annotated[Path, typer.Argument(help="A BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv.")]
Split = Annotated[str, typer.Option("--split", help="qrels split to evaluate.")]
Queries = Annotated[Optional[int], typer.Option("--queries", min=1, help="A seeded random subset of this many queries (default: all).")]
SubsetSeed = Annotated[int, typer.Option("--subset-seed", help="Seed of the query subset.")]
GateProfilePath = Annotated[Optional[Path], typer.Option("--gate-profile", help="Gate of the auto system: a profile written by 'o1-retriever calibrate' (default: the built-in one).")]
EvalDb = Annotated[Optional[Path], typer.Option("--db", help="Embedded Chroma folder of the document index (default $O1_RETRIEVER_HOME/eval/chroma).")]


@command(name="eval")
def eval_cmd(
    dataset: Dataset,
    split: Split = "test",
    queries: Queries = None,
    subset_seed: SubsetSeed = 0,
    systems: Annotated[str, typer.Option("--systems", help="Comma-separated: bm25, dense, hyde, thinking, auto (adaptive thinking: the gate decides per query).")] = "bm25,dense,hyde,thinking",
    aggregations: Annotated[Optional[str], typer.Option("--aggregations", help="Aggregations of the thinking system, comma-separated (default: --aggregation).")] = None,
    unified: Annotated[Optional[str], typer.Option("--unified", help="A unified O1 model: adds the 'unified' and 'unified-dense' systems.")] = None,
    depth: Annotated[int, typer.Option("--depth", min=1, help="Documents retrieved per query (Recall@100 needs 100).")] = 100,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for results.json, results.md and the plot.")] = Path("eval-results"),
    gate_profile: GateProfilePath = None,
    db: EvalDb = None,
    *,
    config: EmbedderConfig,
) -> None:
    """Retrieval metrics (nDCG@10, Recall@100, MRR@10, latency mean and p95, thought share) of
    several systems over one shared document index, with paired bootstrap intervals against
    dense; prints a markdown table, writes results.json and a plot to --out."""
    from o1_retriever.evaluation.beir import load_beir
    from o1_retriever.evaluation.report import retrieval_table, write_retrieval_report
    from o1_retriever.evaluation.retrieval import EvaluationError, evaluate_retrieval, parse_systems
    from o1_retriever.gate import GateProfile

    chosen = parse_systems(systems, aggregations or config.aggregation, unified=bool(unified))
    if gate_profile is not None and not any(s.kind == "auto" for s in chosen):
        raise EvaluationError("--gate-profile is the gate of the auto system; add auto to --systems")
    gate = GateProfile.load(gate_profile)
    data = load_beir(dataset, split, queries=queries, seed=subset_seed)
    err.print(f"[green]{data.name}[/] ({split}): {len(data.queries)} queries; systems: {', '.join(s.name for s in chosen)}")
    results = evaluate_retrieval(data, chosen, config, unified=unified, gate=gate, k=depth, db=db)
    paths = write_retrieval_report(results, out_dir)
    out.print(f"{data.name} ({split}), {results.queries} queries\n", markup=False, highlight=False)
    out.print(retrieval_table(results), markup=False, highlight=False)
    err.print(f"wrote {paths['json']}, {paths['table']} and {paths['plot']}")


@command(name="calibrate")
def calibrate_cmd(
    dataset: Dataset,
    split: Annotated[str, typer.Option("--split", help="qrels split to fit on: not the one you report on.")] = "train",
    queries: Queries = None,
    subset_seed: SubsetSeed = 0,
    budget: Annotated[float, typer.Option("--budget", min=0.01, max=1.0, help="The largest share of queries allowed to think.")] = 0.5,
    objective: Annotated[str, typer.Option("--objective", help="coverage: send to thinking the queries where thinking changes rankings most (auto tracks always-thinking); ndcg: the best nDCG@10 on these queries (also bets on where thinking helped here).")] = "coverage",
    out_path: Annotated[Path, typer.Option("--out", help="Where to write the gate profile (JSON).")] = Path("gate.json"),
    db: EvalDb = None,
    *,
    config: EmbedderConfig,
) -> None:
    """Fit the adaptive-thinking gate (search --think auto, eval's auto system, the adapters'
    thinking="auto") on labelled queries: evaluates them without and with thinking, then picks
    the signal of the plain top 10 and the threshold that best meet --objective within --budget."""
    from o1_retriever.evaluation.beir import load_beir
    from o1_retriever.evaluation.calibration import calibrate_gate

    data = load_beir(dataset, split, queries=queries, seed=subset_seed)
    err.print(f"[green]{data.name}[/] ({split}): {len(data.queries)} queries; thinking budget {budget:.0%}")
    fitted, _ = calibrate_gate(data, config, budget=budget, objective=objective, db=db)
    fitted.profile.save(out_path)
    p = fitted.profile
    out.print(
        f"gate: think when {p.signal} is {p.side} {p.threshold:.4f}; on these {fitted.queries} queries it thinks on "
        f"{fitted.thought_share:.0%}, where {fitted.coverage:.0%} of what thinking changes happens: nDCG@10 {fitted.ndcg_auto:.4f} "
        f"(dense {fitted.ndcg_dense:.4f}, always thinking {fitted.ndcg_always:.4f})",
        markup=False, highlight=False,
    )
    err.print(f"wrote {out_path}; use it with --think auto --gate-profile {out_path}")


@command(name="frontier")
def frontier_cmd(
    dataset: Dataset,
    split: Split = "test",
    queries: Queries = None,
    subset_seed: SubsetSeed = 0,
    thoughts_grid: Annotated[str, typer.Option("--thoughts-grid", help="Thoughts per query to sweep, comma-separated.")] = "1,2,3",
    tokens_grid: Annotated[str, typer.Option("--tokens-grid", help="New tokens per thought to sweep, comma-separated.")] = "16,32,64",
    latency_queries: Annotated[int, typer.Option("--latency-queries", min=1, help="Queries timed one at a time with fresh thoughts, per setting (a seeded sample).")] = 50,
    gate_profile: GateProfilePath = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for frontier.md, frontier.json and frontier.png.")] = Path("frontier"),
    db: EvalDb = None,
    *,
    config: EmbedderConfig,
) -> None:
    """The latency / quality frontier: nDCG@10 against mean ms/query for every (thoughts,
    tokens) setting, always thinking and auto, with dense and BM25 as reference lines."""
    from o1_retriever.evaluation.beir import load_beir
    from o1_retriever.evaluation.frontier import frontier, frontier_table, write_frontier_report
    from o1_retriever.gate import GateProfile

    grid_k, grid_t = _grid(thoughts_grid, "--thoughts-grid"), _grid(tokens_grid, "--tokens-grid")
    gate = GateProfile.load(gate_profile)
    data = load_beir(dataset, split, queries=queries, seed=subset_seed)
    err.print(f"[green]{data.name}[/] ({split}): {len(data.queries)} queries; {len(grid_k) * len(grid_t)} settings")
    results = frontier(data, config, thoughts=grid_k, tokens=grid_t, gate=gate, latency_queries=latency_queries, seed=subset_seed, db=db)
    paths = write_frontier_report(results, out_dir)
    out.print(frontier_table(results), markup=False, highlight=False)
    err.print(f"wrote {paths['json']}, {paths['table']} and {paths['plot']}")


def _grid(text: str, option: str) -> list[int]:
    from o1_retriever.evaluation.retrieval import EvaluationError

    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise EvaluationError(f"{option} takes positive integers separated by commas, got {text!r}")
    return values


@command(name="rag-eval")
def rag_eval_cmd(
    dataset: Dataset,
    split: Split = "test",
    queries: Annotated[Optional[int], typer.Option("--queries", min=1, help="A seeded random subset of this many questions (default: all).")] = 30,
    subset_seed: SubsetSeed = 0,
    k: Annotated[int, typer.Option("--k", min=1, help="Passages given to the reader.")] = 3,
    reader: Annotated[str, typer.Option("--reader", help="Reader LLM: 'smollm2', a HF id/folder, or an OpenAI-compatible http(s)://.../v1 URL.")] = "smollm2",
    reader_model: Annotated[Optional[str], typer.Option("--reader-model", help="Model name on an OpenAI-compatible reader server.")] = None,
    answer_tokens: Annotated[int, typer.Option("--answer-tokens", min=1, help="Maximum tokens of an answer.")] = 24,
    judge: Annotated[Optional[str], typer.Option("--judge", help="Judge LLM for faithfulness / answer accuracy: a HF id/folder, 'smollm2', or an OpenAI-compatible URL. Without it only the no-LLM RAGAS metrics run.")] = None,
    judge_model: Annotated[Optional[str], typer.Option("--judge-model", help="Model name on an OpenAI-compatible judge server.")] = None,
    judge_tokens: Annotated[int, typer.Option("--judge-tokens", min=1, help="Maximum tokens of a judge reply.")] = 512,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for answers.jsonl, rag_results.{md,json}, changed.json and the plot.")] = Path("rag-eval-results"),
    db: EvalDb = None,
    *,
    config: EmbedderConfig,
) -> None:
    """RAG answers with and without thinking (reader LLM on the top-k passages), scored with
    RAGAS; needs gold answers in queries.jsonl metadata.answer (as in HotpotQA)."""
    import os

    os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")
    from o1_retriever.evaluation.beir import load_beir
    from o1_retriever.evaluation.rag import Reader, check_answers, evaluate_rag, make_judge
    from o1_retriever.evaluation.report import changed_list, rag_table, write_rag_report

    data = load_beir(dataset, split, queries=queries, seed=subset_seed)
    check_answers(data)  # before loading any model
    err.print(f"[green]{data.name}[/] ({split}): {len(data.queries)} questions, top-{k} passages, reader {reader}" + (f", judge {judge}" if judge else ""))
    with err.status("loading models"):
        the_reader = Reader(reader, model_name=reader_model, max_new_tokens=answer_tokens, device=config.device)
        the_judge = make_judge(judge, judge_model, max_new_tokens=judge_tokens, device=config.device) if judge else None
    results = evaluate_rag(data, config, reader=the_reader, judge=the_judge, k=k, db=db)
    paths = write_rag_report(results, out_dir)
    out.print(f"{data.name}, {results.questions} questions, top-{k} passages\n", markup=False, highlight=False)
    out.print(rag_table(results), markup=False, highlight=False)
    out.print("\n" + changed_list(results), markup=False, highlight=False)
    err.print(f"wrote {paths['jsonl']}, {paths['table']}, {paths['json']} and {paths['plot']}")
