"""Adapt the encoder to a corpus without labels: think at index time (``o1-retriever adapt``).

A small thinker knows few facts but reads fairly: given a chunk, it writes questions the chunk
answers (GPL's query generation, Wang et al. 2022, with Promptagator's round-trip filter). The
questions are filtered (:mod:`o1_retriever.training.questions`) and the encoder is fine-tuned
on (question, chunk, mined hard negative) with the encoder trainer
(:func:`o1_retriever.training.encoder.train_encoder`): its dev split is drawn from the generated
questions, labelled pairs can be added, the base can be mixed back. The thinking is done once,
when the corpus is indexed; searches pay nothing for it.

The output folder is an encoder folder (``--encoder DIR`` everywhere) holding
``questions.jsonl`` too; its model card says it was adapted without labels, on what corpus,
from how many questions, what share the filters kept, and its dev figures.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from o1_retriever.errors import SourceError
from o1_retriever.training.data import PairRow
from o1_retriever.training.encoder import EncoderTrainConfig, EncoderTrainingError, EncoderTrainResult, train_encoder, write_encoder_metadata
from o1_retriever.training.questions import QUESTIONS_FILE, Question, filter_questions, filter_summary, generate_questions, read_questions, write_questions

if TYPE_CHECKING:
    from o1_retriever.embedder import ThinkingEmbedder
    from o1_retriever.thinkers.base import SamplingConfig, Thinker


@dataclass
class AdaptConfig:
    """Knobs of :func:`adapt` besides the trainer's (``train``). Defaults: see the training
    guide's "no labels?" section for the dev measurements behind them."""

    questions_per_chunk: int = 2
    top_r: int = 5  # round-trip: a question is kept when its chunk is in the base encoder's top r (0: off)
    batch_chunks: int = 8  # chunks per thinker call
    # questions for a seeded random sample of this many chunks only (None: every chunk): a large
    # corpus adapts in bounded time; the round trip and the negatives still rank all chunks
    max_chunks: int | None = None
    train: EncoderTrainConfig = field(default_factory=lambda: EncoderTrainConfig(epochs=1, negatives=1))

    def check(self) -> None:
        if self.questions_per_chunk < 1:
            raise EncoderTrainingError("--questions-per-chunk must be >= 1")
        if self.max_chunks is not None and self.max_chunks < 1:
            raise EncoderTrainingError("--max-chunks must be >= 1")
        if self.top_r < 0:
            raise EncoderTrainingError("--top-r must be >= 0 (0 turns the round-trip filter off)")
        self.train.check()


@dataclass
class AdaptResult:
    out: Path
    chunks: int
    filtering: dict[str, Any]
    generation: dict[str, Any]
    training: EncoderTrainResult
    seconds: float


