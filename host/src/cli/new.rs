//! `hybrid new`: write a ready-to-build plugin project.
//!
//! Steps: check the name (it names the folder, the component and the pipeline; a Rust
//! plugin's name is also its crate's, so Cargo's rules apply too); take the language's
//! files ([`template`]: the template rendered for the name, the WIT package and, for
//! Rust, the vendored guest SDK, all compiled into this binary); check that the
//! destination is absent or an empty folder; write the files into a staging folder
//! beside it and rename that into place, so a failure leaves no half-written project;
//! print what was written and the commands to run next.

mod template;

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};

/// Arguments of `hybrid new`.
#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// The plugin's name: lowercase letters, digits and `-`, starting with a letter. It
    /// names the project's folder, its component (`-` as `_`), the pipeline in its config
    /// and, in Rust, its Cargo package.
    #[arg(value_name = "NAME", value_parser = parse_name)]
    pub name: String,
    /// The language of the plugin.
    #[arg(long, value_enum, default_value_t = Lang::Rust)]
    pub lang: Lang,
    /// The folder to create the project in, as `<PARENT>/<NAME>` (created if missing).
    #[arg(long, value_name = "PARENT", default_value = ".")]
    pub dir: PathBuf,
}

/// The languages `hybrid new` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// A Rust crate on the guest SDK, built with cargo for `wasm32-wasip2`.
    Rust,
    /// Python, built into a component (CPython included) by componentize-py.
    Python,
}

impl Lang {
    /// Its name on the command line.
    fn name(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Python => "python",
        }
    }
}

impl NewArgs {
    /// Writes the project and prints what to do next.
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        if self.lang == Lang::Rust {
            check_crate_name(&self.name).map_err(anyhow::Error::msg)?;
        }
        let files = template::files(self.lang, &self.name);
        let dest = self.dir.join(&self.name);
        check_destination(&dest)?;
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        let staging = self
            .dir
            .join(format!(".{}.hybrid-new-{}", self.name, std::process::id()));
        let written = write_files(&staging, &files).and_then(|()| move_into_place(&staging, &dest));
        if written.is_err() {
            let _ = std::fs::remove_dir_all(&staging);
        }
        written?;
        print_summary(self.lang, &self.name, &dest, &files);
        Ok(ExitCode::SUCCESS)
    }
}

/// Checks a plugin name: what the host, file systems and Cargo accept in any language.
pub fn parse_name(name: &str) -> Result<String, String> {
    const MAX_LEN: usize = 64;
    let rule = "use lowercase letters, digits and '-', starting with a letter (e.g. my-plugin)";
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(format!(
            "{name:?} does not start with a lowercase letter: {rule}"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|&c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
    {
        return Err(format!("{name:?} contains {c:?}: {rule}"));
    }
    if name.len() > MAX_LEN {
        return Err(format!("{name:?} is longer than {MAX_LEN} characters"));
    }
    Ok(name.to_owned())
}

/// Checks a Rust plugin's name, which is also its crate's: not a name Cargo refuses, and
/// not one the project already uses for one of its dependencies.
fn check_crate_name(name: &str) -> Result<(), String> {
    /// Rust keywords and the standard crates: Cargo refuses them as crate names.
    const RESERVED: &[&str] = &[
        "abstract",
        "alloc",
        "as",
        "async",
        "await",
        "become",
        "box",
        "break",
        "const",
        "continue",
        "core",
        "crate",
        "do",
        "dyn",
        "else",
        "enum",
        "extern",
        "false",
        "final",
        "fn",
        "for",
        "gen",
        "if",
        "impl",
        "in",
        "let",
        "loop",
        "macro",
        "match",
        "mod",
        "move",
        "mut",
        "override",
        "priv",
        "proc-macro",
        "pub",
        "ref",
        "return",
        "self",
        "static",
        "std",
        "struct",
        "super",
        "test",
        "trait",
        "true",
        "try",
        "type",
        "typeof",
        "unsafe",
        "unsized",
        "use",
        "virtual",
        "where",
        "while",
        "yield",
    ];
    if RESERVED.contains(&name) {
        return Err(format!("{name:?} is reserved in Rust: choose another name"));
    }
    if name == "hybrid-guest" || template::dependency_names().any(|d| d == name) {
        return Err(format!(
            "{name:?} is the name of a crate the project depends on: choose another name"
        ));
    }
    Ok(())
}

/// The project goes where nothing is, or into an empty folder.
fn check_destination(dest: &Path) -> anyhow::Result<()> {
    match std::fs::read_dir(dest) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!(
                    "{} already exists and is not empty: choose another name or --dir, or \
                     remove it",
                    dest.display()
                );
            }
            Ok(())
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(_) if dest.exists() => bail!("{} already exists and is not a folder", dest.display()),
        Err(e) => Err(e).with_context(|| format!("reading {}", dest.display())),
    }
}

fn write_files(root: &Path, files: &[template::ProjectFile]) -> anyhow::Result<()> {
    for file in files {
        let path = root.join(&file.path);
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder)
                .with_context(|| format!("creating {}", folder.display()))?;
        }
        std::fs::write(&path, &file.text).with_context(|| format!("writing {}", path.display()))?;
        if file.executable {
            make_executable(&path)?;
        }
    }
    Ok(())
}

#[cfg(unix)]
fn make_executable(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("making {} executable", path.display()))
}

