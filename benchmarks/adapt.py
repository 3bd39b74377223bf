"""Evidence for ``o1-retriever adapt`` (adapting the encoder to a corpus without labels).

Stages (each timed; every generation, training and evaluation is an ``o1-retriever``
subprocess, the commands a user runs; every stage resumes from ``--work``):

* ``throughput``: questions per second writing questions for the first ``--passages`` SciFact
  abstracts with the llama.cpp SmolLM2: single-stream (one question per call, one sequence at a
  time) against the batched generation ``adapt`` runs (the n questions of a chunk share one
  prompt evaluation and are decoded together), side by side;
* ``generate-scifact`` / ``generate-hotpotqa``: ``adapt CORPUS --generate-only`` (``--n``
  questions per chunk, optionally for a seeded sample of ``--max-chunks-*`` chunks);
* ``adapt-scifact`` / ``adapt-hotpotqa``: ``adapt CORPUS --questions`` on that file (filters,
  mining, training, model card), then ``o1-retriever eval --systems dense`` on SciFact test and
  HotpotQA-200 for it and MiniLM;
* ``pairs``: the same on SciFact plus its labelled train pairs (``--pairs``), once with adapt's
  defaults and once with the settings ``train --mode encoder`` chose for labelled pairs on its dev
  split (lr 1e-4, 3 epochs: docs/training.md); ``thinking``:
  thinking at query time with the SciFact-adapted encoder; ``multivector``: questions as extra
  vectors of their chunk (best of a chunk's vectors), measured on SciFact *train* claims;
* ``report``: the tables (SciFact test, all 300 claims and the 104 whose abstracts no training
  claim names; HotpotQA-200), gains against MiniLM with paired bootstrap 95 % intervals.

    flock /tmp/o1-measure.lock python benchmarks/adapt.py --work /work/runs/issue21/bench --stages throughput
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from _common import STAGES, corpus, dataset, machine, run_eval, stage, table

from o1_retriever.evaluation.stats import paired_difference


def o1(args: argparse.Namespace, *command: str) -> None:
    cmd = [sys.executable, "-m", "o1_retriever", *command]
    print("   $ " + " ".join(cmd), file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True, env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})


def throughput(args: argparse.Namespace) -> dict:
    from o1_retriever.prompts import QUESTION_PROMPT
    from o1_retriever.thinkers.base import SamplingConfig
    from o1_retriever.thinkers.llamacpp import LlamaCppThinker

    passages = [(d.get("title", "") + " " + d["text"]).strip() for d in corpus("scifact", args.passages)]
    thinker = LlamaCppThinker("smollm2", prompt=QUESTION_PROMPT, n_threads=args.threads, max_query_tokens=args.max_chunk_tokens)
    sampling = SamplingConfig(max_new_tokens=args.max_new_tokens, temperature=0.7, seed=0)
    thinker.think(passages[:1], 1, sampling)  # warm-up: template prefix, context
    rows, out = [], {}
    with stage("throughput: single-stream"):
        start = time.perf_counter()
        single = [thinker.think([p], 1, sampling)[0][0] for p in passages]
        single_s = time.perf_counter() - start
    out["single"] = {"questions": len(single), "seconds": single_s, "per_s": len(single) / single_s}
    rows.append(["single-stream (1 question per call)", len(single), f"{single_s:.1f}", f"{len(single) / single_s:.2f}", "1.00x"])
    for n in args.batched_n:
        with stage(f"throughput: {n} per chunk, batched"):
            start = time.perf_counter()
            got = thinker.think(passages, n, sampling)
            seconds = time.perf_counter() - start
        count = sum(len(g) for g in got)
        out[f"n{n}"] = {"questions": count, "seconds": seconds, "per_s": count / seconds}
        rows.append([f"{n} per chunk, sharing the prompt, decoded together", count, f"{seconds:.1f}", f"{count / seconds:.2f}", f"{(count / seconds) / out['single']['per_s']:.2f}x"])
    print(f"\nQuestion generation, llama.cpp SmolLM2, {len(passages)} SciFact abstracts (cut to {args.max_chunk_tokens} tokens), "
          f"{args.max_new_tokens} new tokens at most, {args.threads} threads")
    print(table(["mode", "questions", "seconds", "questions/s", "vs single-stream"], rows))
    return out


def generate(args: argparse.Namespace, name: str) -> Path:
    """``adapt --generate-only`` (round trip off here: the adapt stage runs it); resumes."""
    out = args.work / "gen" / name
    with stage(f"generate {name}"):
        o1(args, "adapt", str(dataset(name)), "--out", str(out), "--generate-only", "--top-r", "0", *generation_options(args, name))
    return out / "questions.jsonl"


def generation_options(args: argparse.Namespace, name: str) -> list[str]:
    sample = {"scifact": args.max_chunks_scifact, "hotpotqa": args.max_chunks_hotpotqa}[name]
    return ["-n", str(args.n), "--thinker", "llamacpp:smollm2", "--thinker-threads", str(args.threads), "--max-new-tokens", str(args.max_new_tokens),
            "--max-chunk-tokens", str(args.max_chunk_tokens), "--seed", "0", *(["--max-chunks", str(sample)] if sample else [])]


def adapt(args: argparse.Namespace, label: str, name: str, *options: str) -> str:
    """``adapt --questions`` on the generated file (filters, mining, training, model card)."""
    out = args.work / "models" / label
    if not (out / "o1_encoder.json").exists():
        with stage(f"adapt {label}"):
            o1(args, "adapt", str(dataset(name)), "--out", str(out), "--questions", str(args.work / "gen" / name / "questions.jsonl"),
               *generation_options(args, name), *options)
    return str(out)


def evaluate(args: argparse.Namespace, name: str, label: str, encoder: str, split: str = "test", systems: str = "dense") -> dict:
    return run_eval(f"{name}-{split}", label, dataset(name), ["--split", split, "--systems", systems, "--encoder", encoder, "--thinker", "llamacpp:smollm2",
                                                              "--thinker-threads", str(args.threads), "--thoughts", str(args.thoughts), "--max-new-tokens", str(args.thought_tokens),
                                                              "--seed", "0"], args.work)


def never_named_test_queries() -> set[str]:
    """SciFact test claims none of whose relevant abstracts a training claim names (the split of
    benchmarks/train_encoder.py)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from train_encoder import seen_test_queries

    from o1_retriever.evaluation.beir import read_split

    return set(read_split(dataset("scifact"), "test")[1]) - seen_test_queries(dataset("scifact"))


