"""Last-token pooling of a causal LM: the embedding is the final hidden state at a marker token
appended to the text (``<emb>`` for unified O1 models, the EOS token for plain causal LMs)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from o1_retriever.encoders.base import Encoder, normalize

log = logging.getLogger(__name__)


class LastTokenEncoder(Encoder):
    """Embeds with a causal LM's last hidden state at an appended pooling token.

    Args:
        model: alias, hub id or folder, or a loaded ``(model, tokenizer)`` pair.
        pool_token: token appended to every text and pooled; ``None`` means the EOS token.
        o1_format: build query strings as ``<query>q</query><thought>t</s>`` (unified models)
            instead of ``q + " " + t``.
        max_query_tokens: queries are cut to this many tokens (the pooling token is added after
            the cut, so it is never lost).
        max_document_tokens: the same for documents.
    """

    def __init__(
        self,
        model: str | tuple[Any, Any] = "smollm2",
        *,
        pool_token: str | None = None,
        o1_format: bool = False,
        max_query_tokens: int = 256,
        max_document_tokens: int = 512,
        batch_size: int = 16,
        device: str | None = None,
        name: str | None = None,
    ) -> None:
        from o1_retriever.models import causal_lm, model_lock

        self.model, self.tokenizer, self._name = causal_lm(model, device=device, name=name)
        tok = self.tokenizer
        self.pool_token = pool_token or tok.eos_token
        self.pool_id = tok.convert_tokens_to_ids(self.pool_token)
        if self.pool_id is None or self.pool_id == tok.unk_token_id:
            raise ValueError(f"pooling token {self.pool_token!r} is not in the tokenizer's vocabulary")
        self.o1_format = o1_format
        self.max_query_tokens = max_query_tokens
        self.max_document_tokens = max_document_tokens
        self.batch_size = batch_size
        self._lock = model_lock(self.model)

    @property
    def identity(self) -> str:
        return f"last-token:{self._name}"

    @property
    def dimension(self) -> int:
        return int(self.model.config.hidden_size)

    def _document_settings(self) -> dict[str, Any]:
        return {"pooling": f"last-token:{self.pool_token}", "max_document_tokens": self.max_document_tokens}

    def query_text(self, query: str | None, thought: str | None) -> str:
        if not self.o1_format:
            return " ".join(p for p in (query, thought) if p)
        eos = self.tokenizer.eos_token
        if query is None:  # thought alone (hyde): embedded like a document
            return thought or ""
        return f"<query>{query}</query><thought>{thought or ''}{eos}"

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, self.max_query_tokens, show_progress=False, warn_cut=True)

    def encode_documents(self, texts: list[str], *, show_progress: bool = False) -> np.ndarray:
        return self._encode(texts, self.max_document_tokens, show_progress)

    def token_ids(self, texts: list[str], max_tokens: int, *, warn_cut: bool = False) -> list[list[int]]:
        """Token ids of each text cut to ``max_tokens - 1``, plus the pooling token. With
        ``warn_cut`` a text that had to be cut is logged (queries: documents are chunked)."""
        ids = self.tokenizer(texts, add_special_tokens=False, truncation=True, max_length=max_tokens)["input_ids"]
        cut = [t for t, row in zip(texts, ids) if len(row) > max_tokens - 1]
        if cut and warn_cut:
            log.warning("%d query text(s) longer than %d tokens were cut to fit (first: %r)", len(cut), max_tokens - 1, cut[0][:60] + "...")
        return [row[: max_tokens - 1] + [self.pool_id] for row in ids]

    def _encode(self, texts: list[str], max_tokens: int, show_progress: bool, warn_cut: bool = False) -> np.ndarray:
        import torch
        from tqdm.auto import tqdm

        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        ids = self.token_ids(texts, max_tokens, warn_cut=warn_cut)
        order = np.argsort([-len(r) for r in ids], kind="stable")  # similar lengths share a batch
        out = np.zeros((len(ids), self.dimension), dtype=np.float32)
        batches = range(0, len(order), self.batch_size)
        with self._lock, torch.inference_mode():
            for start in tqdm(batches, desc="embedding", unit="batch", disable=not show_progress):
                rows = order[start : start + self.batch_size]
                out[rows] = pool_last(self.model, [ids[i] for i in rows], self.tokenizer.pad_token_id)
        return normalize(out)


def pool_last(model: Any, rows: list[list[int]], pad_id: int) -> np.ndarray:
    """Final hidden state at each row's last real token (right padding, no LM head)."""
    t = collate_right(rows, pad_id, device=model.device)
    hidden = pooled_hidden(model, t["input_ids"], t["attention_mask"])
    return hidden.float().cpu().numpy()


def collate_right(rows: list[list[int]], pad_id: int, device: Any = "cpu") -> dict[str, Any]:
    import torch

    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        input_ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        mask[i, : len(r)] = 1
    return {"input_ids": input_ids.to(device), "attention_mask": mask.to(device)}


def pooled_hidden(model: Any, input_ids: Any, attention_mask: Any) -> Any:
    """Backbone's last hidden state at each row's last attended position (right padding).

    Runs the base model only (``model.base_model``), skipping the vocabulary projection that
    embedding does not need. Training calls the full model instead, since it needs the logits too.
    """
    import torch

    out = model.base_model(input_ids=input_ids, attention_mask=attention_mask)
    last = attention_mask.sum(dim=1) - 1
    return out.last_hidden_state[torch.arange(input_ids.shape[0], device=input_ids.device), last]
