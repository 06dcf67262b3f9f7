//! A recording mock of the hypercall stubs, for unit tests of code built on this crate (feature `mock`).
//!
//! With the `mock` cargo feature, on any target with `std`, the raw stubs [`crate::hypercall0`] …
//! [`crate::hypercall6`] and the whole typed API ([`crate::xen`]) issue no `hvc`: each call is recorded
//! (number, arguments and, for the typed API, the bytes behind every pointer argument and behind the guest
//! handles inside the structures they point to) and answered by a
//! programmed response. The state is per thread, so parallel `cargo test` threads do not see each
//! other's calls.
//!
//! - [`returns`] / [`fails`] queue a plain result for the next call;
//! - [`respond`] queues a closure that sees the live call ([`Pending`]): it can check the arguments and
//!   write into the guest structures behind them, as Xen would (a port, a frame count);
//! - with nothing queued, the default responder answers ([`set_default`], or [`answer_zero`] to answer
//!   `0`); with no default either, the call panics, naming the hypercall, so that a test cannot pass on
//!   an answer it never scripted;
//! - [`calls`] / [`take_calls`] return what was recorded, as [`Call`]s.
//!
//! ```
//! use xen_hypercall::{mock, xen};
//! use xen_hypercall::xen::evtchn::{self, AllocUnbound, Port};
//!
//! mock::reset();
//! // Xen writes the new port into the struct and returns 0.
//! mock::respond(|call| {
//!     call.update(1, |a: &mut AllocUnbound| a.port = Port(7));
//!     0
//! });
//! let port = evtchn::alloc_unbound(xen::DomId::SELF, xen::DomId(0)).unwrap();
//! assert_eq!(port, Port(7));
//!
//! let calls = mock::take_calls();
//! assert_eq!(calls[0].op, xen::nr::EVENT_CHANNEL_OP);
//! assert_eq!(calls[0].args[0], evtchn::EVTCHNOP_ALLOC_UNBOUND);
//! let sent: AllocUnbound = calls[0].read(1).unwrap(); // the bytes Xen was given
//! assert_eq!((sent.dom, sent.remote_dom), (xen::DomId::SELF, xen::DomId(0)));
//! ```

extern crate std;

use std::boxed::Box;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::vec::Vec;

use crate::xen::Error;
use crate::xen::arg::{Arg, Dir, Plain};

/// One recorded hypercall.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// The hypercall number.
    pub op: usize,
    /// The arguments, one per register of the stub that was called: `args.len()` is the arity.
    pub args: Vec<usize>,
    /// For each argument, the bytes behind it when the call was made, where the caller described the
    /// argument as a pointer (the typed API always does; the raw stubs never do).
    pub buffers: Vec<Option<Vec<u8>>>,
    /// For each argument, the bytes behind each guest handle described inside the structure it points to
    /// ([`Arg::handle_in`](crate::xen::raw::Arg::handle_in)), in the order described, when the call was
    /// made.
    pub handles: Vec<Vec<Vec<u8>>>,
    /// What the call returned.
    pub ret: isize,
}

impl Call {
    /// The stub's arity: how many argument registers the call set.
    pub fn arity(&self) -> usize {
        self.args.len()
    }

    /// The bytes that argument `i` pointed to at the time of the call.
    pub fn bytes(&self, i: usize) -> Option<&[u8]> {
        self.buffers.get(i)?.as_deref()
    }

    /// The `T` that argument `i` pointed to at the time of the call (the first `size_of::<T>()` bytes).
    pub fn read<T: Plain>(&self, i: usize) -> Option<T> {
        let b = self.bytes(i)?;
        if b.len() < core::mem::size_of::<T>() {
            return None;
        }
        // SAFETY: `b` holds at least size_of::<T>() bytes; `T: Plain` accepts any bit pattern;
        // read_unaligned has no alignment requirement.
        Some(unsafe { core::ptr::read_unaligned(b.as_ptr().cast::<T>()) })
    }

