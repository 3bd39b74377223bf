"""`adapt`'s dev split (issue 21): drawn from the generated questions *before* the round-trip
filter, by whole chunks, and honoured by the trainer's split. Pure logic: no model is loaded."""

from __future__ import annotations

import pytest

from o1_retriever.errors import SourceError
from o1_retriever.training.adapt import draw_dev_chunks, training_rows
from o1_retriever.training.data import PairRow, split_dev
from o1_retriever.training.encoder import EncoderTrainingError
from o1_retriever.training.questions import Question


def questions() -> list[Question]:
    out = []
    for i in range(40):
        chunk = f"c{i}"
        if i % 4 == 0:  # the base encoder found this chunk's questions hard: the round trip removed them
            out += [Question(chunk, s, f"what is {i}-{s}?", kept=False, reason="round-trip: its chunk ranked 9, not in the top 5") for s in range(2)]
        elif i % 4 == 1:  # nothing usable was written for this one
            out += [Question(chunk, 0, "", kept=False, reason="empty"), Question(chunk, 1, "what?", kept=False, reason="duplicate")]
        else:
            out += [Question(chunk, s, f"what is {i}-{s}?") for s in range(2)]
    return out


def test_the_dev_chunks_are_drawn_before_the_round_trip_and_seeded():
    qs = questions()
    dev = draw_dev_chunks(qs, 0.25, seed=0)
    candidates = {q.chunk_id for q in qs if q.kept or q.reason.startswith("round-trip")}
    assert len(dev) == round(len(candidates) * 0.25) == 8 and dev <= candidates
    # over seeds, chunks whose questions failed the round trip are drawn too (the dev split is not easy by construction)
    failed = {f"c{i}" for i in range(0, 40, 4)}
    assert any(draw_dev_chunks(qs, 0.25, seed=s) & failed for s in range(5))
    assert not any(draw_dev_chunks(qs, 0.25, seed=s) & {f"c{i}" for i in range(1, 40, 4)} for s in range(5))  # never a chunk with no real question
    assert draw_dev_chunks(qs, 0.25, seed=0) == dev and draw_dev_chunks(qs, 0.25, seed=1) != dev
    assert draw_dev_chunks(qs, 0.0) == set() and draw_dev_chunks(qs[:2], 0.1) == set()


def test_rows_that_name_their_split_are_kept_on_it():
    rows = [PairRow("q1", ["a"], split="train"), PairRow("Q1 ", ["b"], split="dev"), PairRow("q2", ["c"], split="train"), PairRow("q3", ["d"])]
    train, dev = split_dev(rows, 0.5, seed=3)
    assert [r.pos for r in dev] == [["b"]]
    # a training row never shares a query with the dev split (q1 is Q1 folded)
    assert [r.pos for r in train] == [["c"], ["d"]]
    with pytest.raises(SourceError, match="no training row"):
        split_dev([PairRow("q", ["a"], split="dev")], 0.1)
    # without any named split the seeded draw is as before
    plain = [PairRow(f"q{i}", [str(i)]) for i in range(10)]
    assert split_dev(plain, 0.2, seed=0) == split_dev(plain, 0.2, seed=0) and len(split_dev(plain, 0.2, seed=0)[1]) == 2


def test_a_jsonl_row_may_name_its_split():
    assert PairRow.from_json({"query": "q", "pos": ["p"], "split": "dev"}, "row 1").split == "dev"
    assert PairRow.from_json({"query": "q", "pos": ["p"]}, "row 1").to_json() == {"query": "q", "pos": ["p"], "neg": [], "id": ""}
    with pytest.raises(SourceError, match="'split' must be"):
        PairRow.from_json({"query": "q", "pos": ["p"], "split": "test"}, "row 1")


def test_adapt_trains_on_kept_questions_of_other_chunks_and_holds_out_hard_ones():
    """What ``adapt()`` hands the trainer (``training_rows``): the dev rows are every real question
    of the drawn chunks, round-trip failures included; the training rows only kept questions of
    the other chunks, plus the labelled pairs; every row names its side."""
    qs = questions()
    chunks = {f"c{i}": f"passage {i}" for i in range(40)}
    pairs = [PairRow("a labelled query", ["a labelled passage"], id="p1")]
    rows, dev = training_rows(qs, chunks, pairs, 0.25, seed=0)
    dev_chunks = draw_dev_chunks(qs, 0.25, seed=0)
    assert {r.id.split("#")[0] for r in dev} == dev_chunks
    assert len(dev) == 2 * len(dev_chunks) and {r.split for r in dev} == {"dev"}
    assert all(r.pos == [chunks[r.id.split("#")[0]]] for r in dev)
    trained = {r.id.split("#")[0] for r in rows if r.id != "p1"}
    assert not trained & dev_chunks
    kept_elsewhere = {q.chunk_id for q in qs if q.kept} - dev_chunks
    assert trained == kept_elsewhere and len(rows) == 2 * len(kept_elsewhere) + 1
    assert rows[-1].query == "a labelled query" and {r.split for r in rows} == {"train"}
    # a seed whose draw holds a chunk the round trip removed: its questions are dev rows, never training rows
    seed = next(s for s in range(20) if draw_dev_chunks(qs, 0.25, seed=s) & {"c0", "c4", "c8"})
    hard = draw_dev_chunks(qs, 0.25, seed=seed) & {"c0", "c4", "c8"}
    rows, dev = training_rows(qs, chunks, [], 0.25, seed=seed)
    assert hard <= {r.id.split("#")[0] for r in dev} and not hard & {r.id.split("#")[0] for r in rows}
    # no dev split asked for: nothing is held out and no row names a side
    rows, dev = training_rows(qs, chunks, [], 0.0)
    assert dev == [] and len(rows) == sum(q.kept for q in qs) and {r.split for r in rows} == {None}
    with pytest.raises(EncoderTrainingError, match="no question is left for training"):
        training_rows([q for q in qs if not q.kept], chunks, [], 0.25)
