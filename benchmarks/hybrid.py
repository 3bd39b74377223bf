"""Evidence for keyword and hybrid retrieval (``search --mode keyword|hybrid``, eval's ``bm25+thinking``,
``hybrid``, ``hybrid+thinking``). Three sections, each printing its figures side by side:

  dev      the settings, chosen on a dev split (a seeded subset of SciFact *train* claims, never
           the test queries reported): the fusion (reciprocal rank with k in 10/30/60/100, or
           min-max normalised scores; keyword weights 0.3/0.5/0.7) by the nDCG@10 of ``hybrid``, and
           how often the query is repeated before its thoughts on the keyword side (1/3/5, as
           Query2doc) by the nDCG@10 of ``bm25+thinking``; and the default mode. Runs the
           bm25/dense/thinking systems once through ``evaluate_retrieval`` (thoughts from the
           thought cache) and scores every candidate on their runs with the package's own
           ``fuse`` and ``keyword_query``.
  latency  ms per query, one query at a time, of ``ChromaIndex.search`` in each mode without
           thinking, on the SciFact collection that ``o1-retriever eval`` keeps (opened for reading).
  index    the keyword side's build time and size on disk: SciFact's 5,183 abstracts read from
           that collection (``keyword.build`` + save), and 500,000 chunks of 400 characters cut
           from SciFact abstracts (repeated text: the corpus about 100 times over, each copy's
           chunks with their own ids).

    python benchmarks/hybrid.py --sections dev,latency,index --work /work/runs/issue20/bench --json out.json
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from _common import dataset, machine, save, table


def embedder(args: argparse.Namespace, thinker: bool):
    from o1_retriever import ThinkingEmbedder
    from o1_retriever.config import EmbedderConfig
    from o1_retriever.thinkers.base import SamplingConfig

    config = EmbedderConfig(thinker=args.thinker if thinker else "none", thoughts=args.thoughts, sampling=SamplingConfig(max_new_tokens=args.tokens, seed=0))
    return ThinkingEmbedder.from_config(config), config


def dev(args: argparse.Namespace) -> dict:
    from o1_retriever.evaluation.beir import load_beir
    from o1_retriever.evaluation.metrics import evaluate_run
    from o1_retriever.evaluation.retrieval import System, evaluate_retrieval
    from o1_retriever.index.hybrid import Fusion, fuse, keyword_query
    from o1_retriever.index.keyword import BM25

    data = load_beir(dataset("scifact"), "train", queries=args.dev_queries, seed=args.dev_seed)
    model, config = embedder(args, thinker=args.dev_thinking)
    systems = [System("bm25", "bm25"), System("dense", "dense")]
    systems += [System("thinking[o1+query]", "thinking", "o1+query")] if args.dev_thinking else []
    base = evaluate_retrieval(data, systems, config, embedder=model, k=100)
    qids = list(data.queries)
    runs = {s.name: s.run for s in base.systems}
    thoughts = base.system("thinking[o1+query]").thoughts if args.dev_thinking else {}
    store_texts = {d.id: d.text for d in data.documents()}
    bm25 = BM25(list(store_texts), list(store_texts.values()))

    def ndcg(run: dict) -> float:
        return evaluate_run(data.qrels, run)[0]["nDCG@10"]

    rows, found = [], {}
    for repeat in (1, 3, 5) if args.dev_thinking else ():
        kw = dict(zip(qids, bm25.search([keyword_query(data.queries[q], thoughts.get(q, []), repeat) for q in qids], k=100)))
        found[f"bm25+thinking repeat={repeat}"] = (ndcg(kw), kw, repeat)
    best_repeat = max(found.values(), key=lambda v: v[0]) if found else None
    candidates = [Fusion("rrf", k, w) for k in (10, 30, 60, 100) for w in (0.3, 0.5, 0.7)] + [Fusion("minmax", 60, w) for w in (0.3, 0.5, 0.7)]
    scored = []
    for fusion in candidates:
        hybrid = {q: dict(list(fuse(runs["dense"][q], runs["bm25"][q], fusion).items())[:100]) for q in qids}
        thinking = {q: dict(list(fuse(runs["thinking[o1+query]"][q], best_repeat[1][q], fusion).items())[:100]) for q in qids} if found else None
        scored.append((fusion, ndcg(hybrid), ndcg(thinking) if thinking else float("nan")))
    best = max(scored, key=lambda s: s[1])
    rows = [[name, f"{v[0]:.4f}"] for name, v in found.items()]
    rows += [[f"hybrid {f.name}", f"{h:.4f}"] for f, h, _ in scored]
    rows += [[f"hybrid+thinking {f.name} (repeat={best_repeat[2]})", f"{t:.4f}"] for f, _, t in scored] if found else []
    plain = {s.name: s.metrics["nDCG@10"] for s in base.systems}
    print(f"\n## dev split: SciFact train, {len(qids)} claims (seed {args.dev_seed})" + (f"; thoughts k={args.thoughts} x {args.tokens} tokens ({args.thinker})" if found else "; no thinking") + "\n")
    print(table(["system", "nDCG@10"], [[k, f"{v:.4f}"] for k, v in plain.items()] + rows))
    print(f"\nchosen: fusion {best[0].name} (hybrid {best[1]:.4f})" + (f"; keyword query repeated {best_repeat[2]} times before the thoughts (bm25+thinking {best_repeat[0]:.4f})" if found else ""))
    return {
        "queries": len(qids), "seed": args.dev_seed, "plain": plain,
        "bm25+thinking": {k: v[0] for k, v in found.items()},
        "fusions": [{"fusion": f.name, "hybrid": h, "hybrid+thinking": t} for f, h, t in scored],
        "chosen": {"fusion": best[0].name, "repeat": best_repeat[2] if found else None},
    }


def open_eval_collection(args: argparse.Namespace):
    from o1_retriever.evaluation.beir import load_beir
    from o1_retriever.evaluation.retrieval import collection_name, eval_db
    from o1_retriever.index import ChromaIndex

    data = load_beir(dataset("scifact"), "test")
    model, _ = embedder(args, thinker=False)
    return data, ChromaIndex(collection_name(data, model), model, path=eval_db(), create=False)


def latency(args: argparse.Namespace) -> dict:
    data, index = open_eval_collection(args)
    queries = sorted(random.Random(0).sample(list(data.queries.values()), args.latency_queries))
    for mode in ("dense", "keyword", "hybrid"):  # warm: models loaded, keyword index read once
        index.search(queries[0], k=10, thinking=False, mode=mode)
    ms: dict[str, list[float]] = {"dense": [], "keyword": [], "hybrid": []}
    for q in queries:  # modes interleaved, so load changes touch all three alike
        for mode in ms:
            index.embedder.forget_vectors()
            start = time.perf_counter()
            index.search(q, k=10, thinking=False, mode=mode)
            ms[mode].append(1000 * (time.perf_counter() - start))
    rows = [[m, f"{statistics.mean(v):.1f}", f"{statistics.median(v):.1f}", f"{sorted(v)[int(0.95 * (len(v) - 1))]:.1f}", f"{statistics.mean(v) / statistics.mean(ms['dense']):.2f}x"] for m, v in ms.items()]
    print(f"\n## search latency without thinking: SciFact ({index.count()} chunks), {len(queries)} queries one at a time, k=10\n")
    print(table(["mode", "mean ms", "median ms", "p95 ms", "mean vs dense"], rows))
    return {m: {"mean_ms": statistics.mean(v), "median_ms": statistics.median(v)} for m, v in ms.items()}


def disk(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def index_cost(args: argparse.Namespace) -> dict:
    from o1_retriever.index import keyword

    data, index = open_eval_collection(args)
    out = {}
    work = Path(tempfile.mkdtemp(prefix="o1-keyword-", dir=args.work))
    start = time.perf_counter()
    bm25 = keyword.build(index)
    built = time.perf_counter() - start
    start = time.perf_counter()
    bm25.save(work / "scifact")
    out["scifact"] = {"chunks": len(bm25.ids), "build_s": built, "save_s": time.perf_counter() - start, "bytes": disk(work / "scifact")}
    texts = [d.text for d in data.documents()]
    pieces = [t[i : i + 400] for t in texts for i in range(0, len(t), 400) if t[i : i + 400].strip()]
    n = args.large
    big_texts = [pieces[i % len(pieces)] for i in range(n)]
    big_ids = [f"c{i // len(pieces)}-{i % len(pieces)}" for i in range(n)]
    start = time.perf_counter()
    big = keyword.BM25(big_ids, big_texts, show_progress=True)
    built = time.perf_counter() - start
    start = time.perf_counter()
    big.save(work / "large")
    out["large"] = {"chunks": n, "build_s": built, "save_s": time.perf_counter() - start, "bytes": disk(work / "large")}
    del big_texts
    start = time.perf_counter()
    loaded = keyword.BM25.load(work / "large")
    out["large"]["load_s"] = time.perf_counter() - start
    start = time.perf_counter()
    loaded.search(["vitamin D deficiency and bone fractures"] * 20, k=100)
    out["large"]["search_ms"] = 1000 * (time.perf_counter() - start) / 20
    shutil.rmtree(work)
    rows = [[f"{v['chunks']:,}", f"{v['build_s']:.1f}", f"{v['save_s']:.1f}", f"{v['bytes'] / 2**20:.1f}"] for v in out.values()]
    print("\n## keyword index: build (from the collection for SciFact; from memory for the 500k repeated chunks) and disk\n")
    print(table(["chunks", "build s", "save s", "disk MiB"], rows))
    print(f"500k: load {out['large']['load_s']:.1f} s, search {out['large']['search_ms']:.1f} ms/query (top 100)")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sections", default="dev,latency,index")
    p.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()))
    p.add_argument("--thinker", default="llamacpp:smollm2")
    p.add_argument("--thoughts", type=int, default=3)
    p.add_argument("--tokens", type=int, default=64)
    p.add_argument("--dev-queries", type=int, default=200)
    p.add_argument("--dev-seed", type=int, default=0)
    p.add_argument("--no-dev-thinking", dest="dev_thinking", action="store_false", help="dev: only the fusion (no thoughts, no thinker)")
    p.add_argument("--latency-queries", type=int, default=100)
    p.add_argument("--large", type=int, default=500_000)
    p.add_argument("--json", dest="json_path")
    args = p.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    print(machine())
    sections = {"dev": dev, "latency": latency, "index": index_cost}
    payload = {name: sections[name](args) for name in args.sections.split(",")}
    save(args.json_path, payload)


if __name__ == "__main__":
    main()
