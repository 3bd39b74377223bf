"""``o1-retriever adapt``: adapt the encoder to a corpus without labels (index-time thinking)."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from o1_retriever.cli.app import Db, Host, Port, Token, command, err

_GEN = "Questions"
_TRAIN = "Training"


def default_thinker() -> str:
    """The fast offline thinker when llama-cpp-python is installed, else the transformers one."""
    import importlib.util

    return "llamacpp:smollm2" if importlib.util.find_spec("llama_cpp") else "smollm2"


@command(name="adapt", models=False)
def adapt_cmd(
    source: Annotated[Optional[Path], typer.Argument(help="What 'index' accepts: a folder of .txt/.md files, a .jsonl corpus or a BEIR folder (only its corpus is read). Or give --collection.")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output encoder folder (also holds questions.jsonl; rerun to resume).")] = Path("adapted-encoder"),
    collection: Annotated[Optional[str], typer.Option("--collection", "-c", help="Adapt to the chunks of this existing collection (read only) instead of SOURCE.")] = None,
    db: Db = None,
    host: Host = None,
    port: Port = 8000,
    token: Token = None,
    chunk_size: Annotated[int, typer.Option(min=100, help="Characters per chunk for text files (as 'index' chunks them).")] = 1200,
    questions: Annotated[Optional[Path], typer.Option("--questions", help="Train from this questions.jsonl (edited or from an earlier run) without generating.", rich_help_panel=_GEN)] = None,
    questions_per_chunk: Annotated[int, typer.Option("--questions-per-chunk", "-n", min=1, help="Questions the thinker writes per chunk.", rich_help_panel=_GEN)] = 2,
    top_r: Annotated[int, typer.Option(min=0, help="Round-trip filter: keep a question when its chunk is in the base encoder's top r for it (0: off).", rich_help_panel=_GEN)] = 5,
    thinker: Annotated[Optional[str], typer.Option(help="Question writer: any thinker spec ('llamacpp:smollm2', 'smollm2', a HF id/folder, an OpenAI-compatible URL). Default: llamacpp:smollm2 when llama-cpp-python is installed, else smollm2.", rich_help_panel=_GEN)] = None,
    thinker_model: Annotated[Optional[str], typer.Option(help="Model name on an OpenAI-compatible thinker server.", rich_help_panel=_GEN)] = None,
    thinker_threads: Annotated[Optional[int], typer.Option(min=1, help="CPU threads of a llama.cpp thinker.", rich_help_panel=_GEN)] = None,
    max_new_tokens: Annotated[int, typer.Option(min=1, help="Tokens per question.", rich_help_panel=_GEN)] = 32,
    max_chunk_tokens: Annotated[int, typer.Option(min=16, help="A chunk is cut to this many tokens in the thinker's prompt.", rich_help_panel=_GEN)] = 256,
    temperature: Annotated[float, typer.Option(min=0.0, help="Sampling temperature (the n questions of a chunk differ).", rich_help_panel=_GEN)] = 0.7,
    batch: Annotated[int, typer.Option(min=1, help="Chunks per thinker call.", rich_help_panel=_GEN)] = 8,
    max_chunks: Annotated[Optional[int], typer.Option(min=1, help="Write questions for a seeded random sample of this many chunks only (a large corpus in bounded time); the filters and negatives still use every chunk.", rich_help_panel=_GEN)] = None,
    generate_only: Annotated[bool, typer.Option("--generate-only", help="Write and filter questions.jsonl, then stop (review or edit it, then train with --questions).", rich_help_panel=_GEN)] = False,
    encoder: Annotated[str, typer.Option(help="Base encoder: 'minilm' or a sentence-transformers id/folder.", rich_help_panel=_TRAIN)] = "minilm",
    pairs: Annotated[Optional[Path], typer.Option("--pairs", help="Labelled pairs to add (what 'train --mode encoder' reads: a BEIR folder with --split, or a jsonl).", rich_help_panel=_TRAIN)] = None,
    split: Annotated[str, typer.Option(help="BEIR qrels split of --pairs.", rich_help_panel=_TRAIN)] = "train",
    epochs: Annotated[int, typer.Option(min=1, help="Epochs.", rich_help_panel=_TRAIN)] = 1,
    lr: Annotated[float, typer.Option(min=0.0, help="Learning rate (linear schedule).", rich_help_panel=_TRAIN)] = 2e-5,
    batch_size: Annotated[int, typer.Option(min=2, help="Rows per step (in-batch negatives).", rich_help_panel=_TRAIN)] = 32,
    negatives: Annotated[int, typer.Option(min=0, help="Hard negatives per question, mined by the base encoder.", rich_help_panel=_TRAIN)] = 1,
    dev_fraction: Annotated[float, typer.Option(min=0.0, max=0.9, help="Share of the questions held out as a dev split.", rich_help_panel=_TRAIN)] = 0.05,
    base_weight: Annotated[float, typer.Option(min=0.0, max=1.0, help="Share of the base encoder's weights mixed back after training (WiSE-FT).", rich_help_panel=_TRAIN)] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed of sampling, the dev split and training.")] = 0,
    device: Annotated[Optional[str], typer.Option(help="cpu, cuda, ...")] = None,
) -> None:
    """Adapt the encoder to a corpus with no labels: a thinker writes questions each chunk
    answers (once, at index time), filters keep the good ones, and the encoder is fine-tuned on
    them. Use the output with --encoder OUT everywhere."""
    from o1_retriever.config import EmbedderConfig
    from o1_retriever.embedder import ThinkingEmbedder
    from o1_retriever.errors import SourceError
    from o1_retriever.factory import build_thinker
    from o1_retriever.prompts import QUESTION_PROMPT
    from o1_retriever.thinkers.base import SamplingConfig
    from o1_retriever.training.adapt import AdaptConfig, adapt, prepare_questions, read_chunks, read_collection_chunks
    from o1_retriever.training.data import read_pairs
    from o1_retriever.training.encoder import EncoderTrainConfig

    if (source is None) == (collection is None):
        raise SourceError("give a SOURCE (folder, .jsonl corpus or BEIR folder) or --collection NAME, not both")
    settings = AdaptConfig(
        questions_per_chunk=questions_per_chunk, top_r=top_r, batch_chunks=batch, max_chunks=max_chunks,
        train=EncoderTrainConfig(epochs=epochs, batch_size=batch_size, learning_rate=lr, negatives=negatives, dev_fraction=dev_fraction,
                                 base_weight=base_weight, seed=seed),
    )
    settings.check()
    labelled = read_pairs(pairs, split) if pairs is not None else []
    if collection is not None:
        from o1_retriever.index import make_client, open_collection

        chunks = read_collection_chunks(open_collection(make_client(db, host, port, token, create=False), collection))
        name = f"collection {collection}"
    else:
        chunks = read_chunks(source, chunk_size=chunk_size)
        name = source.resolve().name
    err.print(f"{len(chunks)} chunks from {name}")
    with err.status("loading models"):
        embedder = ThinkingEmbedder.from_config(EmbedderConfig(thinker="none", encoder=encoder, device=device))
        writer = None
        if questions is None:
            spec = thinker or default_thinker()
            writer = build_thinker(EmbedderConfig(thinker=spec, thinker_model=thinker_model, thinker_threads=thinker_threads, device=device),
                                   prompt=QUESTION_PROMPT, max_query_tokens=max_chunk_tokens)
    sampling = SamplingConfig(max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)
    try:
        if generate_only:
            from o1_retriever.training.questions import QUESTIONS_FILE, filter_summary

            written, _, _ = prepare_questions(chunks, out, settings, encoder=embedder.encoder, thinker=writer, sampling=sampling, questions=questions)
            f = filter_summary(written)
            err.print(f"[green]wrote[/] {out / QUESTIONS_FILE}: {f['kept']} of {f['written']} questions kept ({100 * f['kept_share']:.1f} %), "
                      f"removed: {f['removed'] or 'none'}; train with --questions {out / QUESTIONS_FILE}")
            return
        result = adapt(chunks, out, settings, embedder=embedder, thinker=writer, sampling=sampling, questions=questions, pairs=labelled,
                       corpus_name=name, device=device)
    finally:
        if writer is not None:
            writer.close()
        embedder.close()
    f, t = result.filtering, result.training
    summary = (f"[green]adapted[/] to {result.chunks} chunks in {result.seconds / 60:.1f} min: {f['kept']} of {f['written']} questions kept "
               f"({100 * f['kept_share']:.1f} %), {t.steps} steps")
    if t.dev_after:
        summary += f"; dev ({t.dev_queries} questions) nDCG@10 {t.dev_before['dev_ndcg@10']:.3f} -> {t.dev_after['dev_ndcg@10']:.3f}"
    err.print(summary + f"; use it with --encoder {out}")
