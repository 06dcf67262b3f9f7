//! The guest side: every stub called as a user calls it, with many values live across the call.
//!
//! A cell of arity N makes three calls through `xen_hypercall::hypercall!` with N arguments: a plain one
//! (A), the same again with the same registers (R), and one the monitor preempts and restarts (B). Before the calls it loads 32 values with volatile reads (the
//! compiler cannot recompute them, so it must keep them in registers or spill them: with 32 values every
//! register the call may not clobber holds one), passes some of them as arguments, and afterwards checks
//! - each of the 32 values against a fresh volatile read (a value in a register the monitor poisoned
//!   names that register),
//! - each call's return value,
//! - the reply the monitor wrote into the message behind the pointer argument (the guest must re-read
//!   memory after the call), and how often each call trapped (2 for the preempted one),
//! - the monitor's verdict: tag, call number, arguments, the message stored before the call, restart.
//!
//! The negative controls run the same checks over hand-written stubs with one defect each; a control
//! passes when its defect is detected, for the reason it should be.

use crate::arch;
use crate::image::uart::say;
use crate::proto::{self, Msg};

#[path = "guest/cell.rs"]
mod cell;
#[path = "guest/smccc.rs"]
mod smccc;

use cell::{
    Failure, Live, MAILBOX, Named, Outcome, answer, check_call, control, id, prepare, rd, report,
    verdict,
};

/// `hypercall!` with the first `N` of `args`.
macro_rules! xen_call {
    (0, $op:expr, $a:expr) => {
        xen_hypercall::hypercall!($op)
    };
    (1, $op:expr, $a:expr) => {
        xen_hypercall::hypercall!($op, $a[0])
    };
    (2, $op:expr, $a:expr) => {
        xen_hypercall::hypercall!($op, $a[0], $a[1])
    };
    (3, $op:expr, $a:expr) => {
        xen_hypercall::hypercall!($op, $a[0], $a[1], $a[2])
    };
    (4, $op:expr, $a:expr) => {
        xen_hypercall::hypercall!($op, $a[0], $a[1], $a[2], $a[3])
    };
    (5, $op:expr, $a:expr) => {
        xen_hypercall::hypercall!($op, $a[0], $a[1], $a[2], $a[3], $a[4])
    };
    (6, $op:expr, $a:expr) => {
        xen_hypercall::hypercall!($op, $a[0], $a[1], $a[2], $a[3], $a[4], $a[5])
    };
}

/// One cell: a plain call and a preempted call of arity `$n`, made with `$call!` (which receives the
/// number as the local `op_a` or `op_b`). The numbers are `$op_a` and `$op_b`; by default long numbers
/// the compiler cannot fold (their id is read with a volatile load).
macro_rules! cell {
    ($name:ident, $n:tt, $call:ident) => {
        cell!(
            $name,
            $n,
            $call,
            proto::op($n, false, id(1)),
            proto::op($n, true, id(2))
        );
    };
    ($name:ident, $n:tt, $call:ident, $op_a:expr, $op_b:expr) => {
        #[inline(never)]
        fn $name() -> Outcome {
            let v = Live::read();
            let (op_a, op_b) = ($op_a, $op_b);
            let mut local_a = Msg::EMPTY;
            let mut local_b = Msg::EMPTY;
            // Arity 0 has no pointer argument: its message is the registered mailbox.
            let (msg_a, msg_b) = if $n == 0 {
                (MAILBOX.0.get(), MAILBOX.0.get())
            } else {
                (&raw mut local_a, &raw mut local_b)
            };
            let args_a = [msg_a as usize, v.l0, v.l1, v.l2, v.l3, v.l4];
            let req_a = (v.l31 ^ op_a) as u64;
            prepare(msg_a, $n, op_a, &args_a, req_a);
            // SAFETY: the harness's monitor implements every call under test: it reads the message behind
            // the first argument (or the registered mailbox) and writes its reply there.
            let ret_a = unsafe { $call!($n, op_a, args_a) };
            let ans_a = answer(msg_a);
            // The same call again, registers and all: a compiler told that the call leaves an argument
            // or the number register unchanged would not load it again, and the monitor would see the
            // poison there instead of the argument.
            let req_r = (v.l29 ^ op_a) as u64;
            prepare(msg_a, $n, op_a, &args_a, req_r);
            // SAFETY: as above.
            let ret_r = unsafe { $call!($n, op_a, args_a) };
            let ans_r = answer(msg_a);
            let args_b = [msg_b as usize, v.l5, v.l6, v.l7, v.l8, v.l9];
            let req_b = (v.l30 ^ op_b) as u64;
            prepare(msg_b, $n, op_b, &args_b, req_b);
            // SAFETY: as above; this call is preempted once and restarted by the monitor.
            let ret_b = unsafe { $call!($n, op_b, args_b) };
            let ans_b = answer(msg_b);
            verdict()?;
            check_call('A', op_a, ret_a, ans_a, req_a, 1)?;
            check_call('R', op_a, ret_r, ans_r, req_r, 1)?;
            check_call('B', op_b, ret_b, ans_b, req_b, 2)?;
            v.check()
        }
    };
}

