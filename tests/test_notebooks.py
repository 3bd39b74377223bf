"""The notebooks run top to bottom (nbclient, the current interpreter's kernel) on a small slice
of ../shared/data/hotpotqa, so they never rot; they are committed without outputs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import ROOT, shared_dataset

NOTEBOOKS = ROOT / "notebooks"


def _run(name: str, tmp_path: Path, **params: str) -> object:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    env = {
        "O1_NB_DATA": str(shared_dataset("hotpotqa")),
        "O1_NB_WORK": str(tmp_path),
        "O1_NB_QUESTIONS": "3",
        "O1_NB_DISTRACTORS": "20",
        "O1_NB_THOUGHTS": "1",
        "O1_NB_TOKENS": "16",
        **params,
    }
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return nb


def _text(nb) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            parts.extend(str(v) for k, v in out.get("data", {}).items() if k.startswith("text/"))
    return "\n".join(parts)


@pytest.mark.parametrize("name", ["build_index", "rag_compare"])
def test_notebooks_are_committed_without_outputs(name):
    import nbformat

    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbformat.validate(nb)
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code")


@pytest.mark.slow
def test_build_index_notebook_runs(tmp_path, model_home):
    nb = _run("build_index", tmp_path)
    text = _text(nb)
    assert "second pass: 0 written" in text
    assert "thought 1:" in text and "with thinking:" in text and "without:" in text
    assert "nDCG@10" in text  # the closing table
    assert (tmp_path / "chroma").is_dir()


@pytest.mark.slow
def test_rag_compare_notebook_runs(tmp_path, model_home):
    nb = _run("rag_compare", tmp_path, O1_NB_ANSWER_TOKENS="8", O1_NB_K="2")
    text = _text(nb)
    assert "| metric | thinking | no thinking |" in text and "id_based_context_recall" in text
    assert "Thinking changed the answer to" in text
    assert any("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
    assert len((tmp_path / "rag" / "answers.jsonl").read_text().splitlines()) == 6
