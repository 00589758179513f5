# The commands people type. `just --list` shows them.
set shell := ["bash", "-euo", "pipefail", "-c"]

# Serverless goes to DigitalOcean when DIGITALOCEAN_MODEL_ACCESS_KEY is set, else to a
# local hybrid-sim started alongside, so the demo works offline.
# Build everything, then serve the default config on http://127.0.0.1:8080 (Ctrl-C stops).
run: deps (prepare "host")
    #!/usr/bin/env bash
    set -euo pipefail
    target=${CARGO_TARGET_DIR:-target}
    pids=()
    trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true' EXIT INT TERM
    wait_for() { for _ in $(seq 1 300); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; cat "$1" >&2; return 1; }
    if [[ -n "${DIGITALOCEAN_MODEL_ACCESS_KEY:-}" ]]; then
        echo "serverless: DigitalOcean Serverless Inference (https://inference.do-ai.run/v1)"
    else
        export HYBRID_SIM_KEY="sim-$(od -An -tx8 -N8 /dev/urandom | tr -d ' ')"
        "$target/debug/hybrid-sim" --listen 127.0.0.1:8089 --latency-ms 40 --classify workloads/digits-heldout.jsonl > "$target/hybrid-sim.out" 2> "$target/hybrid-sim.log" &
        pids+=($!)
        wait_for "$target/hybrid-sim.out" "listening on"
        export HYBRID_REMOTE_URL=http://127.0.0.1:8089/v1 HYBRID_REMOTE_KEY_ENV=HYBRID_SIM_KEY
        echo "serverless: hybrid-sim on $HYBRID_REMOTE_URL (set DIGITALOCEAN_MODEL_ACCESS_KEY to use DigitalOcean)"
    fi
    # The admin API (hybrid deploy/status/promote/rollback) needs a token; make one per run.
    if [[ -z "${HYBRID_ADMIN_TOKEN:-}" ]]; then
        export HYBRID_ADMIN_TOKEN="admin-$(od -An -tx8 -N16 /dev/urandom | tr -d ' \n')"
    fi
    (umask 077; printf '%s' "$HYBRID_ADMIN_TOKEN" > "$target/hybrid-admin-token")
    HYBRID_LOG=${HYBRID_LOG:-info} "$target/debug/hybrid" serve > "$target/hybrid-serve.out" 2> "$target/hybrid-serve.log" &
    pids+=($!)
    wait_for "$target/hybrid-serve.out" "serving on"
    url=http://127.0.0.1:8080
    echo "hybrid is serving on $url (logs: $target/hybrid-serve.log)"
    echo
    echo "voice-gate on the demo clip:"
    curl -s -H 'content-type: audio/wav' --data-binary @samples/generated/demo.wav "$url/v1/pipelines/voice-gate" \
        | python3 -c 'import json,sys; r=json.load(sys.stdin); b=r["body"]; print(json.dumps({"segments": b["segments"], "transcript": (b.get("transcript") or {}).get("text"), "routing": r["routing"], "cost_usd": r["cost_usd"], "egress_bytes": b["egress_bytes"]}, indent=2))'
    echo
    echo "Try:"
    echo "  curl -s -H 'content-type: audio/wav' --data-binary @samples/generated/demo.wav $url/v1/pipelines/voice-gate"
    echo "  curl -s $url/v1/embeddings -H 'content-type: application/json' -d '{\"model\": \"minilm-l6-v2\", \"input\": \"hybrid inference at the edge\"}'"
    echo "  curl -s $url/v1/chat/completions -H 'content-type: application/json' -d '{\"model\": \"llama3.3-70b-instruct\", \"messages\": [{\"role\": \"user\", \"content\": \"Hello from the edge\"}]}'"
    echo "  curl -s $url/metrics"
    echo
    echo "Deploy while it serves (admin API on http://127.0.0.1:8081):"
    echo "  export HYBRID_ADMIN_TOKEN=\$(cat $target/hybrid-admin-token)"
    echo "  $target/debug/hybrid status"
    echo "  $target/debug/hybrid deploy voice-gate $target/wasm32-wasip2/release/voice_gate.wasm --canary 20"
    echo "  $target/debug/hybrid rollback voice-gate"
    echo
    echo "Ctrl-C stops."
    wait "${pids[-1]}"

