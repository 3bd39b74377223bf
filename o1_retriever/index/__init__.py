"""Chroma-backed index and document sources."""

from o1_retriever.index.chroma import (
    ChromaIndex,
    CollectionInfo,
    Hit,
    IndexStats,
    SearchResult,
    collection_info,
    collection_names,
    make_client,
    open_collection,
)
from o1_retriever.index.sources import Document, SourceReport, chunk_text, read_source, source_id

__all__ = [
    "ChromaIndex",
    "CollectionInfo",
    "Document",
    "Hit",
    "IndexStats",
    "SearchResult",
    "SourceReport",
    "chunk_text",
    "collection_info",
    "collection_names",
    "make_client",
    "open_collection",
    "read_source",
    "source_id",
]
