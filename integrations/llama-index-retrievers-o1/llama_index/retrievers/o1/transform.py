"""``O1QueryTransform``: thinking before retrieval for any LlamaIndex index and query engine."""

from __future__ import annotations

import logging
from typing import Any, Dict, Optional

from llama_index.core.indices.query.query_transform.base import BaseQueryTransform
from llama_index.core.prompts.mixin import PromptDictType
from llama_index.core.schema import QueryBundle

from o1_retriever.aggregation import Aggregation, query_texts
from o1_retriever.errors import ThinkerError, ThinkerUnavailableError

from llama_index.retrievers.o1.base import as_thinking_embedder

log = logging.getLogger(__name__)


class O1QueryTransform(BaseQueryTransform):
    """Let the o1-retriever thinker write thoughts about the query and turn them into the
    query's embedding strings, in the spirit of ``HyDEQueryTransform``.

    With the default ``o1+query`` aggregation the strings are ``"query thought_i"`` for each
    thought plus the query itself; the index's own ``embed_model`` embeds each and the
    retriever averages them (LlamaIndex's ``embedding_strs`` contract), which is the O1
    Embedder query vector for whatever encoder the index uses. The thoughts of the last run
    are kept in :attr:`last_thoughts`. Give the index a plain (non-thinking) embed model:
    an ``O1Embedding`` as the index's model would think a second time.

    Example::

        from llama_index.core.query_engine import TransformQueryEngine
        from llama_index.core.retrievers import TransformRetriever
        from llama_index.retrievers.o1 import O1QueryTransform

        transform = O1QueryTransform(thoughts=2)          # offline SmolLM2 thinker
        retriever = TransformRetriever(index.as_retriever(similarity_top_k=3), transform)
        engine = TransformQueryEngine(index.as_query_engine(llm=my_llm), transform)

    Args:
        embed_model: whose thinker, sampling and thought cache are used (``O1Embedding`` or
            a ``ThinkingEmbedder``; default: the offline models); with ``llm``, the index's
            plain embedding model (it only decides how query and thought are joined here).
        llm: a LlamaIndex LLM that thinks (as ``HyDEQueryTransform(llm=...)``), e.g.
            ``Settings.llm``; ``O1QueryTransform(llm=Settings.llm, embed_model=Settings.embed_model)``.
        thoughts: thoughts per query (default: the embedder's).
        aggregation: ``o1`` (query + thought only), ``o1+query`` (and the query alone) or
            ``hyde`` (thoughts alone); default: the embedder's.
    """

    def __init__(
        self,
        embed_model: Any = None,
        *,
        llm: Any = None,
        thoughts: Optional[int] = None,
        aggregation: Optional[str] = None,
    ) -> None:
        super().__init__()
        self._embedder = as_thinking_embedder(embed_model, llm)
        if self._embedder.thinker is None:
            raise ThinkerError("O1QueryTransform needs an embedder with a thinker")
        if thoughts is not None and thoughts < 1:
            raise ThinkerError(f"thoughts must be >= 1, got {thoughts}")
        self._thoughts = thoughts
        self._aggregation = Aggregation.parse(aggregation) if aggregation else self._embedder.aggregation
        self.last_thoughts: list[str] = []

    def _get_prompts(self) -> PromptDictType:
        return {}

    def _update_prompts(self, prompts: PromptDictType) -> None:
        pass

    def _run(self, query_bundle: QueryBundle, metadata: Dict[str, Any]) -> QueryBundle:
        query = query_bundle.query_str
        try:
            thoughts = self._embedder.think([query], self._thoughts)[0]
        except ThinkerError as exc:
            if self._embedder.strict or isinstance(exc, ThinkerUnavailableError):  # never thinks: refused, not a fallback
                raise
            log.warning("thinking failed, the query is used as it is: %s", exc)
            self.last_thoughts = []
            return query_bundle
        self.last_thoughts = list(thoughts)
        strings = query_texts(self._embedder.encoder, query, thoughts, self._aggregation)
        return QueryBundle(query_str=query, custom_embedding_strs=strings)
