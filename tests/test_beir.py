"""One BEIR reader (issue 18): evaluation (``load_beir``) and training (``read_pairs``) read a
BEIR folder through ``o1_retriever.evaluation.beir.read_split`` and so accept and refuse the same
input, with the same error type and the file and line in the message. Small folders written
here; no model is loaded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from o1_retriever.errors import SourceError


def _beir(root: Path, queries: str, qrels: str, split: str = "train") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    corpus = [{"_id": "d1", "title": "Bees", "text": "Honey bees dance."}, {"_id": "d2", "title": "", "text": "Mercury is liquid."}]
    (root / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in corpus), encoding="utf-8")
    (root / "queries.jsonl").write_text(queries, encoding="utf-8")
    (root / "qrels").mkdir(exist_ok=True)
    (root / "qrels" / f"{split}.tsv").write_text(qrels, encoding="utf-8")
    return root


QUERIES = '{"_id": "q1", "text": "How do bees talk?"}\n{"_id": "q2", "text": "Which metal is liquid?"}\n'


def test_relevance_written_as_a_float_is_read_by_evaluation_and_training(tmp_path):
    from o1_retriever.evaluation import load_beir
    from o1_retriever.training import read_pairs

    root = _beir(tmp_path / "d", QUERIES, "query-id\tcorpus-id\tscore\nq2\td2\t1.0\nq1\td1\t1\n")
    data = load_beir(root, "train")
    assert data.qrels == {"q1": {"d1": 1}, "q2": {"d2": 1}}
    rows = read_pairs(root, "train")
    # training keeps the order of the judgements file; text is title + " " + text (BEIR)
    assert [(r.id, r.query, r.pos) for r in rows] == [("q2", "Which metal is liquid?", ["Mercury is liquid."]), ("q1", "How do bees talk?", ["Bees Honey bees dance."])]


@pytest.mark.parametrize(
    "queries, qrels, message",
    [
        ('{"_id": "q1", "text": "How do bees talk?"}\n{"_id": "q2", "text": "  "}\n', "q1\td1\t1\nq2\td2\t1\n", r"queries.jsonl:2: query 'q2' has an empty text"),
        ('{"_id": "q1", "text": "ok"}\n{not json\n', "q1\td1\t1\n", r"queries.jsonl:2: not a JSON line"),
        ('{"_id": "q1"}\n', "q1\td1\t1\n", r"queries.jsonl:1: expected an object with '_id' and a string 'text'"),
        (QUERIES, "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\n", r"train.tsv:3: expected 3 tab-separated fields"),
        (QUERIES, "q1\td1\tyes\n", r"train.tsv:1: score 'yes' is not a number"),
        (QUERIES, "q1\td1\t1\nq9\td2\t1\n", r"not in queries.jsonl \(first: 'q9'\)"),
    ],
)
def test_malformed_input_is_refused_alike_with_the_line(tmp_path, queries, qrels, message):
    from o1_retriever.evaluation import load_beir
    from o1_retriever.training import read_pairs

    root = _beir(tmp_path / "d", queries, qrels)
    with pytest.raises(SourceError, match=message):
        load_beir(root, "train")
    with pytest.raises(SourceError, match=message):
        read_pairs(root, "train")


def test_a_missing_split_is_named_alike(tmp_path):
    from o1_retriever.evaluation import load_beir
    from o1_retriever.training import read_pairs

    root = _beir(tmp_path / "d", QUERIES, "q1\td1\t1\n", split="test")
    for read in (load_beir, read_pairs):
        with pytest.raises(SourceError, match="no such split 'train'; available: test"):
            read(root, "train")


def test_the_deprecated_training_readers_delegate_to_the_one_reader(tmp_path):
    from o1_retriever.training.data import read_beir_qrels, read_beir_queries

    root = _beir(tmp_path / "d", QUERIES, "q1\td1\t1.0\n")
    with pytest.deprecated_call():
        assert read_beir_qrels(root, "train") == {"q1": {"d1": 1}}
    with pytest.deprecated_call():
        assert read_beir_queries(root) == {"q1": "How do bees talk?", "q2": "Which metal is liquid?"}
