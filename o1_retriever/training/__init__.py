"""Exploration-Refinement thought synthesis and joint thinking + embedding training.

One job per module: :mod:`.data` (reading pairs), :mod:`.synthesis` (exploration),
:mod:`.committee` (refinement), :mod:`.mining` (hard negatives), :mod:`.collator` (token
sequences and label masks), :mod:`.losses`, :mod:`.trainer` and :mod:`.commands` (the
``synthesize`` and ``train`` CLI commands). Needs the ``train`` extra (peft) and, for BM25,
the ``eval`` extra (bm25s).
"""

from o1_retriever.training.data import PairRow, read_pairs, write_rows

__all__ = ["PairRow", "read_pairs", "write_rows"]
