"""The o1-retriever command line, run as a real subprocess (models, Chroma and all)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def run(*args: str, home) -> subprocess.CompletedProcess:
    env = {**os.environ, "O1_RETRIEVER_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "o1_retriever.cli", *args], capture_output=True, text=True, env=env, timeout=600)


def test_index_then_search_json_contract(model_home, tmp_path, sample_corpus):
    db = str(tmp_path / "db")
    done = run("index", str(sample_corpus), "--collection", "sample", "--db", db, home=model_home)
    assert done.returncode == 0, done.stderr
    assert "indexed" in done.stderr and "written" in done.stderr

    common = ["--collection", "sample", "--db", db, "--k", "3", "--json", "--max-new-tokens", "16"]
    think = run("search", "Which metal is liquid at room temperature?", "--thoughts", "2", *common, home=model_home)
    assert think.returncode == 0, think.stderr
    payload = json.loads(think.stdout)  # exactly one JSON object on stdout
    assert set(payload) == {"query", "thoughts", "results"}
    assert payload["query"] == "Which metal is liquid at room temperature?"
    assert len(payload["thoughts"]) == 2 and all(isinstance(t, str) for t in payload["thoughts"])
    assert len(payload["results"]) == 3
    assert all(set(r) == {"id", "score", "text"} for r in payload["results"])
    assert payload["results"][0]["id"] == "mercury.md#0"

    plain = run("search", "Which metal is liquid at room temperature?", "--no-think", *common, home=model_home)
    assert plain.returncode == 0, plain.stderr
    assert json.loads(plain.stdout)["thoughts"] == []

    again = run("index", str(sample_corpus), "--collection", "sample", "--db", db, home=model_home)
    assert "0 written" in again.stderr


def test_errors_are_one_line_not_a_traceback(model_home, tmp_path):
    missing = run("index", str(tmp_path / "nope"), "--db", str(tmp_path), home=model_home)
    assert missing.returncode == 2
    assert "no such file" in missing.stderr and "Traceback" not in missing.stderr
    empty = run("search", "   ", "--db", str(tmp_path), "--no-think", home=model_home)
    assert empty.returncode == 2 and "empty" in empty.stderr and "Traceback" not in empty.stderr
    bad = run("search", "q", "--collection", "x", "--db", str(tmp_path), "--no-think", home=model_home)
    assert bad.returncode == 2 and "3-512" in bad.stderr