cell!(arity0, 0, xen_call);
cell!(arity1, 1, xen_call);
cell!(arity2, 2, xen_call);
cell!(arity3, 3, xen_call);
cell!(arity4, 4, xen_call);
cell!(arity5, 5, xen_call);
cell!(arity6, 6, xen_call);

/// The out-of-line stubs (`xen_hypercall::outline`) with the first `N` of `args`.
macro_rules! outline_call {
    (0, $op:expr, $a:expr) => {
        xen_hypercall::outline::hypercall0($op)
    };
    (1, $op:expr, $a:expr) => {
        xen_hypercall::outline::hypercall1($op, $a[0])
    };
    (2, $op:expr, $a:expr) => {
        xen_hypercall::outline::hypercall2($op, $a[0], $a[1])
    };
    (3, $op:expr, $a:expr) => {
        xen_hypercall::outline::hypercall3($op, $a[0], $a[1], $a[2])
    };
    (4, $op:expr, $a:expr) => {
        xen_hypercall::outline::hypercall4($op, $a[0], $a[1], $a[2], $a[3])
    };
    (5, $op:expr, $a:expr) => {
        xen_hypercall::outline::hypercall5($op, $a[0], $a[1], $a[2], $a[3], $a[4])
    };
    (6, $op:expr, $a:expr) => {
        xen_hypercall::outline::hypercall6($op, $a[0], $a[1], $a[2], $a[3], $a[4], $a[5])
    };
}

// The same cells through the out-of-line stubs: the monitor checks the registers the stub loaded and
// poisons what the ABI lets the call clobber, so a stub that moves an argument into the wrong register or
// fails to restore a callee-saved register it used (r4/r5 at arity 5 and 6 on 32-bit ARM) is caught.
cell!(outline0, 0, outline_call);
cell!(outline1, 1, outline_call);
cell!(outline2, 2, outline_call);
cell!(outline3, 3, outline_call);
cell!(outline4, 4, outline_call);
cell!(outline5, 5, outline_call);
cell!(outline6, 6, outline_call);

/// The per-hypercall stubs (`xen_hypercall::outline::per_call`), number built in: `op_a` and `op_b` of a
/// cell are the constants [`per_call_op`] gives (the cell passes the same numbers for its checks).
macro_rules! per_call {
    ($n:tt, op_a, $a:expr) => {
        per_call_stub!($n, { per_call_op($n, false) }, $a)
    };
    ($n:tt, op_b, $a:expr) => {
        per_call_stub!($n, { per_call_op($n, true) }, $a)
    };
}

/// `per_call::hypercallN::<NR>` with the first `N` of `args`.
macro_rules! per_call_stub {
    (0, $nr:block, $a:expr) => {
        xen_hypercall::outline::per_call::hypercall0::<$nr>()
    };
    (1, $nr:block, $a:expr) => {
        xen_hypercall::outline::per_call::hypercall1::<$nr>($a[0])
    };
    (2, $nr:block, $a:expr) => {
        xen_hypercall::outline::per_call::hypercall2::<$nr>($a[0], $a[1])
    };
    (3, $nr:block, $a:expr) => {
        xen_hypercall::outline::per_call::hypercall3::<$nr>($a[0], $a[1], $a[2])
    };
    (4, $nr:block, $a:expr) => {
        xen_hypercall::outline::per_call::hypercall4::<$nr>($a[0], $a[1], $a[2], $a[3])
    };
    (5, $nr:block, $a:expr) => {
        xen_hypercall::outline::per_call::hypercall5::<$nr>($a[0], $a[1], $a[2], $a[3], $a[4])
    };
    (6, $nr:block, $a:expr) => {
        xen_hypercall::outline::per_call::hypercall6::<$nr>(
            $a[0], $a[1], $a[2], $a[3], $a[4], $a[5],
        )
    };
}

