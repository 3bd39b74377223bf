"""Evaluation: BEIR loading, IR metrics (ir-measures / pytrec_eval), BM25 (bm25s), retrieval
runs with and without thinking, RAG answers scored with RAGAS, reports and plots.

Needs the ``eval`` extra (``pip install 'o1-retriever[eval]'``). Heavy libraries are imported
inside the functions that use them.
"""

from o1_retriever.evaluation.beir import BeirDataset, load_beir, write_slice
from o1_retriever.evaluation.metrics import MEASURES, evaluate_run

__all__ = ["BeirDataset", "load_beir", "write_slice", "MEASURES", "evaluate_run"]
