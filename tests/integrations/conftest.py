"""Fixtures of the LangChain / LlamaIndex adapter tests: real offline models, real embedded Chroma."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

QUESTION = "Which metal is liquid at room temperature?"


@pytest.fixture(autouse=True)
def _o1_home(model_home: Path) -> Path:
    """Every adapter test writes its Chroma folders and thought cache under a temporary home."""
    return model_home


@pytest.fixture(scope="session")
def fast_embedder(thinker, encoder, tmp_path_factory):
    """The offline models with one short thought per query (tests not about the count)."""
    from o1_retriever import SamplingConfig, ThinkingEmbedder

    cache = tmp_path_factory.mktemp("cache") / "thoughts.sqlite"
    return ThinkingEmbedder(thinker, encoder, thoughts=1, sampling=SamplingConfig(max_new_tokens=16), cache=cache)


@pytest.fixture(scope="session")
def sample_index(fast_embedder, sample_corpus, tmp_path_factory):
    """The bundled sample corpus in a collection built by o1-retriever's ChromaIndex."""
    from o1_retriever.index import ChromaIndex, read_source

    index = ChromaIndex("o1-samples", fast_embedder, path=tmp_path_factory.mktemp("chroma"))
    index.add(read_source(sample_corpus), show_progress=False)
    return index


def readme_example(title: str) -> str:
    """The python block of the README's integrations section whose code contains ``title``:
    the README examples are what these tests run."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("<!-- integrations: begin -->", 1)[1].split("<!-- integrations: end -->", 1)[0]
    blocks = [b for b in re.findall(r"```python\n(.*?)```", section, re.S) if title in b]
    assert len(blocks) == 1, f"README integrations section must hold one example with {title!r}"
    return blocks[0]
