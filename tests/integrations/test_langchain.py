"""langchain_o1 on real Chroma with the real offline models: embeddings and retriever (the docs'
LCEL chain runs in tests/test_docs.py)."""

from __future__ import annotations

import numpy as np
import pytest
from langchain_chroma import Chroma
from langchain_core.documents import Document

from langchain_o1 import O1Embeddings, O1Retriever
from o1_retriever import CollectionError, InvalidQueryError
from pydantic import ValidationError
from o1_retriever.index import read_source

from .conftest import QUESTION

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def embeddings(fast_embedder):
    return O1Embeddings(embedder=fast_embedder)


@pytest.fixture(scope="module")
def lc_store(embeddings, sample_corpus, tmp_path_factory):
    """A collection built by langchain_chroma.Chroma (default l2 space) with O1Embeddings."""
    docs = list(read_source(sample_corpus))
    store = Chroma("lc-samples", embedding_function=embeddings, persist_directory=str(tmp_path_factory.mktemp("lc")))
    store.add_documents([Document(page_content=d.text, metadata={"source": d.id}) for d in docs], ids=[d.id for d in docs])
    return store


def test_query_thinks_and_documents_do_not(embeddings, fast_embedder):
    query = embeddings.embed_query(QUESTION)
    assert isinstance(query, list) and all(type(x) is float for x in query)
    expected = fast_embedder.embed_query(QUESTION, return_thoughts=True)
    assert expected.thinking and len(expected.thoughts) == 1
    assert np.allclose(query, expected.vector, atol=1e-6)
    plain = fast_embedder.embed_query(QUESTION, thinking=False)
    assert not np.allclose(query, plain, atol=1e-3)  # the thoughts moved the vector
    assert np.allclose(O1Embeddings(embedder=fast_embedder, thinking=False).embed_query(QUESTION), plain, atol=1e-6)
    # documents are never thought about: a document vector is the plain encoding of its text
    docs = embeddings.embed_documents([QUESTION, "Mercury is a liquid metal."])
    assert all(type(x) is float for x in docs[0])
    assert np.allclose(docs[0], plain, atol=1e-5)
    assert embeddings.embed_documents([]) == []


def test_fields_build_the_core_config_and_bad_input_is_refused(fast_embedder):
    cfg = O1Embeddings(thoughts=2, max_new_tokens=8, aggregation="o1", cache="none").to_config()
    assert (cfg.thoughts, cfg.sampling.max_new_tokens, cfg.aggregation, cfg.cache) == (2, 8, "o1", "none")
    assert cfg.thinker_dtype == "auto" and O1Embeddings(thinker_dtype="float32").to_config().thinker_dtype == "float32"
    with pytest.raises(ValueError, match="aggregation"):
        O1Embeddings(aggregation="median")
    with pytest.raises(InvalidQueryError):
        O1Embeddings(embedder=fast_embedder).embed_query("   ")


def test_o1embeddings_is_a_chroma_embedding_function(lc_store):
    hits = lc_store.similarity_search(QUESTION, k=2)
    assert hits[0].metadata["source"].startswith("mercury")


def test_retriever_over_a_langchain_chroma_collection(lc_store, fast_embedder):
    retriever = O1Retriever.from_vectorstore(lc_store, k=3)
    docs = retriever.invoke(QUESTION)
    assert len(docs) == 3 and docs[0].metadata["source"].startswith("mercury")
    assert docs[0].id == docs[0].metadata["id"] == docs[0].metadata["source"]
    thoughts = fast_embedder.embed_query(QUESTION, return_thoughts=True).thoughts
    assert all(d.metadata["thoughts"] == thoughts and d.metadata["thinking"] for d in docs)
    # score: the cosine similarity, consistent with Chroma's own l2 distance on unit vectors
    theirs = lc_store.similarity_search_with_score(QUESTION, k=3)
    assert [d.metadata["source"] for d, _ in theirs] == [d.metadata["source"] for d in docs]
    assert [d.metadata["score"] for d in docs] == pytest.approx([1 - dist / 2 for _, dist in theirs], abs=1e-4)
    scores = [d.metadata["score"] for d in docs]
    assert scores == sorted(scores, reverse=True) and 0 < scores[0] <= 1


