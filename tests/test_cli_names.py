"""Command names a newcomer guesses (issue 18): ``collections list`` is the bare ``collections``.
In process (typer's runner), on a real embedded Chroma database written here; no model loads."""

from __future__ import annotations

import json

from typer.testing import CliRunner

runner = CliRunner()


def test_collections_list_is_the_bare_collections(tmp_path, monkeypatch):
    import chromadb

    from o1_retriever.cli.main import app

    monkeypatch.setenv("O1_RETRIEVER_HOME", str(tmp_path / "home"))
    db = tmp_path / "chroma"
    client = chromadb.PersistentClient(path=str(db))
    for name in ("notes", "papers"):
        client.create_collection(name, embedding_function=None, metadata={"hnsw:space": "cosine"})
    del client

    bare = runner.invoke(app, ["collections", "--db", str(db), "--json"])
    listed = runner.invoke(app, ["collections", "list", "--db", str(db), "--json"])
    assert bare.exit_code == 0 and listed.exit_code == 0, (bare.output, listed.output)
    assert json.loads(listed.stdout) == json.loads(bare.stdout)
    assert sorted(c["name"] for c in json.loads(listed.stdout)) == ["notes", "papers"]
    table = runner.invoke(app, ["collections", "list", "--db", str(db)])
    assert table.exit_code == 0 and "2 collections" in table.stdout


def test_collections_list_reads_nothing_into_being(tmp_path):
    from o1_retriever.cli.main import app

    missing = tmp_path / "nowhere"
    result = runner.invoke(app, ["collections", "list", "--db", str(missing)])
    assert result.exit_code == 2 and "error:" in result.output
    assert not missing.exists()  # reading never writes
