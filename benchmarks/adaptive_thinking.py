"""Evidence for adaptive thinking (``--think auto``) and the latency / quality frontier.

  1. ``o1-retriever calibrate`` on SciFact ``train`` (809 queries, budget 0.5): the gate profile;
  2. ``o1-retriever eval --systems dense,thinking,auto`` with that profile on SciFact ``test``
     (300 queries) and, transferred as it is, on HotpotQA-200; with ``--fresh-thoughts`` each
     eval gets an empty thought cache, so always-thinking and ``auto`` pay for their generation
     in the same run (otherwise thoughts come from the default cache and latency excludes them);
  3. ``o1-retriever frontier`` on both sets (k in 1,2,3 x 16,32,64 tokens, always and auto).

Prints auto against always-thinking and dense (paired bootstrap 95 % intervals), the thought
share, mean / p95 latency and auto's latency ratio, and the issue's targets. Every command is an
``o1-retriever`` subprocess; results are reused from ``--work``.

    python benchmarks/adaptive_thinking.py --work /tmp/o1-adaptive --fresh-thoughts
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import STAGES, dataset, machine, stage, table

SETS = (("SciFact test", "scifact"), ("HotpotQA-200", "hotpotqa"))


def o1(args: argparse.Namespace, label: str, *command: str) -> None:
    cmd = [sys.executable, "-m", "o1_retriever", *command]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    with stage(label):
        print("   $ " + " ".join(cmd), file=sys.stderr, flush=True)
        subprocess.run(cmd, check=True, env=env)


def thinker(args: argparse.Namespace) -> list[str]:
    opts = ["--thinker", args.thinker, "--thoughts", "3", "--max-new-tokens", "64", "--seed", "0"]
    return opts + (["--thinker-threads", str(args.thinker_threads)] if args.thinker.startswith("llamacpp:") else [])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", type=Path, default=Path("/tmp/o1-adaptive"))
    p.add_argument("--thinker", default="llamacpp:smollm2")
    p.add_argument("--thinker-threads", type=int, default=1)
    p.add_argument("--threads", type=int, default=2, help="torch threads of the subprocesses")
    p.add_argument("--budget", type=float, default=0.5)
    p.add_argument("--fresh-thoughts", action="store_true", help="an empty thought cache per eval: latency includes generation")
    p.add_argument("--stages", default="calibrate,eval,frontier")
    p.add_argument("--latency-queries", type=int, default=50)
    p.add_argument("--json", help="save the figures here")
    args = p.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    stages = set(args.stages.split(","))
    print(f"machine: {machine()}", file=sys.stderr)
    profile = args.work / "gate-scifact-train.json"
    if "calibrate" in stages and not profile.exists():
        o1(args, "calibrate on SciFact train", "calibrate", str(dataset("scifact")), "--split", "train", "--budget", str(args.budget), "--out", str(profile), *thinker(args))
    results: dict = {"stages": STAGES, "profile": json.loads(profile.read_text()) if profile.exists() else None}
    if "eval" in stages:
        rows, targets = [], []
        for name, folder in SETS:
            out = args.work / f"eval-{folder}"
            if not (out / "results.json").exists():
                with tempfile.TemporaryDirectory(prefix="o1-fresh-") as tmp:
                    cache = ["--cache", str(Path(tmp) / "thoughts.sqlite")] if args.fresh_thoughts else []
                    o1(args, f"eval {name}: dense, thinking, auto", "eval", str(dataset(folder)), "--split", "test", "--systems", "dense,thinking,auto",
                       "--gate-profile", str(profile), "--out", str(out), *thinker(args), *cache)
            res = json.loads((out / "results.json").read_text())
            systems, comparisons = res["systems"], res["comparisons"]
            always, auto, dense = systems["thinking[o1+query]"], systems["thinking[auto]"], systems["dense"]
            vs_always = comparisons["thinking[auto]"]["thinking[o1+query]"]
            for label, s in (("dense", dense), ("always thinking", always), ("auto", auto)):
                key = {"dense": None, "always thinking": "thinking[o1+query]", "auto": "thinking[auto]"}[label]
                vs_dense = comparisons.get(key, {}).get("dense") if key else None
                rows.append([
                    name, label, f"{s['metrics']['nDCG@10']:.3f}",
                    "" if vs_dense is None else f"{vs_dense['mean']:+.1f} [{vs_dense['low']:+.1f}, {vs_dense['high']:+.1f}]",
                    f"{vs_always['mean']:+.1f} [{vs_always['low']:+.1f}, {vs_always['high']:+.1f}]" if label == "auto" else "",
                    f"{s['thought_share']:.0%}", f"{s['latency_ms']:.0f}", f"{s['latency_p95_ms']:.0f}",
                ])
            ratio = auto["latency_ms"] / always["latency_ms"] if always["latency_ms"] else float("nan")
            gap = 100 * (auto["metrics"]["nDCG@10"] - always["metrics"]["nDCG@10"])
            targets.append([name, f"{gap:+.1f} (target >= -0.3: {'met' if gap >= -0.3 else 'not met'})",
                            f"{auto['thought_share']:.0%} (<= 50%: {'met' if auto['thought_share'] <= 0.5 else 'not met'})",
                            f"{ratio:.2f}x (<= 0.6x: {'met' if ratio <= 0.6 else 'not met'})"])
            results[name] = {k: {"metrics": v["metrics"], "thought_share": v["thought_share"], "latency_ms": v["latency_ms"], "latency_p95_ms": v["latency_p95_ms"]} for k, v in systems.items()}
            results[name]["comparisons"] = comparisons
        print(f"\nGate calibrated on SciFact train ({args.budget:.0%} budget), applied unchanged; {'fresh thoughts per run' if args.fresh_thoughts else 'thoughts from the cache'}")
        print(table(["set", "system", "nDCG@10", "vs dense (95% CI)", "vs always (95% CI)", "thought share", "mean ms", "p95 ms"], rows))
        print("\n" + table(["set", "auto - always (nDCG@10 points)", "thought share", "latency auto / always"], targets))
    if "frontier" in stages:
        for name, folder in SETS:
            out = args.work / f"frontier-{folder}"
            if not (out / "frontier.json").exists():
                o1(args, f"frontier {name}", "frontier", str(dataset(folder)), "--split", "test", "--gate-profile", str(profile),
                   "--latency-queries", str(args.latency_queries), "--out", str(out), *thinker(args))
            print(f"\n{name}: {out / 'frontier.png'}\n" + (out / "frontier.md").read_text())
    print("\n" + table(["stage", "wall s", "peak RSS MiB"], [[s["stage"], s["seconds"], s.get("subprocess_peak_rss_mb", s["peak_rss_mb"])] for s in STAGES]))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
