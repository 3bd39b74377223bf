"""o1-retriever embedding for LlamaIndex: query embeddings that think first; your own LlamaIndex
LLM and embedding model behind the core's thinker and encoder protocols (``LlamaIndexThinker``,
``LlamaIndexEncoder``), and an LLM as RAG reader (``LlamaIndexReader``)."""

__version__ = "0.2.0"  # the one place this distribution's version is written (pyproject reads it)

from llama_index.embeddings.o1.base import O1Embedding
from llama_index.embeddings.o1.models import LlamaIndexEncoder, LlamaIndexReader, LlamaIndexThinker

__all__ = ["LlamaIndexEncoder", "LlamaIndexReader", "LlamaIndexThinker", "O1Embedding"]
