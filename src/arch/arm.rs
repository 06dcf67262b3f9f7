//! Xen's hypercall calling convention on 32-bit ARM, A32 and T32 alike.
//!
//! The same stubs serve both instruction sets: a caller compiled for Thumb (`#[instruction_set(arm::t32)]` or
//! `-C target-feature=+thumb-mode`) gets the 4-byte T32 encoding of `hvc` (`0xF7E0 0x8EA1`), an A32 caller
//! the A32 one (`0xE140EA71`). Either is 4 bytes, which Xen's restart of a preempted call (PC − 4) needs.
//! `.arch_extension virt` lets the base `armv7a` targets assemble `hvc`.

/// Xen's calling convention, handed to each generator: `hypercall_abi!` (the inline stubs, below) and
/// `hypercall_outline!` (the out-of-line stubs, `crate::outline`).
macro_rules! xen_abi {
    ($($generator:ident)::+) => {
        $($generator)::+! {
            /// - `op` is a Xen hypercall number and this stub's arity equals the arity Xen's ARM hypercall table
            ///   declares for it: a debug build of Xen overwrites every argument register of the declared arity
            ///   with `0xDEADBEEF`, so a shorter stub would see registers it believes preserved change.
            /// - Every pointer argument is the guest address of memory that is valid, suitably aligned and laid out
            ///   as Xen expects for what this call does with it (read, written, or kept by Xen after the call, for
            ///   example a registered `vcpu_info`), and shared with Xen as Normal Write-Back Inner-Shareable memory.
            /// - 32-bit guests: values in `xen_ulong_t`/guest-handle slots have their upper halves zero.
            /// - The caller runs at EL1 in a Xen guest: `hvc` at EL0 is undefined, and without Xen the trap goes
            ///   wherever EL2's vectors send it.
            /// - Xen reads at most five arguments; `hypercall6` exists because the generator is generic over
            ///   conventions with six argument registers, and passes a sixth that Xen ignores.
            arch: arm;
            preamble: ".arch_extension virt";
            trap: "hvc";
            tag: $crate::arch::common::XEN_HYPERCALL_TAG;
            number: r12;
            args: [r0, r1, r2, r3, r4, r5];
            ret: r0;
            clobbers: used_args;
        }
    };
}
pub(crate) use xen_abi;

xen_abi!(xen_hypercall_macros::hypercall_abi);
