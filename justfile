# The commands people type. `just --list` shows them.
set shell := ["bash", "-euo", "pipefail", "-c"]

# Build everything and run the voice-gate pipeline on the demo clip.
run: setup guests
    cargo run -q -p hybrid -- run --config hybrid.toml --pipeline voice-gate samples/generated/demo.wav

# Run every test: guest unit tests, host unit tests, end-to-end tests.
test: setup guests
    cd guest && cargo test -q --target x86_64-unknown-linux-gnu
    cargo build -q -p hybrid
    cargo test --workspace

# Run the benchmarks (criterion); figures go in BENCHMARKS.md.
bench: setup guests
    cargo bench -p hybrid-tests

# Lints exactly as CI would want them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    cd guest && cargo fmt --all -- --check
    cd guest && cargo clippy --target wasm32-wasip2 -- -D warnings

# Fetch and verify the models, and make the sample audio.
setup:
    models/fetch
    models/build-minilm
    samples/make

# Build the guest components (wasm32-wasip2, release) into target/wasm32-wasip2/release.
guests:
    cd guest && cargo build -q --release

# Check a component against the pipeline world.
check component:
    cargo run -q -p hybrid -- check {{component}}
