"""Document sources and chunking (no models)."""

from __future__ import annotations

import pytest

from o1_retriever import SourceError
from o1_retriever.index import SourceReport, chunk_text, read_source


def test_chunks_respect_size_and_cover_the_text():
    text = "\n\n".join(f"Paragraph {i}. " + "word " * 60 for i in range(10))
    chunks = chunk_text(text, size=400, overlap=50)
    assert len(chunks) > 5
    assert all(len(c) <= 400 for c in chunks)
    for i in range(10):
        assert any(f"Paragraph {i}." in c for c in chunks)


def test_short_text_is_one_chunk_and_empty_is_none():
    assert chunk_text("hello") == ["hello"]
    assert chunk_text("  \n ") == []


def test_folder_ids_are_stable_paths_with_chunk_numbers(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.md").write_text("alpha " * 400)
    (tmp_path / "b.txt").write_text("beta")
    (tmp_path / "ignored.bin").write_bytes(b"\x00\x01")
    docs = list(read_source(tmp_path, chunk_size=500, overlap=50))
    ids = [d.id for d in docs]
    assert ids[0] == "b.txt#0" and "sub/a.md#0" in ids and "sub/a.md#1" in ids
    assert ids == [d.id for d in read_source(tmp_path, chunk_size=500, overlap=50)]


def test_invalid_utf8_and_control_characters_are_repaired_and_reported(tmp_path):
    (tmp_path / "bad.txt").write_bytes(b"caf\xe9 \x07bell")
    report = SourceReport()
    (doc,) = read_source(tmp_path, report)
    assert "\x07" not in doc.text and "caf" in doc.text
    assert any("invalid UTF-8" in r for r in report.repaired)
    assert any("control characters" in r for r in report.repaired)


def test_jsonl_uses_ids_and_title_plus_text(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"_id": "x1", "title": "Title", "text": "Body."}\n\n{"_id": 7, "text": "No title"}\n')
    docs = list(read_source(path))
    assert [(d.id, d.text) for d in docs] == [("x1", "Title Body."), ("7", "No title")]
    assert docs[0].metadata == {"title": "Title"}


def test_malformed_jsonl_names_the_line(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"_id": "x1", "text": "ok"}\n{not json}\n')
    with pytest.raises(SourceError, match=r"c.jsonl:2"):
        list(read_source(path))
    path.write_text('{"text": "no id"}\n')
    with pytest.raises(SourceError, match=r"c.jsonl:1: expected an object with '_id'"):
        list(read_source(path))


def test_beir_folder_reads_its_corpus(tmp_path):
    (tmp_path / "corpus.jsonl").write_text('{"_id": "d", "title": "", "text": "t"}\n')
    assert [d.id for d in read_source(tmp_path)] == ["d"]


def test_missing_source_is_a_clear_error(tmp_path):
    with pytest.raises(SourceError, match="no such file"):
        read_source(tmp_path / "nope")


def test_jsonl_line_blank_once_control_characters_go_is_skipped(tmp_path):
    # found by hypothesis: "\x1b \x1b" is not blank until its control characters are removed
    path = tmp_path / "c.jsonl"
    path.write_text('{"_id": "0", "title": "\\u001b", "text": "\\u001b"}\n{"_id": "1", "text": "kept"}\n')
    report = SourceReport()
    assert [d.id for d in read_source(path, report)] == ["1"]
    assert any("empty text" in s for s in report.skipped)
