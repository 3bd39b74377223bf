"""Benchmark 1 - query latency, end to end (query -> vector -> Chroma top-10), side by side:

* no thinking (the plain dense query),
* o1-retriever thinking with k=1 and k=3 thoughts, transformers backend and llama.cpp backend,
  cold (thoughts generated) and warm (thoughts served by the ThoughtCache),
* LangChain ``HypotheticalDocumentEmbedder`` and LlamaIndex ``HyDEQueryTransform`` driven by the
  same SmolLM2 (a transformers text-generation pipeline) and the same MiniLM encoder.

All systems search the same embedded Chroma collection (the bundled sample corpus). Prints the
median ms/query of each system and its ratio to no-thinking, then the issue's targets.

    python benchmarks/query_latency.py                       # 6 SciFact queries, 64-token thoughts
    python benchmarks/query_latency.py --queries 20 --json out.json
    python benchmarks/query_latency.py --systems none,llamacpp-k3 --threads 2
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from _common import machine, median, queries, save, table, timed

ALL = ["none", "tf-k1", "tf-k3", "llamacpp-k1", "llamacpp-k3", "langchain-hyde", "llamaindex-hyde"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--queries", type=int, default=6, help="SciFact queries timed per system")
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: its own choice)")
    ap.add_argument("--dtype", default="auto", help="precision of the transformers thinker and of the HyDE pipelines (same model): auto | float32 | bfloat16")
    ap.add_argument("--systems", default=",".join(ALL), help="comma-separated subset of: " + ",".join(ALL))
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()
    systems = [s for s in args.systems.split(",") if s]
    unknown = set(systems) - set(ALL)
    if unknown:
        ap.error(f"unknown systems {sorted(unknown)}")

    from o1_retriever import SamplingConfig, ThinkingEmbedder, ThoughtCache
    from o1_retriever.encoders.sentence_transformers import SentenceTransformerEncoder
    from o1_retriever.index import ChromaIndex, read_source
    from o1_retriever.index.client import make_client
    from importlib.resources import files

    print(f"machine: {machine()}")
    qs = queries("scifact", args.queries)
    sampling = SamplingConfig(max_new_tokens=args.max_new_tokens)
    tmp = Path(tempfile.mkdtemp(prefix="o1-bench-latency-"))
    encoder = SentenceTransformerEncoder("minilm")
    client = make_client(tmp / "chroma")
    plain = ThinkingEmbedder(None, encoder)
    base = ChromaIndex("latency", plain, client=client)
    base.add(read_source(Path(str(files("o1_retriever") / "data" / "sample_corpus"))), show_progress=False)

    def chroma_top10(vector: np.ndarray) -> Any:
        return base.collection.query(query_embeddings=[vector], n_results=10)

    thinkers: dict[str, Any] = {}

    def thinker(kind: str) -> Any:
        if kind not in thinkers:
            if kind == "tf":
                from o1_retriever.thinkers.transformers import TransformersThinker

                thinkers[kind] = TransformersThinker("smollm2", dtype=args.dtype)
                print(f"transformers thinker and HyDE pipelines: {thinkers[kind].dtype}")
            else:
                from o1_retriever.thinkers.llamacpp import LlamaCppThinker

                thinkers[kind] = LlamaCppThinker("smollm2", n_threads=args.threads)
        return thinkers[kind]

    runners: dict[str, Any] = {}
    for name in systems:
        if name == "none":
            runners[name] = lambda q: base.search(q, k=10, thinking=False)
        elif name in ("tf-k1", "tf-k3", "llamacpp-k1", "llamacpp-k3"):
            kind, k = name.split("-k")
            embedder = ThinkingEmbedder(thinker(kind.replace("llamacpp", "llama")), encoder, thoughts=int(k), sampling=sampling, cache=ThoughtCache(tmp / f"{name}.sqlite"))
            runners[name] = ChromaIndex("latency", embedder, client=client).search
        elif name == "langchain-hyde":
            runners[name] = _langchain_hyde(thinker("tf"), encoder, args.max_new_tokens, chroma_top10)
        elif name == "llamaindex-hyde":
            runners[name] = _llamaindex_hyde(thinker("tf"), encoder, args.max_new_tokens, chroma_top10)

    warmup = "What is the effect of aspirin on platelets?"
    cold: dict[str, list[float]] = {}
    warm: dict[str, list[float]] = {}
    for name, run in runners.items():
        run(warmup)  # first-call costs (allocations, lazy imports) are not query latency
        import torch

        torch.manual_seed(0)  # the HyDE pipelines sample with torch's global RNG
        cold[name] = [timed(run, q)[0] for q in qs]
        if name.startswith(("tf-", "llamacpp-")):
            warm[name] = [timed(run, q)[0] for q in qs]  # same queries again: ThoughtCache hits
        print(f"  {name}: cold median {median(cold[name]) * 1000:.0f} ms" + (f", warm {median(warm[name]) * 1000:.0f} ms" if name in warm else ""), flush=True)

    ref = median(cold["none"]) if "none" in cold else float("nan")
    rows, payload = [], {"machine": machine(), "queries": len(qs), "max_new_tokens": args.max_new_tokens, "systems": {},
                         "transformers_dtype": thinkers["tf"].dtype if "tf" in thinkers else None, "llamacpp_threads": args.threads}
    for name in runners:
        for label, samples in (("cold", cold[name]), ("warm (cached thoughts)", warm.get(name))):
            if not samples:
                continue
            m = median(samples)
            rows.append([name, label, f"{m * 1000:.0f}", f"{m / ref:.2f}x"])
            payload["systems"][f"{name}/{label.split()[0]}"] = {"median_ms": m * 1000, "ratio_to_none": m / ref, "samples_ms": [s * 1000 for s in samples]}
    print()
    print(f"SciFact, {len(qs)} queries, top-10 from embedded Chroma, thoughts of {args.max_new_tokens} tokens")
    print(table(["system", "thoughts", "median ms/query", "vs no thinking"], rows))
    _targets(payload["systems"])
    save(args.json, payload)


def _targets(s: dict) -> None:
    def get(key: str) -> float | None:
        return s[key]["median_ms"] if key in s else None

    checks = []
    ll3, tf3, lc, none = get("llamacpp-k3/cold"), get("tf-k3/cold"), get("langchain-hyde/cold"), get("none/cold")
    if ll3 is not None:
        checks.append(["llama.cpp k=3 median <= 1500 ms", f"{ll3:.0f} ms", ll3 <= 1500])
        if lc is not None:
            checks.append(["llama.cpp k=3 <= 0.35x LangChain HyDE (issue 12)", f"{ll3 / lc:.2f}x", ll3 / lc <= 0.35])
    if tf3 is not None and lc is not None:
        checks.append(["transformers k=3 <= 1.5x LangChain HyDE", f"{tf3 / lc:.2f}x", tf3 / lc <= 1.5])
    for name in ("tf-k3", "llamacpp-k3"):
        w = get(f"{name}/warm")
        if w is not None and none is not None:
            checks.append([f"cached {name} <= 1.2x no thinking", f"{w / none:.2f}x", w / none <= 1.2])
    if checks:
        print()
        print(table(["target", "measured", "met"], [[c[0], c[1], "met" if c[2] else "not met"] for c in checks]))


def _pipeline(thinker: Any, max_new_tokens: int) -> Any:
    from transformers import pipeline

    return pipeline(
        "text-generation", model=thinker.model, tokenizer=thinker.tokenizer, max_new_tokens=max_new_tokens,
        do_sample=True, temperature=0.7, top_p=0.9, top_k=None, return_full_text=False,
        pad_token_id=thinker.tokenizer.pad_token_id,
    )


def _langchain_hyde(thinker: Any, encoder: Any, max_new_tokens: int, search: Any) -> Any:
    from langchain_classic.chains import HypotheticalDocumentEmbedder
    from langchain_community.llms import HuggingFacePipeline
    from langchain_core.embeddings import Embeddings

    class MiniLM(Embeddings):  # the same encoder object o1-retriever uses
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return encoder.encode_documents(texts).tolist()

        def embed_query(self, text: str) -> list[float]:
            return encoder.encode_queries([text])[0].tolist()

    hyde = HypotheticalDocumentEmbedder.from_llm(HuggingFacePipeline(pipeline=_pipeline(thinker, max_new_tokens)), MiniLM(), prompt_key="web_search")
    return lambda q: search(np.asarray(hyde.embed_query(q), dtype=np.float32))


def _llamaindex_hyde(thinker: Any, encoder: Any, max_new_tokens: int, search: Any) -> Any:
    from llama_index.core.indices.query.query_transform import HyDEQueryTransform
    from llama_index.core.llms import CompletionResponse, CustomLLM, LLMMetadata
    from llama_index.core.llms.callbacks import llm_completion_callback

    pipe = _pipeline(thinker, max_new_tokens)

    class PipelineLLM(CustomLLM):  # the same SmolLM2 through a transformers pipeline
        @property
        def metadata(self) -> LLMMetadata:
            return LLMMetadata(context_window=2048, num_output=max_new_tokens, model_name="SmolLM2-135M-Instruct")

        @llm_completion_callback()
        def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
            return CompletionResponse(text=pipe(prompt)[0]["generated_text"])

        @llm_completion_callback()
        def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Any:
            raise NotImplementedError

    hyde = HyDEQueryTransform(llm=PipelineLLM(), include_original=True)

    def run(q: str) -> Any:
        bundle = hyde.run(q)
        vectors = encoder.encode_queries(list(bundle.embedding_strs))
        return search(vectors.mean(axis=0))

    return run


if __name__ == "__main__":
    main()
