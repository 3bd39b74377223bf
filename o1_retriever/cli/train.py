"""``o1-retriever synthesize`` and ``o1-retriever train``."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from o1_retriever.cli.app import command, err
from o1_retriever.config import EmbedderConfig
from o1_retriever.errors import ModelLoadError

_SYN = "Synthesis"
_TRAIN = "Training"


@command(name="synthesize", models=False)
def synthesize_cmd(
    pairs: Annotated[Path, typer.Argument(help="A BEIR folder (with --split) or a jsonl of {query, pos: [...], neg: [...]}.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output jsonl (appended; rerun to resume).")] = Path("thoughts.jsonl"),
    split: Annotated[str, typer.Option(help="BEIR qrels split.", rich_help_panel=_SYN)] = "train",
    limit: Annotated[Optional[int], typer.Option(min=1, help="Use this many rows (a seeded sample).", rich_help_panel=_SYN)] = None,
    generator: Annotated[str, typer.Option(help="Generator LLM: 'smollm2', a HF id/folder, 'llamacpp:GGUF' (llamacpp:smollm2: fast on a CPU), or an OpenAI-compatible http(s)://.../v1 URL.", rich_help_panel=_SYN)] = "smollm2",
    generator_model: Annotated[Optional[str], typer.Option(help="Model name on an OpenAI-compatible server (key from $OPENAI_API_KEY).", rich_help_panel=_SYN)] = None,
    candidates: Annotated[int, typer.Option(min=1, help="Candidate thoughts per query.", rich_help_panel=_SYN)] = 3,
    shots: Annotated[int, typer.Option(min=0, help="Few-shot (query, positive) pairs from other rows.", rich_help_panel=_SYN)] = 3,
    shot_words: Annotated[int, typer.Option(min=1, help="Words kept of each few-shot passage.", rich_help_panel=_SYN)] = 60,
    max_new_tokens: Annotated[int, typer.Option(min=1, help="Tokens per candidate thought.", rich_help_panel=_SYN)] = 128,
    temperature: Annotated[float, typer.Option(min=0.0, help="Sampling temperature.", rich_help_panel=_SYN)] = 0.7,
    voters: Annotated[str, typer.Option(help="Committee: comma list of bm25, minilm, sentence-transformers ids, last-token:SPEC.", rich_help_panel=_SYN)] = "minilm,last-token:smollm2,bm25",
    vote: Annotated[str, typer.Option(help="soft (sum of per-voter softmax, paper) or majority.", rich_help_panel=_SYN)] = "soft",
    negatives: Annotated[int, typer.Option(min=0, help="Hard negatives to mine for rows without any (0 = none).", rich_help_panel=_SYN)] = 15,
    mine_encoder: Annotated[str, typer.Option(help="Encoder that mines hard negatives.", rich_help_panel=_SYN)] = "minilm",
    batch: Annotated[int, typer.Option(min=1, help="Rows per generation + vote batch (each batch is written at once).", rich_help_panel=_SYN)] = 16,
    seed: Annotated[int, typer.Option(help="Seed of sampling, few-shot draws and --limit.")] = 0,
    device: Annotated[Optional[str], typer.Option(help="cpu, cuda, ...")] = None,
) -> None:
    """Exploration-Refinement: a generator writes candidate thoughts per query, a retrieval
    committee keeps the one closest to the positive passage."""
    from o1_retriever.config import EmbedderConfig
    from o1_retriever.factory import build_encoder, build_thinker
    from o1_retriever.thinkers.base import SamplingConfig
    from o1_retriever.training.committee import VOTE_MODES, build_committee
    from o1_retriever.training.data import read_beir_corpus, read_pairs
    from o1_retriever.training.mining import mine_hard_negatives
    from o1_retriever.training.synthesis import SYNTHESIS_PROMPT, done_ids, synthesize

    if vote not in VOTE_MODES:
        raise ModelLoadError(f"unknown --vote {vote!r}; choose one of {', '.join(VOTE_MODES)}")
    rows = read_pairs(pairs, split, limit=limit, seed=seed)
    finished = done_ids(out)
    todo = [r for r in rows if r.id not in finished]
    if not todo:
        err.print(f"[green]nothing to do:[/] all {len(rows)} rows are already in {out}")
        return
    sampling = SamplingConfig(max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)
    with err.status("loading the generator and the committee"):
        if generator in ("", "none"):
            raise ModelLoadError("synthesis needs a --generator")
        if generator.startswith(("http://", "https://")) and not generator_model:
            raise ModelLoadError("an OpenAI-compatible generator URL needs --generator-model")
        config = EmbedderConfig(thinker=generator, thinker_model=generator_model, device=device)
        thinker = build_thinker(config, prompt=SYNTHESIS_PROMPT, max_query_tokens=2048)
        thinker.check(candidates, sampling)  # a generator that cannot write is refused before mining or voting
        committee = build_committee(voters, vote, device=device)
    try:
        if negatives and any(not r.neg for r in todo):
            corpus = list(read_beir_corpus(pairs).values()) if pairs.is_dir() else sorted({p for r in rows for p in r.pos})
            with err.status("loading the mining encoder"):
                miner = build_encoder(EmbedderConfig(encoder=mine_encoder, device=device))
            mine_hard_negatives(todo, corpus, miner, n=negatives)
        stats = synthesize(rows, out, thinker, committee, candidates=candidates, shots=shots, shot_words=shot_words, sampling=sampling, batch_rows=batch, seed=seed)
    finally:
        thinker.close()
    err.print(f"[green]synthesized[/] {stats['written']} rows into {out} ({stats['skipped']} already there)")


MODES = ("encoder", "joint", "thinker")
_ENC = "Training: --mode encoder"
_LM = "Training: --mode joint / thinker"


@command(name="train")
def train_cmd(
    data: Annotated[Path, typer.Argument(help="--mode encoder: (query, passage) pairs, a BEIR folder (with --split) or a jsonl of {query, pos: [...], neg: [...]}. --mode joint / thinker: rows written by 'o1-retriever synthesize'.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder: a sentence-transformers model (encoder) or a Hugging Face causal LM (joint, thinker).")],
    mode: Annotated[str, typer.Option(help="encoder (fine-tune the encoder on the pairs, thought-aware), joint (unified model: thinking + embedding) or thinker (behaviour cloning only).", rich_help_panel=_TRAIN)] = "encoder",
    split: Annotated[str, typer.Option(help="BEIR qrels split to train on (a BEIR folder as DATA).", rich_help_panel=_TRAIN)] = "train",
    epochs: Annotated[Optional[float], typer.Option(min=0.0, help="Epochs [encoder: 3, joint/thinker: 1].", rich_help_panel=_TRAIN)] = None,
    max_steps: Annotated[Optional[int], typer.Option(min=1, help="Stop after this many steps (overrides --epochs).", rich_help_panel=_TRAIN)] = None,
    batch_size: Annotated[Optional[int], typer.Option(min=1, help="Rows per step [encoder: 32, joint/thinker: 8].", rich_help_panel=_TRAIN)] = None,
    lr: Annotated[Optional[float], typer.Option(min=0.0, help="Learning rate, linear schedule [encoder: 1e-4, joint/thinker: 1e-4].", rich_help_panel=_TRAIN)] = None,
    warmup: Annotated[float, typer.Option(min=0.0, max=1.0, help="Warm-up fraction.", rich_help_panel=_TRAIN)] = 0.1,
    loss_temperature: Annotated[Optional[float], typer.Option(min=1e-6, help="Temperature of the contrastive loss (cosine / t) [encoder: 0.05, joint: 0.02].", rich_help_panel=_TRAIN)] = None,
    thought_dropout: Annotated[Optional[float], typer.Option(min=0.0, max=1.0, help="Share of queries trained without a thought [encoder: 1.0 = bare queries only, joint: 0.1].", rich_help_panel=_TRAIN)] = None,
    mixed_precision: Annotated[Optional[str], typer.Option(help="auto | no | fp16 | bf16 [encoder: auto = bf16 where the hardware computes it natively, joint/thinker: no].", rich_help_panel=_TRAIN)] = None,
    dev_fraction: Annotated[float, typer.Option(min=0.0, max=0.9, help="Share of the training queries held out as a dev split (metrics without and with thinking after every epoch; 0 = train on all).", rich_help_panel=_ENC)] = 0.1,
    negatives: Annotated[int, typer.Option(min=0, help="Hard negatives per row, mined with the base encoder for rows that have none.", rich_help_panel=_ENC)] = 1,
    loss: Annotated[str, typer.Option(help="mnrl (MultipleNegativesRankingLoss) or cached-mnrl (its cached variant: big batches in little memory).", rich_help_panel=_ENC)] = "mnrl",
    base_weight: Annotated[float, typer.Option(min=0.0, max=1.0, help="Share of the base encoder's weights mixed back after training (WiSE-FT): less in-domain gain, less loss on other domains.", rich_help_panel=_ENC)] = 0.0,
    base: Annotated[str, typer.Option(help="Base causal LM: 'smollm2' or a HF id/folder (the encoder mode trains --encoder).", rich_help_panel=_LM)] = "smollm2",
    group_size: Annotated[int, typer.Option(min=1, help="Documents per query: 1 positive + hard negatives.", rich_help_panel=_LM)] = 16,
    contrastive_weight: Annotated[float, typer.Option(min=0.0, help="Weight of the contrastive loss.", rich_help_panel=_LM)] = 0.8,
    lm_weight: Annotated[float, typer.Option(min=0.0, help="Weight of the thought LM loss.", rich_help_panel=_LM)] = 0.2,
    lora: Annotated[bool, typer.Option("--lora/--full", help="LoRA adapters (peft) or full fine-tuning.", rich_help_panel=_LM)] = True,
    lora_r: Annotated[int, typer.Option(min=1, help="LoRA rank.", rich_help_panel=_LM)] = 32,
    lora_alpha: Annotated[int, typer.Option(min=1, help="LoRA alpha.", rich_help_panel=_LM)] = 64,
    gradient_checkpointing: Annotated[bool, typer.Option("--gradient-checkpointing/--no-gradient-checkpointing", help="Recompute activations (less memory).", rich_help_panel=_LM)] = True,
    max_document_tokens: Annotated[int, typer.Option(min=8, help="Document tokens in training.", rich_help_panel=_LM)] = 192,
    max_thought_tokens: Annotated[int, typer.Option(min=1, help="Thought tokens in training.", rich_help_panel=_LM)] = 128,
    save: Annotated[str, typer.Option(help="merged (a plain model folder) or adapter (LoRA adapter only).", rich_help_panel=_LM)] = "merged",
    *,
    config: EmbedderConfig,
) -> None:
    """Train on your data. --mode encoder (the default) fine-tunes the encoder on (query, passage)
    pairs, thought-aware: a share of the anchors carry the thoughts the inference thinker
    (--thinker, --thoughts, ...) writes. joint trains a unified O1 model (thought LM loss +
    InfoNCE at <emb>), thinker a thinker (behaviour cloning of the committee's thoughts); both
    need rows from 'o1-retriever synthesize'. Multi-GPU: run under 'accelerate launch'."""
    if mode not in MODES:
        raise ModelLoadError(f"unknown --mode {mode!r}; choose one of {', '.join(MODES)}")
    if config.model:
        raise ModelLoadError("train does not use --model: give the starting point with --encoder (encoder mode) or --base (joint, thinker)")
    if mode == "encoder":
        _train_encoder(data, out, split, config, epochs=epochs, max_steps=max_steps, batch_size=batch_size, lr=lr, warmup=warmup,
                       loss_temperature=loss_temperature, thought_dropout=thought_dropout, mixed_precision=mixed_precision,
                       dev_fraction=dev_fraction, negatives=negatives, loss=loss, base_weight=base_weight)
        return
    from o1_retriever.training.synthesis import read_synthesized
    from o1_retriever.training.trainer import TrainConfig, train

    defaults = TrainConfig()
    train_config = TrainConfig(
        mode=mode, base=base, epochs=defaults.epochs if epochs is None else epochs, max_steps=max_steps,
        batch_size=batch_size or defaults.batch_size, learning_rate=defaults.learning_rate if lr is None else lr, warmup=warmup,
        temperature=loss_temperature or defaults.temperature, group_size=group_size, contrastive_weight=contrastive_weight,
        lm_weight=lm_weight, thought_dropout=defaults.thought_dropout if thought_dropout is None else thought_dropout, lora=lora,
        lora_r=lora_r, lora_alpha=lora_alpha, gradient_checkpointing=gradient_checkpointing, mixed_precision=mixed_precision or defaults.mixed_precision,
        max_document_tokens=max_document_tokens, max_thought_tokens=max_thought_tokens, prompt=config.prompt, save=save,
        seed=config.sampling.seed or 0,
    )
    train_config.check()
    rows = read_synthesized(data)
    result = train(rows, out, train_config)
    first, last = result.losses[0]["loss"], result.losses[-1]["loss"]
    use = f"--model {out}" if mode == "joint" else f"--thinker {out}"
    err.print(f"[green]trained[/] {result.steps} steps in {result.seconds:.0f} s (loss {first:.3f} -> {last:.3f}); saved to {out}; use it with {use}")


def _train_encoder(data: Path, out: Path, split: str, config: EmbedderConfig, *, epochs: float | None, max_steps: int | None,
                   batch_size: int | None, lr: float | None, warmup: float, loss_temperature: float | None,
                   thought_dropout: float | None, mixed_precision: str | None, dev_fraction: float, negatives: int, loss: str,
                   base_weight: float) -> None:
    import dataclasses

    from o1_retriever.embedder import ThinkingEmbedder
    from o1_retriever.training.data import read_beir_corpus, read_pairs
    from o1_retriever.training.encoder import EncoderTrainConfig, train_encoder

    defaults = EncoderTrainConfig()
    if epochs is not None and epochs != int(epochs):
        raise ModelLoadError("--mode encoder trains whole epochs (use --max-steps for less)")
    settings = EncoderTrainConfig(
        epochs=defaults.epochs if epochs is None else int(epochs), max_steps=max_steps, batch_size=batch_size or defaults.batch_size,
        learning_rate=defaults.learning_rate if lr is None else lr, warmup=warmup, loss=loss,
        loss_temperature=loss_temperature or defaults.loss_temperature, negatives=negatives,
        thought_dropout=defaults.thought_dropout if thought_dropout is None else thought_dropout, dev_fraction=dev_fraction,
        mixed_precision=mixed_precision or defaults.mixed_precision, base_weight=base_weight, seed=config.sampling.seed or 0,
    )
    settings.check()
    rows = read_pairs(data, split)
    corpus = list(read_beir_corpus(data).values()) if data.is_dir() else None
    needs_thinker = settings.thought_dropout < 1.0 or dev_fraction > 0
    with err.status("loading models"):
        embedder = ThinkingEmbedder.from_config(config if needs_thinker else dataclasses.replace(config, thinker="none"))
    name = f"{data.name} ({split})" if data.is_dir() else data.name
    result = train_encoder(rows, out, settings, embedder=embedder, corpus=corpus, data_name=name, device=config.device)
    embedder.close()
    summary = f"[green]trained[/] {result.steps} steps in {result.seconds:.0f} s on {result.train_queries} queries; saved to {out}"
    if result.dev_after:
        before, after = result.dev_before, result.dev_after
        summary += f"; dev ({result.dev_queries} queries) nDCG@10 {before['dev_ndcg@10']:.3f} -> {after['dev_ndcg@10']:.3f}"
        if "dev_thinking_ndcg@10" in after:
            summary += f", with thinking {before['dev_thinking_ndcg@10']:.3f} -> {after['dev_thinking_ndcg@10']:.3f}"
    err.print(summary + f"; use it with --encoder {out}")
