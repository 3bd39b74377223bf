"""o1-retriever embedding for LlamaIndex: query embeddings that think first."""

from llama_index.embeddings.o1.base import O1Embedding

__all__ = ["O1Embedding"]
