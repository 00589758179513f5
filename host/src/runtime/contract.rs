//! Which version of the `hybrid:inference` contract a component targets, and the one place
//! the host dispatches on it.
//!
//! The version is read from the component's imports (`hybrid:inference/<interface>@<v>`):
//! 0.1.x components (built against `wit/released/0.1.0` or `0.1.1`) are prepared, run and
//! answered through the 0.1 bindings, which delegate to the 0.2 host functions
//! ([`super::v0_1`]); everything else through the 0.2 bindings. Past this module a pipeline
//! is just a pipeline: requests go in as 0.2 [`Request`]s and answers come back as 0.2
//! [`Answer`]s, whatever the component's version.
//!
//! A component that exports `wasi:cli/run` instead of `handle` is a `wasi:cli` command
//! (a program written for any WASI runtime, such as wasmtime's own `wasi:nn` examples):
//! it is prepared through wasmtime-wasi's `Command` bindings and run once per request,
//! with the request as stdin and its stdout as the answer (see [`super::instance`]).

use wasmtime::Store;
use wasmtime::component::InstancePre;
use wasmtime_wasi::p2::bindings::sync::{Command, CommandPre};

use super::bindings::{messages, reply, v0_1, v0_2};
use super::state::RequestState;

/// A version of the WIT contract the host serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contract {
    /// `hybrid:inference@0.1.0` and `0.1.1`: complete answers only.
    V0_1,
    /// `hybrid:inference@0.2.0`, `0.2.1` and `0.2.2`: streaming, failure records, retry
    /// hints, (0.2.1) forwarding and signals' waits, (0.2.2) pre-initialisation.
    V0_2,
    /// No `hybrid:inference` at all: a `wasi:cli` command (exports `wasi:cli/run`).
    Command,
}

impl Contract {
    /// The world's full name.
    pub fn world(self) -> &'static str {
        match self {
            Self::V0_1 => "hybrid:inference/pipeline@0.1.1",
            Self::V0_2 => "hybrid:inference/pipeline@0.2.2",
            Self::Command => "wasi:cli/command@0.2.x",
        }
    }

    /// `0.1`, `0.2` or `wasi:cli command`.
    pub fn name(self) -> &'static str {
        match self {
            Self::V0_1 => "0.1",
            Self::V0_2 => "0.2",
            Self::Command => "wasi:cli command",
        }
    }

    /// Whether a component exporting these names is a `wasi:cli` command: it exports
    /// `wasi:cli/run` of WASI 0.2 and no `handle`.
    pub fn is_command<'a>(exports: impl IntoIterator<Item = &'a str>) -> bool {
        let mut run = false;
        for name in exports {
            if name == "handle" {
                return false;
            }
            run |= name.starts_with("wasi:cli/run@0.2.");
        }
        run
    }

    /// The version a component's imports name, or `None` when it imports no
    /// `hybrid:inference` interface (then either world may fit).
    pub fn of_imports<'a>(imports: impl IntoIterator<Item = &'a str>) -> Option<Self> {
        let mut found = None;
        for name in imports {
            let Some(rest) = name.strip_prefix("hybrid:inference/") else {
                continue;
            };
            let version = rest.rsplit_once('@').map_or("", |(_, v)| v);
            if version.starts_with("0.1.") {
                return Some(Self::V0_1);
            }
            found = Some(Self::V0_2);
        }
        found
    }
}

/// A component type-checked against its contract's world, ready to instantiate.
#[derive(Clone)]
pub enum PipelinePre {
    /// A 0.1.x component.
    V0_1(v0_1::PipelinePre<RequestState>),
    /// A 0.2 component.
    V0_2(v0_2::PipelinePre<RequestState>),
    /// A `wasi:cli` command.
    Command(CommandPre<RequestState>),
}

impl PipelinePre {
    /// Type-checks `pre`'s exports against `contract`'s world.
    pub fn new(contract: Contract, pre: InstancePre<RequestState>) -> wasmtime::Result<Self> {
        Ok(match contract {
            Contract::V0_1 => Self::V0_1(v0_1::PipelinePre::new(pre)?),
            Contract::V0_2 => Self::V0_2(v0_2::PipelinePre::new(pre)?),
            Contract::Command => Self::Command(CommandPre::new(pre)?),
        })
    }

