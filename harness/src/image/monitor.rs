//! The hypervisor's side: what Xen would do with a hypercall, plus the checks. Shared by the AArch64 EL2
//! monitor (for AArch64 and AArch32 guests) and the 32-bit HYP-mode monitor.
//!
//! For a call under test the monitor
//! - checks the `hvc` immediate is Xen's tag;
//! - reads the call number from r12/x16, learns the call's arity from it, and checks the number and the
//!   arguments against the message the guest stored in memory before the call (behind the first
//!   argument, or in the registered mailbox for arity 0): this also proves the stores were not delayed;
//! - for a call marked `PREEMPT` (`SHORT_PREEMPT` in the short numbers of the per-hypercall stubs), plays a preemption once: rewrites the argument and number registers with
//!   the same values and steps the return address back by 4 onto the `hvc`, as Xen's continuations do;
//! - on completion poisons the number register and the argument registers 2..N (N: the call's declared
//!   arity, which is the arity unless the number says `DECLARED6`), and only those, writes
//!   the result into r0/x0 and a reply into the message (which the guest must re-read after the call).
//!
//! Xen's `event_channel_op` (32) is answered as `EVTCHNOP_send` on the guest's port: the typed API's call
//! through a per-hypercall stub.
//!
//! A failed check does not stop the call: it is recorded, and the guest asks for the verdict.

use core::cell::UnsafeCell;

use crate::image::uart::say;
use crate::proto::{self, Msg, verdict};

/// A trapped guest's registers, as the monitor's entry code saved them.
pub trait Regs {
    /// General-purpose register `r` (r0..r12 / x0..x30).
    fn get(&self, r: usize) -> u64;
    /// Sets general-purpose register `r`.
    fn set(&mut self, r: usize, v: u64);
    /// Sets the state the guest returns to (SPSR).
    fn set_spsr(&mut self, v: u64);
}

/// The calling convention of the trapped guest.
#[derive(Clone, Copy)]
pub struct GuestAbi {
    /// 32 or 64.
    pub width: u32,
    /// The call-number register: 12 or 16.
    pub number: usize,
    /// A name for messages.
    pub name: &'static str,
}

/// An AArch64 guest.
#[cfg(target_arch = "aarch64")]
pub const AARCH64: GuestAbi = GuestAbi {
    width: 64,
    number: 16,
    name: "aarch64",
};
/// An AArch32 guest (A32 or T32).
pub const AARCH32: GuestAbi = GuestAbi {
    width: 32,
    number: 12,
    name: "aarch32",
};

/// Guest RAM on `virt` as the runner configures it (`-m 256M`).
const RAM: core::ops::Range<u64> = 0x4000_0000..0x5000_0000;

struct Pending {
    elr: u64,
    op: u64,
}

struct State {
    mailbox: u64,
    verdict: u32,
    pending: Option<Pending>,
    calls: u64,
    /// A crash-prone control: the failures before it, its index in `proto::CRASH_CONTROLS`, and where the
    /// guest resumes should it crash (0: nowhere, the run ends).
    crash_detects: Option<(u64, usize, u64)>,
}

struct Global(UnsafeCell<State>);
// SAFETY: one CPU, and the monitor runs with exceptions masked: there is never more than one reference.
unsafe impl Sync for Global {}

static STATE: Global = Global(UnsafeCell::new(State {
    mailbox: 0,
    verdict: 0,
    pending: None,
    calls: 0,
    crash_detects: None,
}));

fn state() -> &'static mut State {
    // SAFETY: see `Global`: the monitor is not re-entered, so this is the only live reference.
    unsafe { &mut *STATE.0.get() }
}

fn fail(st: &mut State, kind: u32, detail: u64) {
    if st.verdict == 0 {
        st.verdict = kind << 24 | (detail & 0xff_ffff) as u32;
    }
}

