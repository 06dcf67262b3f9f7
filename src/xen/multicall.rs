//! `multicall`: many hypercalls in one trap (`HYPERVISOR_multicall(entries, count)`, declared arity 2).
//!
//! A [`Batch`] holds up to `N` [`Call`]s in a fixed-capacity array (no allocation): push typed calls, then
//! [`submit`](Batch::submit), which consumes the batch (it runs once) and returns each call's result.
//! Pushing into a full batch is an error ([`Full`]), never a panic.
//!
//! ```
//! # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))] {
//! use xen_hypercall::xen::multicall::{Batch, Call};
//! let mut batch: Batch<'_, 4> = Batch::new();
//! batch.push(Call::xen_version())?;
//! batch.push(Call::pagesize())?;
//! let results = batch.submit()?;
//! let version = results.get(0);
//! # let _ = version; }
//! # Ok::<(), xen_hypercall::xen::Error>(())
//! ```
//!
//! After a multicall only each entry's `result` may be trusted: a debug Xen overwrites the rest of the
//! entry. Each argument is a 64-bit slot; from a 32-bit guest its upper half must be zero or Xen crashes
//! the domain, which the typed constructors guarantee (they zero-extend).

use core::fmt;
use core::marker::PhantomData;

use arrayvec::ArrayVec;

use super::call::{Arg, call2};
use super::evtchn::{self, EvtchnStatus, PortArg};
use super::hvm::{self, HvmParam};
use super::{Error, Plain, Result, console, nr, sched, version};

/// `struct multicall_entry` on ARM (64 bytes: every field a 64-bit `xen_ulong_t`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MulticallEntry {
    /// The hypercall number.
    pub op: u64,
    /// OUT: its result (a signed `long` in an unsigned slot).
    pub result: u64,
    /// The arguments.
    pub args: [u64; 6],
}

// SAFETY: a repr(C) struct of integers.
unsafe impl Plain for MulticallEntry {}

/// Interprets a multicall entry's 64-bit result: non-negative is the value, negative is `-errno`.
pub const fn check_result(result: u64) -> Result<u64> {
    let r = result as i64;
    if r >= 0 {
        Ok(r as u64)
    } else if r < -(i32::MAX as i64) {
        Err(Error::from_errno(i32::MAX))
    } else {
        Err(Error::from_errno((-r) as i32))
    }
}

/// One call of a batch. Its lifetime `'a` covers whatever its arguments point to.
#[derive(Clone, Copy, Debug)]
pub struct Call<'a> {
    entry: MulticallEntry,
    _borrow: PhantomData<&'a mut ()>,
}

const fn slot(v: usize) -> u64 {
    // Zero-extension: the upper half of a 32-bit guest's slot is zero, as Xen requires.
    v as u64
}

