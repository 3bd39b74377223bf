"""Evidence for encoder fine-tuning (``o1-retriever train --mode encoder``): choose on a dev
split of SciFact ``train``, report on SciFact ``test`` and, out of domain, on HotpotQA-200.

Stages (each timed, with its peak resident memory; every training and evaluation is an
``o1-retriever`` subprocess, the commands a user runs):

  1. ``mine``: SciFact ``train`` pairs (all 809 queries) with hard negatives mined once by MiniLM
     over the whole corpus, written to ``WORK/pairs.jsonl`` (the train command mines the same
     ones itself from the BEIR folder; mining once keeps the sweep cheap);
  2. ``sweep`` (dev split only): ``--dev-fraction 0.2`` (a seeded 20 % of the training queries
     held out), ``--epochs 3``; learning rates at thought dropout 1 (the plain fine-tune), then
     thought dropouts at the best learning rate. The dev metrics after every epoch (nDCG@10
     without and with thinking) come from the trained folders' ``o1_encoder.json``. The
     choice maximises the mean of the two dev figures; the test sets are never looked at;
  3. ``final``: the command with its defaults (which must equal the sweep's choice) on the BEIR
     folder; ``all809``: the same on all 809 queries (``--dev-fraction 0``); ``curve``: the
     defaults at every thought dropout of ``--curve`` (on the mined pairs of stage 1, the same rows);
     ``mix``: the default encoder with a share ``--mix`` of MiniLM's weights mixed back (what
     ``--base-weight`` saves), the remedy out of domain;
  4. ``eval``: ``o1-retriever eval --systems dense,thinking`` with each encoder on SciFact
     ``test`` (300 queries, 5,183 abstracts) and HotpotQA-200 (1,971 paragraphs); gains with
     paired bootstrap 95 % intervals (``o1_retriever.evaluation.stats``).

Thoughts come from ``--thinker`` (default the llama.cpp SmolLM2, k=3 x 64 tokens, seed 0) through
the default thought cache, shared by training and evaluation: a rerun generates nothing. Every
stage resumes from ``--work``.

    python benchmarks/train_encoder.py --work /tmp/o1-encoder-bench
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from _common import STAGES, dataset, machine, run_eval, stage, table

from o1_retriever.evaluation.stats import paired_difference

SWEEP_LRS = (1e-5, 3e-5, 1e-4)
SWEEP_DROPOUTS = (0.0, 0.25, 0.5, 0.75)
CURVE = (0.0, 0.25, 0.5, 0.75, 1.0)


def o1(args: argparse.Namespace, *command: str) -> None:
    cmd = [sys.executable, "-m", "o1_retriever", *command]
    print("   $ " + " ".join(cmd), file=sys.stderr, flush=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    subprocess.run(cmd, check=True, env=env)


def thinker_options(args: argparse.Namespace) -> list[str]:
    opts = ["--thinker", args.thinker, "--thoughts", "3", "--max-new-tokens", "64", "--seed", "0"]
    return opts + (["--thinker-threads", "1"] if args.thinker.startswith("llamacpp:") else [])


def mine(args: argparse.Namespace) -> Path:
    out = args.work / "pairs.jsonl"
    if out.exists():
        return out
    from o1_retriever import EmbedderConfig, ThinkingEmbedder
    from o1_retriever.evaluation import load_beir
    from o1_retriever.evaluation.retrieval import DocumentStore
    from o1_retriever.factory import build_encoder
    from o1_retriever.training import read_pairs, write_rows
    from o1_retriever.training.mining import mine_hard_negatives

    scifact = dataset("scifact")
    with stage("mine 1 hard negative per SciFact train query (MiniLM, whole corpus)"):
        rows = read_pairs(scifact, "train")
        # the corpus vectors that o1-retriever eval stored for SciFact (embedded once, reused)
        store = DocumentStore(load_beir(scifact, "train"), ThinkingEmbedder(None, build_encoder(EmbedderConfig())))
        texts = [store.texts[i] for i in store.ids]
        mine_hard_negatives(rows, texts, store.index.embedder.encoder, n=1, corpus_vectors=store.matrix)
        write_rows(rows, out)
    return out


def train(args: argparse.Namespace, name: str, data: Path, *options: str) -> dict:
    out = args.work / "models" / name
    if not (out / "o1_encoder.json").exists():
        with stage(f"train {name}"):
            o1(args, "train", str(data), "--mode", "encoder", "--out", str(out), *thinker_options(args), *options)
    return json.loads((out / "o1_encoder.json").read_text())


def seen_test_queries(folder: Path) -> set[str]:
    """SciFact test queries with a relevant abstract that is also relevant to a training query."""
    from o1_retriever.evaluation.beir import read_split

    def qrels(split: str) -> dict[str, set[str]]:
        return {q: set(docs) for q, docs in read_split(folder, split)[1].items()}

    trained_on = set().union(*qrels("train").values())
    return {q for q, docs in qrels("test").items() if docs & trained_on}


def mix(args: argparse.Namespace, weight: float) -> str:
    """``models/default`` with a share ``weight`` of MiniLM's weights mixed back: the weights that
    ``train --base-weight WEIGHT`` saves (the mix is applied after an identical training), built
    from the trained folder instead of training again."""
    out = args.work / "models" / f"mix-{weight:g}"
    if not (out / "o1_encoder.json").exists():
        from o1_retriever.training.encoder import mix_saved_encoder

        with stage(f"mix {weight:g} x MiniLM into the command-default encoder"):
            # dev.after stays empty: not scored, this benchmark reports the test sets
            mix_saved_encoder(args.work / "models" / "default", "minilm", weight, out, device="cpu")
    return str(out)


def dev_rows(meta: dict) -> list[dict]:
    """One row per evaluated epoch of a sweep run: dev nDCG@10 without / with thinking."""
    rows = [{"epoch": 0, **meta["dev"]["before"]}]
    for entry in meta["dev"]["history"]:
        rows.append({"epoch": round(entry["epoch"]), **{k: v for k, v in entry.items() if k.startswith("dev")}})
    return rows


def objective(row: dict) -> float:
    return (row["dev_ndcg@10"] + row.get("dev_thinking_ndcg@10", row["dev_ndcg@10"])) / 2


def sweep(args: argparse.Namespace, pairs: Path) -> dict:
    runs: dict[str, list[dict]] = {}
    common = ["--dev-fraction", "0.2", "--epochs", "3", "--negatives", "1"]
    for lr in SWEEP_LRS:
        runs[f"lr={lr:g} dropout=1"] = dev_rows(train(args, f"sweep-lr{lr:g}-p1", pairs, *common, "--lr", str(lr), "--thought-dropout", "1"))
    best_lr = max(SWEEP_LRS, key=lambda lr: max(objective(r) for r in runs[f"lr={lr:g} dropout=1"][1:]))
    for p in SWEEP_DROPOUTS:
        runs[f"lr={best_lr:g} dropout={p:g}"] = dev_rows(train(args, f"sweep-lr{best_lr:g}-p{p:g}", pairs, *common, "--lr", str(best_lr), "--thought-dropout", str(p)))
    best = max(((name, r) for name, rs in runs.items() for r in rs[1:]), key=lambda nr: objective(nr[1]))
    print("\nDev split: 20 % of SciFact train (seeded), every passage the pairs name; nDCG@10 after each epoch (epoch 0 = MiniLM)")
    print(table(["run", "epoch", "no thinking", "thinking", "mean"], [
        [name, r["epoch"], f"{r['dev_ndcg@10']:.4f}", f"{r.get('dev_thinking_ndcg@10', float('nan')):.4f}", f"{objective(r):.4f}"]
        for name, rs in runs.items() for r in rs
    ]))
    print(f"chosen on dev: {best[0]}, epochs={best[1]['epoch']} (mean {objective(best[1]):.4f})\n")
    return {"runs": runs, "chosen": {"run": best[0], "epochs": best[1]["epoch"]}}


def evaluate(args: argparse.Namespace, label: str, encoder: str) -> dict[str, dict]:
    out = {}
    for name, folder in (("SciFact test", dataset("scifact")), ("HotpotQA-200", dataset("hotpotqa"))):
        opts = ["--split", "test", "--systems", "dense,thinking", "--encoder", encoder, *thinker_options(args)]
        out[name] = run_eval(name, label, folder, opts, args.work)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", type=Path, default=Path("/tmp/o1-encoder-bench"))
    p.add_argument("--thinker", default="llamacpp:smollm2")
    p.add_argument("--threads", type=int, default=2, help="torch threads of the subprocesses (OMP_NUM_THREADS)")
    p.add_argument("--stages", default="sweep,final,all809,eval,curve")
    p.add_argument("--curve", type=lambda v: [float(x) for x in v.split(",")], default=list(CURVE), help="thought dropouts of the curve (comma-separated)")
    p.add_argument("--mix", type=lambda v: [float(x) for x in v.split(",")], default=[0.25, 0.5, 0.75], help="base weights of the mix stage (WiSE-FT remedy out of domain)")
    p.add_argument("--json", help="save the figures here")
    args = p.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    stages = set(args.stages.split(","))
    print(f"machine: {machine()}", file=sys.stderr)
    scifact = dataset("scifact")
    results: dict = {"stages": STAGES}

    if "sweep" in stages:
        results["sweep"] = sweep(args, mine(args))
    encoders = {"MiniLM": "minilm"}
    default: dict | None = None
    if "final" in stages or "curve" in stages:
        # the command with its defaults, on the BEIR folder (mining included), as a user runs it
        default = train(args, "default", scifact)
        results["default_settings"] = default["settings"]
        encoders["fine-tuned, command defaults"] = str(args.work / "models" / "default")
    if "all809" in stages:
        train(args, "all-809", scifact, "--dev-fraction", "0")
        encoders["fine-tuned, defaults, all 809 queries"] = str(args.work / "models" / "all-809")
    if "curve" in stages:
        assert default is not None
        pairs = mine(args)  # the same rows and negatives the command mines: only the mining is saved
        for pd in args.curve:
            if pd == default["settings"]["thought_dropout"]:
                encoders[f"curve: dropout {pd:g}"] = encoders["fine-tuned, command defaults"]  # the same training
                continue
            train(args, f"curve-p{pd:g}", pairs, "--thought-dropout", str(pd))
            encoders[f"curve: dropout {pd:g}"] = str(args.work / "models" / f"curve-p{pd:g}")
    if "mix" in stages:
        assert default is not None or (args.work / "models" / "default" / "o1_encoder.json").exists()
        for w in args.mix:
            encoders[f"defaults, base weight {w:g}"] = mix(args, w)
    if "eval" in stages or "curve" in stages or "mix" in stages:
        evals = {label: evaluate(args, label, enc) for label, enc in encoders.items()}
        base = evals["MiniLM"]
        rows = []
        for label, by_set in evals.items():
            for name, res in by_set.items():
                dense, thinking = res["systems"]["dense"], res["systems"]["thinking[o1+query]"]
                ref = base[name]["systems"]["dense"]["per_query"]
                rows.append([
                    label, name, res["queries"],
                    f"{dense['metrics']['nDCG@10']:.3f}", "" if label == "MiniLM" else str(paired_difference(ref, dense["per_query"])),
                    f"{thinking['metrics']['nDCG@10']:.3f}", str(paired_difference(dense["per_query"], thinking["per_query"])),
                ])
        print("\nnDCG@10 through o1-retriever eval (whole corpora, exact search); gains in points with paired bootstrap 95 % intervals")
        print(table(["encoder", "set", "queries", "no thinking", "vs MiniLM", "thinking", "thinking vs no thinking"], rows))
        # SciFact's claims come in groups about one abstract: most test queries ask about an
        # abstract that a training query named. The split shows what the encoder learned about
        # the corpus it saw, and what carries over to abstracts no training pair named.
        seen = seen_test_queries(scifact)
        split_rows = []
        for label, by_set in evals.items():
            res = by_set["SciFact test"]["systems"]
            ref = base["SciFact test"]["systems"]["dense"]["per_query"]
            for part, keep in (("abstract named in training", True), ("abstract never named in training", False)):
                qids = {q for q in res["dense"]["per_query"] if (q in seen) == keep}
                pick = lambda pq: {q: v for q, v in pq.items() if q in qids}  # noqa: E731
                dense_pq, think_pq = pick(res["dense"]["per_query"]), pick(res["thinking[o1+query]"]["per_query"])
                mean = lambda pq: sum(v["nDCG@10"] for v in pq.values()) / len(pq)  # noqa: E731
                split_rows.append([label, part, len(qids), f"{mean(dense_pq):.3f}", "" if label == "MiniLM" else str(paired_difference(pick(ref), dense_pq)),
                                   f"{mean(think_pq):.3f}", str(paired_difference(dense_pq, think_pq))])
        print("\nSciFact test by whether a query's relevant abstract was a positive of a training query (SciFact train qrels)")
        print(table(["encoder", "test queries", "queries", "no thinking", "vs MiniLM", "thinking", "thinking vs no thinking"], split_rows))
        results["scifact_seen_split"] = split_rows
        results["eval"] = {label: {name: {s: r["systems"][s]["metrics"] for s in r["systems"]} for name, r in v.items()} for label, v in evals.items()}
    print("\n" + table(["stage", "wall s", "peak RSS MiB"], [[s["stage"], s["seconds"], s.get("subprocess_peak_rss_mb", s["peak_rss_mb"])] for s in STAGES]))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
