"""Fine-tune the encoder on the user's (query, passage) pairs, thought-aware by design.

With the offline 135M thinker, what thinking adds is limited by what the thinker knows; an
encoder adapted to the user's domain is the part of O1 Embedder's training that pays on a CPU.
This trains any sentence-transformers model contrastively with sentence-transformers' own
``SentenceTransformerTrainer``, ``MultipleNegativesRankingLoss`` (or its cached variant: large
batches in little memory) and a no-duplicates batch sampler (so a query's other positives never
serve as its in-batch negatives):

* anchors are the query strings the embedder will embed: with probability ``thought_dropout``
  the bare query, otherwise ``encoder.query_text(query, thought)`` for one of the thoughts the
  *inference* thinker writes for that query (read through the thought cache, so evaluation
  reuses them and a rerun generates nothing). The draw is made again for every epoch, and
  epoch ``e`` trains on its own draw only.
  ``thought_dropout=1.0`` is the plain fine-tune;
* rows without negatives get hard negatives mined by the base encoder
  (:func:`o1_retriever.training.mining.mine_hard_negatives`);
* a seeded share of the queries (``dev_fraction``) is held out as a dev split; the trainer
  evaluates it after every epoch without and with thinking
  (:class:`~o1_retriever.training.evaluator.ThinkingRetrievalEvaluator`).

The output folder is a plain sentence-transformers model (``--encoder DIR`` everywhere) with
sentence-transformers' model card, an o1-retriever section appended to it, and
``o1_encoder.json``: settings, dev metrics, and the identity a collection fingerprint records
(base model + hash of the trained weights).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from o1_retriever.errors import O1RetrieverError
from o1_retriever.training.anchors import EpochDrawSampler, anchor_rows, dev_evaluator, gather_thoughts
from o1_retriever.training.data import PairRow, query_key, split_dev
from o1_retriever.training.precision import fresh_accelerator_state

__all__ = [  # anchor_rows, EpochDrawSampler and gather_thoughts live in training/anchors.py, importable from here as before
    "EncoderTrainConfig", "EncoderTrainResult", "EncoderTrainingError", "EpochDrawSampler", "LOSSES", "anchor_rows", "gather_thoughts",
    "mix_in_base", "mix_saved_encoder", "model_card_section", "train_encoder", "write_encoder_metadata",
]

if TYPE_CHECKING:
    from o1_retriever.embedder import ThinkingEmbedder

log = logging.getLogger(__name__)

LOSSES = ("mnrl", "cached-mnrl")


class EncoderTrainingError(O1RetrieverError, ValueError):
    """Encoder fine-tuning cannot start with these settings or rows."""


@dataclass
class EncoderTrainConfig:
    """Knobs of :func:`train_encoder`. Defaults were chosen on a dev split of SciFact ``train``
    (see the documentation's training page for the measurements behind each)."""

    # chosen on 20 % of SciFact train held out (161 queries): lr 1e-5 / 3e-5 / 1e-4 reached dev
    # nDCG@10 0.753 / 0.807 / 0.860 after 3 epochs (MiniLM 0.713); 1e-4 gained at every epoch
    epochs: int = 3
    max_steps: int | None = None
    batch_size: int = 32
    learning_rate: float = 1e-4
    warmup: float = 0.1
    weight_decay: float = 0.01
    loss: str = "mnrl"  # mnrl | cached-mnrl
    mini_batch_size: int = 16  # cached-mnrl: texts per forward pass
    loss_temperature: float = 0.05  # cosine / temperature, i.e. sentence-transformers' scale = 20
    negatives: int = 1  # hard negatives per row (mined for rows that have none)
    negative_skip: int = 0  # mined negatives skip this many top-ranked non-positives
    # share of anchors that are the bare query (1.0 = plain fine-tune); on the dev split 1.0 scored
    # best with and without thinking (0.860 / 0.856 against 0.852 / 0.849 at 0.0, 0.844 / 0.836 at 0.25)
    thought_dropout: float = 1.0
    dev_fraction: float = 0.1
    # share of the base encoder's weights mixed back into the trained ones after training
    # (weight-space ensembling, WiSE-FT): trades in-domain gains for robustness out of domain
    base_weight: float = 0.0
    mixed_precision: str = "auto"  # auto (bf16 where the hardware computes it natively) | no | fp16 | bf16
    seed: int = 0

    def check(self) -> None:
        if self.epochs < 1 and not self.max_steps:
            raise EncoderTrainingError("epochs must be >= 1")
        if self.batch_size < 2:
            raise EncoderTrainingError("the batch size must be >= 2 (in-batch negatives)")
        if self.loss not in LOSSES:
            raise EncoderTrainingError(f"unknown loss {self.loss!r}; choose one of {', '.join(LOSSES)}")
        if not 0.0 <= self.thought_dropout <= 1.0:
            raise EncoderTrainingError("thought dropout must be in [0, 1]")
        if not 0.0 <= self.dev_fraction < 1.0:
            raise EncoderTrainingError("the dev fraction must be in [0, 1)")
        if self.loss_temperature <= 0:
            raise EncoderTrainingError("the loss temperature must be > 0")
        if self.negatives < 0 or self.negative_skip < 0:
            raise EncoderTrainingError("negatives and negative skip must be >= 0")
        if not 0.0 <= self.base_weight <= 1.0:
            raise EncoderTrainingError("the base weight must be in [0, 1]")
        if self.mixed_precision not in ("auto", "no", "fp16", "bf16"):
            raise EncoderTrainingError("mixed precision must be auto, no, fp16 or bf16")


@dataclass
class EncoderTrainResult:
    out: Path
    steps: int
    seconds: float
    train_queries: int
    dev_queries: int
    rows_per_epoch: int
    dev_before: dict[str, float] = field(default_factory=dict)
    dev_after: dict[str, float] = field(default_factory=dict)
    dev_history: list[dict[str, float]] = field(default_factory=list)
    identity: str = ""


def train_encoder(
    rows: Sequence[PairRow],
    out: str | Path,
    config: EncoderTrainConfig | None = None,
    *,
    embedder: "ThinkingEmbedder",
    corpus: Sequence[str] | None = None,
    data_name: str = "pairs",
    device: str | None = None,
    show_progress: bool = True,
) -> EncoderTrainResult:
    """Fine-tune the encoder of ``embedder`` (a sentence-transformers model) on ``rows`` and save
    it to ``out``.

    ``embedder`` is the inference embedder: its encoder is the starting point (a private copy is
    trained) and mines hard negatives for rows without any, from ``corpus`` (default: every
    passage the rows name); its thinker (and thought cache, sampling, k, aggregation) writes the
    thoughts of the thought-aware anchors and of the dev metrics with thinking
    (``embedder.thinker=None``: no thoughts; then ``thought_dropout`` must be 1).

    Example (offline; MiniLM, SciFact's train split, thoughts from the llama.cpp thinker)::

        from o1_retriever import EmbedderConfig, ThinkingEmbedder
        from o1_retriever.training import read_pairs
        from o1_retriever.training.encoder import EncoderTrainConfig, train_encoder

        rows = read_pairs("scifact/", "train")
        embedder = ThinkingEmbedder.from_config(EmbedderConfig(thinker="llamacpp:smollm2"))
        result = train_encoder(rows, "scifact-minilm", EncoderTrainConfig(thought_dropout=0.5), embedder=embedder)
        result.dev_after  # {'dev_ndcg@10': ..., 'dev_thinking_ndcg@10': ...}
    """
    run = _prepare(rows, config or EncoderTrainConfig(), embedder, corpus=corpus, device=device, show_progress=show_progress)
    steps, history = _train(run, device=device, show_progress=show_progress)
    return _finish(run, steps, history, Path(out), embedder, data_name)


@dataclass
class _Run:
    """What :func:`_prepare` readied for one training run: the rows and their split, the thoughts,
    the model to train (a private copy of ``encoder``'s), every epoch's draw of anchors, the loss,
    the dev evaluator and its figures before training."""

    config: EncoderTrainConfig
    started: float
    rows: list[PairRow]
    train_rows: list[PairRow]
    dev_rows: list[PairRow]
    encoder: Any
    model: Any
    epochs: int
    n_rows: int
    dataset: Any
    loss: Any
    evaluator: Any
    dev_before: dict[str, float]


def _prepare(rows: Sequence[PairRow], config: EncoderTrainConfig, embedder: "ThinkingEmbedder", *, corpus: Sequence[str] | None, device: str | None, show_progress: bool) -> _Run:
    """Check the settings and rows, split off the dev queries, mine missing negatives, gather the
    thoughts, load a private copy of the encoder, draw every epoch's anchors, set up the loss
    and score the dev split before training."""
    import torch
    from datasets import Dataset
    from sentence_transformers.sentence_transformer import losses

    from o1_retriever.models import load_sentence_transformer
    from o1_retriever.training.mining import mine_hard_negatives

    config.check()
    rows = [replace(r, neg=list(r.neg)) for r in rows]  # mining fills negatives: keep the caller's rows
    if not rows:
        raise EncoderTrainingError("no training rows")
    if config.thought_dropout < 1.0 and embedder.thinker is None:
        raise EncoderTrainingError("thought-aware training (--thought-dropout below 1) needs a thinker; pass --thinker or --thought-dropout 1")
    started = time.perf_counter()
    train_rows, dev_rows = split_dev(rows, config.dev_fraction, seed=config.seed)

    if config.negatives and any(len(r.neg) < config.negatives for r in rows):
        documents = list(dict.fromkeys(corpus if corpus is not None else (t for r in rows for t in (*r.pos, *r.neg))))
        missing = [r for r in rows if not r.neg]
        mine_hard_negatives(missing, documents, embedder.encoder, n=config.negatives, skip=config.negative_skip, show_progress=show_progress)
        short = sum(len(r.neg) < config.negatives for r in rows)
        if short:
            raise EncoderTrainingError(
                f"{short} rows have fewer than {config.negatives} negatives (given rows keep theirs; too small a corpus to mine "
                f"from?): lower --negatives"
            )

    think_for = [r.query for r in train_rows] if config.thought_dropout < 1.0 else []
    if embedder.thinker is not None:
        think_for += [r.query for r in dev_rows]
    thoughts = gather_thoughts(embedder, think_for, show_progress=show_progress) if think_for else {}

    torch.manual_seed(config.seed)
    encoder = embedder.encoder
    name = getattr(encoder, "name", None)
    if not isinstance(name, str) or name == "in-memory" or not hasattr(encoder, "model"):
        raise EncoderTrainingError(f"encoder fine-tuning needs a sentence-transformers encoder loaded by name or folder, got {encoder.identity}")
    model = load_sentence_transformer(name, device=device, shared=False)  # a private copy of the embedder's encoder
    epochs = max(1, config.epochs)
    draws = [anchor_rows(train_rows, thoughts, encoder, dropout=config.thought_dropout, negatives=config.negatives, epoch=e, seed=config.seed) for e in range(epochs)]
    n_rows = len(draws[0]["anchor"])
    if n_rows < config.batch_size:
        raise EncoderTrainingError(f"{n_rows} training rows are fewer than one batch of {config.batch_size}: lower --batch-size")
    # every epoch's draw of anchors, one block after the other; epoch e trains on block e only
    dataset = Dataset.from_dict({column: [v for draw in draws for v in draw[column]] for column in draws[0]})

    scale = 1.0 / config.loss_temperature
    if config.loss == "cached-mnrl":
        loss = losses.CachedMultipleNegativesRankingLoss(model, scale=scale, mini_batch_size=config.mini_batch_size, show_progress_bar=False)
    else:
        loss = losses.MultipleNegativesRankingLoss(model, scale=scale)

    evaluator = dev_evaluator(dev_rows, rows, thoughts if embedder.thinker is not None else None, embedder.aggregation.value, encoder) if dev_rows else None
    dev_before = evaluator(model, epoch=0, steps=0) if evaluator else {}
    return _Run(config, started, rows, train_rows, dev_rows, encoder, model, epochs, n_rows, dataset, loss, evaluator, dev_before)


def _train(run: _Run, *, device: str | None, show_progress: bool) -> tuple[int, list[dict[str, float]]]:
    """Train ``run.model`` with sentence-transformers' trainer (accelerate's state fresh, this
    run's precision): (steps taken, the dev figures after each evaluation)."""
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments

    from o1_retriever.models import default_device, resolve_dtype

    config = run.config
    device = device or default_device()
    precision = config.mixed_precision
    if precision == "auto":  # bf16 autocast doubles training speed on a CPU with AVX512-BF16/AMX
        precision = "bf16" if resolve_dtype("auto", device) == "bfloat16" else "no"
    fresh_accelerator_state()  # the arguments set up accelerate's state with this run's precision
    with tempfile.TemporaryDirectory(prefix="o1-encoder-train-") as scratch:
        args = SentenceTransformerTrainingArguments(
            output_dir=scratch,
            num_train_epochs=run.epochs,
            max_steps=config.max_steps or -1,
            per_device_train_batch_size=config.batch_size,
            learning_rate=config.learning_rate,
            warmup_steps=config.warmup,
            weight_decay=config.weight_decay,
            lr_scheduler_type="linear",
            batch_sampler=functools.partial(EpochDrawSampler, block_rows=run.n_rows),
            seed=config.seed,
            data_seed=config.seed,
            bf16=precision == "bf16",
            fp16=precision == "fp16",
            eval_strategy="epoch" if run.evaluator else "no",
            save_strategy="no",
            logging_steps=max(1, math.ceil(run.n_rows / config.batch_size) // 4),
            report_to="none",
            disable_tqdm=not show_progress,
            use_cpu=device == "cpu",
        )
        trainer = SentenceTransformerTrainer(model=run.model, args=args, train_dataset=run.dataset, loss=run.loss, evaluator=run.evaluator)
        trainer.train()
        steps = trainer.state.global_step
        history = [
            {k.removeprefix("eval_"): v for k, v in entry.items() if k.startswith("eval_dev") or k in ("epoch", "step")}
            for entry in trainer.state.log_history
            if any(k.startswith("eval_dev") for k in entry)
        ]
    return steps, history


def _finish(run: _Run, steps: int, history: list[dict[str, float]], out: Path, embedder: "ThinkingEmbedder", data_name: str) -> EncoderTrainResult:
    """Mix the base back in (``base_weight``), score the final weights on the dev split unless
    the trainer just did, save the model with its identity, metadata and card."""
    model, evaluator, config = run.model, run.evaluator, run.config
    model.eval()
    dev_after: dict[str, float] = {}
    if config.base_weight:
        mix_in_base(model, run.encoder.model, config.base_weight)
        if evaluator:  # the saved weights are the mix: score them
            dev_after = evaluator(model, epoch=run.epochs, steps=steps)
    elif history and history[-1]["step"] == steps:  # the trainer evaluated the final weights already
        dev_after = {k: v for k, v in history[-1].items() if k.startswith("dev")}
    elif evaluator:  # the last steps ended between two evaluations
        dev_after = evaluator(model, epoch=run.epochs, steps=steps)
        history.append({**dev_after, "epoch": float(run.epochs), "step": steps})

    model.save(str(out))
    identity = _identity(out, run.encoder)
    result = EncoderTrainResult(
        out=out,
        steps=steps,
        seconds=time.perf_counter() - run.started,
        train_queries=len({query_key(r.query) for r in run.train_rows}),
        dev_queries=len({query_key(r.query) for r in run.dev_rows}),
        rows_per_epoch=run.n_rows,
        dev_before=run.dev_before,
        dev_after=dev_after,
        dev_history=history,
        identity=identity,
    )
    _write_metadata(out, result, config, embedder, run.encoder, data_name)
    return result


def mix_in_base(model: Any, base: Any, weight: float) -> None:
    """Weight-space ensembling (WiSE-FT, Wortsman et al. 2022): every floating-point weight of
    ``model`` becomes ``(1 - weight) * trained + weight * base``, in place. ``base`` is the model
    training started from (same architecture). Fine-tuning on one domain moves the weights away
    from what the base model knew about others; mixing part of the base back recovers much of that
    out-of-domain quality for part of the in-domain gain."""
    import torch

    base_state = base.state_dict()
    with torch.no_grad():
        for key, value in model.state_dict().items():
            if not torch.is_floating_point(value):
                continue
            if key not in base_state or base_state[key].shape != value.shape:
                raise EncoderTrainingError(f"the base model has no weight {key!r} of shape {tuple(value.shape)}: not the model training started from")
            value.mul_(1.0 - weight).add_(base_state[key].to(device=value.device, dtype=value.dtype), alpha=weight)


def mix_saved_encoder(trained: str | Path, base: str, weight: float, out: str | Path, *, device: str | None = None) -> str:
    """A folder saved by ``train --mode encoder`` with a share ``weight`` of its ``base`` model
    (refused unless it is the recorded base) mixed back (:func:`mix_in_base`), saved to ``out``
    as ``--base-weight WEIGHT`` would after the same training, with the identity, metadata and
    card training writes (``dev.after`` empty: the dev figures are not of the mix). Returns the identity."""
    from o1_retriever.encoders.sentence_transformers import TRAINED_ENCODER_FILE, SentenceTransformerEncoder
    from o1_retriever.models import load_sentence_transformer

    if not 0.0 < weight <= 1.0:
        raise EncoderTrainingError(f"the base weight must be in (0, 1], got {weight}")
    trained = Path(trained)
    try:
        meta = json.loads((trained / TRAINED_ENCODER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EncoderTrainingError(f"{trained}: not an encoder saved by o1-retriever train --mode encoder ({exc})") from None
    if meta["settings"].get("base_weight"):
        raise EncoderTrainingError(f"{trained} is already a mix (base weight {meta['settings']['base_weight']}): mix the trained folder")
    base_encoder = SentenceTransformerEncoder(base, device=device)
    if base_encoder.identity != meta["base"]:
        raise EncoderTrainingError(f"{base} is {base_encoder.identity}, but {trained} was trained from {meta['base']}")
    model = load_sentence_transformer(str(trained), device=device, shared=False)
    mix_in_base(model, base_encoder.model, weight)
    out = Path(out)
    model.save(str(out))
    meta = {**meta, "identity": _identity(out, base_encoder), "settings": {**meta["settings"], "base_weight": weight}, "dev": {**meta["dev"], "after": {}}}
    write_encoder_metadata(out, meta)
    return meta["identity"]


def _identity(out: Path, base_encoder: Any) -> str:
    """``<base identity>+o1-ft:<hash of the saved weights>``: moving or renaming the folder keeps
    it, retraining changes it."""
    digest = hashlib.sha256()
    for path in sorted(out.rglob("*.safetensors")) or sorted(out.rglob("*.bin")):
        digest.update(path.relative_to(out).as_posix().encode())
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return f"{base_encoder.identity}+o1-ft:{digest.hexdigest()[:16]}"


def _write_metadata(out: Path, result: EncoderTrainResult, config: EncoderTrainConfig, embedder: "ThinkingEmbedder", base_encoder: Any, data_name: str) -> None:
    thinker = embedder.thinker
    thoughts = None
    if thinker is not None:
        thoughts = {
            "thinker": thinker.identity,
            "prompt": thinker.prompt.name,
            "k": embedder.thoughts,
            "sampling": embedder.sampling.as_dict(),
            "aggregation": embedder.aggregation.value,
        }
    meta = {
        "identity": result.identity,
        "base": base_encoder.identity,
        "data": {"source": data_name, "train_queries": result.train_queries, "dev_queries": result.dev_queries, "rows_per_epoch": result.rows_per_epoch},
        "settings": asdict(config),
        "thoughts": thoughts,
        "steps": result.steps,
        "seconds": round(result.seconds, 1),
        "dev": {"before": result.dev_before, "after": result.dev_after, "history": result.dev_history},
    }
    write_encoder_metadata(out, meta)


def write_encoder_metadata(out: Path, meta: dict[str, Any], *sections: str) -> None:
    """The one place a trained encoder's ``o1_encoder.json`` and model card are written: the card
    is sentence-transformers' part, :func:`model_card_section` and ``sections`` (replaced, not
    appended, when a folder is described again)."""
    from o1_retriever.encoders.sentence_transformers import TRAINED_ENCODER_FILE

    (out / TRAINED_ENCODER_FILE).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    card = out / "README.md"
    text = card.read_text(encoding="utf-8") if card.exists() else ""
    base_card = text.split("\n## o1-retriever", 1)[0]  # sentence-transformers' part
    card.write_text("\n\n".join([base_card.rstrip(), model_card_section(meta), *sections]) + "\n", encoding="utf-8")


def model_card_section(meta: dict[str, Any]) -> str:
    """The o1-retriever part of the model card: base, data, thoughts, steps, dev metrics."""
    data, settings, dev = meta["data"], meta["settings"], meta["dev"]
    lines = [
        "## o1-retriever",
        "",
        f"Fine-tuned by `{meta.get('command', 'o1-retriever train --mode encoder')}` from **{meta['base']}**.",
        "",
        f"- identity (recorded in collection fingerprints): `{meta['identity']}`",
        f"- data: `{data['source']}`, {data['train_queries']} training queries ({data['rows_per_epoch']} rows per epoch), "
        f"{data['dev_queries']} dev queries held out",
        f"- training: {meta['steps']} steps, {settings['epochs']} epochs, batch {settings['batch_size']}, lr {settings['learning_rate']}, "
        f"{settings['loss']} (temperature {settings['loss_temperature']}), {settings['negatives']} hard negative(s) per row, "
        f"thought dropout {settings['thought_dropout']}, {meta['seconds']:.0f} s",
    ]
    if settings.get("base_weight"):
        lines.append(f"- weights: {1 - settings['base_weight']:g} x trained + {settings['base_weight']:g} x base (WiSE-FT); the dev figures below are of this mix")
    if meta["thoughts"]:
        t = meta["thoughts"]
        lines.append(f"- thoughts: {t['k']} per query from `{t['thinker']}` (prompt `{t['prompt']}`), aggregation `{t['aggregation']}`")
    if dev["after"]:
        lines += ["", "Dev split (the held-out training queries against every passage the pairs name):", "", "| | " + " | ".join(dev["after"]) + " |", "|---" * (len(dev["after"]) + 1) + "|"]
        for label, values in (("before training", dev["before"]), ("after training", dev["after"])):
            lines.append(f"| {label} | " + " | ".join(f"{values.get(k, float('nan')):.4f}" for k in dev["after"]) + " |")
    lines += ["", "Use it with `o1-retriever ... --encoder PATH`, `EmbedderConfig(encoder=PATH)` or the adapters' `encoder=PATH`."]
    return "\n".join(lines)
