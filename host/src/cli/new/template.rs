//! The project `hybrid new` writes, compiled into the binary so the command works away
//! from this repository and the project needs nothing from it:
//!
//! - the language's template, `host/templates/<lang>/` (see `host/templates/README.md`
//!   for its file names and placeholders), rendered for the plugin's name;
//! - the WIT package as the project's `wit/`: the current one, `wit/*.wit`, for Rust
//!   (the SDK is written against it); the frozen 0.1.1, `wit/released/0.1.1/*.wit`, for
//!   Python, whose template answers whole and is served as a 0.1 component;
//! - for Rust, the guest SDK's sources, `guest/sdk/src/*.rs`, as `sdk/hybrid-guest/src/`,
//!   beside the template's standalone `Cargo.toml` for it. The SDK generates its bindings
//!   from `../../wit`, which from `sdk/hybrid-guest` is the project's `wit/`, so its
//!   sources are copied unchanged. A Python project's `build` generates its bindings from
//!   `wit/` with componentize-py.
//!
//! Every list below is checked against its folder by the unit tests, so a file added to
//! any of them cannot be forgotten here; the Rust template's dependency versions and lock
//! file are checked against the guest workspace's, the Python template's pinned
//! componentize-py against `guest-python/`'s.

use super::Lang;

/// `(file name, contents)` of each listed file of folder `$dir` (relative to this file).
macro_rules! embed {
    ($dir:literal: $($file:literal),+ $(,)?) => {
        &[$(($file, include_str!(concat!($dir, $file)))),+]
    };
}

/// One file of a template: where it is in the repository and where it goes.
struct TemplateFile {
    /// Its path under `host/templates/<lang>/`.
    #[cfg_attr(
        not(test),
        expect(
            dead_code,
            reason = "read by the test that checks the list against the folder"
        )
    )]
    source: &'static str,
    /// Its path in the project.
    dest: &'static str,
    /// Whether the project's copy is a program (mode 755 on Unix).
    executable: bool,
    /// Its contents, with `{{name}}` and `{{crate_name}}` placeholders.
    text: &'static str,
}

/// The files of template `$lang`, each `source => dest`, then `executable` for a program.
macro_rules! template {
    ($lang:literal: $($source:literal => $dest:literal $($executable:ident)?),+ $(,)?) => {
        &[$(TemplateFile {
            source: $source,
            dest: $dest,
            executable: template!(@$($executable)?),
            text: include_str!(concat!("../../../templates/", $lang, "/", $source)),
        }),+]
    };
    (@executable) => { true };
    (@) => { false };
}

/// The Rust template. Names differ where the file would otherwise act in this
/// repository: a `Cargo.toml` or `Cargo.lock` would look like a package to tools, a
/// `.gitignore` would apply to the repository.
const RUST: &[TemplateFile] = template!["rust":
    "Cargo.toml.template" => "Cargo.toml",
    "Cargo.lock.template" => "Cargo.lock",
    "cargo-config.toml" => ".cargo/config.toml",
    "rust-toolchain.toml" => "rust-toolchain.toml",
    "gitignore" => ".gitignore",
    "README.md" => "README.md",
    "hybrid.toml" => "hybrid.toml",
    "request.json" => "request.json",
    "src/lib.rs" => "src/lib.rs",
    "sdk/Cargo.toml.template" => "sdk/hybrid-guest/Cargo.toml",
];

/// The Python template: `gitignore` is renamed for the same reason as Rust's.
const PYTHON: &[TemplateFile] = template!["python":
    "app.py" => "app.py",
    "test_app.py" => "test_app.py",
    "build" => "build" executable,
    "requirements.txt" => "requirements.txt",
    "gitignore" => ".gitignore",
    "README.md" => "README.md",
    "hybrid.toml" => "hybrid.toml",
    "request.json" => "request.json",
];

/// The WIT package `hybrid:inference`, current version (Rust projects).
const WIT: &[(&str, &str)] = embed!("../../../../wit/":
    "clock.wit",
    "init.wit",
    "local.wit",
    "log.wit",
    "messages.wit",
    "remote.wit",
    "reply.wit",
    "signals.wit",
    "tensors.wit",
    "world.wit",
);

