//! The SMC Calling Convention's stubs (`hvc #0`), executed as a user calls them: the inline stubs
//! (`xen_hypercall::arch::smccc::smc32_callN`, and on AArch64 `smc64_callN`), the out-of-line ones
//! (`xen_hypercall::outline::smccc`), and the typed calls (`smccc::is_xen`, `psci::version`).
//!
//! A cell of arity N makes two SMCCC calls with the same registers and keeps the 32 live values across
//! them. The monitor (`monitor::smccc`) checks the identifier and the arguments against the message (and
//! that an SMC32 call from AArch64 passed every register zero-extended), then completes the call as SMCCC
//! 1.1 and Xen do: `x0`–`x3` written (`!fid` and the poison of registers 1–3), nothing else. The cell
//! checks all four results, the reply, the verdict and the live values.
//!
//! Negative controls (optimised builds): `control-smccc-v10` calls the generated stub under a monitor
//! that completes the call as SMCCC 1.0 allows (`x4`–`x17` poisoned; 32-bit: `r4`, `r5`, `r8`), which the
//! description (SMCCC 1.1: preserved) does not cover: a live value must come back poisoned.
//! The compiler often keeps a pointer in one of those registers, and the guest crashes on the poison:
//! the monitor then reports the control as detected and resumes the guest where [`run`] is told to (`guest.rs`'s `smccc_resume`).

use super::cell::{
    Failure, Live, MAILBOX, Named, Outcome, answer, check_answer, control, id, prepare, report,
    verdict,
};
use crate::arch;
use crate::proto::{self, Msg};

macro_rules! inline32 {
    (0, $op:expr, $a:expr) => {
        xen_hypercall::arch::smccc::smc32_call0($op)
    };
    (1, $op:expr, $a:expr) => {
        xen_hypercall::arch::smccc::smc32_call1($op, $a[0])
    };
    (2, $op:expr, $a:expr) => {
        xen_hypercall::arch::smccc::smc32_call2($op, $a[0], $a[1])
    };
    (3, $op:expr, $a:expr) => {
        xen_hypercall::arch::smccc::smc32_call3($op, $a[0], $a[1], $a[2])
    };
    (4, $op:expr, $a:expr) => {
        xen_hypercall::arch::smccc::smc32_call4($op, $a[0], $a[1], $a[2], $a[3])
    };
    (5, $op:expr, $a:expr) => {
        xen_hypercall::arch::smccc::smc32_call5($op, $a[0], $a[1], $a[2], $a[3], $a[4])
    };
    (6, $op:expr, $a:expr) => {
        xen_hypercall::arch::smccc::smc32_call6($op, $a[0], $a[1], $a[2], $a[3], $a[4], $a[5])
    };
}

#[cfg(target_arch = "aarch64")]
macro_rules! inline64 {
    (0, $op:expr, $a:expr) => {
        xen_hypercall::arch::smccc::smc64_call0($op)
    };
    (1, $op:expr, $a:expr) => {
        xen_hypercall::arch::smccc::smc64_call1($op, $a[0])
    };
    (2, $op:expr, $a:expr) => {
        xen_hypercall::arch::smccc::smc64_call2($op, $a[0], $a[1])
    };
    (3, $op:expr, $a:expr) => {
        xen_hypercall::arch::smccc::smc64_call3($op, $a[0], $a[1], $a[2])
    };
    (4, $op:expr, $a:expr) => {
        xen_hypercall::arch::smccc::smc64_call4($op, $a[0], $a[1], $a[2], $a[3])
    };
    (5, $op:expr, $a:expr) => {
        xen_hypercall::arch::smccc::smc64_call5($op, $a[0], $a[1], $a[2], $a[3], $a[4])
    };
    (6, $op:expr, $a:expr) => {
        xen_hypercall::arch::smccc::smc64_call6($op, $a[0], $a[1], $a[2], $a[3], $a[4], $a[5])
    };
}

