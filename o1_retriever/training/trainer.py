"""Joint thinking + embedding training (and thinker-only behaviour cloning).

One forward pass of the backbone per query sequence gives both losses: the next-token loss on
the thought tokens (LM head applied to the labelled positions only) and InfoNCE of the hidden
state at ``<emb>`` against the positive, the hard negatives and the in-batch documents. LoRA
through ``peft`` or full fine-tuning, gradient checkpointing, ``accelerate`` for devices and mixed
precision. The result is a plain Hugging Face folder (merged) that
``EmbedderConfig(model=DIR)`` (joint) or ``EmbedderConfig(thinker=DIR)`` (thinker) loads, or a
LoRA adapter folder.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from o1_retriever.errors import ModelLoadError, O1RetrieverError
from o1_retriever.training.data import PairRow
from o1_retriever.training.precision import fresh_accelerator_state

log = logging.getLogger(__name__)


class TrainingError(O1RetrieverError, ValueError):
    """Training cannot start with these settings or rows."""


@dataclass
class TrainConfig:
    """Knobs of :func:`train`; defaults are the paper's where it gives one."""

    mode: str = "joint"  # joint | thinker
    base: str = "smollm2"
    epochs: float = 1.0
    max_steps: int | None = None
    batch_size: int = 8
    learning_rate: float = 1e-4
    warmup: float = 0.1
    weight_decay: float = 0.0
    temperature: float = 0.02
    group_size: int = 16  # 1 positive + 15 hard negatives
    contrastive_weight: float = 0.8
    lm_weight: float = 0.2
    thought_dropout: float = 0.1
    lora: bool = True
    lora_r: int = 32
    lora_alpha: int = 64
    lora_dropout: float = 0.1
    gradient_checkpointing: bool = True
    mixed_precision: str = "no"  # no | fp16 | bf16 (accelerate)
    max_query_tokens: int = 64
    max_thought_tokens: int = 128
    max_document_tokens: int = 192
    prompt: str = "passage"  # thinker mode: the prompt the composed thinker uses
    save: str = "merged"  # merged | adapter
    seed: int = 0
    log_every: int = 1

    def check(self) -> None:
        if self.mode not in ("joint", "thinker"):
            raise TrainingError(f"unknown mode {self.mode!r}; choose joint or thinker")
        if self.save not in ("merged", "adapter"):
            raise TrainingError(f"unknown save format {self.save!r}; choose merged or adapter")
        if self.save == "adapter" and not self.lora:
            raise TrainingError("--save adapter needs LoRA (full fine-tuning saves the whole model)")
        if self.batch_size < 1 or self.group_size < 1:
            raise TrainingError("batch size and group size must be >= 1")
        if self.temperature <= 0:
            raise TrainingError("temperature must be > 0")
        if not 0 <= self.thought_dropout < 1:
            raise TrainingError("thought dropout must be in [0, 1)")
        if self.mixed_precision not in ("no", "fp16", "bf16"):
            raise TrainingError("mixed precision must be no, fp16 or bf16")


@dataclass
class TrainResult:
    out: Path
    steps: int
    losses: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    model: Any = None  # the saved model (merged when LoRA is merged), in eval mode
    tokenizer: Any = None


def load_base(base: str | tuple[Any, Any], mode: str) -> tuple[Any, Any]:
    """A private, trainable copy of the base model (never the process-wide shared instance),
    with the O1 special tokens added for joint training."""
    if isinstance(base, tuple):
        model, tokenizer = base
    else:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from o1_retriever.models import resolve_causal_lm

        path = resolve_causal_lm(base)
        try:
            tokenizer = AutoTokenizer.from_pretrained(path)
            model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"cannot load base model {base!r}: {exc}") from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if mode == "joint":
        from o1_retriever.unified import ensure_special_tokens

        ensure_special_tokens(model, tokenizer)
    return model, tokenizer


def _joint_module(model: Any, config: TrainConfig) -> Any:
    """An ``nn.Module`` whose forward is one training step's loss, so ``accelerate`` (DDP,
    autocast) wraps the whole computation."""
    import torch

    from o1_retriever.encoders.last_token import pooled_hidden
    from o1_retriever.training.losses import info_nce, joint_loss, lm_loss_from_hidden

    class JointStep(torch.nn.Module):
        def __init__(self, lm: Any) -> None:
            super().__init__()
            self.lm = lm

        def forward(self, batch: dict[str, Any]) -> dict[str, Any]:
            hidden = self.lm.base_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
            lm = lm_loss_from_hidden(hidden, batch["labels"], self.lm.get_output_embeddings())
            if config.mode == "thinker":
                return {"loss": lm, "lm": lm}
            rows = torch.arange(hidden.shape[0], device=hidden.device)
            q = hidden[rows, batch["attention_mask"].sum(dim=1) - 1]
            d = pooled_hidden(self.lm, batch["doc_input_ids"], batch["doc_attention_mask"])
            contrastive = info_nce(q, d, batch["positives"], config.temperature)
            return {"loss": joint_loss(contrastive, lm, config.contrastive_weight, config.lm_weight), "lm": lm, "contrastive": contrastive}

    return JointStep(model)


def _apply_lora(model: Any, tokenizer: Any, config: TrainConfig) -> Any:
    from peft import LoraConfig, get_peft_model

    from o1_retriever.unified import SPECIAL_TOKENS

    kwargs: dict[str, Any] = {}
    if config.mode == "joint":
        # the new special tokens start untrained: train their embedding rows (and only them)
        kwargs["trainable_token_indices"] = {"embed_tokens": tokenizer.convert_tokens_to_ids(list(SPECIAL_TOKENS))}
    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules="all-linear",
        task_type="CAUSAL_LM",
        **kwargs,
    )
    return get_peft_model(model, lora)


