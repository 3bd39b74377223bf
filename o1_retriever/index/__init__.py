"""Chroma-backed index (dense, keyword and hybrid search) and document sources."""

from o1_retriever.index.chroma import ChromaIndex, CollectionInfo, IndexStats, collection_info
from o1_retriever.index.client import collection_names, make_client, open_collection
from o1_retriever.index.results import Hit, SearchResult
from o1_retriever.index.hybrid import MODES, Fusion, fuse
from o1_retriever.index.keyword import BM25
from o1_retriever.index.sources import Document, SourceReport, chunk_text, read_source, source_id

__all__ = [
    "BM25",
    "ChromaIndex",
    "CollectionInfo",
    "Document",
    "Fusion",
    "Hit",
    "IndexStats",
    "MODES",
    "SearchResult",
    "SourceReport",
    "chunk_text",
    "collection_info",
    "collection_names",
    "fuse",
    "make_client",
    "open_collection",
    "read_source",
    "source_id",
]