    /// The contract.
    pub fn contract(&self) -> Contract {
        match self {
            Self::V0_1(_) => Contract::V0_1,
            Self::V0_2(_) => Contract::V0_2,
            Self::Command(_) => Contract::Command,
        }
    }

    /// A live instance in `store`.
    pub fn instantiate(&self, store: &mut Store<RequestState>) -> wasmtime::Result<Bindings> {
        Ok(match self {
            Self::V0_1(pre) => Bindings::V0_1(pre.instantiate(store)?),
            Self::V0_2(pre) => Bindings::V0_2(pre.instantiate(store)?),
            Self::Command(pre) => Bindings::Command(pre.instantiate(store)?),
        })
    }
}

/// A live instance's exports.
pub enum Bindings {
    /// A 0.1.x component.
    V0_1(v0_1::Pipeline),
    /// A 0.2 component.
    V0_2(v0_2::Pipeline),
    /// A `wasi:cli` command.
    Command(Command),
}

/// What the guest answered, in 0.2 terms.
pub type Answer = reply::Answer;

impl Bindings {
    /// Calls the guest's `handle`; a 0.1 answer is always [`Answer::Complete`]. A
    /// command has no `handle`: see [`Self::call_run`].
    pub fn call_handle(
        &self,
        store: &mut Store<RequestState>,
        request: &messages::Request,
    ) -> wasmtime::Result<Result<Answer, messages::Error>> {
        match self {
            Self::Command(_) => Err(wasmtime::format_err!(
                "a wasi:cli command has no `handle`; the host runs it with `run`"
            )),
            Self::V0_2(p) => p.call_handle(store, request),
            Self::V0_1(p) => {
                let request = super::v0_1::request_to_v0_1(request);
                let answer = p.call_handle(store, &request)?;
                Ok(answer
                    .map(|r| Answer::Complete(super::v0_1::response_from_v0_1(r)))
                    .map_err(super::v0_1::error_from_v0_1))
            }
        }
    }
}

impl Bindings {
    /// Runs a command's `wasi:cli/run`: `Ok(Ok(()))` when it exits with status 0, and
    /// `Ok(Err(()))` when it returns an error; an `exit` with a status is a trap carrying
    /// [`wasmtime_wasi::I32Exit`]. `None` for a `pipeline` component.
    pub fn call_run(
        &self,
        store: &mut Store<RequestState>,
    ) -> Option<wasmtime::Result<Result<(), ()>>> {
        match self {
            Self::Command(command) => Some(command.wasi_cli_run().call_run(store)),
            Self::V0_1(_) | Self::V0_2(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_exports_wasi_cli_run_and_no_handle() {
        assert!(Contract::is_command([
            "wasi:cli/run@0.2.6",
            "wasi:nn/graph@0.2.0-rc-2024-10-28"
        ]));
        assert!(Contract::is_command(["wasi:cli/run@0.2.0"]));
        assert!(!Contract::is_command(["handle"]));
        assert!(!Contract::is_command(["handle", "wasi:cli/run@0.2.6"]));
        assert!(!Contract::is_command(["wasi:cli/run@0.3.0"]));
        assert!(!Contract::is_command(["wasi:http/incoming-handler@0.2.6"]));
        assert!(!Contract::is_command([]));
    }

    #[test]
    fn reads_the_contract_from_the_imports() {
        assert_eq!(
            Contract::of_imports(["wasi:io/error@0.2.6", "hybrid:inference/log@0.1.0"]),
            Some(Contract::V0_1)
        );
        assert_eq!(
            Contract::of_imports(["hybrid:inference/messages@0.1.1"]),
            Some(Contract::V0_1)
        );
        assert_eq!(
            Contract::of_imports(["hybrid:inference/reply@0.2.0"]),
            Some(Contract::V0_2)
        );
        assert_eq!(
            Contract::of_imports(["hybrid:inference/reply@0.2.1"]),
            Some(Contract::V0_2)
        );
        assert_eq!(
            Contract::of_imports(["hybrid:inference/reply@0.2.2"]),
            Some(Contract::V0_2)
        );
        assert_eq!(Contract::of_imports(["wasi:io/error@0.2.6"]), None);
    }
}
