"""The encoder trainer's inputs (:func:`o1_retriever.training.encoder.train_encoder`): the
thoughts the inference thinker writes for the training queries, each epoch's anchors (the bare
query, or the query with one of its thoughts), the sampler that trains epoch ``e`` on its own
draw, and the dev split's evaluator."""

from __future__ import annotations

import hashlib
import logging
import random
from typing import TYPE_CHECKING, Any, Sequence

from sentence_transformers.base.sampler import NoDuplicatesBatchSampler

from o1_retriever.errors import O1RetrieverError
from o1_retriever.training.data import PairRow, query_key

if TYPE_CHECKING:
    from o1_retriever.embedder import ThinkingEmbedder

log = logging.getLogger(__name__)


def anchor_rows(
    rows: Sequence[PairRow],
    thoughts: dict[str, list[str]],
    encoder: Any,
    *,
    dropout: float,
    negatives: int,
    epoch: int,
    seed: int,
) -> dict[str, list[str]]:
    """The training columns of one epoch: ``anchor``, ``positive``, ``negative_1..n``, one row
    per (query, positive). Each query draws once per epoch: its bare query with probability
    ``dropout`` (or when it has no thoughts), else the query with one of its thoughts; all rows
    of a query share that anchor, so the no-duplicates sampler keeps them in separate batches."""
    rng = random.Random(f"{seed}/{epoch}")
    columns: dict[str, list[str]] = {"anchor": [], "positive": [], **{f"negative_{i + 1}": [] for i in range(negatives)}}
    chosen: dict[str, str] = {}
    for row in rows:
        key = query_key(row.query)
        if key not in chosen:
            options = thoughts.get(row.query) or []
            bare = not options or rng.random() < dropout
            chosen[key] = encoder.query_text(row.query, None if bare else rng.choice(options))
        for positive in row.pos:
            columns["anchor"].append(chosen[key])
            columns["positive"].append(positive)
            for i in range(negatives):
                columns[f"negative_{i + 1}"].append(row.neg[i])
    return columns


class EpochDrawSampler(NoDuplicatesBatchSampler):
    """Epoch ``e`` samples only the ``e``-th block of ``block_rows`` rows (the anchors drawn for
    that epoch), shuffled, with no text twice in a batch (sentence-transformers' no-duplicates
    sampler within the block)."""

    def __init__(self, dataset: Any, *, block_rows: int, **kwargs: Any) -> None:
        self.whole = dataset
        self.block_rows = block_rows
        super().__init__(dataset.select(range(block_rows)), **kwargs)

    def __iter__(self) -> Any:
        blocks = max(1, len(self.whole) // self.block_rows)
        start = (self.epoch % blocks) * self.block_rows
        self.dataset = self.whole.select(range(start, start + self.block_rows))
        for batch in super().__iter__():
            yield [start + i for i in batch]


def gather_thoughts(embedder: "ThinkingEmbedder", queries: Sequence[str], *, batch: int = 16, show_progress: bool = True) -> dict[str, list[str]]:
    """The inference thinker's thoughts for each query (cached ones are read, the rest written
    in batches, with a progress bar). A failing thinker raises in strict mode; otherwise its
    queries get no thoughts (their anchors stay bare) and a warning says how many."""
    from tqdm.auto import tqdm

    queries = list(dict.fromkeys(queries))
    out: dict[str, list[str]] = {}
    failed = 0
    with tqdm(total=len(queries), desc="thoughts for training", unit="query", disable=not show_progress) as bar:
        for start in range(0, len(queries), batch):
            part = queries[start : start + batch]
            try:
                out.update(zip(part, embedder.think(part)))
            except O1RetrieverError as exc:
                if embedder.strict:
                    raise
                failed += len(part)
                log.warning("thinking failed for %d queries (trained without thoughts): %s", len(part), exc)
            bar.update(len(part))
    if failed:
        log.warning("%d of %d queries have no thoughts", failed, len(queries))
    return out


def dev_evaluator(dev: Sequence[PairRow], rows: Sequence[PairRow], thoughts: dict[str, list[str]] | None, aggregation: str, encoder: Any) -> Any:
    """Dev queries against every document the pairs name (positives and negatives of all rows)."""
    from o1_retriever.training.evaluator import ThinkingRetrievalEvaluator

    doc_ids: dict[str, str] = {}
    for row in rows:
        for text in (*row.pos, *row.neg):
            doc_ids.setdefault(text, f"d{len(doc_ids)}")
    queries, qrels = {}, {}
    for row in dev:
        qid = "q" + hashlib.sha1(query_key(row.query).encode()).hexdigest()[:12]
        queries[qid] = row.query
        qrels.setdefault(qid, {}).update({doc_ids[p]: 1 for p in row.pos})
    return ThinkingRetrievalEvaluator(
        queries,
        {i: t for t, i in doc_ids.items()},
        qrels,
        thoughts={q: thoughts.get(text, []) for q, text in queries.items()} if thoughts is not None else None,
        aggregation=aggregation,
        query_prefix=getattr(encoder, "query_prefix", ""),
        document_prefix=getattr(encoder, "document_prefix", ""),
    )