    /// Element `k` of an array of `T` that argument `i` pointed to at the time of the call.
    pub fn read_at<T: Plain>(&self, i: usize, k: usize) -> Option<T> {
        element(self.bytes(i)?, k)
    }

    /// The bytes behind handle `h` (in the order described) of the structure argument `i` pointed to, at
    /// the time of the call.
    pub fn handle_bytes(&self, i: usize, h: usize) -> Option<&[u8]> {
        Some(self.handles.get(i)?.get(h)?.as_slice())
    }

    /// Element `k` of the array of `T` behind handle `h` of the structure argument `i` pointed to.
    pub fn read_handle_at<T: Plain>(&self, i: usize, h: usize, k: usize) -> Option<T> {
        element(self.handle_bytes(i, h)?, k)
    }

    /// The whole array of `T` behind handle `h` of the structure argument `i` pointed to.
    pub fn read_handle<T: Plain>(&self, i: usize, h: usize) -> Option<Vec<T>> {
        let n = self.handle_bytes(i, h)?.len() / core::mem::size_of::<T>().max(1);
        (0..n).map(|k| self.read_handle_at(i, h, k)).collect()
    }
}

/// Element `k` of the array of `T` in `b`.
fn element<T: Plain>(b: &[u8], k: usize) -> Option<T> {
    let size = core::mem::size_of::<T>();
    let start = k.checked_mul(size)?;
    let chunk = b.get(start..start.checked_add(size)?)?;
    // SAFETY: `chunk` holds exactly size_of::<T>() bytes; `T: Plain` accepts any bit pattern.
    Some(unsafe { core::ptr::read_unaligned(chunk.as_ptr().cast::<T>()) })
}

/// A call being answered: its arguments, and access to the guest memory behind its pointer arguments.
///
/// Memory access goes only through what the caller described: the size of the pointed-to object, and
/// whether Xen may write it. Writing where the call gives Xen no such right (a buffer Xen only reads,
/// such as the text of a console write; a value that is not a pointer; an object smaller than the `T`
/// written) is a mistake in the test or in the wrapper under test: the writing methods panic, naming
/// the call and the argument.
pub struct Pending<'a> {
    op: usize,
    args: &'a [Arg],
}

