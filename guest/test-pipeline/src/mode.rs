//! The test pipeline's behaviours and how request metadata selects one.

/// What the pipeline does with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Return the body unchanged.
    Echo,
    /// Panic, which traps the instance.
    Trap,
    /// Spin forever, until the host's deadline or fuel stops it.
    Loop,
    /// Sleep 30 s (WASI `poll` on a monotonic-clock pollable, blocking in the host), then
    /// echo: the host must stop it at the deadline like a loop.
    Sleep,
    /// Allocate and touch memory until the host's memory cap stops it.
    Oom,
    /// Make a malformed `local::run` call and return its error.
    Probe(crate::probe::Probe),
    /// Return the host's loaded models as JSON.
    Models,
    /// Log one line at every level, then echo.
    Log,
    /// Call a serverless endpoint 10,000 times, ignoring every error, then echo.
    RemoteLoop,
    /// Run a local model 10,000 times, ignoring every error, then echo.
    RunLoop,
    /// Answer 20 MiB of zeros.
    Huge,
    /// Recurse without end until the stack overflows (a trap).
    Recurse,
    /// Log 100,000 lines of 4 KiB, then echo.
    LogFlood,
}

/// Every mode name, for the unknown-mode message.
pub const MODE_NAMES: [&str; 17] = [
    "echo",
    "trap",
    "loop",
    "sleep",
    "oom",
    "bad-shape",
    "bad-type",
    "bad-bytes",
    "unknown-model",
    "missing-input",
    "models",
    "log",
    "remote-loop",
    "run-loop",
    "huge",
    "recurse",
    "log-flood",
];

impl Mode {
    /// The mode named by the last `mode` metadata entry; `echo` when there is none.
    pub fn from_metadata(metadata: &[(String, String)]) -> Result<Self, String> {
        let name = metadata
            .iter()
            .rev()
            .find(|(k, _)| k == "mode")
            .map_or("echo", |(_, v)| v.as_str());
        Self::from_name(name)
    }

    /// The mode called `name`, or the bad-request message listing the known ones.
    pub fn from_name(name: &str) -> Result<Self, String> {
        use crate::probe::Probe;
        Ok(match name {
            "echo" => Self::Echo,
            "trap" => Self::Trap,
            "loop" => Self::Loop,
            "sleep" => Self::Sleep,
            "oom" => Self::Oom,
            "bad-shape" => Self::Probe(Probe::BadShape),
            "bad-type" => Self::Probe(Probe::BadType),
            "bad-bytes" => Self::Probe(Probe::BadBytes),
            "unknown-model" => Self::Probe(Probe::UnknownModel),
            "missing-input" => Self::Probe(Probe::MissingInput),
            "models" => Self::Models,
            "log" => Self::Log,
            "remote-loop" => Self::RemoteLoop,
            "run-loop" => Self::RunLoop,
            "huge" => Self::Huge,
            "recurse" => Self::Recurse,
            "log-flood" => Self::LogFlood,
            other => {
                return Err(format!(
                    "unknown mode {other}; known modes: {}",
                    MODE_NAMES.join(", ")
                ));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_name_parses() {
        for name in MODE_NAMES {
            assert!(Mode::from_name(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn echo_is_the_default_and_the_last_mode_wins() {
        assert_eq!(Mode::from_metadata(&[]), Ok(Mode::Echo));
        let meta = vec![
            ("other".to_owned(), "x".to_owned()),
            ("mode".to_owned(), "trap".to_owned()),
            ("mode".to_owned(), "loop".to_owned()),
        ];
        assert_eq!(Mode::from_metadata(&meta), Ok(Mode::Loop));
    }

    #[test]
    fn unknown_modes_list_the_known_ones() {
        let err = Mode::from_name("explode").expect_err("unknown");
        assert!(err.starts_with("unknown mode explode; known modes: echo, trap, loop, sleep"));
    }
}
