"""Builds the all-MiniLM-L6-v2 encoder as an ONNX graph with onnx.helper.

The graph is BERT in inference mode, written out op by op so that every op is one tract
loads and optimises well (no LayerNormalization, Gelu or Attention contrib ops):

  input_ids      int64 [batch, seq]
  attention_mask int64 [batch, seq]   1 for tokens, 0 for padding
  -> last_hidden_state float32 [batch, seq, 384]

Steps: word embeddings (Gather) + position embeddings sliced to `seq` + the token-type-0
embedding (token_type_ids are always zero, so that row is folded into the position
table), LayerNorm; then 6 layers of 12-head self-attention (the 1/sqrt(32) score scale
folded into the query projection, the mask as an additive -10000 bias as in the original
BERT), LayerNorm, a GELU (erf form) feed-forward, LayerNorm. LayerNorm is spelled as
ReduceMean/Sub/Mul/Sqrt/Div. Batch and sequence are dynamic; positions exist for 512
tokens but the model was trained for at most 256 (sentence-transformers' max_seq_length).

The output is deterministic: same weights, same bytes (no timestamps, names derived from
layer numbers, initialisers in a fixed order).
"""

import math

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
LAYERS = 6
HEADS = 12
HIDDEN = 384
HEAD_DIM = HIDDEN // HEADS
LAYER_NORM_EPS = 1e-12
MASK_BIAS = -10000.0
MAX_SEQ_LEN = 256


class _Graph:
    """Accumulates nodes and initialisers with unique, stable names."""

    def __init__(self):
        self.nodes = []
        self.inits = []

    def const(self, name, array):
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def op(self, op_type, inputs, name, **attrs):
        self.nodes.append(helper.make_node(op_type, inputs, [name], name=name, **attrs))
        return name

    def linear(self, x, weights, prefix, out):
        """x @ W^T + b, with W stored [out, in] as in PyTorch."""
        w = self.const(prefix + ".weight_t", weights[prefix + ".weight"].T)
        b = self.const(prefix + ".bias", weights[prefix + ".bias"])
        return self.op("Add", [self.op("MatMul", [x, w], out + "/matmul"), b], out)

    def layer_norm(self, x, weights, prefix, out):
        mean = self.op("ReduceMean", [x], out + "/mean", axes=[-1], keepdims=1)
        centred = self.op("Sub", [x, mean], out + "/centred")
        square = self.op("Mul", [centred, centred], out + "/square")
        var = self.op("ReduceMean", [square], out + "/var", axes=[-1], keepdims=1)
        std = self.op("Sqrt", [self.op("Add", [var, "eps"], out + "/var_eps")], out + "/std")
        normed = self.op("Div", [centred, std], out + "/normed")
        gamma = self.const(prefix + ".weight", weights[prefix + ".weight"])
        beta = self.const(prefix + ".bias", weights[prefix + ".bias"])
        return self.op("Add", [self.op("Mul", [normed, gamma], out + "/scaled"), beta], out)


