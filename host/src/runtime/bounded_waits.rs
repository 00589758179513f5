//! Waits in the host that end at the request's deadline.
//!
//! Epoch interruption stops a guest that runs past its deadline, but only while it runs
//! wasm: a guest waiting in the host (`wasi:io/poll` on a clock pollable, which is what
//! `std::thread::sleep` compiles to) is out of its reach and would hold a worker for as
//! long as it asked. Two WASI interfaces are ours, not wasmtime-wasi's:
//! 1. `wasi:clocks/monotonic-clock`: the same clock, but `subscribe-duration` and
//!    `subscribe-instant` give pollables that are ready at the deadline at the latest;
//! 2. `wasi:io/poll`: `poll` and `pollable.block` wait as before, then, when the deadline
//!    has passed, stop the guest with the same interrupt an epoch deadline raises, so it
//!    is reported as the deadline it is.
//!
//! Clock pollables are the only ones a pipeline can wait on for long: its WASI context has
//! no files, sockets or stdin, and the stdio pollables are always ready.

use std::time::Instant;

use wasmtime::Trap;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi::WasiView;
use wasmtime_wasi::clocks::{WasiClocksCtxView, WasiClocksView};
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::p2::bindings::clocks::monotonic_clock;
use wasmtime_wasi::p2::bindings::sync::io::poll;

use super::state::RequestState;

/// Nanoseconds from now until `deadline`, 0 once it has passed.
fn left_ns(deadline: Instant) -> u64 {
    let left = deadline.saturating_duration_since(Instant::now());
    u64::try_from(left.as_nanos()).unwrap_or(u64::MAX)
}

/// The linker's handle on [`ClocksView`].
struct Clocks;

impl HasData for Clocks {
    type Data<'a> = ClocksView<'a>;
}

/// The WASI clocks of one request and its deadline.
struct ClocksView<'a> {
    clocks: WasiClocksCtxView<'a>,
    deadline: Instant,
}

impl monotonic_clock::Host for ClocksView<'_> {
    fn now(&mut self) -> wasmtime::Result<monotonic_clock::Instant> {
        monotonic_clock::Host::now(&mut self.clocks)
    }

    fn resolution(&mut self) -> wasmtime::Result<monotonic_clock::Duration> {
        monotonic_clock::Host::resolution(&mut self.clocks)
    }

    fn subscribe_duration(
        &mut self,
        duration: monotonic_clock::Duration,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        let bounded = duration.min(left_ns(self.deadline));
        monotonic_clock::Host::subscribe_duration(&mut self.clocks, bounded)
    }

    fn subscribe_instant(
        &mut self,
        when: monotonic_clock::Instant,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        let now = monotonic_clock::Host::now(&mut self.clocks)?;
        let bounded = when.saturating_sub(now).min(left_ns(self.deadline));
        monotonic_clock::Host::subscribe_duration(&mut self.clocks, bounded)
    }
}

/// The linker's handle on [`PollView`].
struct Poll;

impl HasData for Poll {
    type Data<'a> = PollView<'a>;
}

/// The request's resource table and its deadline.
struct PollView<'a> {
    table: &'a mut ResourceTable,
    deadline: Instant,
}

impl PollView<'_> {
    /// After a wait: the deadline's interrupt if it has passed.
    fn in_time(&self) -> wasmtime::Result<()> {
        if Instant::now() >= self.deadline {
            return Err(Trap::Interrupt.into());
        }
        Ok(())
    }
}

impl poll::Host for PollView<'_> {
    fn poll(&mut self, pollables: Vec<Resource<DynPollable>>) -> wasmtime::Result<Vec<u32>> {
        let ready = poll::Host::poll(self.table, pollables)?;
        self.in_time()?;
        Ok(ready)
    }
}

impl poll::HostPollable for PollView<'_> {
    fn ready(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<bool> {
        poll::HostPollable::ready(self.table, pollable)
    }

    fn block(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        poll::HostPollable::block(self.table, pollable)?;
        self.in_time()
    }

    fn drop(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        poll::HostPollable::drop(self.table, pollable)
    }
}

/// Adds the bounded monotonic clock and poll to `linker`.
pub fn add_to_linker(linker: &mut Linker<RequestState>) -> wasmtime::Result<()> {
    monotonic_clock::add_to_linker::<RequestState, Clocks>(linker, |s| {
        let deadline = s.clock.deadline();
        ClocksView {
            clocks: s.clocks(),
            deadline,
        }
    })?;
    poll::add_to_linker::<RequestState, Poll>(linker, |s| {
        let deadline = s.clock.deadline();
        PollView {
            table: s.ctx().table,
            deadline,
        }
    })
}