impl<'a> Call<'a> {
    const fn new(op: usize, args: [usize; 2]) -> Call<'a> {
        Call {
            entry: MulticallEntry {
                op: slot(op),
                result: 0,
                args: [slot(args[0]), slot(args[1]), 0, 0, 0, 0],
            },
            _borrow: PhantomData,
        }
    }

    /// Any hypercall, with raw argument slots.
    ///
    /// # Safety
    ///
    /// As for the raw stubs: every argument that Xen treats as a pointer refers to memory valid and laid
    /// out as Xen expects until the batch is submitted, and from a 32-bit guest every slot's upper half
    /// is zero.
    pub const unsafe fn raw(op: usize, args: [u64; 6]) -> Call<'a> {
        Call {
            entry: MulticallEntry {
                op: slot(op),
                result: 0,
                args,
            },
            _borrow: PhantomData,
        }
    }

    /// `xen_version(XENVER_version, NULL)`: the result is `major << 16 | minor`.
    pub const fn xen_version() -> Call<'a> {
        Call::new(nr::XEN_VERSION, [version::XENVER_VERSION, 0])
    }

    /// `xen_version(XENVER_pagesize, NULL)`.
    pub const fn pagesize() -> Call<'a> {
        Call::new(nr::XEN_VERSION, [version::XENVER_PAGESIZE, 0])
    }

    /// `sched_op(SCHEDOP_yield, NULL)`.
    pub const fn sched_yield() -> Call<'a> {
        Call::new(nr::SCHED_OP, [sched::SCHEDOP_YIELD, 0])
    }

    /// `console_io(CONSOLEIO_write, len, text)`.
    pub fn console_write(text: &'a [u8]) -> Call<'a> {
        Call {
            entry: MulticallEntry {
                op: slot(nr::CONSOLE_IO),
                result: 0,
                args: [
                    slot(console::CONSOLEIO_WRITE),
                    slot(text.len()),
                    slot(text.as_ptr() as usize),
                    0,
                    0,
                    0,
                ],
            },
            _borrow: PhantomData,
        }
    }

    /// `event_channel_op(EVTCHNOP_send, port)`.
    pub fn evtchn_send(port: &'a mut PortArg) -> Call<'a> {
        Call::new(
            nr::EVENT_CHANNEL_OP,
            [evtchn::EVTCHNOP_SEND, port as *mut PortArg as usize],
        )
    }

    /// `event_channel_op(EVTCHNOP_status, status)`: Xen fills `status` (decode it with
    /// [`EvtchnStatus::decode`] after the batch).
    pub fn evtchn_status(status: &'a mut EvtchnStatus) -> Call<'a> {
        Call::new(
            nr::EVENT_CHANNEL_OP,
            [
                evtchn::EVTCHNOP_STATUS,
                status as *mut EvtchnStatus as usize,
            ],
        )
    }

    /// `hvm_op(HVMOP_get_param, param)`: Xen fills `param.value`.
    pub fn hvm_get_param(param: &'a mut HvmParam) -> Call<'a> {
        Call::new(
            nr::HVM_OP,
            [hvm::HVMOP_GET_PARAM, param as *mut HvmParam as usize],
        )
    }

    /// The entry this call becomes.
    pub const fn entry(&self) -> &MulticallEntry {
        &self.entry
    }
}

/// A [`Batch`] is full: the call was not added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Full;

impl fmt::Display for Full {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the multicall batch is full")
    }
}

impl core::error::Error for Full {}

impl From<Full> for Error {
    /// A full batch is [`Error::ENOBUFS`] ("No buffer space available").
    fn from(_: Full) -> Error {
        Error::ENOBUFS
    }
}

/// Up to `N` calls submitted in one `multicall` hypercall.
///
/// [`submit`](Batch::submit) consumes the batch, so a batch runs at most once: re-issuing entries that
/// already ran would repeat their effects on a release Xen and hand a debug Xen entries it had overwritten.
pub struct Batch<'a, const N: usize> {
    entries: ArrayVec<MulticallEntry, N>,
    _borrow: PhantomData<&'a mut ()>,
}

impl<'a, const N: usize> Default for Batch<'a, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a, const N: usize> Batch<'a, N> {
    /// An empty batch.
    pub const fn new() -> Self {
        Batch {
            entries: ArrayVec::new_const(),
            _borrow: PhantomData,
        }
    }

    /// Adds `call`; returns its index, or [`Full`] if the batch already holds `N` calls (a full batch is
    /// left as it was).
    pub fn push(&mut self, call: Call<'a>) -> core::result::Result<usize, Full> {
        self.entries.try_push(call.entry).map_err(|_| Full)?;
        Ok(self.entries.len() - 1)
    }

    /// How many calls the batch holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the batch holds no call.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The most calls it can hold, `N`.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// The entries as they will be submitted.
    pub fn entries(&self) -> &[MulticallEntry] {
        &self.entries
    }

    /// Issues every call in one `multicall` hypercall (none if the batch is empty) and returns each call's
    /// result. The `Err` is the multicall hypercall's own failure (the batch was not run); a call of the
    /// batch that failed is an `Err` in its [`Results::get`].
    ///
    /// Afterwards only each entry's `result` is meaningful: a debug Xen overwrites `op` and the arguments
    /// with `0xaa` bytes, which is why the batch is consumed and only the results are kept.
    pub fn submit(mut self) -> Result<Results<N>> {
        let len = self.entries.len();
        if len > 0 {
            // SAFETY: the entries are `len` contiguous 64-byte `multicall_entry`s, mutably borrowed for
            // the call; each call's own pointer arguments borrow for `'a`, which outlives `self` (the
            // `Call` constructors tie them to it, `Call::raw` makes it its caller's contract).
            let ret = unsafe {
                call2::<{ nr::MULTICALL }>(
                    Arg::slice_inout(self.entries.as_mut_ptr(), len),
                    Arg::val(len),
                )
            };
            Error::check_status(ret)?;
        }
        Ok(Results {
            results: self.entries.iter().map(|e| e.result).collect(),
        })
    }
}

/// The results of a submitted [`Batch`], in the order the calls were pushed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Results<const N: usize> {
    results: ArrayVec<u64, N>,
}

impl<const N: usize> Results<N> {
    /// The result of call `index` (`None` if there is no such call): its value, or its `-errno` as an
    /// [`Error`].
    pub fn get(&self, index: usize) -> Option<Result<u64>> {
        self.results.get(index).map(|&r| check_result(r))
    }

    /// Every call's result, in order.
    pub fn iter(&self) -> impl Iterator<Item = Result<u64>> + '_ {
        self.results.iter().map(|&r| check_result(r))
    }

    /// The raw 64-bit `result` fields, in order.
    pub fn raw(&self) -> &[u64] {
        &self.results
    }

    /// How many calls ran.
    pub fn len(&self) -> usize {
        self.results.len()
    }

    /// Whether the batch was empty.
    pub fn is_empty(&self) -> bool {
        self.results.is_empty()
    }
}
