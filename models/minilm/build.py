"""Builds models/minilm-l6-v2.onnx from the safetensors weights, verifies it, and checks
or regenerates the committed test data in tests/data/embeddings/.

Run by models/build-minilm (which downloads and verifies the weights first); see its
--help. Steps:

1. Load the weights and the reference tokenizer (tokenizer.json) from --model-dir.
2. Build the ONNX graph (graph.py) and serialise it; the bytes are deterministic.
3. Run it with onnxruntime on tests/data/embeddings/sentences.txt in padded batches,
   mean-pool over the mask and L2-normalise; compare each sentence's embedding with the
   NumPy reference (reference.py). Fail unless every cosine is >= 0.9999.
4. Write the model and the vocabulary atomically (temp file in the same directory, then
   rename).
5. Tokenise the tokenizer cases (tokenizer_cases.py) and compute the reference
   embeddings; with --regenerate-test-data write tokens.json and reference.json, else
   check the committed files still agree (token ids exactly, embeddings at cosine
   >= 0.999999).
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
import onnxruntime as ort
from safetensors.numpy import load_file
from tokenizers import Tokenizer

import graph
import reference
from tokenizer_cases import CASES

MODEL_NAME = "minilm-l6-v2"
MIN_COSINE = 0.9999
BATCH = 16


def log(message):
    print(f"build-minilm: {message}", file=sys.stderr, flush=True)


def reference_tokenizer(model_dir):
    """tokenizers' BertTokenizer for the model, truncating to 256 tokens, no padding."""
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.no_padding()  # tokenizer.json ships with fixed padding to 128
    tokenizer.enable_truncation(graph.MAX_SEQ_LEN)  # and truncation at 128
    return tokenizer


def write_atomically(path, data):
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise


def onnx_embeddings(session, encodings):
    """Sentence embeddings from the ONNX model, batched and right-padded like the guest."""
    out = []
    for start in range(0, len(encodings), BATCH):
        batch = encodings[start : start + BATCH]
        seq = max(len(e.ids) for e in batch)
        ids = np.zeros((len(batch), seq), np.int64)
        mask = np.zeros((len(batch), seq), np.int64)
        for i, e in enumerate(batch):
            ids[i, : len(e.ids)] = e.ids
            mask[i, : len(e.ids)] = 1
        (hidden,) = session.run(["last_hidden_state"], {"input_ids": ids, "attention_mask": mask})
        m = mask[:, :, None].astype(np.float32)
        pooled = (hidden * m).sum(axis=1) / m.sum(axis=1)
        out.extend(pooled / np.linalg.norm(pooled, axis=1, keepdims=True))
    return out


def check_vocab(tokenizer, vocab_bytes):
    """vocab.txt must list tokenizer.json's vocabulary in id order (the guest reads it)."""
    lines = vocab_bytes.decode("utf-8").split("\n")
    if lines[-1] == "":
        lines.pop()
    vocab = tokenizer.get_vocab()
    if len(lines) != len(vocab) or any(vocab.get(tok) != i for i, tok in enumerate(lines)):
        raise SystemExit("build-minilm: vocab.txt and tokenizer.json disagree")


def round7(x):
    return float(f"{x:.7g}")


def tokens_document(tokenizer):
    return {
        "about": "Token ids from Hugging Face tokenizers (tokenizer.json of all-MiniLM-L6-v2), "
        f"truncated to {graph.MAX_SEQ_LEN} tokens including [CLS] and [SEP]. "
        "Regenerate: models/build-minilm --regenerate-test-data",
        "max_tokens": graph.MAX_SEQ_LEN,
        "cases": [{"text": text, "ids": tokenizer.encode(text).ids} for text in CASES],
    }


def reference_document(sentences, encodings, embeddings, onnx_sha):
    return {
        "about": "NumPy float64 reference embeddings (mean-pooled, L2-normalised) of "
        "sentences.txt, 7 significant digits. Regenerate: models/build-minilm --regenerate-test-data",
        "model": MODEL_NAME,
        "model_sha256": onnx_sha,
        "sentences": [
            {"text": s, "tokens": len(e.ids), "embedding": [round7(v) for v in emb]}
            for s, e, emb in zip(sentences, encodings, embeddings)
        ],
    }


