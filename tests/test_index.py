"""ChromaIndex on a real embedded Chroma with the real MiniLM encoder."""

from __future__ import annotations

import json

import numpy as np
import pytest

from o1_retriever import CollectionError, EmbedderMismatchError, ThinkingEmbedder
from o1_retriever.index import ChromaIndex, Document, collection_info, read_source, source_id

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


# -- sync: the collection holds exactly what each source holds now (issue 13) -------------------
TOPICS = ["tides and the moon", "volcanoes and lava", "coffee roasting", "chess openings", "the blue sky", "mercury the metal",
          "glaciers carving valleys", "photosynthesis", "vaccines", "the great wall", "black holes", "river deltas"]
BEES = "Honey bees dance to tell each other where flowers are. The waggle dance encodes direction and distance."


def twelve_paragraphs() -> str:
    return "\n\n".join(f"This paragraph is about {t}. " + " ".join(f"More on {t}, sentence {i}." for i in range(18)) for t in TOPICS)


def write_notes(folder, files: dict[str, str]):
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def stored(index: ChromaIndex) -> dict[str, tuple[str, dict]]:
    got = index.collection.get(include=["documents", "metadatas"])
    return {i: (d, m) for i, d, m in zip(got["ids"], got["documents"], got["metadatas"])}


def test_sync_removes_deleted_files_and_chunk_positions_that_are_gone(plain, tmp_path):
    """Reproduction 1 of issue 13: a.md shrinks from 12 chunks to one line, b.md is deleted."""
    notes = write_notes(tmp_path / "notes", {"a.md": twelve_paragraphs(), "b.md": BEES})
    index = ChromaIndex("notes", plain, path=tmp_path / "db")
    first = index.add(read_source(notes), source=source_id(notes), sync=True, show_progress=False)
    assert first.written == index.count() == 13 and first.removed == 0

    (notes / "a.md").write_text("One line about tides.")
    (notes / "b.md").unlink()
    again = index.add(read_source(notes), source=source_id(notes), sync=True, show_progress=False)
    assert (again.written, again.unchanged, again.removed) == (1, 0, 12)
    assert list(stored(index)) == ["a.md#0"] and index.count() == 1
    assert [h.id for h in index.search("honey bees dance", k=5, thinking=False).hits] == ["a.md#0"]

    third = index.add(read_source(notes), source=source_id(notes), sync=True, show_progress=False)
    assert (third.written, third.unchanged, third.removed) == (0, 1, 0)  # unchanged content costs nothing


def test_without_sync_stale_chunks_stay(plain, tmp_path):
    notes = write_notes(tmp_path / "notes", {"a.md": "alpha text", "b.md": BEES})
    index = ChromaIndex("notes", plain, path=tmp_path / "db")
    index.add(read_source(notes), source=source_id(notes), show_progress=False)
    (notes / "b.md").unlink()
    stats = index.add(read_source(notes), source=source_id(notes), sync=False, show_progress=False)
    assert stats.removed == 0 and set(stored(index)) == {"a.md#0", "b.md#0"}
    with pytest.raises(ValueError, match="needs the source"):
        index.add(read_source(notes), sync=True, show_progress=False)


def test_syncing_one_folder_never_touches_another_folders_chunks(plain, tmp_path):
    folder_a = write_notes(tmp_path / "A", {"notes.md": "folder A keeps notes on tides", "x.md": "folder A on volcanoes"})
    folder_b = write_notes(tmp_path / "B", {"y.md": "folder B on coffee", "z.md": "folder B on chess"})
    index = ChromaIndex("shared", plain, path=tmp_path / "db")
    index.add(read_source(folder_a), source=source_id(folder_a), sync=True, show_progress=False)
    index.add(read_source(folder_b), source=source_id(folder_b), sync=True, show_progress=False)
    (folder_b / "z.md").unlink()
    stats = index.add(read_source(folder_b), source=source_id(folder_b), sync=True, show_progress=False)
    assert stats.removed == 1
    held = stored(index)
    assert set(held) == {"notes.md#0", "x.md#0", "y.md#0"}
    assert {i: m["o1_source"] for i, (_, m) in held.items()} == {
        "notes.md#0": source_id(folder_a), "x.md#0": source_id(folder_a), "y.md#0": source_id(folder_b)}
    assert held["x.md#0"][1]["source"] == "x.md"  # each chunk also records its file

    # B gains a notes.md too: its id is A's, so B is refused, naming both, and A's chunk stays A's
    (folder_b / "notes.md").write_text("folder B has notes on glaciers")
    with pytest.raises(CollectionError, match=r"notes\.md#0.*--id-prefix") as info:
        index.add(read_source(folder_b), source=source_id(folder_b), sync=True, show_progress=False)
    assert source_id(folder_a) in str(info.value)
    assert stored(index)["notes.md#0"][0] == "folder A keeps notes on tides"

    # with its own ids, B shares the collection; syncing B also drops its old unprefixed chunks
    stats = index.add(read_source(folder_b, id_prefix="B/"), source=source_id(folder_b), sync=True, show_progress=False)
    assert (stats.written, stats.removed) == (2, 1)
    held = stored(index)
    assert set(held) == {"notes.md#0", "x.md#0", "B/notes.md#0", "B/y.md#0"}
    assert held["notes.md#0"][0] == "folder A keeps notes on tides" and held["B/notes.md#0"][0] == "folder B has notes on glaciers"


