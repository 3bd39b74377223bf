"""RAG answer evaluation: retrieve with and without thinking, answer with a reader LLM, score
with RAGAS.

* :class:`Reader` answers a question from retrieved passages: a local transformers causal LM
  (offline default SmolLM2, loaded once per process through
  :func:`o1_retriever.models.load_causal_lm`; batched, greedy, short answers) or any
  OpenAI-compatible ``/v1/chat/completions`` endpoint.
* RAGAS metrics that need no LLM always run: context precision / recall against the gold
  supporting documents (by id and by text), string similarity, exact match and string presence
  of the gold answer. LLM-judged metrics (faithfulness, answer accuracy) run when a judge is
  given. RAGAS turns a judge's broken output into NaN: every NaN is counted and reported.
"""

from __future__ import annotations

import logging
import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from o1_retriever.config import EmbedderConfig
from o1_retriever.embedder import ThinkingEmbedder
from o1_retriever.errors import O1RetrieverError
from o1_retriever.evaluation.beir import BeirDataset

log = logging.getLogger(__name__)

ANSWER_SYSTEM = (
    "Answer the question with the help of the passages. Reply with the answer only: "
    "a few words, a name, a number, or yes/no. No explanation."
)


class ReaderError(O1RetrieverError, RuntimeError):
    """The reader (or judge) LLM failed: endpoint down, bad reply, model not loadable."""


# -- generation backends -------------------------------------------------------------------------
class _LocalLM:
    """Greedy chat generation with a local causal LM (one load per process)."""

    def __init__(self, model: str, *, device: str | None = None) -> None:
        from o1_retriever.models import load_causal_lm, model_lock

        self.name = model
        self.model, self.tokenizer = load_causal_lm(model, device=device)
        self._lock = model_lock(self.model)

    def chat(self, conversations: list[list[dict[str, str]]], max_new_tokens: int, max_prompt_tokens: int = 1536) -> list[str]:
        import torch

        tok = self.tokenizer
        prompts = [tok.apply_chat_template(c, add_generation_prompt=True, tokenize=False) for c in conversations]
        with self._lock, torch.inference_mode():
            tok.padding_side = "left"
            tok.truncation_side = "left"  # keep the question and the generation prompt at the end
            batch = tok(prompts, return_tensors="pt", padding=True, truncation=True, max_length=max_prompt_tokens, add_special_tokens=False)
            batch = {k: v.to(self.model.device) for k, v in batch.items()}
            outs = self.model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False, temperature=None, top_p=None, top_k=None, pad_token_id=tok.pad_token_id)
        return tok.batch_decode(outs[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)


class _EndpointLM:
    """``POST {base_url}/chat/completions`` on an OpenAI-compatible server (temperature 0)."""

    def __init__(self, base_url: str, model: str, *, api_key_env: str = "OPENAI_API_KEY", timeout: float = 120.0) -> None:
        import httpx

        if not model:
            raise ReaderError(f"an OpenAI-compatible endpoint ({base_url}) needs a model name")
        self.name = f"{base_url}#{model}"
        self.model = model
        headers = {}
        if os.environ.get(api_key_env):
            headers["Authorization"] = f"Bearer {os.environ[api_key_env]}"
        self._client = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout)

    def chat(self, conversations: list[list[dict[str, str]]], max_new_tokens: int, max_prompt_tokens: int = 0) -> list[str]:
        import httpx

        answers = []
        for messages in conversations:
            try:
                r = self._client.post("/chat/completions", json={"model": self.model, "messages": messages, "max_tokens": max_new_tokens, "temperature": 0})
                r.raise_for_status()
                answers.append(r.json()["choices"][0]["message"]["content"] or "")
            except (httpx.HTTPError, KeyError, IndexError, ValueError) as exc:
                raise ReaderError(f"{self.name}: chat completion failed ({exc})") from None
        return answers


def _backend(spec: str, model_name: str | None, device: str | None) -> Any:
    if spec.startswith(("http://", "https://")):
        return _EndpointLM(spec, model_name or "")
    try:
        return _LocalLM(spec, device=device)
    except O1RetrieverError:
        raise
    except Exception as exc:  # transformers raises many kinds for a bad id/folder
        raise ReaderError(f"cannot load the LLM {spec!r}: {exc}") from None


