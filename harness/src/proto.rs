//! What the guest and the monitor agree on: call numbers, the message behind the pointer argument, the
//! poison pattern, the service calls, and the verdict codes.
//!
//! The same source is compiled into the AArch64 image and the 32-bit image; in the 32-bit-guest-under-
//! AArch64-EL2 run the two sides come from different builds, so everything shared in memory has a fixed
//! layout (fixed-width fields, `repr(C)`).

/// Xen's hypercall tag, as the library spells it.
pub const XEN_TAG: u32 = xen_hypercall::XEN_HYPERCALL_TAG as u32;

/// The `hvc` immediate of the harness's own service calls (print nothing, register, verdict, exit): not
/// Xen's, so that the monitor tells them from the calls under test. Arguments in r0/x0 and r1/x1, result
/// in r0/x0; nothing else changes.
pub const SERVICE_TAG: u32 = 0x7E5;

/// Service: register the mailbox used by arity-0 calls (r1/x1 = its address).
pub const SVC_MAILBOX: usize = 1;
/// Service: the verdict of the calls since the last query (0: every check passed), and reset it.
pub const SVC_VERDICT: usize = 2;
/// The `hvc` immediate of the SMC Calling Convention, as the library spells it (0).
pub const SMCCC_TAG: u32 = xen_hypercall::arch::SMCCC_HVC_TAG as u32;

/// Service: stop the machine; r1/x1 = the number of failed cells, the QEMU exit status.
pub const SVC_EXIT: usize = 3;
/// Service: the guest took an exception it has no handler for (r1/x1 = the exception's identity, r2/x2
/// the return address, r3/x3 the fault address).
pub const SVC_FAULT: usize = 4;
/// Service: the next cell is `control-clobber`, which may crash the guest by corrupting a register the
/// compiler keeps a pointer in: a data abort at a poisoned address then counts as its detection
/// (r1/x1 = the number of cells failed so far, the exit status in that case).
pub const SVC_CRASH_DETECTS: usize = 5;

/// (With [`SVC_CRASH_DETECTS`]: r2/x2 = the control's index in [`CRASH_CONTROLS`], r3/x3 = where the guest
/// resumes after the crash, 0 for nowhere.)
///
/// Service: the crash-prone control that [`SVC_CRASH_DETECTS`] registered has finished without crashing:
/// forget it.
pub const SVC_CRASH_CLEAR: usize = 6;

/// The crash-prone controls, by the index [`SVC_CRASH_DETECTS`] passes in r2/x2.
pub const CRASH_CONTROLS: [&str; 2] = ["control-clobber", "control-smccc-v10"];

/// SMCCC function identifiers under test (`hvc #0`): a fast call of the vendor-specific hypervisor
/// service (owner 6) whose function number says `0xE000 | V10? | arity << 4 | id`, with bit 30 set for
/// SMC64. The monitor learns the arity and the convention from it.
pub const SMCCC_TEST: u32 = 0x8600_e000;
/// Marks an SMCCC call the monitor completes as SMCCC v1.0 allows: `x4`–`x17` (32-bit: `r4`, `r5`,
/// `r8`) poisoned too. Only the negative control uses it.
pub const SMCCC_V10: u32 = 0x800;

/// The identifier of an SMCCC call under test.
pub const fn smccc_op(arity: usize, smc64: bool, v10: bool, id: usize) -> u32 {
    SMCCC_TEST
        | if smc64 { 1 << 30 } else { 0 }
        | if v10 { SMCCC_V10 } else { 0 }
        | (arity as u32) << 4
        | (id as u32 & 0xf)
}

/// What the identifier of an SMCCC call under test says.
#[derive(Clone, Copy)]
pub struct SmcccOp {
    /// The number of arguments.
    pub arity: usize,
    /// The SMC64 convention (bit 30).
    pub smc64: bool,
    /// Complete as SMCCC v1.0.
    pub v10: bool,
}

/// Decodes an SMCCC identifier under test, or `None` for any other.
pub const fn smccc_test(fid: u32) -> Option<SmcccOp> {
    if fid & 0xbfff_f700 == SMCCC_TEST && (fid >> 4) & 0xf <= 6 {
        Some(SmcccOp {
            arity: ((fid >> 4) & 0xf) as usize,
            smc64: fid & (1 << 30) != 0,
            v10: fid & SMCCC_V10 != 0,
        })
    } else {
        None
    }
}

