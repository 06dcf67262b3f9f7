//! The code-size audit: every hypercall site of a 32-bit ARM or AArch64 ELF file (executable, relocatable
//! object or static archive), of any Xen ARM guest.
//!
//! A site is
//! - an inline `hvc` (A32, T32 or A64; the Xen tag `0xEA1` or any other, which is flagged), outside a stub;
//! - a call to a *generic* stub, which takes the call number as its first argument (Linux's `privcmd_call`
//!   shape, this crate's per-arity `xen_hypercall::outline::hypercallN`);
//! - a call to a *per-hypercall* stub, whose number is built in (`mov x16|r12, #nr; hvc #0xEA1; ret`/`bx lr`:
//!   Linux's and Unikraft's `HYPERVISOR_<name>`, this crate's `outline::per_call`).
//!
//! Stubs are recognised by their code (one `hvc #0xEA1`, no call, a few instructions; the number register
//! holds a constant at the trap, or the first argument), and this crate's per-arity stubs also by name. Each
//! site is attributed to its function; the call number and the first argument (the sub-operation of the
//! multiplexed hypercalls) are recovered when they are constants (symbolic trace of the function,
//! [`crate::flow`]) and named ([`crate::names`]: `event_channel_op/send`). Per function: sites, bytes of the
//! function, bytes spent on register set-up for the calls (the `mov`-class instructions that last write a
//! register the call consumes: the number register and the argument registers of Xen's declared arity for
//! inline sites, the argument registers of the stub for calls), and the bytes of its stack frame. The stubs
//! themselves are listed apart.
//!
//! The audit is an architecture-neutral report ([`report`]: sites, functions, table, JSON, diff, limits)
//! that each instruction set fills in: [`arm`] for ARM, [`crate::x86`] for x86-64. [`analyze`] picks the
//! leaf from the ELF header.

use anyhow::Result;

pub mod arm;
pub mod report;

pub use arm::{analyze_with, classify, setup_bytes, xen_arity};
pub use report::*;

/// Audits ELF bytes (an executable, a relocatable object or a static archive): ARM, or x86-64
/// ([`crate::x86::analyze`]).
pub fn analyze(data: &[u8]) -> Result<Report> {
    if crate::x86::is_x86_64(data) {
        return crate::x86::analyze(data);
    }
    analyze_with(data, |_, number| number.and_then(xen_arity))
}