macro_rules! outline32 {
    (0, $op:expr, $a:expr) => {{
        let mut out = [0; 4];
        xen_hypercall::outline::smccc::smc32_call0(&mut out, $op);
        out
    }};
    (1, $op:expr, $a:expr) => {{
        let mut out = [0; 4];
        xen_hypercall::outline::smccc::smc32_call1(&mut out, $op, $a[0]);
        out
    }};
    (2, $op:expr, $a:expr) => {{
        let mut out = [0; 4];
        xen_hypercall::outline::smccc::smc32_call2(&mut out, $op, $a[0], $a[1]);
        out
    }};
    (3, $op:expr, $a:expr) => {{
        let mut out = [0; 4];
        xen_hypercall::outline::smccc::smc32_call3(&mut out, $op, $a[0], $a[1], $a[2]);
        out
    }};
    (4, $op:expr, $a:expr) => {{
        let mut out = [0; 4];
        xen_hypercall::outline::smccc::smc32_call4(&mut out, $op, $a[0], $a[1], $a[2], $a[3]);
        out
    }};
    (5, $op:expr, $a:expr) => {{
        let mut out = [0; 4];
        xen_hypercall::outline::smccc::smc32_call5(
            &mut out, $op, $a[0], $a[1], $a[2], $a[3], $a[4],
        );
        out
    }};
    (6, $op:expr, $a:expr) => {{
        let mut out = [0; 4];
        xen_hypercall::outline::smccc::smc32_call6(
            &mut out, $op, $a[0], $a[1], $a[2], $a[3], $a[4], $a[5],
        );
        out
    }};
}

#[cfg(target_arch = "aarch64")]
macro_rules! outline64 {
    (0, $op:expr, $a:expr) => {{
        let mut out = [0; 4];
        xen_hypercall::outline::smccc::smc64_call0(&mut out, $op);
        out
    }};
    (1, $op:expr, $a:expr) => {{
        let mut out = [0; 4];
        xen_hypercall::outline::smccc::smc64_call1(&mut out, $op, $a[0]);
        out
    }};
    (2, $op:expr, $a:expr) => {{
        let mut out = [0; 4];
        xen_hypercall::outline::smccc::smc64_call2(&mut out, $op, $a[0], $a[1]);
        out
    }};
    (3, $op:expr, $a:expr) => {{
        let mut out = [0; 4];
        xen_hypercall::outline::smccc::smc64_call3(&mut out, $op, $a[0], $a[1], $a[2]);
        out
    }};
    (4, $op:expr, $a:expr) => {{
        let mut out = [0; 4];
        xen_hypercall::outline::smccc::smc64_call4(&mut out, $op, $a[0], $a[1], $a[2], $a[3]);
        out
    }};
    (5, $op:expr, $a:expr) => {{
        let mut out = [0; 4];
        xen_hypercall::outline::smccc::smc64_call5(
            &mut out, $op, $a[0], $a[1], $a[2], $a[3], $a[4],
        );
        out
    }};
    (6, $op:expr, $a:expr) => {{
        let mut out = [0; 4];
        xen_hypercall::outline::smccc::smc64_call6(
            &mut out, $op, $a[0], $a[1], $a[2], $a[3], $a[4], $a[5],
        );
        out
    }};
}

/// Checks the four results of SMCCC call `fid` (truncated to `bits`), the reply and the trap count.
fn check_results(
    call: char,
    fid: u32,
    got: [u64; 4],
    bits: u32,
    ans: (u64, u32),
    request: u64,
) -> Outcome {
    let mask = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    for (k, want) in proto::smccc_results(fid).into_iter().enumerate() {
        let want = want & mask;
        if got[k] != want {
            return Err(Failure::Ret {
                call,
                got: got[k] as usize,
                want: want as usize,
            });
        }
    }
    check_answer(call, ans, request, 1)
}

