"""``O1Retriever``: a LangChain retriever that thinks before searching a Chroma collection."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Literal, Optional, Union

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables.config import set_config_context
from pydantic import ConfigDict, Field, PrivateAttr

from o1_retriever import ThinkingEmbedder
from o1_retriever.embedder import as_thinking_embedder
from o1_retriever.errors import ArgumentError, CollectionError, check_top_k
from o1_retriever.index import ChromaIndex

from langchain_o1.embeddings import O1Embeddings


def _embedder(embeddings: Union[O1Embeddings, ThinkingEmbedder, None], llm: Any = None, base_embeddings: Any = None) -> ThinkingEmbedder:
    if llm is not None or base_embeddings is not None:
        if embeddings is not None:
            raise ArgumentError("give embeddings= or llm= / base_embeddings=, not both (pass the models to O1Embeddings instead)")
        return O1Embeddings(llm=llm, base_embeddings=base_embeddings).thinking_embedder
    return as_thinking_embedder(embeddings, wrappers=(O1Embeddings,), default=O1Embeddings, caller="O1Retriever")


class O1Retriever(BaseRetriever):
    """Retrieve from a Chroma collection after thinking about the query (O1 Embedder).

    Each returned ``Document`` carries the stored metadata plus ``id``, ``score`` (cosine
    similarity), ``thoughts`` (what the model wrote about the query) and ``thinking``
    (False for the baseline or when the thinker failed and the plain query was used,
    then also ``fallback=True``). ``k``, ``thinking`` and ``where`` can be set at
    construction and overridden per call: ``retriever.invoke(q, k=2, thinking=False)``.
    ``mode="hybrid"`` (or ``"keyword"``) searches the collection's keyword index too (see
    o1-retriever's keyword and hybrid search); each document then carries ``dense_rank`` and
    ``keyword_rank`` (``None`` where that side did not return it).
    ``thinking="auto"`` searches with the plain query first and thinks only where the gate
    (``gate_profile``, from ``o1-retriever calibrate``; default the built-in one) finds the top
    10 uncertain; each document's ``metadata["gate"]`` says what it decided and why.

    Example (a collection built by ``o1-retriever index`` or by ``ChromaIndex``)::

        from langchain_o1 import O1Embeddings, O1Retriever

        retriever = O1Retriever.from_collection("notes", embeddings=O1Embeddings(thoughts=2), k=3)
        docs = retriever.invoke("Why is the sky blue?")
        docs[0].metadata["thoughts"], docs[0].metadata["score"]

    Or over a ``langchain_chroma.Chroma`` store whose embedding function is ``O1Embeddings``::

        retriever = O1Retriever.from_vectorstore(store, k=3)

    Bring your own models: ``from_collection(name, llm=chat_model, base_embeddings=embeddings)``,
    or over a store filled with a plain ``Embeddings``, ``from_vectorstore(store, llm=chat_model)``
    (its embeddings stay the encoder; thinking is added on the query side). The thinking calls
    run inside the retriever's run: a tracer sees them as its children.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    index: ChromaIndex = Field(description="The o1-retriever index over the Chroma collection.")
    k: int = Field(4, ge=1, description="Documents to return.")
    thinking: Union[bool, Literal["auto", "always", "never"]] = Field(
        True, description="True/'always' thinks about every query, False/'never' is plain dense retrieval, 'auto' thinks only where the gate finds the plain top 10 uncertain."
    )
    thoughts: Optional[int] = Field(None, ge=1, description="Thoughts per query (default: the embedder's).")
    where: Optional[dict[str, Any]] = Field(None, description="A Chroma metadata filter.")
    gate_profile: Optional[str] = Field(None, description="thinking='auto': a gate profile written by 'o1-retriever calibrate' (default: the built-in one).")
    mode: Literal["dense", "keyword", "hybrid"] = Field(
        "dense", description="dense: vectors; keyword: BM25 over the collection's keyword index; hybrid: both fused, scores min-max normalised and averaged (thoughts expand both sides). Documents then carry dense_rank / keyword_rank."
    )

    _gate: Any = PrivateAttr(default=None)

    def model_post_init(self, context: Any) -> None:
        from o1_retriever.gate import GateProfile

        self._gate = GateProfile.load(self.gate_profile)  # a bad profile fails at construction, not at the first query

    @classmethod
    def from_collection(
        cls,
        collection_name: str,
        *,
        embeddings: Union[O1Embeddings, ThinkingEmbedder, None] = None,
        llm: Any = None,
        base_embeddings: Any = None,
        persist_directory: Union[str, Path, None] = None,
        host: Optional[str] = None,
        port: int = 8000,
        auth_token: Optional[str] = None,
        client: Any = None,
        **kwargs: Any,
    ) -> "O1Retriever":
        """A retriever over the named collection: embedded Chroma at ``persist_directory``
        (default ``$O1_RETRIEVER_HOME/chroma``, where ``o1-retriever index`` writes), a server
        at ``host:port``, or an existing ``client``. The collection is opened read-only: a
        missing one is a ``CollectionError`` naming those that exist, and nothing is created
        or changed. ``llm`` / ``base_embeddings``: LangChain models that think / embed, in place
        of ``embeddings`` (see :class:`O1Embeddings`)."""
        index = ChromaIndex(
            collection_name, _embedder(embeddings, llm, base_embeddings), path=persist_directory, host=host, port=port, auth_token=auth_token, client=client,
            create=False,
        )
        return cls(index=index, **kwargs)

    @classmethod
    def from_vectorstore(
        cls, vectorstore: Any, *, embeddings: Union[O1Embeddings, ThinkingEmbedder, None] = None, llm: Any = None, **kwargs: Any
    ) -> "O1Retriever":
        """A retriever over the collection of a ``langchain_chroma.Chroma`` store. Queries are
        embedded by ``embeddings``, or by the store's embedding function when it is
        ``O1Embeddings``; documents must have been embedded by the same encoder. With ``llm``
        (a LangChain chat model, LLM or Runnable) over a store whose embedding function is a
        plain ``Embeddings``, that model thinks and the store's embeddings embed."""
        # langchain_chroma.Chroma has no public accessor of its collection: `_collection` is the
        # property its own methods use (the langchain-chroma range in pyproject.toml guards it)
        collection = getattr(vectorstore, "_collection", None)
        if collection is None:
            raise ArgumentError(f"expected a langchain_chroma.Chroma store, got {type(vectorstore).__name__}")
        base_embeddings = None
        if embeddings is None:
            embeddings = getattr(vectorstore, "embeddings", None)
            if llm is not None:
                if embeddings is None or isinstance(embeddings, O1Embeddings):
                    raise ArgumentError(
                        "llm= adds thinking to a store's plain Embeddings; this store's embedding function is "
                        f"{type(embeddings).__name__} (for O1Embeddings, give the llm to O1Embeddings)"
                    )
                embeddings, base_embeddings = None, embeddings
            elif not isinstance(embeddings, O1Embeddings):
                raise CollectionError(
                    "the store's embedding function is not O1Embeddings; pass embeddings=O1Embeddings(...) "
                    "with the encoder that embedded its documents, or llm= to think with the store's own embeddings"
                )
        return cls(index=ChromaIndex.from_collection(collection, _embedder(embeddings, llm, base_embeddings)), **kwargs)

    def _get_relevant_documents(
        self,
        query: str,
        *,
        run_manager: CallbackManagerForRetrieverRun,
        k: Optional[int] = None,
        thinking: Union[bool, str, None] = None,
        where: Optional[dict[str, Any]] = None,
    ) -> list[Document]:
        k = check_top_k(self.k if k is None else k)
        # a LangChain thinker's calls read the run config in effect: make them this run's children
        with set_config_context({"callbacks": run_manager.get_child()}) as context:
            result = context.run(self._search, query, k, thinking, where)
        return self._to_documents(result)

    def _search(self, query: str, k: int, thinking: Union[bool, str, None], where: Optional[dict[str, Any]]) -> Any:
        return self.index.search(
            query,
            k=k,
            thinking=self.thinking if thinking is None else thinking,
            thoughts=self.thoughts,
            where=self.where if where is None else where,
            gate=self._gate,
            mode=self.mode,
        )

    def _to_documents(self, result: Any) -> list[Document]:
        gate = {"gate": result.gate.to_dict()} if result.gate is not None else {}
        return [
            Document(
                id=hit.id,
                page_content=hit.text,
                metadata={
                    **hit.metadata,
                    "id": hit.id,
                    "score": hit.score,
                    "thoughts": list(result.thoughts),
                    "thinking": result.thinking,
                    **{f"{side}_rank": rank for side, rank in (hit.ranks or {}).items()},  # keyword / hybrid mode
                    **gate,
                    **({"fallback": True} if result.fallback else {}),
                },
            )
            for hit in result.hits
        ]

    async def _aget_relevant_documents(
        self,
        query: str,
        *,
        run_manager: AsyncCallbackManagerForRetrieverRun,
        k: Optional[int] = None,
        thinking: Union[bool, str, None] = None,
        where: Optional[dict[str, Any]] = None,
    ) -> list[Document]:
        # The models run on this process's CPU/GPU: keep the event loop free while they work.
        return await asyncio.to_thread(
            self._get_relevant_documents, query, run_manager=run_manager.get_sync(), k=k, thinking=thinking, where=where
        )