fn msg_at(addr: u64) -> Option<*mut Msg> {
    let size = core::mem::size_of::<Msg>() as u64;
    let ok = RAM.contains(&addr) && addr + size <= RAM.end && addr.is_multiple_of(8);
    ok.then_some(addr as usize as *mut Msg)
}

/// Handles an `hvc` with immediate `imm` from a guest of kind `abi`; `elr` is the return address.
pub fn hvc(regs: &mut impl Regs, abi: GuestAbi, imm: u32, elr: &mut u64, monitor: &str) {
    let mask = if abi.width == 64 {
        u64::MAX
    } else {
        u64::from(u32::MAX)
    };
    let st = state();
    if imm == proto::SERVICE_TAG {
        return service(regs, abi, st, monitor, mask, elr);
    }
    if imm == proto::SMCCC_TAG {
        return smccc(regs, abi, st, mask);
    }
    st.calls += 1;
    let op = regs.get(abi.number) & mask;
    let mut restarted = false;
    if let Some(p) = st.pending.take() {
        if *elr != p.elr {
            fail(st, verdict::RESTART_ADDR, elr.wrapping_sub(p.elr));
        } else if op != p.op {
            fail(st, verdict::RESTART_OP, 0);
        } else {
            restarted = true;
        }
    }
    if imm != proto::XEN_TAG {
        fail(st, verdict::WRONG_TAG, u64::from(imm));
    }
    if op == proto::XEN_EVENT_CHANNEL_OP {
        return typed_send(regs, abi, st, mask);
    }
    let Some(test) = proto::test_op(op) else {
        fail(st, verdict::BAD_OP, op);
        regs.set(0, (-38i64) as u64 & mask);
        return;
    };
    let arity = test.arity;
    let mut args = [0u64; 6];
    for (i, a) in args.iter_mut().enumerate().take(arity) {
        *a = regs.get(i) & mask;
    }
    let addr = if arity == 0 { st.mailbox } else { args[0] };
    let msg = msg_at(addr);
    match msg {
        None => fail(st, verdict::BAD_POINTER, arity as u64),
        Some(m) => {
            // SAFETY: `m` is inside guest RAM and aligned (checked by `msg_at`); the guest is stopped.
            let seen = unsafe { m.read_volatile() };
            if seen.magic != proto::MSG_MAGIC {
                fail(st, verdict::STALE_MAGIC, 0);
            } else if seen.op != op || seen.arity as usize != arity {
                fail(st, verdict::STALE_OP, 0);
            } else if let Some(i) = (0..arity).find(|&i| seen.args[i] != args[i]) {
                fail(st, verdict::ARG_MISMATCH, i as u64);
            }
        }
    }
    let traps = |m: *mut Msg, n: u32| {
        // SAFETY: as above.
        unsafe { (&raw mut (*m).traps).write_volatile(n) };
    };
    if test.preempt && !restarted {
        // Xen's continuation: the arguments and the call number are written back (here unchanged) and
        // the guest is sent back onto its `hvc`.
        for (i, a) in args.iter().enumerate().take(arity) {
            regs.set(i, *a);
        }
        regs.set(abi.number, op);
        st.pending = Some(Pending { elr: *elr, op });
        *elr -= 4;
        if let Some(m) = msg {
            traps(m, 1);
        }
        return;
    }
    // Completion: poison exactly what the ABI lets the call clobber, then the result.
    regs.set(abi.number, proto::poison(abi.number, abi.width) & mask);
    for i in 1..test.declared {
        regs.set(i, proto::poison(i, abi.width) & mask);
    }
    regs.set(0, proto::ret_for(op) & mask);
    if let Some(m) = msg {
        // SAFETY: as above.
        unsafe {
            let request = (&raw const (*m).request).read_volatile();
            (&raw mut (*m).reply).write_volatile(request ^ proto::REPLY_XOR);
        }
        traps(m, if restarted { 2 } else { 1 });
    }
}