def read_chunks(source: str | Path, *, chunk_size: int = 1200) -> dict[str, str]:
    """``{chunk id: text}`` of anything ``index`` accepts (a BEIR folder's corpus only: its
    queries and qrels are never opened), chunked as ``index`` chunks it."""
    from o1_retriever.index import SourceReport, read_source

    report = SourceReport()
    try:
        chunks = {doc.id: doc.text for doc in read_source(source, report, chunk_size=chunk_size, overlap=min(150, chunk_size // 4))}
    except OSError as exc:
        raise SourceError(f"{source}: cannot be read ({exc.strerror or exc})") from None
    if not chunks:
        raise SourceError(f"{source}: no documents found (expected .txt/.md files, a .jsonl corpus or a BEIR folder)")
    return chunks


def read_collection_chunks(collection: Any, page: int = 1000) -> dict[str, str]:
    """``{chunk id: text}`` of every chunk of an open Chroma collection (read only)."""
    from o1_retriever.index.client import chroma_call, client_of

    client = client_of(collection)
    call = (lambda fn: chroma_call(client, fn)) if client is not None else (lambda fn: fn())
    count = call(collection.count)
    chunks: dict[str, str] = {}
    for offset in range(0, count, page):
        got = call(lambda: collection.get(include=["documents"], limit=page, offset=offset))
        chunks.update((i, d) for i, d in zip(got["ids"], got["documents"] or []) if d)
    if not chunks:
        raise SourceError(f"collection {collection.name!r} holds no chunks with text")
    return chunks


def sample_chunks(chunks: dict[str, str], n: int | None, *, seed: int = 0) -> dict[str, str]:
    """A seeded random sample of ``n`` chunks, in corpus order (all of them when ``n`` is None or
    not smaller); a larger ``n`` with the same seed keeps the smaller sample's chunks."""
    if n is None or n >= len(chunks):
        return chunks
    order = list(chunks)
    random.Random(seed).shuffle(order)
    chosen = set(order[:n])
    return {c: t for c, t in chunks.items() if c in chosen}


def prepare_questions(
    chunks: dict[str, str],
    out: str | Path,
    config: AdaptConfig,
    *,
    encoder: Any,
    thinker: "Thinker | None" = None,
    sampling: "SamplingConfig | None" = None,
    questions: str | Path | None = None,
    show_progress: bool = True,
) -> tuple[list[Question], dict[str, Any], Any]:
    """Generate (resuming from ``out/questions.jsonl``) or copy in the questions, filter them and
    write the file with each question's verdict. Returns ``(questions, generation stats, chunk
    vectors)`` (the vectors, in the order of ``chunks``, serve mining)."""
    from o1_retriever.thinkers.base import SamplingConfig

    config.check()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / QUESTIONS_FILE
    generation: dict[str, Any] = {"written": 0, "skipped": 0, "seconds": 0.0}
    if questions is not None:
        given = Path(questions)
        if given.resolve() != path.resolve():
            read_questions(given)  # refuse a malformed file before copying it
            shutil.copyfile(given, path)
    else:
        if thinker is None:
            raise EncoderTrainingError("generating questions needs a thinker (or give --questions FILE)")
        sampling = sampling or SamplingConfig(max_new_tokens=32)
        thinker.check(config.questions_per_chunk, sampling)  # a thinker that cannot think is refused before any work
        generation = generate_questions(sample_chunks(chunks, config.max_chunks, seed=config.train.seed), path, thinker, n=config.questions_per_chunk, sampling=sampling, batch=config.batch_chunks, show_progress=show_progress)
        generation.update(thinker=thinker.identity, prompt=thinker.prompt.key, sampling=sampling.as_dict())

    written = read_questions(path)
    if questions is None:  # only this source's chunks (the file may hold an earlier source's)
        written = [q for q in written if q.chunk_id in chunks]
    vectors = filter_questions(written, chunks, encoder, top_r=config.top_r, show_progress=show_progress)
    write_questions(written, path)
    return written, generation, vectors


def adapt(
    chunks: dict[str, str],
    out: str | Path,
    config: AdaptConfig | None = None,
    *,
    embedder: "ThinkingEmbedder",
    thinker: "Thinker | None" = None,
    sampling: "SamplingConfig | None" = None,
    questions: str | Path | None = None,
    pairs: Sequence[PairRow] = (),
    corpus_name: str = "corpus",
    device: str | None = None,
    show_progress: bool = True,
) -> AdaptResult:
    """Generate (or read, with ``questions``) questions for ``chunks``, filter them, and train
    ``embedder``'s encoder on the kept ones (plus labelled ``pairs``) into ``out``.

    Generation resumes from ``out/questions.jsonl``; ``thinker`` is needed only for chunks that
    have no questions there yet. ``embedder`` (no thinker needed) holds the base encoder, which
    filters (round trip) and mines the hard negatives.

    Example (offline: SmolLM2 through llama.cpp writes the questions, MiniLM is adapted)::

        from o1_retriever import EmbedderConfig, ThinkingEmbedder
        from o1_retriever.factory import build_thinker
        from o1_retriever.prompts import QUESTION_PROMPT
        from o1_retriever.thinkers.base import SamplingConfig
        from o1_retriever.training.adapt import adapt, read_chunks

        chunks = read_chunks("my-notes/")
        embedder = ThinkingEmbedder.from_config(EmbedderConfig(thinker="none"))
        thinker = build_thinker(EmbedderConfig(thinker="llamacpp:smollm2"), prompt=QUESTION_PROMPT)
        result = adapt(chunks, "notes-minilm", embedder=embedder, thinker=thinker, sampling=SamplingConfig(max_new_tokens=32))
        result.filtering["kept_share"], result.training.dev_after
    """
    from o1_retriever.training.mining import mine_hard_negatives

    config = config or AdaptConfig()
    started = time.perf_counter()
    encoder = embedder.encoder
    written, generation, vectors = prepare_questions(chunks, out, config, encoder=encoder, thinker=thinker, sampling=sampling,
                                                     questions=questions, show_progress=show_progress)
    summary = filter_summary(written)
    if not any(q.kept for q in written) and not pairs:
        raise EncoderTrainingError(f"no question survived the filters ({summary['removed']}); see {Path(out) / QUESTIONS_FILE}")

    rows, dev = training_rows(written, chunks, pairs, config.train.dev_fraction, seed=config.train.seed)
    corpus = list(chunks.values())
    if config.train.negatives:  # mined against the vectors the round trip already computed
        mine_hard_negatives([r for r in rows if not r.neg], corpus, encoder, n=config.train.negatives,
                            skip=config.train.negative_skip, corpus_vectors=vectors, show_progress=show_progress)
    training = train_encoder(rows + dev, out, config.train, embedder=embedder, corpus=corpus, data_name=f"questions generated for {corpus_name}",
                             device=device, show_progress=show_progress)
    result = AdaptResult(Path(out), len(chunks), summary, generation, training, time.perf_counter() - started)
    _describe(Path(out), result, config, corpus_name, labelled=len(pairs))
    return result


def training_rows(questions: Sequence[Question], chunks: dict[str, str], pairs: Sequence[PairRow], dev_fraction: float, *,
                  seed: int = 0) -> tuple[list[PairRow], list[PairRow]]:
    """``(training rows, dev rows)`` of the trainer: the dev rows are every real question of the
    chunks :func:`draw_dev_chunks` draws (round-trip failures included), the training rows the
    *kept* questions of the other chunks plus the labelled ``pairs``. Each row names its side, so
    the trainer's split is this one."""
    def row(q: Question, split: str | None) -> PairRow:
        return PairRow(query=q.question, pos=[chunks[q.chunk_id]], id=f"{q.chunk_id}#{q.sample}", split=split)

    dev_chunks = draw_dev_chunks(questions, dev_fraction, seed=seed)
    dev = [row(q, "dev") for q in questions if q.chunk_id in dev_chunks and _dev_candidate(q)]
    side = "train" if dev else None
    rows = [row(q, side) for q in questions if q.kept and q.chunk_id not in dev_chunks]
    rows += [PairRow(query=r.query, pos=list(r.pos), neg=list(r.neg), id=r.id, split=side) for r in pairs]
    if not rows:
        kept = sum(q.kept for q in questions)
        raise EncoderTrainingError(f"no question is left for training once the dev split is drawn ({kept} kept); lower --dev-fraction or write more questions")
    return rows, dev


def _dev_candidate(question: Question) -> bool:
    """A question the dev split may hold: a real question, whatever the round trip said of it."""
    return question.kept or (question.reason or "").startswith("round-trip")


def draw_dev_chunks(questions: Sequence[Question], fraction: float, *, seed: int = 0) -> set[str]:
    """The chunks whose questions form the dev split: a seeded ``fraction`` of the chunks that have
    a real question, drawn *before* the round-trip filter. Questions that passed the round trip
    score near 1.0 by construction (their chunk is already in the base encoder's top r), so a dev
    split drawn after it cannot tell settings apart; this one keeps the questions the base encoder
    finds hard. Whole chunks go to one side, so no chunk is trained on and tested on."""
    candidates = sorted({q.chunk_id for q in questions if _dev_candidate(q)})
    n_dev = round(len(candidates) * fraction)
    if fraction <= 0 or n_dev == 0 or n_dev >= len(candidates):
        return set()
    random.Random(seed).shuffle(candidates)
    return set(candidates[:n_dev])


def _describe(out: Path, result: AdaptResult, config: AdaptConfig, corpus_name: str, labelled: int) -> None:
    """Record the adaptation in ``o1_encoder.json`` and the model card."""
    from o1_retriever.encoders.sentence_transformers import TRAINED_ENCODER_FILE

    meta = json.loads((out / TRAINED_ENCODER_FILE).read_text(encoding="utf-8"))
    meta["command"] = "o1-retriever adapt"
    meta["adaptation"] = {
        "labels": "none" if not labelled else f"{labelled} labelled pairs added",
        "corpus": corpus_name,
        "chunks": result.chunks,
        "questions_per_chunk": config.questions_per_chunk,
        "max_chunks": config.max_chunks,
        "top_r": config.top_r,
        "generation": result.generation,
        "filtering": result.filtering,
        "dev_questions": result.training.dev_queries,
        "seconds": round(result.seconds, 1),
    }
    write_encoder_metadata(out, meta, adaptation_section(meta["adaptation"]))


def adaptation_section(info: dict[str, Any]) -> str:
    f = info["filtering"]
    removed = ", ".join(f"{n} {reason}" for reason, n in sorted(f["removed"].items())) or "none"
    without = "without labels" if info["labels"] == "none" else f"without labels for the corpus ({info['labels']})"
    gen = info["generation"]
    by = f" by `{gen['thinker']}`" if gen.get("thinker") else " (read from a given questions file)"
    sample = f" (a seeded sample of {info['max_chunks']} of them)" if info.get("max_chunks") and info["max_chunks"] < info["chunks"] else ""
    return "\n".join(
        [
            "### Adapted without labels",
            "",
            f"Adapted {without} to **{info['corpus']}** ({info['chunks']} chunks): {info['questions_per_chunk']} questions per chunk{sample} "
            f"written{by}; {f['written']} questions, {f['kept']} kept ({100 * f['kept_share']:.1f} %) by the filters "
            f"(round trip: the chunk in the base encoder's top {info['top_r']}; removed: {removed}). "
            f"The dev figures above are on {info.get('dev_questions', 'the')} held-out generated questions of other chunks, drawn before the "
            f"round-trip filter (so they include questions the base encoder finds hard). Questions: `{QUESTIONS_FILE}` in this folder. "
            f"{info['seconds'] / 60:.1f} minutes end to end.",
        ]
    )
