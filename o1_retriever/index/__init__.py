"""Chroma-backed index and document sources."""

from o1_retriever.index.chroma import ChromaIndex, Hit, IndexStats, SearchResult, make_client
from o1_retriever.index.sources import Document, SourceReport, chunk_text, read_source

__all__ = ["ChromaIndex", "Document", "Hit", "IndexStats", "SearchResult", "SourceReport", "chunk_text", "make_client", "read_source"]
