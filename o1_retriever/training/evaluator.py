"""Dev-split retrieval metrics of an encoder while it trains, without and with thinking.

sentence-transformers' ``InformationRetrievalEvaluator`` embeds each query as one string; a
thinking query vector is the mean of several (query + thought) embeddings (see
:mod:`o1_retriever.aggregation`), so this evaluator builds query vectors exactly as
:class:`~o1_retriever.ThinkingEmbedder` does and scores the runs with the evaluation package's
metrics (ir-measures / pytrec_eval), the same figures ``o1-retriever eval`` reports. It plugs
into ``SentenceTransformerTrainer`` as its ``evaluator``, so the trainer logs both modes and
the model card records them.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
from sentence_transformers.base.evaluation.evaluator import BaseEvaluator

from o1_retriever.aggregation import Aggregation, distinct_strings, mean_vectors, query_texts


class ThinkingRetrievalEvaluator(BaseEvaluator):
    """nDCG@10, Recall@100 and MRR@10 of the model on a dev split, with plain query vectors
    and (when ``thoughts`` are given) with thinking under ``aggregation``.

    Args:
        queries: dev query id -> query text.
        corpus: document id -> text (the documents searched; exact cosine over all of them).
        qrels: dev query id -> {document id: relevance}.
        thoughts: query id -> the inference thinker's thoughts (None: no thinking metrics).
        aggregation: how thoughts become one query vector (the embedder's setting).
        name: metric prefix (``dev_ndcg@10``, ``dev_thinking_ndcg@10``, ...).
    """

    def __init__(
        self,
        queries: Mapping[str, str],
        corpus: Mapping[str, str],
        qrels: Mapping[str, Mapping[str, int]],
        *,
        thoughts: Mapping[str, Sequence[str]] | None = None,
        aggregation: str | Aggregation = Aggregation.O1_QUERY,
        name: str = "dev",
        query_prefix: str = "",
        document_prefix: str = "",
    ) -> None:
        super().__init__()
        self.queries = dict(queries)
        self.corpus = dict(corpus)
        self.qrels = {q: dict(d) for q, d in qrels.items()}
        self.thoughts = {q: list(t) for q, t in thoughts.items()} if thoughts else None
        self.aggregation = Aggregation.parse(aggregation)
        self.name = name
        self.query_prefix = query_prefix
        self.document_prefix = document_prefix
        # the trainer keeps the checkpoint/logs by this metric: with thinking when there is any
        self.primary_metric = "thinking_ndcg@10" if self.thoughts else "ndcg@10"

    def __call__(self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1, *args: Any, **kwargs: Any) -> dict[str, float]:
        metrics = self.compute(model)
        metrics = self.prefix_name_to_metrics(metrics, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics

    def compute(self, model: Any) -> dict[str, float]:
        """Unprefixed metrics: ``ndcg@10``, ``recall@100``, ``mrr@10`` and, with thoughts, the
        same three as ``thinking_*``."""
        from o1_retriever.encoders.sentence_transformers import SentenceTransformerEncoder
        from o1_retriever.evaluation.metrics import evaluate_run
        from o1_retriever.evaluation.retrieval import exact_search

        encoder = SentenceTransformerEncoder(model, name="training", query_prefix=self.query_prefix, document_prefix=self.document_prefix)
        doc_ids = list(self.corpus)
        matrix = encoder.encode_documents([self.corpus[d] for d in doc_ids])
        qids = list(self.queries)
        runs = {"": encoder.encode_queries([encoder.query_text(self.queries[q], None) for q in qids])}
        if self.thoughts is not None:
            groups = [query_texts(encoder, self.queries[q], self.thoughts.get(q, []), self.aggregation) for q in qids]
            strings = distinct_strings(groups)
            runs["thinking_"] = np.stack(mean_vectors(groups, dict(zip(strings, encoder.encode_queries(strings)))))
        metrics: dict[str, float] = {}
        for prefix, vectors in runs.items():
            run = dict(zip(qids, exact_search(vectors, matrix, doc_ids, k=100)))
            means, _ = evaluate_run(self.qrels, run)
            metrics.update({f"{prefix}{name.lower()}": value for name, value in means.items()})
        return metrics
