//! Xen's hypercall calling convention on AArch64.
//!
//! `hvc #0xEA1` encodes as `0xD401D422`; the call number travels in `x16`.

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
            /// - The caller runs at EL1 in a Xen guest: `hvc` at EL0 is undefined, and without Xen the trap goes
            ///   wherever EL2's vectors send it.
            /// - Xen reads at most five arguments; `hypercall6` exists because the generator is generic over
            ///   conventions with six argument registers, and passes a sixth that Xen ignores.
            arch: aarch64;
            trap: "hvc";
            tag: $crate::arch::common::XEN_HYPERCALL_TAG;
            number: x16;
            args: [x0, x1, x2, x3, x4, x5];
            ret: x0;
            clobbers: used_args;
        }
    };
}
pub(crate) use xen_abi;

xen_abi!(xen_hypercall_macros::hypercall_abi);
