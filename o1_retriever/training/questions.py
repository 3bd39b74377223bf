"""Questions a thinker writes for the chunks of a corpus (index-time thinking), their file and
their filters.

``questions.jsonl`` holds one line per generated question: ``chunk_id``, ``sample`` (0..n-1),
``question`` (cleaned), ``raw`` (what the model wrote), ``kept`` and ``reason`` (why a question
was filtered out; ``null`` while it is kept or not yet filtered). It is appended chunk by chunk
(each chunk's lines in one write, flushed), so a killed generation resumes where it stopped:
chunks already in the file are skipped, a chunk cut in the middle of its lines is dropped and
written again, nothing is written twice. Users may read and edit the file; ``adapt --questions``
trains from it without generating.

Filters (:func:`filter_questions`), in order:

* degenerate: empty, not a question (no ``?`` or under three words), an echo of the passage
  (the question is a verbatim stretch of it);
* duplicate: the same question (case and spaces folded) already kept for any chunk;
* round-trip (Promptagator): the question's chunk is not in the base encoder's top ``r``.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np

from o1_retriever.errors import SourceError
from o1_retriever.training.data import query_key

if TYPE_CHECKING:
    from o1_retriever.encoders.base import Encoder
    from o1_retriever.thinkers.base import SamplingConfig, Thinker

QUESTIONS_FILE = "questions.jsonl"
MIN_QUESTION_WORDS = 3


@dataclass
class Question:
    chunk_id: str
    sample: int
    question: str
    raw: str = ""
    of: int = 1  # questions written for this chunk (a chunk with fewer lines was cut by a kill)
    kept: bool = True
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


_LEAD = re.compile(r"^\s*(?:\d+[.)]\s*|[-*]\s*|(?:question|q)\s*\d*\s*[:.]\s*)", re.IGNORECASE)
_ASKED = re.compile(r"[^.?!\n]*\?")  # a sentence ending in a question mark
_QUOTES = "\"'*` "


def clean_question(text: str) -> str:
    """The first question in a generated text: list markers, labels (``Question:``, ``The
    correct question is:``) and quotes stripped, cut after its question mark (small models often
    go on with an answer). A question of fewer than three words is passed over for a later one;
    a text with no question gives its first line (which the filters then reject)."""
    lines = [_LEAD.sub("", line).strip().strip(_QUOTES) for line in text.splitlines()]
    for line in lines:
        for asked in _ASKED.findall(line):
            question = _LEAD.sub("", asked.rsplit(": ", 1)[-1]).strip().strip(_QUOTES)
            if len(question.split()) >= MIN_QUESTION_WORDS:
                return question
    return next((line for line in lines if line), "")


def degenerate_reason(question: str, passage: str) -> str | None:
    """Why a question is unusable as a training query (None: it is usable)."""
    if not question.strip():
        return "empty"
    if not question.rstrip().endswith("?") or len(question.split()) < MIN_QUESTION_WORDS:
        return "not a question"
    body = " ".join(question.rstrip("?").split()).casefold()
    if len(body.split()) >= MIN_QUESTION_WORDS and body in " ".join(passage.split()).casefold():
        return "echo of the passage"
    return None


# -- the file ------------------------------------------------------------------------------------
def read_questions(path: str | Path) -> list[Question]:
    """Every complete line of a questions file (a last line cut by a kill is left out)."""
    path = Path(path)
    if not path.exists():
        raise SourceError(f"{path}: no such questions file")
    out = []
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            if not raw.endswith(b"\n") or not raw.strip():
                continue  # the torn tail of a killed append, or a blank line
            try:
                row = json.loads(raw.decode("utf-8"))
                out.append(
                    Question(
                        chunk_id=str(row["chunk_id"]),
                        sample=int(row.get("sample", 0)),
                        question=str(row["question"]),
                        raw=str(row.get("raw", "")),
                        of=int(row.get("of", 1)),
                        kept=bool(row.get("kept", True)),
                        reason=row.get("reason"),
                    )
                )
            except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise SourceError(f"{path}:{lineno}: not a questions line ({exc})") from None
    return out


def write_questions(questions: Iterable[Question], path: str | Path) -> None:
    """Replace ``path`` atomically (a kill leaves the old file or the new one, never half)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for q in questions:
            fh.write(json.dumps(q.to_json(), ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def complete_chunks(path: Path) -> dict[str, list[Question]]:
    """The chunks whose lines are all in the file. A file holding a torn tail or a chunk cut
    in the middle of its lines is rewritten without them first (they are generated again)."""
    if not path.exists():
        return {}
    questions = read_questions(path)
    by_chunk: dict[str, list[Question]] = {}
    for q in questions:
        by_chunk.setdefault(q.chunk_id, []).append(q)
    done = {c: qs for c, qs in by_chunk.items() if len({q.sample for q in qs}) == qs[0].of}
    kept_lines = sum(len(qs) for qs in done.values())
    if kept_lines != len(questions) or not path.read_bytes().endswith(b"\n") and path.stat().st_size:
        write_questions((q for qs in done.values() for q in qs), path)
    return done


def generate_questions(
    chunks: dict[str, str],
    path: str | Path,
    thinker: "Thinker",
    *,
    n: int,
    sampling: "SamplingConfig",
    batch: int = 8,
    show_progress: bool = True,
) -> dict[str, int]:
    """Write ``n`` questions for every chunk of ``chunks`` (``{chunk id: text}``) not already in
    ``path``, ``batch`` chunks per thinker call, each chunk's lines appended and flushed at
    once. Questions are cleaned (:func:`clean_question`) but not filtered here. Returns
    ``{"written": chunks written now, "skipped": chunks already there, "seconds": ...}``."""
    from tqdm.auto import tqdm

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    done = complete_chunks(path)
    todo = [cid for cid in chunks if cid not in done]
    started = time.perf_counter()
    with path.open("a", encoding="utf-8") as fh, tqdm(
        total=len(chunks), initial=len(chunks) - len(todo), desc="questions", unit="chunk", disable=not show_progress
    ) as bar:
        for start in range(0, len(todo), batch):
            ids = todo[start : start + batch]
            samples = thinker.think([chunks[c] for c in ids], n, sampling)
            for cid, texts in zip(ids, samples):
                lines = [Question(cid, i, clean_question(t), raw=t, of=n) for i, t in enumerate(texts)]
                fh.write("".join(json.dumps(q.to_json(), ensure_ascii=False) + "\n" for q in lines))
                fh.flush()
            bar.update(len(ids))
    return {"written": len(todo), "skipped": len(chunks) - len(todo), "seconds": time.perf_counter() - started}


# -- filters -------------------------------------------------------------------------------------
def filter_questions(
    questions: Sequence[Question],
    chunks: dict[str, str],
    encoder: "Encoder | None",
    *,
    top_r: int,
    chunk_vectors: np.ndarray | None = None,
    show_progress: bool = True,
) -> np.ndarray | None:
    """Mark every question kept or filtered (with its reason), in place; see the module's doc.
    ``top_r`` 0 (or no encoder) skips the round-trip filter. Questions of chunks no longer in
    ``chunks`` are filtered as "chunk not in the source". Returns the chunk vectors (in the
    order of ``chunks``) so a caller can reuse them for mining."""
    seen: set[str] = set()
    candidates: list[Question] = []
    for q in questions:
        q.kept, q.reason = True, None
        passage = chunks.get(q.chunk_id)
        if passage is None:
            q.kept, q.reason = False, "chunk not in the source"
            continue
        q.question = clean_question(q.question)
        reason = degenerate_reason(q.question, passage)
        if reason is None and query_key(q.question) in seen:
            reason = "duplicate"
        if reason:
            q.kept, q.reason = False, reason
            continue
        seen.add(query_key(q.question))
        candidates.append(q)
    if not top_r or encoder is None or not candidates:
        return chunk_vectors
    ids = list(chunks)
    if chunk_vectors is None:
        chunk_vectors = encoder.encode_documents([chunks[c] for c in ids], show_progress=show_progress)
    position = {cid: i for i, cid in enumerate(ids)}
    vectors = encoder.encode_queries([encoder.query_text(q.question, None) for q in candidates])
    for start in range(0, len(candidates), 1024):  # a block of scores at a time: bounded memory
        part = candidates[start : start + 1024]
        scores = vectors[start : start + len(part)] @ chunk_vectors.T
        own = scores[np.arange(len(part)), [position[q.chunk_id] for q in part]]
        ranks = (scores > own[:, None]).sum(axis=1)  # passages strictly above the question's own
        for q, rank in zip(part, ranks):
            if rank >= top_r:
                q.kept, q.reason = False, f"round-trip: its chunk ranked {int(rank) + 1}, not in the top {top_r}"
    return chunk_vectors


def filter_summary(questions: Sequence[Question]) -> dict[str, Any]:
    """Counts: written, kept, kept share, and how many each reason removed."""
    reasons: dict[str, int] = {}
    for q in questions:
        if not q.kept:
            key = q.reason.split(":")[0] if q.reason else "filtered"
            reasons[key] = reasons.get(key, 0) + 1
    kept = sum(q.kept for q in questions)
    return {"written": len(questions), "kept": kept, "kept_share": round(kept / len(questions), 4) if questions else 0.0, "removed": reasons}
