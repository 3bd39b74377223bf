"""The keyword side of a collection: a bm25s index kept with each Chroma collection.

* :class:`BM25` is the one bm25s wrapper of the package (Lucene's BM25 variant, k1=1.5, b=0.75,
  English stop words): the ``bm25`` baseline of ``eval`` and the keyword side of ``search``.
* Where it lives: next to an embedded database (``<db>/o1-keyword/<collection>/``), or for a
  Chroma server under ``$O1_RETRIEVER_HOME/keyword/<host>-<port>/<collection>/``.
* Staleness: the collection's metadata holds a write generation (``o1_keyword_generation``).
  A writer bumps it *before* its first write to Chroma and stores the keyword index with the new
  generation only after its last one, so a kill in between leaves the two generations different.
  The stored index also records the collection's id (a collection deleted and made again under the
  same name is another one) and its chunk count (a tool writing without bumping the generation,
  e.g. ``langchain_chroma`` adding texts, changes the count). An index that disagrees on any of
  them is stale: a reader rebuilds it in memory from the collection (reading never writes) and
  says so; the next ``o1-retriever index`` stores it again.
* Storing is atomic: the index goes into a fresh folder and ``current.json`` (replaced in one
  ``os.replace``) names it, so a reader sees the old index or the new one, never half of one.
* Hits are always looked up in the collection before they are served, so a chunk deleted after
  the keyword index was read is dropped, never served.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from o1_retriever.index.layout import keyword_dir_of

log = logging.getLogger(__name__)

GENERATION_KEY = "o1_keyword_generation"
FORMAT = 1
MANIFEST = "current.json"


class BM25:
    """A bm25s index over ``(ids, texts)``.

    Example::

        bm25 = BM25(["d1", "d2"], ["the cat sat", "dogs bark"])
        bm25.search(["cat"], k=1)   # [{"d1": 0.28...}]
    """

    def __init__(self, ids: Sequence[str], texts: Sequence[str], *, k1: float = 1.5, b: float = 0.75, show_progress: bool = False) -> None:
        import bm25s

        if len(ids) != len(texts):
            raise ValueError("ids and texts differ in length")
        self.ids = list(ids)
        self._tokenizer = bm25s.tokenization.Tokenizer(lower=True, stopwords="en")
        self._bm25 = bm25s.BM25(k1=k1, b=b)
        if self.ids:  # bm25s cannot index nothing: an empty index answers every query with nothing
            # as a (ids, vocabulary) tuple: bm25s then keeps word keys, which it can save as JSON
            tokens = self._tokenizer.tokenize(list(texts), update_vocab=True, return_as="tuple", show_progress=show_progress)
            self._bm25.index(tokens, show_progress=show_progress)

    def search(self, queries: Sequence[str], k: int = 100) -> list[dict[str, float]]:
        """Top-``k`` ``{document id: score}`` per query, best first (documents with score 0 are
        left out)."""
        if not queries:
            return []
        k = min(k, len(self.ids))
        if k == 0:
            return [{} for _ in queries]
        tokens = self._tokenizer.tokenize(list(queries), update_vocab=False, return_as="ids", show_progress=False)
        # a query none of whose words is in the corpus has no tokens: bm25s needs at least one, and
        # its empty token matches no document
        tokens = [t if t else [self._bm25.vocab_dict[""]] for t in tokens]
        docs, scores = self._bm25.retrieve(tokens, k=k, show_progress=False, n_threads=1)
        out = []
        for row_docs, row_scores in zip(np.asarray(docs), np.asarray(scores)):
            out.append({self.ids[int(d)]: float(s) for d, s in zip(row_docs, row_scores) if s > 0})
        return out

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True)
        (folder / "ids.json").write_text(json.dumps(self.ids, ensure_ascii=False), encoding="utf-8")
        if self.ids:
            self._bm25.save(str(folder), show_progress=False)
            self._tokenizer.save_vocab(str(folder))
            self._tokenizer.save_stopwords(str(folder))

    @classmethod
    def load(cls, folder: Path) -> "BM25":
        import bm25s

        self = cls.__new__(cls)
        self.ids = json.loads((folder / "ids.json").read_text(encoding="utf-8"))
        self._tokenizer = bm25s.tokenization.Tokenizer(lower=True, stopwords="en")
        if self.ids:
            self._bm25 = bm25s.BM25.load(str(folder), show_progress=False)
            self._tokenizer.load_vocab(str(folder))
            self._tokenizer.load_stopwords(str(folder))
        else:
            self._bm25 = bm25s.BM25()
        return self


@dataclass
class KeywordIndex:
    """A collection's BM25 index and what it was built from."""

    bm25: BM25
    generation: int
    collection_id: str
    count: int
    stored: bool  # read from disk (False: rebuilt in memory, because none was stored or it was stale)


def generation(collection: Any) -> int:
    return int((collection.metadata or {}).get(GENERATION_KEY, 0))


def keyword_dir(index: Any) -> Path | None:
    """Where the keyword index of ``index``'s collection lives (``None``: a client that keeps
    nothing on disk, such as an in-memory one)."""
    return keyword_dir_of(index.client, index.name) if index.client is not None else None


