"""ThinkingEmbedder with the real offline models (SmolLM2 thinks, MiniLM embeds)."""

from __future__ import annotations

import numpy as np
import pytest

from o1_retriever import Aggregation, InvalidQueryError, SamplingConfig, ThinkingEmbedder, ThinkerError
from o1_retriever.aggregation import query_texts

pytestmark = pytest.mark.slow

QUERIES = ["Which metal is liquid at room temperature?", "Why is the sky blue?", "How do bees communicate?"]


class GenerateSpy:
    """Records the real generate() calls (the model still runs)."""

    def __init__(self, model):
        self.model, self.calls = model, []
        self.original = model.generate

    def __enter__(self):
        def spy(*args, **kwargs):
            cache = kwargs.get("cache")  # the prompts' shared prefill, when there is one
            self.calls.append({"rows": kwargs["input_ids"].shape[0], "prefilled": cache is not None and cache.get_seq_length() > 0})
            return self.original(*args, **kwargs)

        self.model.generate = spy
        return self

    def __exit__(self, *exc):
        del self.model.generate


def test_think_batches_all_queries_and_thoughts_in_one_generate_call(thinker, encoder):
    embedder = ThinkingEmbedder(thinker, encoder, thoughts=3, sampling=SamplingConfig(max_new_tokens=12))
    with GenerateSpy(thinker.model) as spy:
        thoughts = embedder.think(QUERIES)
    # 3 queries x 3 samples in one call, continuing from each prompt's one shared prefill
    assert spy.calls == [{"rows": 9, "prefilled": True}]
    assert [len(t) for t in thoughts] == [3, 3, 3]
    assert all(isinstance(t, str) and t for group in thoughts for t in group)


@pytest.fixture(scope="module")
def float32_thinker(model_home):
    from o1_retriever.thinkers.transformers import TransformersThinker

    return TransformersThinker("smollm2", dtype="float32")


@pytest.mark.parametrize("temperature", [0.0, 0.7])
def test_shared_prefill_gives_the_thoughts_of_re_evaluating_the_prompt(thinker, float32_thinker, temperature):
    """Greedy thoughts agree at the default precision. Sampled ones are compared in float32:
    in bfloat16 (``auto`` on a CPU with AVX512-BF16 or AMX) the shared and re-evaluated
    prompts round differently, which can flip one sampled token (seen on a Xeon with AMX: 1 of
    4 thoughts differed), as llama.cpp's do for other batch shapes."""
    thinker = thinker if temperature == 0 else float32_thinker
    sampling = SamplingConfig(max_new_tokens=12, temperature=temperature)
    shared = thinker.think(QUERIES[:2], 2, sampling)
    thinker.share_prefill = False
    try:
        with GenerateSpy(thinker.model) as spy:
            fresh = thinker.think(QUERIES[:2], 2, sampling)
    finally:
        thinker.share_prefill = True
    assert spy.calls == [{"rows": 4, "prefilled": False}]
    assert shared == fresh
    if temperature == 0:  # greedy: k identical thoughts (k > 1 used to be refused by generate)
        assert all(group[0] == group[1] for group in shared)


def test_thinking_is_deterministic_with_a_seed_and_varies_with_another(thinker, encoder):
    make = lambda seed: ThinkingEmbedder(thinker, encoder, thoughts=2, sampling=SamplingConfig(max_new_tokens=12, seed=seed))
    first, again, other = make(1).think(QUERIES[:2]), make(1).think(QUERIES[:2]), make(2).think(QUERIES[:2])
    assert first == again
    assert first != other


def test_embed_query_returns_unit_vector_and_thoughts(embedder):
    result = embedder.embed_query(QUERIES[0], return_thoughts=True)
    assert result.vector.shape == (embedder.dimension,)
    assert np.isclose(np.linalg.norm(result.vector), 1.0, atol=1e-5)
    assert len(result.thoughts) == 2 and result.thinking and not result.fallback
    plain = embedder.embed_query(QUERIES[0], thinking=False, return_thoughts=True)
    assert plain.thoughts == [] and not plain.thinking
    # the no-thinking baseline is exactly the encoder's embedding of the bare query
    direct = embedder.encoder.encode_queries([QUERIES[0]])[0]
    assert np.allclose(plain.vector, direct, atol=1e-6)
    assert not np.allclose(result.vector, plain.vector)


@pytest.mark.parametrize("aggregation", list(Aggregation))
def test_each_aggregation_is_the_mean_of_its_strings(embedder, aggregation):
    q = QUERIES[1]
    thoughts = embedder.think([q])[0]
    got = embedder.embed_query(q, aggregation=aggregation)
    texts = query_texts(embedder.encoder, q, thoughts, aggregation)
    expected = {
        Aggregation.O1: [f"{q} {t}" for t in thoughts],
        Aggregation.O1_QUERY: [f"{q} {t}" for t in thoughts] + [q],
        Aggregation.HYDE: thoughts,
    }[aggregation]
    assert texts == expected
    mean = embedder.encoder.encode_queries(texts).mean(axis=0)
    assert np.allclose(got, mean / np.linalg.norm(mean), atol=1e-5)


def test_aggregations_differ(embedder):
    vectors = {a: embedder.embed_query(QUERIES[2], aggregation=a) for a in Aggregation}
    assert not np.allclose(vectors[Aggregation.O1], vectors[Aggregation.HYDE])
    assert not np.allclose(vectors[Aggregation.O1], vectors[Aggregation.O1_QUERY])


