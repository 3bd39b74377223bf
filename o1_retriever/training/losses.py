"""Losses of joint training: InfoNCE at ``<emb>`` and next-token loss on thought tokens."""

from __future__ import annotations

from typing import Any

IGNORE = -100


def info_nce(queries: Any, documents: Any, positives: Any, temperature: float = 0.02) -> Any:
    """Contrastive loss of L2-normalised query vectors against every document of the batch:
    each query's positive (index in ``positives``), its own hard negatives and all other
    queries' documents (in-batch negatives). Cosine / ``temperature`` as in the paper."""
    import torch.nn.functional as F

    q = F.normalize(queries.float(), dim=-1)
    d = F.normalize(documents.float(), dim=-1)
    return F.cross_entropy(q @ d.T / temperature, positives)


def lm_loss(logits: Any, labels: Any) -> Any:
    """Mean next-token cross-entropy over the labelled positions (``labels != -100``);
    ``logits[i, t]`` predicts ``labels[i, t + 1]``. Zero (with a graph) when nothing is labelled."""
    import torch.nn.functional as F

    shift_logits = logits[:, :-1].float()
    shift_labels = labels[:, 1:]
    if not (shift_labels != IGNORE).any():
        return shift_logits.sum() * 0.0
    return F.cross_entropy(shift_logits.reshape(-1, shift_logits.shape[-1]), shift_labels.reshape(-1), ignore_index=IGNORE)


def joint_loss(contrastive: Any, lm: Any, contrastive_weight: float = 0.8, lm_weight: float = 0.2) -> Any:
    """The paper's weighted sum (0.8 contrastive + 0.2 LM)."""
    return contrastive_weight * contrastive + lm_weight * lm


def lm_loss_from_hidden(hidden: Any, labels: Any, head: Any) -> Any:
    """:func:`lm_loss` computed from the backbone's hidden states, projecting only the labelled
    positions through the LM head (the vocabulary projection of the whole batch is most of a
    small model's activation memory)."""
    import torch.nn.functional as F

    target = labels[:, 1:]
    keep = target != IGNORE
    if not keep.any():
        return hidden.sum() * 0.0
    logits = head(hidden[:, :-1][keep]).float()
    return F.cross_entropy(logits, target[keep])
