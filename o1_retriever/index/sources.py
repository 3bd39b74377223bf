"""Document sources: a folder of .txt/.md files (chunked), a .jsonl corpus, or a BEIR folder.

Every document gets a stable id: the source's ``_id`` (jsonl / BEIR), or ``relative/path.md#N``
for the N-th chunk of a file (optionally behind an ``id_prefix``), so re-indexing the same source
upserts the same ids. :func:`source_id` names the source itself (what a collection records for
each chunk, so that syncing one source never touches another's chunks).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from o1_retriever.errors import SourceError, is_valid_unicode

log = logging.getLogger(__name__)

TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".rst")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass
class Document:
    id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class SourceReport:
    """What reading a source repaired or skipped (shown in the index summary)."""

    repaired: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def clean_text(text: str) -> str:
    """Drop control characters (keep tab/newline); they confuse tokenizers and terminals."""
    return _CONTROL.sub("", text)


def chunk_text(text: str, size: int = 1200, overlap: int = 150) -> list[str]:
    """Split ``text`` into chunks of at most ``size`` characters on paragraph, then sentence,
    then word boundaries, consecutive chunks sharing up to ``overlap`` characters of context.

    1200 characters is ~250 MiniLM tokens: a chunk fits the default encoder's 256-token window.
    """
    text = text.strip()
    if len(text) <= size:
        return [text] if text else []
    pieces = _split(text, size)
    chunks: list[str] = []
    current = ""
    for piece in pieces:
        if current and len(current) + 1 + len(piece) > size:
            chunks.append(current)
            tail = current[-overlap:] if overlap else ""
            tail = tail[tail.find(" ") + 1 :] if " " in tail else tail
            current = (tail + " " + piece).strip() if len(tail) + 1 + len(piece) <= size else piece
        else:
            current = f"{current}\n{piece}" if current else piece
    if current:
        chunks.append(current)
    return chunks


def _split(text: str, size: int) -> list[str]:
    out: list[str] = []
    for para in re.split(r"\n\s*\n", text):
        para = para.strip()
        if not para:
            continue
        if len(para) <= size:
            out.append(para)
            continue
        for sentence in re.split(r"(?<=[.!?])\s+", para):
            while len(sentence) > size:  # a "sentence" longer than a chunk: cut at a space
                cut = sentence.rfind(" ", 0, size)
                cut = cut if cut > 0 else size
                out.append(sentence[:cut])
                sentence = sentence[cut:].strip()
            if sentence:
                out.append(sentence)
    return out


def read_folder(folder: Path, report: SourceReport, *, chunk_size: int = 1200, overlap: int = 150) -> Iterator[Document]:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)
    for path in files:
        rel = path.relative_to(folder).as_posix()
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("utf-8", errors="replace")
            report.repaired.append(f"{rel}: invalid UTF-8 replaced")
        cleaned = clean_text(text)
        if cleaned != text:
            report.repaired.append(f"{rel}: control characters removed")
        chunks = chunk_text(cleaned, chunk_size, overlap)
        if not chunks:
            report.skipped.append(f"{rel}: empty")
            continue
        for n, chunk in enumerate(chunks):
            yield Document(f"{rel}#{n}", chunk, {"source": rel, "chunk": n})


def read_jsonl(path: Path, report: SourceReport) -> Iterator[Document]:
    """BEIR corpus lines ``{"_id", "title", "text"}``; the text embedded is ``title + " " + text``
    (the BEIR convention the published dense figures use)."""
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                line = raw.decode("utf-8", errors="replace")
                report.repaired.append(f"{path.name}:{lineno}: invalid UTF-8 replaced")
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SourceError(f"{path}:{lineno}: not a JSON line ({exc})") from None
            if not isinstance(row, dict) or "_id" not in row or "text" not in row:
                raise SourceError(f"{path}:{lineno}: expected an object with '_id' and 'text'")
            title = str(row.get("title") or "")
            body = str(row["text"] or "")
            joined = f"{title} {body}".strip()
            text = clean_text(joined)
            if text != joined:
                report.repaired.append(f"{path.name}:{lineno} ({row['_id']}): control characters removed")
            if not is_valid_unicode(text):  # a JSON escape of a lone surrogate ("\\ud800")
                text = text.encode("utf-8", "replace").decode("utf-8")
                report.repaired.append(f"{path.name}:{lineno} ({row['_id']}): lone surrogates replaced")
            text = text.strip()  # what is left once control characters are gone may be blank
            if not text:
                report.skipped.append(f"{path.name}:{lineno} ({row['_id']}): empty text")
                continue
            meta = {k: v for k, v in row.items() if k not in ("_id", "text") and isinstance(v, (str, int, float, bool))}
            yield Document(str(row["_id"]), text, meta)


def _corpus_path(source: str | Path) -> Path:
    """The file or folder ``source`` names, as :func:`read_source` reads it: a ``.jsonl`` file,
    the ``corpus.jsonl`` of a BEIR folder, or a folder of text files."""
    path = Path(source).expanduser()
    if not path.exists():
        raise SourceError(f"{path}: no such file or folder")
    if path.is_file():
        if path.suffix != ".jsonl":
            raise SourceError(f"{path}: expected a .jsonl corpus or a folder")
        return path
    if (path / "corpus.jsonl").exists():
        return path / "corpus.jsonl"
    if (path / "queries.jsonl").exists() or (path / "qrels").is_dir():
        raise SourceError(f"{path}: looks like a BEIR folder (queries.jsonl / qrels/) but corpus.jsonl is missing")
    return path


def source_id(source: str | Path) -> str:
    """The name a collection records for the chunks of ``source``: the absolute path of the
    folder, of the ``.jsonl`` file, or of a BEIR folder's ``corpus.jsonl`` (so ``docs``,
    ``./docs/`` and ``~/x/docs`` name one source)."""
    return _corpus_path(source).resolve().as_posix()


def read_source(source: str | Path, report: SourceReport | None = None, *, id_prefix: str = "", **chunking: int) -> Iterator[Document]:
    """Documents of a folder of text files, a ``.jsonl`` corpus or a BEIR folder; ``id_prefix``
    is put before every id (two sources with the same file names or ``_id`` values can then
    share a collection)."""
    report = report if report is not None else SourceReport()
    path = _corpus_path(source)
    documents = read_folder(path, report, **chunking) if path.is_dir() else read_jsonl(path, report)
    if not id_prefix:
        return documents
    return (Document(id_prefix + doc.id, doc.text, doc.metadata) for doc in documents)
