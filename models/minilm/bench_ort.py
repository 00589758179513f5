"""onnxruntime on models/minilm-l6-v2.onnx with one thread, for comparison with the
tract and guest figures of `cargo bench -p hybrid-tests --bench embeddings`.

Same shapes as the Rust benchmark: batches of 1 and 32 sequences of 16 and 128 tokens,
each `[CLS]`, "hello" x (S - 2), `[SEP]`, mask all ones. Times `session.run` only (like
the tract figure), after warm-up; prints the median latency and embeddings per second.

    models/.venv/bin/python models/minilm/bench_ort.py [--seconds 5]
"""

import argparse
import pathlib
import statistics
import time

import numpy as np
import onnxruntime as ort

CLS, SEP, HELLO = 101, 102, 7592
SHAPES = [(1, 16), (1, 128), (32, 16), (32, 128)]


def inputs(batch, seq):
    row = np.full(seq, HELLO, np.int64)
    row[0], row[-1] = CLS, SEP
    ids = np.tile(row, (batch, 1))
    return {"input_ids": ids, "attention_mask": np.ones_like(ids)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measuring time per shape")
    parser.add_argument("--model", type=pathlib.Path,
                        default=pathlib.Path(__file__).resolve().parent.parent / "minilm-l6-v2.onnx")
    args = parser.parse_args()

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(args.model), options, providers=["CPUExecutionProvider"])
    print(f"onnxruntime {ort.__version__}, 1 thread, {args.model.name}")
    print(f"{'shape':<10} {'median ms':>10} {'embeddings/s':>13} {'runs':>5}")
    for batch, seq in SHAPES:
        feed = inputs(batch, seq)
        for _ in range(3):
            session.run(None, feed)
        times = []
        deadline = time.perf_counter() + args.seconds
        while time.perf_counter() < deadline or len(times) < 10:
            start = time.perf_counter()
            session.run(None, feed)
            times.append(time.perf_counter() - start)
        median = statistics.median(times)
        print(f"b{batch}_s{seq:<6} {median * 1e3:>10.3f} {batch / median:>13.1f} {len(times):>5}")


if __name__ == "__main__":
    main()
