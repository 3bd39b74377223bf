"""The o1-retriever command line, run as a real subprocess (models, Chroma and all)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def run(*args: str, home, stdin=subprocess.DEVNULL) -> subprocess.CompletedProcess:
    env = {**os.environ, "O1_RETRIEVER_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "o1_retriever.cli", *args], capture_output=True, text=True, env=env, timeout=600, stdin=stdin)


def oneline(text: str) -> str:
    return " ".join(text.split())  # rich wraps long lines on stderr


def test_index_then_search_json_contract(model_home, tmp_path, sample_corpus):
    db = str(tmp_path / "db")
    done = run("index", str(sample_corpus), "--collection", "sample", "--db", db, home=model_home)
    assert done.returncode == 0, done.stderr
    assert "indexed" in done.stderr and "written" in done.stderr

    common = ["--collection", "sample", "--db", db, "--k", "3", "--json", "--max-new-tokens", "16"]
    think = run("search", "Which metal is liquid at room temperature?", "--thoughts", "2", *common, home=model_home)
    assert think.returncode == 0, think.stderr
    payload = json.loads(think.stdout)  # exactly one JSON object on stdout
    assert set(payload) == {"query", "mode", "thinking", "thoughts", "results"}
    assert payload["thinking"] is True
    assert payload["query"] == "Which metal is liquid at room temperature?"
    assert len(payload["thoughts"]) == 2 and all(isinstance(t, str) for t in payload["thoughts"])
    assert len(payload["results"]) == 3
    assert all(set(r) == ({"id", "score", "text"} | ({"ranks"} if payload["mode"] != "dense" else set())) for r in payload["results"])
    # hybrid (the default) puts mercury and gallium, which shares more of the words, in its top 2 (docs/hybrid.md)
    assert "mercury.md#0" in [r["id"] for r in payload["results"][:2]]

    plain = run("search", "Which metal is liquid at room temperature?", "--no-think", *common, home=model_home)
    assert plain.returncode == 0, plain.stderr
    assert json.loads(plain.stdout)["thoughts"] == [] and json.loads(plain.stdout)["thinking"] is False

    again = run("index", str(sample_corpus), "--collection", "sample", "--db", db, home=model_home)
    assert "0 written" in again.stderr


def test_errors_are_one_line_not_a_traceback(model_home, tmp_path, sample_corpus):
    missing = run("index", str(tmp_path / "nope"), "--db", str(tmp_path), home=model_home)
    assert missing.returncode == 2
    assert "no such file" in missing.stderr and "Traceback" not in missing.stderr
    empty = run("search", "   ", "--db", str(tmp_path), "--no-think", home=model_home)
    assert empty.returncode == 2 and "empty" in empty.stderr and "Traceback" not in empty.stderr
    bad = run("index", str(sample_corpus), "--collection", "x", "--db", str(tmp_path / "db"), "--thinker", "none", home=model_home)
    assert bad.returncode == 2 and "3-512" in bad.stderr


# -- issue 13: sync, reads that never create, `collections` ---------------------------------------
TOPICS = ["tides and the moon", "volcanoes and lava", "coffee roasting", "chess openings", "the blue sky", "mercury the metal",
          "glaciers carving valleys", "photosynthesis", "vaccines", "the great wall", "black holes", "river deltas"]


def test_reindexing_an_edited_folder_leaves_no_stale_chunks(model_home, tmp_path):
    """Reproduction 1: a.md (12 paragraphs) and b.md indexed; b.md deleted, a.md shrunk to one
    line; the same `index` again. --no-sync keeps the ghosts (the old behaviour), sync removes them."""
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.md").write_text("\n\n".join(f"This paragraph is about {t}. " + " ".join(f"More on {t}, sentence {i}." for i in range(18)) for t in TOPICS))
    (notes / "b.md").write_text("Honey bees dance to tell each other where flowers are.")
    common = ["--collection", "notes", "--db", str(tmp_path / "db"), "--thinker", "none"]
    first = run("index", str(notes), *common, home=model_home)
    assert first.returncode == 0, first.stderr
    assert "13 written, 0 unchanged, 0 removed" in oneline(first.stderr) and "collection holds 13" in oneline(first.stderr)

    (notes / "a.md").write_text("One line about tides.")
    (notes / "b.md").unlink()
    additive = run("index", str(notes), *common, "--no-sync", home=model_home)
    assert "1 written, 0 unchanged, none removed (--no-sync)" in oneline(additive.stderr)
    assert "collection holds 13" in oneline(additive.stderr)

    synced = run("index", str(notes), *common, home=model_home)
    assert synced.returncode == 0, synced.stderr
    assert "0 written, 1 unchanged, 12 removed" in oneline(synced.stderr) and "collection holds 1" in oneline(synced.stderr)
    found = run("search", "honey bees dance", *common, "--no-think", "--json", home=model_home)
    assert found.returncode == 0, found.stderr
    assert [r["id"] for r in json.loads(found.stdout)["results"]] == ["a.md#0"]

    # the last file goes too: the sync empties what this folder indexed (an empty folder that
    # indexed nothing before is still an error)
    (notes / "a.md").unlink()
    emptied = run("index", str(notes), *common, home=model_home)
    assert emptied.returncode == 0, emptied.stderr
    assert "0 written, 0 unchanged, 1 removed" in oneline(emptied.stderr) and "collection holds 0" in oneline(emptied.stderr)
    again = run("index", str(notes), *common, home=model_home)
    assert again.returncode == 2 and "no documents found" in again.stderr


def test_searching_a_missing_collection_is_an_error_and_creates_nothing(model_home, tmp_path, sample_corpus):
    """Reproduction 2: a typo in --collection."""
    db = str(tmp_path / "db")
    assert run("index", str(sample_corpus), "--collection", "notes", "--db", db, "--thinker", "none", home=model_home).returncode == 0
    typo = run("search", "glaciers", "--collection", "nosuchcoll", "--db", db, "--no-think", "--json", home=model_home)
    assert typo.returncode == 2 and typo.stdout == ""
    assert "no collection 'nosuchcoll'" in oneline(typo.stderr) and "(it holds: notes)" in oneline(typo.stderr)
    assert "Traceback" not in typo.stderr and "loading models" not in typo.stderr  # fails before loading any model
    close = run("search", "glaciers", "--collection", "note", "--db", db, "--no-think", home=model_home)
    assert close.returncode == 2 and "did you mean 'notes'?" in oneline(close.stderr)
    listed = run("collections", "--db", db, "--json", home=model_home)
    assert listed.returncode == 0, listed.stderr
    assert [c["name"] for c in json.loads(listed.stdout)] == ["notes"]

    nowhere = tmp_path / "nowhere"
    missing_db = run("search", "glaciers", "--db", str(nowhere), "--no-think", home=model_home)
    assert missing_db.returncode == 2 and "no Chroma database at" in oneline(missing_db.stderr)
    assert not nowhere.exists()


def test_collections_lists_shows_and_deletes(model_home, tmp_path, sample_corpus):
    db = str(tmp_path / "db")
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "tides.md").write_text("The moon pulls the oceans: tides.")
    for source, collection in ((sample_corpus, "sample"), (notes, "mixed"), (sample_corpus, "mixed")):
        done = run("index", str(source), "--collection", collection, "--db", db, "--thinker", "none", "--id-prefix", f"{source.name}/", home=model_home)
        assert done.returncode == 0, done.stderr
    listed = run("collections", "--db", db, "--json", home=model_home)
    assert listed.returncode == 0, listed.stderr
    rows = {c["name"]: c for c in json.loads(listed.stdout)}
    n = rows["sample"]["count"]
    assert set(rows) == {"mixed", "sample"} and n > 10
    assert (rows["sample"]["sources"], rows["mixed"]["sources"], rows["mixed"]["count"]) == (1, 2, n + 1)
    assert rows["sample"]["fingerprint"]["encoder"] == "sentence-transformers:all-MiniLM-L6-v2"
    table = run("collections", "--db", db, home=model_home)
    assert "all-MiniLM-L6-v2 (384-d)" in table.stdout and "2 collections" in table.stdout

    info = run("collections", "info", "mixed", "--db", db, "--json", home=model_home)
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["sources"] == {str(notes.resolve()): 1, str(sample_corpus.resolve()): n}

    refused = run("collections", "delete", "sample", "--db", db, home=model_home)  # stdin is not a terminal
    assert refused.returncode == 2 and "pass --yes" in oneline(refused.stderr)
    misplaced = run("collections", "--db", db, "delete", "sample", "--yes", home=model_home)
    assert misplaced.returncode == 2 and "put the options after the sub-command" in oneline(misplaced.stderr)
    deleted = run("collections", "delete", "sample", "--db", db, "--yes", home=model_home)
    assert deleted.returncode == 0, deleted.stderr
    assert f"deleted 'sample' ({n} chunks)" in oneline(deleted.stderr)
    assert [c["name"] for c in json.loads(run("collections", "--db", db, "--json", home=model_home).stdout)] == ["mixed"]
    again = run("collections", "delete", "sample", "--db", db, "--yes", home=model_home)
    assert again.returncode == 2 and "no collection 'sample'" in oneline(again.stderr)


def test_collections_delete_asks_on_a_terminal(model_home, tmp_path, sample_corpus):
    import pty

    db = str(tmp_path / "db")
    assert run("index", str(sample_corpus), "--collection", "sample", "--db", db, "--thinker", "none", home=model_home).returncode == 0
    for answer, kept in (("n", True), ("y", False)):
        primary, terminal = pty.openpty()
        os.write(primary, f"{answer}\n".encode())
        asked = run("collections", "delete", "sample", "--db", db, home=model_home, stdin=terminal)
        os.close(terminal)
        os.close(primary)
        assert "delete collection 'sample' and its" in asked.stdout
        names = [c["name"] for c in json.loads(run("collections", "--db", db, "--json", home=model_home).stdout)]
        assert names == (["sample"] if kept else []), (answer, asked.stdout, asked.stderr)