# -- the reader ----------------------------------------------------------------------------------
class Reader:
    """Answers questions from passages.

    Example::

        reader = Reader()                                   # offline SmolLM2-135M-Instruct
        reader.answer(["Who wrote Macbeth?"], [["Macbeth is a tragedy by William Shakespeare."]])
        Reader("http://localhost:8000/v1", model_name="Qwen2.5-7B-Instruct")   # any OpenAI-compatible server

    Args:
        model: alias (``smollm2``), Hugging Face id/folder, or an ``http(s)://.../v1`` URL.
        model_name: the model's name on an OpenAI-compatible server.
        max_new_tokens: answer length bound (answers are short).
        batch_size: questions per local ``generate`` call.
        max_passage_chars: each passage is cut to this many characters.
        backend: a ready generation backend (a ``name`` and ``chat(conversations,
            max_new_tokens)``) in place of ``model``: how the framework adapters' readers plug a
            LangChain or LlamaIndex model in.
    """

    def __init__(self, model: str = "smollm2", *, model_name: str | None = None, max_new_tokens: int = 24, batch_size: int = 8, max_passage_chars: int = 1000, device: str | None = None, backend: Any = None) -> None:
        self.lm = backend if backend is not None else _backend(model, model_name, device)
        self.name = self.lm.name
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.max_passage_chars = max_passage_chars

    def messages(self, question: str, passages: Sequence[str]) -> list[dict[str, str]]:
        context = "\n\n".join(f"[{i}] {p[: self.max_passage_chars]}" for i, p in enumerate(passages, 1))
        return [
            {"role": "system", "content": ANSWER_SYSTEM},
            {"role": "user", "content": f"Passages:\n{context}\n\nQuestion: {question}\nAnswer:"},
        ]

    def answer(self, questions: Sequence[str], passages: Sequence[Sequence[str]], *, show_progress: bool = False, desc: str = "answering") -> list[str]:
        from tqdm.auto import tqdm

        if len(questions) != len(passages):
            raise ValueError("one list of passages per question")
        out: list[str] = []
        with tqdm(total=len(questions), desc=desc, unit="question", disable=not show_progress) as bar:
            for i in range(0, len(questions), self.batch_size):
                convs = [self.messages(q, p) for q, p in zip(questions[i : i + self.batch_size], passages[i : i + self.batch_size])]
                try:
                    raw = self.lm.chat(convs, self.max_new_tokens)
                except O1RetrieverError:
                    raise
                except Exception as exc:
                    raise ReaderError(f"{self.name} failed to answer: {exc}") from exc
                out.extend(clean_answer(a) for a in raw)
                bar.update(len(convs))
        return out


def clean_answer(text: str) -> str:
    """First non-empty line, without an ``Answer:`` prefix, quotes or a final period."""
    line = next((l.strip() for l in text.strip().splitlines() if l.strip()), "")
    line = re.sub(r"^(the\s+)?answer\s*(is)?\s*[:\-]\s*", "", line, flags=re.I)
    return line.strip().strip('"\'').rstrip(".").strip()


# -- a judge LLM for RAGAS -----------------------------------------------------------------------
def make_judge(spec: str, model_name: str | None = None, *, max_new_tokens: int = 512, device: str | None = None) -> Any:
    """A RAGAS LLM backed by a local model or an OpenAI-compatible endpoint."""
    from ragas.llms.base import BaseRagasLLM, Generation, LLMResult  # ragas' own types

    lm = _backend(spec, model_name, device)

    class Judge(BaseRagasLLM):
        name = lm.name

        def generate_text(self, prompt, n=1, temperature=0.01, stop=None, callbacks=None):
            text = prompt.to_string() if hasattr(prompt, "to_string") else str(prompt)
            replies = lm.chat([[{"role": "user", "content": text}]], max_new_tokens)
            return LLMResult(generations=[[Generation(text=r) for r in replies * n]])

        async def agenerate_text(self, prompt, n=1, temperature=0.01, stop=None, callbacks=None):
            return self.generate_text(prompt, n, temperature or 0.01, stop, callbacks)

        def is_finished(self, response) -> bool:
            return True

    return Judge()


