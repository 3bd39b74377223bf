"""Training: encoder fine-tuning on (query, passage) pairs, Exploration-Refinement thought
synthesis, and joint thinking + embedding training of a unified model.

One job per module: :mod:`.data` (reading pairs: jsonl, or a BEIR folder through the one BEIR
reader), :mod:`.encoder` (encoder fine-tuning, mixing a saved encoder with its base),
:mod:`.evaluator` (dev metrics with and without thinking), :mod:`.precision` (a fresh accelerate
state per run), :mod:`.synthesis` (exploration), :mod:`.committee` (refinement), :mod:`.mining`
(hard negatives), :mod:`.collator` (token sequences and label masks), :mod:`.losses` and
:mod:`.trainer` (joint training). The ``synthesize`` and ``train`` commands that drive them live
in :mod:`o1_retriever.cli.train`. Needs the ``train`` extra.
"""

from o1_retriever.training.data import PairRow, read_pairs, write_rows

__all__ = ["PairRow", "read_pairs", "write_rows"]