/// One cell: two calls of arity `$n` with `$call!`, operands of type `$w`, SMC64 if `$smc64`.
macro_rules! smccc_cell {
    ($name:ident, $n:tt, $call:ident, $w:ty, $smc64:expr) => {
        #[inline(never)]
        fn $name() -> Outcome {
            let v = Live::read();
            let fid = proto::smccc_op($n, $smc64, false, id(1));
            let mut local = Msg::EMPTY;
            let msg = if $n == 0 {
                MAILBOX.0.get()
            } else {
                &raw mut local
            };
            let args: [$w; 6] = [
                msg as usize as $w,
                v.l0 as $w,
                v.l1 as $w,
                v.l2 as $w,
                v.l3 as $w,
                v.l4 as $w,
            ];
            let wide = args.map(|a| a as usize);
            let req_a = (v.l31 ^ fid as usize) as u64;
            prepare(msg, $n, fid as usize, &wide, req_a);
            // SAFETY: the harness's monitor implements every SMCCC call under test: it reads the message
            // behind the first argument (or the registered mailbox) and writes its reply there.
            let ret_a = unsafe { $call!($n, fid as $w, args) };
            let ans_a = answer(msg);
            let req_r = (v.l29 ^ fid as usize) as u64;
            prepare(msg, $n, fid as usize, &wide, req_r);
            // SAFETY: as above.
            let ret_r = unsafe { $call!($n, fid as $w, args) };
            let ans_r = answer(msg);
            verdict()?;
            check_results('A', fid, ret_a.map(|r| r as u64), <$w>::BITS, ans_a, req_a)?;
            check_results('R', fid, ret_r.map(|r| r as u64), <$w>::BITS, ans_r, req_r)?;
            v.check()
        }
    };
}

smccc_cell!(smccc32_0, 0, inline32, u32, false);
smccc_cell!(smccc32_1, 1, inline32, u32, false);
smccc_cell!(smccc32_2, 2, inline32, u32, false);
smccc_cell!(smccc32_3, 3, inline32, u32, false);
smccc_cell!(smccc32_4, 4, inline32, u32, false);
smccc_cell!(smccc32_5, 5, inline32, u32, false);
smccc_cell!(smccc32_outline0, 0, outline32, u32, false);
smccc_cell!(smccc32_outline1, 1, outline32, u32, false);
smccc_cell!(smccc32_outline2, 2, outline32, u32, false);
smccc_cell!(smccc32_outline3, 3, outline32, u32, false);
smccc_cell!(smccc32_outline4, 4, outline32, u32, false);
smccc_cell!(smccc32_outline5, 5, outline32, u32, false);
#[cfg(target_arch = "aarch64")]
mod a64 {
    use super::*;
    smccc_cell!(smccc32_6, 6, inline32, u32, false);
    smccc_cell!(smccc32_outline6, 6, outline32, u32, false);
    smccc_cell!(smccc64_0, 0, inline64, u64, true);
    smccc_cell!(smccc64_1, 1, inline64, u64, true);
    smccc_cell!(smccc64_2, 2, inline64, u64, true);
    smccc_cell!(smccc64_3, 3, inline64, u64, true);
    smccc_cell!(smccc64_4, 4, inline64, u64, true);
    smccc_cell!(smccc64_5, 5, inline64, u64, true);
    smccc_cell!(smccc64_6, 6, inline64, u64, true);
    smccc_cell!(smccc64_outline0, 0, outline64, u64, true);
    smccc_cell!(smccc64_outline1, 1, outline64, u64, true);
    smccc_cell!(smccc64_outline2, 2, outline64, u64, true);
    smccc_cell!(smccc64_outline3, 3, outline64, u64, true);
    smccc_cell!(smccc64_outline4, 4, outline64, u64, true);
    smccc_cell!(smccc64_outline5, 5, outline64, u64, true);
    smccc_cell!(smccc64_outline6, 6, outline64, u64, true);

    /// The AArch64-only cells.
    pub const CELLS: [Named; 16] = [
        ("smccc32-6", smccc32_6),
        ("smccc32-outline6", smccc32_outline6),
        ("smccc64-0", smccc64_0),
        ("smccc64-1", smccc64_1),
        ("smccc64-2", smccc64_2),
        ("smccc64-3", smccc64_3),
        ("smccc64-4", smccc64_4),
        ("smccc64-5", smccc64_5),
        ("smccc64-6", smccc64_6),
        ("smccc64-outline0", smccc64_outline0),
        ("smccc64-outline1", smccc64_outline1),
        ("smccc64-outline2", smccc64_outline2),
        ("smccc64-outline3", smccc64_outline3),
        ("smccc64-outline4", smccc64_outline4),
        ("smccc64-outline5", smccc64_outline5),
        ("smccc64-outline6", smccc64_outline6),
    ];
}

