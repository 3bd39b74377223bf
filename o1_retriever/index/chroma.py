"""ChromaIndex: a Chroma collection filled and searched by one ThinkingEmbedder.

* Embedded ``PersistentClient`` at ``$O1_RETRIEVER_HOME/chroma`` by default; ``HttpClient`` when
  a host is given (with Chroma token authentication when a token is given).
* Collections use cosine space and ``embedding_function=None`` (vectors always come from us;
  Chroma's default function would try to download a model).
* The collection records the fingerprint of the embedder that filled it; another embedder is
  refused with both fingerprints named. Thinker changes are allowed: they only touch queries.
* Indexing upserts by id in batches under Chroma's maximum and skips documents whose stored
  content hash matches, so a rerun (or a rerun after an interruption) leaves every document
  exactly once and only embeds what is missing or changed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from o1_retriever.embedder import ThinkingEmbedder
from o1_retriever.errors import CollectionError, EmbedderMismatchError, ServerError, check_query
from o1_retriever.index.sources import Document

log = logging.getLogger(__name__)

FINGERPRINT_KEY = "o1_fingerprint"
HASH_KEY = "o1_hash"
TOKEN_ENV = "CHROMA_AUTH_TOKEN"


@dataclass
class Hit:
    id: str
    score: float
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class SearchResult:
    query: str
    thoughts: list[str]
    hits: list[Hit]
    thinking: bool
    fallback: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract of ``o1-retriever search --json``."""
        out: dict[str, Any] = {
            "query": self.query,
            "thoughts": self.thoughts,
            "results": [{"id": h.id, "score": h.score, "text": h.text} for h in self.hits],
        }
        if self.fallback:
            out["fallback"] = True
        return out


@dataclass
class IndexStats:
    seen: int = 0
    written: int = 0
    unchanged: int = 0
    duplicates: list[str] = field(default_factory=list)


def content_hash(doc: Document) -> str:
    payload = json.dumps([doc.text, doc.metadata], sort_keys=True, ensure_ascii=False, default=str)
    # surrogatepass: a lone surrogate must reach embed_documents' clear error, not crash here
    return hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def make_client(path: str | Path | None = None, host: str | None = None, port: int = 8000, auth_token: str | None = None) -> Any:
    """A Chroma client: embedded at ``path`` (default ``$O1_RETRIEVER_HOME/chroma``), or HTTP to
    ``host:port``. The token comes from ``auth_token`` or ``$CHROMA_AUTH_TOKEN``."""
    import chromadb
    from chromadb.config import Settings

    if host:
        token = auth_token or os.environ.get(TOKEN_ENV)
        settings = Settings(anonymized_telemetry=False)
        if token:
            settings = Settings(
                anonymized_telemetry=False,
                chroma_client_auth_provider="chromadb.auth.token_authn.TokenAuthClientProvider",
                chroma_client_auth_credentials=token,
            )
        try:  # the client checks the server (and our credentials) while it is built
            return chromadb.HttpClient(host=host, port=port, settings=settings)
        except Exception as exc:
            raise _server_error(exc, host, port, token) from None
    from o1_retriever.models import home

    path = Path(path).expanduser() if path else home() / "chroma"
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=Settings(anonymized_telemetry=False))


def _server_error(exc: Exception, host: str, port: int, token: str | None) -> Exception:
    """A one-line error for a Chroma server that refused us or cannot be reached; the token
    itself never appears in it."""
    from chromadb.errors import ChromaAuthError

    if isinstance(exc, ChromaAuthError):
        given = "the token was refused" if token else f"no token was given (--token or ${TOKEN_ENV})"
        return ServerError(f"Chroma server {host}:{port} refused the request ({exc}): {given}")
    if isinstance(exc, (ValueError, ConnectionError, OSError)) or "connect" in str(exc).lower():
        return ServerError(f"cannot reach a Chroma server at {host}:{port}: {exc}")
    return exc