impl Pending<'_> {
    /// The hypercall number.
    pub fn op(&self) -> usize {
        self.op
    }

    /// The stub's arity.
    pub fn arity(&self) -> usize {
        self.args.len()
    }

    /// Argument `i` as a register value (0 beyond the arity).
    pub fn arg(&self, i: usize) -> usize {
        self.args.get(i).map_or(0, |a| a.value)
    }

    fn buf(&self, i: usize, need: usize) -> Option<*mut u8> {
        let a = self.args.get(i)?;
        let (len, _) = a.buf?;
        if len < need || a.value == 0 {
            return None;
        }
        Some(a.value as *mut u8)
    }

    /// The `T` that argument `i` points to now, if it was described as a pointer to at least that much.
    pub fn read<T: Plain>(&self, i: usize) -> Option<T> {
        let p = self.buf(i, core::mem::size_of::<T>())?;
        // SAFETY: the typed API described argument `i` as a pointer to at least size_of::<T>() bytes that
        // stay valid for the duration of the call; `T: Plain` accepts any bit pattern.
        Some(unsafe { core::ptr::read_unaligned(p.cast::<T>()) })
    }

    /// The writable pointer behind argument `i`, to at least `need` bytes; panics (the test's mistake, or
    /// the wrapper's) if the call gives Xen no right to write that much there.
    #[track_caller]
    fn writable(&self, i: usize, need: usize) -> *mut u8 {
        let what = match self.args.get(i) {
            None => "beyond the call's arity",
            Some(a) => match a.buf {
                None => "not described as a pointer",
                Some((_, Dir::In)) => "input-only: Xen only reads it",
                Some((len, Dir::InOut)) if len < need => "smaller than what is written",
                Some(_) if a.value == 0 => "a null pointer",
                Some(_) => return a.value as *mut u8,
            },
        };
        panic!(
            "mock: hypercall {} writes {need} bytes through argument {i}, which is {what}",
            self.op
        )
    }

    /// Writes `value` to what argument `i` points to, as Xen would, and returns `true`.
    ///
    /// # Panics
    ///
    /// If argument `i` is not a pointer to at least `size_of::<T>()` bytes that Xen may write (for
    /// instance an input-only one): the test, or the wrapper under test, is wrong.
    #[track_caller]
    pub fn write<T: Plain>(&mut self, i: usize, value: T) -> bool {
        let p = self.writable(i, core::mem::size_of::<T>());
        // SAFETY: the typed API described argument `i` as a pointer to at least size_of::<T>() bytes,
        // valid during the call and written by Xen, so the caller holds no other reference to it.
        unsafe { core::ptr::write_unaligned(p.cast::<T>(), value) };
        true
    }

    /// Reads, changes and writes back the `T` behind argument `i`, and returns `true`.
    ///
    /// # Panics
    ///
    /// As [`write`](Pending::write).
    #[track_caller]
    pub fn update<T: Plain>(&mut self, i: usize, f: impl FnOnce(&mut T)) -> bool {
        let p = self.writable(i, core::mem::size_of::<T>());
        // SAFETY: as in `write`; the described bytes are initialised (the caller passed a `Plain` value
        // or array, which has no padding) and `T: Plain` accepts any bit pattern.
        let mut v = unsafe { core::ptr::read_unaligned(p.cast::<T>()) };
        f(&mut v);
        self.write(i, v)
    }

    /// The writable array of `T` behind argument `i` (as many whole elements as its size holds); `None`
    /// only if it is not aligned for `T`.
    ///
    /// # Panics
    ///
    /// If argument `i` is not a pointer that Xen may write (for instance an input-only one).
    #[track_caller]
    pub fn slice_mut<T: Plain>(&mut self, i: usize) -> Option<&mut [T]> {
        let p = self.writable(i, 0);
        let len = self.args[i].buf.map_or(0, |(len, _)| len);
        let size = core::mem::size_of::<T>().max(1);
        if !(p as usize).is_multiple_of(core::mem::align_of::<T>()) {
            return None;
        }
        // SAFETY: the caller described `len` writable bytes at `p`, valid during the call and not otherwise
        // referenced; the alignment was checked; `T: Plain` accepts any bit pattern.
        Some(unsafe { core::slice::from_raw_parts_mut(p.cast::<T>(), len / size) })
    }
}

impl Pending<'_> {
    fn handle(&self, i: usize, h: usize) -> Option<(*mut u8, usize)> {
        let (p, len, _) = self.args.get(i)?.handles.get(h).copied().flatten()?;
        (p != 0).then_some((p as *mut u8, len))
    }

    /// Element `k` of the array of `T` behind handle `h` (in the order described) of the structure that
    /// argument `i` points to, as it is now.
    pub fn read_handle_at<T: Plain>(&self, i: usize, h: usize, k: usize) -> Option<T> {
        let (p, len) = self.handle(i, h)?;
        // SAFETY: the wrapper described `len` readable bytes at `p`, valid during the call.
        element(unsafe { core::slice::from_raw_parts(p, len) }, k)
    }

    /// The writable array of `T` behind handle `h` of the structure that argument `i` points to (as many
    /// whole elements as it holds); `None` if the handle is null or not aligned for `T`.
    ///
    /// # Panics
    ///
    /// If argument `i` describes no handle `h` that Xen may write (none, or an input-only one).
    #[track_caller]
    pub fn handle_mut<T: Plain>(&mut self, i: usize, h: usize) -> Option<&mut [T]> {
        let described = self
            .args
            .get(i)
            .and_then(|a| a.handles.get(h).copied().flatten());
        match described {
            Some((_, _, Dir::InOut)) => {}
            Some(_) => panic!(
                "mock: hypercall {} writes through handle {h} of argument {i}, which is input-only: \
                 Xen only reads it",
                self.op
            ),
            None => panic!(
                "mock: hypercall {} writes through handle {h} of argument {i}, which describes no such \
                 handle",
                self.op
            ),
        }
        let (p, len) = self.handle(i, h)?;
        if !(p as usize).is_multiple_of(core::mem::align_of::<T>()) {
            return None;
        }
        // SAFETY: the wrapper described `len` bytes at `p` as written by Xen, valid during the call and
        // not otherwise referenced; the alignment was checked; `T: Plain` accepts any bit pattern.
        Some(unsafe {
            core::slice::from_raw_parts_mut(p.cast::<T>(), len / core::mem::size_of::<T>().max(1))
        })
    }
}

