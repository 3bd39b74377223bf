"""llama-index-embeddings-o1 and llama-index-retrievers-o1 on real Chroma with the real offline
models: embedding, retriever, query transform (the docs' RetrieverQueryEngine runs in
tests/test_docs.py)."""

from __future__ import annotations

import chromadb
import numpy as np
import pytest
from chromadb.config import Settings as ChromaSettings
from llama_index.core import Document, StorageContext, VectorStoreIndex
from llama_index.core.retrievers import TransformRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle
from llama_index.embeddings.o1 import O1Embedding
from llama_index.retrievers.o1 import O1QueryTransform, O1Retriever
from llama_index.vector_stores.chroma import ChromaVectorStore

from o1_retriever import CollectionError, InvalidQueryError
from o1_retriever.index import read_source

from .conftest import QUESTION

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def embed_model(fast_embedder):
    return O1Embedding(embedder=fast_embedder)


@pytest.fixture(scope="module")
def llama_store(embed_model, sample_corpus, tmp_path_factory):
    """A ChromaVectorStore filled by VectorStoreIndex with O1Embedding (nodes written by LlamaIndex)."""
    client = chromadb.PersistentClient(path=str(tmp_path_factory.mktemp("llama")), settings=ChromaSettings(anonymized_telemetry=False))
    collection = client.get_or_create_collection("llama-samples", metadata={"hnsw:space": "cosine"}, embedding_function=None)
    store = ChromaVectorStore(chroma_collection=collection)
    docs = [Document(text=d.text, id_=d.id, metadata={"source": d.metadata["source"]}) for d in read_source(sample_corpus)]
    index = VectorStoreIndex.from_documents(docs, storage_context=StorageContext.from_defaults(vector_store=store), embed_model=embed_model)
    return store, index


def test_query_embedding_thinks_text_embedding_does_not(embed_model, fast_embedder):
    query = embed_model.get_query_embedding(QUESTION)
    assert np.allclose(query, fast_embedder.embed_query(QUESTION), atol=1e-6)
    plain = fast_embedder.embed_query(QUESTION, thinking=False)
    assert not np.allclose(query, plain, atol=1e-3)
    assert np.allclose(embed_model.get_text_embedding(QUESTION), plain, atol=1e-5)
    assert np.allclose(O1Embedding(embedder=fast_embedder, thinking=False).get_query_embedding(QUESTION), plain, atol=1e-6)
    vector, thoughts = embed_model.get_query_embedding_with_thoughts(QUESTION)
    assert len(thoughts) == 1 and np.allclose(vector, query, atol=1e-6)
    assert O1Embedding(thoughts=2, max_new_tokens=8).to_config().thoughts == 2
    assert O1Embedding(thinker_dtype="bfloat16").to_config().thinker_dtype == "bfloat16"
    with pytest.raises(ValueError, match="aggregation"):
        O1Embedding(aggregation="median")


def test_vector_store_index_works_unchanged(llama_store):
    _, index = llama_store
    hits = index.as_retriever(similarity_top_k=2).retrieve(QUESTION)
    assert hits[0].node.metadata["source"] == "mercury.md"


async def test_retriever_over_a_chroma_vector_store(llama_store, embed_model, fast_embedder):
    store, _ = llama_store
    retriever = O1Retriever.from_vector_store(store, embed_model=embed_model, similarity_top_k=3)
    hits = retriever.retrieve(QUESTION)
    assert len(hits) == 3 and all(isinstance(h, NodeWithScore) for h in hits)
    top = hits[0].node
    assert top.metadata["source"] == "mercury.md" and top.ref_doc_id == "mercury.md#0"  # the stored node, as written
    thoughts = fast_embedder.embed_query(QUESTION, return_thoughts=True).thoughts
    assert top.metadata["thoughts"] == thoughts and top.metadata["thinking"] is True
    assert "thoughts" in top.excluded_llm_metadata_keys and "thoughts" not in top.get_content(metadata_mode="llm")
    # score: cosine similarity of the thinking query vector and the stored document vector
    stored = store._collection.get(ids=[top.node_id], include=["embeddings"])["embeddings"][0]
    assert hits[0].score == pytest.approx(float(np.dot(fast_embedder.embed_query(QUESTION), stored)), abs=1e-4)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert len(O1Retriever.from_vector_store(store, embed_model=embed_model, similarity_top_k=1).retrieve(QUESTION)) == 1
    got = await retriever.aretrieve(QUESTION)
    assert [(h.node.node_id, h.score) for h in got] == [(h.node.node_id, h.score) for h in hits]
    base = O1Retriever.from_vector_store(store, embed_model=embed_model, similarity_top_k=3, thinking=False).retrieve(QUESTION)
    assert base[0].node.metadata["thoughts"] == [] and base[0].node.metadata["thinking"] is False
    assert base[0].score != pytest.approx(hits[0].score, abs=1e-6)


