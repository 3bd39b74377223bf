"""The unified shape: one causal LM thinks and embeds at <emb> (tiny model built by the test)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from o1_retriever import EmbedderConfig, SamplingConfig, ThinkingEmbedder
from o1_retriever.unified import SPECIAL_TOKENS, UnifiedModel


def _tiny_llama(folder, model_home, *, with_tokens: bool):
    """A 2-layer Llama with SmolLM2's real tokenizer, saved like a trained O1 model."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from o1_retriever.models import smollm2_path

    tok = AutoTokenizer.from_pretrained(smollm2_path())
    if with_tokens:
        tok.add_tokens(list(SPECIAL_TOKENS), special_tokens=True)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    LlamaForCausalLM(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def unified_dir(tmp_path_factory, model_home):
    return _tiny_llama(tmp_path_factory.mktemp("unified"), model_home, with_tokens=True)


def test_unified_model_thinks_and_embeds_at_emb(unified_dir):
    embedder = ThinkingEmbedder.from_config(EmbedderConfig(model=str(unified_dir), cache="none", thoughts=2, aggregation="o1",
                                                           sampling=SamplingConfig(max_new_tokens=8)))
    unified = embedder.encoder
    assert embedder.thinker.model is unified.model  # one LM plays both roles
    assert embedder.thinker.render("q") == "<query>q</query><thought>"
    eos = unified.tokenizer.eos_token
    assert unified.query_text("q", "t") == f"<query>q</query><thought>t{eos}"
    assert unified.query_text("q", None) == f"<query>q</query><thought>{eos}"  # the no-thinking form
    q_ids = unified.token_ids([unified.query_text("q", "t")], 256)[0]
    special = [unified.tokenizer.convert_tokens_to_ids(t) for t in ("<query>", "</query>", "<thought>")]
    assert q_ids[0] == special[0] and set(special) <= set(q_ids)  # markers are single tokens
    ids = unified.token_ids(["some document"], 512)[0]
    assert ids[-1] == unified.tokenizer.convert_tokens_to_ids("<emb>")

    result = embedder.embed_query("what is gallium?", return_thoughts=True)
    assert result.vector.shape == (32,) and len(result.thoughts) == 2
    docs = embedder.embed_documents(["Gallium melts in the hand.", "Bees dance."])
    assert docs.shape == (2, 32)
    assert np.allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-5)
    # batching and padding do not change an embedding (right padding, pooled at <emb>)
    alone = embedder.embed_documents(["Bees dance."])[0]
    assert np.allclose(alone, docs[1], atol=1e-5)
    plain = embedder.embed_query("what is gallium?", thinking=False)
    assert np.allclose(plain, unified.encode_queries([unified.query_text("what is gallium?", None)])[0], atol=1e-6)


def test_missing_special_tokens_are_added_on_a_private_copy(tmp_path, model_home, caplog):
    from o1_retriever.models import load_causal_lm

    folder = _tiny_llama(tmp_path / "plain", model_home, with_tokens=False)
    shared_model, shared_tok = load_causal_lm(str(folder))
    size = len(shared_tok)
    with caplog.at_level(logging.WARNING):
        unified = UnifiedModel.load(str(folder))
    assert "adding them" in caplog.text
    assert all(t in unified.encoder.tokenizer.get_vocab() for t in SPECIAL_TOKENS)
    assert len(shared_tok) == size and unified.encoder.model is not shared_model
    assert unified.encoder.encode_documents(["x"]).shape == (1, 32)


def test_long_query_is_cut_with_a_warning_keeping_the_pooling_token(unified_dir, caplog):
    embedder = ThinkingEmbedder.from_config(EmbedderConfig(model=str(unified_dir), cache="none"))
    encoder = embedder.encoder
    long_query = "gallium " * 400
    with caplog.at_level(logging.WARNING):
        vector = embedder.embed_query(long_query, thinking=False)
    assert "cut to fit" in caplog.text and vector.shape == (32,)
    ids = encoder.token_ids([encoder.query_text(long_query, None)], encoder.max_query_tokens)[0]
    assert len(ids) == encoder.max_query_tokens and ids[-1] == encoder.pool_id
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        embedder.embed_documents([long_query])  # documents are cut quietly (sources chunk them)
    assert "cut to fit" not in caplog.text
