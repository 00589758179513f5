//! A healthy pipeline's latency beside each hostile one, through a real `hybrid serve`.
//!
//! One client sends echo requests to the healthy pipeline one after another; its p50 and
//! p99 are measured alone, then while a second client keeps the hostile pipeline busy
//! with one misbehaviour (a loop to the deadline, a sleep, a memory bomb, a stack
//! overflow, a 20 MiB answer, call floods, a log flood, a trap). The figure is the p99
//! ratio to the unloaded p99 (target: within 2x). Not a criterion benchmark: the
//! interesting numbers are tail percentiles over a fixed count, printed as a table for
//! BENCHMARKS.md (`cargo bench -p hybrid-tests --bench hostile`).
//!
//! The box is the debug build the tests use (`target/debug/hybrid`, dependencies at
//! opt-level 3); absolute figures are higher than a release build's, the ratios are the
//! point.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hybrid_tests::component;
use hybrid_tests::edge_box::{EdgeBox, Scratch, agent, echo_pipeline, send};

/// Healthy requests per measurement.
const REQUESTS: usize = 2000;

/// The hostile modes of the test pipeline, as in `tests/e2e/hostile.rs`.
const MODES: [&str; 9] = [
    "loop",
    "sleep",
    "oom",
    "recurse",
    "huge",
    "remote-loop",
    "run-loop",
    "log-flood",
    "trap",
];

fn write_config(dir: &Path) {
    std::fs::write(dir.join("ping.txt"), b"ping").expect("smoke body");
    let wasm = component("test_pipeline");
    let config = format!(
        "[admin]\ntoken_env = \"HYBRID_ADMIN_TOKEN\"\n{}{}",
        echo_pipeline("healthy", &wasm, 1000, 64, ""),
        echo_pipeline("hostile", &wasm, 1000, 64, "quarantine = { after = 0 }"),
    );
    std::fs::write(dir.join("hybrid.toml"), config).expect("config");
}

/// p50 and p99 of `REQUESTS` sequential healthy requests, in milliseconds, and how many
/// failed.
fn measure(base: &str) -> (f64, f64, usize) {
    let agent = agent();
    let url = format!("{base}/v1/pipelines/healthy");
    let mut times = Vec::with_capacity(REQUESTS);
    let mut failed = 0;
    for _ in 0..REQUESTS {
        let started = Instant::now();
        let a = send(&agent, "POST", &url, None, Some(("text/plain", b"ping")));
        times.push(started.elapsed());
        failed += usize::from(a.status != 200);
    }
    times.sort();
    let ms = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    let to_ms = |d: Duration| d.as_secs_f64() * 1e3;
    (to_ms(ms(0.50)), to_ms(ms(0.99)), failed)
}

fn main() {
    let scratch = Scratch::new("bench-hostile");
    write_config(&scratch.0);
    let b = EdgeBox::start(&scratch.0, &[]);
    // Warm up: compile caches, connection, page faults.
    let _ = measure(&b.base);
    let (p50, p99, failed) = measure(&b.base);
    println!(
        "| hostile neighbour | healthy p50 ms | healthy p99 ms | p99 / alone | healthy failed | hostile requests |"
    );
    println!("|---|---|---|---|---|---|");
    println!("| none | {p50:.3} | {p99:.3} | 1.00 | {failed} | 0 |");
    for mode in MODES {
        let done = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicUsize::new(0));
        let hostile = {
            let (done, sent) = (done.clone(), sent.clone());
            let url = format!("{}/v1/pipelines/hostile?mode={mode}", b.base);
            std::thread::spawn(move || {
                let agent = agent();
                while !done.load(Ordering::Relaxed) {
                    send(&agent, "POST", &url, None, Some(("text/plain", b"ping")));
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        // Let the first hostile request get going before measuring.
        std::thread::sleep(Duration::from_millis(50));
        let (m50, m99, failed) = measure(&b.base);
        done.store(true, Ordering::Relaxed);
        hostile.join().expect("hostile client");
        println!(
            "| {mode} | {m50:.3} | {m99:.3} | {:.2} | {failed} | {} |",
            m99 / p99,
            sent.load(Ordering::Relaxed)
        );
    }
}
