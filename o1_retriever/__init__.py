"""o1-retriever: thinking before retrieval (O1 Embedder) for the RAG tools people already use.

The core imports no RAG framework; adapters for LangChain and LlamaIndex live in
``integrations/`` and depend on this package, never the reverse.
"""

from o1_retriever.aggregation import Aggregation
from o1_retriever.cache import ThoughtCache
from o1_retriever.config import EmbedderConfig
from o1_retriever.embedder import QueryEmbedding, ThinkingEmbedder
from o1_retriever.errors import (
    CacheError,
    CollectionError,
    EmbedderMismatchError,
    InvalidQueryError,
    ModelLoadError,
    O1RetrieverError,
    ServerError,
    SourceError,
    ThinkerError,
    ThinkerUnavailableError,
)
from o1_retriever.prompts import ThoughtPrompt
from o1_retriever.thinkers.base import SamplingConfig, Thinker
from o1_retriever.encoders.base import Encoder

__version__ = "0.2.0"  # the one place the version is written (pyproject.toml reads it)

__all__ = [
    "Aggregation",
    "CacheError",
    "ChromaIndex",
    "CollectionError",
    "EmbedderConfig",
    "EmbedderMismatchError",
    "Encoder",
    "InvalidQueryError",
    "ModelLoadError",
    "O1RetrieverError",
    "QueryEmbedding",
    "SamplingConfig",
    "ServerError",
    "SourceError",
    "ThinkerError",
    "ThinkerUnavailableError",
    "ThinkingEmbedder",
    "Thinker",
    "ThoughtCache",
    "ThoughtPrompt",
]


def __getattr__(name: str):  # chromadb is imported only by code that uses the index
    if name == "ChromaIndex":
        from o1_retriever.index.chroma import ChromaIndex

        return ChromaIndex
    raise AttributeError(name)
