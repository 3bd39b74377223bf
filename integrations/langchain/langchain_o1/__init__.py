"""LangChain integration of o1-retriever (thinking before retrieval, O1 Embedder).

* :class:`O1Embeddings` - ``Embeddings`` whose ``embed_query`` thinks and ``embed_documents``
  does not; usable as the ``embedding_function`` of ``langchain_chroma.Chroma``.
* :class:`O1Retriever` - a ``BaseRetriever`` over a Chroma collection, thoughts and score in
  each ``Document``'s metadata.
"""

__version__ = "0.2.0"  # the one place this distribution's version is written (pyproject reads it)

from langchain_o1.embeddings import O1Embeddings
from langchain_o1.retrievers import O1Retriever

__all__ = ["O1Embeddings", "O1Retriever"]