# -- the evaluation ------------------------------------------------------------------------------
@dataclass
class RagRecord:
    id: str
    variant: str
    question: str
    contexts: list[str]
    context_ids: list[str]
    answer: str
    gold_answer: str
    gold_ids: list[str]
    thoughts: list[str] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in self.__dict__.items()} | {
            "scores": {m: (None if math.isnan(s) else s) for m, s in self.scores.items()}
        }


@dataclass
class RagResults:
    dataset: str
    questions: int
    settings: dict[str, Any]
    records: list[RagRecord]
    means: dict[str, dict[str, float]]  # variant -> metric -> mean over non-NaN scores
    nans: dict[str, dict[str, int]]  # variant -> metric -> NaN count
    changed: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "questions": self.questions,
            "settings": self.settings,
            "means": {v: {m: (None if math.isnan(s) else s) for m, s in ms.items()} for v, ms in self.means.items()},
            "nans": self.nans,
            "changed": self.changed,
        }


def gold_answer(metadata: dict[str, Any]) -> str:
    answer = metadata.get("answer")
    return answer if isinstance(answer, str) else ""


def check_answers(dataset: BeirDataset) -> None:
    """Raise a clear error unless every question has a gold answer in ``metadata.answer``."""
    missing = [q for q in dataset.queries if not gold_answer(dataset.metadata.get(q, {}))]
    if missing:
        raise O1RetrieverError(
            f"{dataset.path / 'queries.jsonl'}: {len(missing)} questions have no gold answer in metadata.answer "
            f"(first: {missing[0]!r}); rag-eval needs one per question"
        )


def evaluate_rag(
    dataset: BeirDataset,
    config: EmbedderConfig | None = None,
    *,
    embedder: ThinkingEmbedder | None = None,
    reader: Reader | None = None,
    judge: Any = None,
    k: int = 3,
    db: str | Path | None = None,
    show_progress: bool = True,
) -> RagResults:
    """Retrieve top-``k`` with and without thinking, answer with ``reader``, score with RAGAS."""
    import tempfile

    from o1_retriever.evaluation.retrieval import DocumentStore
    from o1_retriever.evaluation.thinking import counting, think_all

    config = config or EmbedderConfig()
    qids = list(dataset.queries)
    check_answers(dataset)
    golds = {q: gold_answer(dataset.metadata.get(q, {})) for q in qids}
    embedder = embedder or ThinkingEmbedder.from_config(config)
    if embedder.thinker is None:
        raise O1RetrieverError("rag-eval compares answers with and without thinking: it needs a thinker")
    embedder.check_thinker()  # a thinker that cannot think is refused before the corpus is embedded
    store = DocumentStore(dataset, embedder, db=db, show_progress=show_progress)
    reader = reader or Reader(device=config.device)
    questions = [dataset.queries[q] for q in qids]
    records: list[RagRecord] = []
    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="o1-rag-") as tmp, counting(embedder, Path(tmp)):
        # without a cache of its own, the embedder gets a temporary one: thoughts are generated once
        phase = think_all(embedder, questions, show_progress=show_progress)
        if phase.failed == len(questions):  # the "with thinking" answers would be the plain ones
            raise O1RetrieverError(f"rag-eval: thinking failed for every question: {phase.error}")
        think_s = phase.seconds
        _retrieve_and_answer(dataset, qids, questions, embedder, store, reader, k, show_progress, records, timings)
    score_records(records, store.texts, judge=judge, show_progress=show_progress)
    variants = list(dict.fromkeys(r.variant for r in records))
    metrics = list(dict.fromkeys(m for r in records for m in r.scores))
    means, nans = {}, {}
    for v in variants:
        rows = [r for r in records if r.variant == v]
        means[v], nans[v] = {}, {}
        for m in metrics:
            values = [r.scores.get(m, float("nan")) for r in rows]
            good = [x for x in values if not math.isnan(x)]
            nans[v][m] = len(values) - len(good)
            means[v][m] = sum(good) / len(good) if good else float("nan")
    by_id = {(r.id, r.variant): r for r in records}
    changed = [
        {
            "id": q,
            "question": dataset.queries[q],
            "gold": golds[q],
            "with_thinking": by_id[(q, "thinking")].answer,
            "without_thinking": by_id[(q, "no thinking")].answer,
            "thoughts": by_id[(q, "thinking")].thoughts,
        }
        for q in qids
        if by_id[(q, "thinking")].answer.strip().lower() != by_id[(q, "no thinking")].answer.strip().lower()
    ]
    settings = {
        "encoder": config.encoder,
        "thinker": config.thinker,
        "aggregation": embedder.aggregation.value if hasattr(embedder.aggregation, "value") else str(embedder.aggregation),
        "thoughts": embedder.thoughts,
        "sampling": embedder.sampling.as_dict(),
        "reader": reader.name,
        "judge": getattr(judge, "name", None) if judge is not None else None,
        "k": k,
        "think_seconds": think_s,
        "seconds": timings,
    }
    return RagResults(dataset.name, len(qids), settings, records, means, nans, changed)