def gain_rows(label: str, res: dict, base: dict, system: str = "dense", only: set[str] | None = None) -> list:
    pick = (lambda pq: {q: v for q, v in pq.items() if q in only}) if only is not None else (lambda pq: pq)
    mine, ref = pick(res["systems"][system]["per_query"]), pick(base["systems"]["dense"]["per_query"])
    mean = sum(v["nDCG@10"] for v in mine.values()) / len(mine)
    return [label, len(mine), f"{mean:.4f}", str(paired_difference(ref, mine))]


def corpus_vectors(encoder, folder: Path, ids: list[str], docs: dict[str, str]):
    """MiniLM's vectors of the corpus: read from the collection ``o1-retriever eval`` keeps for it
    (the same vectors; read only), else encoded here."""
    import numpy as np

    from o1_retriever.embedder import ThinkingEmbedder
    from o1_retriever.evaluation.beir import load_beir
    from o1_retriever.evaluation.retrieval import collection_name, eval_db
    from o1_retriever.index import make_client, open_collection

    try:
        collection = open_collection(make_client(eval_db(), create=False), collection_name(load_beir(folder, "train"), ThinkingEmbedder(None, encoder)))
        got = collection.get(ids=ids, include=["embeddings"])
        by_id = dict(zip(got["ids"], got["embeddings"]))
        if len(by_id) == len(ids):
            return np.asarray([by_id[i] for i in ids], dtype=np.float32)
    except Exception as exc:  # noqa: BLE001 - any failure: encode instead
        print(f"   (no stored vectors: {exc}; encoding the corpus)", file=sys.stderr)
    return encoder.encode_documents([docs[i] for i in ids], show_progress=True)


