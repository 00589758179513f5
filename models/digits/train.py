"""Trains models/digits-v1.onnx, a handwritten-digit classifier, and writes the held-out
test data in tests/data/digits/heldout.json and the held-out workload that `hybrid plan`
replays, workloads/digits-heldout.jsonl.

Run by models/train-digits (which makes the venv and checks the sha256 afterwards); see
its --help. Steps:

1. Load scikit-learn's bundled copy of the UCI handwritten digits (1797 8x8 images, pixel
   values 0..16; no download) and scale the pixels to [0, 1] as float32.
2. Split it 75/25, stratified by class, with a fixed seed, and train a multinomial
   logistic regression (lbfgs, fixed seed) on the 75 %. Print the accuracy on the whole
   held-out 25 %.
3. Export it with skl2onnx: input `input` float32 [N, 64], outputs `label` int64 [N] and
   `probabilities` float32 [N, 10], no ZipMap. skl2onnx picks the ai.onnx.ml operator
   LinearClassifier unless told not to, and maps the arg-max to a class label with
   ai.onnx.ml.ArrayFeatureExtractor even then; the first is black-listed and the second
   rewritten away (the classes are 0..9, so the label is the arg-max index itself), which
   leaves only default-domain operators (MatMul, Add, Softmax, ArgMax, Reshape).
4. Fix every field that could vary between runs (graph name, producer, doc strings), check
   the model with onnx.checker, and run it with onnx's reference evaluator on the whole
   held-out set: the labels must equal scikit-learn's and the probabilities agree with
   predict_proba to 1e-5.
5. Unless the sha256 differs from --expect-sha256, write the model, heldout.json (the
   first 64 held-out samples, their true labels and scikit-learn's predict_proba, each
   float with all its float32 digits) and the workload (every held-out sample as a
   request body with its grey levels 0..16, and its true label) atomically.
"""

import argparse
import hashlib
import json
import os
import pathlib
import sys
import tempfile
import time

import numpy as np
import onnx
import onnx.checker
import onnx.helper
import onnx.numpy_helper
import onnx.reference
import threadpoolctl
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

MODEL_NAME = "digits-v1"
SEED = 0
TEST_SIZE = 0.25
OPSET = 13
SAMPLES = 64  # held-out samples written to heldout.json
MAX_PROBABILITY_ERROR = 1e-5
PLAIN_OPS = {"MatMul", "Gemm", "Add", "Softmax", "ArgMax", "Reshape", "Cast"}

HERE = pathlib.Path(__file__).resolve().parent


def log(message):
    print(f"train-digits: {message}", file=sys.stderr, flush=True)