/// The typed calls (through the out-of-line stubs: the harness enables `outline`): Xen detection by the
/// hypervisor service's UID and `psci::version`, with live values kept across them.
#[inline(never)]
fn typed() -> Outcome {
    let v = Live::read();
    let xen = xen_hypercall::smccc::is_xen();
    let version = xen_hypercall::psci::version();
    verdict()?;
    if !xen {
        return Err(Failure::Ret {
            call: 'U',
            got: 0,
            want: 1,
        });
    }
    let bits = (usize::from(version.major) << 16) | usize::from(version.minor);
    if bits != 0x1_0001 {
        return Err(Failure::Ret {
            call: 'V',
            got: bits,
            want: 0x1_0001,
        });
    }
    v.check()
}

/// The generated stub of arity 1 (SMC64 on AArch64) for a call the monitor completes as SMCCC 1.0.
#[inline(never)]
fn control_v10() -> Outcome {
    let v = Live::read();
    let smc64 = cfg!(target_arch = "aarch64");
    let fid = proto::smccc_op(1, smc64, true, id(3));
    let mut local = Msg::EMPTY;
    let msg = &raw mut local;
    let args = [msg as usize, 0, 0, 0, 0, 0];
    let req = (v.l31 ^ fid as usize) as u64;
    prepare(msg, 1, fid as usize, &args, req);
    #[cfg(target_arch = "aarch64")]
    // SAFETY: the monitor implements the call (see `smccc_cell!`); it poisons x4–x17, which this
    // control is about.
    let ret = unsafe { xen_hypercall::arch::smccc::smc64_call1(u64::from(fid), msg as u64) };
    #[cfg(target_arch = "arm")]
    // SAFETY: as above (r4, r5, r8 poisoned).
    let ret = unsafe { xen_hypercall::arch::smccc::smc32_call1(fid, msg as u32) }.map(u64::from);
    let live = v.check();
    let ans = answer(msg);
    let monitor = verdict();
    live?;
    monitor?;
    check_results('A', fid, ret, usize::BITS, ans, req)
}

/// Whether a failure names a live value poisoned in one of `regs`.
fn poisoned_in(f: &Failure, regs: core::ops::RangeInclusive<usize>) -> bool {
    matches!(f, Failure::Live { got, .. }
        if matches!(proto::poisoned_reg(*got as u64, usize::BITS), Some(r) if regs.contains(&r)))
}

/// Runs the SMCCC cells (and, in an optimised build, the controls); returns how many failed.
/// `failed_before` is the count so far, the exit status should a control crash the guest; `resume` is
/// where the guest goes on after such a crash.
pub fn run(optimised: bool, failed_before: usize, resume: extern "C" fn(usize) -> !) -> usize {
    let cells: [Named; 13] = [
        ("smccc32-0", smccc32_0),
        ("smccc32-1", smccc32_1),
        ("smccc32-2", smccc32_2),
        ("smccc32-3", smccc32_3),
        ("smccc32-4", smccc32_4),
        ("smccc32-5", smccc32_5),
        ("smccc32-outline0", smccc32_outline0),
        ("smccc32-outline1", smccc32_outline1),
        ("smccc32-outline2", smccc32_outline2),
        ("smccc32-outline3", smccc32_outline3),
        ("smccc32-outline4", smccc32_outline4),
        ("smccc32-outline5", smccc32_outline5),
        ("smccc-typed", typed),
    ];
    let mut failed = 0;
    for (name, f) in cells {
        failed += usize::from(!report(name, f()));
    }
    #[cfg(target_arch = "aarch64")]
    for (name, f) in a64::CELLS {
        failed += usize::from(!report(name, f()));
    }
    if optimised {
        // The control may corrupt a register the compiler keeps a pointer in and crash the guest: the
        // monitor then reports it as detected and resumes the guest at `resume`.
        arch::service3(
            proto::SVC_CRASH_DETECTS,
            failed_before + failed,
            1,
            resume as *const () as usize,
        );
        failed += usize::from(!control("control-smccc-v10", control_v10(), |f| {
            if usize::BITS == 64 {
                poisoned_in(f, 4..=17)
            } else {
                poisoned_in(f, 4..=5) || poisoned_in(f, 8..=8)
            }
        }));
        arch::service(proto::SVC_CRASH_CLEAR, 0);
    }
    failed
}