def train(
    rows: Sequence[PairRow],
    out: str | Path,
    config: TrainConfig | None = None,
    *,
    base: tuple[Any, Any] | None = None,
    show_progress: bool = True,
) -> TrainResult:
    """Train on synthesized rows (each with ``thought``; joint mode also uses ``pos``/``neg``)
    and save to ``out``. ``base`` passes an already built (model, tokenizer) instead of
    ``config.base``."""
    import torch
    from accelerate import Accelerator
    from tqdm.auto import tqdm
    from transformers import get_linear_schedule_with_warmup

    from o1_retriever.prompts import PROMPT_NAMES, named_prompt
    from o1_retriever.training.collator import Collator

    config = config or TrainConfig()
    config.check()
    rows = list(rows)
    if not rows:
        raise TrainingError("no training rows")
    if any(r.thought is None for r in rows):
        raise TrainingError("every row needs a 'thought': run o1-retriever synthesize first")
    if config.prompt not in PROMPT_NAMES:
        raise TrainingError(f"unknown prompt {config.prompt!r}; choose one of {', '.join(PROMPT_NAMES)}")
    out = Path(out)
    started = time.perf_counter()
    random.seed(config.seed)
    torch.manual_seed(config.seed)

    fresh_accelerator_state()
    accelerator = Accelerator(mixed_precision=config.mixed_precision)
    model, tokenizer = load_base(base if base is not None else config.base, config.mode)
    model.train()
    collator = Collator(
        model,
        tokenizer,
        mode=config.mode,
        group_size=config.group_size,
        thought_dropout=config.thought_dropout,
        max_query_tokens=config.max_query_tokens,
        max_thought_tokens=config.max_thought_tokens,
        max_document_tokens=config.max_document_tokens,
        prompt=named_prompt(config.prompt),
        seed=config.seed,
    )
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    trained = _apply_lora(model, tokenizer, config) if config.lora else model
    if config.lora and config.gradient_checkpointing:
        trained.enable_input_require_grads()
    step_module = _joint_module(model, config)  # LoRA layers live inside ``model`` itself

    per_epoch = math.ceil(len(rows) / config.batch_size)
    total = config.max_steps or max(1, math.ceil(per_epoch * config.epochs))
    params = [p for p in step_module.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(config.warmup * total), total)
    step_module, optimizer, scheduler = accelerator.prepare(step_module, optimizer, scheduler)

    order_rng = random.Random(config.seed)
    history: list[dict[str, float]] = []
    step = 0
    bar = tqdm(total=total, desc=f"training ({config.mode})", unit="step", disable=not show_progress or not accelerator.is_local_main_process)
    while step < total:
        order = list(range(len(rows)))
        order_rng.shuffle(order)
        for start in range(0, len(order), config.batch_size):
            if step >= total:
                break
            batch = collator([rows[i] for i in order[start : start + config.batch_size]], device=accelerator.device)
            with accelerator.autocast():
                losses = step_module(batch)
            accelerator.backward(losses["loss"])
            accelerator.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            step += 1
            record = {k: float(v.detach()) for k, v in losses.items()}
            history.append(record)
            bar.update(1)
            if step % config.log_every == 0:
                bar.set_postfix({k: f"{v:.3f}" for k, v in record.items()})
    bar.close()

    accelerator.wait_for_everyone()
    final = accelerator.unwrap_model(step_module).lm if not config.lora else trained
    if accelerator.is_main_process:
        final = save(final, tokenizer, out, config, history)
    return TrainResult(out=out, steps=step, losses=history, seconds=time.perf_counter() - started, model=final, tokenizer=tokenizer)


def save(model: Any, tokenizer: Any, out: Path, config: TrainConfig, history: list[dict[str, float]]) -> Any:
    """Write the model (merged LoRA or plain weights, or the adapter) with its tokenizer."""
    out.mkdir(parents=True, exist_ok=True)
    if config.lora and config.save == "merged":
        model = model.merge_and_unload()
    if config.gradient_checkpointing and hasattr(model, "gradient_checkpointing_disable"):
        model.gradient_checkpointing_disable()
    model.config.use_cache = True
    model.eval()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    meta = {"o1_retriever": {"mode": config.mode, "config": asdict(config), "steps": len(history), "losses": history}}
    (out / "o1_training.json").write_text(json.dumps(meta, indent=1))
    return model


def merge_adapter(adapter_dir: str | Path, out: str | Path, base: str | None = None) -> Path:
    """Turn a ``--save adapter`` folder into a merged model folder that
    ``EmbedderConfig(model=OUT)`` / ``EmbedderConfig(thinker=OUT)`` load. ``base`` defaults to
    the base model recorded at training time."""
    from peft import PeftModel
    from transformers import AutoTokenizer

    adapter_dir, out = Path(adapter_dir), Path(out)
    meta_path = adapter_dir / "o1_training.json"
    if not (adapter_dir / "adapter_config.json").exists() or not meta_path.exists():
        raise TrainingError(f"{adapter_dir}: not an adapter folder written by o1-retriever train --save adapter")
    meta = json.loads(meta_path.read_text())["o1_retriever"]
    model, _ = load_base(base or meta["config"]["base"], meta["mode"])
    tokenizer = AutoTokenizer.from_pretrained(adapter_dir)
    if model.get_input_embeddings().weight.shape[0] != len(tokenizer):
        model.resize_token_embeddings(len(tokenizer))
    merged = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
    merged.config.use_cache = True
    out.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "o1_training.json").write_text(meta_path.read_text())
    return out
