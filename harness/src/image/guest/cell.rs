//! What every cell shares, the plain and the SMCCC ones (`smccc.rs`): the 32 live values and how they
//! are read (volatile loads of [`INPUT`]), the message a call carries to the monitor ([`prepare`],
//! [`answer`], the registered [`MAILBOX`]), the monitor's [`verdict`], why a cell failed ([`Failure`]),
//! and the `CELL` lines ([`report`], [`control`]).

use core::cell::UnsafeCell;
use core::ptr::read_volatile;

use crate::arch;
use crate::image::uart::say;
use crate::proto::{self, Msg};

const LIVE: usize = 32;

const fn input(i: usize) -> usize {
    // Distinct values, none of which looks like the poison pattern.
    (0x0123_4567_89ab_cdefu64.wrapping_mul(2 * i as u64 + 3) ^ (0x1111 * i as u64)) as usize
}

static INPUT: [usize; LIVE] = {
    let mut v = [0; LIVE];
    let mut i = 0;
    while i < LIVE {
        v[i] = input(i);
        i += 1;
    }
    v
};

/// Read with a volatile load, so that the compiler can neither fold nor rematerialise it.
static ID_BASE: usize = 0;

#[inline(always)]
pub(super) fn rd(i: usize) -> usize {
    // SAFETY: `INPUT` is a valid static; `i` is a constant below its length at every use.
    unsafe { read_volatile(&INPUT[i]) }
}

#[inline(always)]
pub(super) fn id(n: usize) -> usize {
    // SAFETY: a valid static.
    unsafe { read_volatile(&ID_BASE) + n }
}

/// The arity-0 calls' message: registered with the monitor (like Xen's registered `vcpu_info`).
pub(super) struct Mailbox(pub(super) UnsafeCell<Msg>);
// SAFETY: one CPU; the guest accesses it only through the raw pointer, between calls.
unsafe impl Sync for Mailbox {}
pub(super) static MAILBOX: Mailbox = Mailbox(UnsafeCell::new(Msg::EMPTY));

/// Why a cell failed.
pub(super) enum Failure {
    Monitor(u32),
    Ret {
        call: char,
        got: usize,
        want: usize,
    },
    Reply {
        call: char,
        got: u64,
        want: u64,
    },
    Traps {
        call: char,
        got: u32,
        want: u32,
    },
    Live {
        index: usize,
        got: usize,
        want: usize,
    },
    Saved {
        reg: usize,
        got: usize,
    },
    Stack {
        before: usize,
        after: usize,
    },
}

impl Failure {
    pub(super) fn show(&self) {
        let width = usize::BITS;
        let reg = if width == 64 { 'x' } else { 'r' };
        match *self {
            Failure::Monitor(code) => {
                proto::verdict::describe(code, &mut |text, detail| match detail {
                    Some(d) => say!("{text} {d:#x}"),
                    None => say!("{text}"),
                })
            }
            Failure::Ret { call, got, want } => {
                say!("call {call}: return value {got:#x}, expected {want:#x}")
            }
            Failure::Reply { call, got, want } => {
                say!(
                    "call {call}: reply {got:#x} after the call, expected {want:#x} (memory not re-read)"
                )
            }
            Failure::Traps { call, got, want } => {
                say!("call {call}: trapped {got} times, expected {want}")
            }
            Failure::Live { index, got, want } => match proto::poisoned_reg(got as u64, width) {
                Some(r) => say!("{reg}{r} clobbered (live value {index} = {got:#x})"),
                None => say!("live value {index} changed: {got:#x}, expected {want:#x}"),
            },
            Failure::Saved { reg: r, got } => {
                say!("callee-saved {reg}{r} not preserved by the stub: {got:#x}")
            }
            Failure::Stack { before, after } => {
                say!("stack pointer {before:#x} before the call, {after:#x} after")
            }
        }
    }
}

pub(super) type Outcome = Result<(), Failure>;