# The digits plan: all-local, all-remote, the cascade at a sweep of thresholds and the
# policy on the 450 held-out digits, against hybrid-sim's strong-model stand-in (98%
# accurate, 80 ms), or DigitalOcean when DIGITALOCEAN_MODEL_ACCESS_KEY is set. Extra
# arguments go to `hybrid plan` (e.g. --target-accuracy 0.99).
# Measure where digits should be classified; report and plot in plan-report/.
plan *args: deps (prepare "host")
    #!/usr/bin/env bash
    set -euo pipefail
    target=${CARGO_TARGET_DIR:-target}
    if [[ -n "${DIGITALOCEAN_MODEL_ACCESS_KEY:-}" ]]; then
        echo "strong model: DigitalOcean Serverless Inference (costs money)"
    else
        export HYBRID_SIM_KEY="sim-$(od -An -tx8 -N8 /dev/urandom | tr -d ' ')"
        "$target/debug/hybrid-sim" --listen 127.0.0.1:0 --latency-ms 80 --classify workloads/digits-heldout.jsonl \
            > "$target/plan-sim.out" 2> "$target/plan-sim.log" &
        sim=$!
        trap 'kill $sim 2>/dev/null || true; wait 2>/dev/null || true' EXIT INT TERM
        for _ in $(seq 1 300); do grep -q "listening on" "$target/plan-sim.out" 2>/dev/null && break; sleep 0.1; done
        export HYBRID_REMOTE_URL=$(grep -o 'http://[^ ]*' "$target/plan-sim.out") HYBRID_REMOTE_KEY_ENV=HYBRID_SIM_KEY
        echo "strong model: hybrid-sim's stand-in on $HYBRID_REMOTE_URL (98% accurate, 80 ms)"
    fi
    "$target/debug/hybrid" plan plans/digits.toml --config hybrid.toml --out plan-report {{args}}

# Run every test: guest unit tests, host unit tests, end-to-end tests.
test: deps (prepare "tests")
    cd guest && cargo test -q --target x86_64-unknown-linux-gnu
    cargo test --workspace

# Run the benchmarks (criterion, then HTTP load with wrk); figures go in BENCHMARKS.md.
bench: (deps "nginx:nginx") setup guests
    cargo bench -p hybrid-tests
    cargo build -q --release -p hybrid -p hybrid-sim
    bench/serve

# Lints exactly as CI would want them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    cd guest && cargo fmt --all -- --check
    cd guest && cargo clippy --target wasm32-wasip2 -- -D warnings
    target=$(realpath -m "${CARGO_TARGET_DIR:-target}") && cd examples/wasi-nn-onnx-command && cargo fmt -- --check && cargo clippy -q --release --target wasm32-wasip2 --target-dir "$target" -- -D warnings

