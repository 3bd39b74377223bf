"""Benchmark 4 - peak memory (max RSS) of ``o1-retriever index``, ``search`` and ``eval`` on SciFact,
each run as its own subprocess (the figure is the kernel's ru_maxrss of that process).

The corpus is a SciFact subset written to a temporary BEIR folder: the documents relevant to the
evaluated queries plus the first ``--docs`` others (the data itself is never copied into the repo).

    python benchmarks/memory.py                         # 300 documents, 5 queries
    python benchmarks/memory.py --docs 5183 --queries 50 --json out.json
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import corpus, dataset, machine, save, table


def run(cmd: list[str], env: dict) -> tuple[float, float]:
    """(seconds, peak RSS in MiB) of one subprocess."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    stderr = proc.stderr.read() if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd[1:3])} failed ({proc.returncode}): {stderr[-2000:]}")
    return seconds, usage.ru_maxrss / 1024  # Linux reports KiB


def subset(folder: Path, n_docs: int, n_queries: int) -> None:
    from o1_retriever.evaluation.beir import read_split

    src = dataset("scifact")
    texts, qrels, metadata = read_split(src, "test")  # the package's one BEIR reader
    qids = list(qrels)[:n_queries]
    needed = {d for q in qids for d in qrels[q]}
    docs = [d for d in corpus("scifact") if d["_id"] in needed]
    docs += [d for d in corpus("scifact", n_docs + len(needed)) if d["_id"] not in needed][: n_docs]
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    (folder / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": q, "text": t, "metadata": metadata[q]}) + "\n" for q, t in texts.items() if q in qids), encoding="utf-8"
    )
    with open(folder / "qrels" / "test.tsv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, delimiter="\t")
        w.writerow(["query-id", "corpus-id", "score"])
        w.writerows([q, d, score] for q in qids for d, score in qrels[q].items())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=300, help="documents besides the relevant ones")
    ap.add_argument("--queries", type=int, default=5, help="test queries for eval")
    ap.add_argument("--thinker", default="smollm2", help="e.g. llamacpp:smollm2")
    ap.add_argument("--json")
    args = ap.parse_args()

    print(f"machine: {machine()}")
    tmp = Path(tempfile.mkdtemp(prefix="o1-bench-mem-"))
    beir = tmp / "scifact-subset"
    subset(beir, args.docs, args.queries)
    n_docs = sum(1 for _ in open(beir / "corpus.jsonl", encoding="utf-8"))
    home = os.environ.get("O1_RETRIEVER_HOME", str(Path.home() / ".o1-retriever"))
    env = {**os.environ, "O1_RETRIEVER_HOME": home, "HF_HUB_OFFLINE": "1"}
    cli = [str(Path(sys.executable).parent / "o1-retriever")]  # the installed console script
    common = ["--thinker", args.thinker, "--cache", str(tmp / "thoughts.sqlite")]
    db = ["--db", str(tmp / "chroma")]
    plan = [
        ("index", f"{n_docs} SciFact documents", cli + ["index", str(beir), "--collection", "mem"] + db + common),
        ("search", "1 query, k=3 thoughts", cli + ["search", "Do statins lower LDL cholesterol?", "--collection", "mem"] + db + common),
        ("search --no-think", "1 query", cli + ["search", "Do statins lower LDL cholesterol?", "--collection", "mem", "--no-think"] + db + common),
    ]
    if importlib.util.find_spec("o1_retriever.evaluation") is not None:
        plan.append(("eval", f"{args.queries} queries x {n_docs} docs, dense + thinking", cli + ["eval", str(beir), "--systems", "dense,thinking", "--out", str(tmp / "eval"), "--db", str(tmp / "eval-chroma")] + common))
    else:
        print("o1_retriever.evaluation is not installed: eval is left out")
    rows, payload = [], {"machine": machine(), "docs": n_docs, "queries": args.queries, "thinker": args.thinker, "runs": {}}
    for name, what, cmd in plan:
        seconds, peak = run(cmd, env)
        print(f"  {name}: {peak:.0f} MiB, {seconds:.1f}s", flush=True)
        rows.append([f"o1-retriever {name}", what, f"{peak:.0f}", f"{seconds:.1f}"])
        payload["runs"][name] = {"peak_rss_mib": peak, "seconds": seconds, "what": what}
    print()
    print(f"peak RSS per command (thinker {args.thinker}, encoder minilm, embedded Chroma)")
    print(table(["command", "work", "peak RSS (MiB)", "wall s"], rows))
    save(args.json, payload)


if __name__ == "__main__":
    main()
