"""Evidence for issue 5: synthesize -> train -> evaluate on SciFact and HotpotQA-200.

Pipeline (every stage timed, with its peak resident memory):
  1. thought synthesis from SciFact ``train`` (generator: SmolLM2 through llama.cpp when
     llama-cpp-python is installed, else transformers; few-shot prompts; committee MiniLM +
     last-token SmolLM2 + BM25; hard negatives mined with MiniLM over the SciFact corpus);
  2. thinker-only training (behaviour cloning, LoRA on SmolLM2, the composed default's prompt);
  3. joint training of a unified model (LoRA on SmolLM2, LM + InfoNCE);
  4. evaluation with ``o1-retriever eval`` (subprocesses; whole corpora, exact search):
     (c) the composed default (MiniLM encoder) with the base SmolLM2 thinker vs the trained
         thinker, against dense MiniLM, on SciFact ``test`` and on HotpotQA-200;
     (a)/(b) with ``--unified-hotpotqa``: the base and the trained unified model, without and
         with thinking, on HotpotQA-200 (1,971 short paragraphs, ~10 min per model on 2 cores);
  5. (a)/(b) on SciFact too, but over a reduced corpus (the evaluated queries' relevant
     documents plus random ones up to ``--unified-corpus``; embedding all 5,183 abstracts with a
     135M LM takes hours on 2 cores): exact search and ``ir_measures`` here, so those rows
     compare with each other only.

Every gain is printed with a paired bootstrap 95% interval over the per-query nDCG@10 that
``o1-retriever eval`` writes. Stages resume: synthesized rows, trained models, thoughts (cache)
and eval results in ``--work`` are reused. On a GPU raise the flags, e.g.
``--train-queries 809 --group-size 16 --max-document-tokens 512 --unified-corpus 0``.

    python benchmarks/train_scifact.py --work /tmp/o1-train-bench --mixed-precision bf16   # as measured in the README
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
from _common import STAGES, run_eval, stage  # noqa: E402

from o1_retriever.evaluation.stats import paired_difference  # noqa: E402


def ndcg10(qrels: dict[str, dict[str, int]], q_ids: list[str], q_vecs, doc_ids: list[str], d_vecs) -> float:
    """nDCG@10 of an exact inner-product search, scored by the evaluation package's metrics."""
    import numpy as np

    from o1_retriever.evaluation.metrics import evaluate_run

    scores = q_vecs @ d_vecs.T
    run = {qid: {doc_ids[j]: float(row[j]) for j in np.argsort(-row)[:100]} for qid, row in zip(q_ids, scores)}
    return evaluate_run({q: qrels[q] for q in q_ids}, run)[0]["nDCG@10"]


