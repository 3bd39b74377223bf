"""Refinement: a retrieval committee picks, for each query, the candidate thought that brings
the query closest to its positive passage.

Each voter scores every candidate (as the retriever will see it: ``query + thought``) against
the row's first positive passage; per voter the scores go through a softmax over the
candidates (divided by the voter's temperature, so cosine voters and BM25 weigh alike), the soft
votes are summed and the argmax is kept (paper's rule). ``majority`` counts each voter's argmax
instead, ties broken by the soft sum.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np

from o1_retriever.encoders.base import Encoder
from o1_retriever.training.data import PairRow

VOTE_MODES = ("soft", "majority")


class Voter(Protocol):
    name: str
    temperature: float

    def score(self, rows: Sequence[PairRow], candidates: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """For each row, one score per candidate (higher = closer to the row's positive)."""


class DenseVoter:
    """Cosine between ``encoder.query_text(query, thought)`` and the positive passage."""

    def __init__(self, encoder: Encoder, *, name: str | None = None, temperature: float = 0.05) -> None:
        self.encoder = encoder
        self.name = name or encoder.identity
        self.temperature = temperature

    def score(self, rows, candidates):
        texts = [self.encoder.query_text(r.query, c) for r, cands in zip(rows, candidates) for c in cands]
        q = self.encoder.encode_queries(texts)
        d = self.encoder.encode_documents([r.pos[0] for r in rows])
        out, start = [], 0
        for i, cands in enumerate(candidates):
            out.append(q[start : start + len(cands)] @ d[i])
            start += len(cands)
        return out


class BM25Voter:
    """BM25 (``bm25s``) score of ``query + thought`` for the row's positive, in an index of the
    positives of all rows scored together (so IDF has a real collection behind it)."""

    name = "bm25"

    def __init__(self, *, temperature: float = 1.0, stopwords: str | None = "en") -> None:
        self.temperature = temperature
        self.stopwords = stopwords

    def score(self, rows, candidates):
        import bm25s

        docs = [r.pos[0] for r in rows]
        retriever = bm25s.BM25()
        retriever.index(bm25s.tokenize(docs, stopwords=self.stopwords, show_progress=False), show_progress=False)
        out = []
        for i, (row, cands) in enumerate(zip(rows, candidates)):
            scores = []
            for c in cands:
                tokens = bm25s.tokenize([f"{row.query} {c}"], stopwords=self.stopwords, show_progress=False, return_ids=False)[0]
                scores.append(float(retriever.get_scores(tokens)[i]) if tokens else 0.0)
            out.append(np.asarray(scores, dtype=np.float32))
        return out


def softmax(scores: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(scores, dtype=np.float64) / max(temperature, 1e-8)
    z = np.exp(z - z.max())
    return z / z.sum()


def vote(scores: dict[str, np.ndarray], temperatures: dict[str, float] | None = None, mode: str = "soft") -> int:
    """Index of the winning candidate given each voter's raw scores (one array per voter)."""
    if mode not in VOTE_MODES:
        raise ValueError(f"unknown vote mode {mode!r}; choose one of {', '.join(VOTE_MODES)}")
    temperatures = temperatures or {}
    soft = sum(softmax(s, temperatures.get(name, 1.0)) for name, s in scores.items())
    if mode == "soft":
        return int(np.argmax(soft))
    counts = np.zeros(len(soft))
    for s in scores.values():
        counts[int(np.argmax(s))] += 1
    best = np.flatnonzero(counts == counts.max())
    return int(best[np.argmax(soft[best])])


@dataclass
class Committee:
    voters: list[Voter]
    mode: str = "soft"

    def __post_init__(self) -> None:
        if self.mode not in VOTE_MODES:
            raise ValueError(f"unknown vote mode {self.mode!r}; choose one of {', '.join(VOTE_MODES)}")
        if not self.voters:
            raise ValueError("a committee needs at least one voter")

    def refine(self, rows: Sequence[PairRow], candidates: Sequence[Sequence[str]]) -> None:
        """Fill ``all_thought``, ``thought`` and ``votes`` of each row in place."""
        per_voter = {v.name: v.score(rows, candidates) for v in self.voters}
        temps = {v.name: v.temperature for v in self.voters}
        for i, (row, cands) in enumerate(zip(rows, candidates)):
            scores = {name: s[i] for name, s in per_voter.items()}
            row.all_thought = list(cands)
            row.thought = cands[vote(scores, temps, self.mode)]
            row.votes = {name: [round(float(x), 5) for x in s] for name, s in scores.items()}


DEFAULT_VOTERS = "minilm,last-token:smollm2,bm25"


def build_committee(voters: str = DEFAULT_VOTERS, mode: str = "soft", *, device: str | None = None) -> Committee:
    """A committee from a comma list of voters: ``bm25``, ``minilm``, any sentence-transformers
    id, or ``last-token:SPEC`` (dense voters are built by the core's encoder factory). The
    default is the offline committee: MiniLM and last-token SmolLM2 (two dense voters) plus BM25."""
    from o1_retriever.config import EmbedderConfig
    from o1_retriever.errors import ModelLoadError
    from o1_retriever.factory import build_encoder

    built: list[Voter] = []
    for spec in (v.strip() for v in voters.split(",") if v.strip()):
        built.append(BM25Voter() if spec == "bm25" else DenseVoter(build_encoder(EmbedderConfig(encoder=spec, device=device))))
    if not built:
        raise ModelLoadError("--voters names no voter")
    return Committee(built, mode=mode)