/// The WIT package `hybrid:inference@0.1.1` (Python projects).
const WIT_0_1: &[(&str, &str)] = embed!("../../../../wit/released/0.1.1/":
    "clock.wit",
    "local.wit",
    "log.wit",
    "messages.wit",
    "remote.wit",
    "signals.wit",
    "tensors.wit",
    "world.wit",
);

/// The guest SDK's sources.
const SDK: &[(&str, &str)] = embed!("../../../../guest/sdk/src/":
    "error.rs",
    "fake.rs",
    "host.rs",
    "lib.rs",
    "local.rs",
    "metadata.rs",
    "pipeline.rs",
    "remote.rs",
    "request.rs",
    "response.rs",
    "signals.rs",
    "stream.rs",
    "tensor.rs",
);

/// Where the project's WIT files go.
pub const WIT_DIR: &str = "wit/";
/// Where the project's SDK crate goes.
pub const SDK_DIR: &str = "sdk/hybrid-guest/";

/// One file of a project: its path (with `/`) and contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectFile {
    /// Path relative to the project folder.
    pub path: String,
    /// Contents.
    pub text: String,
    /// Whether it is a program, to be written with mode 755 on Unix.
    pub executable: bool,
}

impl ProjectFile {
    /// A vendored file, copied unchanged.
    fn verbatim(path: String, text: &str) -> Self {
        Self {
            path,
            text: text.to_owned(),
            executable: false,
        }
    }
}

/// Every file of the `lang` project for plugin `name` (a valid name, see
/// [`super::parse_name`]), template files first.
pub fn files(lang: Lang, name: &str) -> Vec<ProjectFile> {
    match lang {
        Lang::Rust => rust(name),
        Lang::Python => python(name),
    }
}

/// The Rust project: the template, the WIT package and the guest SDK.
fn rust(name: &str) -> Vec<ProjectFile> {
    let template = rendered(RUST, name).map(|mut f| {
        if f.path == "Cargo.lock" {
            f.text = with_root_in_order(&f.text, name);
        }
        f
    });
    let sdk = SDK
        .iter()
        .map(|(file, text)| ProjectFile::verbatim(format!("{SDK_DIR}src/{file}"), text));
    template.chain(wit(WIT)).chain(sdk).collect()
}

/// The Python project: the template and the WIT package (0.1.1).
fn python(name: &str) -> Vec<ProjectFile> {
    rendered(PYTHON, name).chain(wit(WIT_0_1)).collect()
}

/// The template's files with `{{name}}` and `{{crate_name}}` filled in.
fn rendered(template: &'static [TemplateFile], name: &str) -> impl Iterator<Item = ProjectFile> {
    let name = name.to_owned();
    let crate_name = crate_name(&name);
    template.iter().map(move |f| ProjectFile {
        path: f.dest.to_owned(),
        text: f
            .text
            .replace("{{name}}", &name)
            .replace("{{crate_name}}", &crate_name),
        executable: f.executable,
    })
}

/// A WIT package as the project's `wit/`.
fn wit(files: &'static [(&'static str, &'static str)]) -> impl Iterator<Item = ProjectFile> {
    files
        .iter()
        .map(|(file, text)| ProjectFile::verbatim(format!("{WIT_DIR}{file}"), text))
}

/// The name of the plugin's crate, which names its `.wasm`: `-` becomes `_`.
pub fn crate_name(name: &str) -> String {
    name.replace('-', "_")
}

/// Where the project's build writes the component, relative to the project.
pub fn component(lang: Lang, name: &str) -> String {
    let file = crate_name(name);
    match lang {
        Lang::Rust => format!("target/wasm32-wasip2/release/{file}.wasm"),
        Lang::Python => format!("target/{file}.wasm"),
    }
}

/// The WIT package a project in `lang` is built against, e.g. `hybrid:inference@0.2.2`.
pub fn wit_package(lang: Lang) -> &'static str {
    let files = match lang {
        Lang::Rust => WIT,
        Lang::Python => WIT_0_1,
    };
    files
        .iter()
        .flat_map(|(_, text)| text.lines())
        .find_map(|line| line.strip_prefix("package ")?.strip_suffix(';'))
        .unwrap_or("hybrid:inference")
}

