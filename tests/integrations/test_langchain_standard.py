"""LangChain's own standard test suites (langchain-tests) on the real offline models."""

from __future__ import annotations

import pytest
from langchain_tests.integration_tests import EmbeddingsIntegrationTests, RetrieversIntegrationTests
from langchain_tests.unit_tests import EmbeddingsUnitTests

from langchain_o1 import O1Embeddings, O1Retriever

pytestmark = pytest.mark.slow

# short thoughts keep the suites fast; the models load once per process
PARAMS = {"thoughts": 1, "max_new_tokens": 16}


class TestO1EmbeddingsUnit(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[O1Embeddings]:
        return O1Embeddings

    @property
    def embedding_model_params(self) -> dict:
        return PARAMS


class TestO1EmbeddingsIntegration(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[O1Embeddings]:
        return O1Embeddings

    @property
    def embedding_model_params(self) -> dict:
        return PARAMS


class TestO1RetrieverIntegration(RetrieversIntegrationTests):
    @pytest.fixture(autouse=True)
    def _index(self, sample_index) -> None:
        self._sample_index = sample_index

    @property
    def retriever_constructor(self) -> type[O1Retriever]:
        return O1Retriever

    @property
    def retriever_constructor_params(self) -> dict:
        return {"index": self._sample_index, "k": 2}

    @property
    def retriever_query_example(self) -> str:
        return "Which metal is liquid at room temperature?"


# -- the same suites on a framework-object configuration (issue 17): SmolLM2 on a real llama.cpp
# server through ChatOpenAI thinks, MiniLM through HuggingFaceEmbeddings embeds
def _framework_params(llama_server: str, minilm_path: str) -> dict:
    pytest.importorskip("langchain_openai")
    pytest.importorskip("langchain_huggingface")
    from langchain_huggingface import HuggingFaceEmbeddings
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(base_url=llama_server, api_key="none", model="smollm2", temperature=0.7, max_tokens=16, extra_body={"max_tokens": 16}, max_retries=0)
    return {"llm": llm, "base_embeddings": HuggingFaceEmbeddings(model_name=minilm_path), "thoughts": 1}


class TestO1EmbeddingsFrameworkModelsIntegration(EmbeddingsIntegrationTests):
    @pytest.fixture(autouse=True)
    def _models(self, llama_server, minilm_path) -> None:
        self._params = _framework_params(llama_server, minilm_path)

    @property
    def embeddings_class(self) -> type[O1Embeddings]:
        return O1Embeddings

    @property
    def embedding_model_params(self) -> dict:
        return self._params


class TestO1RetrieverFrameworkModelsIntegration(RetrieversIntegrationTests):
    @pytest.fixture(autouse=True)
    def _index(self, llama_server, minilm_path, sample_corpus, tmp_path_factory) -> None:
        from o1_retriever.index import ChromaIndex, read_source

        if not hasattr(type(self), "_built"):  # one collection for the suite's tests
            embedder = O1Embeddings(**_framework_params(llama_server, minilm_path), cache="none").thinking_embedder
            index = ChromaIndex("o1-samples-byo", embedder, path=tmp_path_factory.mktemp("chroma-byo"))
            index.add(read_source(sample_corpus), show_progress=False)
            type(self)._built = index
        self._sample_index = type(self)._built

    @property
    def retriever_constructor(self) -> type[O1Retriever]:
        return O1Retriever

    @property
    def retriever_constructor_params(self) -> dict:
        return {"index": self._sample_index, "k": 2}

    @property
    def retriever_query_example(self) -> str:
        return "Which metal is liquid at room temperature?"
