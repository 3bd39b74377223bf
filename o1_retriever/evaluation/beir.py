"""BEIR-format folders: ``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``.

The one BEIR reader: evaluation (:func:`load_beir`), training
(:func:`o1_retriever.training.data.read_pairs`) and the benchmarks all read queries and
judgements through :func:`read_split`, under one set of rules: a query needs an ``_id`` and a
non-empty ``text``; a judgement line has exactly three tab-separated fields and a numeric score
(``1`` and ``1.0`` alike); a header line is allowed; every judged query must be in
``queries.jsonl``. Malformed input raises :class:`~o1_retriever.errors.SourceError` naming the
file and the line. The corpus itself is read by the core's
:func:`~o1_retriever.index.read_source` (documents are ``title + " " + text``, the BEIR
convention the published dense figures use).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from o1_retriever.errors import SourceError


@dataclass
class BeirDataset:
    """Queries and relevance judgements of one split (the corpus stays on disk).

    ``queries`` keeps only queries that have judgements in the split, in file order (or the
    seeded subset). ``metadata`` holds each query's ``metadata`` object (HotpotQA: the gold
    ``answer``).
    """

    path: Path
    split: str
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    metadata: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def corpus_path(self) -> Path:
        return self.path / "corpus.jsonl"

    def documents(self) -> Iterator[Any]:
        """The corpus as core :class:`~o1_retriever.index.sources.Document` objects."""
        from o1_retriever.index import read_source

        return read_source(self.corpus_path)


def load_beir(path: str | Path, split: str = "test", *, queries: int | None = None, seed: int = 0) -> BeirDataset:
    """Load a BEIR folder's queries and ``qrels/<split>.tsv``.

    Args:
        queries: keep a seeded random subset of this many judged queries (``None``: all).
        seed: the subset's seed (same seed, same queries).
    """
    if queries is not None and queries < 1:
        raise SourceError(f"--queries must be at least 1, got {queries}")
    root = Path(path).expanduser()
    texts, qrels, metadata = read_split(root, split)
    ids = [q for q in texts if q in qrels]
    if queries is not None and queries < len(ids):
        chosen = set(random.Random(seed).sample(ids, queries))
        ids = [q for q in ids if q in chosen]
    return BeirDataset(
        path=root,
        split=split,
        queries={q: texts[q] for q in ids},
        qrels={q: qrels[q] for q in ids},
        metadata={q: metadata.get(q, {}) for q in ids},
    )


def read_split(path: str | Path, split: str) -> tuple[dict[str, str], dict[str, dict[str, int]], dict[str, dict[str, Any]]]:
    """Every query of a BEIR folder, the judgements of ``split`` and the queries' metadata:
    ``(texts, qrels, metadata)``, each in file order. Checks the folder (``corpus.jsonl``,
    ``queries.jsonl``, ``qrels/<split>.tsv``) and that every judged query has a text."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise SourceError(f"{root}: not a folder (expected a BEIR folder with corpus.jsonl, queries.jsonl, qrels/)")
    for name in ("corpus.jsonl", "queries.jsonl"):
        if not (root / name).is_file():
            raise SourceError(f"{root}: missing {name} (not a BEIR folder)")
    qrels_path = root / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        found = sorted(p.stem for p in (root / "qrels").glob("*.tsv")) if (root / "qrels").is_dir() else []
        raise SourceError(f"{qrels_path}: no such split {split!r}" + (f"; available: {', '.join(found)}" if found else "; no qrels/ folder"))
    qrels = read_qrels(qrels_path)
    texts, metadata = read_queries(root / "queries.jsonl")
    missing = [q for q in qrels if q not in texts]
    if missing:
        raise SourceError(f"{qrels_path}: {len(missing)} judged query ids are not in queries.jsonl (first: {missing[0]!r})")
    return texts, qrels, metadata


def read_queries(path: Path) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    """``{id: text}`` and ``{id: metadata}`` of a BEIR ``queries.jsonl``; an empty text or a
    row without ``_id`` / string ``text`` is refused with its line number."""
    texts: dict[str, str] = {}
    metadata: dict[str, dict[str, Any]] = {}
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise SourceError(f"{path}:{lineno}: not a JSON line ({exc})") from None
            if not isinstance(row, dict) or "_id" not in row or not isinstance(row.get("text"), str):
                raise SourceError(f"{path}:{lineno}: expected an object with '_id' and a string 'text'")
            if not row["text"].strip():
                raise SourceError(f"{path}:{lineno}: query {row['_id']!r} has an empty text")
            qid = str(row["_id"])
            texts[qid] = row["text"]
            meta = row.get("metadata")
            metadata[qid] = meta if isinstance(meta, dict) else {}
    return texts, metadata


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """``query-id<TAB>corpus-id<TAB>score`` lines; a header line is allowed."""
    qrels: dict[str, dict[str, int]] = {}
    with path.open("r", encoding="utf-8", errors="strict") as fh:
        try:
            lines = list(fh)
        except UnicodeDecodeError as exc:
            raise SourceError(f"{path}: not UTF-8 text ({exc})") from None
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        parts = line.rstrip("\n").split("\t")
        if lineno == 1 and parts[0].strip().lower() in ("query-id", "query_id", "qid"):
            continue
        if len(parts) != 3:
            raise SourceError(f"{path}:{lineno}: expected 3 tab-separated fields (query-id, corpus-id, score), got {len(parts)}")
        qid, did, score = (p.strip() for p in parts)
        try:
            value = int(float(score))
        except ValueError:
            raise SourceError(f"{path}:{lineno}: score {score!r} is not a number") from None
        qrels.setdefault(qid, {})[did] = value
    if not qrels:
        raise SourceError(f"{path}: no relevance judgements")
    return qrels


def write_slice(source: str | Path, dest: str | Path, *, queries: int, split: str = "test", distractors: int = 30, seed: int = 0) -> Path:
    """Write a small BEIR folder to ``dest``: ``queries`` seeded judged queries of ``source``,
    their relevant documents and ``distractors`` other documents (for quick runs, notebooks
    and tests). Returns ``dest``."""
    data = load_beir(source, split, queries=queries, seed=seed)
    dest = Path(dest)
    (dest / "qrels").mkdir(parents=True, exist_ok=True)
    gold = {d for docs in data.qrels.values() for d in docs}
    rows, others = [], []
    with data.corpus_path.open("rb") as fh:
        for raw in fh:
            if not raw.strip():
                continue
            row = json.loads(raw)
            (rows if str(row.get("_id")) in gold else others).append(raw.decode("utf-8").rstrip("\n"))
    rows += random.Random(seed).sample(others, min(distractors, len(others)))
    (dest / "corpus.jsonl").write_text("".join(r + "\n" for r in rows), encoding="utf-8")
    (dest / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": q, "text": t, "metadata": data.metadata.get(q, {})}, ensure_ascii=False) + "\n" for q, t in data.queries.items()),
        encoding="utf-8",
    )
    (dest / "qrels" / f"{split}.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{s}\n" for q, docs in data.qrels.items() for d, s in docs.items()),
        encoding="utf-8",
    )
    return dest
