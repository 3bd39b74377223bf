"""`adapt`'s dev split (issue 21): drawn from the generated questions *before* the round-trip
filter, by whole chunks, and honoured by the trainer's split. Pure logic: no model is loaded."""

from __future__ import annotations

import pytest

from o1_retriever.errors import SourceError
from o1_retriever.training.adapt import draw_dev_chunks
from o1_retriever.training.data import PairRow, split_dev
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