/// `PSCI_VERSION` and the answer the monitor gives (1.1, as Xen 4.17), for the typed calls' cell.
pub const PSCI_VERSION: u32 = 0x8400_0000;
/// The hypervisor service's UID call; the monitor answers with Xen's UID.
pub const HYP_UID: u32 = 0x8500_ff01;

/// The results `x0`–`x3` the monitor writes for SMCCC call `fid`, before truncation to the call's width:
/// `!fid`, then the poison of registers 1–3.
pub const fn smccc_results(fid: u32) -> [u64; 4] {
    [!(fid as u64), poison(1, 64), poison(2, 64), poison(3, 64)]
}

/// Call numbers under test: `TEST_OP | arity << 8 | PREEMPT? | id`. The monitor learns the arity (and so
/// which registers it may poison, and where the message is) from the number.
pub const TEST_OP: usize = 0x1000;
/// Marks the call the monitor preempts once (restarting it like Xen's continuations).
pub const PREEMPT: usize = 0x80;

/// Marks a call whose declared arity (for the hypervisor) is 6 whatever the stub passes: the monitor
/// then poisons argument registers 2..6 on completion, as a debug build of Xen poisons every argument
/// register of a hypercall's declared arity.
pub const DECLARED6: usize = 0x40;

/// The number of a call under test.
pub const fn op(arity: usize, preempt: bool, id: usize) -> usize {
    TEST_OP | arity << 8 | if preempt { PREEMPT } else { 0 } | (id & 0x3f)
}

/// Call numbers under test through the per-hypercall stubs, which build the number into a `mov` (at most
/// 255 on 32-bit ARM): `SHORT_OP | arity << 4 | SHORT_PREEMPT? | id` with `id` below 8. No `DECLARED6`.
pub const SHORT_OP: usize = 0x80;
/// Marks the short call the monitor preempts once.
pub const SHORT_PREEMPT: usize = 0x08;

/// The short number of a call under test (a constant: the per-hypercall stubs take it as a const generic).
pub const fn short_op(arity: usize, preempt: bool, id: usize) -> usize {
    SHORT_OP | arity << 4 | if preempt { SHORT_PREEMPT } else { 0 } | (id & 0x7)
}

/// What the number of a call under test says.
#[derive(Clone, Copy)]
pub struct TestOp {
    /// The arity the guest uses.
    pub arity: usize,
    /// The monitor preempts this call once.
    pub preempt: bool,
    /// The arity the hypervisor declares (what it poisons on completion).
    pub declared: usize,
}

/// Decodes a call number under test (long or short form), or `None` for any other number.
pub const fn test_op(op: u64) -> Option<TestOp> {
    if op & !0xfff == TEST_OP as u64 && (op >> 8) & 0xf <= 6 {
        let arity = ((op >> 8) & 0xf) as usize;
        Some(TestOp {
            arity,
            preempt: op & PREEMPT as u64 != 0,
            declared: if op & DECLARED6 as u64 != 0 { 6 } else { arity },
        })
    } else if op & !0x7f == SHORT_OP as u64 && (op >> 4) & 0x7 <= 6 {
        let arity = ((op >> 4) & 0x7) as usize;
        Some(TestOp {
            arity,
            preempt: op & SHORT_PREEMPT as u64 != 0,
            declared: arity,
        })
    } else {
        None
    }
}

/// Xen's `__HYPERVISOR_event_channel_op`: the one real Xen call the image makes, through the typed API
/// (`xen::evtchn::send`, which the `outline` feature routes through a per-hypercall stub).
pub const XEN_EVENT_CHANNEL_OP: u64 = 32;
/// `EVTCHNOP_send`.
pub const EVTCHNOP_SEND: u64 = 4;
/// The port the guest sends on.
pub const TYPED_PORT: u32 = 0x2a;

/// `Msg::magic`.
pub const MSG_MAGIC: u32 = 0x4d53_4721;
/// The reply is the request XOR this.
pub const REPLY_XOR: u64 = 0x5a5a_0ff0_a5a5_f00f;

/// The memory behind a call's first argument (or the registered mailbox for arity 0). The guest writes
/// everything but `reply` and `traps` before the call; the monitor checks it against the registers, then
/// writes `reply` and `traps`, which the guest reads after the call.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
pub struct Msg {
    /// [`MSG_MAGIC`].
    pub magic: u32,
    /// The arity the guest used.
    pub arity: u32,
    /// The call number the guest passed.
    pub op: u64,
    /// The arguments the guest passed, zero-extended.
    pub args: [u64; 6],
    /// A value the monitor answers to.
    pub request: u64,
    /// Written by the monitor: `request ^ REPLY_XOR`.
    pub reply: u64,
    /// Written by the monitor: how many times the call trapped (2 for a preempted call).
    pub traps: u32,
    /// Padding.
    pub pad: u32,
}