/// The short call numbers of the per-hypercall cells: call A (and R) and the preempted call B.
const fn per_call_op(n: usize, preempt: bool) -> usize {
    proto::short_op(n, preempt, if preempt { 2 } else { 1 })
}

// The same cells through the per-hypercall stubs: the number is the stub's own `mov`, the arguments stay
// where the C convention put them, and at arity 5 and 6 on 32-bit ARM the stub loads them from the stack
// into r4/r5, which it must save and restore.
cell!(
    per_call0,
    0,
    per_call,
    per_call_op(0, false),
    per_call_op(0, true)
);
cell!(
    per_call1,
    1,
    per_call,
    per_call_op(1, false),
    per_call_op(1, true)
);
cell!(
    per_call2,
    2,
    per_call,
    per_call_op(2, false),
    per_call_op(2, true)
);
cell!(
    per_call3,
    3,
    per_call,
    per_call_op(3, false),
    per_call_op(3, true)
);
cell!(
    per_call4,
    4,
    per_call,
    per_call_op(4, false),
    per_call_op(4, true)
);
cell!(
    per_call5,
    5,
    per_call,
    per_call_op(5, false),
    per_call_op(5, true)
);
cell!(
    per_call6,
    6,
    per_call,
    per_call_op(6, false),
    per_call_op(6, true)
);

/// The typed API's `evtchn::send`, which the `outline` feature routes through the per-hypercall stub
/// `per_call::hypercall2::<32>`: the monitor answers `event_channel_op` (see `monitor::typed_send`).
#[inline(never)]
fn typed_send() -> Outcome {
    let v = Live::read();
    let ret =
        match xen_hypercall::xen::evtchn::send(xen_hypercall::xen::evtchn::Port(proto::TYPED_PORT))
        {
            Ok(()) => 0,
            Err(e) => e.errno() as usize,
        };
    verdict()?;
    if ret != 0 {
        return Err(Failure::Ret {
            call: 'T',
            got: ret,
            want: 0,
        });
    }
    v.check()
}

/// The first number the per-hypercall stubs' `mov` cannot encode: with feature `unencodable-number` the
/// image must not compile (`cargo xtask el2` checks the error).
#[cfg(feature = "unencodable-number")]
#[unsafe(no_mangle)]
extern "C" fn unencodable_number() -> isize {
    #[cfg(target_arch = "aarch64")]
    const NR: usize = 0x1_0000;
    #[cfg(target_arch = "arm")]
    const NR: usize = 0x100;
    // SAFETY: never runs: its instantiation is a compile error.
    unsafe { xen_hypercall::outline::per_call::hypercall0::<NR>() }
}

/// The negative controls: hand-written copies of the generated stubs, each with one defect.
mod controls {
    use core::arch::asm;

    /// `hypercall1`, used for a call the hypervisor treats as having six arguments (`DECLARED6`): the
    /// stub declares only the number register clobbered, while the call clobbers argument registers 2..6
    /// too (the silent bug of a stub shorter than the hypercall's declared arity, under debug Xen).
    #[inline(always)]
    pub unsafe fn missing_clobber(op: usize, a1: usize) -> isize {
        let ret: isize;
        // SAFETY: forwarded to the caller. (Deliberately wrong: the monitor poisons x1..x5.)
        #[cfg(target_arch = "aarch64")]
        unsafe {
            asm!("hvc #{tag}", tag = const 0xEA1, inlateout("x16") op => _, inlateout("x0") a1 => ret,
                 options(nostack));
        }
        // SAFETY: as above. (Deliberately wrong: the monitor poisons r1..r5.)
        #[cfg(target_arch = "arm")]
        unsafe {
            asm!(".arch_extension virt", "hvc #{tag}", tag = const 0xEA1, inlateout("r12") op => _,
                 inlateout("r0") a1 => ret, options(nostack));
        }
        ret
    }