def multivector(args: argparse.Namespace, questions: Path, split: str = "train") -> list:
    """Questions as extra vectors (LangChain's MultiVectorRetriever, LlamaIndex's
    QuestionsAnsweredExtractor), measured before building it into the index: a chunk scores as
    the best of its own vector and its kept questions' vectors, with base MiniLM, exact search,
    on SciFact ``split`` claims (train: the dev split; the test claims are not looked at)."""
    import numpy as np

    from o1_retriever.encoders.sentence_transformers import SentenceTransformerEncoder
    from o1_retriever.evaluation.beir import read_split
    from o1_retriever.evaluation.metrics import evaluate_run
    from o1_retriever.training.questions import read_questions

    folder = dataset("scifact")
    texts, qrels, _ = read_split(folder, split)
    docs = {d["_id"]: (d.get("title", "") + " " + d["text"]).strip() for d in corpus("scifact")}
    ids = list(docs)
    encoder = SentenceTransformerEncoder("minilm", device="cpu")
    cache = args.work / "vectors" / "scifact-minilm.npy"
    cache.parent.mkdir(parents=True, exist_ok=True)
    with stage(f"multivector ({split} claims)"):
        if not cache.exists():
            np.save(cache, corpus_vectors(encoder, folder, ids, docs))
        doc_vectors = np.load(cache)
        kept = [q for q in read_questions(questions) if q.kept and q.chunk_id in docs]
        q_vectors = encoder.encode_queries([q.question for q in kept])
        position = {d: i for i, d in enumerate(ids)}
        owner = np.array([position[q.chunk_id] for q in kept])
        qids = [q for q in texts if q in qrels]
        claims = encoder.encode_queries([texts[q] for q in qids])
        single = claims @ doc_vectors.T
        multi = single.copy()
        via_questions = claims @ q_vectors.T
        for j in range(len(kept)):  # best of a chunk's vectors
            np.maximum(multi[:, owner[j]], via_questions[:, j], out=multi[:, owner[j]])

        def run(scores: np.ndarray) -> dict:
            top = np.argsort(-scores, axis=1)[:, :100]
            return {q: {ids[j]: float(scores[i, j]) for j in top[i]} for i, q in enumerate(qids)}

        _, base = evaluate_run(qrels, run(single))
        _, extra = evaluate_run(qrels, run(multi))
    mean = lambda pq: sum(v["nDCG@10"] for v in pq.values()) / len(pq)  # noqa: E731
    rows = [["chunk vectors only (MiniLM)", len(qids), f"{mean(base):.4f}", ""],
            [f"+ {len(kept)} kept questions as extra vectors (max)", len(qids), f"{mean(extra):.4f}", str(paired_difference(base, extra))]]
    print(f"\nQuestions as extra vectors, SciFact {split} claims, base MiniLM, exact search")
    print(table(["index", "claims", "nDCG@10", "vs chunk vectors only"], rows))
    return rows


def thinking_label(args: argparse.Namespace) -> str:
    """The thinking stage's eval label: it names the thinking settings, since a stored eval is
    reused by label (another --thoughts must not read this one's figures)."""
    return f"scifact-thinking-{args.thoughts}x{args.thought_tokens}"


def model_label(name: str, options: list[str]) -> str:
    """A model folder's name: the corpus, then the training options it was adapted with
    (``hotpotqa-lr1e-4-epochs3``), so runs with other settings sit side by side."""
    return "-".join([name, *(o.lstrip("-") + v for o, v in zip(options[::2], options[1::2]))])


def dev_figure(model: Path) -> str:
    """The dev split's nDCG@10 before -> after training, from the model's o1_encoder.json (the
    figure a setting is chosen by; never the test queries)."""
    dev = json.loads((model / "o1_encoder.json").read_text()).get("dev", {})
    key = next((k for k in dev.get("after", {}) if "ndcg" in k.lower()), None)
    return f"dev {dev.get('before', {}).get(key, float('nan')):.3f} -> {dev['after'][key]:.3f}" if key else "no dev figure"


#: (model label, title, extra adapt options) of the SciFact runs the report shows
PAIRS_RUNS = (
    ("scifact", "adapted on SciFact", ()),
    ("scifact-pairs", "SciFact train pairs + generated, adapt's defaults (lr 2e-5, 1 epoch)", ()),
    ("scifact-pairs-lr1e-4-e3", "SciFact train pairs + generated, train's labelled settings (lr 1e-4, 3 epochs)", ("--lr", "1e-4", "--epochs", "3")),
)


