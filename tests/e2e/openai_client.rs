//! The official OpenAI Python client against `hybrid serve`: runs `tests/openai/run`
//! (a venv with the pinned client, hybrid-sim, the server on `hybrid.toml`, then every
//! check in `tests/openai/check_client.py` and `promtool check metrics`).
//!
//! Needs the debug binaries of both `hybrid` and `hybrid-sim` (`just test` builds them),
//! python3 with venv, network access to PyPI the first time, and promtool.

use std::process::Command;

use hybrid_tests::{hybrid_bin, root};

#[test]
fn the_unmodified_openai_client_passes_every_check() {
    hybrid_bin();
    let out = Command::new(root().join("tests/openai/run"))
        .current_dir(root())
        .output()
        .expect("tests/openai/run starts");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stdout.lines().last().unwrap_or("");
    assert!(
        out.status.success() && last.ends_with(" 0 failed"),
        "tests/openai/run failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
}