    /// `hypercall3` with the wrong immediate.
    #[inline(always)]
    pub unsafe fn wrong_tag(op: usize, a1: usize, a2: usize, a3: usize) -> isize {
        let ret: isize;
        // SAFETY: forwarded to the caller. (Deliberately wrong: Xen would not see this as a hypercall.)
        #[cfg(target_arch = "aarch64")]
        unsafe {
            asm!("hvc #{tag}", tag = const 0xEA0, inlateout("x16") op => _, inlateout("x0") a1 => ret,
                 inlateout("x1") a2 => _, inlateout("x2") a3 => _, options(nostack));
        }
        // SAFETY: as above.
        #[cfg(target_arch = "arm")]
        unsafe {
            asm!(".arch_extension virt", "hvc #{tag}", tag = const 0xEA0, inlateout("r12") op => _,
                 inlateout("r0") a1 => ret, inlateout("r1") a2 => _, inlateout("r2") a3 => _,
                 options(nostack));
        }
        ret
    }

    /// `hypercall3` that declares it touches no memory.
    #[inline(always)]
    pub unsafe fn nomem(op: usize, a1: usize, a2: usize, a3: usize) -> isize {
        let ret: isize;
        // SAFETY: forwarded to the caller. (Deliberately wrong: the hypervisor reads and writes memory.)
        #[cfg(target_arch = "aarch64")]
        unsafe {
            asm!("hvc #{tag}", tag = const 0xEA1, inlateout("x16") op => _, inlateout("x0") a1 => ret,
                 inlateout("x1") a2 => _, inlateout("x2") a3 => _, options(nostack, nomem));
        }
        // SAFETY: as above.
        #[cfg(target_arch = "arm")]
        unsafe {
            asm!(".arch_extension virt", "hvc #{tag}", tag = const 0xEA1, inlateout("r12") op => _,
                 inlateout("r0") a1 => ret, inlateout("r1") a2 => _, inlateout("r2") a3 => _,
                 options(nostack, nomem));
        }
        ret
    }

    /// An out-of-line `hypercall3` that shifts the arguments down before it saves the call number: the
    /// number register receives the first argument (the classic ordering bug of a `hypercall.S`).
    #[unsafe(naked)]
    pub unsafe extern "C" fn outline_shift(op: usize, a1: usize, a2: usize, a3: usize) -> isize {
        // Deliberately wrong: `mov x16, x0` must come first.
        #[cfg(target_arch = "aarch64")]
        core::arch::naked_asm!(
            "mov x0, x1",
            "mov x1, x2",
            "mov x2, x3",
            "mov x16, x0",
            "hvc #{tag}",
            "ret",
            tag = const 0xEA1,
        );
        // Deliberately wrong: `mov r12, r0` must come first.
        #[cfg(target_arch = "arm")]
        core::arch::naked_asm!(
            ".arch_extension virt",
            "mov r0, r1",
            "mov r1, r2",
            "mov r2, r3",
            "mov r12, r0",
            "hvc #{tag}",
            "bx lr",
            tag = const 0xEA1,
        );
    }

    /// An out-of-line `hypercall5` that uses a callee-saved register without saving and restoring it:
    /// on 32-bit ARM it loads the fifth argument into `r4` with no `push {r4}` … `pop {r4}` around the
    /// call; on AArch64 it keeps the call number in `x19`.
    #[unsafe(naked)]
    pub unsafe extern "C" fn outline_unsaved(
        op: usize,
        a1: usize,
        a2: usize,
        a3: usize,
        a4: usize,
        a5: usize,
    ) -> isize {
        // Deliberately wrong: x19 is callee-saved.
        #[cfg(target_arch = "aarch64")]
        core::arch::naked_asm!(
            "mov x16, x0",
            "mov x19, x0",
            "mov x0, x1",
            "mov x1, x2",
            "mov x2, x3",
            "mov x3, x4",
            "mov x4, x5",
            "hvc #{tag}",
            "ret",
            tag = const 0xEA1,
        );
        // Deliberately wrong: r4 is callee-saved.
        #[cfg(target_arch = "arm")]
        core::arch::naked_asm!(
            ".arch_extension virt",
            "mov r12, r0",
            "mov r0, r1",
            "mov r1, r2",
            "mov r2, r3",
            "ldr r3, [sp, #0]",
            "ldr r4, [sp, #4]",
            "hvc #{tag}",
            "bx lr",
            tag = const 0xEA1,
        );
    }

