"""Keyword and hybrid retrieval (issue 20): the keyword index kept with each collection (written by
``index``, kept equal by sync and deletes, stale ones detected and rebuilt in memory without a
write), ``search --mode``, the fusion, and eval's keyword systems. Real MiniLM, real embedded
Chroma (and a real ``chroma run`` server), real subprocesses for the kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from chromadb.api.client import SharedSystemClient
from typer.testing import CliRunner

from o1_retriever import ThinkingEmbedder
from o1_retriever.index import ChromaIndex, Document, keyword, read_source, source_id
from o1_retriever.index.hybrid import Fusion, fuse, keyword_query

runner = CliRunner()

DOCS = [
    Document("mercury", "Mercury is the only metal that is liquid at room temperature."),
    Document("bees", "Honey bees dance to tell their hive where the flowers are."),
    Document("sky", "Rayleigh scattering of sunlight makes the daytime sky look blue."),
    Document("lava", "A volcano erupts lava when magma reaches the surface."),
    Document("tides", "The moon's gravity pulls the oceans and raises the tides."),
]


@pytest.fixture()
def plain(encoder):
    """An embedder without a thinker: these tests are about the keyword side and the fusion."""
    return ThinkingEmbedder(None, encoder)


def files_of(folder: Path) -> dict[str, float]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()} if folder.exists() else {}


def keyword_ids(index: ChromaIndex) -> set[str]:
    return set(keyword.load(index).bm25.ids)


# -- the fusion (pure functions) -------------------------------------------------------------------
def test_reciprocal_rank_fusion_matches_the_formula():
    dense = {"a": 0.9, "b": 0.8, "c": 0.1}
    words = {"c": 12.0, "d": 3.0}
    fused = fuse(dense, words, Fusion("rrf", 60, 0.5))
    assert fused == pytest.approx({"c": 0.5 / 63 + 0.5 / 61, "a": 0.5 / 61, "b": 0.5 / 62, "d": 0.5 / 62})
    assert list(fused)[:2] == ["c", "a"]  # in both lists beats first in one
    assert list(fuse(dense, words, Fusion("rrf", 60, 1.0)))[:2] == ["c", "d"]  # keyword side only


def test_minmax_fusion_scales_each_side_to_unit_range():
    fused = fuse({"a": 0.9, "b": 0.5}, {"b": 10.0, "c": 2.0}, Fusion("minmax", keyword_weight=0.5))
    assert fused == pytest.approx({"a": 0.5, "b": 0.5, "c": 0.0})


def test_keyword_query_repeats_the_query_before_its_thoughts():
    assert keyword_query("why blue", []) == "why blue"
    assert keyword_query("why blue", ["light scatters"], repeat=3) == "why blue why blue why blue light scatters"
    assert keyword_query("why blue", ["light scatters", "sky"]).split().count("why") == 5  # the dev split's choice


def test_bad_mode_and_fusion_are_clear_errors(plain, tmp_path):
    from o1_retriever import O1RetrieverError

    index = ChromaIndex("docs", plain, path=tmp_path)
    index.add(DOCS, show_progress=False)
    with pytest.raises(O1RetrieverError, match="mode must be one of dense, keyword, hybrid"):
        index.search("metal", mode="sparse")
    with pytest.raises(O1RetrieverError, match="fusion must be one of"):
        Fusion("borda")


# -- the keyword index kept with the collection ----------------------------------------------------
@pytest.mark.slow
def test_index_writes_the_keyword_index_and_sync_keeps_it_equal(plain, tmp_path):
    index = ChromaIndex("docs", plain, path=tmp_path)
    index.add(DOCS, source="notes", sync=True, show_progress=False)
    folder = tmp_path / "o1-keyword" / "docs"
    manifest = json.loads((folder / "current.json").read_text())
    assert manifest["count"] == 5 and manifest["generation"] == keyword.generation(index.collection) == 1
    reader = ChromaIndex("docs", plain, path=tmp_path, create=False)
    assert keyword.load(reader).stored and keyword_ids(reader) == {d.id for d in DOCS}

    # sync without two documents: both sides lose them, and a reader opened before notices
    index.add(DOCS[2:], source="notes", sync=True, show_progress=False)
    assert keyword_ids(reader) == {"sky", "lava", "tides"} == set(index.collection.get(include=[])["ids"])
    hits = reader.search("metal liquid at room temperature", k=5, mode="keyword").hits
    assert "mercury" not in [h.id for h in hits]
    assert keyword.load(reader).stored  # the stored index, not a rebuild

    # an unchanged rerun writes nothing and leaves the generation where it was
    before = files_of(folder)
    index.add(DOCS[2:], source="notes", sync=True, show_progress=False)
    assert files_of(folder) == before and keyword.generation(index.collection) == 2


@pytest.mark.slow
def test_hybrid_hits_carry_both_ranks(plain, tmp_path):
    index = ChromaIndex("docs", plain, path=tmp_path)
    index.add(DOCS, show_progress=False)
    result = index.search("which metal is liquid at room temperature", k=3, mode="hybrid")
    assert result.mode == "hybrid" and result.hits[0].id == "mercury"
    assert result.hits[0].ranks == {"dense": 1, "keyword": 1}
    assert all(set(h.ranks) == {"dense", "keyword"} for h in result.hits)
    dense = [h.id for h in index.search("which metal is liquid at room temperature", k=5).hits]
    assert all(h.ranks["dense"] == dense.index(h.id) + 1 for h in result.hits)
    payload = result.to_dict()
    assert payload["mode"] == "hybrid" and payload["results"][0]["ranks"] == {"dense": 1, "keyword": 1}
    words = index.search("volcano magma", k=3, mode="keyword")
    assert words.hits[0].id == "lava" and words.hits[0].ranks == {"keyword": 1}
    assert words.hits[0].metadata == {} and "volcano" in words.hits[0].text


@pytest.mark.slow
def test_stale_keyword_index_is_detected_and_rebuilt_in_memory_without_writing(plain, tmp_path, caplog):
    index = ChromaIndex("docs", plain, path=tmp_path)
    index.add(DOCS, show_progress=False)
    # what a kill between the first write and the keyword index being stored leaves behind
    keyword.bump_generation(index)
    index.collection.upsert(ids=["new"], documents=["Coffee beans are roasted seeds."], embeddings=plain.embed_documents(["Coffee beans are roasted seeds."]).tolist())
    folder = tmp_path / "o1-keyword" / "docs"
    before = files_of(folder)
    reader = ChromaIndex("docs", plain, path=tmp_path, create=False)
    reason = keyword.stale_reason(reader.collection, keyword.read_manifest(folder), reader.count())
    assert reason and "write generation 1" in reason and "at 2" in reason
    hits = reader.search("roasted coffee", k=2, mode="keyword").hits
    assert hits[0].id == "new"  # rebuilt from the collection: the unstored chunk is found
    assert not keyword.load(reader).stored and "rebuilding it in memory" in caplog.text
    assert files_of(folder) == before and keyword.generation(reader.collection) == 2  # reading never writes

    # the next index run stores it again
    index = ChromaIndex("docs", plain, path=tmp_path)
    index.add(DOCS, show_progress=False)
    assert keyword.stale_reason(index.collection, keyword.read_manifest(folder), index.count()) is None
    assert keyword_ids(ChromaIndex("docs", plain, path=tmp_path, create=False)) == {d.id for d in DOCS} | {"new"}


@pytest.mark.slow
def test_writes_by_another_tool_and_a_recreated_collection_are_stale(plain, tmp_path):
    index = ChromaIndex("docs", plain, path=tmp_path)
    index.add(DOCS, show_progress=False)
    folder = tmp_path / "o1-keyword" / "docs"
    index.collection.delete(ids=["mercury"])  # another tool: no generation bump, the count tells
    assert "holds 5 chunks, the collection 4" in keyword.stale_reason(index.collection, keyword.read_manifest(folder), 4)
    reader = ChromaIndex("docs", plain, path=tmp_path, create=False)
    assert "mercury" not in [h.id for h in reader.search("liquid metal mercury", k=5, mode="hybrid").hits]

    index.client.delete_collection("docs")  # a new collection under the same name is another one
    again = ChromaIndex("docs", plain, path=tmp_path)
    again.collection.add(ids=["x1", "x2", "x3", "x4"], documents=["a"] * 4, embeddings=plain.embed_documents(["a"] * 4).tolist())
    assert "earlier collection" in keyword.stale_reason(again.collection, keyword.read_manifest(folder), 4)


@pytest.mark.slow
def test_sigkill_mid_sync_leaves_a_detectably_stale_keyword_index_and_a_rerun_equalises(encoder, model_home, tmp_path):
    """The kill of tests/test_interrupt.py, seen from the keyword side: after it the stored
    keyword index is stale (its generation is behind the collection's), searches never serve a
    chunk the collection lost, and a rerun stores an index equal to the collection."""
    from tests.test_interrupt import BATCH, kill_after_first_batches, rewrite_corpus, start_index, write_corpus

    corpus = tmp_path / "corpus.jsonl"
    write_corpus(corpus)
    db = tmp_path / "db"
    plain = ThinkingEmbedder(None, encoder)
    ChromaIndex("kill", plain, path=db).add(read_source(corpus), source=source_id(corpus), sync=True, batch_size=BATCH, show_progress=False)
    SharedSystemClient.clear_system_cache()  # another process writes there next
    folder = db / "o1-keyword" / "kill"
    stored_before = json.loads((folder / "current.json").read_text())

    rewrite_corpus(corpus)
    new = {d.id for d in read_source(corpus)}
    proc = start_index(corpus, db, model_home)
    kill_after_first_batches(proc)
    assert proc.returncode == -signal.SIGKILL
    reader = ChromaIndex("kill", plain, path=db, create=False)
    assert json.loads((folder / "current.json").read_text()) == stored_before  # the killed writer never stored
    reason = keyword.stale_reason(reader.collection, keyword.read_manifest(folder), reader.count())
    assert reason and "write generation" in reason
    held = set(reader.collection.get(include=[])["ids"])
    assert keyword_ids(reader) == held
    for hit in reader.search("tide moon ocean gravity", k=50, mode="hybrid").hits:
        assert hit.id in held
    SharedSystemClient.clear_system_cache()

    env = {**os.environ, "O1_RETRIEVER_HOME": str(model_home)}
    rerun = subprocess.run(
        [sys.executable, "-m", "o1_retriever.cli", "index", str(corpus), "--collection", "kill", "--db", str(db),
         "--encoder", "minilm", "--thinker", "none", "--batch-size", str(BATCH)],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert rerun.returncode == 0, rerun.stderr
    synced = ChromaIndex("kill", plain, path=db, create=False)
    assert keyword.stale_reason(synced.collection, keyword.read_manifest(folder), synced.count()) is None
    assert keyword.load(synced).stored and keyword_ids(synced) == new == set(synced.collection.get(include=[])["ids"])


@pytest.mark.slow
def test_keyword_index_of_a_chroma_server_lives_under_home(plain, model_home, tmp_path):
    from tests.test_server import free_port, serve, stop

    import shutil

    chroma = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")
    port = free_port()
    proc, fh = serve([chroma, "run", "--path", str(tmp_path / "rust-db"), "--host", "127.0.0.1", "--port", str(port)], {**os.environ, "ANONYMIZED_TELEMETRY": "False"}, port, tmp_path / "rust.log")
    try:
        index = ChromaIndex("docs", plain, host="127.0.0.1", port=port)
        index.add(DOCS, show_progress=False)
        folder = model_home / "keyword" / f"127.0.0.1-{port}" / "docs"
        assert json.loads((folder / "current.json").read_text())["count"] == 5
        reader = ChromaIndex("docs", plain, host="127.0.0.1", port=port, create=False)
        assert reader.search("bees dance", k=1, mode="hybrid").hits[0].id == "bees"
        assert keyword.load(reader).stored
    finally:
        stop(proc, fh)


# -- the command line ------------------------------------------------------------------------------
@pytest.mark.slow
def test_cli_search_modes_info_and_delete(model_home, tmp_path, sample_corpus):
    from o1_retriever.cli import app

    db = tmp_path / "db"
    common = ["--collection", "notes", "--db", str(db), "--thinker", "none"]
    assert runner.invoke(app, ["index", str(sample_corpus), *common]).exit_code == 0
    folder = db / "o1-keyword" / "notes"
    assert (folder / "current.json").is_file()
    result = runner.invoke(app, ["search", "Which metal is liquid at room temperature?", *common, "--no-think", "--mode", "hybrid", "--k", "3", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["mode"] == "hybrid" and len(payload["results"]) == 3
    assert all(set(r["ranks"]) == {"dense", "keyword"} for r in payload["results"])
    table = runner.invoke(app, ["search", "bees flowers", *common, "--no-think", "--mode", "keyword"])
    assert table.exit_code == 0 and "keyword rank" in table.stdout
    bad = runner.invoke(app, ["search", "bees", *common, "--mode", "sparse"])
    assert bad.exit_code == 2 and "mode must be one of dense, keyword, hybrid" in bad.output

    info = runner.invoke(app, ["collections", "info", "notes", "--db", str(db), "--json"])
    assert json.loads(info.stdout)["keyword_index"] == {"current": True, "stale_reason": None}
    gone = runner.invoke(app, ["collections", "delete", "notes", "--db", str(db), "--yes"])
    assert gone.exit_code == 0 and not folder.exists()


# -- eval ------------------------------------------------------------------------------------------
def test_eval_knows_the_keyword_systems():
    from o1_retriever.evaluation.retrieval import parse_systems

    systems = parse_systems("bm25,bm25+thinking,hybrid,hybrid+thinking", "o1+query")
    assert [(s.name, s.kind, s.aggregation) for s in systems] == [
        ("bm25", "bm25", None), ("bm25+thinking", "bm25+thinking", "o1+query"), ("hybrid", "hybrid", None), ("hybrid+thinking", "hybrid+thinking", "o1+query"),
    ]


@pytest.mark.slow
def test_eval_keyword_systems_end_to_end(tmp_path, model_home):
    """bm25+thinking, hybrid and hybrid+thinking on 3 HotpotQA questions (1 thought of 16 tokens):
    figures, thoughts used by the keyword side, and paired comparisons against bm25 and hybrid."""
    from o1_retriever.cli import app
    from tests.test_evaluation import hotpot_slice

    data = hotpot_slice(tmp_path / "hotpot", questions=3)
    out = tmp_path / "out"
    args = ["eval", str(data), "--systems", "bm25,dense,bm25+thinking,hybrid,hybrid+thinking", "--thoughts", "1", "--max-new-tokens", "16",
            "--cache", str(tmp_path / "thoughts.sqlite"), "--out", str(out)]  # its own cache: other tests' thoughts are not its
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "results.json").read_text())
    systems = saved["systems"]
    assert set(systems) == {"bm25", "dense", "bm25+thinking", "hybrid", "hybrid+thinking"}
    assert systems["bm25+thinking"]["thoughts_per_query"] == 1 and systems["hybrid"]["thoughts_per_query"] == 0
    assert systems["hybrid+thinking"]["thoughts_per_query"] == 1
    for name, s in systems.items():
        mean = sum(q["nDCG@10"] for q in s["per_query"].values()) / 3
        assert s["metrics"]["nDCG@10"] == pytest.approx(mean) and s["latency_ms"] > 0
    assert set(saved["comparisons"]["hybrid"]) == {"dense", "bm25"}
    assert set(saved["comparisons"]["hybrid+thinking"]) == {"dense", "bm25", "hybrid"}
    assert set(saved["comparisons"]["bm25+thinking"]) == {"dense", "bm25"}
    assert "| hybrid+thinking |" in result.stdout
