"""Benchmark 2 - thought throughput (new tokens/s) of the same SmolLM2, side by side:

* transformers, batched: all queries x k thoughts in one ``generate`` call (what o1-retriever
  does), each prompt evaluated once for its k samples (``share_prefill``) and, for comparison,
  once per sample,
* transformers, a loop of single prompts (one query, one thought per call),
* llama.cpp (the GGUF of the same model): a loop of single prompts (the model's own
  single-stream speed on this CPU), and the k samples of a query decoded together from one
  prefill (what o1-retriever does) or from one prefill per sample.

Tokens are counted by re-tokenising the returned thoughts with the model's tokenizer, the same way
for every backend.

    python benchmarks/thought_throughput.py                 # 4 SciFact queries x 3 thoughts x 64 tokens
    python benchmarks/thought_throughput.py --queries 8 --thoughts 3 --json out.json
"""

from __future__ import annotations

import argparse

from _common import machine, queries, save, table, timed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--queries", type=int, default=4)
    ap.add_argument("--thoughts", type=int, default=3)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=None, help="llama.cpp threads")
    ap.add_argument("--dtype", default="auto", help="transformers precision: auto | float32 | bfloat16")
    ap.add_argument("--skip-llamacpp", action="store_true")
    ap.add_argument("--json")
    args = ap.parse_args()

    from o1_retriever import SamplingConfig
    from o1_retriever.thinkers.transformers import TransformersThinker

    print(f"machine: {machine()}")
    qs, k = queries("scifact", args.queries), args.thoughts
    sampling = SamplingConfig(max_new_tokens=args.max_new_tokens)
    tf = TransformersThinker("smollm2", dtype=args.dtype)
    print(f"transformers precision: {tf.dtype}")
    tok = tf.tokenizer

    def ntokens(groups: list[list[str]]) -> int:
        return sum(len(tok(t, add_special_tokens=False)["input_ids"]) for g in groups for t in g)

    tf.think(qs[:1], 1, SamplingConfig(max_new_tokens=4))  # warm-up
    results: dict[str, tuple[float, int]] = {}

    seconds, out = timed(tf.think, qs, k, sampling)
    results["transformers, batched (queries x k in one generate)"] = (seconds, ntokens(out))
    tf.share_prefill = False
    seconds, out = timed(tf.think, qs, k, sampling)
    results["transformers, batched, prompt evaluated per sample"] = (seconds, ntokens(out))
    tf.share_prefill = True
    print("  batched done", flush=True)

    def loop() -> list[list[str]]:
        groups = []
        for q in qs:
            groups.append([tf.think([q], 1, SamplingConfig(max_new_tokens=args.max_new_tokens, seed=i))[0][0] for i in range(k)])
        return groups

    seconds, out = timed(loop)
    results["transformers, loop of single prompts"] = (seconds, ntokens(out))
    print("  loop done", flush=True)

    if not args.skip_llamacpp:
        from o1_retriever.thinkers.llamacpp import LlamaCppThinker

        ll = LlamaCppThinker("smollm2", n_threads=args.threads)
        ll.think(qs[:1], 1, SamplingConfig(max_new_tokens=4))

        def ll_loop() -> list[list[str]]:
            return [[ll.think([q], 1, SamplingConfig(max_new_tokens=args.max_new_tokens, seed=i))[0][0] for i in range(k)] for q in qs]

        seconds, out = timed(ll_loop)
        results["llama.cpp, loop of single prompts (single stream)"] = (seconds, ntokens(out))
        for share in (True, False):
            ll.share_prefill = share
            seconds, out = timed(ll.think, qs, k, sampling)
            results[f"llama.cpp, k samples decoded together, {'one prefill per query' if share else 'prefill per sample'}"] = (seconds, ntokens(out))
        print("  llama.cpp done", flush=True)

    loop_rate = results["transformers, loop of single prompts"][1] / results["transformers, loop of single prompts"][0]
    batched = "transformers, batched (queries x k in one generate)"
    rows, payload = [], {"machine": machine(), "queries": len(qs), "thoughts": k, "max_new_tokens": args.max_new_tokens, "dtype": tf.dtype, "runs": {}}
    for name, (seconds, n) in results.items():
        rate = n / seconds
        rows.append([name, n, f"{seconds:.1f}", f"{rate:.1f}", f"{rate / loop_rate:.2f}x", f"{seconds / len(qs):.2f}"])
        payload["runs"][name] = {"seconds": seconds, "tokens": n, "tokens_per_s": rate, "vs_loop": rate / loop_rate}
    print()
    print(f"SciFact, {len(qs)} queries x {k} thoughts x up to {args.max_new_tokens} new tokens (SmolLM2-135M-Instruct)")
    print(table(["run", "tokens", "seconds", "tokens/s", "vs single-prompt loop", "s/query"], rows))
    b = payload["runs"][batched]["vs_loop"]
    print()
    print(table(["target", "measured", "met"], [["batched >= 4x the single-prompt loop's tokens/s", f"{b:.2f}x", "met" if b >= 4 else "not met"]]))
    ll_key = "llama.cpp, loop of single prompts (single stream)"
    if ll_key in payload["runs"]:
        single = payload["runs"][ll_key]["tokens_per_s"]
        print(f"batched transformers reaches {payload['runs'][batched]['tokens_per_s'] / single:.2f}x llama.cpp's single-stream tokens/s; "
              f"llama.cpp's k-together decoding {payload['runs']['llama.cpp, k samples decoded together, one prefill per query']['tokens_per_s'] / single:.2f}x")
    save(args.json, payload)


if __name__ == "__main__":
    main()