/// Elsewhere a program is run by its interpreter (`bash build`): nothing to mark.
#[cfg(not(unix))]
fn make_executable(_path: &Path) -> anyhow::Result<()> {
    Ok(())
}

/// Renames the staging folder to `dest`, which may be an empty folder (removed first;
/// removing fails if something appeared in it meanwhile, so nothing is overwritten).
fn move_into_place(staging: &Path, dest: &Path) -> anyhow::Result<()> {
    if dest.is_dir() {
        std::fs::remove_dir(dest)
            .with_context(|| format!("replacing the empty folder {}", dest.display()))?;
    }
    std::fs::rename(staging, dest)
        .with_context(|| format!("moving {} to {}", staging.display(), dest.display()))
}

fn print_summary(lang: Lang, name: &str, dest: &Path, files: &[template::ProjectFile]) {
    let vendored = |dir: &str| files.iter().filter(|f| f.path.starts_with(dir)).count();
    println!("created {name} ({}) in {}:", lang.name(), dest.display());
    let mut own: Vec<&str> = files
        .iter()
        .map(|f| f.path.as_str())
        .filter(|p| !p.starts_with(template::WIT_DIR) && !p.starts_with(template::SDK_DIR))
        .collect();
    own.sort_unstable();
    for path in own {
        println!("  {path}");
    }
    println!(
        "  {}  the {} WIT package ({} files)",
        template::WIT_DIR,
        template::wit_package(lang),
        vendored(template::WIT_DIR)
    );
    if vendored(template::SDK_DIR) > 0 {
        println!(
            "  {}  the guest SDK, crate hybrid-guest ({} files)",
            template::SDK_DIR,
            vendored(template::SDK_DIR)
        );
    }
    let wasm = template::component(lang, name);
    println!("next:");
    println!("  cd {}", dest.display());
    match lang {
        Lang::Rust => println!("  cargo build --release"),
        Lang::Python => {
            println!("  ./build      # componentize-py into .venv, the unit tests, the component")
        }
    }
    println!("  hybrid check {wasm}");
    println!("  hybrid run --config hybrid.toml --pipeline {name} request.json");
    match lang {
        Lang::Rust => {
            println!("  cargo test --target x86_64-unknown-linux-gnu   # the unit tests, natively")
        }
        Lang::Python => println!("  ./build --test   # the unit tests only, under CPython"),
    }
    println!("deploy to a running box: hybrid deploy {name} {wasm} (see README.md)");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_lowercase_letters_digits_and_dashes_from_a_letter() {
        for good in ["demo-plugin", "a", "x9", "my-2nd-plugin"] {
            assert_eq!(parse_name(good).as_deref(), Ok(good));
        }
        for (bad, why) in [
            ("", "does not start with a lowercase letter"),
            ("Demo", "does not start with a lowercase letter"),
            ("1st", "does not start with a lowercase letter"),
            ("-x", "does not start with a lowercase letter"),
            ("demo_plugin", "contains '_'"),
            ("demo plugin", "contains ' '"),
            ("démo", "contains 'é'"),
        ] {
            let e = parse_name(bad).expect_err(bad);
            assert!(e.contains(why), "{bad:?}: {e}");
        }
        assert!(parse_name(&"a".repeat(65)).is_err());
    }

    #[test]
    fn a_rust_plugin_is_not_named_as_a_keyword_or_a_dependency() {
        assert_eq!(check_crate_name("demo-plugin"), Ok(()));
        for (bad, why) in [
            ("fn", "reserved in Rust"),
            ("test", "reserved in Rust"),
            ("hybrid-guest", "a crate the project depends on"),
            ("serde", "a crate the project depends on"),
        ] {
            let e = check_crate_name(bad).expect_err(bad);
            assert!(e.contains(why), "{bad:?}: {e}");
        }
    }

    #[test]
    fn writes_into_an_empty_folder_and_refuses_a_full_one() {
        let parent = std::env::temp_dir().join(format!("hybrid-new-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&parent);
        std::fs::create_dir_all(parent.join("demo")).expect("empty folder");
        let args = |name: &str| NewArgs {
            name: name.into(),
            lang: Lang::Rust,
            dir: parent.clone(),
        };
        args("demo").execute().expect("an empty folder is fine");
        assert!(parent.join("demo/sdk/hybrid-guest/src/fake.rs").is_file());
        assert!(parent.join("demo/.cargo/config.toml").is_file());
        let e = args("demo").execute().expect_err("not empty");
        assert!(
            e.to_string().contains("already exists and is not empty"),
            "{e}"
        );
        std::fs::write(parent.join("file"), "x").expect("a file");
        let e = args("file").execute().expect_err("a file");
        assert!(e.to_string().contains("is not a folder"), "{e}");
        let python = |name: &str| NewArgs {
            lang: Lang::Python,
            ..args(name)
        };
        python("py").execute().expect("a python project");
        assert!(parent.join("py/wit/world.wit").is_file());
        assert!(!parent.join("py/sdk").exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(parent.join("py/build"))
                .expect("build")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o755);
        }
        // Cargo's rules are Rust's: a Python plugin may be called `test`.
        python("test").execute().expect("not a crate");
        let e = args("test").execute().expect_err("a Rust keyword");
        assert!(e.to_string().contains("reserved in Rust"), "{e}");
        let leftovers = std::fs::read_dir(&parent)
            .expect("parent")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
            .count();
        assert_eq!(leftovers, 0, "no staging folder left behind");
        std::fs::remove_dir_all(&parent).expect("clean up");
    }
}