def write_atomically(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise


def data():
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    return train_test_split(x, y, test_size=TEST_SIZE, random_state=SEED, stratify=y)


def train(x_train, y_train):
    # lbfgs on more than two classes is multinomial (softmax) regression.
    clf = LogisticRegression(solver="lbfgs", C=1.0, max_iter=1000, tol=1e-6, random_state=SEED)
    clf.fit(x_train, y_train)
    if clf.n_iter_.max() >= clf.max_iter:
        raise SystemExit("train-digits: lbfgs did not converge")
    if list(clf.classes_) != list(range(10)):
        raise SystemExit(f"train-digits: unexpected classes {clf.classes_}")
    return clf


def label_from_argmax(model):
    """Replaces ArrayFeatureExtractor(classes, argmax) and the casts after it with a
    Reshape of the arg-max to [N]: with classes 0..9 the label is the index."""
    graph = model.graph
    argmax = [n for n in graph.node if n.op_type == "ArgMax"]
    if len(argmax) != 1:
        raise SystemExit("train-digits: expected one ArgMax in the skl2onnx graph")
    keep = []
    for node in graph.node:
        keep.append(node)
        if node is argmax[0]:
            break
    # Everything after the ArgMax must be the label tail or the softmax branch.
    tail = list(graph.node)[len(keep):]
    softmax = [n for n in tail if n.op_type == "Softmax"]
    dropped = [n for n in tail if n.op_type != "Softmax"]
    if len(softmax) != 1 or sorted({n.op_type for n in dropped}) not in (
        ["ArrayFeatureExtractor", "Cast", "Reshape"],
        ["ArrayFeatureExtractor", "Reshape"],
    ):
        raise SystemExit("train-digits: unexpected skl2onnx graph after ArgMax: "
                         + ", ".join(n.op_type for n in tail))
    argmax[0].output[0] = "label_index"  # int64 [N, 1]
    shape = onnx.numpy_helper.from_array(np.array([-1], np.int64), "label_shape")
    reshape = onnx.helper.make_node("Reshape", ["label_index", shape.name], ["label"],
                                    name="ReshapeLabel")
    del graph.node[:]
    graph.node.extend(keep + softmax + [reshape])

    used = {i for n in graph.node for i in n.input}
    live = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(live + [shape])
    opsets = [o for o in model.opset_import if o.domain == ""]
    del model.opset_import[:]
    model.opset_import.extend(opsets)


def export(clf):
    model = convert_sklearn(
        clf,
        name=MODEL_NAME,
        initial_types=[("input", FloatTensorType([None, 64]))],
        options={id(clf): {"zipmap": False}},
        target_opset={"": OPSET, "ai.onnx.ml": 1},
        black_op={"LinearClassifier"},
    )
    label_from_argmax(model)

    model.producer_name = "hybrid models/digits/train.py"
    model.producer_version = "1"
    model.domain = ""
    model.model_version = 1
    model.doc_string = (
        "digits-v1: multinomial logistic regression on scikit-learn's copy of the UCI "
        "handwritten digits (8x8, pixels / 16). input: float32 [N, 64] in [0, 1], row-major "
        "8x8. outputs: label int64 [N], probabilities float32 [N, 10]."
    )
    model.graph.name = MODEL_NAME
    model.graph.doc_string = ""
    del model.metadata_props[:]
    for node in model.graph.node:
        node.doc_string = ""
    name_batch_dim(model)

    onnx.checker.check_model(model, full_check=True)
    ops = {n.op_type for n in model.graph.node}
    if not ops <= PLAIN_OPS or any(n.domain not in ("", "ai.onnx") for n in model.graph.node):
        raise SystemExit(f"train-digits: graph uses operators outside {sorted(PLAIN_OPS)}: {sorted(ops)}")
    return model


def name_batch_dim(model):
    """skl2onnx names the batch dimension itself; the manifest calls it "N"."""
    for v in list(model.graph.input) + list(model.graph.output):
        dims = v.type.tensor_type.shape.dim
        if dims and not dims[0].dim_value:
            dims[0].Clear()
            dims[0].dim_param = "N"


def check_interface(model):
    """The graph's inputs and outputs, as models/manifest.toml lists them."""
    def describe(values):
        out = []
        for v in values:
            t = v.type.tensor_type
            dims = [d.dim_param or d.dim_value for d in t.shape.dim]
            out.append((v.name, onnx.TensorProto.DataType.Name(t.elem_type), dims))
        return out

    inputs, outputs = describe(model.graph.input), describe(model.graph.output)
    expected_in = [("input", "FLOAT", ["N", 64])]
    expected_out = [("label", "INT64", ["N"]), ("probabilities", "FLOAT", ["N", 10])]
    if inputs != expected_in or outputs != expected_out:
        raise SystemExit(f"train-digits: graph interface {inputs} -> {outputs}, "
                         f"expected {expected_in} -> {expected_out}")


def float32_text(x):
    """Shortest decimal that reads back as the same float32."""
    s = repr(float(np.float32(x)))
    short = str(np.float32(x))
    return short if np.float32(float(short)) == np.float32(x) else s


def heldout_document(x, y, probabilities, model_sha):
    def row(values):
        return "[" + ", ".join(float32_text(v) for v in values) + "]"

    about = (f"The first {SAMPLES} held-out samples of scikit-learn's load_digits (pixels / 16, "
             f"float32), split by train_test_split(test_size={TEST_SIZE}, random_state={SEED}, "
             "stratify=y); labels are the true digits, probabilities scikit-learn's "
             "predict_proba. Regenerate: models/train-digits --force")
    lines = [
        f' "about": {json.dumps(about)}',
        f' "model": {json.dumps(MODEL_NAME)}',
        f' "model_sha256": {json.dumps(model_sha)}',
        ' "pixels": [\n' + ",\n".join("  " + row(r) for r in x) + "\n ]",
        f' "labels": {json.dumps([int(v) for v in y])}',
        ' "probabilities": [\n' + ",\n".join("  " + row(r) for r in probabilities) + "\n ]",
    ]
    text = "{\n" + ",\n".join(lines) + "\n}\n"

    # What a reader gets back must be exactly the float32 values.
    doc = json.loads(text)
    if not (np.array_equal(np.array(doc["pixels"], np.float32), x)
            and np.array_equal(np.array(doc["probabilities"], np.float32), probabilities)
            and doc["labels"] == [int(v) for v in y]):
        raise SystemExit("train-digits: heldout.json does not read back exactly")
    return text.encode("utf-8")


def workload_document(x, y):
    """One JSON line per held-out sample: the request `hybrid plan` sends and its label."""
    lines = []
    for i, (pixels, label) in enumerate(zip(x, y)):
        levels = [int(v) for v in np.rint(pixels * 16)]
        lines.append(json.dumps({
            "id": f"digits-{i:04d}",
            "content_type": "application/json",
            "body": {"pixels": levels},
            "label": str(int(label)),
        }, separators=(",", ":")))
    return ("\n".join(lines) + "\n").encode("utf-8")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--onnx-out", type=pathlib.Path, default=HERE.parent / f"{MODEL_NAME}.onnx")
    parser.add_argument("--heldout-out", type=pathlib.Path,
                        default=HERE.parent.parent / "tests/data/digits/heldout.json")
    parser.add_argument("--workload-out", type=pathlib.Path,
                        default=HERE.parent.parent / "workloads/digits-heldout.jsonl")
    parser.add_argument("--expect-sha256",
                        help="write nothing unless the model has this sha256 (models/manifest.toml's)")
    args = parser.parse_args()
    started = time.monotonic()

    x_train, x_test, y_train, y_test = data()
    clf = train(x_train, y_train)
    predicted = clf.predict(x_test)
    correct = int((predicted == y_test).sum())
    accuracy = correct / len(y_test)
    log(f"trained on {len(y_train)} samples in {clf.n_iter_.max()} lbfgs iterations; "
        f"held-out accuracy {accuracy:.4f} ({correct}/{len(y_test)})")

    model = export(clf)
    check_interface(model)
    model_bytes = model.SerializeToString()
    model_sha = hashlib.sha256(model_bytes).hexdigest()
    log(f"exported: {len(model_bytes)} bytes, opset {OPSET}, operators "
        f"{', '.join(n.op_type for n in model.graph.node)}, sha256 {model_sha}")

    # The bytes about to be written, run by onnx's reference evaluator (no onnxruntime).
    session = onnx.reference.ReferenceEvaluator(onnx.load_from_string(model_bytes))
    label, probabilities = session.run(None, {"input": x_test})
    expected = clf.predict_proba(x_test)
    error = float(np.abs(probabilities - expected).max())
    if label.dtype != np.int64 or probabilities.dtype != np.float32 or label.shape != y_test.shape:
        raise SystemExit(f"train-digits: ONNX outputs {label.dtype}{label.shape}, "
                         f"{probabilities.dtype}{probabilities.shape}")
    if not np.array_equal(label, predicted) or error > MAX_PROBABILITY_ERROR:
        raise SystemExit(f"train-digits: ONNX disagrees with scikit-learn (labels equal: "
                         f"{np.array_equal(label, predicted)}, max probability error {error:.2e})")
    log(f"ONNX model agrees with scikit-learn on all {len(y_test)} held-out samples "
        f"(max probability error {error:.1e})")

    if args.expect_sha256 and model_sha != args.expect_sha256:
        raise SystemExit(f"train-digits: the trained model has sha256 {model_sha}, "
                         f"manifest.toml expects {args.expect_sha256} (nothing written)")

    heldout = heldout_document(x_test[:SAMPLES], y_test[:SAMPLES],
                               expected[:SAMPLES].astype(np.float32), model_sha)
    write_atomically(args.onnx_out, model_bytes)
    write_atomically(args.heldout_out, heldout)
    write_atomically(args.workload_out, workload_document(x_test, y_test))
    log(f"wrote {args.onnx_out}, {args.heldout_out} and {args.workload_out} "
        f"({time.monotonic() - started:.1f} s)")


if __name__ == "__main__":
    # One thread: keeps the arithmetic (and so the bytes) the same on every run.
    with threadpoolctl.threadpool_limits(1):
        main()