/// A cell and its name.
pub(super) type Named = (&'static str, fn() -> Outcome);

macro_rules! live_values {
    ($($f:ident = $i:literal),* $(,)?) => {
        /// Values kept live across the calls.
        pub(super) struct Live { $(pub(super) $f: usize),* }
        impl Live {
            #[inline(always)]
            pub(super) fn read() -> Self {
                Live { $($f: rd($i)),* }
            }
            #[inline(always)]
            pub(super) fn check(&self) -> Outcome {
                $(
                    let want = rd($i);
                    if self.$f != want {
                        return Err(Failure::Live { index: $i, got: self.$f, want });
                    }
                )*
                Ok(())
            }
        }
    };
}

// The live values as fields: `lN` holds value N of `INPUT`.
live_values! {
    l0 = 0, l1 = 1, l2 = 2, l3 = 3, l4 = 4, l5 = 5, l6 = 6, l7 = 7,
    l8 = 8, l9 = 9, l10 = 10, l11 = 11, l12 = 12, l13 = 13, l14 = 14, l15 = 15,
    l16 = 16, l17 = 17, l18 = 18, l19 = 19, l20 = 20, l21 = 21, l22 = 22, l23 = 23,
    l24 = 24, l25 = 25, l26 = 26, l27 = 27, l28 = 28, l29 = 29, l30 = 30, l31 = 31,
}

/// Stores the message before a call: what the monitor checks the registers against.
#[inline(always)]
pub(super) fn prepare(msg: *mut Msg, arity: usize, op: usize, args: &[usize; 6], request: u64) {
    let mut a = [0u64; 6];
    for i in 0..arity {
        a[i] = args[i] as u64;
    }
    // SAFETY: `msg` points at a live, aligned `Msg` (a local or the mailbox) that nothing else accesses.
    unsafe {
        msg.write(Msg {
            magic: proto::MSG_MAGIC,
            arity: arity as u32,
            op: op as u64,
            args: a,
            request,
            reply: 0,
            traps: 0,
            pad: 0,
        });
        // The reply field once more on its own: a plain store that a compiler which believes the call
        // leaves memory alone will forward to the load after the call.
        (&raw mut (*msg).reply).write(0);
    };
}

/// The reply and trap count the monitor wrote, read after the call (plain loads: only the stub's memory
/// clobber makes the compiler re-read them).
#[inline(always)]
pub(super) fn answer(msg: *const Msg) -> (u64, u32) {
    // SAFETY: as in `prepare`.
    unsafe { ((*msg).reply, (*msg).traps) }
}

#[inline(always)]
pub(super) fn check_call(
    call: char,
    op: usize,
    ret: isize,
    ans: (u64, u32),
    request: u64,
    traps: u32,
) -> Outcome {
    let want = proto::ret_for(op as u64) as usize;
    if ret as usize != want {
        return Err(Failure::Ret {
            call,
            got: ret as usize,
            want,
        });
    }
    check_answer(call, ans, request, traps)
}

/// Checks the monitor's answer to a call (its reply to `request`) and that the call trapped `traps`
/// times.
#[inline(always)]
pub(super) fn check_answer(call: char, ans: (u64, u32), request: u64, traps: u32) -> Outcome {
    let want = request ^ proto::REPLY_XOR;
    if ans.0 != want {
        return Err(Failure::Reply {
            call,
            got: ans.0,
            want,
        });
    }
    if ans.1 != traps {
        return Err(Failure::Traps {
            call,
            got: ans.1,
            want: traps,
        });
    }
    Ok(())
}

/// The monitor's verdict on the last calls (inlined into the cells, as when it was their module's).
#[inline]
pub(super) fn verdict() -> Outcome {
    match arch::verdict() {
        0 => Ok(()),
        code => Err(Failure::Monitor(code)),
    }
}

pub(super) fn report(name: &str, outcome: Outcome) -> bool {
    match outcome {
        Ok(()) => {
            say!("CELL {name} ok");
            true
        }
        Err(f) => {
            crate::image::uart::raw(format_args!("CELL {name} FAIL "));
            f.show();
            false
        }
    }
}

/// A control passes when its defect is detected, for the right reason.
pub(super) fn control(name: &str, outcome: Outcome, expected: fn(&Failure) -> bool) -> bool {
    match outcome {
        Err(f) if expected(&f) => {
            crate::image::uart::raw(format_args!("CELL {name} detected "));
            f.show();
            true
        }
        Err(f) => {
            crate::image::uart::raw(format_args!(
                "CELL {name} FAIL detected for another reason: "
            ));
            f.show();
            false
        }
        Ok(()) => {
            say!("CELL {name} FAIL not detected");
            false
        }
    }
}