def dumps(doc):
    """JSON with one line per top-level field and one line per list entry: diffable."""
    lines = []
    for key, value in doc.items():
        if isinstance(value, list):
            items = ",\n".join("  " + json.dumps(v, ensure_ascii=False) for v in value)
            lines.append(f" {json.dumps(key)}: [\n{items}\n ]")
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}")
    return ("{\n" + ",\n".join(lines) + "\n}\n").encode("utf-8")


def check_test_data(data_dir, tokens_doc, reference_doc):
    """Whether the committed test data agree with what this build computed."""
    problems = []
    committed = json.loads((data_dir / "tokens.json").read_text("utf-8"))
    if committed["cases"] != tokens_doc["cases"]:
        problems.append("tokens.json differs from the reference tokenizer")
    committed = json.loads((data_dir / "reference.json").read_text("utf-8"))
    old = committed["sentences"]
    new = reference_doc["sentences"]
    if [(s["text"], s["tokens"]) for s in old] != [(s["text"], s["tokens"]) for s in new]:
        problems.append("reference.json lists other sentences or token counts than sentences.txt")
    else:
        for o, n in zip(old, new):
            a, b = np.array(o["embedding"]), np.array(n["embedding"])
            if a @ b / (np.linalg.norm(a) * np.linalg.norm(b)) < 0.999999:
                problems.append(f"reference.json embedding of {o['text']!r} changed")
    if committed["model_sha256"] != reference_doc["model_sha256"]:
        problems.append("reference.json names another model sha256")
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=pathlib.Path, required=True,
                        help="directory with model.safetensors, tokenizer.json, vocab.txt")
    parser.add_argument("--onnx-out", type=pathlib.Path, required=True)
    parser.add_argument("--vocab-out", type=pathlib.Path, required=True)
    parser.add_argument("--data-dir", type=pathlib.Path, required=True,
                        help="tests/data/embeddings (sentences.txt in, tokens.json and reference.json)")
    parser.add_argument("--regenerate-test-data", action="store_true")
    args = parser.parse_args()
    started = time.monotonic()

    weights = load_file(str(args.model_dir / "model.safetensors"))
    tokenizer = reference_tokenizer(args.model_dir)
    vocab_bytes = (args.model_dir / "vocab.txt").read_bytes()
    check_vocab(tokenizer, vocab_bytes)

    model_bytes = graph.build(weights).SerializeToString()
    onnx_sha = hashlib.sha256(model_bytes).hexdigest()
    log(f"graph built: {len(model_bytes)} bytes, sha256 {onnx_sha} ({time.monotonic() - started:.1f} s)")

    sentences = (args.data_dir / "sentences.txt").read_text("utf-8").split("\n")
    sentences = [s for s in sentences if s]
    encodings = tokenizer.encode_batch(sentences)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    got = onnx_embeddings(session, encodings)
    ref = reference.Reference(weights)
    expected = [ref.embed(e.ids) for e in encodings]
    cosines = [float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b))) for a, b in zip(got, expected)]
    worst = int(np.argmin(cosines))
    log(f"verified {len(sentences)} sentences against the NumPy reference: min cosine "
        f"{cosines[worst]:.9f} ({sentences[worst]!r}) ({time.monotonic() - started:.1f} s)")
    if len(sentences) < 50 or cosines[worst] < MIN_COSINE:
        raise SystemExit(f"build-minilm: verification failed (need >= 50 sentences, cosine >= {MIN_COSINE})")

    write_atomically(args.onnx_out, model_bytes)
    write_atomically(args.vocab_out, vocab_bytes)
    log(f"wrote {args.onnx_out} and {args.vocab_out}")

    tokens_doc = tokens_document(tokenizer)
    reference_doc = reference_document(sentences, encodings, expected, onnx_sha)
    if args.regenerate_test_data:
        write_atomically(args.data_dir / "tokens.json", dumps(tokens_doc))
        write_atomically(args.data_dir / "reference.json", dumps(reference_doc))
        log(f"wrote {args.data_dir}/tokens.json ({len(CASES)} cases) and reference.json")
    else:
        problems = check_test_data(args.data_dir, tokens_doc, reference_doc)
        if problems:
            raise SystemExit("build-minilm: " + "; ".join(problems)
                             + " (models/build-minilm --regenerate-test-data rewrites them)")
        log("committed test data agree")
    log(f"done in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