def bump_generation(index: Any) -> int:
    """Mark the collection's keyword index stale before a write: the generation in the
    collection's metadata moves on, the stored index keeps the old one until it is rebuilt."""
    meta = dict(index.collection.metadata or {})
    new = generation(index.collection) + 1
    kept = {k: v for k, v in meta.items() if not k.startswith("hnsw:")}  # the space cannot change
    index._call(lambda: index.collection.modify(metadata={**kept, GENERATION_KEY: new}))
    return new


def before_write(index: Any) -> None:
    """Called before each write of an ``add``: the first one marks the keyword index stale."""
    if not getattr(index, "_writing", False):
        bump_generation(index)
        index._writing = True


def after_writes(index: Any, show_progress: bool = False) -> None:
    """Called after the last write of an ``add``: store the keyword index again when the add
    wrote anything, or when the stored one is stale or missing."""
    if getattr(index, "_writing", False) or stale_reason(index.collection, read_manifest(keyword_dir(index)), index.count()) is not None:
        store(index, show_progress=show_progress)
    index._writing = False


def build(index: Any, page: int = 5000, show_progress: bool = False) -> BM25:
    """A BM25 index of every chunk of the collection, read page by page."""
    ids: list[str] = []
    texts: list[str] = []
    total = index.count()
    for offset in range(0, total, page):
        got = index._call(lambda: index.collection.get(include=["documents"], limit=page, offset=offset))
        ids += got["ids"]
        texts += [t or "" for t in got["documents"] or []]
    return BM25(ids, texts, show_progress=show_progress)


def store(index: Any, show_progress: bool = False) -> KeywordIndex:
    """Rebuild the keyword index from the collection and store it with the collection's current
    generation (a writer calls this after its last write)."""
    bm25 = build(index, show_progress=show_progress)
    built = KeywordIndex(bm25, generation(index.collection), str(index.collection.id), len(bm25.ids), stored=True)
    folder = keyword_dir(index)
    if folder is None:
        return built
    folder.mkdir(parents=True, exist_ok=True)
    name = f"gen-{built.generation}-{uuid.uuid4().hex[:8]}"
    bm25.save(folder / name)
    manifest = {"format": FORMAT, "generation": built.generation, "collection_id": built.collection_id, "count": built.count, "folder": name}
    tmp = folder / f".{MANIFEST}.{uuid.uuid4().hex[:8]}"
    tmp.write_text(json.dumps(manifest), encoding="utf-8")
    os.replace(tmp, folder / MANIFEST)
    for old in folder.iterdir():  # earlier generations and leftovers of killed writers
        if old.name not in (name, MANIFEST):
            shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)
    return built


def stale_reason(collection: Any, manifest: dict[str, Any] | None, count: int) -> str | None:
    """Why the stored keyword index does not match ``collection`` holding ``count`` chunks
    (``None``: it matches)."""
    if manifest is None:
        return "no keyword index is stored for it"
    if manifest.get("format") != FORMAT:
        return f"its keyword index has format {manifest.get('format')}, this version reads {FORMAT}"
    if manifest.get("collection_id") != str(collection.id):
        return "its keyword index belongs to an earlier collection of the same name"
    if manifest.get("generation") != generation(collection):
        return (
            f"its keyword index is of write generation {manifest.get('generation')}, the collection is at "
            f"{generation(collection)} (a write was interrupted or is under way)"
        )
    if manifest.get("count") != count:
        return f"its keyword index holds {manifest.get('count')} chunks, the collection {count} (written by another tool?)"
    return None


def read_manifest(folder: Path | None) -> dict[str, Any] | None:
    if folder is None or not (folder / MANIFEST).is_file():
        return None
    try:
        return json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def load(index: Any, *, refresh: bool = True) -> KeywordIndex:
    """The keyword index of ``index``'s collection, for reading: the stored one when it matches
    the collection, else one rebuilt in memory (with a warning; nothing is written). With
    ``refresh`` the collection's metadata is read again first, so a long-lived reader notices
    writes made since it opened the collection."""
    if refresh and index.client is not None:
        index.collection = index._call(lambda: index.client.get_collection(index.name, embedding_function=None))
    count = index.count()
    cached = getattr(index, "_keyword", None)
    if cached is not None and (cached.generation, cached.collection_id, cached.count) == (generation(index.collection), str(index.collection.id), count):
        return cached
    folder = keyword_dir(index)
    manifest = read_manifest(folder)
    reason = stale_reason(index.collection, manifest, count)
    loaded = None
    if reason is None:
        assert folder is not None and manifest is not None
        try:
            loaded = KeywordIndex(BM25.load(folder / manifest["folder"]), manifest["generation"], manifest["collection_id"], manifest["count"], stored=True)
        except (OSError, ValueError, KeyError) as exc:  # a folder removed by a concurrent writer, a damaged file
            reason = f"its keyword index could not be read ({exc})"
    if loaded is None:
        if folder is not None and count:
            log.warning("collection %r: %s; rebuilding it in memory for this search (`o1-retriever index` stores it again)", index.name, reason)
        loaded = KeywordIndex(build(index), generation(index.collection), str(index.collection.id), count, stored=False)
    index._keyword = loaded
    return loaded


def remove(client: Any, name: str) -> None:
    """Delete the stored keyword index of collection ``name`` (``collections delete``)."""
    folder = keyword_dir_of(client, name)
    if folder is not None and folder.is_dir():
        shutil.rmtree(folder)