class ChromaIndex:
    """Index and search one Chroma collection with a :class:`ThinkingEmbedder`.

    Example::

        from o1_retriever import ThinkingEmbedder
        from o1_retriever.index import ChromaIndex, read_source

        index = ChromaIndex("my-docs", ThinkingEmbedder.from_config())
        index.add(read_source("docs/"))
        result = index.search("how do I rotate the keys?", k=5)
        print(result.thoughts, [(h.id, h.score) for h in result.hits])
    """

    def __init__(
        self,
        collection: str,
        embedder: ThinkingEmbedder,
        *,
        path: str | Path | None = None,
        host: str | None = None,
        port: int = 8000,
        auth_token: str | None = None,
        client: Any = None,
    ) -> None:
        import chromadb.errors

        self.embedder = embedder
        self.client = client if client is not None else make_client(path, host, port, auth_token)
        self.name = collection
        fingerprint = json.dumps(embedder.fingerprint(), sort_keys=True)
        try:
            self.collection = self.client.get_or_create_collection(
                collection,
                metadata={"hnsw:space": "cosine", FINGERPRINT_KEY: fingerprint},
                embedding_function=None,
            )
        except chromadb.errors.ChromaAuthError as exc:
            raise _server_error(exc, host or "?", port, auth_token or os.environ.get(TOKEN_ENV)) from None
        except (chromadb.errors.InvalidArgumentError, ValueError) as exc:
            raise CollectionError(
                f"Chroma rejected the collection name {collection!r}: names are 3-512 characters of "
                f"[a-zA-Z0-9._-], starting and ending with a letter or digit ({exc})"
            ) from None
        self._check_fingerprint(fingerprint)
        self.space = _space(self.collection)

    @classmethod
    def from_collection(cls, collection: Any, embedder: ThinkingEmbedder) -> "ChromaIndex":
        """Wrap a Chroma collection object that already exists, such as the one behind
        ``langchain_chroma.Chroma`` or LlamaIndex's ``ChromaVectorStore`` (same checks as
        the constructor: fingerprint if recorded, space read from the collection)."""
        self = cls.__new__(cls)
        self.embedder = embedder
        self.client = getattr(collection, "_client", None)
        self.name = collection.name
        self.collection = collection
        self._check_fingerprint(json.dumps(embedder.fingerprint(), sort_keys=True))
        self.space = _space(collection)
        return self

    def _check_fingerprint(self, ours: str) -> None:
        meta = self.collection.metadata or {}
        theirs = meta.get(FINGERPRINT_KEY)
        if theirs is None:
            # Made by someone else (langchain_chroma, by hand): adopt it if empty, otherwise
            # the dimension check on first use is all we can do.
            if self.collection.count() == 0:
                self.collection.modify(metadata={**{k: v for k, v in meta.items() if not k.startswith("hnsw:")}, FINGERPRINT_KEY: ours})
            return
        if theirs != ours:
            raise EmbedderMismatchError(
                f"collection {self.name!r} was filled by embedder {theirs}, "
                f"but this embedder is {ours}; use the same encoder or another collection"
            )

    # -- writing -----------------------------------------------------------------------------
    def add(self, documents: Iterable[Document], *, batch_size: int = 1024, show_progress: bool = True) -> IndexStats:
        """Upsert documents by id. Unchanged documents (same text and metadata as stored) are
        skipped; a repeated id within the input keeps its first occurrence and is reported."""
        from tqdm.auto import tqdm

        limit = self.client.get_max_batch_size() if self.client is not None else 5000
        batch_size = max(1, min(batch_size, limit))
        stats = IndexStats()
        seen: set[str] = set()
        bar = tqdm(desc=f"indexing {self.name}", unit="doc", disable=not show_progress)
        try:
            for batch in _batches(documents, batch_size):
                unique = []
                for doc in batch:
                    if doc.id in seen:
                        stats.duplicates.append(doc.id)
                        continue
                    seen.add(doc.id)
                    unique.append(doc)
                stats.seen += len(batch)
                self._write(unique, stats)
                bar.update(len(batch))
        finally:
            bar.close()
        if stats.duplicates:
            log.warning("%d repeated document ids kept their first occurrence: %s", len(stats.duplicates), stats.duplicates[:5])
        return stats

    def _write(self, docs: list[Document], stats: IndexStats) -> None:
        if not docs:
            return
        hashes = [content_hash(d) for d in docs]
        stored = self.collection.get(ids=[d.id for d in docs], include=["metadatas"])
        known = {i: (m or {}).get(HASH_KEY) for i, m in zip(stored["ids"], stored["metadatas"] or [])}
        todo = [(d, h) for d, h in zip(docs, hashes) if known.get(d.id) != h]
        stats.unchanged += len(docs) - len(todo)
        if not todo:
            return
        vectors = self.embedder.embed_documents([d.text for d, _ in todo], show_progress=False)
        self._call(
            self.collection.upsert,
            ids=[d.id for d, _ in todo],
            embeddings=vectors,
            documents=[d.text for d, _ in todo],
            metadatas=[{**_flat(d.metadata), HASH_KEY: h} for d, h in todo],
        )
        stats.written += len(todo)

    def _call(self, fn: Any, **kwargs: Any) -> Any:
        import chromadb.errors

        try:
            return fn(**kwargs)
        except chromadb.errors.InvalidArgumentError as exc:
            if "dimension" in str(exc):
                raise CollectionError(
                    f"collection {self.name!r} holds vectors of another dimension than this "
                    f"embedder's {self.embedder.dimension} ({exc}); it was filled by another model"
                ) from None
            raise CollectionError(f"Chroma refused the request on {self.name!r}: {exc}") from None

    # -- reading -----------------------------------------------------------------------------
    def count(self) -> int:
        return self.collection.count()

    def search(self, query: str, k: int = 10, *, thinking: bool | None = None, thoughts: int | None = None, where: dict | None = None) -> SearchResult:
        """Top-``k`` documents for one query, with the thoughts that steered it."""
        return self.search_many([query], k, thinking=thinking, thoughts=thoughts, where=where)[0]

    def search_many(self, queries: Sequence[str], k: int = 10, *, thinking: bool | None = None, thoughts: int | None = None, where: dict | None = None) -> list[SearchResult]:
        """Many queries at once: one batched generation, one encode call, one Chroma query."""
        if isinstance(queries, str):
            queries = [queries]
        queries = [check_query(q) for q in queries]
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        embedded = self.embedder.embed_queries(queries, thinking=thinking, thoughts=thoughts, return_thoughts=True)
        n = min(k, self.count())
        if n == 0:
            return [SearchResult(e.query, e.thoughts, [], e.thinking, e.fallback) for e in embedded]
        raw = self._call(
            self.collection.query,
            query_embeddings=[e.vector for e in embedded],
            n_results=n,
            where=where,
            include=["documents", "metadatas", "distances"],
        )
        results = []
        for row, e in enumerate(embedded):
            hits = [
                Hit(i, _similarity(d, self.space), t or "", {k_: v for k_, v in (m or {}).items() if k_ != HASH_KEY})
                for i, d, t, m in zip(raw["ids"][row], raw["distances"][row], raw["documents"][row], raw["metadatas"][row])
            ]
            results.append(SearchResult(e.query, e.thoughts, hits, e.thinking, e.fallback))
        return results


def _space(collection: Any) -> str:
    config = getattr(collection, "configuration", None) or {}
    hnsw = config.get("hnsw") if isinstance(config, dict) else None
    if hnsw and hnsw.get("space"):
        return str(hnsw["space"])
    return str((collection.metadata or {}).get("hnsw:space", "l2"))


def _similarity(distance: float, space: str) -> float:
    """Cosine similarity from Chroma's distance (our vectors are unit length, so squared L2
    is 2 - 2cos and inner-product distance is 1 - cos)."""
    if space == "l2":
        return float(1.0 - distance / 2.0)
    return float(1.0 - distance)


def _flat(metadata: dict[str, Any]) -> dict[str, Any]:
    """Chroma stores scalar metadata only; anything else is kept as JSON text."""
    out = {}
    for key, value in metadata.items():
        if isinstance(value, (str, int, float, bool)):
            out[key] = value
        elif value is not None:
            out[key] = json.dumps(value, ensure_ascii=False, default=str)
    return out


def _batches(items: Iterable[Document], size: int) -> Iterator[list[Document]]:
    batch: list[Document] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
