"""Mixing a saved fine-tuned encoder with its base (issue 18): ``mix_saved_encoder`` is the
library function the encoder benchmark calls, and the mix gets the identity, metadata and model
card training writes (``write_encoder_metadata``, the one place). Real MiniLM; the "trained"
folder is MiniLM with shifted weights, described as training describes its output."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture()
def trained(tmp_path, encoder):
    import torch

    from o1_retriever.models import load_sentence_transformer
    from o1_retriever.training.encoder import EncoderTrainConfig, _identity, write_encoder_metadata

    model = load_sentence_transformer("minilm", device="cpu", shared=False)
    with torch.no_grad():
        for value in model.state_dict().values():
            if torch.is_floating_point(value):
                value.add_(0.01)
    out = tmp_path / "trained"
    model.save(str(out))
    meta = {
        "identity": _identity(out, encoder),
        "base": encoder.identity,
        "data": {"source": "pairs", "train_queries": 8, "dev_queries": 2, "rows_per_epoch": 8},
        "settings": asdict(EncoderTrainConfig()),
        "thoughts": None,
        "steps": 1,
        "seconds": 1.0,
        "dev": {"before": {"dev_ndcg@10": 0.4}, "after": {"dev_ndcg@10": 0.5}, "history": []},
    }
    write_encoder_metadata(out, meta)
    return out


def test_a_saved_encoder_mixed_with_its_base_is_described_as_training_describes_it(tmp_path, trained, encoder):
    import torch

    from o1_retriever.encoders.sentence_transformers import SentenceTransformerEncoder
    from o1_retriever.models import load_sentence_transformer
    from o1_retriever.training.encoder import mix_saved_encoder

    out = tmp_path / "mix"
    identity = mix_saved_encoder(trained, "minilm", 0.25, out, device="cpu")

    trained_identity = json.loads((trained / "o1_encoder.json").read_text())["identity"]
    assert identity.startswith(encoder.identity + "+o1-ft:") and identity != trained_identity
    assert SentenceTransformerEncoder(str(out), device="cpu").identity == identity  # what a collection records
    meta = json.loads((out / "o1_encoder.json").read_text())
    assert meta["settings"]["base_weight"] == 0.25 and meta["dev"]["after"] == {} and meta["dev"]["before"] == {"dev_ndcg@10": 0.4}
    card = (out / "README.md").read_text()
    assert card.count("## o1-retriever") == 1 and "0.75 x trained + 0.25 x base (WiSE-FT)" in card

    mixed = load_sentence_transformer(str(out), device="cpu", shared=False).state_dict()
    before = load_sentence_transformer(str(trained), device="cpu", shared=False).state_dict()
    base = encoder.model.state_dict()
    key = next(k for k, v in mixed.items() if torch.is_floating_point(v) and v.ndim == 2)
    torch.testing.assert_close(mixed[key], 0.75 * before[key] + 0.25 * base[key].cpu(), rtol=1e-5, atol=1e-6)


def test_mixing_is_refused_with_the_wrong_base_a_mix_or_a_bad_weight(tmp_path, trained):
    from o1_retriever.training.encoder import EncoderTrainingError, mix_saved_encoder

    with pytest.raises(EncoderTrainingError, match=r"base weight must be in \(0, 1\]"):
        mix_saved_encoder(trained, "minilm", 0.0, tmp_path / "m0", device="cpu")
    with pytest.raises(EncoderTrainingError, match="not an encoder saved by o1-retriever train"):
        mix_saved_encoder(tmp_path, "minilm", 0.5, tmp_path / "m1", device="cpu")
    mix_saved_encoder(trained, "minilm", 0.5, tmp_path / "m2", device="cpu")
    with pytest.raises(EncoderTrainingError, match="already a mix"):
        mix_saved_encoder(tmp_path / "m2", "minilm", 0.5, tmp_path / "m3", device="cpu")
    meta_path = trained / "o1_encoder.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "base": "sentence-transformers:another-model"}))
    with pytest.raises(EncoderTrainingError, match="was trained from sentence-transformers:another-model"):
        mix_saved_encoder(trained, "minilm", 0.5, tmp_path / "m4", device="cpu")