/// The packages of the Rust template's lock file other than the plugin: a Rust plugin may
/// not take one of their names.
pub fn dependency_names() -> impl Iterator<Item = &'static str> {
    let lock = RUST
        .iter()
        .find(|f| f.dest == "Cargo.lock")
        .map_or("", |f| f.text);
    lock.lines()
        .filter_map(|line| line.strip_prefix("name = \"")?.strip_suffix('"'))
        .filter(|name| *name != "{{name}}")
}

/// The lock file with the plugin's own entry moved to where Cargo sorts it (by name), so
/// the file is what Cargo itself would write and `cargo build --locked` accepts it.
fn with_root_in_order(lock: &str, name: &str) -> String {
    const SEPARATOR: &str = "\n[[package]]\n";
    let mut parts = lock.split(SEPARATOR);
    let head = parts.next().unwrap_or_default();
    let mut blocks: Vec<&str> = parts.collect();
    let name_line = format!("name = \"{name}\"\n");
    let is_root = |block: &&str| block.starts_with(&name_line) && !block.contains("\nsource = ");
    let Some(at) = blocks.iter().position(is_root) else {
        return lock.to_owned();
    };
    let root = blocks.remove(at);
    let block_name = |block: &str| {
        let line = block.lines().next().unwrap_or_default();
        line.trim_start_matches("name = \"")
            .trim_end_matches('"')
            .to_owned()
    };
    let to = blocks
        .iter()
        .position(|b| block_name(b).as_str() > name)
        .unwrap_or(blocks.len());
    blocks.insert(to, root);
    std::iter::once(head)
        .chain(blocks)
        .collect::<Vec<_>>()
        .join(SEPARATOR)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};

    fn repo() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("host/ has a parent")
            .to_owned()
    }

    /// The files under `dir` (recursively, as `/`-separated relative paths) whose name
    /// ends with `suffix`.
    fn files_in(dir: &Path, suffix: &str, recursive: bool) -> BTreeSet<String> {
        let mut found = BTreeSet::new();
        let mut todo = vec![dir.to_owned()];
        while let Some(at) = todo.pop() {
            for entry in std::fs::read_dir(&at).expect("readable folder") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    if recursive {
                        todo.push(path);
                    }
                } else if path.to_string_lossy().ends_with(suffix) {
                    let relative = path.strip_prefix(dir).expect("under dir");
                    found.insert(relative.to_string_lossy().replace('\\', "/"));
                }
            }
        }
        found
    }

    fn listed(files: &[(&str, &str)]) -> BTreeSet<String> {
        files.iter().map(|(f, _)| (*f).to_owned()).collect()
    }

    #[test]
    fn every_wit_file_is_embedded() {
        assert_eq!(listed(WIT), files_in(&repo().join("wit"), ".wit", false));
        assert_eq!(wit_package(Lang::Rust), "hybrid:inference@0.2.2");
        assert_eq!(
            listed(WIT_0_1),
            files_in(&repo().join("wit/released/0.1.1"), ".wit", false)
        );
        assert_eq!(wit_package(Lang::Python), "hybrid:inference@0.1.1");
    }

    #[test]
    fn every_sdk_source_is_embedded() {
        let sources = repo().join("guest/sdk/src");
        assert_eq!(listed(SDK), files_in(&sources, ".rs", true));
    }

    #[test]
    fn every_template_file_is_embedded() {
        for (lang, template) in [("rust", RUST), ("python", PYTHON)] {
            let listed: BTreeSet<String> = template.iter().map(|f| f.source.to_owned()).collect();
            let dir = repo().join("host/templates").join(lang);
            assert_eq!(listed, files_in(&dir, "", true), "{lang}");
            let dests: BTreeSet<&str> = template.iter().map(|f| f.dest).collect();
            assert_eq!(dests.len(), template.len(), "{lang}: no destination twice");
        }
        let langs = std::fs::read_dir(repo().join("host/templates"))
            .expect("templates")
            .filter(|e| e.as_ref().is_ok_and(|e| e.path().is_dir()))
            .count();
        assert_eq!(langs, 2, "a template folder that is not listed here");
    }

    #[cfg(unix)]
    #[test]
    fn the_programs_of_a_template_are_the_executable_files() {
        use std::os::unix::fs::PermissionsExt;
        for (lang, template) in [("rust", RUST), ("python", PYTHON)] {
            for f in template {
                let path = repo().join("host/templates").join(lang).join(f.source);
                let mode = std::fs::metadata(&path)
                    .expect("a file")
                    .permissions()
                    .mode();
                assert_eq!(mode & 0o100 != 0, f.executable, "{}", path.display());
            }
        }
    }

    fn template_file(template: &[TemplateFile], dest: &str) -> &'static str {
        template
            .iter()
            .find(|f| f.dest == dest)
            .unwrap_or_else(|| panic!("{dest} is not in the template"))
            .text
    }

    fn toml_of(dest: &str) -> toml::Table {
        toml::from_str(template_file(RUST, dest)).unwrap_or_else(|e| panic!("{dest}: {e}"))
    }

    fn guest_toml(path: &str) -> toml::Table {
        let text = std::fs::read_to_string(repo().join(path)).expect("readable");
        toml::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn dependencies_are_the_guest_workspaces() {
        let workspace = guest_toml("guest/Cargo.toml");
        let pinned = &workspace["workspace"]["dependencies"];
        let sdk = toml_of("sdk/hybrid-guest/Cargo.toml");
        for (name, spec) in sdk["dependencies"].as_table().expect("a table") {
            assert_eq!(Some(spec), pinned.get(name), "the SDK's {name}");
        }
        let guest_sdk = guest_toml("guest/sdk/Cargo.toml");
        assert_eq!(sdk["features"], guest_sdk["features"]);
        assert_eq!(sdk["lib"], guest_sdk["lib"]);
        let keys = |t: &toml::Value| t.as_table().map(|t| t.keys().cloned().collect::<Vec<_>>());
        assert_eq!(keys(&sdk["dependencies"]), keys(&guest_sdk["dependencies"]));
        let plugin = toml_of("Cargo.toml");
        for name in ["serde", "serde_json"] {
            assert_eq!(Some(&plugin["dependencies"][name]), pinned.get(name));
        }
        let version = &workspace["workspace"]["package"]["rust-version"];
        assert_eq!(&plugin["package"]["rust-version"], version);
        assert_eq!(&sdk["package"]["rust-version"], version);
        assert_eq!(
            plugin["profile"]["release"], workspace["profile"]["release"],
            "the guests' release profile, so their compiled dependencies are reused"
        );
    }

    #[test]
    fn the_lock_file_holds_the_guest_workspaces_versions() {
        let versions = |lock: &toml::Table| -> BTreeSet<(String, String)> {
            lock["package"]
                .as_array()
                .expect("packages")
                .iter()
                .filter(|p| p.get("source").is_some())
                .map(|p| (p["name"].to_string(), p["version"].to_string()))
                .collect()
        };
        let ours = versions(&toml_of("Cargo.lock"));
        let guests = versions(&guest_toml("guest/Cargo.lock"));
        let missing: Vec<_> = ours.difference(&guests).collect();
        assert!(
            missing.is_empty(),
            "not in guest/Cargo.lock: {missing:?}; regenerate the template's lock file"
        );
        assert!(dependency_names().any(|n| n == "wit-bindgen"));
        assert!(!dependency_names().any(|n| n.contains('{')));
    }

    #[test]
    fn the_plugins_lock_entry_is_where_cargo_sorts_it() {
        for name in ["aaa", "demo-plugin", "serde-x", "zzz"] {
            let lock = rust(name)
                .into_iter()
                .find(|f| f.path == "Cargo.lock")
                .expect("a lock file")
                .text;
            let names: Vec<(&str, usize)> = lock
                .lines()
                .filter_map(|l| l.strip_prefix("name = "))
                .zip(0..)
                .collect();
            let mut sorted = names.clone();
            sorted.sort();
            assert_eq!(names, sorted, "{name}");
            assert!(lock.contains(&format!("name = \"{name}\"\nversion = \"0.1.0\"")));
        }
    }

    #[test]
    fn rendering_fills_every_placeholder_and_keeps_the_vendored_files_verbatim() {
        let files = rust("demo-plugin");
        assert!(files.iter().all(|f| !f.executable));
        for f in &files {
            assert!(!f.text.contains("{{name}}"), "{}", f.path);
            assert!(!f.text.contains("{{crate_name}}"), "{}", f.path);
        }
        let file = |path: &str| &files.iter().find(|f| f.path == path).expect(path).text;
        assert!(file("Cargo.toml").contains("name = \"demo-plugin\""));
        assert!(file("README.md").contains(&component(Lang::Rust, "demo-plugin")));
        let world = WIT
            .iter()
            .find(|(f, _)| *f == "world.wit")
            .expect("world.wit");
        assert_eq!(file("wit/world.wit"), world.1);
        assert_eq!(file("sdk/hybrid-guest/src/lib.rs"), SDK[3].1);
        assert!(file("sdk/hybrid-guest/src/lib.rs").contains("path: \"../../wit\""));
        let paths: BTreeSet<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths.len(), files.len(), "no path twice");
    }

    /// The requirement lines of a requirements file: comments and blank lines dropped.
    fn requirements(text: &str) -> Vec<&str> {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    }

    #[test]
    fn the_python_template_pins_guest_pythons_componentize_py() {
        let guest = std::fs::read_to_string(repo().join("guest-python/requirements.txt"))
            .expect("readable");
        let ours = template_file(PYTHON, "requirements.txt");
        assert_eq!(requirements(ours), requirements(&guest));
        assert!(ours.contains("componentize-py=="), "{ours}");
        assert!(
            requirements(ours)
                .iter()
                .any(|l| l.starts_with("--hash=sha256:"))
        );
    }

    #[test]
    fn the_python_project_builds_what_its_config_serves() {
        let files = files(Lang::Python, "demo-py");
        let file = |path: &str| &files.iter().find(|f| f.path == path).expect(path).text;
        let wasm = component(Lang::Python, "demo-py");
        assert_eq!(wasm, "target/demo_py.wasm");
        let config: toml::Table = toml::from_str(file("hybrid.toml")).expect("TOML");
        let pipeline = &config["pipeline"][0];
        assert_eq!(pipeline["name"].as_str(), Some("demo-py"));
        assert_eq!(pipeline["component"].as_str(), Some(wasm.as_str()));
        // CPython's heap is 12.4 MiB before the first request.
        assert_eq!(pipeline["memory_mib"].as_integer(), Some(32));
        assert_eq!(pipeline["smoke"][0]["body"].as_str(), Some("request.json"));
        assert_eq!(
            config["admin"]["token_env"].as_str(),
            Some("HYBRID_ADMIN_TOKEN")
        );
        let build = file("build");
        assert!(build.contains(&format!("wasm={wasm}\n")), "{build}");
        assert!(build.contains("--stub-wasi"), "{build}");
        assert!(
            build.contains("--require-hashes --only-binary=:all:"),
            "{build}"
        );
        assert!(build.contains("COMPONENTIZE_PY"), "{build}");
        assert!(build.starts_with("#!/usr/bin/env bash\n"));
        let readme = file("README.md");
        for command in [
            "./build\n".to_owned(),
            format!("hybrid check {wasm}"),
            "hybrid run --config hybrid.toml --pipeline demo-py request.json".to_owned(),
            format!("hybrid deploy demo-py {wasm}"),
        ] {
            assert!(readme.contains(&command), "{command:?} not in the README");
        }
        let request: serde_json::Value = serde_json::from_str(file("request.json")).expect("JSON");
        assert!(request["text"].is_string());
    }

    #[test]
    fn the_python_project_is_its_template_and_the_wit_package() {
        let files = files(Lang::Python, "demo-py");
        for f in &files {
            assert!(!f.text.contains("{{"), "{}: a placeholder is left", f.path);
        }
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        let wit: Vec<String> = WIT_0_1
            .iter()
            .map(|(f, _)| format!("{WIT_DIR}{f}"))
            .collect();
        assert_eq!(paths.len(), PYTHON.len() + WIT_0_1.len());
        assert!(wit.iter().all(|w| paths.contains(&w.as_str())));
        assert!(!paths.iter().any(|p| p.starts_with(SDK_DIR)));
        let executable: Vec<&str> = files
            .iter()
            .filter(|f| f.executable)
            .map(|f| f.path.as_str())
            .collect();
        assert_eq!(executable, ["build"]);
        let app = &files
            .iter()
            .find(|f| f.path == "app.py")
            .expect("app.py")
            .text;
        assert_eq!(
            app,
            template_file(PYTHON, "app.py"),
            "app.py has no placeholders"
        );
        assert!(files.iter().any(|f| f.path == ".gitignore"));
    }
}
