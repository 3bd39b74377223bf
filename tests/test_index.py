"""ChromaIndex on a real embedded Chroma with the real MiniLM encoder."""

from __future__ import annotations

import json

import numpy as np
import pytest

from o1_retriever import CollectionError, EmbedderMismatchError, ThinkingEmbedder
from o1_retriever.index import ChromaIndex, Document, read_source

pytestmark = pytest.mark.slow


@pytest.fixture()
def plain(encoder):
    """An embedder without a thinker: these tests are about indexing."""
    return ThinkingEmbedder(None, encoder)


def test_collection_is_cosine_and_records_the_fingerprint(plain, tmp_path):
    index = ChromaIndex("docs", plain, path=tmp_path)
    assert index.space == "cosine"
    assert json.loads(index.collection.metadata["o1_fingerprint"]) == plain.fingerprint()


def test_reindexing_leaves_each_document_exactly_once(plain, tmp_path, sample_corpus):
    index = ChromaIndex("docs", plain, path=tmp_path)
    first = index.add(read_source(sample_corpus), show_progress=False)
    assert first.written == first.seen == index.count() > 10
    again = ChromaIndex("docs", plain, path=tmp_path).add(read_source(sample_corpus), show_progress=False)
    assert again.written == 0 and again.unchanged == first.seen
    assert index.count() == first.seen
    ids = index.collection.get(include=[])["ids"]
    assert len(ids) == len(set(ids)) == first.seen


def test_changed_documents_are_rewritten_and_batches_stay_small(plain, tmp_path):
    index = ChromaIndex("docs", plain, path=tmp_path)
    docs = [Document(f"d{i}", f"document number {i}") for i in range(7)]
    assert index.add(docs, batch_size=3, show_progress=False).written == 7
    docs[2] = Document("d2", "a completely different text")
    stats = index.add(docs, batch_size=3, show_progress=False)
    assert (stats.written, stats.unchanged) == (1, 6)
    got = index.collection.get(ids=["d2"], include=["documents", "embeddings"])
    assert got["documents"] == ["a completely different text"]
    assert np.allclose(got["embeddings"][0], plain.embed_documents(["a completely different text"])[0], atol=1e-6)


def test_repeated_ids_keep_the_first_and_are_reported(plain, tmp_path):
    index = ChromaIndex("docs", plain, path=tmp_path)
    stats = index.add([Document("a", "first"), Document("a", "second"), Document("b", "other")], show_progress=False)
    assert stats.duplicates == ["a"] and index.count() == 2
    assert index.collection.get(ids=["a"])["documents"] == ["first"]


def test_other_encoder_is_refused_naming_both(plain, tmp_path, thinker):
    ChromaIndex("docs", plain, path=tmp_path).add([Document("a", "text")], show_progress=False)
    from o1_retriever.encoders.last_token import LastTokenEncoder

    other = ThinkingEmbedder(None, LastTokenEncoder((thinker.model, thinker.tokenizer), name="smollm2"))
    with pytest.raises(EmbedderMismatchError) as info:
        ChromaIndex("docs", other, path=tmp_path)
    assert "all-MiniLM-L6-v2" in str(info.value) and "last-token:smollm2" in str(info.value)


def test_thinker_changes_are_allowed(plain, tmp_path, thinker, encoder):
    ChromaIndex("docs", plain, path=tmp_path).add([Document("a", "text")], show_progress=False)
    thinking = ThinkingEmbedder(thinker, encoder)
    assert ChromaIndex("docs", thinking, path=tmp_path).count() == 1


def test_bad_collection_name_is_explained(plain, tmp_path):
    with pytest.raises(CollectionError, match="3-512 characters"):
        ChromaIndex("x", plain, path=tmp_path)


def test_dimension_mismatch_in_hand_made_collection(plain, tmp_path):
    import chromadb

    client = chromadb.PersistentClient(str(tmp_path))
    col = client.create_collection("handmade", embedding_function=None, metadata={"hnsw:space": "cosine"})
    col.add(ids=["x"], embeddings=[[0.1, 0.2, 0.3]], documents=["three dims"])
    index = ChromaIndex("handmade", plain, client=client)
    with pytest.raises(CollectionError, match="dimension"):
        index.search("anything", thinking=False)


def test_search_finds_the_right_document_with_and_without_thinking(embedder, tmp_path, sample_corpus):
    index = ChromaIndex("docs", embedder, path=tmp_path)
    index.add(read_source(sample_corpus), show_progress=False)
    for thinking in (False, True):
        result = index.search("Which metal is liquid at room temperature?", k=3, thinking=thinking)
        assert result.hits[0].id == "mercury.md#0", result
        assert len(result.hits) == 3
        assert result.hits[0].score >= result.hits[1].score
        assert bool(result.thoughts) is thinking
    direct = float(np.dot(embedder.embed_query("Which metal is liquid at room temperature?", thinking=False),
                          embedder.embed_documents([result.hits[0].text])[0]))
    plain_hit = index.search("Which metal is liquid at room temperature?", k=1, thinking=False).hits[0]
    assert plain_hit.score == pytest.approx(direct, abs=1e-4)  # score is the cosine similarity


def test_k_larger_than_collection_and_bad_k(plain, tmp_path):
    index = ChromaIndex("docs", plain, path=tmp_path)
    index.add([Document("a", "alpha"), Document("b", "beta")], show_progress=False)
    assert len(index.search("alpha", k=50).hits) == 2
    with pytest.raises(ValueError):
        index.search("alpha", k=0)
