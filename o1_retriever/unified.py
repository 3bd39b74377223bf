"""The unified shape: one causal LM that both thinks and embeds (as in the O1 Embedder paper).

Prompt ``<query>{q}</query><thought>`` -> the model writes a thought and EOS -> the whole sequence
plus ``<emb>`` is encoded again -> the last hidden state at ``<emb>`` is the embedding.
Documents are ``text<emb>``. Models trained by ``o1-retriever train`` have this layout; any other
causal LM gets the special tokens added (untrained, so only useful as a starting point).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from o1_retriever.encoders.last_token import LastTokenEncoder
from o1_retriever.prompts import UNIFIED_PROMPT
from o1_retriever.thinkers.transformers import TransformersThinker

log = logging.getLogger(__name__)

SPECIAL_TOKENS = ("<query>", "</query>", "<thought>", "<emb>")
EMB_TOKEN = "<emb>"


def missing_special_tokens(tokenizer: Any) -> list[str]:
    vocab = tokenizer.get_vocab()
    return [t for t in SPECIAL_TOKENS if t not in vocab]


def ensure_special_tokens(model: Any, tokenizer: Any) -> bool:
    """Add the O1 special tokens when missing (and grow the embedding matrix). Returns whether
    anything was added."""
    missing = missing_special_tokens(tokenizer)
    if not missing:
        return False
    log.warning("model has no %s tokens: adding them (untrained until fine-tuned)", ", ".join(missing))
    tokenizer.add_tokens(missing, special_tokens=True)
    model.resize_token_embeddings(len(tokenizer))
    return True


@dataclass
class UnifiedModel:
    """A loaded unified model and the two roles it plays."""

    name: str
    thinker: TransformersThinker
    encoder: LastTokenEncoder

    @classmethod
    def load(cls, name_or_path: str, *, device: str | None = None, max_document_tokens: int = 512) -> "UnifiedModel":
        from o1_retriever.models import load_causal_lm

        model, tokenizer = load_causal_lm(name_or_path, device=device)
        if missing_special_tokens(tokenizer):
            # Adding tokens resizes the model: work on a private copy, never on the instance
            # that other thinkers/encoders of this process share.
            model, tokenizer = load_causal_lm(name_or_path, device=device, shared=False)
            ensure_special_tokens(model, tokenizer)
        pair = (model, tokenizer)
        thinker = TransformersThinker(pair, prompt=UNIFIED_PROMPT, name=name_or_path)
        encoder = LastTokenEncoder(pair, pool_token=EMB_TOKEN, o1_format=True, name=name_or_path, max_document_tokens=max_document_tokens)
        return cls(name=name_or_path, thinker=thinker, encoder=encoder)