def test_second_call_generates_nothing(embedder):
    first = embedder.embed_queries(QUERIES[:2], return_thoughts=True)
    with GenerateSpy(embedder.thinker.model) as spy:
        second = embedder.embed_queries(QUERIES[:2], return_thoughts=True)
    assert spy.calls == []
    assert [r.thoughts for r in first] == [r.thoughts for r in second]
    assert np.allclose(np.stack([r.vector for r in first]), np.stack([r.vector for r in second]))


def test_cache_persists_across_embedders(thinker, encoder, tmp_path):
    path = tmp_path / "c.sqlite"
    sampling = SamplingConfig(max_new_tokens=8)
    a = ThinkingEmbedder(thinker, encoder, thoughts=1, sampling=sampling, cache=path).think([QUERIES[0]])
    fresh = ThinkingEmbedder(thinker, encoder, thoughts=1, sampling=sampling, cache=path)
    with GenerateSpy(thinker.model) as spy:
        b = fresh.think([QUERIES[0]])
    assert a == b and spy.calls == []
    # another k or other sampling parameters are another key
    with GenerateSpy(thinker.model) as spy:
        fresh.think([QUERIES[0]], thoughts=2)
    assert len(spy.calls) == 1


def test_only_uncached_queries_are_generated(embedder):
    embedder.think(QUERIES[:1])
    with GenerateSpy(embedder.thinker.model) as spy:
        embedder.think(QUERIES[:2])
    assert spy.calls == [{"rows": 2, "prefilled": True}]


def test_documents_are_embedded_without_thinking(embedder):
    with GenerateSpy(embedder.thinker.model) as spy:
        docs = embedder.embed_documents(["Mercury is a liquid metal.", "Bees dance."])
    assert spy.calls == []
    assert docs.shape == (2, embedder.dimension)
    assert np.allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("bad", ["", "   \n\t", None, 42, ["a list"]])
def test_bad_queries_are_refused_clearly(embedder, bad):
    with pytest.raises(InvalidQueryError):
        embedder.embed_query(bad)


def test_a_failing_thinker_falls_back_visibly_or_raises_in_strict_mode(encoder):
    from o1_retriever.thinkers.base import Thinker
    from o1_retriever.prompts import PASSAGE_PROMPT

    class BrokenThinker(Thinker):  # a backend that always fails: the test is about the fallback path
        prompt = PASSAGE_PROMPT
        identity = "broken"

        def think(self, queries, k, sampling):
            raise ConnectionError("server down")

    lenient = ThinkingEmbedder(BrokenThinker(), encoder)
    result = lenient.embed_query("why?", return_thoughts=True)
    assert result.fallback and not result.thinking and result.thoughts == []
    assert np.allclose(result.vector, encoder.encode_queries(["why?"])[0], atol=1e-6)
    with pytest.raises(ThinkerError, match="server down"):
        ThinkingEmbedder(BrokenThinker(), encoder, strict=True).embed_query("why?")


def test_repeated_query_reuses_its_vector_without_encoding(embedder):
    first = embedder.embed_query(QUERIES[0])
    calls = []
    original = embedder.encoder.encode_queries
    embedder.encoder.encode_queries = lambda texts: calls.append(list(texts)) or original(texts)
    try:
        again = embedder.embed_query(QUERIES[0])
        other = embedder.embed_query(QUERIES[0], aggregation="hyde")  # other strings: encoded
        embedder.forget_vectors()
        forgotten = embedder.embed_query(QUERIES[0])  # encoded again (its thoughts still cached)
    finally:
        del embedder.encoder.encode_queries
    assert np.array_equal(first, again) and np.allclose(first, forgotten, atol=1e-6)
    thoughts = embedder.think([QUERIES[0]])[0]
    assert len(calls) == 2 and calls[0] == thoughts  # the repeat encoded nothing; hyde: the thoughts alone
    assert calls[1] == [f"{QUERIES[0]} {t}" for t in thoughts] + [QUERIES[0]]  # forgotten: encoded again
    assert not np.allclose(first, other)


def test_thinker_precision_is_chosen_and_part_of_its_identity(model_home):
    import torch

    from o1_retriever import ModelLoadError
    from o1_retriever.models import resolve_dtype
    from o1_retriever.thinkers.transformers import TransformersThinker

    native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    assert resolve_dtype("auto", "cpu") == ("bfloat16" if native else "float32")
    assert resolve_dtype("float16", "cpu") == "float16"
    with pytest.raises(ModelLoadError, match="unknown dtype"):
        resolve_dtype("int3", "cpu")
    fp32 = TransformersThinker("smollm2", dtype="float32", device="cpu")
    bf16 = TransformersThinker("smollm2", dtype="bfloat16", device="cpu")
    assert fp32.model.dtype == torch.float32 and bf16.model.dtype == torch.bfloat16
    assert fp32.model is not bf16.model  # one load per (model, dtype), not a cast of the shared one
    # float32 keeps the identity thoughts were cached under before; other precisions are other keys
    assert fp32.identity == "transformers:smollm2" and bf16.identity == "transformers:smollm2@bfloat16"
    out = bf16.think(QUERIES[:1], 2, SamplingConfig(max_new_tokens=8))
    assert len(out[0]) == 2 and all(t.strip() for t in out[0])


def test_cache_none_spelled_as_in_the_config_creates_no_file(encoder, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert ThinkingEmbedder(None, encoder, cache="none").cache is None
    assert list(tmp_path.iterdir()) == []  # not a cache file called "none"
