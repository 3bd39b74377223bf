"""Training rows: ``{query, pos: [...], neg: [...]}`` from a jsonl file or a BEIR folder + split.

A BEIR folder (``corpus.jsonl``, ``queries.jsonl``, ``qrels/SPLIT.tsv``) becomes one row per
query with its relevant documents as ``pos`` (text is ``title + " " + text``, the BEIR
convention of :func:`o1_retriever.index.read_source`) and no ``neg`` (mine them with
:mod:`o1_retriever.training.mining`). Queries and judgements are read by the one BEIR reader,
:func:`o1_retriever.evaluation.beir.read_split`, under the same rules as ``o1-retriever eval``.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from o1_retriever.errors import SourceError


@dataclass
class PairRow:
    """One training query. Synthesis adds ``all_thought`` / ``thought`` / ``votes``."""

    query: str
    pos: list[str]
    neg: list[str] = field(default_factory=list)
    id: str = ""
    all_thought: list[str] | None = None
    thought: str | None = None
    votes: dict[str, list[float]] | None = None
    # "train" or "dev" when the row's side was chosen by its maker (``adapt`` draws its dev questions
    # before the round-trip filter, which would otherwise make them easy by construction); None:
    # :func:`split_dev` draws the side
    split: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        row = {k: v for k, v in asdict(self).items() if k != "extra" and v is not None}
        return {**self.extra, **row}

    @classmethod
    def from_json(cls, row: Any, where: str) -> "PairRow":
        if not isinstance(row, dict):
            raise SourceError(f"{where}: expected a JSON object")
        query = row.get("query")
        pos = row.get("pos")
        if isinstance(pos, str):
            pos = [pos]
        neg = row.get("neg") or []
        if isinstance(neg, str):
            neg = [neg]
        if not isinstance(query, str) or not query.strip():
            raise SourceError(f"{where}: 'query' must be a non-empty string")
        if not isinstance(pos, list) or not pos or not all(isinstance(p, str) and p.strip() for p in pos):
            raise SourceError(f"{where}: 'pos' must be a non-empty list of non-empty strings")
        if not isinstance(neg, list) or not all(isinstance(n, str) for n in neg):
            raise SourceError(f"{where}: 'neg' must be a list of strings")
        thoughts = row.get("all_thought")
        split = row.get("split")
        if split not in (None, "train", "dev"):
            raise SourceError(f"{where}: 'split' must be \"train\" or \"dev\", got {split!r}")
        known = {"query", "pos", "neg", "id", "all_thought", "thought", "votes", "split"}
        return cls(
            query=query,
            pos=pos,
            neg=neg,
            id=str(row.get("id", "")),
            all_thought=list(thoughts) if isinstance(thoughts, list) else None,
            thought=row.get("thought") if isinstance(row.get("thought"), str) else None,
            votes=row.get("votes") if isinstance(row.get("votes"), dict) else None,
            split=split,
            extra={k: v for k, v in row.items() if k not in known},
        )


def read_pairs(source: str | Path, split: str = "train", *, limit: int | None = None, seed: int | None = None) -> list[PairRow]:
    """Rows of a jsonl file or of a BEIR folder's ``split``. ``limit`` keeps that many rows
    (a seeded sample when ``seed`` is given, else the first ones). Rows get an ``id`` (the BEIR
    query id, or the line number) used to resume synthesis."""
    path = Path(source).expanduser()
    if not path.exists():
        raise SourceError(f"{path}: no such file or folder")
    rows = read_beir(path, split) if path.is_dir() else read_jsonl_pairs(path)
    if not rows:
        raise SourceError(f"{path}: no training rows found")
    if limit is not None and limit < len(rows):
        if seed is None:
            rows = rows[:limit]
        else:
            import random

            rows = random.Random(seed).sample(rows, limit)
    return rows


def read_jsonl_pairs(path: Path) -> list[PairRow]:
    rows = []
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                data = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise SourceError(f"{where}: not a JSON line ({exc})") from None
            row = PairRow.from_json(data, where)
            row.id = row.id or str(lineno)
            rows.append(row)
    return rows


def read_beir_corpus(folder: Path) -> dict[str, str]:
    """``{doc_id: title + " " + text}`` of a BEIR ``corpus.jsonl`` (via the core's reader)."""
    from o1_retriever.index.sources import read_jsonl

    return {doc.id: doc.text for doc in read_jsonl(folder / "corpus.jsonl", _report())}


def read_beir_queries(folder: Path) -> dict[str, str]:
    """Deprecated: use :func:`o1_retriever.evaluation.beir.read_split` (the one BEIR reader)."""
    from o1_retriever.evaluation.beir import read_queries

    warnings.warn("read_beir_queries is deprecated; use o1_retriever.evaluation.beir.read_split", DeprecationWarning, stacklevel=2)
    path = Path(folder) / "queries.jsonl"
    if not path.exists():
        raise SourceError(f"{folder}: not a BEIR folder (no queries.jsonl)")
    return read_queries(path)[0]


def read_beir_qrels(folder: Path, split: str) -> dict[str, dict[str, int]]:
    """Deprecated: use :func:`o1_retriever.evaluation.beir.read_split` (the one BEIR reader)."""
    from o1_retriever.evaluation.beir import read_split

    warnings.warn("read_beir_qrels is deprecated; use o1_retriever.evaluation.beir.read_split", DeprecationWarning, stacklevel=2)
    return read_split(folder, split)[1]


def read_beir(folder: Path, split: str) -> list[PairRow]:
    """One row per judged query (in the order of ``qrels/<split>.tsv``) with its relevant
    (score > 0) documents found in the corpus as ``pos``; a query with none is left out."""
    from o1_retriever.evaluation.beir import read_split

    queries, qrels, _ = read_split(folder, split)
    corpus = read_beir_corpus(folder)
    rows = []
    for qid, rel in qrels.items():
        pos = [corpus[d] for d, score in rel.items() if score > 0 and d in corpus]
        if pos:
            rows.append(PairRow(query=queries[qid], pos=pos, id=qid))
    return rows


def write_rows(rows: Iterable[PairRow], path: str | Path, *, append: bool = False) -> None:
    with Path(path).open("a" if append else "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row.to_json(), ensure_ascii=False) + "\n")
            fh.flush()


def _report():
    from o1_retriever.index.sources import SourceReport

    return SourceReport()


def split_dev(rows: Sequence[PairRow], fraction: float, *, seed: int = 0) -> tuple[list[PairRow], list[PairRow]]:
    """Hold out a seeded ``fraction`` of the *queries* as a dev split: ``(train, dev)``.

    Rows are grouped by query text (whitespace and case folded), so a query with several rows
    (several positives, or repeated lines) lands wholly on one side and the dev split never
    shares a query with the rows trained on. ``fraction`` 0 returns every row for training.

    Rows whose ``split`` is set were placed by their maker: when any row has one, the rows marked
    ``"dev"`` are the dev split and every other row trains (``fraction`` is not used).
    """
    if not 0 <= fraction < 1:
        raise SourceError(f"the dev fraction must be in [0, 1), got {fraction}")
    rows = list(rows)
    if any(r.split is not None for r in rows):
        dev = [r for r in rows if r.split == "dev"]
        dev_keys = {query_key(r.query) for r in dev}
        train = [r for r in rows if r.split != "dev" and query_key(r.query) not in dev_keys]
        if not train:
            raise SourceError(f"the rows name {len(dev)} dev rows and no training row")
        return train, dev
    if fraction == 0:
        return rows, []
    import random

    groups: dict[str, list[PairRow]] = {}
    for row in rows:
        groups.setdefault(query_key(row.query), []).append(row)
    keys = sorted(groups)
    random.Random(seed).shuffle(keys)
    n_dev = round(len(keys) * fraction)
    if n_dev == 0 or n_dev == len(keys):
        raise SourceError(f"a dev fraction of {fraction} leaves no {'dev' if n_dev == 0 else 'training'} query among {len(keys)}")
    dev_keys = set(keys[:n_dev])
    return [r for r in rows if query_key(r.query) not in dev_keys], [r for r in rows if query_key(r.query) in dev_keys]


def query_key(query: str) -> str:
    """A query's identity for splitting: case and runs of whitespace do not make a new query."""
    return " ".join(query.split()).casefold()