def _retrieve_and_answer(dataset: BeirDataset, qids: list[str], questions: list[str], embedder: ThinkingEmbedder, store: Any, reader: Reader,
                         k: int, show_progress: bool, records: list[RagRecord], timings: dict[str, float]) -> None:
    golds = {q: gold_answer(dataset.metadata.get(q, {})) for q in qids}
    for variant, thinking in (("thinking", True), ("no thinking", False)):
        start = time.perf_counter()
        embedded = embedder.embed_queries(questions, thinking=thinking, return_thoughts=True)
        hits = store.search(np.stack([e.vector for e in embedded]), k=k)
        contexts = [[store.texts[d] for d in h] for h in hits]
        answers = reader.answer(questions, contexts, show_progress=show_progress, desc=f"answering ({variant})")
        timings[variant] = time.perf_counter() - start
        for q, e, h, ctx, a in zip(qids, embedded, hits, contexts, answers):
            gold_ids = sorted(d for d, r in dataset.qrels[q].items() if r > 0)
            records.append(RagRecord(q, variant, dataset.queries[q], ctx, list(h), a, golds[q], gold_ids, e.thoughts))


def score_records(records: list[RagRecord], corpus: dict[str, str], *, judge: Any = None, show_progress: bool = False) -> None:
    """Fill ``record.scores`` with RAGAS metrics (NaN where RAGAS could not score)."""
    os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")
    from ragas import EvaluationDataset, SingleTurnSample, evaluate
    from ragas.metrics import (
        ExactMatch,
        IDBasedContextPrecision,
        IDBasedContextRecall,
        NonLLMContextPrecisionWithReference,
        NonLLMContextRecall,
        NonLLMStringSimilarity,
        StringPresence,
    )
    from ragas.run_config import RunConfig

    if not records:
        return
    samples = [
        SingleTurnSample(
            user_input=r.question,
            retrieved_contexts=r.contexts,
            retrieved_context_ids=r.context_ids,
            reference_contexts=[corpus[d] for d in r.gold_ids if d in corpus],
            reference_context_ids=r.gold_ids,
            response=r.answer,
            reference=r.gold_answer,
        )
        for r in records
    ]
    metrics: list[Any] = [
        IDBasedContextPrecision(),
        IDBasedContextRecall(),
        NonLLMContextPrecisionWithReference(),
        NonLLMContextRecall(),
        NonLLMStringSimilarity(),
        ExactMatch(),
        StringPresence(),
    ]
    if judge is not None:
        from ragas.metrics import AnswerAccuracy, Faithfulness

        metrics += [Faithfulness(llm=judge), AnswerAccuracy(llm=judge)]
    result = evaluate(
        EvaluationDataset(samples=samples),
        metrics=metrics,
        llm=judge,
        show_progress=show_progress,
        raise_exceptions=False,
        run_config=RunConfig(max_workers=1, max_retries=1, timeout=600),
    )
    names = [m.name for m in metrics]
    for record, row in zip(records, result.scores):
        record.scores = {n: _float(row.get(n)) for n in names}


def _float(value: Any) -> float:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return float("nan")
    return f
