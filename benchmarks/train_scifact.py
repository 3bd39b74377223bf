"""Evidence for issue 5: synthesize -> train -> evaluate on SciFact (and optionally HotpotQA).

Pipeline (every stage timed, with its peak resident memory):
  1. thought synthesis from SciFact ``train`` (SmolLM2 generator, few-shot prompts; committee
     MiniLM + last-token SmolLM2 + BM25; hard negatives mined with MiniLM);
  2. thinker-only training (behaviour cloning, LoRA on SmolLM2, the composed default's prompt);
  3. joint training of a unified model (LoRA on SmolLM2, LM + InfoNCE);
  4. nDCG@10 on a seeded subset of SciFact ``test``:
     (a) base SmolLM2 as a unified embedder (no thinking / thinking),
     (b) the trained unified model (no thinking / thinking),
     (c) the composed default (MiniLM encoder) with the base thinker vs the trained thinker,
         against dense MiniLM without thinking.

Defaults fit a shared 2-core CPU: a reduced corpus (the evaluated queries' relevant documents,
the training positives, and random SciFact documents up to ``--corpus-size``; ``0`` = the whole
corpus). Every figure in the table is measured on that same corpus, so rows compare with each
other, not with full-corpus figures. Raise the flags on a GPU, e.g.
``--train-queries 809 --corpus-size 0 --eval-queries 300 --group-size 16 --epochs 1``.

nDCG@10 is computed with ``ir_measures`` (pytrec_eval) over an exact inner-product search
(numpy), by a small helper here: the evaluation package was being written at the same time.
Stages resume: synthesized rows, trained models and thoughts (cache) in ``--work`` are reused.

    python benchmarks/train_scifact.py --work /tmp/o1-train-bench
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
STAGES: list[dict] = []


@contextmanager
def stage(name: str):
    """Wall time and peak RSS (sampled every 0.1 s with psutil) of one stage."""
    import psutil

    proc = psutil.Process()
    peak = [proc.memory_info().rss]
    stop = threading.Event()

    def sample():
        while not stop.wait(0.1):
            peak[0] = max(peak[0], proc.memory_info().rss)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    start = time.perf_counter()
    print(f"== {name}", file=sys.stderr, flush=True)
    try:
        yield
    finally:
        stop.set()
        t.join()
        peak[0] = max(peak[0], proc.memory_info().rss)
        STAGES.append({"stage": name, "seconds": round(time.perf_counter() - start, 1), "peak_rss_mb": round(peak[0] / 2**20)})
        print(f"   {STAGES[-1]}", file=sys.stderr, flush=True)


def ndcg10(qrels: dict[str, dict[str, int]], q_ids: list[str], q_vecs, doc_ids: list[str], d_vecs) -> float:
    import ir_measures
    import numpy as np

    scores = q_vecs @ d_vecs.T
    run = []
    for qid, row in zip(q_ids, scores):
        for j in np.argsort(-row)[:100]:
            run.append(ir_measures.ScoredDoc(qid, doc_ids[j], float(row[j])))
    judged = [ir_measures.Qrel(q, d, r) for q in q_ids for d, r in qrels[q].items()]
    return float(ir_measures.calc_aggregate([ir_measures.nDCG @ 10], judged, run)[ir_measures.nDCG @ 10])


def load_eval_set(folder: Path, split: str, n_queries: int, corpus_size: int, extra_docs: set[str], seed: int):
    from o1_retriever.training.data import read_beir_corpus, read_beir_qrels, read_beir_queries

    qrels = read_beir_qrels(folder, split)
    queries = read_beir_queries(folder)
    corpus = read_beir_corpus(folder)
    q_ids = sorted(q for q in qrels if q in queries)
    q_ids = sorted(random.Random(seed).sample(q_ids, min(n_queries, len(q_ids))))
    if corpus_size <= 0:
        doc_ids = sorted(corpus)
    else:
        keep = {d for q in q_ids for d in qrels[q] if d in corpus} | (extra_docs & corpus.keys())
        rest = sorted(set(corpus) - keep)
        fill = random.Random(seed + 1).sample(rest, max(0, min(len(rest), corpus_size - len(keep))))
        doc_ids = sorted(keep | set(fill))
    return qrels, [queries[q] for q in q_ids], q_ids, doc_ids, corpus


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "scifact")
    p.add_argument("--hotpotqa", type=Path, default=None, help="also evaluate (c) on this BEIR folder (e.g. ../shared/data/hotpotqa)")
    p.add_argument("--work", type=Path, default=Path("/tmp/o1-train-bench"))
    p.add_argument("--train-queries", type=int, default=120)
    p.add_argument("--eval-queries", type=int, default=100)
    p.add_argument("--corpus-size", type=int, default=500, help="documents searched (0 = whole corpus)")
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
    p.add_argument("--gradient-checkpointing", action="store_true", help="off by default on CPU (memory is not the limit there)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None)
    args = p.parse_args()

    from o1_retriever import EmbedderConfig, SamplingConfig, ThinkingEmbedder
    from o1_retriever.encoders.sentence_transformers import SentenceTransformerEncoder
    from o1_retriever.thinkers.transformers import TransformersThinker
    from o1_retriever.training.committee import default_committee
    from o1_retriever.training.data import read_pairs
    from o1_retriever.training.mining import mine_hard_negatives
    from o1_retriever.training.synthesis import SYNTHESIS_PROMPT, read_synthesized, synthesize
    from o1_retriever.training.trainer import TrainConfig, train

    args.work.mkdir(parents=True, exist_ok=True)
    thoughts_file = args.work / "thoughts.jsonl"
    sampling = SamplingConfig(max_new_tokens=args.thought_tokens, temperature=0.7, seed=args.seed)

    with stage("load data"):
        rows = read_pairs(args.data, "train", limit=args.train_queries, seed=args.seed)
        qrels, queries, q_ids, doc_ids, corpus = load_eval_set(args.data, "test", args.eval_queries, args.corpus_size, set(), args.seed)
        # training positives join the searched corpus (mining draws negatives from it)
        pos_text = {t for r in rows for t in r.pos}
        train_doc_ids = {d for d, t in corpus.items() if t in pos_text}
        qrels, queries, q_ids, doc_ids, corpus = load_eval_set(args.data, "test", args.eval_queries, args.corpus_size, train_doc_ids, args.seed)
        docs = [corpus[d] for d in doc_ids]
    print(f"train rows {len(rows)}, eval queries {len(q_ids)}, corpus {len(doc_ids)} documents", file=sys.stderr)

    minilm = SentenceTransformerEncoder("minilm", device=args.device)
    with stage("mine hard negatives + embed corpus (MiniLM)"):
        minilm_docs = mine_hard_negatives(rows, docs, minilm, n=args.negatives, skip=3)

    with stage(f"synthesize ({len(rows)} queries x {args.candidates} thoughts)"):
        generator = TransformersThinker("smollm2", prompt=SYNTHESIS_PROMPT, max_query_tokens=1024, device=args.device)
        stats = synthesize(rows, thoughts_file, generator, default_committee(device=args.device), candidates=args.candidates, shots=args.shots, shot_words=args.shot_words, sampling=sampling, batch_rows=8, seed=args.seed)
        print(f"   {stats}", file=sys.stderr)
    synthesized = read_synthesized(thoughts_file)

    common = dict(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr, lora_r=args.lora_r, lora_alpha=2 * args.lora_r,
                  group_size=args.group_size, max_document_tokens=args.max_document_tokens, max_thought_tokens=args.thought_tokens,
                  gradient_checkpointing=args.gradient_checkpointing, seed=args.seed)
    thinker_dir, unified_dir = args.work / "thinker", args.work / "unified"
    results: dict = {"stages": STAGES}
    for mode, out in (("thinker", thinker_dir), ("joint", unified_dir)):
        if (out / "o1_training.json").exists():
            print(f"reusing {out}", file=sys.stderr)
            results[f"train_{mode}"] = json.loads((out / "o1_training.json").read_text())["o1_retriever"]["losses"]
            continue
        with stage(f"train {mode} ({len(synthesized)} rows)"):
            res = train(synthesized, out, TrainConfig(mode=mode, **common))
        results[f"train_{mode}"] = res.losses

    cache = args.work / "thoughts-eval.sqlite"
    table: list[tuple[str, float]] = []

    def evaluate(label: str, embedder, doc_vecs, thinking: bool, q=queries, ids=q_ids, rel=qrels, dids=doc_ids):
        with stage(f"eval {label}"):
            vecs = embedder.embed_queries(q, thinking=thinking)
            score = ndcg10(rel, ids, vecs, dids, doc_vecs)
        table.append((label, score))
        print(f"   nDCG@10 {score:.4f}", file=sys.stderr, flush=True)
        return score

    def save_partial():
        (args.work / "results.json").write_text(json.dumps({**results, "ndcg10": dict(table)}, indent=1))

    # most telling comparisons first, so a cut-short run still reports them (results.json is
    # rewritten after every evaluation)
    dense = ThinkingEmbedder(None, minilm)
    evaluate("dense MiniLM, no thinking", dense, minilm_docs, False)
    for label, thinker_spec in (("composed: trained thinker + MiniLM", str(thinker_dir)), ("composed: base SmolLM2 thinker + MiniLM", "smollm2")):
        emb = ThinkingEmbedder.from_config(EmbedderConfig(thinker=thinker_spec, thoughts=args.eval_thoughts, sampling=sampling, cache=str(cache), device=args.device))
        evaluate(label, emb, minilm_docs, True)
        save_partial()
    for label, model in (("unified: trained", str(unified_dir)), ("unified: base SmolLM2", "smollm2")):
        emb = ThinkingEmbedder.from_config(EmbedderConfig(model=model, thoughts=args.eval_thoughts, sampling=sampling, cache=str(cache), aggregation="o1", device=args.device))
        emb.encoder.max_document_tokens = 512 if args.corpus_size <= 0 else args.max_document_tokens
        with stage(f"embed corpus ({label})"):
            dvec = emb.embed_documents(docs, show_progress=True)
        evaluate(f"{label}, no thinking", emb, dvec, False)
        evaluate(f"{label}, thinking", emb, dvec, True)
        save_partial()

    if args.hotpotqa:
        hq, hqueries, hids, hdocs, hcorpus = load_eval_set(args.hotpotqa, "test", 200, 0, set(), args.seed)
        hdoc_text = [hcorpus[d] for d in hdocs]
        with stage("HotpotQA: embed corpus (MiniLM)"):
            hvec = minilm.encode_documents(hdoc_text, show_progress=True)
        evaluate("HotpotQA-200 dense MiniLM", dense, hvec, False, hqueries, hids, hq, hdocs)
        for label, spec in (("HotpotQA-200 composed: base thinker", "smollm2"), ("HotpotQA-200 composed: trained thinker", str(thinker_dir))):
            emb = ThinkingEmbedder.from_config(EmbedderConfig(thinker=spec, thoughts=args.eval_thoughts, sampling=sampling, cache=str(cache), device=args.device))
            evaluate(label, emb, hvec, True, hqueries, hids, hq, hdocs)

    scores = dict(table)
    dense_score = scores["dense MiniLM, no thinking"]
    results.update(args={k: str(v) for k, v in vars(args).items()}, ndcg10=scores, eval_queries=len(q_ids), corpus_documents=len(doc_ids))
    (args.work / "results.json").write_text(json.dumps(results, indent=1))

    print(f"\nSciFact test, {len(q_ids)} seeded queries, {len(doc_ids)}-document corpus; trained on {len(synthesized)} SciFact train queries")
    print(f"{'configuration':58s} {'nDCG@10':>8s} {'vs dense':>9s}")
    for label, score in table:
        ref = scores.get("HotpotQA-200 dense MiniLM", dense_score) if label.startswith("HotpotQA") else dense_score
        print(f"{label:58s} {score:8.4f} {100 * (score - ref):+9.1f}")
    trained_gain = 100 * (scores["composed: trained thinker + MiniLM"] - dense_score)
    uni = 100 * (scores["unified: trained, thinking"] - scores["unified: trained, no thinking"])
    print(f"\ntarget: trained thinker >= +3.0 over dense: {trained_gain:+.1f} ({'met' if trained_gain >= 3 else 'not met'})")
    print(f"target: trained unified thinking beats its no-thinking mode: {uni:+.1f} ({'met' if uni > 0 else 'not met'})")
    print(f"\n{'stage':58s} {'wall s':>8s} {'peak RSS MB':>12s}")
    for s in STAGES:
        print(f"{s['stage']:58s} {s['seconds']:8.1f} {s['peak_rss_mb']:12d}")


if __name__ == "__main__":
    main()
