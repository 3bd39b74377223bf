"""Exploration: a generator LLM writes N candidate thoughts per training query.

The prompt is the paper's: a task line, a few (query, positive passage) pairs drawn from *other*
rows, then the query. Any core :class:`~o1_retriever.thinkers.base.Thinker` can generate (a local
causal LM, or an OpenAI-compatible server such as vLLM for a strong model); the few-shot message
is built per row and handed to it as the "query" of :data:`SYNTHESIS_PROMPT`.

Output is jsonl, appended batch by batch: rerunning the same command skips the rows already
written (by ``id``), so an interrupted run resumes.
"""

from __future__ import annotations

import json
import logging
import random
import zlib
from pathlib import Path
from typing import Sequence

from o1_retriever.prompts import ThoughtPrompt
from o1_retriever.thinkers.base import SamplingConfig, Thinker
from o1_retriever.training.committee import Committee
from o1_retriever.training.data import PairRow, write_rows

log = logging.getLogger(__name__)

#: Chat prompt whose "query" is the full few-shot message built by :func:`few_shot_message`.
SYNTHESIS_PROMPT = ThoughtPrompt(name="synthesis", template="{query}", chat=True)

TASK_LINE = "Think about a plausible response to address the query. Write one short factual passage, like the examples."


def few_shot_message(row: PairRow, pool: Sequence[PairRow], shots: int = 3, *, seed: int = 0, shot_words: int = 60) -> str:
    """Task line, ``shots`` (query, positive) pairs of other rows (chosen by a seeded draw that
    depends on the row, so reruns build the same prompt), then the row's query."""
    others = [r for r in pool if r.id != row.id or r.query != row.query]
    rng = random.Random(seed * 1_000_003 + zlib.crc32(f"{row.id}\x00{row.query}".encode()))
    examples = rng.sample(others, min(shots, len(others)))
    parts = [TASK_LINE]
    for ex in examples:
        passage = " ".join(ex.pos[0].split()[:shot_words])
        parts.append(f"Query: {ex.query}\nPassage: {passage}")
    parts.append(f"Query: {row.query}\nPassage:")
    return "\n\n".join(parts)


def done_ids(path: Path) -> set[str]:
    """Ids of the rows an earlier run already wrote to ``path`` (a torn last line is ignored)."""
    if not path.exists():
        return set()
    ids = set()
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            try:
                ids.add(str(json.loads(line)["id"]))
            except (json.JSONDecodeError, KeyError, TypeError):
                continue
    return ids


def synthesize(
    rows: Sequence[PairRow],
    out: str | Path,
    thinker: Thinker,
    committee: Committee,
    *,
    candidates: int = 3,
    shots: int = 3,
    shot_words: int = 60,
    sampling: SamplingConfig | None = None,
    batch_rows: int = 16,
    seed: int = 0,
    show_progress: bool = True,
) -> dict[str, int]:
    """Explore (``candidates`` thoughts per row) and refine (committee vote) every row not yet
    in ``out``; append the finished rows to ``out``. Returns ``{"written", "skipped"}``."""
    from tqdm.auto import tqdm

    if candidates < 1:
        raise ValueError("candidates must be >= 1")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for i, row in enumerate(rows):
        row.id = row.id or str(i)
    finished = done_ids(out)
    todo = [r for r in rows if r.id not in finished]
    sampling = sampling or SamplingConfig(max_new_tokens=48, temperature=0.7, seed=seed)
    written = 0
    with tqdm(total=len(todo), desc="synthesizing", unit="query", disable=not show_progress) as bar:
        for start in range(0, len(todo), batch_rows):
            batch = todo[start : start + batch_rows]
            messages = [few_shot_message(r, rows, shots, seed=seed, shot_words=shot_words) for r in batch]
            thoughts = thinker.think(messages, candidates, sampling)
            committee.refine(batch, thoughts)
            write_rows(batch, out, append=True)
            written += len(batch)
            bar.update(len(batch))
    return {"written": written, "skipped": len(rows) - len(todo)}


def read_synthesized(path: str | Path) -> list[PairRow]:
    """Rows of a synthesized file; each must have a ``thought``."""
    from o1_retriever.errors import SourceError
    from o1_retriever.training.data import read_jsonl_pairs

    path = Path(path)
    if not path.is_file():
        raise SourceError(f"{path}: no such file")
    rows = read_jsonl_pairs(path)
    missing = [r.id for r in rows if r.thought is None]
    if missing:
        raise SourceError(f"{path}: {len(missing)} rows have no 'thought' (run o1-retriever synthesize first), e.g. id {missing[0]}")
    return rows