def test_chunks_indexed_before_sources_were_recorded_are_adopted_without_reembedding(plain, tmp_path, sample_corpus):
    index = ChromaIndex("old", plain, path=tmp_path / "db")
    before = index.add(read_source(sample_corpus), show_progress=False)  # as versions without sources did
    assert all("o1_source" not in m for _, m in stored(index).values())
    vectors = index.collection.get(include=["embeddings"])
    stats = index.add(read_source(sample_corpus), source=source_id(sample_corpus), sync=True, show_progress=False)
    assert (stats.written, stats.unchanged, stats.removed) == (0, before.seen, 0)
    assert all(m["o1_source"] == source_id(sample_corpus) for _, m in stored(index).values())
    after = index.collection.get(ids=vectors["ids"], include=["embeddings"])
    assert np.array_equal(np.asarray(after["embeddings"]), np.asarray(vectors["embeddings"]))
    assert "o1_source" not in index.search("mercury", k=1, thinking=False).hits[0].metadata


def test_source_id_names_the_corpus_file_and_id_prefix_scopes_ids(tmp_path, sample_corpus, monkeypatch):
    monkeypatch.chdir(sample_corpus.parent)
    assert source_id("sample_corpus") == source_id(f"./{sample_corpus.name}/") == sample_corpus.resolve().as_posix()
    beir = tmp_path / "beir"
    beir.mkdir()
    (beir / "corpus.jsonl").write_text('{"_id": "d1", "text": "one"}\n')
    assert source_id(beir) == source_id(beir / "corpus.jsonl") == (beir / "corpus.jsonl").resolve().as_posix()
    assert [d.id for d in read_source(beir, id_prefix="set1:")] == ["set1:d1"]


def test_collection_info_counts_chunks_per_source(plain, tmp_path, sample_corpus):
    index = ChromaIndex("info", plain, path=tmp_path / "db")
    n = index.add(read_source(sample_corpus), source=source_id(sample_corpus), show_progress=False).written
    index.add([Document("loose", "written without a source")], show_progress=False)
    info = collection_info(index.collection, page=7)  # several pages
    assert (info.name, info.count, info.space, info.unsourced) == ("info", n + 1, "cosine", 1)
    assert info.sources == {source_id(sample_corpus): n}
    assert info.fingerprint == plain.fingerprint()


# -- reading never creates or changes anything ----------------------------------------------------
def snapshot(path) -> dict:
    """Everything a collection holds, read through a client of its own."""
    import chromadb
    from chromadb.api.client import SharedSystemClient

    SharedSystemClient.clear_system_cache()
    client = chromadb.PersistentClient(str(path))
    out = {}
    for col in client.list_collections():
        got = col.get(include=["documents", "metadatas", "embeddings"])
        out[col.name] = (col.metadata, got["ids"], got["documents"], got["metadatas"], np.asarray(got["embeddings"]).tolist())
    return out


def test_reading_a_missing_collection_names_those_that_exist_and_creates_nothing(plain, tmp_path):
    ChromaIndex("notes", plain, path=tmp_path).add([Document("a", "alpha")], show_progress=False)
    ChromaIndex("papers", plain, path=tmp_path)
    with pytest.raises(CollectionError, match=r"no collection 'note' in .*\(it holds: notes, papers\); did you mean 'notes'\?"):
        ChromaIndex("note", plain, path=tmp_path, create=False)
    with pytest.raises(CollectionError, match="no collection 'nosuchcoll'") as info:
        ChromaIndex("nosuchcoll", plain, path=tmp_path, create=False)
    assert "did you mean" not in str(info.value)
    assert set(snapshot(tmp_path)) == {"notes", "papers"}


def test_reading_a_missing_database_makes_no_folder(plain, tmp_path):
    with pytest.raises(CollectionError, match="no Chroma database at .*nothing has been indexed there"):
        ChromaIndex("notes", plain, path=tmp_path / "nowhere", create=False)
    assert not (tmp_path / "nowhere").exists()
    (tmp_path / "empty").mkdir()
    with pytest.raises(CollectionError, match="no Chroma database"):
        ChromaIndex("notes", plain, path=tmp_path / "empty", create=False)
    assert list((tmp_path / "empty").iterdir()) == []


def test_opening_for_reading_and_searching_change_nothing(plain, tmp_path, sample_corpus):
    import chromadb

    ChromaIndex("docs", plain, path=tmp_path).add(read_source(sample_corpus), show_progress=False)
    client = chromadb.PersistentClient(str(tmp_path))
    client.create_collection("handmade", embedding_function=None, metadata={"hnsw:space": "cosine", "owner": "someone"})
    before = snapshot(tmp_path)
    for name in ("docs", "handmade"):
        reader = ChromaIndex(name, plain, path=tmp_path, create=False)
        reader.search("Which metal is liquid at room temperature?", k=3, thinking=False)
    ChromaIndex.from_collection(chromadb.PersistentClient(str(tmp_path)).get_collection("handmade"), plain)
    assert snapshot(tmp_path) == before  # the empty foreign collection was not adopted either
    ChromaIndex("handmade", plain, path=tmp_path)  # a writer does adopt it
    assert "o1_fingerprint" in snapshot(tmp_path)["handmade"][0]