/// `event_channel_op(EVTCHNOP_send, &port)` from the typed API: checks the command and the port behind
/// the pointer, then completes as Xen does (number register and `r1`/`x1` clobbered, 0 returned).
fn typed_send(regs: &mut impl Regs, abi: GuestAbi, st: &mut State, mask: u64) {
    let (cmd, ptr) = (regs.get(0) & mask, regs.get(1) & mask);
    if cmd != proto::EVTCHNOP_SEND {
        fail(st, verdict::TYPED_SEND, 1);
    } else if !(RAM.contains(&ptr) && ptr + 4 <= RAM.end && ptr.is_multiple_of(4)) {
        fail(st, verdict::TYPED_SEND, 2);
    } else {
        // SAFETY: inside guest RAM and aligned (checked above); the guest is stopped.
        let port = unsafe { (ptr as usize as *const u32).read_volatile() };
        if port != proto::TYPED_PORT {
            fail(st, verdict::TYPED_SEND, 3);
        }
    }
    regs.set(abi.number, proto::poison(abi.number, abi.width) & mask);
    regs.set(1, proto::poison(1, abi.width) & mask);
    regs.set(0, 0);
}

/// An SMCCC call (`hvc #0`), completed as Xen's `vsmc.c` does under SMCCC 1.1: the results in x0–x3 (for
/// a call under test: `!fid` and the poison of registers 1–3, so that a result register the stub does not
/// declare written shows in a live value), nothing else written. A call under test is checked like a
/// hypercall (identifier and arguments against the message), and an SMC32 call from AArch64 must pass every
/// register zero-extended. `PSCI_VERSION` and the hypervisor service's UID are answered as Xen 4.17 does.
fn smccc(regs: &mut impl Regs, abi: GuestAbi, st: &mut State, mask: u64) {
    st.calls += 1;
    if st.pending.take().is_some() {
        fail(st, verdict::RESTART_MISSING, 0);
    }
    let fid = regs.get(0) as u32;
    match fid {
        proto::PSCI_VERSION => return regs.set(0, 0x1_0001),
        proto::HYP_UID => {
            for (i, w) in xen_hypercall_uid().into_iter().enumerate() {
                regs.set(i, u64::from(w));
            }
            return;
        }
        _ => {}
    }
    let Some(t) = proto::smccc_test(fid) else {
        fail(st, verdict::BAD_OP, u64::from(fid));
        regs.set(0, mask);
        return;
    };
    if t.smc64 && abi.width == 32 {
        fail(st, verdict::SMCCC_64_FROM_32, 0);
    }
    let wmask = if t.smc64 {
        u64::MAX
    } else {
        u64::from(u32::MAX)
    } & mask;
    if abi.width == 64
        && !t.smc64
        && let Some(r) = (0..=t.arity).find(|&r| regs.get(r) >> 32 != 0)
    {
        fail(st, verdict::SMCCC_UPPER, r as u64);
    }
    let mut args = [0u64; 6];
    for (i, a) in args.iter_mut().enumerate().take(t.arity) {
        *a = regs.get(i + 1) & wmask;
    }
    let addr = if t.arity == 0 { st.mailbox } else { args[0] };
    let msg = msg_at(addr);
    match msg {
        None => fail(st, verdict::BAD_POINTER, t.arity as u64),
        Some(m) => {
            // SAFETY: `m` is inside guest RAM and aligned (checked by `msg_at`); the guest is stopped.
            let seen = unsafe { m.read_volatile() };
            if seen.magic != proto::MSG_MAGIC {
                fail(st, verdict::STALE_MAGIC, 0);
            } else if seen.op != u64::from(fid) || seen.arity as usize != t.arity {
                fail(st, verdict::STALE_OP, 0);
            } else if let Some(i) = (0..t.arity).find(|&i| seen.args[i] != args[i]) {
                fail(st, verdict::ARG_MISMATCH, i as u64);
            }
        }
    }
    for (r, v) in proto::smccc_results(fid).into_iter().enumerate() {
        regs.set(r, v & wmask);
    }
    if t.v10 {
        let v10: &[usize] = if abi.width == 64 {
            &[4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17]
        } else {
            &[4, 5, 8]
        };
        for &r in v10 {
            regs.set(r, proto::poison(r, abi.width) & mask);
        }
    }
    if let Some(m) = msg {
        // SAFETY: as above.
        unsafe {
            let request = (&raw const (*m).request).read_volatile();
            (&raw mut (*m).reply).write_volatile(request ^ proto::REPLY_XOR);
            (&raw mut (*m).traps).write_volatile(1);
        }
    }
}

