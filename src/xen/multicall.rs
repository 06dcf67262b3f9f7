//! `multicall`: many hypercalls in one trap (`HYPERVISOR_multicall(entries, count)`, declared arity 2).
//!
//! A [`Batch`] holds up to `N` [`Call`]s in a fixed-capacity array (no allocation): push typed calls, then
//! [`submit`](Batch::submit), which consumes the batch (it runs once) and returns each call's result.
//! Pushing into a full batch is an error ([`Full`]), never a panic.
//!
//! ```
//! # #[cfg(feature = "mock")] xen_hypercall::mock::answer_zero();
//! # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))] {
//! use xen_hypercall::xen::{DomId, evtchn::{EvtchnStatus, Port}, hvm::{HvmParam, Param}};
//! use xen_hypercall::xen::multicall::{Batch, Call};
//! // What Xen writes lives outside the batch, borrowed by it until the batch is submitted.
//! let mut status = EvtchnStatus::new(DomId::SELF, Port(1));
//! let mut store = HvmParam::new(DomId::SELF, Param::STORE_PFN);
//! let mut batch: Batch<'_, 4> = Batch::new();
//! batch.push(Call::xen_version())?;
//! batch.push(Call::evtchn_status(&mut status))?;
//! batch.push(Call::hvm_get_param(&mut store))?;
//! let results = batch.submit();
//! results.status()?; // the multicall itself; each call's own failure is in its result
//! let version = results.get(0);
//! if results.get(1) == Some(Ok(0)) {
//!     let _port_state = status.decode();
//! }
//! let _store_pfn = results.get(2).and_then(|r| r.ok()).map(|_| store.value);
//! # let _ = version; }
//! # Ok::<(), xen_hypercall::xen::Error>(())
//! ```
//!
//! Xen runs the entries in order and writes each one's `result`; a call that fails does not stop the
//! batch (its `result` is its `-errno`). Only the multicall itself failing stops it (`-EFAULT` when an
//! entry cannot be read or its result written back, `-EINVAL` for a multicall inside a multicall): the
//! entries before that point ran, the rest did not. Every entry's `result` is preset to [`NOT_REACHED`],
//! so [`Results`] tells the calls that ran from those Xen never reached ([`CallError::NotReached`]).
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

/// The `result` every entry holds until Xen writes it: `1 << 63`, a value no call returns (a 64-bit Xen's
/// results are far smaller counts or `-errno`; a 32-bit Xen's are sign-extended 32-bit values, whose upper
/// half is all zeros or all ones).
pub const NOT_REACHED: u64 = 1 << 63;