def test_retriever_over_an_o1_collection(sample_index, fast_embedder):
    retriever = O1Retriever.from_collection("o1-samples", embed_model=fast_embedder, client=sample_index.client, similarity_top_k=4)
    hits = retriever.retrieve(QUESTION)
    expected = sample_index.search(QUESTION, k=4)
    assert [h.node.node_id for h in hits] == [h.id for h in expected.hits]
    assert [h.score for h in hits] == pytest.approx([h.score for h in expected.hits], abs=1e-6)
    assert hits[0].node.metadata["source"] == "mercury.md" and hits[0].node.metadata["thoughts"] == expected.thoughts


def test_bad_input_gives_clear_errors(sample_index):
    with pytest.raises(InvalidQueryError):
        O1Retriever(sample_index, similarity_top_k=0)
    with pytest.raises(CollectionError, match="ChromaIndex"):
        O1Retriever("o1-samples")
    with pytest.raises(CollectionError, match="ChromaVectorStore"):
        O1Retriever.from_vector_store(object())
    with pytest.raises(InvalidQueryError, match="empty"):
        O1Retriever(sample_index).retrieve(" ")


def test_query_transform_in_transform_retriever(llama_store, fast_embedder, encoder):
    """Any index thinks first: a plain (non-thinking) index, O1QueryTransform in front of it."""
    store, _ = llama_store
    plain_model = O1Embedding(embedder=fast_embedder, thinking=False)
    index = VectorStoreIndex.from_vector_store(store, embed_model=plain_model)
    transform = O1QueryTransform(fast_embedder, thoughts=2)
    bundle = transform.run(QUESTION)
    thoughts = transform.last_thoughts
    assert len(thoughts) == 2 and thoughts == fast_embedder.think([QUESTION], 2)[0]
    assert bundle.embedding_strs == [f"{QUESTION} {t}" for t in thoughts] + [QUESTION]

    retriever = TransformRetriever(index.as_retriever(similarity_top_k=3), transform)
    hits = retriever.retrieve(QUESTION)
    # the same ids as Chroma returns for the mean of the embedded strings: the O1 query vector
    vector = np.mean([plain_model.get_query_embedding(s) for s in bundle.embedding_strs], axis=0)
    want = store._collection.query(query_embeddings=[vector], n_results=3)["ids"][0]
    assert [h.node.node_id for h in hits] == want
    assert hits[0].node.metadata["source"] == "mercury.md"
    # hyde aggregation: the thoughts alone are the embedding strings
    assert O1QueryTransform(fast_embedder, aggregation="hyde").run(QueryBundle(QUESTION)).embedding_strs == fast_embedder.think([QUESTION], 1)[0]


def test_from_collection_opens_read_only(sample_index, fast_embedder, tmp_path):
    """A missing collection or database is a clear error; nothing is created or adopted (issue 13)."""
    client = sample_index.client
    before = sorted(c.name for c in client.list_collections())
    with pytest.raises(CollectionError, match=r"no collection 'o1-sample' .*did you mean 'o1-samples'\?"):
        O1Retriever.from_collection("o1-sample", embed_model=fast_embedder, client=client)
    assert sorted(c.name for c in client.list_collections()) == before
    with pytest.raises(CollectionError, match="no Chroma database"):
        O1Retriever.from_collection("o1-samples", embed_model=fast_embedder, path=tmp_path / "none")
    assert not (tmp_path / "none").exists()
    client.create_collection("llama-bare", embedding_function=None, metadata={"hnsw:space": "cosine"})
    assert O1Retriever.from_collection("llama-bare", embed_model=fast_embedder, client=client, thinking=False).retrieve(QUESTION) == []
    assert client.get_collection("llama-bare").metadata == {"hnsw:space": "cosine"}  # not adopted


def test_auto_thinking_puts_the_gate_decision_in_node_metadata(sample_index, tmp_path):
    from o1_retriever.gate import GateProfile

    always = GateProfile("top1", 2.0, "below")
    never = GateProfile("top1", -2.0, "below").save(tmp_path / "never.json")
    hits = O1Retriever(sample_index, similarity_top_k=2, thinking="auto", gate_profile=always).retrieve(QUESTION)
    assert all(h.node.metadata["gate"]["think"] and h.node.metadata["thinking"] and h.node.metadata["thoughts"] for h in hits)
    assert "gate" in hits[0].node.excluded_llm_metadata_keys  # kept out of LLM prompts
    hits = O1Retriever(sample_index, similarity_top_k=2, thinking="auto", gate_profile=never).retrieve(QUESTION)
    assert all(h.node.metadata["gate"]["think"] is False and h.node.metadata["thinking"] is False for h in hits)
    assert [h.node.node_id for h in hits] == [h.id for h in sample_index.search(QUESTION, k=2, thinking=False).hits]
    with pytest.raises(InvalidQueryError, match="thinking must be"):
        O1Retriever(sample_index, thinking="sometimes")


def test_embedding_fields_reach_the_core_config(tmp_path):
    config = O1Embedding(thinker="llamacpp:smollm2", thinker_threads=1, cache_max_rows=123, encoder=str(tmp_path)).to_config()
    assert config.thinker_threads == 1 and config.cache_max_rows == 123 and config.encoder == str(tmp_path)
