"""A local transformers causal LM as thinker (any Hugging Face model id or folder)."""

from __future__ import annotations

import logging
from typing import Any

from o1_retriever.prompts import ThoughtPrompt, no_chat_template, prompt_for_model
from o1_retriever.thinkers.base import SamplingConfig, Thinker, clean_thought, cut_at_stop

log = logging.getLogger(__name__)


class TransformersThinker(Thinker):
    """Generates thoughts with ``model.generate``, every sample of every query batched.

    Args:
        model: alias (``"smollm2"``), Hugging Face id or local folder; or an already loaded
            ``(model, tokenizer)`` pair (the unified model shares its LM this way).
        prompt: how the query is presented to the model. ``None``: ``passage`` when the
            tokenizer has a chat template, else ``passage-raw`` (a base model; see
            :func:`~o1_retriever.prompts.prompt_for_model`). A raw prompt's thoughts are cut at
            its stop strings after generation.
        batch_size: sequences (queries x thoughts) per ``generate`` call; bounds memory.
        max_query_tokens: longer queries are cut (with a warning) so the prompt fits.
        dtype: ``"auto"`` (bfloat16 where the hardware computes it natively, else float32; see
            :func:`o1_retriever.models.resolve_dtype`), ``"float32"``, ``"bfloat16"`` or
            ``"float16"``. Ignored for an already loaded pair. Part of :attr:`identity`, so
            cached thoughts of one precision are not served for another.
        share_prefill: evaluate each prompt once and let its samples continue from copies of
            its KV cache (``False`` evaluates the prompt once per sample; the benchmarks use it
            to measure the difference). Both give the same thoughts in float32 and when greedy;
            sampled in bfloat16 the two round differently and a thought may differ by a token.
    """

    def __init__(
        self,
        model: str | tuple[Any, Any] = "smollm2",
        *,
        prompt: ThoughtPrompt | None = None,
        batch_size: int = 48,
        max_query_tokens: int = 256,
        device: str | None = None,
        name: str | None = None,
        dtype: str = "auto",
        share_prefill: bool = True,
    ) -> None:
        from o1_retriever.models import causal_lm, model_lock, resolve_dtype

        self.dtype = resolve_dtype(dtype, device) if not isinstance(model, tuple) else str(model[0].dtype).removeprefix("torch.")
        self.model, self.tokenizer, self._name = causal_lm(model, device=device, name=name, dtype=self.dtype)
        self.prompt = prompt_for_model(prompt, has_chat_template=bool(self.tokenizer.chat_template), model=self.identity)
        self.batch_size = batch_size
        self.max_query_tokens = max_query_tokens
        self.share_prefill = share_prefill
        # generate() is not re-entrant on a shared model and seeding uses torch's global RNG:
        # one generation at a time per model (2 CPU cores gain nothing from overlapping them).
        self._lock = model_lock(self.model)

    @property
    def identity(self) -> str:
        # float32 keeps the bare name, so thoughts cached before dtypes existed stay valid
        return f"transformers:{self._name}" + ("" if self.dtype == "float32" else f"@{self.dtype}")

    def check(self, thoughts: int, sampling: SamplingConfig) -> None:
        """A chat prompt needs the tokenizer's chat template."""
        if self.prompt.chat and not self.tokenizer.chat_template:
            raise no_chat_template(self.identity, self.prompt)

    def render(self, query: str) -> str:
        text = self.prompt.render(self._truncate(query))
        if not self.prompt.chat:
            return text
        return self.tokenizer.apply_chat_template(
            [{"role": "user", "content": text}], add_generation_prompt=True, tokenize=False
        )

    def _truncate(self, query: str) -> str:
        ids = self.tokenizer(query, add_special_tokens=False)["input_ids"]
        if len(ids) <= self.max_query_tokens:
            return query
        self._note_cut(len(ids), self.max_query_tokens)
        return self.tokenizer.decode(ids[: self.max_query_tokens])

    def think(self, queries: list[str], thoughts: int, sampling: SamplingConfig) -> list[list[str]]:
        import torch

        if not queries:
            return []
        prompts = [self.render(q) for q in queries]
        per_call = max(1, self.batch_size // thoughts)
        out: list[list[str]] = []
        with self._lock, torch.random.fork_rng(devices=[]), torch.inference_mode():
            if sampling.seed is not None:
                torch.manual_seed(sampling.seed)
            for start in range(0, len(prompts), per_call):
                out.extend(self._generate(prompts[start : start + per_call], thoughts, sampling))
        return out

    def _generate(self, prompts: list[str], thoughts: int, sampling: SamplingConfig) -> list[list[str]]:
        tok = self.tokenizer
        tok.padding_side = "left"  # generation continues from the right end of every row
        batch = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=not self.prompt.chat)
        batch = {name: t.to(self.model.device) for name, t in batch.items()}
        sample = sampling.temperature > 0
        options = dict(
            max_new_tokens=sampling.max_new_tokens,
            do_sample=sample,
            temperature=sampling.temperature if sample else None,
            top_p=sampling.top_p if sample else None,
            top_k=None,
            pad_token_id=tok.pad_token_id,
            eos_token_id=_stop_ids(tok),
        )
        if self.share_prefill and thoughts > 1 and batch["input_ids"].shape[1] > 1:
            rows = self._prefilled(batch, thoughts)
        else:  # row i * thoughts + j is sample j of prompt i, as in the shared case
            rows = {name: t.repeat_interleave(thoughts, dim=0) for name, t in batch.items()}
        out = self.model.generate(**rows, **options)
        new = out[:, batch["input_ids"].shape[1] :]
        texts = [clean_thought(cut_at_stop(t, self.prompt.stop)) for t in tok.batch_decode(new, skip_special_tokens=True)]
        return [texts[i * thoughts : (i + 1) * thoughts] for i in range(len(prompts))]

    def _prefilled(self, batch: dict[str, Any], thoughts: int) -> dict[str, Any]:
        """The prompts but their last token evaluated once, the KV cache then repeated once per thought
        (row ``i * thoughts + j`` is sample j of prompt i): ``generate`` finds the cache and evaluates
        only the last prompt token of each row."""
        from transformers import DynamicCache

        ids, mask = batch["input_ids"], batch["attention_mask"]
        positions = (mask.long().cumsum(-1) - 1).clamp(min=0)  # left padding: rows start at 0
        cache = DynamicCache(config=self.model.config)
        # the backbone alone: the prefill needs no logits
        self.model.base_model(
            input_ids=ids[:, :-1], attention_mask=mask[:, :-1], position_ids=positions[:, :-1],
            cache=cache, use_cache=True,
        )
        cache.batch_repeat_interleave(thoughts)
        return {
            "input_ids": ids.repeat_interleave(thoughts, dim=0),
            "attention_mask": mask.repeat_interleave(thoughts, dim=0),
            "cache": cache,
        }


def _stop_ids(tokenizer: Any) -> list[int]:
    ids = {tokenizer.eos_token_id}
    for token in ("<|im_end|>", "</s>"):
        tid = tokenizer.convert_tokens_to_ids(token)
        if isinstance(tid, int) and tid != tokenizer.unk_token_id:
            ids.add(tid)
    return sorted(i for i in ids if i is not None)

