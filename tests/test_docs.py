"""The documentation: the site builds with ``mkdocs build --strict`` (and that build does fail on a
broken link or a vanished API object), and every code block that README.md or a page of docs/
presents as runnable is run here, on the real offline models and real Chroma.

Which blocks run: every fenced ``python`` or shell (``bash``, ``sh``, ``shell``, ``console``) block.
A block that cannot run here (it installs packages, needs a GPU or a server, or takes hours) is
marked right above its fence with ``<!-- docs-test: skip (why) -->``; a block that needs the
evaluation data says ``<!-- docs-test: needs ../shared/data/NAME -->`` and runs with that path
resolving (skipped on a user's clone, required under CI=true). Each block runs on its own, in
an empty working folder with a fresh ``O1_RETRIEVER_HOME``; some are checked further below
(``CHECKS``), the others must run without an error.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest

from tests.conftest import ROOT, shared_dataset

DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(p for p in DOCS.rglob("*.md") if "_hooks" not in p.parts)]
RUNNABLE = {"python", "bash", "sh", "shell", "console"}
MARKER = re.compile(r"^<!--\s*docs-test:\s*(?P<kind>skip|needs)\b\s*(?P<arg>.*?)\s*-->\s*$", re.S)
BIN = Path(sys.executable).parent
QUESTION = "Which metal is liquid at room temperature?"


@dataclass(frozen=True)
class Block:
    page: str  # path relative to the repository root
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    skip: str | None = None  # the reason, for a block marked skip
    needs: str | None = None  # "../shared/data/NAME" for a block that reads the evaluation data

    @property
    def runnable(self) -> bool:
        return self.lang in RUNNABLE and self.skip is None

    def __str__(self) -> str:
        return f"{self.page}:{self.line}"


def code_blocks(path: Path, root: Path = ROOT) -> list[Block]:
    """The fenced code blocks of a Markdown file, each with the docs-test marker right above it."""
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").parse(path.read_text(encoding="utf-8"))
    page = str(path.relative_to(root))
    blocks = []
    for i, token in enumerate(tokens):
        if token.type == "html_block" and "docs-test" in token.content:
            following = tokens[i + 1] if i + 1 < len(tokens) else None
            if not MARKER.match(token.content.strip()) or following is None or following.type != "fence":
                raise AssertionError(f"{page}:{token.map[0] + 1}: a docs-test marker must be one comment right above a code fence")
        if token.type != "fence":
            continue
        marker = None
        if i and tokens[i - 1].type == "html_block":
            marker = MARKER.match(tokens[i - 1].content.strip())
        skip = needs = None
        if marker and marker["kind"] == "skip":
            skip = marker["arg"].strip()
        elif marker:
            needs = marker["arg"].strip()
        blocks.append(Block(page, token.map[0] + 1, token.info.strip().split(" ")[0], token.content, skip, needs))
    return blocks


ALL_BLOCKS = [b for page in PAGES for b in code_blocks(page)]
RUN_BLOCKS = [b for b in ALL_BLOCKS if b.runnable]


# -- the inventory -------------------------------------------------------------------------------


def test_pages_have_code_and_every_block_says_what_it_is():
    assert len(PAGES) > 10 and len(RUN_BLOCKS) >= 10
    for block in ALL_BLOCKS:
        assert block.lang, f"{block}: give the code block a language (python, bash, text, ...)"
        if block.skip is not None:
            assert block.lang in RUNNABLE, f"{block}: only python and shell blocks are run; no skip marker needed"
            assert re.fullmatch(r"\(.{10,}\)", block.skip, re.S), f"{block}: a skip marker says why, in parentheses"
        if block.needs is not None:
            assert re.fullmatch(r"\.\./shared/data/[\w-]+", block.needs), f"{block}: needs ../shared/data/NAME"


def test_markers_are_parsed(tmp_path):
    """The parser sees a skip, a needs and an unmarked block, and rejects a stray marker."""
    page = tmp_path / "page.md"
    page.write_text(
        "<!-- docs-test: skip (needs a GPU server) -->\n```bash\nnvidia-smi\n```\n\n"
        "<!-- docs-test: needs ../shared/data/scifact -->\n```python\nprint(1)\n```\n\n"
        "```python\nprint(2)\n```\n\n```text\ndiagram\n```\n"
    )
    blocks = code_blocks(page, root=tmp_path)
    assert [(b.lang, b.skip, b.needs, b.runnable) for b in blocks] == [
        ("bash", "(needs a GPU server)", None, False),
        ("python", None, "../shared/data/scifact", True),
        ("python", None, None, True),
        ("text", None, None, False),
    ]
    page.write_text("<!-- docs-test: skip (stray) -->\n\nSome text.\n")
    with pytest.raises(AssertionError, match="right above a code fence"):
        code_blocks(page, root=tmp_path)


def test_readme_is_short_and_keeps_the_two_commands_and_its_links_resolve():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 200
    assert "make demo" in text and "make test" in text
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if "://" not in target:
            assert (ROOT / target).exists(), f"README.md links to a missing file: {target}"


# -- the site ------------------------------------------------------------------------------------


def _mkdocs(root: Path, site: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [str(BIN / "mkdocs"), "build", "--strict", "--site-dir", str(site)],
        cwd=root, env=env, capture_output=True, text=True, timeout=600,
    )


def test_site_builds_strict_with_generated_cli_reference_api_and_notebooks(tmp_path):
    site = tmp_path / "site"
    done = _mkdocs(ROOT, site)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    # the command-line reference is generated at build time: every registered command is there
    import typer.main

    from o1_retriever.cli import app

    cli = (site / "cli" / "index.html").read_text(encoding="utf-8")
    group = typer.main.get_command(app)
    names = group.list_commands(None)
    assert len(names) >= 7
    for name in names:
        assert f"o1-retriever {name}</code>" in cli, f"command {name!r} missing from the CLI reference"
    assert "--thinker-dtype" in cli and "--collection" in cli
    # API pages rendered from the docstrings
    for page, anchor in [
        ("api/core", "o1_retriever.ThinkingEmbedder"),
        ("api/core", "o1_retriever.EmbedderConfig"),
        ("api/index-and-sources", "o1_retriever.index.ChromaIndex"),
        ("api/adapters", "langchain_o1.O1Retriever"),
        ("api/adapters", "llama_index.retrievers.o1.O1QueryTransform"),
    ]:
        assert f'id="{anchor}"' in (site / page / "index.html").read_text(encoding="utf-8"), (page, anchor)
    # the notebooks are rendered with their committed outputs (a table, the RAGAS plot)
    build_index = (site / "notebooks" / "build_index" / "index.html").read_text(encoding="utf-8")
    rag = (site / "notebooks" / "rag_compare" / "index.html").read_text(encoding="utf-8")
    assert "nDCG@10" in build_index and "thought 1:" in build_index
    assert "data:image/png;base64," in rag and "id_based_context_recall" in rag
    assert (site / "changelog" / "index.html").read_text(encoding="utf-8").count("0.2.0") >= 1


@pytest.mark.slow  # four more full site builds (~10 s each): the checker checked, not the docs (make test runs them)
@pytest.mark.parametrize("breakage", ["broken link", "missing anchor", "vanished API object", "missing page"])
def test_the_strict_build_fails_on(breakage, tmp_path):
    """A copy of the site with one defect must not build."""
    root = tmp_path / "copy"
    root.mkdir()
    shutil.copy(ROOT / "mkdocs.yml", root / "mkdocs.yml")
    shutil.copytree(DOCS, root / "docs", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("o1_retriever", "integrations", "notebooks", "CHANGELOG.md"):
        (root / name).symlink_to(ROOT / name)
    if breakage == "missing page":  # the nav (and other pages) still name it
        (root / "docs" / "faq.md").unlink()
        done = _mkdocs(root, tmp_path / "site")
        assert done.returncode != 0 and "faq.md" in done.stdout + done.stderr
        return
    page = root / "docs" / "faq.md"
    defect, expected = {
        "broken link": ("[gone](no-such-page.md)", "no-such-page.md"),
        "missing anchor": ("[gone](concepts.md#no-such-heading)", "no-such-heading"),
        "vanished API object": ("::: o1_retriever.NoSuchThing", "o1_retriever.NoSuchThing"),
    }[breakage]
    page.write_text(page.read_text(encoding="utf-8") + f"\n\n{defect}\n", encoding="utf-8")
    done = _mkdocs(root, tmp_path / "site")
    assert done.returncode != 0 and expected in done.stdout + done.stderr


# -- the runnable blocks -------------------------------------------------------------------------


def _check_getting_started_cli(out: str, ns: Any) -> None:
    assert "mercury.md" in out
    found = json.loads(out.strip().splitlines()[-1])  # --json: one object on standard output
    assert found["query"] == QUESTION and found["thoughts"] == []
    assert found["results"][0]["id"].startswith("mercury.md")


def _check_getting_started_python(out: str, ns: Any) -> None:
    assert len(ns["result"].thoughts) == 1  # the default number of thoughts
    assert ns["result"].hits[0].id.startswith("mercury.md")
    assert ns["baseline"].hits[0].id.startswith("mercury.md") and ns["baseline"].thoughts == []


def _check_concepts(out: str, ns: Any) -> None:
    assert len(ns["q"].thoughts) == 1 and ns["q"].vector.shape == (384,)
    assert ns["q"].thinking and not (ns["q"].vector == ns["plain"]).all()


def _check_readme_python(out: str, ns: Any) -> None:
    assert ns["result"].hits[0].id == "mercury" and ns["result"].thoughts


def _check_mercury_document(out: str, ns: Any) -> None:
    doc = ns["doc"]
    assert doc.page_content.startswith("Mercury") and doc.metadata["thoughts"] and doc.metadata["thinking"]


def _check_mercury_node(out: str, ns: Any) -> None:
    assert ns["hit"].node.get_content().startswith("Mercury")


def _check_llama_quickstart(out: str, ns: Any) -> None:
    _check_mercury_node(out, ns)
    assert len(ns["hit"].node.metadata["thoughts"]) == 2


def _check_query_transform(out: str, ns: Any) -> None:
    _check_mercury_node(out, ns)
    assert len(ns["transform"].last_thoughts) == 2


def _check_langchain_rag_chain(out: str, ns: Any) -> None:
    answer = ns["answer"]
    assert isinstance(answer, str) and answer.strip()
    # the chain's first step retrieved with thinking: its context is the mercury document
    docs = ns["retriever"].invoke(QUESTION)
    assert docs[0].metadata["source"] == "mercury.md" and len(docs[0].metadata["thoughts"]) == 2
    prompt = (ns["chain"].first | ns["prompt"]).invoke(QUESTION).to_string()
    assert docs[0].page_content in prompt and QUESTION in prompt


def _check_llama_query_engine(out: str, ns: Any) -> None:
    from llama_index.core.schema import MetadataMode

    response = ns["response"]
    assert isinstance(response.response, str) and response.response.strip()
    sources = response.source_nodes
    assert len(sources) == 2 and sources[0].node.metadata["file_name"] == "waggle_dance.md"
    assert len(sources[0].node.metadata["thoughts"]) == 2
    # the thoughts ride along in the metadata but stay out of what the LLM reads
    assert "thoughts" not in sources[0].node.get_content(metadata_mode=MetadataMode.LLM)
    assert "waggle" in sources[0].node.get_content(metadata_mode=MetadataMode.LLM).lower()


def _check_evaluation(out: str, ns: Any) -> None:
    assert [s.name for s in ns["results"].systems] == ["bm25", "dense", "thinking[o1+query]"]
    assert all(0 <= s.metrics["nDCG@10"] <= 1 for s in ns["results"].systems)
    assert set(ns["rag"].means) == {"thinking", "no thinking"} and ns["rag"].questions == 3


#: extra checks, each for the one block whose code contains the key
CHECKS: dict[str, Callable[[str, Any], None]] = {
    "--k 1 --no-think --json": _check_getting_started_cli,
    "index.add(read_source(notes))": _check_getting_started_python,
    "embedder.embed_query(query, return_thoughts=True)": _check_concepts,
    'ChromaIndex("readme-notes"': _check_readme_python,
    'Chroma("readme-langchain"': _check_mercury_document,
    'Chroma("langchain-quickstart"': _check_mercury_document,
    "RunnableLambda(smollm2)": _check_langchain_rag_chain,
    '"llama-quickstart"': _check_llama_quickstart,
    "O1QueryTransform(O1Embedding(": _check_query_transform,
    "RetrieverQueryEngine.from_args": _check_llama_query_engine,
    'O1Embedding(thoughts=2, max_new_tokens=32)   # query embeddings think': _check_mercury_node,
    "evaluate_rag(data": _check_evaluation,
}


def test_every_check_applies_to_exactly_one_runnable_block():
    for key in CHECKS:
        matching = [str(b) for b in RUN_BLOCKS if key in b.code]
        assert len(matching) == 1, f"check {key!r} matches {matching or 'no runnable block'}"


@pytest.fixture()
def block_env(tmp_path, model_home, monkeypatch):
    """An empty working folder and a fresh O1_RETRIEVER_HOME that reuses the converted models."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "models").symlink_to((model_home / "models").resolve(), target_is_directory=True)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.setenv("O1_RETRIEVER_HOME", str(home))
    monkeypatch.chdir(work)
    return work


@pytest.mark.slow
@pytest.mark.parametrize("block", RUN_BLOCKS, ids=str)
def test_runnable_block(block: Block, block_env: Path, capsys):
    if block.needs:
        data = shared_dataset(Path(block.needs).name)
        (block_env.parent / "shared").mkdir()
        (block_env.parent / "shared" / "data").symlink_to(data.parent, target_is_directory=True)
    ns: dict[str, Any] = {"__name__": "__docs_example__"}
    if block.lang == "python":
        exec(compile(block.code, str(block), "exec"), ns)
        out = capsys.readouterr().out
    else:
        env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "HF_HUB_OFFLINE": "1"}
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", block.code], cwd=block_env, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"{block} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
        out = done.stdout
    for key, check in CHECKS.items():
        if key in block.code:
            check(out, ns)
