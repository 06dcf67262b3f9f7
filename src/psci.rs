//! PSCI, the Arm Power State Coordination Interface, over SMCCC (`hvc #0`): starting and stopping vCPUs,
//! powering the domain off, resetting it.
//!
//! Xen 4.17 implements PSCI 1.1 for its guests (`xen/arch/arm/vpsci.c`): `PSCI_VERSION`, `CPU_SUSPEND`,
//! `CPU_OFF`, `CPU_ON`, `AFFINITY_INFO`, `MIGRATE_INFO_TYPE` (answering 2: no trusted OS to migrate),
//! `SYSTEM_OFF`, `SYSTEM_RESET` and `PSCI_FEATURES`; not `SYSTEM_RESET2` or `MIGRATE`. The function
//! identifiers and return codes are those of Xen's `xen/arch/arm/include/asm/psci.h` (checked against it by
//! `tests/smccc_xen.rs`). From AArch64 the calls that take an address or an affinity use the SMC64
//! identifiers (Xen's SMC32 `CPU_ON` reads whole registers); from 32-bit ARM the SMC32 ones.
//!
//! Safe under the contract of [`crate::smccc`] (EL1 under an SMCCC 1.1 hypervisor on `hvc #0`), except
//! [`cpu_on`], which makes a CPU run code at an address.
//!
//! ```
//! # #[cfg(feature = "mock")] {
//! use xen_hypercall::{mock, psci};
//! mock::reset();
//! mock::smccc_returns([(-2i64) as u64, 0, 0, 0]);   // CPU_ON of a vCPU that does not exist
//! // SAFETY: nothing runs: the call fails (and here the mock answers it).
//! let r = unsafe { psci::cpu_on(7, 0x4000_0000, 0) };
//! assert_eq!(r, Err(psci::Error::INVALID_PARAMETERS));
//! # }
//! ```

pub use crate::smccc::Version;
use crate::smccc::backend;

/// PSCI's function identifiers (`psci.h`: `PSCI_0_2_FN32(n)` = `0x84000000 + n`, `PSCI_0_2_FN64(n)` =
/// `0xC4000000 + n`).
pub mod fid {
    /// `PSCI_VERSION`.
    pub const VERSION: u32 = 0x8400_0000;
    /// `CPU_SUSPEND` (SMC32).
    pub const CPU_SUSPEND_32: u32 = 0x8400_0001;
    /// `CPU_OFF`.
    pub const CPU_OFF: u32 = 0x8400_0002;
    /// `CPU_ON` (SMC32).
    pub const CPU_ON_32: u32 = 0x8400_0003;
    /// `AFFINITY_INFO` (SMC32).
    pub const AFFINITY_INFO_32: u32 = 0x8400_0004;
    /// `MIGRATE_INFO_TYPE`.
    pub const MIGRATE_INFO_TYPE: u32 = 0x8400_0006;
    /// `SYSTEM_OFF`.
    pub const SYSTEM_OFF: u32 = 0x8400_0008;
    /// `SYSTEM_RESET`.
    pub const SYSTEM_RESET: u32 = 0x8400_0009;
    /// `PSCI_FEATURES`.
    pub const FEATURES: u32 = 0x8400_000a;
    /// `SYSTEM_RESET2` (SMC32; PSCI 1.1, not implemented by Xen 4.17).
    pub const SYSTEM_RESET2_32: u32 = 0x8400_0012;
    /// `CPU_SUSPEND` (SMC64).
    pub const CPU_SUSPEND_64: u32 = 0xc400_0001;
    /// `CPU_ON` (SMC64).
    pub const CPU_ON_64: u32 = 0xc400_0003;
    /// `AFFINITY_INFO` (SMC64).
    pub const AFFINITY_INFO_64: u32 = 0xc400_0004;

    /// The `CPU_ON` this crate calls: SMC64 on 64-bit targets, SMC32 on 32-bit ones.
    pub const CPU_ON: u32 = if usize::BITS == 64 {
        CPU_ON_64
    } else {
        CPU_ON_32
    };
    /// The `AFFINITY_INFO` this crate calls.
    pub const AFFINITY_INFO: u32 = if usize::BITS == 64 {
        AFFINITY_INFO_64
    } else {
        AFFINITY_INFO_32
    };
}

macro_rules! codes {
    ($($name:ident = $value:literal, $text:literal;)*) => {
        /// A failed PSCI call: PSCI's negative return code (`psci.h`), one register wide. Every code is a
        /// constant by its name; unknown codes are kept as they came.
        #[repr(transparent)]
        #[derive(Clone, Copy, PartialEq, Eq, Hash)]
        pub struct Error(pub i32);

        impl Error {
            $(
                #[doc = concat!("`PSCI_", stringify!($name), "` = ", stringify!($value), ": ", $text, ".")]
                pub const $name: Error = Error($value);
            )*

            /// Every code of `psci.h` but success, in its order.
            pub const ALL: &'static [Error] = &[$(Error::$name),*];

            /// The name of the code (`"INVALID_PARAMETERS"`), if it is one.
            pub const fn name(&self) -> Option<&'static str> {
                match self.0 {
                    $($value => Some(stringify!($name)),)*
                    _ => None,
                }
            }
        }
    };
}