def load_eval_set(folder: Path, split: str, n_queries: int, corpus_size: int, seed: int):
    from o1_retriever.evaluation.beir import read_split
    from o1_retriever.training.data import read_beir_corpus

    queries, qrels, _ = read_split(folder, split)
    corpus = read_beir_corpus(folder)
    q_ids = sorted(q for q in qrels if q in queries)
    q_ids = sorted(random.Random(seed).sample(q_ids, min(n_queries, len(q_ids))))
    if corpus_size <= 0:
        doc_ids = sorted(corpus)
    else:
        keep = {d for q in q_ids for d in qrels[q] if d in corpus}
        rest = sorted(set(corpus) - keep)
        fill = random.Random(seed + 1).sample(rest, max(0, min(len(rest), corpus_size - len(keep))))
        doc_ids = sorted(keep | set(fill))
    return qrels, [queries[q] for q in q_ids], q_ids, doc_ids, corpus


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "scifact")
    p.add_argument("--hotpotqa", type=Path, default=ROOT.parent / "shared" / "data" / "hotpotqa", help="HotpotQA-200 BEIR folder ('' to skip)")
    p.add_argument("--work", type=Path, default=Path("/tmp/o1-train-bench"))
    p.add_argument("--train-queries", type=int, default=200, help="SciFact train queries synthesized and trained on (of 809)")
    p.add_argument("--eval-queries", type=int, default=None, help="SciFact test queries evaluated (default: all 300)")
    p.add_argument("--unified-queries", type=int, default=100, help="SciFact test queries of the reduced-corpus unified rows")
    p.add_argument("--unified-corpus", type=int, default=600, help="documents of the reduced SciFact corpus for the unified rows (0 = whole)")
    p.add_argument("--generator", default=None, help="thought generator for synthesis (default: llamacpp:smollm2 when available, else smollm2)")
    p.add_argument("--generator-model", default=None, help="model name on an OpenAI-compatible --generator URL")
    p.add_argument("--candidates", type=int, default=3)
    p.add_argument("--shots", type=int, default=2)
    p.add_argument("--shot-words", type=int, default=60, help="words of each few-shot passage")
    p.add_argument("--thought-tokens", type=int, default=48)
    p.add_argument("--eval-thoughts", type=int, default=3)
    p.add_argument("--negatives", type=int, default=7)
    p.add_argument("--group-size", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--lora-r", type=int, default=16)
    p.add_argument("--max-document-tokens", type=int, default=128)
    p.add_argument("--unified-hotpotqa", action="store_true", help="also evaluate the unified models on HotpotQA-200 (whole corpus; ~10 min per model on 2 cores)")
    p.add_argument("--mixed-precision", default="no", choices=["no", "bf16", "fp16"], help="training precision (accelerate autocast)")
    p.add_argument("--gradient-checkpointing", action="store_true", help="off by default on CPU (memory is not the limit there)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None)
    args = p.parse_args()

    from o1_retriever import EmbedderConfig, SamplingConfig, ThinkingEmbedder
    from o1_retriever.evaluation.beir import load_beir
    from o1_retriever.evaluation.retrieval import DocumentStore
    from o1_retriever.encoders.sentence_transformers import SentenceTransformerEncoder
    from o1_retriever.factory import build_thinker
    from o1_retriever.training.committee import build_committee
    from o1_retriever.training.data import read_beir_corpus, read_pairs
    from o1_retriever.training.mining import mine_hard_negatives
    from o1_retriever.training.synthesis import SYNTHESIS_PROMPT, read_synthesized, synthesize
    from o1_retriever.training.trainer import TrainConfig, train

    args.work.mkdir(parents=True, exist_ok=True)
    thoughts_file = args.work / "thoughts.jsonl"
    sampling = SamplingConfig(max_new_tokens=args.thought_tokens, temperature=0.7, seed=args.seed)

    with stage("load data"):
        rows = read_pairs(args.data, "train", limit=args.train_queries, seed=args.seed)
        corpus = read_beir_corpus(args.data)
    print(f"train rows {len(rows)}, corpus {len(corpus)} documents", file=sys.stderr)

    done = len(read_synthesized(thoughts_file)) if thoughts_file.exists() else 0
    if done < len(rows):
        minilm = SentenceTransformerEncoder("minilm", device=args.device)
        with stage(f"mine hard negatives (MiniLM over {len(corpus)} documents)"):
            # the corpus vectors o1-retriever eval stores once per (dataset, encoder) in Chroma
            store = DocumentStore(load_beir(args.data, "train"), ThinkingEmbedder(None, minilm))
            texts = [store.texts[i] for i in store.ids]
            mine_hard_negatives(rows, texts, minilm, n=args.negatives, skip=3, corpus_vectors=store.matrix)
        generator_spec = args.generator or ("llamacpp:smollm2" if importlib.util.find_spec("llama_cpp") else "smollm2")
        with stage(f"synthesize ({len(rows) - done} queries x {args.candidates} thoughts, {generator_spec})"):
            # what `o1-retriever synthesize --generator SPEC` builds
            generator = build_thinker(EmbedderConfig(thinker=generator_spec, thinker_model=args.generator_model, device=args.device), prompt=SYNTHESIS_PROMPT, max_query_tokens=1024)
            stats = synthesize(rows, thoughts_file, generator, build_committee(device=args.device), candidates=args.candidates, shots=args.shots, shot_words=args.shot_words, sampling=sampling, batch_rows=8, seed=args.seed)
            print(f"   {stats}", file=sys.stderr)
    synthesized = read_synthesized(thoughts_file)

    common = dict(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr, lora_r=args.lora_r, lora_alpha=2 * args.lora_r,
                  group_size=args.group_size, max_document_tokens=args.max_document_tokens, max_thought_tokens=args.thought_tokens,
                  gradient_checkpointing=args.gradient_checkpointing, mixed_precision=args.mixed_precision, seed=args.seed)
    thinker_dir, unified_dir = args.work / "thinker", args.work / "unified"
    results: dict = {"stages": STAGES, "train_rows": len(synthesized)}

    def trained(mode: str, out: Path) -> None:
        if (out / "o1_training.json").exists():
            print(f"reusing {out}", file=sys.stderr)
            results[f"train_{mode}"] = json.loads((out / "o1_training.json").read_text())["o1_retriever"]["losses"]
            return
        with stage(f"train {mode} ({len(synthesized)} rows)"):
            res = train(synthesized, out, TrainConfig(mode=mode, **common))
        results[f"train_{mode}"] = res.losses

    def save_partial() -> None:
        (args.work / "results.json").write_text(json.dumps(results, indent=1))

    thinking = ["--thoughts", str(args.eval_thoughts), "--max-new-tokens", str(args.thought_tokens), "--temperature", "0.7", "--seed", str(args.seed)]
    datasets = [("SciFact test", args.data, args.eval_queries)] + ([("HotpotQA-200", args.hotpotqa, None)] if str(args.hotpotqa) not in ("", ".") else [])
    rows_out: list[tuple[str, str, dict, str]] = []  # (dataset, label, system result, query count)

    def evaluate(name: str, folder: Path, n: int | None, runs: list[tuple[str, list[str]]]) -> None:
        queries = ["--queries", str(n)] if n else []
        for label, extra in runs:
            res = run_eval(name, label, folder, queries + thinking + extra, args.work)
            for sys_name, sys_res in res["systems"].items():
                rows_out.append((name, f"{label}: {sys_name}", sys_res, res["queries"]))
            results.setdefault("eval", {}).setdefault(name, {})[label] = {k: v for k, v in res.items() if k != "systems"} | {
                "systems": {k: {m: v for m, v in r.items() if m != "per_query"} for k, r in res["systems"].items()}}
            save_partial()

    # the main comparison first (thinker, then its evaluation), the unified model after
    trained("thinker", thinker_dir)
    for name, folder, n in datasets:
        evaluate(name, folder, n, [
            ("dense MiniLM + base SmolLM2 thinker", ["--systems", "dense,thinking", "--thinker", "smollm2"]),
            ("trained thinker", ["--systems", "thinking", "--thinker", str(thinker_dir)]),
        ])
    trained("joint", unified_dir)
    for name, folder, n in datasets:
        if name.startswith("HotpotQA") and args.unified_hotpotqa:  # 1,971 short paragraphs
            evaluate(name, folder, n, [(f"unified {tag}", ["--systems", "dense", "--unified", spec, "--thinker", "none"])
                                       for tag, spec in (("base", "smollm2"), ("trained", str(unified_dir)))])

    unified_rows = unified_reduced_corpus(args, sampling, unified_dir)
    results["unified_reduced_scifact"] = unified_rows
    save_partial()
    report(rows_out, unified_rows, args)


def unified_reduced_corpus(args, sampling, unified_dir: Path) -> dict:
    """(a)/(b) on SciFact over a reduced corpus (see the module docstring)."""
    from o1_retriever import EmbedderConfig, ThinkingEmbedder

    cached = args.work / "unified_reduced.json"
    if cached.exists():
        return json.loads(cached.read_text())
    qrels, queries, q_ids, doc_ids, corpus = load_eval_set(args.data, "test", args.unified_queries, args.unified_corpus, args.seed)
    docs = [corpus[d] for d in doc_ids]
    out: dict = {"queries": len(q_ids), "documents": len(doc_ids), "ndcg10": {}}
    for label, model in (("base SmolLM2", "smollm2"), ("trained", str(unified_dir))):
        emb = ThinkingEmbedder.from_config(EmbedderConfig(model=model, thoughts=args.eval_thoughts, sampling=sampling, cache=str(args.work / "thoughts-eval.sqlite"), aggregation="o1", device=args.device))
        emb.encoder.max_document_tokens = args.max_document_tokens
        with stage(f"SciFact reduced corpus: unified {label} (embed {len(docs)} documents, {len(q_ids)} queries)"):
            dvec = emb.embed_documents(docs, show_progress=True)
            for thinking in (False, True):
                vecs = emb.embed_queries(queries, thinking=thinking)
                out["ndcg10"][f"unified {label}, {'thinking' if thinking else 'no thinking'}"] = ndcg10(qrels, q_ids, vecs, doc_ids, dvec)
    cached.write_text(json.dumps(out, indent=1))
    return out


def report(rows_out, unified_rows: dict, args) -> None:
    print()
    for dataset in dict.fromkeys(r[0] for r in rows_out):
        mine = [r for r in rows_out if r[0] == dataset]
        n = mine[0][3]
        by = {label: res for _, label, res, _ in mine}
        dense = next(res for label, res in by.items() if label.endswith(": dense"))
        print(f"{dataset}, {n} queries, whole corpus, o1-retriever eval (exact search)")
        print(f"{'system':62s} {'nDCG@10':>8s} {'vs dense (95% CI)':>24s}")
        for label, res in by.items():
            ref = dense
            if label.startswith("unified") and label.endswith(": unified"):
                ref = by[label.rsplit(":", 1)[0] + ": unified-dense"]
            if res is ref:
                print(f"{label:62s} {res['metrics']['nDCG@10']:8.4f}")
                continue
            d = paired_difference(ref["per_query"], res["per_query"])
            mean, lo, hi = d.mean, d.low, d.high
            tag = "vs its no-thinking" if ref is not dense else "vs dense"
            print(f"{label:62s} {res['metrics']['nDCG@10']:8.4f} {mean:+6.1f} [{lo:+.1f}, {hi:+.1f}] {tag}")
        trained = next((res for label, res in by.items() if label.startswith("trained thinker")), None)
        if trained:
            gain = 100 * (trained["metrics"]["nDCG@10"] - dense["metrics"]["nDCG@10"])
            print(f"target: trained thinker >= +3.0 over dense on {dataset}: {gain:+.1f} ({'met' if gain >= 3 else 'not met'})")
        print()
    if unified_rows.get("ndcg10"):
        print(f"SciFact test, {unified_rows['queries']} seeded queries, reduced corpus of {unified_rows['documents']} documents (these rows compare with each other only)")
        for label, score in unified_rows["ndcg10"].items():
            print(f"{label:62s} {score:8.4f}")
        u = unified_rows["ndcg10"]
        gain = 100 * (u["unified trained, thinking"] - u["unified trained, no thinking"])
        print(f"target: trained unified thinking beats its no-thinking mode: {gain:+.1f} ({'met' if gain > 0 else 'not met'})")
    print(f"\n{'stage':78s} {'wall s':>8s} {'peak RSS MB':>12s}")
    for s in STAGES:
        rss = s.get("subprocess_peak_rss_mb", s["peak_rss_mb"])
        print(f"{s['stage']:78s} {s['seconds']:8.1f} {rss:12d}")
    print("(eval stages: the o1-retriever eval subprocess's peak; other stages: this process's, which keeps earlier stages' models)")


if __name__ == "__main__":
    main()