    /// A per-hypercall `hypercall5` that uses a callee-saved register without saving and restoring it: on
    /// 32-bit ARM Linux's `HYPERCALL5` without its `stmdb sp!, {r4}` … `ldm sp!, {r4}`; on AArch64 it keeps
    /// the call number in `x19`.
    ///
    /// # Safety
    /// As `per_call::hypercall5` (deliberately broken: it corrupts a callee-saved register; only the probe,
    /// which saves every callee-saved register around it, may call it).
    #[unsafe(naked)]
    pub unsafe extern "C" fn per_call_unsaved<const NR: usize>(
        a1: usize,
        a2: usize,
        a3: usize,
        a4: usize,
        a5: usize,
    ) -> isize {
        // Deliberately wrong: x19 is callee-saved.
        #[cfg(target_arch = "aarch64")]
        core::arch::naked_asm!(
            "mov x16, #{nr}",
            "mov x19, x16",
            "hvc #{tag}",
            "ret",
            nr = const NR,
            tag = const 0xEA1,
        );
        // Deliberately wrong: r4 is callee-saved.
        #[cfg(target_arch = "arm")]
        core::arch::naked_asm!(
            ".arch_extension virt",
            "ldr r4, [sp, #0]",
            "mov r12, #{nr}",
            "hvc #{tag}",
            "bx lr",
            nr = const NR,
            tag = const 0xEA1,
        );
    }

    /// A per-hypercall `hypercall5` that passes a wrong fifth argument: on 32-bit ARM it saves `r4` and `r5`
    /// but loads from the slot the fifth argument had before that push (`[sp, #0]`, the saved `r4`, instead
    /// of `[sp, #8]`); on AArch64 it copies the fourth argument over the fifth.
    ///
    /// # Safety
    /// As `per_call::hypercall5` (deliberately broken: the hypervisor receives a wrong fifth argument).
    #[unsafe(naked)]
    pub unsafe extern "C" fn per_call_slot<const NR: usize>(
        a1: usize,
        a2: usize,
        a3: usize,
        a4: usize,
        a5: usize,
    ) -> isize {
        // Deliberately wrong: x4 already holds the fifth argument.
        #[cfg(target_arch = "aarch64")]
        core::arch::naked_asm!(
            "mov x4, x3",
            "mov x16, #{nr}",
            "hvc #{tag}",
            "ret",
            nr = const NR,
            tag = const 0xEA1,
        );
        // Deliberately wrong: after the push the fifth argument is at [sp, #8].
        #[cfg(target_arch = "arm")]
        core::arch::naked_asm!(
            ".arch_extension virt",
            "push {{r4, r5}}",
            "ldr r4, [sp, #0]",
            "mov r12, #{nr}",
            "hvc #{tag}",
            "pop {{r4, r5}}",
            "bx lr",
            nr = const NR,
            tag = const 0xEA1,
        );
    }
}

macro_rules! control_call {
    ($stub:ident, $op:expr, $a:expr) => {
        controls::$stub($op, $a[0], $a[1], $a[2])
    };
}

macro_rules! missing_clobber {
    (1, $op:expr, $a:expr) => {
        controls::missing_clobber($op, $a[0])
    };
}
macro_rules! wrong_tag {
    (3, $op:expr, $a:expr) => {
        control_call!(wrong_tag, $op, $a)
    };
}
macro_rules! nomem {
    (3, $op:expr, $a:expr) => {
        control_call!(nomem, $op, $a)
    };
}
macro_rules! outline_shift {
    (3, $op:expr, $a:expr) => {
        control_call!(outline_shift, $op, $a)
    };
}

/// A control cell: one plain call of arity `$n` made with `$call!`, then the same checks as a cell.
macro_rules! control_cell {
    ($name:ident, $n:tt, $call:ident, $flags:expr) => {
        #[inline(never)]
        fn $name() -> Outcome {
            let v = Live::read();
            let op_a = proto::op($n, false, id(3)) | $flags;
            let mut local_a = Msg::EMPTY;
            let msg_a = &raw mut local_a;
            let args_a = [msg_a as usize, v.l0, v.l1, 0, 0, 0];
            let req_a = (v.l31 ^ op_a) as u64;
            prepare(msg_a, $n, op_a, &args_a, req_a);
            // SAFETY: the harness's monitor implements every call under test (see `cell!`).
            let ret_a = unsafe { $call!($n, op_a, args_a) };
            // The values first, while the compiler still holds them where it put them for the call.
            let live = v.check();
            let ans_a = answer(msg_a);
            let monitor = verdict();
            live?;
            monitor?;
            check_call('A', op_a, ret_a, ans_a, req_a, 1)
        }
    };
}

