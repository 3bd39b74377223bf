"""LangChain integration of o1-retriever (thinking before retrieval, O1 Embedder).

* :class:`O1Embeddings` - ``Embeddings`` whose ``embed_query`` thinks and ``embed_documents``
  does not; usable as the ``embedding_function`` of ``langchain_chroma.Chroma``.
* :class:`O1Retriever` - a ``BaseRetriever`` over a Chroma collection, thoughts and score in
  each ``Document``'s metadata.
* :class:`LangChainThinker`, :class:`LangChainEncoder`, :class:`LangChainReader` - your own
  LangChain chat model / LLM and ``Embeddings`` behind the core's thinker and encoder protocols
  (for ``ThinkingEmbedder``, ``ChromaIndex``, evaluation), and a chat model as RAG reader.
"""

__version__ = "0.2.0"  # the one place this distribution's version is written (pyproject reads it)

from langchain_o1.embeddings import O1Embeddings
from langchain_o1.models import LangChainEncoder, LangChainReader, LangChainThinker
from langchain_o1.retrievers import O1Retriever

__all__ = ["LangChainEncoder", "LangChainReader", "LangChainThinker", "O1Embeddings", "O1Retriever"]
