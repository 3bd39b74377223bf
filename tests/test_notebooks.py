"""The notebooks are committed executed (outputs of a real run on their default slice, whose
settings a markdown cell states), and they run top to bottom here (nbclient, the current
interpreter's kernel) on a small slice of ../shared/data/hotpotqa, so they never rot; that
run does not rewrite the committed files (`make notebooks` does)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.conftest import ROOT, shared_dataset

NOTEBOOKS = ROOT / "notebooks"


def _run(name: str, tmp_path: Path, **params: str) -> object:
    import nbformat
    from nbclient import NotebookClient

    committed = (NOTEBOOKS / f"{name}.ipynb").read_bytes()
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
    assert (NOTEBOOKS / f"{name}.ipynb").read_bytes() == committed, "the test run must not rewrite the committed notebook"
    return nb


def _text(nb) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            parts.extend(str(v) for k, v in out.get("data", {}).items() if k.startswith("text/"))
    return "\n".join(parts)


def _defaults(nb) -> dict[str, str]:
    """The notebook's parameters and their defaults, read from its code."""
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    return dict(re.findall(r'os\.environ\.get\("(O1_NB_\w+)", "([^"]*)"\)', code))


@pytest.mark.parametrize("name", ["build_index", "rag_compare"])
def test_notebooks_are_committed_executed_on_their_default_slice(name):
    import nbformat

    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    # executed top to bottom in one run, every cell with an output, none failed
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))
    assert all(c.outputs for c in code)
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    # the run's settings are stated, and they are the parameters' defaults
    settings = [c.source for c in nb.cells if c.cell_type == "markdown" and "run-settings" in c.metadata.get("tags", [])]
    assert len(settings) == 1
    defaults = _defaults(nb)
    assert {"O1_NB_DATA", "O1_NB_QUESTIONS", "O1_NB_DISTRACTORS", "O1_NB_THOUGHTS", "O1_NB_TOKENS"} <= set(defaults)
    for param, value in defaults.items():
        stated = f"`{value}`" if param == "O1_NB_DATA" else f"`{param}` = {value}"
        assert stated in settings[0], f"the settings cell must state {stated}"
    # ... and the outputs come from those defaults, not from the test suite's small slice
    first = "".join(o.get("text", "") for o in code[0].outputs)
    assert f"{defaults['O1_NB_QUESTIONS']} questions, {defaults['O1_NB_THOUGHTS']} thoughts of {defaults['O1_NB_TOKENS']} tokens" in first


def test_rag_compare_is_committed_with_its_table_and_plot():
    import nbformat

    nb = nbformat.read(NOTEBOOKS / "rag_compare.ipynb", as_version=4)
    text = _text(nb)
    assert "| metric | thinking | no thinking |" in text and "Thinking changed the answer to" in text
    assert any("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))


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