control_cell!(control_clobber, 1, missing_clobber, proto::DECLARED6);
control_cell!(control_tag, 3, wrong_tag, 0);
control_cell!(control_nomem, 3, nomem, 0);
control_cell!(control_outline_shift, 3, outline_shift, 0);

/// One call through the out-of-line stub `stub` of arity `n`, made by [`arch::probe_outline`] with every
/// callee-saved register holding a sentinel: checks the call as a cell does, then that the stub returned
/// every callee-saved register and the stack pointer as it found them.
fn probe(n: usize, stub: usize) -> Outcome {
    probe_call(n, stub, proto::op(n, false, id(4)), false)
}

/// [`probe`] for a per-hypercall stub of arity `n` whose built-in number is `op`: the table passes the
/// arguments from the first C argument on.
fn probe_per_call(n: usize, stub: usize, op: usize) -> Outcome {
    probe_call(n, stub, op, true)
}

fn probe_call(n: usize, stub: usize, op: usize, per_call: bool) -> Outcome {
    let mut local = Msg::EMPTY;
    let msg = if n == 0 {
        MAILBOX.0.get()
    } else {
        &raw mut local
    };
    let args = [msg as usize, rd(0), rd(1), rd(2), rd(3), rd(4)];
    let request = (rd(31) ^ op) as u64;
    prepare(msg, n, op, &args, request);
    let mut table = [0usize; 24];
    if per_call {
        table[0..6].copy_from_slice(&args);
    } else {
        table[0] = op;
        table[1..7].copy_from_slice(&args);
    }
    table[7] = stub;
    // SAFETY: `stub` is an out-of-line stub (or a control's copy of one), a C function of at most seven
    // words; the monitor implements the call (see `cell!`).
    unsafe { arch::probe_outline(&mut table) };
    let ans = answer(msg);
    verdict()?;
    check_call('P', op, table[20] as isize, ans, request, 1)?;
    let (count, first) = arch::PROBED;
    for (i, &got) in table[8..8 + count].iter().enumerate() {
        let reg = first + i;
        if got != arch::sentinel(reg) {
            return Err(Failure::Saved { reg, got });
        }
    }
    if table[18] != table[19] {
        return Err(Failure::Stack {
            before: table[18],
            after: table[19],
        });
    }
    Ok(())
}

/// Every out-of-line stub keeps the callee-saved registers and the stack pointer.
#[inline(never)]
fn outline_saved() -> Outcome {
    use xen_hypercall::outline as o;
    let stubs = [
        o::hypercall0 as *const () as usize,
        o::hypercall1 as *const () as usize,
        o::hypercall2 as *const () as usize,
        o::hypercall3 as *const () as usize,
        o::hypercall4 as *const () as usize,
        o::hypercall5 as *const () as usize,
        o::hypercall6 as *const () as usize,
    ];
    for (n, stub) in stubs.into_iter().enumerate() {
        probe(n, stub)?;
    }
    Ok(())
}

/// The number the probe's per-hypercall calls use.
const fn probe_op(n: usize) -> usize {
    proto::short_op(n, false, 4)
}

/// Every per-hypercall stub keeps the callee-saved registers and the stack pointer.
#[inline(never)]
fn per_call_saved() -> Outcome {
    use xen_hypercall::outline::per_call as p;
    let stubs = [
        p::hypercall0::<{ probe_op(0) }> as *const () as usize,
        p::hypercall1::<{ probe_op(1) }> as *const () as usize,
        p::hypercall2::<{ probe_op(2) }> as *const () as usize,
        p::hypercall3::<{ probe_op(3) }> as *const () as usize,
        p::hypercall4::<{ probe_op(4) }> as *const () as usize,
        p::hypercall5::<{ probe_op(5) }> as *const () as usize,
        p::hypercall6::<{ probe_op(6) }> as *const () as usize,
    ];
    for (n, stub) in stubs.into_iter().enumerate() {
        probe_per_call(n, stub, probe_op(n))?;
    }
    Ok(())
}

/// The probe over a per-hypercall stub that uses a callee-saved register without saving it.
#[inline(never)]
fn control_per_call_unsaved() -> Outcome {
    let stub = controls::per_call_unsaved::<{ probe_op(5) }> as *const () as usize;
    probe_per_call(5, stub, probe_op(5))
}

