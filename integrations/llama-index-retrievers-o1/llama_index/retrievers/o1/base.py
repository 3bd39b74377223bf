"""``O1Retriever``: a LlamaIndex retriever that thinks before searching a Chroma collection."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.callbacks import CallbackManager
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
from llama_index.core.vector_stores.utils import metadata_dict_to_node

from o1_retriever import ThinkingEmbedder
from o1_retriever.embedder import as_thinking_embedder as core_as_thinking_embedder
from o1_retriever.errors import ArgumentError, check_top_k
from o1_retriever.gate import GateProfile
from o1_retriever.index import ChromaIndex
from o1_retriever.index.hybrid import check_mode
from o1_retriever.search import thinking_mode

from llama_index.embeddings.o1 import O1Embedding

#: metadata keys this retriever adds to each node (kept out of LLM prompts and embeddings)
O1_METADATA_KEYS = ["thoughts", "thinking", "fallback", "gate", "dense_rank", "keyword_rank"]


def as_thinking_embedder(embed_model: Any, llm: Any = None) -> ThinkingEmbedder:
    """The core embedder behind ``embed_model`` (``None``: the offline defaults). A plain
    LlamaIndex ``BaseEmbedding``, or an ``llm``, is wrapped in an :class:`O1Embedding` (that
    LLM thinks, that embedding model embeds)."""
    if llm is not None or (isinstance(embed_model, BaseEmbedding) and not isinstance(embed_model, O1Embedding)):
        if isinstance(embed_model, (O1Embedding, ThinkingEmbedder)):
            raise ArgumentError("embed_model already has its thinker: give llm= to O1Embedding, or give a plain embedding model with llm=")
        return O1Embedding(llm=llm, embed_model=embed_model).thinking_embedder
    return core_as_thinking_embedder(embed_model, wrappers=(O1Embedding,), default=O1Embedding, caller="O1Retriever")


class O1Retriever(BaseRetriever):
    """Retrieve ``NodeWithScore`` from a Chroma collection after thinking about the query.

    ``score`` is the cosine similarity; each node's metadata gains ``thoughts`` (what the
    model wrote about the query) and ``thinking`` (False for the baseline or when the thinker
    failed, then also ``fallback=True``); these keys are excluded from LLM prompts and
    embeddings. Nodes written by LlamaIndex (``ChromaVectorStore``) come back as the nodes
    that were stored, relationships included.

    Args:
        index: an o1-retriever :class:`~o1_retriever.index.ChromaIndex`; or use
            :meth:`from_vector_store` / :meth:`from_collection`.
        similarity_top_k: nodes to return.
        thinking: True thinks about every query, False is plain dense retrieval (the baseline),
            ``"auto"`` searches plainly first and thinks only where the gate finds the top 10
            uncertain (the node metadata's ``gate`` says what it decided and why).
        gate_profile: the gate of ``thinking="auto"``: a profile file written by
            ``o1-retriever calibrate`` or a :class:`~o1_retriever.gate.GateProfile` (default:
            the built-in one).
        thoughts: thoughts per query (default: the embedder's).
        where: a Chroma metadata filter.
        mode: ``"dense"`` (vectors), ``"keyword"`` (BM25 over the collection's keyword index) or
            ``"hybrid"`` (both fused: scores min-max normalised and averaged; thoughts expand both sides); nodes then
            carry ``dense_rank`` and ``keyword_rank`` in their metadata.

    Example::

        import chromadb
        from llama_index.core import StorageContext, VectorStoreIndex
        from llama_index.embeddings.o1 import O1Embedding
        from llama_index.retrievers.o1 import O1Retriever
        from llama_index.vector_stores.chroma import ChromaVectorStore

        embed_model = O1Embedding(thoughts=2)
        collection = chromadb.EphemeralClient().get_or_create_collection("notes")
        store = ChromaVectorStore(chroma_collection=collection)
        VectorStoreIndex.from_documents(docs, storage_context=StorageContext.from_defaults(vector_store=store),
                                        embed_model=embed_model)
        retriever = O1Retriever.from_vector_store(store, embed_model=embed_model, similarity_top_k=3)
        for hit in retriever.retrieve("Why is the sky blue?"):
            print(hit.score, hit.node.metadata["thoughts"])
    """

    def __init__(
        self,
        index: ChromaIndex,
        *,
        similarity_top_k: int = 4,
        thinking: Union[bool, str] = True,
        thoughts: Optional[int] = None,
        where: Optional[Dict[str, Any]] = None,
        gate_profile: Union[str, Path, GateProfile, None] = None,
        mode: str = "dense",
        callback_manager: Optional[CallbackManager] = None,
        verbose: bool = False,
    ) -> None:
        if not isinstance(index, ChromaIndex):
            raise ArgumentError(f"O1Retriever needs a ChromaIndex, got {type(index).__name__}; see from_vector_store()")
        self.index = index
        self.similarity_top_k = check_top_k(similarity_top_k, "similarity_top_k")
        self.thinking = thinking_mode(thinking)
        self.gate = gate_profile if isinstance(gate_profile, GateProfile) else GateProfile.load(gate_profile)
        self.thoughts = thoughts
        self.where = where
        self.mode = check_mode(mode)
        super().__init__(callback_manager=callback_manager, verbose=verbose)

    @classmethod
    def from_vector_store(
        cls, vector_store: Any, *, embed_model: Union[O1Embedding, ThinkingEmbedder, BaseEmbedding, None] = None, llm: Any = None, **kwargs: Any
    ) -> "O1Retriever":
        """Over the collection of a ``ChromaVectorStore`` (its documents must have been embedded
        by the same encoder, e.g. by a ``VectorStoreIndex`` with this ``embed_model``). Bring
        your own models: ``llm=`` a LlamaIndex LLM that thinks, with ``embed_model=`` the plain
        embedding model that embedded the store (e.g. ``Settings.llm``, ``Settings.embed_model``)."""
        from llama_index.vector_stores.chroma import ChromaVectorStore

        if not isinstance(vector_store, ChromaVectorStore):
            raise ArgumentError(f"expected a ChromaVectorStore, got {type(vector_store).__name__}")
        collection = vector_store.client  # the public accessor of the store's Chroma collection
        return cls(ChromaIndex.from_collection(collection, as_thinking_embedder(embed_model, llm)), **kwargs)

    @classmethod
    def from_collection(
        cls,
        collection_name: str,
        *,
        embed_model: Union[O1Embedding, ThinkingEmbedder, BaseEmbedding, None] = None,
        llm: Any = None,
        path: Union[str, Path, None] = None,
        host: Optional[str] = None,
        port: int = 8000,
        auth_token: Optional[str] = None,
        client: Any = None,
        **kwargs: Any,
    ) -> "O1Retriever":
        """Over a named collection (e.g. one filled by ``o1-retriever index``): embedded Chroma
        at ``path`` (default ``$O1_RETRIEVER_HOME/chroma``), a server, or a given client. The
        collection is opened read-only: a missing one is a ``CollectionError`` naming those
        that exist, and nothing is created or changed."""
        index = ChromaIndex(
            collection_name, as_thinking_embedder(embed_model, llm), path=path, host=host, port=port, auth_token=auth_token, client=client,
            create=False,
        )
        return cls(index, **kwargs)

    def _retrieve(self, query_bundle: QueryBundle) -> List[NodeWithScore]:
        result = self.index.search(
            query_bundle.query_str, k=self.similarity_top_k, thinking=self.thinking, thoughts=self.thoughts, where=self.where, gate=self.gate, mode=self.mode
        )
        extra: Dict[str, Any] = {"thoughts": list(result.thoughts), "thinking": result.thinking}
        if result.gate is not None:
            extra["gate"] = result.gate.to_dict()
        if result.fallback:
            extra["fallback"] = True
        nodes = []
        for hit in result.hits:
            node = _to_node(hit.id, hit.text, hit.metadata)
            node.metadata.update(extra)
            node.metadata.update({f"{side}_rank": rank for side, rank in (hit.ranks or {}).items()})  # keyword / hybrid mode
            for keys in (node.excluded_llm_metadata_keys, node.excluded_embed_metadata_keys):
                keys.extend(k for k in O1_METADATA_KEYS if k not in keys)
            nodes.append(NodeWithScore(node=node, score=hit.score))
        return nodes

    async def _aretrieve(self, query_bundle: QueryBundle) -> List[NodeWithScore]:
        # The models run on this process's CPU/GPU: keep the event loop free meanwhile.
        return await asyncio.to_thread(self._retrieve, query_bundle)


def _to_node(node_id: str, text: str, metadata: Dict[str, Any]) -> Any:
    """The node LlamaIndex stored (``ChromaVectorStore`` keeps it as ``_node_content``), or a
    ``TextNode`` for documents written by o1-retriever or LangChain."""
    if "_node_content" in metadata:
        try:
            return metadata_dict_to_node(metadata, text=text)
        except Exception:  # malformed or foreign node payload: fall back to the plain text
            pass
    return TextNode(id_=node_id, text=text, metadata={k: v for k, v in metadata.items() if not k.startswith("_node")})
