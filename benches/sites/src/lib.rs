//! Call sites of three hypercall strategies, compiled from the same caller code, for the benches.
//!
//! - `inline`: this crate's per-arity inline stubs (`xen_hypercall::hypercallN`).
//! - `maxarity`: one inline stub that binds every argument register whatever the call's arity, unused ones
//!   set to zero, and declares them all clobbered (the shape of a fixed-arity `hvc` helper).
//! - `outline`: the out-of-line stubs (`xen_hypercall::outline::hypercallN`), called as functions.
//! - `percall`: the per-hypercall out-of-line stubs, the number built in
//!   (`xen_hypercall::outline::per_call::hypercallN::<NR>`).
//! - `xensys` (AArch64): the shape of the rust-vmm `xen-sys` crate's stubs ([`peers::xensys`]).
//! - The C peers (Linux's and Unikraft's stubs with C callers, [`peers`]) and the typed API
//!   ([`peers::work_typed`], [`typed`]).
//!
//! For each strategy S and arity N, `site_S_N(state)` loads eight values from `state`, makes one
//! hypercall with the first N as arguments, then combines all eight with the result: values live across the
//! call, as in real code. `work_S(state)` is a unikernel-like work loop: the hypercalls of the example
//! guest (console, version, event channels, grant table, HVM parameter, vCPU, scheduler) with their
//! declared arities, results feeding later calls.
//!
//! Nothing here is executed on Xen: the EL2 bench image (on x86-64, `benches/insns-x86`) executes the sites
//! under a trap handler that returns at once, and the size bench reads them from the ELF.

#![no_std]

use seq_macro::seq;
use xen_hypercall::outline;

pub use state::State;

/// The fixed-arity strategy: every argument register bound, all clobbered.
pub mod maxarity {
    /// One stub for every arity.
    ///
    /// # Safety
    ///
    /// As `xen_hypercall::hypercall6`.
    #[inline(always)]
    pub unsafe fn hypercall(op: usize, a: [usize; 6]) -> isize {
        // SAFETY: forwarded to the caller; a superset of the per-arity stubs' bindings and clobbers.
        unsafe { xen_hypercall::hypercall6(op, a[0], a[1], a[2], a[3], a[4], a[5]) }
    }
}

macro_rules! call {
    (inline, $op:expr $(, $a:expr)*) => { xen_hypercall::hypercall!($op $(, $a)*) };
    (outline, $op:expr) => { outline::hypercall0($op) };
    (outline, $op:expr, $a1:expr) => { outline::hypercall1($op, $a1) };
    (outline, $op:expr, $a1:expr, $a2:expr) => { outline::hypercall2($op, $a1, $a2) };
    (outline, $op:expr, $a1:expr, $a2:expr, $a3:expr) => { outline::hypercall3($op, $a1, $a2, $a3) };
    (outline, $op:expr, $a1:expr, $a2:expr, $a3:expr, $a4:expr) => {
        outline::hypercall4($op, $a1, $a2, $a3, $a4)
    };
    (outline, $op:expr, $a1:expr, $a2:expr, $a3:expr, $a4:expr, $a5:expr) => {
        outline::hypercall5($op, $a1, $a2, $a3, $a4, $a5)
    };
    (maxarity, $op:expr $(, $a:expr)*) => { maxarity::hypercall($op, pad!([$($a),*])) };
    (xensys, $op:expr $(, $a:expr)*) => { peers::xensys::hypercall($op, pad!([$($a),*])) };
    (percall, $op:expr) => { outline::per_call::hypercall0::<{ $op }>() };
    (percall, $op:expr, $a1:expr) => { outline::per_call::hypercall1::<{ $op }>($a1) };
    (percall, $op:expr, $a1:expr, $a2:expr) => { outline::per_call::hypercall2::<{ $op }>($a1, $a2) };
    (percall, $op:expr, $a1:expr, $a2:expr, $a3:expr) => {
        outline::per_call::hypercall3::<{ $op }>($a1, $a2, $a3)
    };
    (percall, $op:expr, $a1:expr, $a2:expr, $a3:expr, $a4:expr) => {
        outline::per_call::hypercall4::<{ $op }>($a1, $a2, $a3, $a4)
    };
    (percall, $op:expr, $a1:expr, $a2:expr, $a3:expr, $a4:expr, $a5:expr) => {
        outline::per_call::hypercall5::<{ $op }>($a1, $a2, $a3, $a4, $a5)
    };
}

