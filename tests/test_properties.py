"""Property-based tests (hypothesis): arbitrary text through the core either works (a vector of
the right shape, a clean document) or is refused with InvalidQueryError, never another
exception. Real MiniLM, real embedded Chroma, no thinking (speed)."""

from __future__ import annotations

import itertools
import json
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from o1_retriever import InvalidQueryError, SourceError, ThinkingEmbedder
from o1_retriever.errors import is_valid_unicode
from o1_retriever.index import ChromaIndex, Document, SourceReport, chunk_text, read_source
from o1_retriever.index.chroma import content_hash

# any code point, lone surrogates included (the default text() strategy leaves them out)
ANY_TEXT = st.text(alphabet=st.characters(exclude_categories=()), max_size=300)
TEXT = st.one_of(st.text(max_size=300), ANY_TEXT)
NOT_TEXT = st.one_of(st.none(), st.integers(), st.floats(), st.binary(max_size=20), st.lists(st.text(max_size=5), max_size=3))
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
PROPS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def plain(encoder):
    return ThinkingEmbedder(None, encoder)


@pytest.mark.slow
@PROPS
@given(query=st.one_of(TEXT, NOT_TEXT))
def test_embed_query_gives_a_unit_vector_or_a_clear_refusal(plain, query):
    try:
        vector = plain.embed_query(query, thinking=False)
    except InvalidQueryError:
        assert not isinstance(query, str) or not query.strip() or not is_valid_unicode(query)
        return
    assert isinstance(query, str) and query.strip()
    assert vector.shape == (plain.dimension,) and np.isfinite(vector).all()
    assert np.isclose(np.linalg.norm(vector), 1.0, atol=1e-4)


@pytest.mark.slow
@PROPS
@given(texts=st.lists(TEXT, max_size=4))
def test_embed_documents_gives_one_row_per_text_or_a_clear_refusal(plain, texts):
    try:
        vectors = plain.embed_documents(texts)
    except InvalidQueryError:
        assert not all(is_valid_unicode(t) for t in texts)
        return
    assert vectors.shape == (len(texts), plain.dimension) and np.isfinite(vectors).all()


@pytest.mark.slow
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(texts=st.lists(TEXT, min_size=1, max_size=3))
def test_any_documents_index_and_search_in_chroma(plain, tmp_path_factory, texts):
    index = ChromaIndex("props", plain, path=tmp_path_factory.mktemp("chroma"))
    docs = [Document(f"d{i}", t) for i, t in enumerate(texts)]
    try:
        stats = index.add(docs, show_progress=False)
    except InvalidQueryError:
        assert not all(is_valid_unicode(t) for t in texts)
        assert index.count() == 0
        return
    assert stats.written == index.count() == len(texts)
    assert index.collection.get(ids=["d0"])["documents"] == [texts[0]]  # stored as given
    if texts[0].strip():
        assert len(index.search(texts[0], k=len(texts), thinking=False).hits) == len(texts)


@given(text=TEXT, size=st.integers(20, 400), overlap=st.integers(0, 60))
@settings(max_examples=100, deadline=None)
def test_chunks_are_bounded_non_empty_and_keep_every_character(text, size, overlap):
    chunks = chunk_text(text, size, overlap)
    assert all(c.strip() and len(c) <= size for c in chunks)
    assert set("".join(text.split())) <= set("".join(chunks))
    assert bool(chunks) == bool(text.strip())


@given(text=TEXT, other=TEXT, meta=st.dictionaries(st.text(max_size=5), st.one_of(st.integers(), TEXT), max_size=3))
@settings(max_examples=100, deadline=None)
def test_content_hash_is_stable_hex_and_tells_texts_apart(text, other, meta):
    h = content_hash(Document("x", text, meta))
    assert h == content_hash(Document("y", text, dict(meta))) and re.fullmatch(r"[0-9a-f]{32}", h)
    if other != text:
        assert content_hash(Document("x", other, meta)) != h


_files = itertools.count()


@given(raw=st.binary(max_size=400))
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_bytes_in_a_text_file_read_cleanly(tmp_path, raw):
    folder = tmp_path / f"f{next(_files)}"
    folder.mkdir()
    (folder / "doc.txt").write_bytes(raw)
    report = SourceReport()
    docs = list(read_source(folder, report, chunk_size=100, overlap=10))
    for doc in docs:
        assert doc.text.strip() and is_valid_unicode(doc.text) and not CONTROL.search(doc.text) and len(doc.text) <= 100
    assert docs or report.skipped


@given(title=TEXT, text=TEXT, ident=st.one_of(st.text(min_size=1, max_size=10), st.integers()))
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_jsonl_text_reads_cleanly_or_is_skipped(tmp_path, title, text, ident):
    path = tmp_path / f"c{next(_files)}.jsonl"
    path.write_text(json.dumps({"_id": ident, "title": title, "text": text}) + "\n")  # ascii escapes, surrogates too
    report = SourceReport()
    try:
        docs = list(read_source(path, report))
    except SourceError:
        pytest.fail("a well-formed line must never be refused")
    assert len(docs) + len(report.skipped) == 1
    for doc in docs:
        assert doc.id == str(ident) and doc.text.strip() and is_valid_unicode(doc.text) and not CONTROL.search(doc.text)


# -- the adapters (integrations/langchain, integrations/llama-index) over the same core ---------
@pytest.mark.slow
@PROPS
@given(query=st.one_of(TEXT, NOT_TEXT), texts=st.lists(TEXT, max_size=3))
def test_langchain_embeddings_give_float_lists_or_a_clear_refusal(plain, query, texts):
    from langchain_o1 import O1Embeddings

    embeddings = O1Embeddings(embedder=plain, thinking=False)
    try:
        vector = embeddings.embed_query(query)
    except InvalidQueryError:
        assert not isinstance(query, str) or not query.strip() or not is_valid_unicode(query)
    else:
        assert len(vector) == plain.dimension and all(type(x) is float for x in vector)
    try:
        rows = embeddings.embed_documents(texts)
    except InvalidQueryError:
        assert not all(is_valid_unicode(t) for t in texts)
    else:
        assert len(rows) == len(texts) and all(len(r) == plain.dimension for r in rows)


@pytest.mark.slow
@PROPS
@given(query=st.one_of(TEXT, NOT_TEXT), texts=st.lists(TEXT, min_size=1, max_size=3))
def test_llama_index_embedding_gives_vectors_or_a_clear_refusal(plain, query, texts):
    from llama_index.embeddings.o1 import O1Embedding

    embed_model = O1Embedding(embedder=plain, thinking=False)
    try:
        vector = embed_model.get_query_embedding(query)
    except InvalidQueryError:
        assert not isinstance(query, str) or not query.strip() or not is_valid_unicode(query)
    else:
        assert len(vector) == plain.dimension and np.isfinite(vector).all()
    try:
        rows = embed_model.get_text_embedding_batch(texts)
    except InvalidQueryError:
        assert not all(is_valid_unicode(t) for t in texts)
    else:
        assert len(rows) == len(texts) and all(len(r) == plain.dimension for r in rows)
