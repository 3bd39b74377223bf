"""The embedder's own logic with FAKE models (tests/fakes.py): which strings are embedded under
each aggregation and how they are averaged, what the thought cache and the vector memory save,
when a query falls back to its plain embedding, and the argument rules the adapters share.
Plumbing only: nothing here measures what a real model writes or retrieves (the real offline
models are tested in test_embedder.py and the others marked ``slow``)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from o1_retriever import ThinkingEmbedder
from o1_retriever.aggregation import Aggregation, distinct_strings, mean_vector, mean_vectors, query_texts
from o1_retriever.errors import ArgumentError, CollectionError, InvalidQueryError, ThinkerError, check_top_k
from o1_retriever.thinkers.base import SamplingConfig
from tests.fakes import FakeEncoder, FakeThinker

QUERY = "which metal is liquid"


def _embedder(thinker=None, encoder=None, **kwargs) -> ThinkingEmbedder:
    return ThinkingEmbedder(FakeThinker() if thinker is None else thinker, encoder or FakeEncoder(), **kwargs)


def _mean(encoder: FakeEncoder, texts: list[str]) -> np.ndarray:
    """The aggregation's definition, written out: re-normalised mean of unit vectors."""
    v = np.stack([encoder.vector(t) for t in texts]).mean(axis=0)
    return (v / np.linalg.norm(v)).astype(np.float32)


# -- aggregation ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "aggregation, strings",
    [
        ("o1", [f"{QUERY} {QUERY} idea 0", f"{QUERY} {QUERY} idea 1"]),
        ("o1+query", [f"{QUERY} {QUERY} idea 0", f"{QUERY} {QUERY} idea 1", QUERY]),
        ("hyde", [f"{QUERY} idea 0", f"{QUERY} idea 1"]),
    ],
)
def test_each_aggregation_averages_its_strings(aggregation, strings):
    encoder = FakeEncoder()
    embedder = _embedder(encoder=encoder, aggregation=aggregation, thoughts=2)
    result = embedder.embed_query(QUERY, return_thoughts=True)
    assert result.thoughts == [f"{QUERY} idea 0", f"{QUERY} idea 1"]
    assert sorted(encoder.encoded) == sorted(strings)  # exactly these strings, each once
    np.testing.assert_allclose(result.vector, _mean(encoder, strings), atol=1e-6)
    assert result.thinking and not result.fallback


def test_no_thinking_embeds_the_query_alone():
    encoder = FakeEncoder()
    vector = _embedder(encoder=encoder).embed_query(QUERY, thinking=False)
    assert encoder.encoded == [QUERY]
    np.testing.assert_allclose(vector, encoder.vector(QUERY), atol=1e-6)


def test_mean_vectors_is_the_mean_of_each_group_and_distinct_strings_dedupe():
    encoder = FakeEncoder()
    groups = [("a b", "c"), ("c",), ("a b", "d e", "c")]
    strings = distinct_strings(groups)
    assert strings == ["a b", "c", "d e"]
    vectors = dict(zip(strings, encoder.encode_queries(strings)))
    for group, got in zip(groups, mean_vectors(groups, vectors)):
        np.testing.assert_allclose(got, _mean(encoder, list(group)), atol=1e-6)
        np.testing.assert_allclose(got, mean_vector(np.stack([vectors[t] for t in group])), atol=0)


def test_hyde_without_usable_thoughts_falls_back_to_the_query():
    encoder = FakeEncoder()
    assert query_texts(encoder, QUERY, ["  "], Aggregation.HYDE) == [QUERY]
    assert query_texts(encoder, QUERY, [], Aggregation.O1) == [QUERY]


def test_many_queries_share_one_think_call_and_one_encode_call():
    thinker, encoder = FakeThinker(), FakeEncoder()
    calls = []
    encode = encoder.encode_queries
    encoder.encode_queries = lambda texts: calls.append(list(texts)) or encode(texts)  # count calls
    embedder = _embedder(thinker, encoder, thoughts=2)
    vectors = embedder.embed_queries(["q one", "q two", "q one"])
    assert thinker.calls == [["q one", "q two"]]  # a repeated query is thought about once
    assert len(calls) == 1 and len(calls[0]) == len(set(calls[0])) == 6  # 2 queries x (2 thoughts + bare)
    np.testing.assert_allclose(vectors[0], vectors[2], atol=0)


