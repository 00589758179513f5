"""The reference forward pass of all-MiniLM-L6-v2, in plain NumPy (float64).

This file deliberately shares no code with graph.py: it reads the same safetensors
weights and computes BERT the textbook way (HF transformers' BertModel, inference mode),
so that a mistake in the ONNX graph cannot hide behind the same mistake here. Float64
keeps the reference's own rounding far below the float32 model under test.
"""

import math

import numpy as np

LAYERS = 6
HEADS = 12
HIDDEN = 384
LAYER_NORM_EPS = 1e-12


class Reference:
    """BERT encoder plus sentence-transformers' mean pooling and L2 normalisation."""

    def __init__(self, weights):
        self.w = {k: v.astype(np.float64) for k, v in weights.items() if v.dtype == np.float32}

    def _linear(self, x, name):
        # PyTorch's nn.Linear stores weight as [out, in].
        return x @ self.w[name + ".weight"].T + self.w[name + ".bias"]

    def _layer_norm(self, x, name):
        mean = x.mean(axis=-1, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
        x = (x - mean) / np.sqrt(var + LAYER_NORM_EPS)
        return x * self.w[name + ".weight"] + self.w[name + ".bias"]

    def hidden_states(self, ids):
        """last_hidden_state [seq, 384] for one unpadded sequence of token ids."""
        ids = np.asarray(ids, dtype=np.int64)
        seq = len(ids)
        w = self.w
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:seq]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = self._layer_norm(x, "embeddings.LayerNorm")
        head = HIDDEN // HEADS
        for i in range(LAYERS):
            p = f"encoder.layer.{i}."
            # [heads, seq, head_dim]
            q = self._linear(x, p + "attention.self.query").reshape(seq, HEADS, head).transpose(1, 0, 2)
            k = self._linear(x, p + "attention.self.key").reshape(seq, HEADS, head).transpose(1, 0, 2)
            v = self._linear(x, p + "attention.self.value").reshape(seq, HEADS, head).transpose(1, 0, 2)
            scores = q @ k.transpose(0, 2, 1) / math.sqrt(head)
            scores -= scores.max(axis=-1, keepdims=True)
            probs = np.exp(scores)
            probs /= probs.sum(axis=-1, keepdims=True)
            context = (probs @ v).transpose(1, 0, 2).reshape(seq, HIDDEN)
            attn = self._linear(context, p + "attention.output.dense")
            x = self._layer_norm(attn + x, p + "attention.output.LayerNorm")
            h = self._linear(x, p + "intermediate.dense")
            h = 0.5 * h * (1.0 + np.vectorize(math.erf)(h / math.sqrt(2.0)))
            out = self._linear(h, p + "output.dense")
            x = self._layer_norm(out + x, p + "output.LayerNorm")
        return x

    def embed(self, ids):
        """The sentence embedding of one token sequence: mean over tokens, unit length."""
        pooled = self.hidden_states(ids).mean(axis=0)
        return pooled / np.linalg.norm(pooled)
