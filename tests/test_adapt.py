"""`o1-retriever adapt` (issue 21): questions written by the real SmolLM2 (llama.cpp when
llama-cpp-python is installed, else transformers), filtered with the real MiniLM, MiniLM trained
on them; a folder of notes, a .jsonl corpus, a BEIR folder and a collection as sources; resume
after SIGKILL; refusals. Tiny corpora, short questions and one-step settings keep it small."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from o1_retriever.cli import app
from o1_retriever.training.questions import (
    Question,
    clean_question,
    complete_chunks,
    degenerate_reason,
    filter_questions,
    filter_summary,
    generate_questions,
    read_questions,
)

pytestmark = pytest.mark.slow

THINKER = "llamacpp:smollm2" if importlib.util.find_spec("llama_cpp") else "smollm2"
TINY = ["--thinker", THINKER, "-n", "2", "--max-new-tokens", "24", "--top-r", "0", "--batch-size", "2", "--dev-fraction", "0.25", "--negatives", "0"]
N_KILL = 12  # chunks of the kill test
PASSAGES = {
    "tides": "Tides are the rise and fall of sea levels caused by the gravitational pull of the Moon and the Sun on the oceans.",
    "mercury": "Mercury is the only metal that is liquid at room temperature; it was used in thermometers and barometers.",
    "bees": "Honey bees perform a waggle dance to tell their nestmates the direction and distance of flowers rich in nectar.",
    "sky": "The sky looks blue because air molecules scatter short blue wavelengths of sunlight more than long red ones.",
    "lava": "Volcanoes erupt when molten rock called magma rises through the crust and pours out as lava and ash.",
    "coffee": "Coffee beans are the roasted seeds of the coffee plant, which grows in the tropics of Africa and South America.",
}


def write_jsonl_corpus(path: Path) -> Path:
    with path.open("w") as fh:
        for i, text in PASSAGES.items():
            fh.write(json.dumps({"_id": i, "title": i.title(), "text": text}) + "\n")
    return path


def run(*args: str):
    return CliRunner().invoke(app, ["adapt", *args])


def kept_and_reasons(path: Path) -> list[Question]:
    questions = read_questions(path)
    assert questions and all(q.kept == (q.reason is None) for q in questions)
    return questions


# -- pieces --------------------------------------------------------------------------------------
def test_clean_question_keeps_the_first_real_question():
    assert clean_question("Question: Why is the sky blue?\nAnswer: scattering.") == "Why is the sky blue?"
    assert clean_question("The correct question is: What makes tides rise?") == "What makes tides rise?"
    assert clean_question('1. "How do bees find flowers?" They dance.') == "How do bees find flowers?"
    assert clean_question("What's that? A question about where coffee grows?") == "A question about where coffee grows?"
    assert clean_question("Mercury is a metal.") == "Mercury is a metal."
    assert clean_question("  \n") == ""


def test_degenerate_outputs_are_named():
    passage = PASSAGES["mercury"]
    assert degenerate_reason("", passage) == "empty"
    assert degenerate_reason("Mercury is a liquid metal.", passage) == "not a question"
    assert degenerate_reason("Why?", passage) == "not a question"
    assert degenerate_reason("the only metal that is liquid at room temperature?", passage) == "echo of the passage"
    assert degenerate_reason("Which metal is liquid at room temperature?", passage) is None


def test_filters_remove_degenerate_duplicates_and_round_trip_failures(encoder):
    questions = [
        Question("mercury", 0, "Which metal is liquid at room temperature?"),
        Question("mercury", 1, "which metal is  LIQUID at room temperature?"),  # the same question
        Question("tides", 0, "Which metal is used in thermometers?"),  # answered by another chunk
        Question("tides", 1, "What pulls the oceans to make tides?"),
        Question("bees", 0, ""),
        Question("gone", 0, "Where did this chunk go?"),
    ]
    filter_questions(questions, PASSAGES, encoder, top_r=1, show_progress=False)
    assert [(q.kept, q.reason and q.reason.split(":")[0]) for q in questions] == [
        (True, None),
        (False, "duplicate"),
        (False, "round-trip"),
        (True, None),
        (False, "empty"),
        (False, "chunk not in the source"),
    ]
    assert "ranked" in questions[2].reason
    summary = filter_summary(questions)
    assert summary["written"] == 6 and summary["kept"] == 2 and summary["kept_share"] == round(2 / 6, 4)
    assert summary["removed"] == {"duplicate": 1, "round-trip": 1, "empty": 1, "chunk not in the source": 1}
    # top_r 0 turns the round trip off: the wrong-chunk question is kept
    filter_questions(questions, PASSAGES, encoder, top_r=0)
    assert questions[2].kept


def test_a_torn_file_is_repaired_and_only_missing_chunks_are_generated(tmp_path, model_home):
    """The file a kill leaves (a chunk cut after one of its two lines, a half-written line) is
    rewritten with the complete chunks only; generation then writes the rest, once each."""
    from o1_retriever.config import EmbedderConfig
    from o1_retriever.factory import build_thinker
    from o1_retriever.prompts import QUESTION_PROMPT
    from o1_retriever.thinkers.base import SamplingConfig

    path = tmp_path / "questions.jsonl"
    full = [Question("tides", 0, "What causes tides?", of=2), Question("tides", 1, "What pulls the sea?", of=2)]
    cut = Question("mercury", 0, "Which metal is liquid?", of=2)
    path.write_text("".join(json.dumps(q.to_json()) + "\n" for q in (*full, cut)) + '{"chunk_id": "bees", "sam')
    assert set(complete_chunks(path)) == {"tides"}
    assert [q.chunk_id for q in read_questions(path)] == ["tides", "tides"]
    assert path.read_text().endswith("\n")

    chunks = {k: PASSAGES[k] for k in ("tides", "mercury", "bees")}
    thinker = build_thinker(EmbedderConfig(thinker=THINKER, thinker_threads=1), prompt=QUESTION_PROMPT)
    stats = generate_questions(chunks, path, thinker, n=2, sampling=SamplingConfig(max_new_tokens=16), batch=2, show_progress=False)
    assert stats["written"] == 2 and stats["skipped"] == 1
    questions = read_questions(path)
    assert [q.question for q in questions[:2]] == ["What causes tides?", "What pulls the sea?"]  # untouched
    assert sorted((q.chunk_id, q.sample) for q in questions) == sorted((c, s) for c in chunks for s in range(2))
    assert all(q.raw or q.question == "" for q in questions[2:])
    again = generate_questions(chunks, path, thinker, n=2, sampling=SamplingConfig(max_new_tokens=16), show_progress=False)
    assert again["written"] == 0 and len(read_questions(path)) == 6


# -- the command ---------------------------------------------------------------------------------
def test_adapt_a_folder_of_notes_and_use_it_with_encoder(sample_corpus, tmp_path, model_home):
    out = tmp_path / "notes-encoder"
    res = run(str(sample_corpus), "--out", str(out), *TINY, "--top-r", "5")
    assert res.exit_code == 0, res.output
    assert "adapted to 13 chunks" in res.output
    questions = kept_and_reasons(out / "questions.jsonl")
    assert len(questions) == 26 and {q.chunk_id.split("#")[0] for q in questions} == {p.name for p in sample_corpus.iterdir()}
    meta = json.loads((out / "o1_encoder.json").read_text())
    adaptation = meta["adaptation"]
    assert meta["command"] == "o1-retriever adapt" and adaptation["labels"] == "none" and adaptation["chunks"] == 13
    assert adaptation["filtering"]["written"] == 26 and adaptation["filtering"]["kept"] == sum(q.kept for q in questions)
    card = (out / "README.md").read_text()
    assert "Adapted without labels" in card and "kept" in card and "dev_ndcg@10" in card and "o1-retriever adapt" in card

    # the folder is an encoder everywhere: index and search with it
    db = tmp_path / "db"
    res = CliRunner().invoke(app, ["index", str(sample_corpus), "--collection", "adapted", "--db", str(db), "--encoder", str(out), "--thinker", "none"])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(app, ["search", "Which metal is liquid at room temperature?", "--collection", "adapted", "--db", str(db), "--encoder", str(out), "--thinker", "none", "--no-think", "--mode", "dense", "--k", "1"])
    assert res.exit_code == 0, res.output
    assert "mercury" in res.output.lower()

    # --questions trains from the file (here edited: every question dropped but two chunks') without generating
    edited = tmp_path / "edited.jsonl"
    keep = [q for q in questions if q.chunk_id.startswith(("mercury", "tides", "volcanoes", "coffee"))]
    edited.write_text("".join(json.dumps(q.to_json()) + "\n" for q in keep))
    res = run(str(sample_corpus), "--out", str(tmp_path / "from-file"), "--questions", str(edited), "--thinker", "/nonexistent-model", *TINY[2:])
    assert res.exit_code == 0, res.output
    assert len(read_questions(tmp_path / "from-file" / "questions.jsonl")) == len(keep)


def test_adapt_a_jsonl_corpus_and_a_beir_folder_whose_queries_are_never_read(tmp_path, model_home):
    corpus = write_jsonl_corpus(tmp_path / "corpus.jsonl")
    res = run(str(corpus), "--out", str(tmp_path / "from-jsonl"), *TINY)
    assert res.exit_code == 0, res.output
    assert {q.chunk_id for q in read_questions(tmp_path / "from-jsonl" / "questions.jsonl")} == set(PASSAGES)

    beir = tmp_path / "beir"
    (beir / "qrels").mkdir(parents=True)
    write_jsonl_corpus(beir / "corpus.jsonl")
    (beir / "queries.jsonl").write_bytes(b"\xff not json: adapt must never open it")
    (beir / "qrels" / "test.tsv").write_text("garbage\n")
    res = run(str(beir), "--out", str(tmp_path / "from-beir"), *TINY)
    assert res.exit_code == 0, res.output
    assert {q.chunk_id for q in read_questions(tmp_path / "from-beir" / "questions.jsonl")} == set(PASSAGES)


def test_adapt_a_collection_reads_it_and_changes_nothing(sample_corpus, tmp_path, model_home):
    from o1_retriever.index import make_client

    db = tmp_path / "db"
    res = CliRunner().invoke(app, ["index", str(sample_corpus), "--collection", "notes", "--db", str(db), "--encoder", "minilm", "--thinker", "none"])
    assert res.exit_code == 0, res.output
    before = {c.name: (c.count(), c.metadata) for c in make_client(db).list_collections()}
    questions = tmp_path / "q.jsonl"
    questions.write_text(
        "".join(json.dumps(Question(f"{name}#0", 0, f"What does the note about {name.removesuffix('.md').replace('_', ' ')} say?").to_json()) + "\n" for name in sorted(p.name for p in sample_corpus.iterdir()))
    )
    res = run("--collection", "notes", "--db", str(db), "--out", str(tmp_path / "out"), "--questions", str(questions), *TINY[6:])
    assert res.exit_code == 0, res.output
    assert "13 chunks from collection notes" in res.output
    assert {c.name: (c.count(), c.metadata) for c in make_client(db).list_collections()} == before


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p / "missing", "no such file or folder"),
        (lambda p: (p / "empty").mkdir() or p / "empty", "no documents found"),
        (lambda p: (p / "notes.pdf").write_bytes(b"%PDF") and p / "notes.pdf", "expected a .jsonl corpus or a folder"),
        (lambda p: (p / "bad.jsonl").write_bytes(b"\xff\xfe garbage\n{not json}\n") and p / "bad.jsonl", "not a JSON line"),
    ],
    ids=["missing", "empty-folder", "not-a-corpus", "unreadable-jsonl"],
)
def test_bad_sources_are_one_line_errors(tmp_path, model_home, make, message):
    res = run(str(make(tmp_path)), "--out", str(tmp_path / "out"), *TINY)
    assert res.exit_code == 2 and message in res.output and "Traceback" not in res.output
    assert not (tmp_path / "out").exists()


def test_bad_settings_are_one_line_errors(tmp_path, model_home):
    res = run("--out", str(tmp_path / "out"))
    assert res.exit_code == 2 and "give a SOURCE" in res.output
    res = run("--collection", "none-such", "--db", str(tmp_path / "db"), "--out", str(tmp_path / "out"))
    assert res.exit_code == 2 and "error" in res.output and "Traceback" not in res.output
    corpus = write_jsonl_corpus(tmp_path / "c.jsonl")
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"chunk_id": "tides", "question": "Why?"}\nnot json\n')
    res = run(str(corpus), "--out", str(tmp_path / "out"), "--questions", str(broken), *TINY[2:])
    assert res.exit_code == 2 and "broken.jsonl:2" in res.output


def test_sigkill_mid_generation_then_rerun_writes_every_question_once(tmp_path, model_home):
    """A real subprocess killed with SIGKILL after some chunks; the rerun keeps what was written
    (byte for byte) and writes the other chunks, each exactly once."""
    corpus = tmp_path / "corpus.jsonl"
    with corpus.open("w") as fh:
        for i in range(N_KILL):
            topic = list(PASSAGES.values())[i % len(PASSAGES)]
            fh.write(json.dumps({"_id": f"d{i}", "text": f"Note {i}. {topic}"}) + "\n")
    out = tmp_path / "out"
    args = [sys.executable, "-m", "o1_retriever.cli", "adapt", str(corpus), "--out", str(out), *TINY, "--batch", "2", "--thinker-threads", "1"]
    env = {**os.environ, "O1_RETRIEVER_HOME": str(model_home)}
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    seen = bytearray()
    threading.Thread(target=lambda: [seen.extend(c) for c in iter(lambda: proc.stderr.read1(256), b"")], daemon=True).start()
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        shown = [int(n) for n in re.findall(rb"(\d+)/%d" % N_KILL, bytes(seen))]
        if shown and max(shown) >= 3:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL, bytes(seen)[-2000:]
    before = read_questions(out / "questions.jsonl")
    done_before = {c for c in {q.chunk_id for q in before} if sum(q.chunk_id == c for q in before) == 2}
    assert 3 <= len(done_before) < N_KILL

    res = run(str(corpus), "--out", str(out), *TINY)
    assert res.exit_code == 0, res.output
    after = read_questions(out / "questions.jsonl")
    assert sorted((q.chunk_id, q.sample) for q in after) == sorted((f"d{i}", s) for i in range(N_KILL) for s in range(2))
    first = {(q.chunk_id, q.sample): q.raw for q in before}
    assert {(q.chunk_id, q.sample): q.raw for q in after if q.chunk_id in done_before} == first
