"""onnxruntime's own per-operator profile of models/minilm-l6-v2.onnx on one thread, to set
beside `hybrid profile -c hybrid.toml minilm-l6-v2 B=.. S=..` (BENCHMARKS.md, "Where
MiniLM's time goes").

Same inputs as bench_ort.py ([CLS], "hello" x (S - 2), [SEP], mask all ones) and the same
session options (one thread, sequential, every graph optimisation). Prints the CPU time
per run without profiling (time.thread_time), then runs again with onnxruntime's profiler
on and sums its kernel times by operator type. The profiler's own cost inflates those
sums; the shares are what to compare.

    models/.venv/bin/python models/minilm/profile_ort.py --batch 1 --seq 16 [--runs 50]
"""

import argparse
import collections
import json
import os
import pathlib
import tempfile
import time

import onnxruntime as ort

from bench_ort import inputs


def session(model, profile_dir=None):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    if profile_dir:
        options.enable_profiling = True
        options.profile_file_prefix = str(pathlib.Path(profile_dir, "ort"))
    return ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--seq", type=int, default=16)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--model", type=pathlib.Path,
                        default=pathlib.Path(__file__).resolve().parent.parent / "minilm-l6-v2.onnx")
    args = parser.parse_args()
    feed = inputs(args.batch, args.seq)

    plain = session(args.model)
    for _ in range(3):
        plain.run(None, feed)
    started = time.thread_time()
    for _ in range(args.runs):
        plain.run(None, feed)
    cpu_ms = (time.thread_time() - started) * 1e3 / args.runs
    print(f"onnxruntime {ort.__version__}, 1 thread, B={args.batch}, S={args.seq}: "
          f"{cpu_ms:.3f} ms of CPU per run ({args.runs} runs)")

    with tempfile.TemporaryDirectory() as tmp:
        profiled = session(args.model, tmp)
        for _ in range(args.runs):
            profiled.run(None, feed)
        events = json.loads(pathlib.Path(profiled.end_profiling()).read_text())
    by_op = collections.defaultdict(float)
    nodes = collections.Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            op = event["args"]["op_name"]
            by_op[op] += event["dur"]
            nodes[op] += 1
    total = sum(by_op.values())
    print(f"{'operator':<24} {'nodes':>5} {'ms/run':>10} {'share':>6}")
    for op, micros in sorted(by_op.items(), key=lambda item: -item[1]):
        print(f"{op:<24} {nodes[op] // args.runs:>5} {micros / 1e3 / args.runs:>10.3f} "
              f"{100 * micros / total:>5.1f}%")


if __name__ == "__main__":
    os.chdir(pathlib.Path(__file__).resolve().parent)
    main()