def report(args: argparse.Namespace, results: dict) -> None:
    """The tables, from every evaluation that exists under --work."""
    never = never_named_test_queries()
    models = args.work / "models"
    sf_base, hp_base = evaluate(args, "scifact", "MiniLM", "minilm"), evaluate(args, "hotpotqa", "MiniLM", "minilm")
    rows = [gain_rows("MiniLM", sf_base, sf_base), gain_rows("MiniLM, 104 never named", sf_base, sf_base, only=never)]
    hp_rows = [gain_rows("MiniLM", hp_base, hp_base)]
    for label, title, _ in PAIRS_RUNS:
        if (models / label / "o1_encoder.json").exists():
            res = evaluate(args, "scifact", label, str(models / label))
            rows += [gain_rows(title, res, sf_base), gain_rows(f"{title}, 104 never named", res, sf_base, only=never)]
    thinking = args.work / "eval" / f"scifact-test-{thinking_label(args)}" / "results.json"
    if thinking.exists():
        res = json.loads(thinking.read_text())["systems"]
        rows.append(["adapted on SciFact, thinking at query time vs not", len(res["dense"]["per_query"]), f"{res['thinking[o1+query]']['metrics']['nDCG@10']:.4f}",
                     str(paired_difference(res["dense"]["per_query"], res["thinking[o1+query]"]["per_query"]))])
    hotpotqa_models = sorted(p.name for p in models.glob("hotpotqa*") if (p / "o1_encoder.json").exists())
    for label, title in [(m, f"adapted on HotpotQA-200{m[len('hotpotqa'):]}, {dev_figure(models / m)}") for m in hotpotqa_models] + [("scifact", "adapted on SciFact")]:
        if (models / label / "o1_encoder.json").exists():
            hp_rows.append(gain_rows(title, evaluate(args, "hotpotqa", label, str(models / label)), hp_base))
    print("\nSciFact test (5,183 abstracts), nDCG@10 through o1-retriever eval, gain vs MiniLM in points [paired bootstrap 95 % CI]")
    print(table(["encoder", "claims", "nDCG@10", "vs MiniLM"], rows))
    print("\nHotpotQA-200 (1,971 paragraphs)")
    print(table(["encoder", "queries", "nDCG@10", "vs MiniLM"], hp_rows))
    results["scifact"], results["hotpotqa"] = rows, hp_rows
    results["adaptation"] = {p.name: json.loads((p / "o1_encoder.json").read_text()).get("adaptation") for p in sorted(models.glob("*")) if (p / "o1_encoder.json").exists()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", type=Path, default=Path("/tmp/o1-adapt-bench"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--stages", default="throughput,generate,adapt,pairs,thinking,multivector,report",
                   help="throughput, generate[-scifact|-hotpotqa], adapt[-scifact|-hotpotqa], pairs, thinking, multivector, report")
    p.add_argument("--passages", type=int, default=12, help="throughput stage: abstracts")
    p.add_argument("--batched-n", type=lambda v: [int(x) for x in v.split(",")], default=[2, 3, 4], help="throughput stage: questions per chunk")
    p.add_argument("--n", type=int, default=2, help="questions per chunk")
    p.add_argument("--max-chunks-scifact", type=int, default=None, help="questions for a seeded sample of this many SciFact abstracts")
    p.add_argument("--max-chunks-hotpotqa", type=int, default=None, help="questions for a seeded sample of this many HotpotQA paragraphs")
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--max-chunk-tokens", type=int, default=256)
    p.add_argument("--thoughts", type=int, default=1, help="thinking stage: thoughts per query (the defaults)")
    p.add_argument("--thought-tokens", type=int, default=32, help="thinking stage: new tokens per thought (the defaults)")
    p.add_argument("--train-options", default="", help="extra adapt options of the adapt stages ('--lr 1e-4 --epochs 3'; the model folder is named after them): "
                   "compare runs by their dev figure, never by test")
    p.add_argument("--json", help="save the figures here")
    args = p.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    stages = set(args.stages.split(","))
    wants = lambda stage_name, name: stage_name in stages or f"{stage_name}-{name}" in stages  # noqa: E731
    print(f"machine: {machine()}", file=sys.stderr)
    results: dict = {"stages": STAGES}
    if "throughput" in stages:
        results["throughput"] = throughput(args)
    extra = args.train_options.split()
    for name in ("scifact", "hotpotqa"):
        if wants("generate", name):
            generate(args, name)
        if wants("adapt", name):
            label = model_label(name, extra)
            evaluate(args, name, label, adapt(args, label, name, *extra))
    if wants("adapt", "scifact") or "pairs" in stages or "thinking" in stages:
        evaluate(args, "scifact", "MiniLM", "minilm")
    if wants("adapt", "hotpotqa") or wants("adapt", "scifact"):
        evaluate(args, "hotpotqa", "MiniLM", "minilm")
    if wants("adapt", "scifact"):
        evaluate(args, "hotpotqa", "scifact", str(args.work / "models" / "scifact"))
    if "pairs" in stages:
        for label, _, options in PAIRS_RUNS[1:]:
            enc = adapt(args, label, "scifact", *extra, *options, "--pairs", str(dataset("scifact")), "--split", "train")
            evaluate(args, "scifact", label, enc)
    if "thinking" in stages:
        evaluate(args, "scifact", thinking_label(args), str(args.work / "models" / "scifact"), systems="dense,thinking")
    if "multivector" in stages:
        # the questions that passed the degenerate and duplicate filters (generation ran without the
        # round trip), then those that passed the round trip too (the adapted model's file)
        results["multivector"] = multivector(args, args.work / "gen" / "scifact" / "questions.jsonl")
        if (args.work / "models" / "scifact" / "questions.jsonl").exists():
            results["multivector"] += multivector(args, args.work / "models" / "scifact" / "questions.jsonl")[1:]
    if "report" in stages:
        report(args, results)
    print("\n" + table(["stage", "wall s", "peak RSS MiB"], [[s["stage"], s["seconds"], s.get("subprocess_peak_rss_mb", s["peak_rss_mb"])] for s in STAGES]))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