/// Pads an argument list with zeros to six.
macro_rules! pad {
    ([]) => {
        [0, 0, 0, 0, 0, 0]
    };
    ([$a:expr]) => {
        [$a, 0, 0, 0, 0, 0]
    };
    ([$a:expr, $b:expr]) => {
        [$a, $b, 0, 0, 0, 0]
    };
    ([$a:expr, $b:expr, $c:expr]) => {
        [$a, $b, $c, 0, 0, 0]
    };
    ([$a:expr, $b:expr, $c:expr, $d:expr]) => {
        [$a, $b, $c, $d, 0, 0]
    };
    ([$a:expr, $b:expr, $c:expr, $d:expr, $e:expr]) => {
        [$a, $b, $c, $d, $e, 0]
    };
}

macro_rules! sites {
    ($strategy:ident) => { paste::paste! {
        seq!(N in 0..=5 { sites!(@one $strategy, N); });

        #[doc = concat!(" The work loop, `", stringify!($strategy), "` strategy.")]
        #[doc = ""]
        #[doc = " # Safety"]
        #[doc = ""]
        #[doc = " Issues real hypercalls with made-up arguments: only to be run under the bench image's trap"]
        #[doc = " handler (`benches/insns`), which returns at once and touches no memory."]
        #[unsafe(no_mangle)]
        #[inline(never)]
        pub unsafe extern "C" fn [<work_ $strategy>](s: &mut State) -> usize {
            let [a, b, c, d, e, f, g, h] = s.v;
            // SAFETY: executed only under the bench image's trap handler, which returns at once.
            unsafe {
                let written = call!($strategy, 18, 0, a, b);            // console_io(write, len, buf)
                let version = call!($strategy, 17, 0, 0);               // xen_version(version, NULL)
                let port = call!($strategy, 32, 6, c);                  // event_channel_op(alloc_unbound)
                let sent = call!($strategy, 32, 4, d ^ port as usize);  // event_channel_op(send)
                let frames = call!($strategy, 20, 6, e, 1);             // grant_table_op(query_size)
                let irq = call!($strategy, 34, 1, f);                   // hvm_op(get_param)
                let vcpu = call!($strategy, 24, 10, 0, g);              // vcpu_op(register_vcpu_info)
                let closed = call!($strategy, 32, 3, h ^ sent as usize); // event_channel_op(close)
                let _ = call!($strategy, 29, 0, 0);                     // sched_op(yield)
                let sum = (written ^ version ^ port ^ frames ^ irq ^ vcpu ^ closed) as usize;
                s.fold([a, b, c, d, e, f, g, h], sum)
            }
        }
    } };
    (@one $strategy:ident, $n:literal) => { paste::paste! {
        #[doc = concat!(" One hypercall of arity ", $n, " with eight live values, `", stringify!($strategy), "`.")]
        #[doc = ""]
        #[doc = " # Safety"]
        #[doc = ""]
        #[doc = " As the work loop: only under the bench image's trap handler."]
        #[unsafe(no_mangle)]
        #[inline(never)]
        pub unsafe extern "C" fn [<site_ $strategy _ $n>](s: &mut State) -> usize {
            let [v0, v1, v2, v3, v4, v5, v6, v7] = s.v;
            // SAFETY: executed only under the bench image's trap handler, which returns at once.
            let r = unsafe { seq!(I in 0..$n { call!($strategy, 0x30 + $n #(, v~I)*) }) } as usize;
            // Every value is combined with the result, so all eight must survive the call.
            let out = v0.wrapping_add(r)
                ^ v1.wrapping_mul(r | 1)
                ^ v2.rotate_left(r as u32 & 31)
                ^ v3.wrapping_sub(r)
                ^ (v4 ^ r).wrapping_mul(3)
                ^ v5.wrapping_add(r << 1)
                ^ v6.wrapping_mul(r ^ 7)
                ^ v7.wrapping_sub(r >> 1);
            s.v[0] = out;
            out
        }
    } };
}

sites!(inline);
sites!(maxarity);
sites!(outline);
sites!(percall);
#[cfg(target_arch = "aarch64")]
sites!(xensys);

pub mod measured;
pub mod peers;
pub mod state;
pub mod typed;