/// The probe over a per-hypercall stub that loads its fifth argument from the wrong place.
#[inline(never)]
fn control_per_call_slot() -> Outcome {
    let stub = controls::per_call_slot::<{ probe_op(5) }> as *const () as usize;
    probe_per_call(5, stub, probe_op(5))
}

/// The probe over a stub that uses a callee-saved register without saving it.
#[inline(never)]
fn control_outline_unsaved() -> Outcome {
    probe(5, controls::outline_unsaved as *const () as usize)
}

/// The optimisation level this image was built with (set by the runner), for the controls that only
/// optimised code can show.
const OPT: Option<&str> = option_env!("XEN_HARNESS_OPT");

#[unsafe(no_mangle)]
extern "C" fn harness_guest_main() -> ! {
    say!("GUEST {} opt={}", arch::guest_state(), OPT.unwrap_or("?"));
    arch::service(proto::SVC_MAILBOX, MAILBOX.0.get() as usize);
    let cells: [Named; 24] = [
        ("arity0", arity0),
        ("arity1", arity1),
        ("arity2", arity2),
        ("arity3", arity3),
        ("arity4", arity4),
        ("arity5", arity5),
        ("arity6", arity6),
        ("outline0", outline0),
        ("outline1", outline1),
        ("outline2", outline2),
        ("outline3", outline3),
        ("outline4", outline4),
        ("outline5", outline5),
        ("outline6", outline6),
        ("outline-saved", outline_saved),
        ("per-call0", per_call0),
        ("per-call1", per_call1),
        ("per-call2", per_call2),
        ("per-call3", per_call3),
        ("per-call4", per_call4),
        ("per-call5", per_call5),
        ("per-call6", per_call6),
        ("per-call-saved", per_call_saved),
        ("typed-send", typed_send),
    ];
    let mut failed = 0;
    for (name, f) in cells {
        failed += usize::from(!report(name, f()));
    }
    failed += smccc::run(OPT != Some("O0"), failed, smccc_resume);
    finish(failed)
}

/// Where the guest resumes after `control-smccc-v10` crashed it (the crash counted as its detection):
/// the rest of the run, with the failures so far.
extern "C" fn smccc_resume(failed: usize) -> ! {
    finish(failed)
}

/// The controls after the SMCCC cells, then the end of the run (also where the guest resumes should
/// `control-smccc-v10` crash it).
fn finish(mut failed: usize) -> ! {
    failed += usize::from(!control(
        "control-tag",
        control_tag(),
        |f| matches!(f, Failure::Monitor(c) if *c == proto::verdict::WRONG_TAG << 24 | 0xEA0),
    ));
    failed += usize::from(!control(
        "control-outline-shift",
        control_outline_shift(),
        |f| matches!(f, Failure::Monitor(c) if *c >> 24 == proto::verdict::BAD_OP),
    ));
    failed += usize::from(!control(
        "control-outline-unsaved",
        control_outline_unsaved(),
        |f| matches!(f, Failure::Saved { reg, .. } if *reg == arch::PROBED.1),
    ));
    failed += usize::from(!control(
        "control-per-call-unsaved",
        control_per_call_unsaved(),
        |f| matches!(f, Failure::Saved { reg, .. } if *reg == arch::PROBED.1),
    ));
    failed += usize::from(!control(
        "control-per-call-slot",
        control_per_call_slot(),
        |f| matches!(f, Failure::Monitor(c) if *c == proto::verdict::ARG_MISMATCH << 24 | 4),
    ));
    // Unoptimised code keeps every value in memory and reloads it: it relies on neither the clobber
    // list nor the memory clobber, so those defects cannot show there.
    if OPT != Some("O0") {
        failed += usize::from(!control("control-nomem", control_nomem(), |f| match f {
            Failure::Reply { .. } | Failure::Traps { .. } => true,
            Failure::Monitor(c) => {
                c >> 24 == proto::verdict::STALE_MAGIC || c >> 24 == proto::verdict::STALE_OP
            }
            _ => false,
        }));
        // Last: its defect may corrupt a register the compiler keeps a pointer in, and crash the guest.
        arch::service3(proto::SVC_CRASH_DETECTS, failed, 0, 0);
        failed += usize::from(!control("control-clobber", control_clobber(), |f| {
            matches!(f, Failure::Live { got, .. }
                if matches!(proto::poisoned_reg(*got as u64, usize::BITS), Some(1..=5)))
        }));
    }
    say!("DONE {failed}");
    arch::service(proto::SVC_EXIT, failed);
    crate::exit::park()
}