type Responder = Box<dyn FnMut(&mut Pending<'_>) -> isize>;

struct State {
    calls: Vec<Call>,
    queue: VecDeque<Responder>,
    default: Option<Responder>,
}

std::thread_local! {
    static STATE: RefCell<State> = RefCell::new(State {
        calls: Vec::new(),
        queue: VecDeque::new(),
        default: None,
    });
}

/// Forgets this thread's recorded calls, queued responses and default responder.
pub fn reset() {
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        s.calls.clear();
        s.queue.clear();
        s.default = None;
    });
    smccc_reset();
    COUNTER.with(|c| c.set((DEFAULT_COUNTER_FREQUENCY, 0)));
}

/// The counter frequency of a fresh thread (and after [`reset`]): QEMU's generic timer, 62.5 MHz.
pub const DEFAULT_COUNTER_FREQUENCY: u64 = 62_500_000;

std::thread_local! {
    /// The clock counter the typed API reads (`xen::time`): (frequency in Hz, ticks).
    static COUNTER: core::cell::Cell<(u64, u64)> =
        const { core::cell::Cell::new((DEFAULT_COUNTER_FREQUENCY, 0)) };
}

/// Sets this thread's clock counter, which stands for the generic timer (`CNTFRQ`, `CNTVCT`) under
/// `xen::time::Clock`: `freq` Hz, now at `ticks`. It moves only when a test moves it
/// ([`advance_counter`], or [`set_counter`] from a responder, as time passing during a hypercall).
pub fn set_counter(freq: u64, ticks: u64) {
    COUNTER.with(|c| c.set((freq, ticks)));
}

/// Moves this thread's clock counter `ticks` ticks forward.
pub fn advance_counter(ticks: u64) {
    COUNTER.with(|c| {
        let (f, t) = c.get();
        c.set((f, t.wrapping_add(ticks)));
    });
}

/// This thread's clock counter ([`set_counter`]).
pub fn counter() -> u64 {
    COUNTER.with(|c| c.get().1)
}

/// This thread's clock counter frequency ([`set_counter`]).
pub fn counter_frequency() -> u64 {
    COUNTER.with(|c| c.get().0)
}

