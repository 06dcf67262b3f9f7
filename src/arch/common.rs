//! What every calling-convention description shares: the immediates of the two `hvc` conventions, and
//! the list of arities the stand-ins of unsupported targets are made from. The descriptions (`aarch64.rs`,
//! `arm.rs`, `smccc_*.rs`, `unsupported.rs`) use it; it uses none of them.

/// The immediate of Xen's `hvc`: `XEN_HYPERCALL_TAG` in `arch-arm.h`. Any other immediate does not reach
/// Xen's hypercall handler (`#0` goes to its SMCCC/PSCI handler; others make Xen inject an undefined
/// instruction exception).
pub const XEN_HYPERCALL_TAG: u16 = 0xEA1;

/// The immediate of the `hvc` that carries the SMC Calling Convention (SMCCC): 0. Xen's `vsmc.c` treats
/// an `hvc` with immediate 0 as an SMCCC call (PSCI, the architecture calls, its hypervisor service) and
/// injects an undefined instruction exception for any other immediate but [`XEN_HYPERCALL_TAG`].
pub const SMCCC_HVC_TAG: u16 = 0;

/// Hands `$m!` every arity with its argument names: the one list the stand-ins of unsupported targets (raw
/// stubs here, per-hypercall stubs in `crate::outline`) are made from.
#[cfg(not(any(
    target_arch = "aarch64",
    target_arch = "arm",
    all(target_arch = "x86_64", target_os = "none")
)))]
macro_rules! with_arities {
    ($m:ident) => {
        $m! {
            0: ();
            1: (a1);
            2: (a1, a2);
            3: (a1, a2, a3);
            4: (a1, a2, a3, a4);
            5: (a1, a2, a3, a4, a5);
            6: (a1, a2, a3, a4, a5, a6);
        }
    };
}
#[cfg(not(any(
    target_arch = "aarch64",
    target_arch = "arm",
    all(target_arch = "x86_64", target_os = "none")
)))]
pub(crate) use with_arities;