/// Interprets a multicall entry's 64-bit result as [`Error::check`] does a hypercall's: only
/// `-MAX_ERRNO..=-1` is `-errno`, every other value is the call's value.
///
/// ```
/// use xen_hypercall::xen::{Error, multicall::check_result};
/// assert_eq!(check_result(4096), Ok(4096));
/// assert_eq!(check_result(-38i64 as u64), Err(Error::ENOSYS));
/// assert_eq!(check_result(0x8000_0000), Ok(0x8000_0000));
/// ```
pub const fn check_result(result: u64) -> Result<u64> {
    if result < (-(Error::MAX_ERRNO as i64)) as u64 {
        Ok(result)
    } else {
        Err(Error::from_errno((result as i32).wrapping_neg()))
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
                result: NOT_REACHED,
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
                result: NOT_REACHED,
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
                result: NOT_REACHED,
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

    /// `event_channel_op(EVTCHNOP_send, port)`: Xen reads the port when it runs the call, so it is
    /// borrowed until the batch is submitted (make it with [`PortArg::new`]).
    pub fn evtchn_send(port: &'a PortArg) -> Call<'a> {
        Call::new(
            nr::EVENT_CHANNEL_OP,
            [evtchn::EVTCHNOP_SEND, port as *const PortArg as usize],
        )
    }

    /// `event_channel_op(EVTCHNOP_status, status)`: make `status` with [`EvtchnStatus::new`]; Xen fills
    /// it when it runs the call (decode it with [`EvtchnStatus::decode`] after the batch, if the call's
    /// result is `Ok`).
    pub fn evtchn_status(status: &'a mut EvtchnStatus) -> Call<'a> {
        Call::new(
            nr::EVENT_CHANNEL_OP,
            [
                evtchn::EVTCHNOP_STATUS,
                status as *mut EvtchnStatus as usize,
            ],
        )
    }

    /// `hvm_op(HVMOP_get_param, param)`: make `param` with [`HvmParam::new`]; Xen fills `param.value`
    /// when it runs the call (read it after the batch, if the call's result is `Ok`).
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
    /// result, whatever happened: [`Results::status`] is the multicall hypercall's own result, and each
    /// call's is in [`Results::get`] (its value, its `-errno`, or [`CallError::NotReached`] for a call Xen
    /// never ran because the multicall stopped before it).
    ///
    /// Afterwards only each entry's `result` is meaningful: a debug Xen overwrites `op` and the arguments
    /// with `0xaa` bytes, which is why the batch is consumed and only the results are kept.
    pub fn submit(mut self) -> Results<N> {
        let len = self.entries.len();
        let mut status = Ok(());
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
            status = Error::check_status(ret);
        }
        Results {
            status,
            results: self.entries.iter().map(|e| e.result).collect(),
        }
    }
}

/// Why a call of a submitted [`Batch`] has no value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CallError {
    /// Xen ran the call and it failed: its `-errno`.
    Failed(Error),
    /// Xen did not run the call (or could not write its result back): the multicall hypercall stopped
    /// before it with this error ([`Results::status`]).
    NotReached(Error),
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Failed(e) => e.fmt(f),
            CallError::NotReached(e) => write!(f, "not run: the multicall stopped with {e}"),
        }
    }
}

impl core::error::Error for CallError {}

impl From<CallError> for Error {
    /// The call's own errno, or for a call Xen did not reach the multicall's error that stopped it.
    fn from(e: CallError) -> Error {
        match e {
            CallError::Failed(e) | CallError::NotReached(e) => e,
        }
    }
}

/// The results of a submitted [`Batch`], in the order the calls were pushed, and the multicall
/// hypercall's own result.
#[must_use = "the results say which calls failed or did not run"]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Results<const N: usize> {
    status: Result<()>,
    results: ArrayVec<u64, N>,
}

impl<const N: usize> Results<N> {
    /// The multicall hypercall's own result: `Ok` when Xen ran every call (each may still have failed),
    /// `Err` when it stopped part-way, the calls from that point on [`CallError::NotReached`].
    pub fn status(&self) -> Result<()> {
        self.status
    }

    /// The result of call `index` (`None` if there is no such call): its value, its `-errno`
    /// ([`CallError::Failed`]), or [`CallError::NotReached`] if Xen never ran it.
    pub fn get(&self, index: usize) -> Option<core::result::Result<u64, CallError>> {
        self.results.get(index).map(|&r| self.interpret(r))
    }

    /// Every call's result, in order (as [`Results::get`]).
    pub fn iter(&self) -> impl Iterator<Item = core::result::Result<u64, CallError>> + '_ {
        self.results.iter().map(|&r| self.interpret(r))
    }

    /// The raw 64-bit `result` fields, in order ([`NOT_REACHED`] for a call Xen did not reach).
    pub fn raw(&self) -> &[u64] {
        &self.results
    }

    /// How many calls the batch held.
    pub fn len(&self) -> usize {
        self.results.len()
    }

    /// Whether the batch was empty.
    pub fn is_empty(&self) -> bool {
        self.results.is_empty()
    }

    fn interpret(&self, raw: u64) -> core::result::Result<u64, CallError> {
        match self.status {
            // A result still at the preset value after a failed multicall was never written.
            Err(e) if raw == NOT_REACHED => Err(CallError::NotReached(e)),
            _ => check_result(raw).map_err(CallError::Failed),
        }
    }
}
