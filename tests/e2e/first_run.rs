//! The README's first two commands on a machine without the task runner: `./just`
//! installs `just` itself and then runs the recipe asked for.
//!
//! What this proves: with a PATH holding only the tools a fresh machine has (bash,
//! coreutils, python3, cargo, rustup), `./just --list` installs the pinned `just` into the
//! checkout's `.venv/` and runs it, and a second call reuses it. What it does not prove:
//! the Debian packages and the wasm target, which the `deps` recipe installs; they are
//! already on this machine, and a container to remove them is not available here.

use std::path::Path;
use std::process::Command;

use hybrid_tests::edge_box::Scratch;
use hybrid_tests::root;

/// A folder of symlinks to the tools a fresh machine has, and nothing else of ours.
fn bare_path(dir: &Path) -> String {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    for tool in [
        "cargo", "rustup", "python3", "env", "dirname", "cat", "od", "tr",
    ] {
        let found = Command::new("bash")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .expect("bash");
        let path = String::from_utf8_lossy(&found.stdout).trim().to_owned();
        if !path.is_empty() && !path.contains("/.venv/") {
            std::os::unix::fs::symlink(&path, bin.join(tool)).expect("symlink");
        }
    }
    // bash itself and coreutils come from /usr/bin and /bin; `just` is in neither here.
    format!("{}:/usr/bin:/bin", bin.display())
}

#[test]
fn the_readme_commands_install_the_task_runner_themselves() {
    let scratch = Scratch::new("first-run");
    let path = bare_path(&scratch.0);
    let which = Command::new("bash")
        .args(["-c", "command -v just || true"])
        .env("PATH", &path)
        .output()
        .expect("bash");
    assert!(
        which.stdout.is_empty(),
        "this test needs a PATH without just; found {}",
        String::from_utf8_lossy(&which.stdout)
    );
    // A copy of the two files the bootstrap needs, so the checkout's .venv is untouched.
    let checkout = scratch.0.join("checkout");
    std::fs::create_dir_all(&checkout).expect("checkout");
    for file in ["just", "justfile"] {
        std::fs::copy(root().join(file), checkout.join(file)).expect("copy");
    }
    let run = || {
        Command::new(checkout.join("just"))
            .arg("--list")
            .env("PATH", &path)
            .output()
            .expect("./just runs")
    };
    let first = run();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&first.stdout),
        String::from_utf8_lossy(&first.stderr),
    );
    assert!(first.status.success(), "{stdout}{stderr}");
    assert!(stderr.contains("installing the task runner"), "{stderr}");
    for recipe in ["run", "test", "deps", "setup", "guests"] {
        assert!(stdout.contains(&format!("    {recipe}")), "{stdout}");
    }
    assert!(checkout.join(".venv/bin/just").exists());
    let second = run();
    assert!(second.status.success());
    assert!(
        !String::from_utf8_lossy(&second.stderr).contains("installing"),
        "the second call reuses it"
    );
}
