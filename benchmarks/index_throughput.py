"""Benchmark 3 - indexing throughput: ``ChromaIndex.add`` (what ``o1-retriever index`` runs) vs the
encoder's raw ``encode`` of the same texts (the floor of what indexing can cost), side by side.

Also times the pieces of indexing that are not encoding (Chroma upsert of ready vectors, the
content-hash check of a rerun) and, with ``--cli``, the ``o1-retriever index`` command end to end
(model loading included).

    python benchmarks/index_throughput.py                   # first 400 SciFact documents
    python benchmarks/index_throughput.py --docs 2000 --cli --json out.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import dataset, machine, save, table, timed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=400)
    ap.add_argument("--repeats", type=int, default=2, help="alternate raw encode and indexing this many times (medians)")
    ap.add_argument("--cli", action="store_true", help="also run `o1-retriever index` as a subprocess")
    ap.add_argument("--json")
    args = ap.parse_args()

    from o1_retriever import ThinkingEmbedder
    from o1_retriever.encoders.sentence_transformers import SentenceTransformerEncoder
    from o1_retriever.index import ChromaIndex, read_source
    from o1_retriever.index.client import make_client

    print(f"machine: {machine()}")
    docs = list(itertools.islice(read_source(dataset("scifact")), args.docs))
    texts = [d.text for d in docs]
    tmp = Path(tempfile.mkdtemp(prefix="o1-bench-index-"))
    encoder = SentenceTransformerEncoder("minilm")
    embedder = ThinkingEmbedder(None, encoder)
    encoder.encode_documents(texts[:32])  # warm-up

    raw, add, upsert, rerun = [], [], [], []
    for r in range(args.repeats):  # alternate, so load changes on the shared machine hit both
        seconds, vectors = timed(encoder.encode_documents, texts)
        raw.append(seconds)
        client = make_client(tmp / f"chroma-{r}")
        index = ChromaIndex(f"bench-{r}", embedder, client=client)
        seconds, stats = timed(index.add, docs, show_progress=False)
        assert stats.written == len(docs), stats
        add.append(seconds)
        seconds, stats = timed(index.add, docs, show_progress=False)
        assert stats.unchanged == len(docs), stats
        rerun.append(seconds)
        bare = client.get_or_create_collection(f"bare-{r}", metadata={"hnsw:space": "cosine"}, embedding_function=None)
        seconds, _ = timed(bare.upsert, ids=[d.id for d in docs], embeddings=vectors, documents=texts)
        upsert.append(seconds)
        print(f"  round {r + 1}: raw {raw[-1]:.1f}s, index {add[-1]:.1f}s", flush=True)

    n = len(docs)
    best = lambda xs: sorted(xs)[len(xs) // 2]
    rows = [
        ["encoder.encode_documents (raw)", f"{best(raw):.1f}", f"{n / best(raw):.1f}", "1.00x"],
        ["ChromaIndex.add (o1-retriever index)", f"{best(add):.1f}", f"{n / best(add):.1f}", f"{best(raw) / best(add):.2f}x"],
        ["  of which: Chroma upsert of ready vectors", f"{best(upsert):.2f}", f"{n / best(upsert):.0f}", ""],
        ["ChromaIndex.add again (all unchanged: hash check only)", f"{best(rerun):.2f}", f"{n / best(rerun):.0f}", ""],
    ]
    payload = {"machine": machine(), "docs": n, "raw_s": raw, "add_s": add, "upsert_s": upsert, "rerun_s": rerun, "ratio": best(raw) / best(add)}
    if args.cli:
        jsonl = tmp / "corpus.jsonl"
        jsonl.write_text("".join(json.dumps({"_id": d.id, "title": "", "text": d.text}) + "\n" for d in docs), encoding="utf-8")
        env = {**os.environ, "O1_RETRIEVER_HOME": os.environ.get("O1_RETRIEVER_HOME", str(tmp))}
        cmd = [str(Path(sys.executable).parent / "o1-retriever"), "index", str(jsonl), "--collection", "cli-bench", "--db", str(tmp / "cli-chroma"), "--cache", "none"]
        seconds, proc = timed(subprocess.run, cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(f"o1-retriever index failed: {proc.stderr[-2000:]}")
        rows.append(["`o1-retriever index` subprocess (incl. start-up, model load)", f"{seconds:.1f}", f"{n / seconds:.1f}", f"{best(raw) / seconds:.2f}x"])
        payload["cli_s"] = seconds
    print()
    print(f"SciFact, first {n} documents (title + abstract), all-MiniLM-L6-v2, embedded Chroma; medians of {args.repeats}")
    print(table(["run", "seconds", "docs/s", "rate vs raw encode"], rows))
    r = payload["ratio"]
    print()
    print(table(["target", "measured", "met"], [["indexing >= 0.9x raw encode rate", f"{r:.2f}x", "met" if r >= 0.9 else "not met"]]))
    save(args.json, payload)


if __name__ == "__main__":
    main()
