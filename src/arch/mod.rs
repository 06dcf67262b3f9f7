//! One calling-convention description per architecture, each handed to the stub generator.
//!
//! Xen's ARM hypercall ABI (`xen/include/public/arch-arm.h`): the call number goes in `r12` (`x16`), the
//! arguments in `r0`–`r4` (`x0`–`x4`), the trap is `hvc #0xEA1`, and the result comes back in `r0` (`x0`). The
//! call clobbers the number register and the argument registers it uses (except `r0`/`x0`, the result);
//! every other register is preserved. Flags are not promised either way.

/// The immediate of Xen's `hvc`: `XEN_HYPERCALL_TAG` in `arch-arm.h`. Any other immediate does not reach
/// Xen's hypercall handler (`#0` goes to its SMCCC/PSCI handler; others make Xen inject an undefined
/// instruction exception).
pub const XEN_HYPERCALL_TAG: u16 = 0xEA1;

/// The immediate of the `hvc` that carries the SMC Calling Convention (SMCCC): 0. Xen's `vsmc.c` treats
/// an `hvc` with immediate 0 as an SMCCC call (PSCI, the architecture calls, its hypervisor service) and
/// injects an undefined instruction exception for any other immediate but [`XEN_HYPERCALL_TAG`].
pub const SMCCC_HVC_TAG: u16 = 0;

/// The SMC Calling Convention's stubs (`smc32_callN`, and on AArch64 `smc64_callN`): see [`crate::smccc`]
/// for the typed calls.
#[cfg(target_arch = "aarch64")]
#[path = "smccc_aarch64.rs"]
pub mod smccc;
/// The SMC Calling Convention's stubs (`smc32_callN`): see [`crate::smccc`] for the typed calls.
#[cfg(all(target_arch = "arm", not(xen_hypercall_m_profile)))]
#[path = "smccc_arm.rs"]
pub mod smccc;

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "aarch64")]
pub use aarch64::*;

#[cfg(all(target_arch = "arm", not(xen_hypercall_m_profile)))]
mod arm;
#[cfg(all(target_arch = "arm", not(xen_hypercall_m_profile)))]
pub use arm::*;

#[cfg(all(target_arch = "arm", xen_hypercall_m_profile))]
compile_error!(
    "xen-hypercall: M-profile ARM (thumbv6m/thumbv7m/thumbv7em/thumbv8m) has no HVC instruction and cannot \
     run under Xen; build for an A-profile target such as armv7a-none-eabi or aarch64-unknown-none"
);

#[cfg(all(target_arch = "x86_64", target_os = "none"))]
mod x86_64;
#[cfg(all(target_arch = "x86_64", target_os = "none"))]
pub use x86_64::*;
/// The x86-64 hypercall page (the out-of-line stubs enter it).
#[cfg(all(target_arch = "x86_64", target_os = "none"))]
pub mod x86_page;

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

#[cfg(not(any(
    target_arch = "aarch64",
    target_arch = "arm",
    all(target_arch = "x86_64", target_os = "none")
)))]
mod unsupported;
#[cfg(not(any(
    target_arch = "aarch64",
    target_arch = "arm",
    all(target_arch = "x86_64", target_os = "none")
)))]
pub use unsupported::*;