# -- caching ----------------------------------------------------------------------------------------
def test_the_thought_cache_serves_a_repeated_query_without_thinking(tmp_path):
    path = tmp_path / "thoughts.sqlite"
    first = _embedder(cache=path, thoughts=2)
    a = first.embed_query(QUERY, return_thoughts=True)
    thinker = FakeThinker(fail=RuntimeError("must not be called: the cache has these thoughts"))
    second = _embedder(thinker, cache=path, thoughts=2)  # another process, same cache file
    b = second.embed_query(QUERY, return_thoughts=True)
    assert thinker.calls == [] and b.thoughts == a.thoughts and not b.fallback
    np.testing.assert_allclose(a.vector, b.vector, atol=1e-6)
    # a different k is a different key: the thinker is asked
    with pytest.raises(ThinkerError):
        _embedder(thinker, cache=path, thoughts=3, strict=True).embed_query(QUERY)


def test_cache_none_means_no_cache(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    thinker = FakeThinker()
    embedder = _embedder(thinker, cache="none")
    embedder.think([QUERY]), embedder.think([QUERY])
    assert embedder.cache is None and len(thinker.calls) == 2 and not list(tmp_path.iterdir())


def test_vectors_are_remembered_until_forgotten():
    encoder = FakeEncoder()
    embedder = _embedder(encoder=encoder, thoughts=1)
    embedder.embed_query(QUERY)
    seen = len(encoder.encoded)
    embedder.embed_query(QUERY)
    embedder.embed_query(QUERY, thinking=False)  # the bare query is one of o1+query's strings
    assert len(encoder.encoded) == seen
    embedder.forget_vectors()
    embedder.embed_query(QUERY)
    assert len(encoder.encoded) == 2 * seen


def test_sampling_is_part_of_the_cache_key(tmp_path):
    path = tmp_path / "thoughts.sqlite"
    _embedder(cache=path).think([QUERY])
    thinker = FakeThinker()
    _embedder(thinker, cache=path, sampling=SamplingConfig(temperature=0.1)).think([QUERY])
    assert thinker.calls == [[QUERY]]


# -- thoughts per query: `thoughts=`, `k=` its deprecated name --------------------------------------
def test_think_takes_thoughts_per_query():
    thinker = FakeThinker()
    embedder = _embedder(thinker, thoughts=1)
    assert embedder.thoughts == 1
    assert embedder.think([QUERY]) == [[f"{QUERY} idea 0"]]
    assert embedder.think([QUERY], thoughts=2) == [[f"{QUERY} idea 0", f"{QUERY} idea 1"]]
    assert embedder.think([QUERY], 3) == [[f"{QUERY} idea {i}" for i in range(3)]]  # positionally, as before


@pytest.mark.parametrize("method", ["think", "athink", "check_thinker"])
async def test_k_is_a_deprecated_alias_of_thoughts(method):
    """``k=`` (0.1's name) still works, warns naming ``thoughts``, and means the same thing."""
    thinker = FakeThinker()
    embedder = _embedder(thinker, thoughts=1)
    call = getattr(embedder, method)
    args = () if method == "check_thinker" else ([QUERY],)
    with pytest.warns(DeprecationWarning, match=rf"ThinkingEmbedder\.{method}: k= is deprecated, pass thoughts= instead"):
        old = call(*args, k=2)
        old = await old if method == "athink" else old
    new = call(*args, thoughts=2)
    new = await new if method == "athink" else new
    assert old == new
    if method != "check_thinker":
        assert old == [[f"{QUERY} idea 0", f"{QUERY} idea 1"]]
    with pytest.raises(ArgumentError, match="both thoughts= and k="):
        both = call(*args, thoughts=2, k=2)
        await both if method == "athink" else both


def test_the_k_attribute_is_a_deprecated_alias_of_thoughts():
    embedder = _embedder(thoughts=2)
    with pytest.warns(DeprecationWarning, match="ThinkingEmbedder.k is deprecated, use ThinkingEmbedder.thoughts"):
        assert embedder.k == 2
    with pytest.warns(DeprecationWarning):
        embedder.k = 3
    assert embedder.thoughts == 3


def test_the_deprecation_warning_points_at_the_callers_line():
    with pytest.warns(DeprecationWarning) as record:
        _embedder().think([QUERY], k=1)
    assert record[0].filename == __file__


# -- fallback ---------------------------------------------------------------------------------------
def test_a_failing_thinker_falls_back_to_the_plain_query(caplog):
    encoder = FakeEncoder()
    embedder = _embedder(FakeThinker(fail=RuntimeError("backend down")), encoder)
    with caplog.at_level(logging.WARNING):
        result = embedder.embed_query(QUERY, return_thoughts=True)
    assert result.fallback and not result.thinking and result.thoughts == []
    np.testing.assert_allclose(result.vector, encoder.vector(QUERY), atol=1e-6)
    assert "backend down" in caplog.text


def test_strict_raises_one_thinker_error_naming_the_thinker():
    embedder = _embedder(FakeThinker(fail=RuntimeError("backend down")), strict=True)
    with pytest.raises(ThinkerError, match="fake-thinker failed to think: backend down"):
        embedder.embed_query(QUERY)


def test_empty_thoughts_are_never_embedded_and_the_query_falls_back(tmp_path):
    encoder = FakeEncoder()
    embedder = _embedder(FakeThinker(empty=True), encoder, cache=tmp_path / "c.sqlite")
    result = embedder.embed_query(QUERY, return_thoughts=True)
    assert result.fallback and result.thoughts == [] and encoder.encoded == [QUERY]
    assert len(embedder.cache) == 0  # nothing usable: nothing cached


def test_a_thinker_returning_the_wrong_shape_is_a_thinker_error():
    class Short(FakeThinker):
        def think(self, queries, k, sampling):
            return [["only one"] for _ in queries]

    with pytest.raises(ThinkerError, match="wrong number of thoughts"):
        _embedder(Short(), thoughts=2).think([QUERY])


def test_bad_queries_are_refused_before_any_work():
    thinker, encoder = FakeThinker(), FakeEncoder()
    embedder = _embedder(thinker, encoder)
    for bad in ("", "   ", 3, "\ud800"):
        with pytest.raises(InvalidQueryError):
            embedder.embed_query(bad)
    with pytest.raises(InvalidQueryError, match="list of queries"):
        embedder.embed_queries(QUERY)
    assert thinker.calls == [] and encoder.encoded == []


def test_a_plain_embedder_has_no_thinking():
    embedder = ThinkingEmbedder(None, FakeEncoder())
    assert not embedder.embed_query(QUERY, return_thoughts=True).thinking
    with pytest.raises(ThinkerError, match="needs a thinker"):
        embedder.embed_query(QUERY, thinking=True)


def test_documents_never_think():
    thinker = FakeThinker()
    vectors = _embedder(thinker).embed_documents(["doc one", "doc two"])
    assert vectors.shape == (2, 64) and thinker.calls == []
    with pytest.raises(InvalidQueryError, match="must be strings"):
        _embedder().embed_documents(["ok", 3])


# -- what the adapters share ----------------------------------------------------------------------
class _Wrapper:
    """Stands in for O1Embeddings / O1Embedding (a framework wrapper around an embedder)."""

    def __init__(self, embedder=None):
        self.thinking_embedder = embedder or _embedder()


def test_the_embedder_argument_rule_of_both_adapters():
    from o1_retriever.embedder import as_thinking_embedder

    core = _embedder()
    rule = dict(wrappers=(_Wrapper,), default=lambda: _Wrapper(core), caller="O1Retriever")
    assert as_thinking_embedder(core, **rule) is core
    assert as_thinking_embedder(_Wrapper(core), **rule) is core
    assert as_thinking_embedder(None, **rule) is core
    with pytest.raises(ArgumentError, match="O1Retriever needs _Wrapper or a ThinkingEmbedder to embed queries, got str") as caught:
        as_thinking_embedder("minilm", **rule)
    assert isinstance(caught.value, (TypeError, CollectionError))  # CollectionError: the 0.1 type, kept one minor version


@pytest.mark.parametrize("bad", [0, -1, True, 2.0, "3", None])
def test_top_k_must_be_a_positive_integer(bad):
    with pytest.raises(InvalidQueryError, match="similarity_top_k must be a positive integer"):
        check_top_k(bad, "similarity_top_k")


def test_top_k_accepts_positive_integers():
    assert check_top_k(1) == 1 and check_top_k(50) == 50
