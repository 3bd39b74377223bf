"""Token sequences for training, built exactly as the core builds them at inference.

* ``joint`` (unified model): query sequence ``<query>q</query><thought>t EOS <emb>``, the string
  of :meth:`LastTokenEncoder.query_text` in O1 format plus the pooling token, as
  :meth:`LastTokenEncoder.token_ids` makes it; documents ``text <emb>`` likewise. The prompt part
  is :data:`o1_retriever.prompts.UNIFIED_PROMPT`, tokenised as the thinker tokenises it.
* ``thinker`` (behaviour cloning alone): the thinker's own rendered prompt (chat template and
  :data:`~o1_retriever.prompts.PASSAGE_PROMPT` by default) followed by ``t EOS``.

Labels keep exactly the thought tokens and the EOS; the prompt, ``<emb>`` and padding are
``-100``. A dropped thought (thought dropout) keeps the empty ``<thought>EOS`` form the core
uses for the no-thinking query, with no LM label at all.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Sequence

from o1_retriever.prompts import PASSAGE_PROMPT, UNIFIED_PROMPT, ThoughtPrompt
from o1_retriever.training.data import PairRow

IGNORE = -100


@dataclass
class Sequences:
    """One batch before padding."""

    queries: list[list[int]]
    labels: list[list[int]]
    documents: list[list[int]] = field(default_factory=list)
    positives: list[int] = field(default_factory=list)  # index in ``documents`` of each query's positive


class Collator:
    """Turns :class:`PairRow` batches into padded tensors for :mod:`.trainer`.

    Args:
        model, tokenizer: the model being trained (special tokens already added for ``joint``).
        mode: ``"joint"`` or ``"thinker"``.
        group_size: documents per query, 1 positive + ``group_size - 1`` hard negatives.
        thought_dropout: probability that a query is trained without its thought (joint mode).
        prompt: the thinker prompt to clone in ``thinker`` mode (``None``: chosen by the model's chat template).
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        mode: str = "joint",
        group_size: int = 16,
        thought_dropout: float = 0.1,
        max_query_tokens: int = 64,
        max_thought_tokens: int = 128,
        max_document_tokens: int = 192,
        prompt: ThoughtPrompt | None = PASSAGE_PROMPT,
        seed: int = 0,
    ) -> None:
        from o1_retriever.thinkers.transformers import TransformersThinker

        if mode not in ("joint", "thinker"):
            raise ValueError(f"unknown mode {mode!r}; choose joint or thinker")
        if group_size < 1:
            raise ValueError("group_size must be >= 1")
        self.tokenizer = tokenizer
        self.mode = mode
        self.group_size = group_size
        self.thought_dropout = thought_dropout if mode == "joint" else 0.0
        self.max_query_tokens = max_query_tokens
        self.max_thought_tokens = max_thought_tokens
        self.max_document_tokens = max_document_tokens
        self.rng = random.Random(seed)
        self.eos_id = tokenizer.eos_token_id
        if mode == "joint":
            from o1_retriever.encoders.last_token import LastTokenEncoder
            from o1_retriever.unified import EMB_TOKEN

            self.encoder = LastTokenEncoder((model, tokenizer), pool_token=EMB_TOKEN, o1_format=True, max_document_tokens=max_document_tokens)
            self.thinker = TransformersThinker((model, tokenizer), prompt=UNIFIED_PROMPT, max_query_tokens=max_query_tokens)
        else:
            self.encoder = None
            self.thinker = TransformersThinker((model, tokenizer), prompt=prompt, max_query_tokens=max_query_tokens)

    # -- one query ----------------------------------------------------------------------------
    def prompt_ids(self, query: str) -> list[int]:
        """The prompt as the thinker tokenises it before generating (raw prompts get the
        tokenizer's own special tokens, chat-rendered ones already carry them)."""
        text = self.thinker.render(query)
        return self.tokenizer(text, add_special_tokens=not self.thinker.prompt.chat)["input_ids"]

    def thought_ids(self, thought: str) -> list[int]:
        return self.tokenizer(thought, add_special_tokens=False, truncation=True, max_length=self.max_thought_tokens)["input_ids"]

    def query_sequence(self, query: str, thought: str | None) -> tuple[list[int], list[int]]:
        """(input ids, labels) of one query; ``thought=None`` is a dropped thought."""
        query = self.thinker._truncate(query)
        prompt = self.prompt_ids(query)
        body = self.thought_ids(thought) if thought else []
        ids = prompt + body + [self.eos_id]
        labels = [IGNORE] * len(prompt) + (body + [self.eos_id] if thought else [IGNORE] * (len(body) + 1))
        if self.mode == "joint":
            ids.append(self.encoder.pool_id)
            labels.append(IGNORE)
        return ids, labels

    def document_ids(self, texts: Sequence[str]) -> list[list[int]]:
        assert self.encoder is not None
        return self.encoder.token_ids(list(texts), self.max_document_tokens)

    # -- batches ------------------------------------------------------------------------------
    def sequences(self, rows: Sequence[PairRow], *, train: bool = True) -> Sequences:
        seqs = Sequences([], [])
        docs: list[str] = []
        for row in rows:
            thought = row.thought or None
            if train and thought and self.rng.random() < self.thought_dropout:
                thought = None
            ids, labels = self.query_sequence(row.query, thought)
            seqs.queries.append(ids)
            seqs.labels.append(labels)
            if self.mode == "joint":
                seqs.positives.append(len(docs))
                docs.append(self.rng.choice(row.pos) if train else row.pos[0])
                docs.extend(self._negatives(row, train))
        if docs:
            seqs.documents = self.document_ids(docs)
        return seqs

    def _negatives(self, row: PairRow, train: bool) -> list[str]:
        want = self.group_size - 1
        if want == 0 or not row.neg:
            return []
        if not train:
            return row.neg[:want]
        if len(row.neg) >= want:
            return self.rng.sample(row.neg, want)
        return [self.rng.choice(row.neg) for _ in range(want)]

    def __call__(self, rows: Sequence[PairRow], *, train: bool = True, device: Any = "cpu") -> dict[str, Any]:
        import torch

        from o1_retriever.encoders.last_token import collate_right

        seqs = self.sequences(rows, train=train)
        pad = self.tokenizer.pad_token_id
        batch = collate_right(seqs.queries, pad, device=device)
        labels = torch.full_like(batch["input_ids"], IGNORE)
        for i, row in enumerate(seqs.labels):
            labels[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        batch["labels"] = labels
        if seqs.documents:
            docs = collate_right(seqs.documents, pad, device=device)
            batch["doc_input_ids"] = docs["input_ids"]
            batch["doc_attention_mask"] = docs["attention_mask"]
            batch["positives"] = torch.tensor(seqs.positives, dtype=torch.long, device=device)
        return batch
