"""ChromaIndex: a Chroma collection filled and searched by one ThinkingEmbedder.

* Clients (embedded ``PersistentClient`` at ``$O1_RETRIEVER_HOME/chroma`` by default, or
  ``HttpClient`` to a server), retries and the translation of Chroma's errors live in
  :mod:`o1_retriever.index.client`; their names stay importable from here.
* Collections use cosine space and ``embedding_function=None`` (vectors always come from us;
  Chroma's default function would try to download a model).
* The collection records the fingerprint of the embedder that filled it; another embedder is
  refused with both fingerprints named. Thinker changes are allowed: they only touch queries.
* Indexing upserts by id in batches under Chroma's maximum and skips documents whose stored
  content hash matches, so a rerun (or a rerun after an interruption) leaves every document
  exactly once and only embeds what is missing or changed.
* Each chunk records the source it came from (``o1_source``). Syncing a source writes its
  chunks first and only then removes the chunks of that source that it no longer holds, so a
  kill at any moment leaves every chunk in its old or its new version and a rerun converges.
  Ids another source holds are refused, never overwritten.
* Opening for reading (``create=False``) never creates, adopts or changes anything; a missing
  collection is a :class:`CollectionError` naming the ones that exist.
* Against a server, idempotent calls (get, query, count, upsert and delete by id) are retried
  with exponential backoff while the server is unreachable, then raise :class:`ServerError`.
* ``thinking="auto"`` runs :func:`o1_retriever.search.search_with_gate` with this collection's
  vector search; :mod:`o1_retriever.search` also says how ``thinking=`` is spelled.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from o1_retriever.embedder import ThinkingEmbedder
from o1_retriever.errors import CollectionError, EmbedderMismatchError, ThinkerError, check_query
from o1_retriever.gate import GateProfile
from o1_retriever.index import keyword
from o1_retriever.index.client import (  # noqa: F401  (re-exported: importable from here as before)
    RETRY_BACKOFF,
    RETRY_MAX_WAIT,
    SERVER_RETRIES,
    TOKEN_ENV,
    chroma_call,
    client_of,
    collection_names,
    make_client,
    open_collection,
    with_retries,
)
from o1_retriever.index.results import HASH_KEY, SOURCE_KEY, Hit, SearchResult
from o1_retriever.index.sources import Document
from o1_retriever.search import search_with_gate, thinking_mode  # thinking_mode: importable from here as before

log = logging.getLogger(__name__)

FINGERPRINT_KEY = "o1_fingerprint"


@dataclass
class IndexStats:
    """What one :meth:`ChromaIndex.add` did: documents read, embedded and written, left as they
    were, removed as stale (``sync=True``), and repeated ids skipped."""

    seen: int = 0
    written: int = 0
    unchanged: int = 0
    removed: int = 0
    duplicates: list[str] = field(default_factory=list)


@dataclass
class CollectionInfo:
    """A collection as ``o1-retriever collections`` shows it: ``sources`` maps each recorded
    source to its chunk count; ``unsourced`` counts chunks written without one (before sources
    were recorded, or by another tool)."""

    name: str
    count: int
    fingerprint: dict[str, Any] | None
    space: str
    sources: dict[str, int]
    unsourced: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "count": self.count,
            "fingerprint": self.fingerprint,
            "space": self.space,
            "sources": self.sources,
            "unsourced": self.unsourced,
        }


def content_hash(doc: Document) -> str:
    payload = json.dumps([doc.text, doc.metadata], sort_keys=True, ensure_ascii=False, default=str)
    # surrogatepass: a lone surrogate must reach embed_documents' clear error, not crash here
    return hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def collection_info(collection: Any, retries: int = SERVER_RETRIES, page: int = 5000) -> CollectionInfo:
    """Count, encoder fingerprint, space and chunks per recorded source of a collection (reads
    the metadata of every chunk, ``page`` at a time)."""
    client = client_of(collection)
    call = (lambda fn: chroma_call(client, fn, retries)) if client is not None else (lambda fn: fn())
    count = call(collection.count)
    sources: dict[str, int] = {}
    unsourced = 0
    for offset in range(0, count, page):
        got = call(lambda: collection.get(include=["metadatas"], limit=page, offset=offset))
        for meta in got["metadatas"] or []:
            source = (meta or {}).get(SOURCE_KEY)
            if source is None:
                unsourced += 1
            else:
                sources[str(source)] = sources.get(str(source), 0) + 1
    raw = (collection.metadata or {}).get(FINGERPRINT_KEY)
    try:
        fingerprint = json.loads(raw) if raw else None
    except json.JSONDecodeError:
        fingerprint = {"raw": raw}
    return CollectionInfo(collection.name, count, fingerprint, _space(collection), dict(sorted(sources.items())), unsourced)


class ChromaIndex:
    """Index and search one Chroma collection with a :class:`ThinkingEmbedder`.

    ``create=True`` (the default, for indexing) creates the collection when it is missing;
    ``create=False`` (for searching) opens an existing one and changes nothing, a missing one
    is a :class:`CollectionError` naming the collections that exist.

    Example::

        from o1_retriever import ThinkingEmbedder
        from o1_retriever.index import ChromaIndex, read_source, source_id

        embedder = ThinkingEmbedder.from_config()
        index = ChromaIndex("my-docs", embedder)
        stats = index.add(read_source("docs/"), source=source_id("docs/"), sync=True)
        print(stats.written, stats.unchanged, stats.removed)

        reader = ChromaIndex("my-docs", embedder, create=False)
        result = reader.search("how do I rotate the keys?", k=5)
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
        create: bool = True,
        retries: int = SERVER_RETRIES,
    ) -> None:
        import chromadb.errors

        self.embedder = embedder
        self.retries = retries
        self.client = client if client is not None else make_client(path, host, port, auth_token, create=create, retries=retries)
        self.name = collection
        fingerprint = json.dumps(embedder.fingerprint(), sort_keys=True)
        if not create:
            self.collection = open_collection(self.client, collection, retries)
        else:
            try:
                self.collection = chroma_call(
                    self.client,
                    lambda: self.client.get_or_create_collection(
                        collection, metadata={"hnsw:space": "cosine", FINGERPRINT_KEY: fingerprint}, embedding_function=None
                    ),
                    retries,
                )
            except (chromadb.errors.InvalidArgumentError, ValueError) as exc:
                raise CollectionError(
                    f"Chroma rejected the collection name {collection!r}: names are 3-512 characters of "
                    f"[a-zA-Z0-9._-], starting and ending with a letter or digit ({exc})"
                ) from None
        self._check_fingerprint(fingerprint, adopt=create)
        self.space = _space(self.collection)

    @classmethod
    def from_collection(cls, collection: Any, embedder: ThinkingEmbedder, *, retries: int = SERVER_RETRIES) -> "ChromaIndex":
        """Wrap a Chroma collection object that already exists, such as the one behind
        ``langchain_chroma.Chroma`` or LlamaIndex's ``ChromaVectorStore`` (same checks as
        opening for reading: fingerprint if recorded, space read from the collection; nothing
        is written to it)."""
        self = cls.__new__(cls)
        self.embedder = embedder
        self.retries = retries
        self.client = client_of(collection)
        self.name = collection.name
        self.collection = collection
        self._check_fingerprint(json.dumps(embedder.fingerprint(), sort_keys=True), adopt=False)
        self.space = _space(collection)
        return self

    def _check_fingerprint(self, ours: str, *, adopt: bool) -> None:
        meta = self.collection.metadata or {}
        theirs = meta.get(FINGERPRINT_KEY)
        if theirs is None:
            # Made by someone else (langchain_chroma, by hand): a writer adopts it if empty;
            # otherwise the dimension check on first use is all we can do.
            if adopt and self.count() == 0:
                new_meta = {**{k: v for k, v in meta.items() if not k.startswith("hnsw:")}, FINGERPRINT_KEY: ours}
                self._call(lambda: self.collection.modify(metadata=new_meta))
            return
        if theirs != ours:
            raise EmbedderMismatchError(
                f"collection {self.name!r} was filled by embedder {theirs}, "
                f"but this embedder is {ours}; use the same encoder or another collection"
            )

    # -- writing -----------------------------------------------------------------------------
    def add(
        self,
        documents: Iterable[Document],
        *,
        source: str | None = None,
        sync: bool = False,
        batch_size: int = 1024,
        show_progress: bool = True,
    ) -> IndexStats:
        """Upsert documents by id. Unchanged documents (same text and metadata as stored) are
        skipped; a repeated id within the input keeps its first occurrence and is reported.

        With ``source`` (a name for where the documents come from, e.g. :func:`source_id` of a
        folder) every chunk records it, and an id that another source already holds is a
        :class:`CollectionError`: it is never overwritten. With ``sync=True`` (needs
        ``source``) the collection ends up holding exactly these documents for this source:
        its chunks that are not among them are removed, after every document is written, so
        an interruption leaves each chunk in its old or its new version and rerunning
        converges. Other sources' chunks are never touched."""
        from tqdm.auto import tqdm

        if sync and not source:
            raise ValueError("sync=True needs the source whose stale chunks it removes")
        limit = self._call(self.client.get_max_batch_size) if self.client is not None else 5000
        limit = limit if limit > 0 else 5000  # a server that names no limit
        batch_size = max(1, min(batch_size, limit))
        stats = IndexStats()
        seen: set[str] = set()
        self._writing = False  # keyword.before_write marks the keyword index stale once per add
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
                self._write(unique, stats, source)
                bar.update(len(batch))
        finally:
            bar.close()
        if stats.duplicates:
            log.warning("%d repeated document ids kept their first occurrence: %s", len(stats.duplicates), stats.duplicates[:5])
        if sync:
            stats.removed = self._remove_stale(source, seen, batch_size, show_progress)
        keyword.after_writes(self, show_progress)
        return stats

    def _write(self, docs: list[Document], stats: IndexStats, source: str | None) -> None:
        if not docs:
            return
        hashes = [content_hash(d) for d in docs]
        stored = self._call(lambda: self.collection.get(ids=[d.id for d in docs], include=["metadatas"]))
        known = {i: (m or {}) for i, m in zip(stored["ids"], stored["metadatas"] or [])}
        if source is not None:
            foreign = [(i, m[SOURCE_KEY]) for i, m in known.items() if m.get(SOURCE_KEY) not in (None, source)]
            if foreign:
                first, owner = foreign[0]
                raise CollectionError(
                    f"{len(foreign)} ids of source {source!r} are held by another source in collection {self.name!r} "
                    f"(first: {first!r} from {owner!r}); nothing of theirs was changed. Give this source its own ids "
                    f"(--id-prefix), index it into another collection, or, if it is the same source moved, "
                    f"name it as before (--source-id {owner!r})"
                )
        todo = [(d, h) for d, h in zip(docs, hashes) if known.get(d.id, {}).get(HASH_KEY) != h]
        stats.unchanged += len(docs) - len(todo)
        if source is not None:  # chunks stored before sources were recorded: record it, no re-embedding
            unrecorded = [(d, h) for d, h in zip(docs, hashes) if d.id in known and known[d.id].get(HASH_KEY) == h and known[d.id].get(SOURCE_KEY) is None]
            if unrecorded:
                keyword.before_write(self)
                self._call(lambda: self.collection.update(
                    ids=[d.id for d, _ in unrecorded], metadatas=[self._metadata(d, h, source) for d, h in unrecorded]
                ))
        if not todo:
            return
        vectors = self.embedder.embed_documents([d.text for d, _ in todo], show_progress=False)
        keyword.before_write(self)
        self._call(lambda: self.collection.upsert(
            ids=[d.id for d, _ in todo],
            embeddings=vectors,
            documents=[d.text for d, _ in todo],
            metadatas=[self._metadata(d, h, source) for d, h in todo],
        ))
        stats.written += len(todo)

    @staticmethod
    def _metadata(doc: Document, digest: str, source: str | None) -> dict[str, Any]:
        meta = {**_flat(doc.metadata), HASH_KEY: digest}
        if source is not None:
            meta[SOURCE_KEY] = source
        return meta

    def source_ids(self, source: str, page: int = 5000) -> list[str]:
        """Ids of every chunk that records ``source``."""
        ids: list[str] = []
        while True:
            got = self._call(lambda: self.collection.get(where={SOURCE_KEY: source}, include=[], limit=page, offset=len(ids)))
            ids += got["ids"]
            if len(got["ids"]) < page:
                return ids

    def _remove_stale(self, source: str, keep: set[str], batch_size: int, show_progress: bool) -> int:
        from tqdm.auto import tqdm

        stale = [i for i in self.source_ids(source) if i not in keep]
        with tqdm(total=len(stale), desc=f"removing stale chunks of {self.name}", unit="doc", disable=not show_progress or not stale) as bar:
            for start in range(0, len(stale), batch_size):
                part = stale[start : start + batch_size]
                keyword.before_write(self)
                self._call(lambda: self.collection.delete(ids=part))
                bar.update(len(part))
        return len(stale)

    def _call(self, call: Any) -> Any:
        """A Chroma call: retried while a server is unreachable (``ServerError`` after that);
        Chroma's refusals become a one-line :class:`CollectionError`."""
        import chromadb.errors

        try:
            return chroma_call(self.client, call, self.retries) if self.client is not None else call()
        except chromadb.errors.InvalidArgumentError as exc:
            if "dimension" in str(exc):
                raise CollectionError(
                    f"collection {self.name!r} holds vectors of another dimension than this "
                    f"embedder's {self.embedder.dimension} ({exc}); it was filled by another model"
                ) from None
            raise CollectionError(f"Chroma refused the request on {self.name!r}: {exc}") from None
        except chromadb.errors.NotFoundError as exc:
            raise CollectionError(f"collection {self.name!r} is gone (deleted while in use?): {exc}") from None

    # -- reading -----------------------------------------------------------------------------
    def count(self) -> int:
        return self._call(self.collection.count)

    def search(
        self, query: str, k: int = 10, *, thinking: bool | str | None = None, thoughts: int | None = None, where: dict | None = None, gate: GateProfile | None = None, mode: str = "dense"
    ) -> SearchResult:
        """Top-``k`` documents for one query, with the thoughts that steered it.
        ``thinking="auto"`` lets ``gate`` (default: the built-in profile) decide from a first
        plain search whether to think (see :meth:`search_many`)."""
        return self.search_many([query], k, thinking=thinking, thoughts=thoughts, where=where, gate=gate, mode=mode)[0]

    def search_many(
        self, queries: Sequence[str], k: int = 10, *, thinking: bool | str | None = None, thoughts: int | None = None, where: dict | None = None, gate: GateProfile | None = None, mode: str = "dense"
    ) -> list[SearchResult]:
        """Many queries at once: one batched generation, one encode call, one Chroma query (with
        ``"auto"``: a plain pass, then one for the queries that think).

        ``thinking``: ``True`` / ``"always"`` thinks, ``False`` / ``"never"`` does not, ``None``
        thinks when the embedder has a thinker, and ``"auto"`` searches with the plain query
        vectors first and thinks only for the queries whose top 10 look uncertain to ``gate``
        (a :class:`~o1_retriever.gate.GateProfile`; default the built-in one); the others keep
        their plain results. Each result's ``gate`` says what was decided and why.

        ``mode``: ``"dense"`` (vectors), ``"keyword"`` (BM25) or ``"hybrid"`` (both, fused); see
        :mod:`o1_retriever.index.hybrid`.
        """
        if isinstance(queries, str):
            queries = [queries]
        queries = [check_query(q) for q in queries]
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        if mode != "dense":
            from o1_retriever.index.hybrid import search_modes

            return search_modes(self, queries, k, mode=mode, thinking=thinking, thoughts=thoughts, where=where, gate=gate)
        mode = thinking_mode(thinking)
        if mode != "auto":
            embedded = self.embedder.embed_queries(queries, thinking=mode, thoughts=thoughts, return_thoughts=True)
            return [SearchResult(e.query, e.thoughts, hits, e.thinking, e.fallback) for e, hits in zip(embedded, self._query([e.vector for e in embedded], k, where))]
        if self.embedder.thinker is None:
            raise ThinkerError('thinking="auto" needs a thinker; this embedder has none')
        done = search_with_gate(
            self.embedder, queries, lambda vectors, n: self._query(vectors, n, where), lambda hits: [h.score for h in hits], gate or GateProfile.load(), k=k, thoughts=thoughts
        )
        return [
            SearchResult(e.query, e.thoughts, hits[:k], e.thinking, e.fallback, d)
            for e, hits, d in zip(done.embeddings, done.hits, done.decisions)
        ]

    def _query(self, vectors: list[Any], k: int, where: dict | None) -> list[list[Hit]]:
        """The top ``k`` hits of each vector (fewer when the collection holds fewer)."""
        n = min(k, self.count())
        if n == 0 or not vectors:
            return [[] for _ in vectors]
        raw = self._call(lambda: self.collection.query(
            query_embeddings=vectors,
            n_results=n,
            where=where,
            include=["documents", "metadatas", "distances"],
        ))
        return [
            [
                Hit(i, _similarity(d, self.space), t or "", {k_: v for k_, v in (m or {}).items() if k_ not in (HASH_KEY, SOURCE_KEY)})
                for i, d, t, m in zip(raw["ids"][row], raw["distances"][row], raw["documents"][row], raw["metadatas"][row])
            ]
            for row in range(len(vectors))
        ]


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