# Install the Debian packages and the wasm target a fresh machine lacks (a line each).
deps *extra:
    #!/usr/bin/env bash
    set -euo pipefail
    # The tool each Debian package provides: espeak-ng and sox make the test audio;
    # promtool (package prometheus) checks /metrics in the tests; wrk drives `just bench`.
    # `extra` adds tool:package pairs for one recipe only (`just bench`: nginx, its mock
    # of the OpenAI chat API; Debian starts nginx's own service when it installs it).
    missing=()
    for pair in espeak-ng:espeak-ng sox:sox promtool:prometheus wrk:wrk {{extra}}; do
        tool=${pair%%:*}
        command -v "$tool" >/dev/null || [[ -x /usr/sbin/$tool ]] || missing+=("${pair#*:}")
    done
    if ((${#missing[@]})); then
        echo "deps: installing Debian packages: ${missing[*]}"
        sudo=""
        [[ $(id -u) -ne 0 ]] && sudo="sudo"
        $sudo apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    # The pinned toolchain (rust-toolchain.toml) installs on first use; it names the wasm
    # target, but not every rustup adds it by itself.
    cargo --version >/dev/null
    if ! rustup target list --installed | grep -qx wasm32-wasip2; then
        echo "deps: adding the Rust target wasm32-wasip2"
        rustup target add wasm32-wasip2 >/dev/null 2>&1
    fi

# Fetch and verify the models, and make the sample audio.
setup: deps
    models/fetch
    models/build-minilm
    models/train-digits
    samples/make

# `setup` and the guests beside the host's build (`what`: "host" builds hybrid, hybrid-sim
# and the guests the default config serves; "tests" also every test binary and guest). The build leaves a core idle for long stretches (its
# tail is one crate at a time: tract-core, tract-hir, tract-onnx, hybrid, the link), and
# setup is mostly one-threaded Python; niced, setup and guests take what the build
# leaves. They lock different build directories (target/debug vs target/release and
# target/wasm32-wasip2), so neither waits for the other.
[private]
prepare what:
    #!/usr/bin/env bash
    set -euo pipefail
    {
        cargo build -q -p hybrid -p hybrid-sim
        if [[ {{what}} == tests ]]; then cargo test -q --workspace --no-run; fi
    } &
    build=$!
    trap 'pkill -P $build 2>/dev/null; kill $build 2>/dev/null || true' EXIT
    nice -n 10 "{{just_executable()}}" --justfile "{{justfile()}}" --working-directory "{{justfile_directory()}}" setup {{ if what == "tests" { "guests" } else { "served-guests" } }}
    wait $build
    trap - EXIT

# Only the guest components the default config serves (`just run` and `just plan` need no
# more), read from hybrid.toml's component paths (voice_gate.wasm: crate voice-gate).
[private]
served-guests:
    cd guest && cargo build -q --release $(grep -o 'release/[a-z0-9_]*\.wasm' ../hybrid.toml | sed 's#release/##; s#\.wasm$##; s#_#-#g; s#^#-p #' | tr '\n' ' ')

# Build the guest components (Rust, and Python with componentize-py) into ${CARGO_TARGET_DIR:-target}/wasm32-wasip2/release.
guests:
    cd guest && cargo build -q --release
    # A standalone project (its own workspace and lock file): the wasi:cli command built
    # from the published wasi:nn WIT alone. Same target dir, same wit-bindgen: no rebuild
    # of what the guests already built.
    target=$(realpath -m "${CARGO_TARGET_DIR:-target}") && cd examples/wasi-nn-onnx-command && cargo build -q --release --target wasm32-wasip2 --target-dir "$target"
    guest-python/build

# Check a component against the pipeline world.
check component:
    cargo run -q -p hybrid -- check {{component}}

# Every fuzz target gets `seconds` of libFuzzer (cargo-fuzz) on the pinned stable
# toolchain: `--sanitizer none` needs only stable `-C` flags. SANITIZER=address adds
# AddressSanitizer (an unstable flag, so RUSTC_BOOTSTRAP=1 is set for it). Targets build
# one at a time; corpora grow in fuzz/*/corpus/, crashes land in fuzz/*/artifacts/ and
# full logs in ${CARGO_TARGET_DIR:-target}/fuzz-<target>.log. Name targets to run only
# those (`just fuzz 300 wav sse`). See fuzz/Cargo.toml.
# Fuzz the parsers of hostile input (WAV, tokenizer, config, SSE, tensors, HTTP).
fuzz seconds="60" *targets:
    #!/usr/bin/env bash
    set -euo pipefail
    if ! cargo fuzz --version >/dev/null 2>&1; then
        echo "fuzz: installing cargo-fuzz 0.13.2"
        cargo install -q cargo-fuzz --version 0.13.2 --locked 2>/dev/null
    fi
    # The http target serves the test-pipeline component.
    (cd guest && cargo build -q --release -p test-pipeline)
    sanitizer=${SANITIZER:-none}
    if [[ $sanitizer != none ]]; then export RUSTC_BOOTSTRAP=1; fi
    logs=${CARGO_TARGET_DIR:-target}
    mkdir -p "$logs"
    only=" {{targets}} "
    crashed=()
    for package in guest host; do
        for target in $(cargo fuzz list --fuzz-dir "fuzz/$package"); do
            if [[ -n "${only// /}" && $only != *" $target "* ]]; then continue; fi
            flags=(--fuzz-dir "fuzz/$package" -O --sanitizer "$sanitizer")
            corpus=("fuzz/$package/corpus/$target")
            mkdir -p "${corpus[0]}"
            if [[ -d fuzz/$package/seeds/$target ]]; then corpus+=("fuzz/$package/seeds/$target"); fi
            log="$logs/fuzz-$target.log"
            echo "fuzz: $target: building"
            cargo fuzz build "${flags[@]}" "$target" > "$log" 2>&1 || { cat "$log" >&2; exit 1; }
            echo "fuzz: $target: running for {{seconds}} s"
            status=ok
            cargo fuzz run "${flags[@]}" "$target" "${corpus[@]}" -- \
                -max_total_time={{seconds}} -timeout=30 -print_final_stats=1 >> "$log" 2>&1 || status=crashed
            runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
            rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
            units=$(find "${corpus[0]}" -type f | wc -l)
            echo "fuzz: $target: ${runs:-?} runs (${rate:-?}/s), corpus $units, $status"
            if [[ $status != ok ]]; then
                crashed+=("$target")
                grep -a -E "panicked at|ERROR: libFuzzer|Test unit written" "$log" | head -5 >&2 || true
            fi
        done
    done
    if ((${#crashed[@]})); then
        echo "fuzz: crashes in: ${crashed[*]} (inputs in fuzz/*/artifacts/, logs in $logs/fuzz-*.log)" >&2
        exit 1
    fi
