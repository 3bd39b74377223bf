"""o1-retriever for LlamaIndex: a Chroma retriever and a query transform that think first."""

__version__ = "0.2.0"  # the one place this distribution's version is written (pyproject reads it)

from llama_index.retrievers.o1.base import O1Retriever
from llama_index.retrievers.o1.transform import O1QueryTransform

__all__ = ["O1QueryTransform", "O1Retriever"]