def build(weights):
    """The ONNX ModelProto for the float32 safetensors `weights` of all-MiniLM-L6-v2."""
    g = _Graph()
    f32 = np.float32
    g.const("eps", np.array(LAYER_NORM_EPS, f32))
    g.const("one", np.array(1.0, f32))
    g.const("half", np.array(0.5, f32))
    g.const("inv_sqrt2", np.array(1.0 / math.sqrt(2.0), f32))
    g.const("mask_bias", np.array(MASK_BIAS, f32))
    g.const("zero_i64", np.array([0], np.int64))
    g.const("one_i64", np.array([1], np.int64))
    g.const("heads_shape", np.array([0, 0, HEADS, HEAD_DIM], np.int64))
    g.const("hidden_shape", np.array([0, 0, HIDDEN], np.int64))

    # Embeddings. Token type 0 is the only type used: add its row to every position.
    words = g.const("embeddings.word", weights["embeddings.word_embeddings.weight"])
    positions = g.const(
        "embeddings.position_plus_type0",
        weights["embeddings.position_embeddings.weight"]
        + weights["embeddings.token_type_embeddings.weight"][0],
    )
    shape = g.op("Shape", ["input_ids"], "input_shape")
    seq = g.op("Gather", [shape, "one_i64"], "seq_len", axis=0)
    pos = g.op("Slice", [positions, "zero_i64", seq, "zero_i64"], "positions")
    x = g.op("Gather", [words, "input_ids"], "word_embeddings", axis=0)
    x = g.op("Add", [x, pos], "embeddings_sum")
    x = g.layer_norm(x, weights, "embeddings.LayerNorm", "embeddings")

    # Additive attention bias, [batch, 1, 1, seq]: 0 for tokens, -10000 for padding.
    mask = g.op("Cast", ["attention_mask"], "mask_f32", to=TensorProto.FLOAT)
    mask = g.op("Unsqueeze", [mask, g.const("mask_axes", np.array([1, 2], np.int64))], "mask_4d")
    bias = g.op("Mul", [g.op("Sub", ["one", mask], "mask_inverted"), "mask_bias"], "attention_bias")

    scale = f32(1.0 / math.sqrt(HEAD_DIM))
    for i in range(LAYERS):
        p = f"encoder.layer.{i}."
        n = f"layer{i}/"
        # Fold the score scale into the query projection: (xW+b)/s = x(W/s) + b/s.
        scaled = {
            p + "attention.self.query_scaled.weight": weights[p + "attention.self.query.weight"] * scale,
            p + "attention.self.query_scaled.bias": weights[p + "attention.self.query.bias"] * scale,
        }
        q = g.linear(x, scaled, p + "attention.self.query_scaled", n + "q")
        k = g.linear(x, weights, p + "attention.self.key", n + "k")
        v = g.linear(x, weights, p + "attention.self.value", n + "v")
        # [batch, seq, heads, head_dim] -> q, v: [batch, heads, seq, head_dim], k: [.., head_dim, seq]
        q = g.op("Transpose", [g.op("Reshape", [q, "heads_shape"], n + "q_heads")], n + "q_t", perm=[0, 2, 1, 3])
        k = g.op("Transpose", [g.op("Reshape", [k, "heads_shape"], n + "k_heads")], n + "k_t", perm=[0, 2, 3, 1])
        v = g.op("Transpose", [g.op("Reshape", [v, "heads_shape"], n + "v_heads")], n + "v_t", perm=[0, 2, 1, 3])
        scores = g.op("Add", [g.op("MatMul", [q, k], n + "scores_raw"), bias], n + "scores")
        probs = g.op("Softmax", [scores], n + "probs", axis=-1)
        context = g.op("MatMul", [probs, v], n + "context_heads")
        context = g.op("Transpose", [context], n + "context_t", perm=[0, 2, 1, 3])
        context = g.op("Reshape", [context, "hidden_shape"], n + "context")
        attn = g.linear(context, weights, p + "attention.output.dense", n + "attention_out")
        x = g.op("Add", [attn, x], n + "attention_residual")
        x = g.layer_norm(x, weights, p + "attention.output.LayerNorm", n + "attention_norm")
        h = g.linear(x, weights, p + "intermediate.dense", n + "ffn_in")
        # GELU, erf form: 0.5 * h * (1 + erf(h / sqrt 2)).
        erf = g.op("Erf", [g.op("Mul", [h, "inv_sqrt2"], n + "gelu_scaled")], n + "gelu_erf")
        gate = g.op("Mul", [g.op("Add", [erf, "one"], n + "gelu_one_plus"), "half"], n + "gelu_gate")
        h = g.op("Mul", [h, gate], n + "gelu")
        out = g.linear(h, weights, p + "output.dense", n + "ffn_out")
        x = g.op("Add", [out, x], n + "ffn_residual")
        out = n + "ffn_norm" if i < LAYERS - 1 else "last_hidden_state"
        x = g.layer_norm(x, weights, p + "output.LayerNorm", out)

    graph = helper.make_graph(
        g.nodes,
        "all-MiniLM-L6-v2",
        inputs=[
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"]),
        ],
        outputs=[helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "seq", HIDDEN])],
        initializer=g.inits,
        doc_string=(
            "sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0) encoder; mean-pool over "
            f"attention_mask and L2-normalise for sentence embeddings; at most {MAX_SEQ_LEN} tokens"
        ),
    )
    model = helper.make_model(
        graph,
        producer_name="hybrid models/minilm/graph.py",
        producer_version="1",
        opset_imports=[helper.make_opsetid("", OPSET)],
    )
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model
