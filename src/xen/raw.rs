//! Writing typed wrappers for hypercalls and structures this crate does not cover.
//!
//! The typed API is built from three public pieces, usable from other crates the same way:
//!
//! - [`Plain`]: marks a `#[repr(C)]` structure as Xen ABI data (any bit pattern valid, no padding),
//!   implemented with [`impl_plain!`](crate::impl_plain), which checks both at compile time;
//! - [`Arg`]: describes one argument: a value ([`Arg::val`]), or a pointer with the size and direction of
//!   what it points to ([`Arg::input`], [`Arg::inout`], [`Arg::slice_in`], [`Arg::slice_inout`],
//!   [`Arg::bytes_in`]), and the arrays behind the guest handles inside a structure ([`Arg::handle_in`],
//!   [`Arg::handle_inout`]);
//! - [`call1`], [`call2`], [`call3`], [`call5`]: issue hypercall `NR` (a const generic) through the
//!   configured backend (inline stubs, out-of-line stubs with feature `outline`, the recording mock with
//!   feature `mock`). A `const` assertion refuses at compile time a stub whose arity differs from the one
//!   Xen's hypercall table declares for `NR` on the architecture and guest type being built
//!   ([`nr::arity`](super::nr::arity): ARM's table, or x86-64's PV64 or HVM64 column); none of the calls
//!   the typed API shares between ARM and x86-64 has 0, 4 or 6 arguments, so there is no `call0`, `call4`
//!   or `call6`.
//!
//! With the `mock` feature, a call made this way is recorded like the built-in ones: its number, its
//! arguments, the bytes behind every argument described as a pointer (`mock::Call::read`) and
//! behind the handles described inside it (`mock::Call::read_handle_at`), and a test's responder
//! can write through the arguments and handles described as written by Xen.
//!
//! A wrapper for `EVTCHNOP_reset` (`struct evtchn_reset`, which this crate does not wrap):
//!
//! ```
//! # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))] {
//! use xen_hypercall::xen::raw::{Arg, call2};
//! use xen_hypercall::xen::{DomId, Error, Result, nr};
//!
//! /// `struct evtchn_reset`.
//! #[repr(C)]
//! #[derive(Clone, Copy)]
//! pub struct EvtchnReset {
//!     pub dom: DomId,
//! }
//! xen_hypercall::impl_plain! { EvtchnReset { dom: DomId } }
//!
//! const EVTCHNOP_RESET: usize = 10;
//!
//! /// Closes every event channel of `dom` (`EVTCHNOP_reset`).
//! pub fn reset(dom: DomId) -> Result<()> {
//!     let r = EvtchnReset { dom };
//!     // SAFETY: Xen reads the `evtchn_reset` behind the pointer, borrowed for the call.
//!     let ret = unsafe {
//!         call2::<{ nr::EVENT_CHANNEL_OP }>(Arg::val(EVTCHNOP_RESET), Arg::input(&r))
//!     };
//!     Error::check_status(ret)
//! }
//! # #[cfg(feature = "mock")] {
//! use xen_hypercall::mock;
//! mock::reset();
//! mock::returns(0);
//! reset(DomId::SELF)?;
//! let c = &mock::take_calls()[0];
//! assert_eq!((c.op, c.args[0], c.arity()), (nr::EVENT_CHANNEL_OP, EVTCHNOP_RESET, 2));
//! assert_eq!(c.read::<EvtchnReset>(1).map(|r| r.dom), Some(DomId::SELF));
//! # }
//! # }
//! # Ok::<(), xen_hypercall::xen::Error>(())
//! ```
//!
//! A wrong arity does not compile:
//!
//! ```compile_fail
//! use xen_hypercall::xen::{nr, raw::{Arg, call3}};
//! // `memory_op` takes two arguments on ARM.
//! let _ = unsafe { call3::<{ nr::MEMORY_OP }>(Arg::val(0), Arg::val(0), Arg::val(0)) };
//! ```

#[doc(hidden)]
pub use super::call::plain_check as __plain;
pub use super::call::{Arg, MAX_HANDLES, Plain, call1, call2, call3, call5};
