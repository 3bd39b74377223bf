"""o1-retriever embedding for LlamaIndex: query embeddings that think first."""

__version__ = "0.2.0"  # the one place this distribution's version is written (pyproject reads it)

from llama_index.embeddings.o1.base import O1Embedding

__all__ = ["O1Embedding"]