impl Msg {
    /// An unused message.
    pub const EMPTY: Msg = Msg {
        magic: 0,
        arity: 0,
        op: 0,
        args: [0; 6],
        request: 0,
        reply: 0,
        traps: 0,
        pad: 0,
    };
}

/// The value the monitor returns for call `op`: negative, so that sign handling is exercised.
pub const fn ret_for(op: u64) -> u64 {
    !op
}

/// The value the monitor writes into register `reg` when the ABI lets the call clobber it.
pub const fn poison(reg: usize, width: u32) -> u64 {
    let p = 0xdead_be00 | reg as u64;
    if width == 64 {
        0xdead_beef_0000_0000 | p
    } else {
        p
    }
}

/// The register a poisoned value came from, if it is one.
pub fn poisoned_reg(v: u64, width: u32) -> Option<usize> {
    let reg = (v & 0xff) as usize;
    (reg < 31 && v == poison(reg, width)).then_some(reg)
}

/// Verdict codes: `kind << 24 | detail`.
pub mod verdict {
    /// The `hvc` immediate was not Xen's tag (detail: the immediate).
    pub const WRONG_TAG: u32 = 1;
    /// The call number was not a call under test (detail: its low bits).
    pub const BAD_OP: u32 = 2;
    /// The pointer argument did not point at guest RAM (detail: arity).
    pub const BAD_POINTER: u32 = 3;
    /// The message's magic was missing: the guest's stores did not reach memory before the call.
    pub const STALE_MAGIC: u32 = 4;
    /// The message's call number or arity differed from the registers (stale memory).
    pub const STALE_OP: u32 = 5;
    /// Argument register `detail` (0-based) differed from what the guest stored in the message.
    pub const ARG_MISMATCH: u32 = 6;
    /// A preempted call trapped again from another address (detail: low bits of the distance).
    pub const RESTART_ADDR: u32 = 7;
    /// Another trap came while a preempted call was waiting for its restart.
    pub const RESTART_MISSING: u32 = 8;
    /// The number register differed from the preempted call's on its restart.
    pub const RESTART_OP: u32 = 9;
    /// `event_channel_op` was not `EVTCHNOP_send` on the guest's port (detail: 1 wrong command, 2 bad
    /// pointer, 3 wrong port).
    pub const TYPED_SEND: u32 = 10;
    /// An SMC32 call from AArch64 passed a register whose upper half is not zero (detail: the register).
    pub const SMCCC_UPPER: u32 = 11;
    /// An SMC64 call from a 32-bit guest.
    pub const SMCCC_64_FROM_32: u32 = 12;

    /// A human-readable description of a verdict.
    pub fn describe(code: u32, out: &mut impl FnMut(&str, Option<u64>)) {
        let detail = u64::from(code & 0xff_ffff);
        match code >> 24 {
            WRONG_TAG => out("hvc immediate is not the expected tag but", Some(detail)),
            BAD_OP => out(
                "call number is not a call under test, low bits",
                Some(detail),
            ),
            BAD_POINTER => out("pointer argument outside guest RAM, arity", Some(detail)),
            STALE_MAGIC => out("message not in memory at the trap (stores delayed)", None),
            STALE_OP => out(
                "message in memory is stale at the trap (stores delayed)",
                None,
            ),
            ARG_MISMATCH => out(
                "argument register differs from the stored argument, index",
                Some(detail),
            ),
            RESTART_ADDR => out(
                "restarted call trapped from another address, distance",
                Some(detail),
            ),
            RESTART_MISSING => out("preempted call was not restarted", None),
            RESTART_OP => out("restarted call has another call number", None),
            SMCCC_UPPER => out(
                "SMC32 call with a non-zero upper half in register",
                Some(detail),
            ),
            SMCCC_64_FROM_32 => out("SMC64 call from a 32-bit guest", None),
            TYPED_SEND => out(
                "event_channel_op is not EVTCHNOP_send on the guest's port (1 command, 2 pointer, 3 \
                 port):",
                Some(detail),
            ),
            _ => out("unknown verdict", Some(u64::from(code))),
        }
    }
}

/// The word at byte 4 of the 32-bit image (its header), which tells the AArch64 monitor that the 32-bit
/// image is loaded and is to be run as an AArch32 guest.
pub const GUEST32_MAGIC: u32 = 0x3233_4748;
