"""Training (issue 5): synthesis -> training -> loading, with tiny Llama models built here.

The models are random-weight ``LlamaForCausalLM``s (hidden 32, 2 layers) with the real SmolLM2
tokenizer, so every step is the real code path (generation, committee, peft, accelerate,
save/load through the core) in seconds on a CPU. Their thoughts are gibberish: the tests check
the mechanics (masks, losses, votes, resumption, reload), not the quality.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from o1_retriever import EmbedderConfig, SamplingConfig, ThinkingEmbedder
from o1_retriever.errors import O1RetrieverError
from o1_retriever.training.committee import Committee, vote
from o1_retriever.training.data import PairRow

TOPICS = ["tides", "volcanoes", "honey bees", "coffee", "chess", "mercury"]


@pytest.fixture(scope="module")
def tokenizer_path(model_home):
    from o1_retriever.models import smollm2_path

    return smollm2_path()


def _tokenizer(path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def _tiny(tok, seed: int):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=512, tie_word_embeddings=True,
        pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=None,
    )
    return LlamaForCausalLM(cfg).eval()


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory, tokenizer_path):
    """Two tiny models saved as folders (generator/base and a second committee voter)."""
    root = tmp_path_factory.mktemp("tiny")
    dirs = []
    for seed in (0, 1):
        tok = _tokenizer(tokenizer_path)
        folder = root / f"tiny{seed}"
        _tiny(tok, seed).save_pretrained(folder)
        tok.save_pretrained(folder)
        dirs.append(folder)
    return dirs


def _rows() -> list[PairRow]:
    rows = [PairRow(query=f"what is known about {t}?", pos=[f"{t.capitalize()} are described in this passage number {i}."], id=str(i)) for i, t in enumerate(TOPICS)]
    for r in rows:
        r.neg = [o.pos[0] for o in rows if o is not r][:2]
        r.thought = f"{r.query.split('about ')[1].rstrip('?')} facts"
    return rows


# -- refinement --------------------------------------------------------------------------------
def test_soft_and_majority_vote_differ_on_a_hand_built_matrix():
    scores = {"a": np.array([10.0, 0.0, 0.0]), "b": np.array([0.0, 0.1, 0.0]), "bm25": np.array([0.0, 0.1, 0.05])}
    # one confident voter outweighs two lukewarm ones in the soft vote; majority counts heads
    assert vote(scores, mode="soft") == 0
    assert vote(scores, mode="majority") == 1
    # majority ties are broken by the soft sum
    tie = {"a": np.array([5.0, 0.0]), "b": np.array([0.0, 0.2])}
    assert vote(tie, mode="majority") == 0
    with pytest.raises(ValueError):
        vote(scores, mode="plurality")


def test_bm25_voter_prefers_the_candidate_that_shares_the_positive_words():
    from o1_retriever.training.committee import BM25Voter

    rows = _rows()[:3]
    cands = [["unrelated words here", "tides are described in this passage"], ["volcanoes described passage", "nothing"], ["x y", "honey bees passage"]]
    committee = Committee([BM25Voter()], mode="soft")
    committee.refine(rows, cands)
    assert [r.thought for r in rows] == [cands[0][1], cands[1][0], cands[2][1]]
    assert rows[0].all_thought == cands[0] and len(rows[0].votes["bm25"]) == 2


# -- sequences and losses ----------------------------------------------------------------------
def test_label_mask_covers_exactly_the_thought_tokens_and_eos(tokenizer_path):
    from o1_retriever.training.collator import IGNORE, Collator
    from o1_retriever.unified import ensure_special_tokens

    tok = _tokenizer(tokenizer_path)
    model = _tiny(tok, 0)
    ensure_special_tokens(model, tok)
    col = Collator(model, tok, mode="joint", thought_dropout=0.0)
    query, thought = "Do statins lower LDL cholesterol?", "Statins inhibit HMG-CoA reductase and lower LDL."
    ids, labels = col.query_sequence(query, thought)
    # the training sequence is the one the core's unified encoder embeds at inference
    assert ids == col.encoder.token_ids([col.encoder.query_text(query, thought)], 1024)[0]
    prompt = tok(f"<query>{query}</query><thought>", add_special_tokens=True)["input_ids"]
    body = tok(thought, add_special_tokens=False)["input_ids"]
    assert ids[: len(prompt)] == prompt and ids[-1] == tok.convert_tokens_to_ids("<emb>")
    kept = [(i, l) for i, l in enumerate(labels) if l != IGNORE]
    assert [l for _, l in kept] == body + [tok.eos_token_id]
    assert [i for i, _ in kept] == list(range(len(prompt), len(prompt) + len(body) + 1))
    # a dropped thought is the core's no-thinking query and teaches no tokens
    ids0, labels0 = col.query_sequence(query, None)
    assert ids0 == col.encoder.token_ids([col.encoder.query_text(query, None)], 1024)[0]
    assert set(labels0) == {IGNORE}
    # padded batch: labels padded with IGNORE, documents 1 positive + (group - 1) negatives
    col.group_size = 3
    batch = col(_rows()[:2], train=False)
    assert batch["doc_input_ids"].shape[0] == 6 and batch["positives"].tolist() == [0, 3]
    assert (batch["labels"][batch["attention_mask"] == 0] == IGNORE).all()
    # thinker mode clones the composed thinker's own chat prompt
    from o1_retriever.thinkers.transformers import TransformersThinker

    tcol = Collator(_tiny(_tokenizer(tokenizer_path), 1), _tokenizer(tokenizer_path), mode="thinker")
    tids, tlabels = tcol.query_sequence(query, thought)
    chat = tcol.tokenizer(TransformersThinker((tcol.thinker.model, tcol.tokenizer)).render(query), add_special_tokens=False)["input_ids"]
    assert tids[: len(chat)] == chat and tids[len(chat):] == body + [tok.eos_token_id]
    assert [l for l in tlabels if l != IGNORE] == body + [tok.eos_token_id]


def test_info_nce_uses_in_batch_and_hard_negatives():
    import torch

    from o1_retriever.training.losses import info_nce, joint_loss

    torch.manual_seed(0)
    q = torch.randn(4, 16)
    docs = torch.cat([q[0:1], torch.randn(1, 16), q[1:2], torch.randn(1, 16), q[2:3], torch.randn(1, 16), q[3:4], torch.randn(1, 16)])
    right = info_nce(q, docs, torch.tensor([0, 2, 4, 6]))
    wrong = info_nce(q, docs, torch.tensor([1, 3, 5, 7]))
    assert right.item() < 0.01 < wrong.item()
    assert torch.isclose(joint_loss(torch.tensor(2.0), torch.tensor(1.0)), torch.tensor(0.8 * 2 + 0.2 * 1))


# -- training ----------------------------------------------------------------------------------
def test_joint_training_lowers_both_losses_and_the_reload_embeds_identically(tmp_path, tokenizer_path, model_home):
    from o1_retriever.encoders.last_token import LastTokenEncoder
    from o1_retriever.training.trainer import TrainConfig, train
    from o1_retriever.unified import EMB_TOKEN

    tok = _tokenizer(tokenizer_path)
    rows = _rows()
    config = TrainConfig(max_steps=8, batch_size=len(rows), group_size=2, thought_dropout=0.0, lora=False, learning_rate=3e-3, warmup=0.0, gradient_checkpointing=False, temperature=0.05)
    result = train(rows, tmp_path / "joint", config, base=(_tiny(tok, 0), tok), show_progress=False)
    first, last = result.losses[0], result.losses[-1]
    assert last["lm"] < first["lm"] and last["contrastive"] < first["contrastive"]
    docs = [r.pos[0] for r in rows]
    trained = LastTokenEncoder((result.model, result.tokenizer), pool_token=EMB_TOKEN, o1_format=True)
    loaded = ThinkingEmbedder.from_config(EmbedderConfig(model=str(tmp_path / "joint"), cache="none", thoughts=2, sampling=SamplingConfig(max_new_tokens=6)))
    np.testing.assert_allclose(loaded.embed_documents(docs), trained.encode_documents(docs), atol=1e-5)
    q = loaded.embed_query(rows[0].query, return_thoughts=True)
    assert len(q.thoughts) == 2 and q.vector.shape == (32,)
    meta = json.loads((tmp_path / "joint" / "o1_training.json").read_text())["o1_retriever"]
    assert meta["mode"] == "joint" and meta["steps"] == 8


def test_lora_thinker_mode_saves_a_merged_thinker(tmp_path, tokenizer_path, model_home):
    from o1_retriever.training.trainer import TrainConfig, train

    tok = _tokenizer(tokenizer_path)
    config = TrainConfig(mode="thinker", max_steps=2, batch_size=3, lora_r=4, lora_alpha=8, gradient_checkpointing=True)
    result = train(_rows(), tmp_path / "thinker", config, base=(_tiny(tok, 0), tok), show_progress=False)
    assert not (tmp_path / "thinker" / "adapter_config.json").exists()
    assert "<emb>" not in result.tokenizer.get_vocab()  # a thinker keeps its vocabulary
    emb = ThinkingEmbedder.from_config(EmbedderConfig(thinker=str(tmp_path / "thinker"), encoder="last-token:" + str(tmp_path / "thinker"), cache="none", thoughts=2, sampling=SamplingConfig(max_new_tokens=5)))
    assert [len(t) for t in emb.think(["why are tides high?"])] == [2]


def test_one_process_trains_an_encoder_in_bf16_then_a_thinker_in_full_precision(tmp_path, tokenizer_path, model_home, encoder):
    """accelerate keeps its precision process-wide. Encoder training defaults to bf16 where the CPU
    computes it natively; a thinker trained afterwards in the same process (a notebook, a sweep,
    this suite) must not be refused for the other precision."""
    from o1_retriever.training.encoder import EncoderTrainConfig, train_encoder
    from o1_retriever.training.trainer import TrainConfig, train

    enc_config = EncoderTrainConfig(max_steps=1, batch_size=3, thought_dropout=1.0, dev_fraction=0.0, negatives=0, mixed_precision="bf16")
    assert train_encoder(_rows(), tmp_path / "encoder", enc_config, embedder=ThinkingEmbedder(None, encoder, cache=None), show_progress=False).steps == 1
    tok = _tokenizer(tokenizer_path)
    config = TrainConfig(mode="thinker", max_steps=1, batch_size=3, lora_r=4, lora_alpha=8, mixed_precision="no")
    assert train(_rows(), tmp_path / "thinker", config, base=(_tiny(tok, 0), tok), show_progress=False).steps == 1


def test_bad_training_input_gives_clear_errors(tmp_path):
    from o1_retriever.training.synthesis import read_synthesized
    from o1_retriever.training.trainer import TrainConfig, train

    with pytest.raises(O1RetrieverError, match="thought"):
        train([PairRow(query="q", pos=["p"])], tmp_path / "x", TrainConfig())
    with pytest.raises(O1RetrieverError, match="mode"):
        train(_rows(), tmp_path / "x", TrainConfig(mode="dpo"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "q", "pos": []}\n')
    with pytest.raises(O1RetrieverError, match="pos"):
        read_synthesized(bad)
    bad.write_text('{"query": "q", "pos": ["p"]}\n')
    with pytest.raises(O1RetrieverError, match="synthesize"):
        read_synthesized(bad)


# -- the whole pipeline through the CLI --------------------------------------------------------
def test_cli_synthesize_resume_train_load_think_embed(tmp_path, tiny_dirs, model_home):
    from o1_retriever.cli import app

    gen, other = (str(d) for d in tiny_dirs)
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"query": r.query, "pos": r.pos}) + "\n" for r in _rows()[:4]))
    out = tmp_path / "thoughts.jsonl"
    runner = CliRunner()
    args = ["synthesize", str(pairs), "--out", str(out), "--generator", gen, "--candidates", "2", "--shots", "1",
            "--max-new-tokens", "6", "--voters", f"last-token:{gen},last-token:{other},bm25", "--negatives", "2",
            "--mine-encoder", f"last-token:{other}", "--batch", "2"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 4
    for row in rows:
        assert len(row["all_thought"]) == 2 and row["thought"] in row["all_thought"]
        assert len(row["votes"]) == 3 and all(len(v) == 2 for v in row["votes"].values())
        assert len(row["neg"]) == 2 and not set(row["neg"]) & set(row["pos"])  # mined, never the positive
    # resumable: a run that died after the first batch picks up the rest only
    out.write_text("\n".join(out.read_text().splitlines()[:2]) + "\n")
    res = runner.invoke(app, args)
    assert res.exit_code == 0 and "synthesized 2 rows" in res.output.replace("\n", " ")
    assert sorted(json.loads(line)["id"] for line in out.read_text().splitlines()) == ["1", "2", "3", "4"]

    model_dir = tmp_path / "model"
    res = runner.invoke(app, ["train", str(out), "--mode", "joint", "--base", gen, "--out", str(model_dir), "--max-steps", "2", "--batch-size", "2",
                              "--group-size", "2", "--lora-r", "4", "--lora-alpha", "8", "--no-gradient-checkpointing"])
    assert res.exit_code == 0, res.output
    embedder = ThinkingEmbedder.from_config(EmbedderConfig(model=str(model_dir), cache="none", thoughts=2, sampling=SamplingConfig(max_new_tokens=6)))
    q = embedder.embed_query("what is known about tides?", return_thoughts=True)
    assert len(q.thoughts) == 2 and abs(float(np.linalg.norm(q.vector)) - 1) < 1e-5
    assert embedder.embed_documents(["Tides are described here."]).shape == (1, 32)

    res = runner.invoke(app, ["train", str(tmp_path / "missing.jsonl"), "--out", str(model_dir)])
    assert res.exit_code == 2 and "no such file" in res.output


def test_adapter_checkpoint_merges_into_a_loadable_unified_model(tmp_path, tiny_dirs, model_home):
    from o1_retriever.encoders.last_token import LastTokenEncoder
    from o1_retriever.training.trainer import TrainConfig, merge_adapter, train
    from o1_retriever.unified import EMB_TOKEN

    config = TrainConfig(base=str(tiny_dirs[0]), max_steps=2, batch_size=3, group_size=2, lora_r=4, lora_alpha=8, learning_rate=1e-2, save="adapter", gradient_checkpointing=False)
    result = train(_rows(), tmp_path / "adapter", config, show_progress=False)
    assert (tmp_path / "adapter" / "adapter_config.json").exists() and (tmp_path / "adapter" / "tokenizer.json").exists()
    merged = merge_adapter(tmp_path / "adapter", tmp_path / "merged")
    in_memory = LastTokenEncoder((result.model.merge_and_unload(), result.tokenizer), pool_token=EMB_TOKEN, o1_format=True)
    loaded = ThinkingEmbedder.from_config(EmbedderConfig(model=str(merged), cache="none"))
    docs = ["Tides follow the moon.", "Coffee is a drink."]
    np.testing.assert_allclose(loaded.embed_documents(docs), in_memory.encode_documents(docs), atol=1e-5)
    with pytest.raises(O1RetrieverError, match="adapter"):
        merge_adapter(tmp_path / "merged", tmp_path / "again")
