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
