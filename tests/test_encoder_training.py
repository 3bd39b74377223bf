"""Encoder fine-tuning (issue 11): ``o1-retriever train --mode encoder`` with the real MiniLM on a
few rows and steps, thought-aware anchors, the dev split, the trained model's identity."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from o1_retriever import EmbedderConfig, EmbedderMismatchError, ThinkingEmbedder
from o1_retriever.training.data import PairRow, query_key, read_pairs, split_dev
from o1_retriever.training.encoder import anchor_rows

pytestmark = pytest.mark.slow

PAIRS = [
    ("How do bees tell each other where flowers are?", "Honey bees perform a waggle dance whose angle and length encode the direction and distance of food."),
    ("Why is the sky blue?", "Rayleigh scattering sends short blue wavelengths of sunlight across the sky more than red ones."),
    ("Which metal is liquid at room temperature?", "Mercury is the only metal that is liquid at standard room temperature and pressure."),
    ("What causes ocean tides?", "Tides are raised by the gravitational pull of the moon and, to a lesser degree, the sun."),
    ("How does a volcano erupt?", "Magma rises through the crust and pressure from dissolved gases drives an eruption of lava and ash."),
    ("Where do coffee beans come from?", "Coffee beans are the roasted seeds of the cherries of the Coffea plant, grown in the tropics."),
    ("What is a chess opening?", "A chess opening is the initial sequence of moves, such as the Sicilian Defence or the Ruy Lopez."),
    ("How do plants make food?", "Photosynthesis turns light, water and carbon dioxide into sugars in the chloroplasts of leaves."),
    ("What is the speed of light?", "Light travels through vacuum at 299,792,458 metres per second, a constant of nature."),
    ("Why do we dream?", "Dreams occur mostly during REM sleep; theories link them to memory consolidation and emotion."),
]


@pytest.fixture()
def pairs_file(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps({"query": q, "pos": [p]}) + "\n" for q, p in PAIRS))
    return path


def test_dev_split_never_shares_a_query_with_training_rows():
    rows = [PairRow(query=q, pos=[p]) for q, p in PAIRS]
    # the same query again, with other case/spacing and another positive: one query, two rows
    rows.append(PairRow(query="  why IS the sky   blue? ", pos=["The sky looks blue because air scatters blue light."]))
    for seed in range(5):
        train, dev = split_dev(rows, 0.3, seed=seed)
        assert len(train) + len(dev) == len(rows)
        assert dev and train
        assert not {query_key(r.query) for r in train} & {query_key(r.query) for r in dev}
    assert split_dev(rows, 0.3, seed=1) == split_dev(rows, 0.3, seed=1)  # seeded
    assert split_dev(rows, 0.0) == (rows, [])


def test_anchor_strings_follow_the_thought_dropout(encoder):
    rows = [PairRow(query=q, pos=[p], neg=["an unrelated passage"]) for q, p in PAIRS]
    thoughts = {q: [f"THOUGHT-{i}-{j}" for j in range(3)] for i, (q, _) in enumerate(PAIRS)}
    plain = anchor_rows(rows, thoughts, encoder, dropout=1.0, negatives=1, epoch=0, seed=0)
    assert plain["anchor"] == [q for q, _ in PAIRS]  # dropout 1.0: bare queries, no thought anywhere
    assert not any("THOUGHT" in a for a in plain["anchor"])
    assert plain["positive"] == [p for _, p in PAIRS] and plain["negative_1"] == ["an unrelated passage"] * len(PAIRS)
    aware = anchor_rows(rows, thoughts, encoder, dropout=0.0, negatives=1, epoch=0, seed=0)
    for (q, _), anchor in zip(PAIRS, aware["anchor"]):
        assert anchor.startswith(q + " THOUGHT-") and anchor.removeprefix(q + " ") in thoughts[q]
    many = [PairRow(query=f"question {i}", pos=[f"passage {i}"]) for i in range(400)]
    half = anchor_rows(many, {r.query: ["a thought"] for r in many}, encoder, dropout=0.5, negatives=0, epoch=0, seed=0)
    with_thought = sum(a.endswith(" a thought") for a in half["anchor"])
    assert 160 < with_thought < 240  # about half
    other_epoch = anchor_rows(many, {r.query: ["a thought"] for r in many}, encoder, dropout=0.5, negatives=0, epoch=1, seed=0)
    assert other_epoch["anchor"] != half["anchor"]  # a fresh draw every epoch


def test_train_save_reload_embed_and_refuse_a_minilm_collection(pairs_file, tmp_path, model_home, encoder):
    from o1_retriever.cli import app
    from o1_retriever.index import ChromaIndex

    out = tmp_path / "encoder"
    args = ["train", str(pairs_file), "--mode", "encoder", "--out", str(out), "--max-steps", "2", "--batch-size", "4",
            "--negatives", "1", "--dev-fraction", "0.2", "--thinker", "none", "--cache", "none"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "trained 2 steps" in " ".join(res.output.split())
    meta = json.loads((out / "o1_encoder.json").read_text())
    assert meta["steps"] == 2 and meta["data"]["dev_queries"] == 2 and meta["data"]["train_queries"] == 8
    assert meta["base"] == "sentence-transformers:all-MiniLM-L6-v2"
    assert set(meta["dev"]["after"]) >= {"dev_ndcg@10", "dev_recall@100", "dev_mrr@10"}
    card = (out / "README.md").read_text()
    assert "## o1-retriever" in card and meta["identity"] in card and "all-MiniLM-L6-v2" in card

    trained = ThinkingEmbedder.from_config(EmbedderConfig(thinker="none", encoder=str(out), cache="none"))
    assert trained.fingerprint()["encoder"] == meta["identity"]
    vectors = trained.embed_documents(["Mercury is liquid."])
    assert vectors.shape == (1, 384) and abs(float(np.linalg.norm(vectors[0])) - 1) < 1e-5
    assert not np.allclose(vectors, encoder.encode_documents(["Mercury is liquid."]), atol=1e-4)  # the weights moved

    moved = tmp_path / "elsewhere" / "copy"
    shutil.copytree(out, moved)
    assert ThinkingEmbedder.from_config(EmbedderConfig(thinker="none", encoder=str(moved), cache="none")).fingerprint() == trained.fingerprint()

    db = tmp_path / "db"
    ChromaIndex("minilm-docs", ThinkingEmbedder(None, encoder), path=db).add([], show_progress=False)
    with pytest.raises(EmbedderMismatchError, match="all-MiniLM-L6-v2"):
        ChromaIndex("minilm-docs", trained, path=db)

    res = CliRunner().invoke(app, ["search", "liquid metal", "--collection", "minilm-docs", "--db", str(db), "--encoder", str(out), "--no-think"])
    assert res.exit_code == 2 and "filled by embedder" in " ".join(res.output.split())


def test_thought_aware_training_uses_the_inference_thinkers_cached_thoughts(pairs_file, tmp_path, model_home, thinker, encoder):
    from o1_retriever import SamplingConfig
    from o1_retriever.training.encoder import EncoderTrainConfig, train_encoder

    cache = tmp_path / "thoughts.sqlite"
    embedder = ThinkingEmbedder(thinker, encoder, thoughts=2, sampling=SamplingConfig(max_new_tokens=6), cache=cache)
    rows = read_pairs(pairs_file)
    config = EncoderTrainConfig(max_steps=1, batch_size=4, thought_dropout=0.0, dev_fraction=0.2, negatives=1)
    result = train_encoder(rows, tmp_path / "aware", config, embedder=embedder, show_progress=False)
    assert "dev_thinking_ndcg@10" in result.dev_after
    assert len(embedder.cache) == len(rows)  # every query thought about once, through the cache
    meta = json.loads((tmp_path / "aware" / "o1_encoder.json").read_text())
    assert meta["thoughts"]["thinker"] == thinker.identity and meta["thoughts"]["k"] == 2
    # a rerun generates nothing: the thoughts come from the cache
    calls = []
    original = thinker.think
    thinker.think = lambda *a, **kw: calls.append(a) or original(*a, **kw)
    try:
        train_encoder(rows, tmp_path / "again", config, embedder=ThinkingEmbedder(thinker, encoder, thoughts=2, sampling=SamplingConfig(max_new_tokens=6), cache=cache), show_progress=False)
    finally:
        del thinker.think
    assert calls == []


def test_bad_settings_are_one_line_errors(pairs_file, tmp_path, model_home):
    from o1_retriever.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["train", str(pairs_file), "--out", str(tmp_path / "x"), "--thinker", "none", "--thought-dropout", "0.5"])
    assert res.exit_code == 2 and "needs a thinker" in res.output
    res = runner.invoke(app, ["train", str(pairs_file), "--out", str(tmp_path / "x"), "--mode", "nonsense"])
    assert res.exit_code == 2 and "unknown --mode" in res.output
    res = runner.invoke(app, ["train", str(pairs_file), "--out", str(tmp_path / "x"), "--thinker", "none", "--batch-size", "64", "--dev-fraction", "0"])
    assert res.exit_code == 2 and "fewer than one batch" in res.output


def test_each_epoch_trains_on_its_own_draw_without_duplicates_in_a_batch():
    from datasets import Dataset

    from o1_retriever.training.encoder import EpochDrawSampler

    # two epochs' draws of 6 rows each; rows 0 and 1 share a positive (two anchors of one query)
    anchors = ["q0", "q0 t", "q1", "q2", "q3", "q4"] + ["q0 u", "q0", "q1 t", "q2 t", "q3", "q4 t"]
    positives = ["p0", "p0", "p1", "p2", "p3", "p4"] * 2
    dataset = Dataset.from_dict({"anchor": anchors, "positive": positives})
    sampler = EpochDrawSampler(dataset, block_rows=6, batch_size=2, drop_last=False, seed=0)
    for epoch, block in ((0, range(0, 6)), (1, range(6, 12)), (2, range(0, 6))):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert sorted(i for b in batches for i in b) == list(block)  # epoch e: block e, every row once
        for batch in batches:
            texts = [v for i in batch for v in (anchors[i], positives[i])]
            assert len(texts) == len(set(texts))  # no text twice in a batch
    assert len(sampler) == 3


def test_base_weight_mixes_the_base_weights_back(pairs_file, tmp_path, model_home, encoder):
    """--base-weight w saves (1 - w) x trained + w x base (WiSE-FT); w = 1 gives the base's vectors
    back exactly, and the dev figures recorded are those of the saved mix."""
    from o1_retriever.cli import app

    text = ["Mercury is liquid."]
    common = ["--mode", "encoder", "--max-steps", "2", "--batch-size", "4", "--negatives", "1", "--dev-fraction", "0.2", "--thinker", "none", "--cache", "none"]
    res = CliRunner().invoke(app, ["train", str(pairs_file), "--out", str(tmp_path / "all-base"), "--base-weight", "1", *common])
    assert res.exit_code == 0, res.output
    meta = json.loads((tmp_path / "all-base" / "o1_encoder.json").read_text())
    assert meta["settings"]["base_weight"] == 1.0 and "WiSE-FT" in (tmp_path / "all-base" / "README.md").read_text()
    assert meta["dev"]["after"] == pytest.approx(meta["dev"]["before"], abs=1e-6)  # the base's own dev figures
    mixed = ThinkingEmbedder.from_config(EmbedderConfig(thinker="none", encoder=str(tmp_path / "all-base"), cache="none"))
    np.testing.assert_allclose(mixed.embed_documents(text), encoder.encode_documents(text), atol=1e-5)

    res = CliRunner().invoke(app, ["train", str(pairs_file), "--out", str(tmp_path / "half"), "--base-weight", "0.5", *common])
    assert res.exit_code == 0, res.output
    half = ThinkingEmbedder.from_config(EmbedderConfig(thinker="none", encoder=str(tmp_path / "half"), cache="none")).embed_documents(text)
    assert not np.allclose(half, encoder.encode_documents(text), atol=1e-4)
    res = CliRunner().invoke(app, ["train", str(pairs_file), "--out", str(tmp_path / "x"), "--base-weight", "1.5", *common])
    assert res.exit_code == 2 and "--base-weight" in res.output