def test_retriever_over_an_o1_collection_k_per_call_and_baseline(sample_index, fast_embedder):
    retriever = O1Retriever.from_collection("o1-samples", embeddings=fast_embedder, client=sample_index.client, k=4)
    assert len(retriever.invoke(QUESTION)) == 4
    assert len(retriever.invoke(QUESTION, k=1)) == 1
    expected = sample_index.search(QUESTION, k=4)
    got = retriever.invoke(QUESTION)
    assert [d.id for d in got] == [h.id for h in expected.hits]
    assert [d.metadata["score"] for d in got] == pytest.approx([h.score for h in expected.hits], abs=1e-6)
    base = retriever.invoke(QUESTION, thinking=False)
    plain = sample_index.search(QUESTION, k=4, thinking=False)
    assert [d.id for d in base] == [h.id for h in plain.hits]
    assert all(d.metadata["thoughts"] == [] and d.metadata["thinking"] is False for d in base)
    assert [d.metadata["score"] for d in base] != [d.metadata["score"] for d in got]
    assert O1Retriever(index=sample_index, thinking=False).invoke(QUESTION)[0].metadata["thoughts"] == []


async def test_async_matches_sync(sample_index):
    retriever = O1Retriever(index=sample_index, k=3)
    sync = retriever.invoke(QUESTION, k=2)
    got = await retriever.ainvoke(QUESTION, k=2)
    assert [(d.id, d.metadata["score"], d.metadata["thoughts"]) for d in got] == [
        (d.id, d.metadata["score"], d.metadata["thoughts"]) for d in sync
    ]


def test_bad_input_gives_clear_errors(sample_index, lc_store):
    retriever = O1Retriever(index=sample_index)
    with pytest.raises(InvalidQueryError, match="empty"):
        retriever.invoke("  ")
    with pytest.raises(InvalidQueryError, match="k must be"):
        retriever.invoke(QUESTION, k=0)
    with pytest.raises(CollectionError, match="langchain_chroma"):
        O1Retriever.from_vectorstore(object())
    plain_store = Chroma("lc-other", embedding_function=None, client=lc_store._client)
    with pytest.raises(CollectionError, match="O1Embeddings"):
        O1Retriever.from_vectorstore(plain_store)


def test_from_collection_opens_read_only(sample_index, fast_embedder, tmp_path):
    """A missing collection or database is a clear error; nothing is created or adopted (issue 13)."""
    client = sample_index.client
    before = sorted(c.name for c in client.list_collections())
    with pytest.raises(CollectionError, match=r"no collection 'o1-sample' .*did you mean 'o1-samples'\?"):
        O1Retriever.from_collection("o1-sample", embeddings=fast_embedder, client=client)
    assert sorted(c.name for c in client.list_collections()) == before
    with pytest.raises(CollectionError, match="no Chroma database"):
        O1Retriever.from_collection("o1-samples", embeddings=fast_embedder, persist_directory=tmp_path / "none")
    assert not (tmp_path / "none").exists()
    client.create_collection("lc-bare", embedding_function=None, metadata={"hnsw:space": "cosine"})
    assert O1Retriever.from_collection("lc-bare", embeddings=fast_embedder, client=client).invoke(QUESTION, thinking=False) == []
    assert client.get_collection("lc-bare").metadata == {"hnsw:space": "cosine"}  # not adopted


def test_auto_thinking_puts_the_gate_decision_in_metadata(sample_index, tmp_path):
    from o1_retriever.gate import GateProfile

    always = GateProfile("top1", 2.0, "below").save(tmp_path / "always.json")
    never = GateProfile("top1", -2.0, "below").save(tmp_path / "never.json")
    thought = O1Retriever(index=sample_index, k=2, thinking="auto", gate_profile=str(always)).invoke(QUESTION)
    assert all(d.metadata["thinking"] and d.metadata["thoughts"] and d.metadata["gate"]["think"] for d in thought)
    assert [d.id for d in thought] == [h.id for h in sample_index.search(QUESTION, k=2, thinking=True).hits]
    plain = O1Retriever(index=sample_index, k=2, thinking="auto", gate_profile=str(never)).invoke(QUESTION)
    assert all(d.metadata["thinking"] is False and d.metadata["gate"]["think"] is False and "reason" in d.metadata["gate"] for d in plain)
    # per call too, and the plain modes carry no gate
    per_call = O1Retriever(index=sample_index, k=2, gate_profile=str(never)).invoke(QUESTION, thinking="auto")
    assert per_call[0].metadata["gate"]["think"] is False
    assert "gate" not in O1Retriever(index=sample_index, k=2).invoke(QUESTION)[0].metadata
    with pytest.raises(ValidationError, match="no such gate profile"):  # pydantic wraps the GateError, message kept
        O1Retriever(index=sample_index, thinking="auto", gate_profile=str(tmp_path / "missing.json"))
    with pytest.raises(ValidationError):
        O1Retriever(index=sample_index, thinking="sometimes")


def test_embeddings_fields_reach_the_core_config(tmp_path):
    config = O1Embeddings(thinker="llamacpp:smollm2", thinker_threads=1, cache_max_rows=123, encoder=str(tmp_path)).to_config()
    assert config.thinker_threads == 1 and config.cache_max_rows == 123 and config.encoder == str(tmp_path)