codes! {
    NOT_SUPPORTED = -1, "the function is not implemented";
    INVALID_PARAMETERS = -2, "an argument is invalid (a vCPU that does not exist)";
    DENIED = -3, "the call is not allowed";
    ALREADY_ON = -4, "the target CPU is already on";
    ON_PENDING = -5, "the target CPU is being turned on";
    INTERNAL_FAILURE = -6, "the implementation failed";
    NOT_PRESENT = -7, "the trusted OS is not present";
    DISABLED = -8, "the target CPU is disabled";
    INVALID_ADDRESS = -9, "the entry point address is invalid";
}

crate::smccc::error_impls!(Error, "unknown PSCI error");

/// What a PSCI call returns.
pub type Result<T> = core::result::Result<T, Error>;

/// The PSCI version (`PSCI_VERSION`; Xen 4.17: 1.1).
pub fn version() -> Version {
    Version::from_bits(backend::call32(fid::VERSION, [])[0])
}

/// `PSCI_FEATURES(fid)`: `Ok` with the function's feature flags if `fid` is implemented (0 for most),
/// `NOT_SUPPORTED` if not.
pub fn features(fid: u32) -> Result<u32> {
    Error::check(backend::call32(fid::FEATURES, [fid])[0])
}

/// Starts the CPU whose affinity (`MPIDR` bits Aff3..Aff0; on Xen the vCPU number) is `target` at
/// `entry`, with `context` in its `x0`/`r0`.
///
/// The new CPU starts at the exception level of the caller (EL1), MMU and caches off, interrupts masked,
/// in the caller's instruction set on 32-bit ARM unless bit 0 of `entry` selects Thumb, with no stack.
/// `entry` is a physical address: in a position-independent image compute it PC-relatively (`adr`),
/// since an address read from the GOT of an image linked at 0 is the unrelocated one.
///
/// # Safety
///
/// `entry` is code that runs correctly in that state with `context` as its only input (typically: sets
/// the stack pointer to a stack of its own that nothing else uses, then calls Rust), and everything it
/// reaches is valid for it to use concurrently with the running CPUs.
pub unsafe fn cpu_on(target: usize, entry: usize, context: usize) -> Result<()> {
    Error::check(backend::call_native(fid::CPU_ON, [target, entry, context])[0] as u32).map(|_| ())
}

/// Powers the calling CPU off. Returns only if that failed (`DENIED`): on success the CPU stops here
/// (nothing after it runs, no destructor; its stack is abandoned).
pub fn cpu_off() -> Error {
    Error(backend::call32(fid::CPU_OFF, [])[0] as i32)
}

/// The state [`affinity_info`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AffinityState(pub u32);

impl AffinityState {
    /// `ON` (0).
    pub const ON: AffinityState = AffinityState(0);
    /// `OFF` (1).
    pub const OFF: AffinityState = AffinityState(1);
    /// `ON_PENDING` (2).
    pub const ON_PENDING: AffinityState = AffinityState(2);
}

/// `AFFINITY_INFO(target, lowest_level)`: whether the CPU (level 0) or the cluster `target` is on, off or
/// being turned on. Xen accepts only level 0.
pub fn affinity_info(target: usize, lowest_level: u32) -> Result<AffinityState> {
    let r = backend::call_native(fid::AFFINITY_INFO, [target, lowest_level as usize])[0] as u32;
    Error::check(r).map(AffinityState)
}

/// What [`migrate_info_type`] reports: whether a uniprocessor trusted OS is present and migratable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MigrateType(pub u32);

impl MigrateType {
    /// 0: a uniprocessor trusted OS that can migrate.
    pub const UP_MIGRATE_CAPABLE: MigrateType = MigrateType(0);
    /// 1: a uniprocessor trusted OS that cannot migrate.
    pub const UP_NOT_MIGRATE_CAPABLE: MigrateType = MigrateType(1);
    /// 2: no trusted OS, or one that needs no migration (Xen's answer).
    pub const NOT_PRESENT_OR_NOT_REQUIRED: MigrateType = MigrateType(2);
}

/// `MIGRATE_INFO_TYPE`.
pub fn migrate_info_type() -> Result<MigrateType> {
    Error::check(backend::call32(fid::MIGRATE_INFO_TYPE, [])[0]).map(MigrateType)
}

/// Powers the system (on Xen: the domain) off. Returns only if that failed.
pub fn system_off() -> Error {
    Error(backend::call32(fid::SYSTEM_OFF, [])[0] as i32)
}

/// Resets the system (on Xen: reboots the domain). Returns only if that failed.
pub fn system_reset() -> Error {
    Error(backend::call32(fid::SYSTEM_RESET, [])[0] as i32)
}