/// Xen's hypervisor-service UID, as `fill_uid` returns it.
fn xen_hypercall_uid() -> [u32; 4] {
    [0xdc12_18a7, 0x6943_98c6, 0xd179_cf9a, 0x67e6_de8d]
}

fn service(
    regs: &mut impl Regs,
    abi: GuestAbi,
    st: &mut State,
    monitor: &str,
    mask: u64,
    elr: &mut u64,
) {
    let svc = regs.get(0) as usize;
    let arg = if svc == proto::SVC_VERDICT {
        0
    } else {
        regs.get(1) & mask
    };
    let result = match svc {
        proto::SVC_MAILBOX => {
            st.mailbox = arg;
            say!("MONITOR {monitor} guest={}", abi.name);
            0
        }
        proto::SVC_VERDICT => {
            if st.pending.take().is_some() {
                fail(st, verdict::RESTART_MISSING, 0);
            }
            core::mem::take(&mut st.verdict)
        }
        proto::SVC_EXIT => {
            say!("MONITOR exit {arg} after {} calls", st.calls);
            crate::exit::semihost_exit(arg.min(250) as u32)
        }
        proto::SVC_FAULT => {
            let (ret, addr) = (regs.get(2) & mask, regs.get(3) & mask);
            if let (Some((failed, control, resume)), Some(r)) =
                (st.crash_detects, proto::poisoned_reg(addr, abi.width))
            {
                let reg = if abi.width == 64 { 'x' } else { 'r' };
                let name = proto::CRASH_CONTROLS
                    .get(control)
                    .copied()
                    .unwrap_or("control-?");
                say!(
                    "CELL {name} detected {reg}{r} clobbered (the guest used it as a pointer: \
                     exception {arg:#x} at {ret:#x}, address {addr:#x})"
                );
                if resume != 0 {
                    // The guest goes on at its resume point (EL1h / SVC mode, interrupts masked, on the
                    // stack it crashed with), with the failure count in r0/x0.
                    st.crash_detects = None;
                    st.verdict = 0;
                    st.pending = None;
                    *elr = resume & !1;
                    regs.set_spsr(if abi.width == 64 {
                        0x3c5
                    } else {
                        0x1d3 | (resume & 1) << 5
                    });
                    regs.set(0, failed);
                    return;
                }
                say!("DONE {failed}");
                crate::exit::semihost_exit(failed.min(250) as u32)
            }
            say!("MONITOR guest fault: exception {arg:#x} at {ret:#x}, address {addr:#x}");
            crate::exit::semihost_exit(253)
        }
        proto::SVC_CRASH_DETECTS => {
            st.crash_detects = Some((arg, (regs.get(2) & mask) as usize, regs.get(3) & mask));
            0
        }
        proto::SVC_CRASH_CLEAR => {
            st.crash_detects = None;
            0
        }
        other => {
            say!("MONITOR unknown service {other:#x}");
            crate::exit::semihost_exit(252)
        }
    };
    regs.set(0, u64::from(result));
}

/// An exception the monitor does not expect: report it and stop with a failure status.
pub fn unexpected(what: &str, syndrome: u64, elr: u64) -> ! {
    say!("MONITOR unexpected exception {what}: syndrome {syndrome:#x} at {elr:#x}");
    crate::exit::semihost_exit(254)
}
