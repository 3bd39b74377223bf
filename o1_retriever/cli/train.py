"""``o1-retriever synthesize`` and ``o1-retriever train``."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from o1_retriever.cli.app import command, err

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
    from o1_retriever.errors import ModelLoadError
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
    if negatives and any(not r.neg for r in todo):
        corpus = list(read_beir_corpus(pairs).values()) if pairs.is_dir() else sorted({p for r in rows for p in r.pos})
        with err.status("loading the mining encoder"):
            miner = build_encoder(EmbedderConfig(encoder=mine_encoder, device=device))
        mine_hard_negatives(todo, corpus, miner, n=negatives)
    with err.status("loading the generator and the committee"):
        if generator in ("", "none"):
            raise ModelLoadError("synthesis needs a --generator")
        if generator.startswith(("http://", "https://")) and not generator_model:
            raise ModelLoadError("an OpenAI-compatible generator URL needs --generator-model")
        config = EmbedderConfig(thinker=generator, thinker_model=generator_model, device=device)
        thinker = build_thinker(config, prompt=SYNTHESIS_PROMPT, max_query_tokens=2048)
        committee = build_committee(voters, vote, device=device)
    sampling = SamplingConfig(max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)
    try:
        stats = synthesize(rows, out, thinker, committee, candidates=candidates, shots=shots, shot_words=shot_words, sampling=sampling, batch_rows=batch, seed=seed)
    finally:
        thinker.close()
    err.print(f"[green]synthesized[/] {stats['written']} rows into {out} ({stats['skipped']} already there)")


@command(name="train", models=False)
def train_cmd(
    thoughts: Annotated[Path, typer.Argument(help="Rows written by 'o1-retriever synthesize'.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (a Hugging Face model + tokenizer).")],
    base: Annotated[str, typer.Option(help="Base causal LM: 'smollm2' or a HF id/folder.", rich_help_panel=_TRAIN)] = "smollm2",
    mode: Annotated[str, typer.Option(help="joint (unified model: thinking + embedding) or thinker (behaviour cloning only).", rich_help_panel=_TRAIN)] = "joint",
    epochs: Annotated[float, typer.Option(min=0.0, help="Epochs.", rich_help_panel=_TRAIN)] = 1.0,
    max_steps: Annotated[Optional[int], typer.Option(min=1, help="Stop after this many steps (overrides --epochs).", rich_help_panel=_TRAIN)] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Queries per step (per device).", rich_help_panel=_TRAIN)] = 8,
    lr: Annotated[float, typer.Option(min=0.0, help="Learning rate (linear schedule).", rich_help_panel=_TRAIN)] = 1e-4,
    warmup: Annotated[float, typer.Option(min=0.0, max=1.0, help="Warm-up fraction.", rich_help_panel=_TRAIN)] = 0.1,
    temperature: Annotated[float, typer.Option(min=1e-6, help="InfoNCE temperature.", rich_help_panel=_TRAIN)] = 0.02,
    group_size: Annotated[int, typer.Option(min=1, help="Documents per query: 1 positive + hard negatives.", rich_help_panel=_TRAIN)] = 16,
    contrastive_weight: Annotated[float, typer.Option(min=0.0, help="Weight of the contrastive loss.", rich_help_panel=_TRAIN)] = 0.8,
    lm_weight: Annotated[float, typer.Option(min=0.0, help="Weight of the thought LM loss.", rich_help_panel=_TRAIN)] = 0.2,
    thought_dropout: Annotated[float, typer.Option(min=0.0, max=0.99, help="Probability of training a query without its thought.", rich_help_panel=_TRAIN)] = 0.1,
    lora: Annotated[bool, typer.Option("--lora/--full", help="LoRA adapters (peft) or full fine-tuning.", rich_help_panel=_TRAIN)] = True,
    lora_r: Annotated[int, typer.Option(min=1, help="LoRA rank.", rich_help_panel=_TRAIN)] = 32,
    lora_alpha: Annotated[int, typer.Option(min=1, help="LoRA alpha.", rich_help_panel=_TRAIN)] = 64,
    gradient_checkpointing: Annotated[bool, typer.Option("--gradient-checkpointing/--no-gradient-checkpointing", help="Recompute activations (less memory).", rich_help_panel=_TRAIN)] = True,
    mixed_precision: Annotated[str, typer.Option(help="no | fp16 | bf16 (accelerate).", rich_help_panel=_TRAIN)] = "no",
    max_document_tokens: Annotated[int, typer.Option(min=8, help="Document tokens in training.", rich_help_panel=_TRAIN)] = 192,
    max_thought_tokens: Annotated[int, typer.Option(min=1, help="Thought tokens in training.", rich_help_panel=_TRAIN)] = 128,
    prompt: Annotated[str, typer.Option(help="Thinker mode: the prompt the composed thinker will use (passage | paper).", rich_help_panel=_TRAIN)] = "passage",
    save: Annotated[str, typer.Option(help="merged (a plain model folder) or adapter (LoRA adapter only).", rich_help_panel=_TRAIN)] = "merged",
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
) -> None:
    """Train a unified O1 model (joint: thought LM loss + InfoNCE at <emb>) or a thinker
    (behaviour cloning of the committee's thoughts). Multi-GPU: run under 'accelerate launch'."""
    from o1_retriever.training.synthesis import read_synthesized
    from o1_retriever.training.trainer import TrainConfig, train

    config = TrainConfig(
        mode=mode, base=base, epochs=epochs, max_steps=max_steps, batch_size=batch_size, learning_rate=lr, warmup=warmup,
        temperature=temperature, group_size=group_size, contrastive_weight=contrastive_weight, lm_weight=lm_weight,
        thought_dropout=thought_dropout, lora=lora, lora_r=lora_r, lora_alpha=lora_alpha, gradient_checkpointing=gradient_checkpointing,
        mixed_precision=mixed_precision, max_document_tokens=max_document_tokens, max_thought_tokens=max_thought_tokens,
        prompt=prompt, save=save, seed=seed,
    )
    config.check()
    rows = read_synthesized(thoughts)
    result = train(rows, out, config)
    first, last = result.losses[0]["loss"], result.losses[-1]["loss"]
    use = f"--model {out}" if mode == "joint" else f"--thinker {out}"
    err.print(f"[green]trained[/] {result.steps} steps in {result.seconds:.0f} s (loss {first:.3f} -> {last:.3f}); saved to {out}; use it with {use}")