/// Queues `f` to answer the next call on this thread that no earlier queued response answers.
pub fn respond(f: impl FnMut(&mut Pending<'_>) -> isize + 'static) {
    STATE.with(|s| s.borrow_mut().queue.push_back(Box::new(f)));
}

/// Queues the raw result `ret` for the next unanswered call.
pub fn returns(ret: isize) {
    respond(move |_| ret);
}

/// Queues the failure `e` (the raw result `-errno`) for the next unanswered call.
pub fn fails(e: Error) {
    returns(-(e.errno() as isize));
}

/// Answers every call that finds the queue empty with `f`, until [`reset`]. Without a default, such a
/// call panics.
pub fn set_default(f: impl FnMut(&mut Pending<'_>) -> isize + 'static) {
    STATE.with(|s| s.borrow_mut().default = Some(Box::new(f)));
}

/// Answers every call that finds the queue empty with `0` (success, writing nothing), until [`reset`]:
/// the explicit opt-in for tests that do not care what the calls return.
pub fn answer_zero() {
    set_default(|_| 0);
}

/// How many queued responses are still unused.
pub fn pending_responses() -> usize {
    STATE.with(|s| s.borrow().queue.len())
}

/// The calls recorded on this thread so far.
pub fn calls() -> Vec<Call> {
    STATE.with(|s| s.borrow().calls.clone())
}

/// The calls recorded on this thread so far, clearing the record.
pub fn take_calls() -> Vec<Call> {
    STATE.with(|s| core::mem::take(&mut s.borrow_mut().calls))
}

/// Records a call and answers it. The entry point of the typed API's backend (`xen::call`).
///
/// # Safety
///
/// Every argument described as a pointer (`Arg::buf`), and every array described behind a handle inside
/// one (`Arg::handles`), points to that many initialised bytes, valid for reads (and for writes where
/// described as written) until this returns, and not otherwise accessed meanwhile.
pub(crate) unsafe fn dispatch(op: usize, args: &[Arg]) -> isize {
    let buffers = args
        .iter()
        .map(|a| match a.buf {
            Some((len, _)) if a.value != 0 => {
                // SAFETY: this function's contract: `len` readable, initialised bytes at `a.value`.
                Some(unsafe { core::slice::from_raw_parts(a.value as *const u8, len) }.to_vec())
            }
            _ => None,
        })
        .collect();
    let handles = args
        .iter()
        .map(|a| {
            a.handles
                .iter()
                .flatten()
                .map(|&(p, len, _)| {
                    if p == 0 {
                        return Vec::new();
                    }
                    // SAFETY: this function's contract: `len` readable, initialised bytes behind each
                    // described handle.
                    unsafe { core::slice::from_raw_parts(p as *const u8, len) }.to_vec()
                })
                .collect()
        })
        .collect();
    let (index, responder) = STATE.with(|s| {
        let mut s = s.borrow_mut();
        s.calls.push(Call {
            op,
            args: args.iter().map(|a| a.value).collect(),
            buffers,
            handles,
            ret: 0,
        });
        let index = s.calls.len() - 1;
        (index, s.queue.pop_front())
    });
    let mut pending = Pending { op, args };
    // The responder runs with the state released, so that it may itself make (recorded) calls.
    let ret = match responder {
        Some(mut f) => f(&mut pending),
        None => {
            let default = STATE.with(|s| s.borrow_mut().default.take());
            match default {
                Some(mut f) => {
                    let ret = f(&mut pending);
                    STATE.with(|s| {
                        let mut s = s.borrow_mut();
                        if s.default.is_none() {
                            s.default = Some(f);
                        }
                    });
                    ret
                }
                None => panic!(
                    "mock: unscripted hypercall {op} (arguments {:x?}): queue an answer (mock::returns, \
                     mock::fails, mock::respond) or set a default (mock::answer_zero, mock::set_default)",
                    args.iter().map(|a| a.value).collect::<Vec<_>>()
                ),
            }
        }
    };
    STATE.with(|s| {
        if let Some(c) = s.borrow_mut().calls.get_mut(index) {
            c.ret = ret;
        }
    });
    ret
}

macro_rules! raw_stubs {
    ($($name:ident: $n:literal ($($a:ident),*);)*) => { $(
        #[doc = concat!(" The mock's `hypercall", $n, "`: records the call (no buffers: the raw stub does not")]
        /// know what its arguments point to) and returns the programmed response.
        ///
        /// # Safety
        ///
        /// None beyond that of the real stub it stands in for; the mock itself never dereferences the
        /// arguments of a raw call.
        pub unsafe fn $name(op: usize $(, $a: usize)*) -> isize {
            // SAFETY: no argument is described as a pointer, so nothing is dereferenced.
            unsafe { dispatch(op, &[$(Arg::val($a)),*]) }
        }
    )* };
}

raw_stubs! {
    hypercall0: 0 ();
    hypercall1: 1 (a1);
    hypercall2: 2 (a1, a2);
    hypercall3: 3 (a1, a2, a3);
    hypercall4: 4 (a1, a2, a3, a4);
    hypercall5: 5 (a1, a2, a3, a4, a5);
    hypercall6: 6 (a1, a2, a3, a4, a5, a6);
}

/// One recorded SMCCC call (`hvc #0`: [`crate::smccc`], [`crate::psci`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmcccCall {
    /// The function identifier.
    pub fid: u32,
    /// The arguments, zero-extended: `args.len()` is how many the call passed.
    pub args: Vec<u64>,
    /// What the call returned in `x0`–`x3`.
    pub results: [u64; 4],
}

type SmcccResponder = Box<dyn FnMut(&SmcccCall) -> [u64; 4]>;

struct SmcccState {
    calls: Vec<SmcccCall>,
    queue: VecDeque<SmcccResponder>,
    not_supported: bool,
}

std::thread_local! {
    static SMCCC: RefCell<SmcccState> = RefCell::new(SmcccState {
        calls: Vec::new(),
        queue: VecDeque::new(),
        not_supported: false,
    });
}

/// Queues `f` to answer the next SMCCC call on this thread: it sees the call (identifier and arguments;
/// `results` still zero) and returns `x0`–`x3`. With nothing queued a call panics, naming the function,
/// unless [`smccc_answer_not_supported`] was called.
pub fn smccc_respond(f: impl FnMut(&SmcccCall) -> [u64; 4] + 'static) {
    SMCCC.with(|s| s.borrow_mut().queue.push_back(Box::new(f)));
}

/// Queues the results `x0`–`x3` of the next SMCCC call (a 32-bit result: its value sign-extended, or just
/// the low 32 bits, which is all a 32-bit call reads).
pub fn smccc_returns(results: [u64; 4]) {
    smccc_respond(move |_| results);
}

/// Answers every SMCCC call that finds the queue empty with `NOT_SUPPORTED` (`x0` = -1, as Xen answers
/// an unknown function), until [`smccc_reset`] or [`reset`]: the explicit opt-in for tests that probe
/// functions without scripting each answer.
pub fn smccc_answer_not_supported() {
    SMCCC.with(|s| s.borrow_mut().not_supported = true);
}

/// The SMCCC calls recorded on this thread so far.
pub fn smccc_calls() -> Vec<SmcccCall> {
    SMCCC.with(|s| s.borrow().calls.clone())
}

/// The SMCCC calls recorded on this thread so far, clearing the record.
pub fn take_smccc_calls() -> Vec<SmcccCall> {
    SMCCC.with(|s| core::mem::take(&mut s.borrow_mut().calls))
}

/// Forgets this thread's recorded SMCCC calls, queued SMCCC answers and
/// [`smccc_answer_not_supported`] ([`reset`] does too).
pub fn smccc_reset() {
    SMCCC.with(|s| {
        let mut s = s.borrow_mut();
        s.calls.clear();
        s.queue.clear();
        s.not_supported = false;
    });
}

/// Records an SMCCC call and answers it: the backend of [`crate::smccc`] and [`crate::psci`].
pub(crate) fn smccc_dispatch(fid: u32, args: &[u64]) -> [u64; 4] {
    let mut call = SmcccCall {
        fid,
        args: args.to_vec(),
        results: [0; 4],
    };
    let (responder, not_supported) = SMCCC.with(|s| {
        let mut s = s.borrow_mut();
        (s.queue.pop_front(), s.not_supported)
    });
    // The responder runs with the state released, so that it may itself make (recorded) calls.
    let results = match responder {
        Some(mut f) => f(&call),
        None if not_supported => [u64::MAX, 0, 0, 0],
        None => panic!(
            "mock: unscripted SMCCC call {fid:#x} (arguments {args:x?}): queue an answer \
             (mock::smccc_returns, mock::smccc_respond) or opt in with mock::smccc_answer_not_supported"
        ),
    };
    call.results = results;
    SMCCC.with(|s| s.borrow_mut().calls.push(call));
    results
}
