//! The Arm SMC Calling Convention (SMCCC) over `hvc #0`: the architecture calls and the standard
//! hypervisor service, and Xen detection.
//!
//! Xen serves two conventions on `hvc`: its hypercalls (`hvc #0xEA1`, [`crate::xen`]) and SMCCC (`hvc #0`,
//! `xen/arch/arm/vsmc.c`), through which it offers PSCI ([`crate::psci`]), the SMCCC architecture calls and
//! its own hypervisor service. SMCCC is not Xen's: KVM serves the same calls, which is why this module and
//! [`crate::psci`] sit beside [`crate::xen`] rather than in it.
//!
//! The convention (Arm DEN0028, v1.1, which Xen 4.17 implements): the function identifier goes in
//! `w0`/`r0`, arguments in `x1`…/`r1`…, results come back in `x0`–`x3`/`r0`–`r3`, and every other register
//! is preserved. Bit 31 of the identifier marks a fast call, bit 30 the SMC64 convention (64-bit operands;
//! only from AArch64), bits 29–24 the owning service. The stubs are generated from the description in
//! `src/arch/smccc_aarch64.rs` and `smccc_arm.rs` by the same generator as Xen's hypercall stubs.
//!
//! ```
//! # #[cfg(feature = "mock")] {
//! use xen_hypercall::{mock, smccc};
//! mock::reset();
//! mock::smccc_returns([0x1_0001, 0, 0, 0]);                       // SMCCC_VERSION: 1.1
//! mock::smccc_returns([0xdc12_18a7, 0x6943_98c6, 0xd179_cf9a, 0x67e6_de8d]); // Xen's UID
//! assert_eq!(smccc::version(), Ok(smccc::Version { major: 1, minor: 1 }));
//! assert!(smccc::is_xen());
//! assert_eq!(mock::take_smccc_calls()[1].fid, smccc::hypervisor::UID);
//! # }
//! ```
//!
//! # The platform contract
//!
//! The calls are safe on the condition of [`crate::xen`]'s contract, for the SMCCC side of it: the program
//! runs at EL1 under a hypervisor that implements SMCCC v1.1 or later on `hvc #0` (Xen, KVM). Nothing
//! checks that before the first call: at EL1 without EL2, `hvc` is an undefined instruction.

use core::fmt;

/// `SMCCC_VERSION`.
pub const VERSION: u32 = 0x8000_0000;
/// `SMCCC_ARCH_FEATURES`.
pub const ARCH_FEATURES: u32 = 0x8000_0001;
/// `SMCCC_ARCH_WORKAROUND_1` (a function [`arch_features`] is asked about).
pub const ARCH_WORKAROUND_1: u32 = 0x8000_8000;

/// Bit 31 of a function identifier: a fast call.
pub const FAST_CALL: u32 = 1 << 31;
/// Bit 30 of a function identifier: the SMC64 convention.
pub const SMC64: u32 = 1 << 30;

/// The owning service of function identifier `fid` (bits 29–24): 0 architecture, 4 standard secure
/// (PSCI), 5 standard hypervisor, 6 vendor-specific hypervisor, …
pub const fn owner(fid: u32) -> u32 {
    (fid >> 24) & 0x3f
}

/// A failed SMCCC call: the negative value `x0`/`r0` returned, one register wide. The codes of SMCCC are
/// constants; others are kept as they came.
#[repr(transparent)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Error(pub i32);

impl Error {
    /// `NOT_SUPPORTED` (-1): the function is not implemented (also SMCCC's "unknown function").
    pub const NOT_SUPPORTED: Error = Error(-1);
    /// `NOT_REQUIRED` (-2): the function need not be called (a workaround the platform does not need).
    pub const NOT_REQUIRED: Error = Error(-2);
    /// `INVALID_PARAMETER` (-3).
    pub const INVALID_PARAMETER: Error = Error(-3);

    /// The name of the code in SMCCC, if it is one.
    pub const fn name(&self) -> Option<&'static str> {
        match self.0 {
            -1 => Some("NOT_SUPPORTED"),
            -2 => Some("NOT_REQUIRED"),
            -3 => Some("INVALID_PARAMETER"),
            _ => None,
        }
    }
}

/// `check`, `Debug` and `Display` of the error type `$error` of a convention on SMCCC (a negative code in
/// `.0`, with a `name()`): SMCCC's own and PSCI's. `$unknown` is what `Display` calls a code that is not one
/// of the convention's.
macro_rules! error_impls {
    ($error:ident, $unknown:literal) => {
        impl $error {
            /// `Ok(value)` for a non-negative result (as a 32-bit quantity), the error for a negative one.
            #[inline(always)]
            pub const fn check(ret: u32) -> core::result::Result<u32, $error> {
                if (ret as i32) < 0 {
                    Err($error(ret as i32))
                } else {
                    Ok(ret)
                }
            }
        }

        impl core::fmt::Debug for $error {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                match self.name() {
                    Some(n) => write!(f, "{n}"),
                    None => write!(f, "Error({})", self.0),
                }
            }
        }

        impl core::fmt::Display for $error {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                write!(f, "{} ({})", self.name().unwrap_or($unknown), self.0)
            }
        }
    };
}
pub(crate) use error_impls;

error_impls!(Error, "unknown SMCCC error");

/// A version `major.minor`, as SMCCC and PSCI encode it (`major << 16 | minor`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// Major version.
    pub major: u16,
    /// Minor version.
    pub minor: u16,
}

impl Version {
    /// Decodes `major << 16 | minor` (bit 31 clear).
    pub const fn from_bits(v: u32) -> Version {
        Version {
            major: (v >> 16) as u16,
            minor: v as u16,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The SMCCC version the hypervisor implements (`SMCCC_VERSION`): Xen 4.17 answers 1.1. `NOT_SUPPORTED`
/// means SMCCC 1.0, under which the stubs of this crate are not correct (they rely on 1.1's preserved
/// `x4`–`x17`).
pub fn version() -> Result<Version, Error> {
    Error::check(backend::call32(VERSION, [])[0]).map(Version::from_bits)
}

/// `SMCCC_ARCH_FEATURES(fid)`: whether the architecture function `fid` is implemented (`Ok` with its
/// feature flags, usually 0), or `NOT_SUPPORTED` / `NOT_REQUIRED`.
pub fn arch_features(fid: u32) -> Result<u32, Error> {
    Error::check(backend::call32(ARCH_FEATURES, [fid])[0])
}

/// A service's UID: the 16 bytes of a UUID, four per register, the first byte in the low-order bits of
/// `w0` (`vsmc.c`, `fill_uid`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Uid(pub [u32; 4]);

impl Uid {
    /// Xen's hypervisor-service UID, `XEN_SMCCC_UID` of `public/arch-arm/smccc.h`
    /// (`a71812dc-c698-4369-9acf-79d18ddee667`) as `fill_uid` returns it.
    pub const XEN: Uid = Uid([0xdc12_18a7, 0x6943_98c6, 0xd179_cf9a, 0x67e6_de8d]);

    /// The UUID's bytes in order.
    pub const fn bytes(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        let mut i = 0;
        while i < 16 {
            b[i] = (self.0[i / 4] >> (8 * (i % 4))) as u8;
            i += 1;
        }
        b
    }
}

/// The standard hypervisor service (owner 5), where Xen answers for itself.
pub mod hypervisor {
    use super::{Error, Uid, backend};

    /// The service's call count.
    pub const CALL_COUNT: u32 = 0x8500_ff00;
    /// The service's UID.
    pub const UID: u32 = 0x8500_ff01;
    /// The service's revision.
    pub const REVISION: u32 = 0x8500_ff03;

    /// How many functions the service implements (Xen 4.17: 3), or `NOT_SUPPORTED`.
    pub fn call_count() -> Result<u32, Error> {
        Error::check(backend::call32(CALL_COUNT, [])[0])
    }

    /// The service's UID, or `None` when no hypervisor service answers (`w0` = `0xFFFFFFFF`, SMCCC's
    /// "unknown function").
    pub fn uid() -> Option<Uid> {
        let r = backend::call32(UID, []);
        (r[0] != u32::MAX).then_some(Uid(r))
    }

    /// The service's revision `(major, minor)` (Xen 4.17: 0.1), or `NOT_SUPPORTED`.
    pub fn revision() -> Result<(u32, u32), Error> {
        let r = backend::call32(REVISION, []);
        Error::check(r[0]).map(|major| (major, r[1]))
    }
}

/// Whether the hypervisor is Xen: its standard hypervisor service's UID is [`Uid::XEN`].
///
/// One SMCCC call (`hvc #0`), usable before any Xen hypercall: a program that is not sure what runs at
/// EL2 asks this before its first `hvc #0xEA1` (KVM, for instance, answers that with an SMCCC call that
/// writes `x0`–`x3`). It needs only what every SMCCC hypervisor provides, so it is no proof that the
/// program runs at EL1 with EL2 present: at EL1 without EL2 the `hvc` itself is undefined.
pub fn is_xen() -> bool {
    hypervisor::uid() == Some(Uid::XEN)
}

/// The one path from the typed SMCCC calls to `hvc #0`: the mock, the out-of-line stubs or the inline ones.
pub(crate) mod backend {
    /// An SMC32 call with `N` (at most 3) arguments: `[w0, w1, w2, w3]`.
    #[inline(always)]
    pub fn call32<const N: usize>(fid: u32, a: [u32; N]) -> [u32; 4] {
        #[cfg(feature = "mock")]
        {
            crate::mock::smccc_dispatch(fid, &a.map(u64::from)).map(|r| r as u32)
        }
        #[cfg(not(feature = "mock"))]
        {
            stubs::call32(fid, a)
        }
    }

    /// An SMC64 call (AArch64; on 32-bit ARM the SMC32 one with the same arguments, which must fit) with
    /// `N` (at most 3) arguments: `[x0, x1, x2, x3]`.
    #[inline(always)]
    pub fn call_native<const N: usize>(fid: u32, a: [usize; N]) -> [usize; 4] {
        #[cfg(feature = "mock")]
        {
            crate::mock::smccc_dispatch(fid, &a.map(|v| v as u64)).map(|r| r as usize)
        }
        #[cfg(not(feature = "mock"))]
        {
            stubs::call_native(fid, a)
        }
    }

    #[cfg(not(feature = "mock"))]
    mod stubs {
        #[cfg(all(target_arch = "arm", not(feature = "outline")))]
        use crate::arch::smccc::{smc32_call0, smc32_call1, smc32_call2, smc32_call3};
        #[cfg(all(target_arch = "aarch64", not(feature = "outline")))]
        use crate::arch::smccc::{
            smc32_call0, smc32_call1, smc32_call2, smc32_call3, smc64_call1, smc64_call2,
            smc64_call3,
        };

        #[cfg(feature = "outline")]
        use outline::*;

        /// The out-of-line stubs behind the inline stubs' signatures.
        #[cfg(feature = "outline")]
        mod outline {
            macro_rules! wrap {
                ($($name:ident: $w:ty, ($($a:ident),*);)*) => { $(
                    /// The out-of-line stub of the same name, returning its results.
                    ///
                    /// # Safety
                    /// As the stub's.
                    #[inline(always)]
                    pub unsafe fn $name(op: $w $(, $a: $w)*) -> [$w; 4] {
                        let mut out = [0; 4];
                        // SAFETY: forwarded; `out` is valid for the four results the stub stores.
                        unsafe { crate::outline::smccc::$name(&mut out, op $(, $a)*) };
                        out
                    }
                )* };
            }
            wrap! {
                smc32_call0: u32, ();
                smc32_call1: u32, (a1);
                smc32_call2: u32, (a1, a2);
                smc32_call3: u32, (a1, a2, a3);
            }
            #[cfg(target_arch = "aarch64")]
            wrap! {
                smc64_call1: u64, (a1);
                smc64_call2: u64, (a1, a2);
                smc64_call3: u64, (a1, a2, a3);
            }
        }

        #[inline(always)]
        pub fn call32<const N: usize>(fid: u32, a: [u32; N]) -> [u32; 4] {
            // SAFETY: the platform contract (crate::smccc): EL1 under an SMCCC 1.1 hypervisor on `hvc #0`;
            // the typed calls pass only identifiers of functions whose arguments are plain values.
            unsafe {
                match N {
                    0 => smc32_call0(fid),
                    1 => smc32_call1(fid, a[0]),
                    2 => smc32_call2(fid, a[0], a[1]),
                    _ => smc32_call3(fid, a[0], a[1], a[2]),
                }
            }
        }

        #[cfg(target_arch = "aarch64")]
        #[inline(always)]
        pub fn call_native<const N: usize>(fid: u32, a: [usize; N]) -> [usize; 4] {
            // SAFETY: as in `call32`; the typed calls use SMC64 identifiers here.
            let r = unsafe {
                match N {
                    1 => smc64_call1(u64::from(fid), a[0] as u64),
                    2 => smc64_call2(u64::from(fid), a[0] as u64, a[1] as u64),
                    _ => smc64_call3(u64::from(fid), a[0] as u64, a[1] as u64, a[2] as u64),
                }
            };
            r.map(|v| v as usize)
        }

        #[cfg(target_arch = "arm")]
        #[inline(always)]
        pub fn call_native<const N: usize>(fid: u32, a: [usize; N]) -> [usize; 4] {
            call32(fid, a.map(|v| v as u32)).map(|v| v as usize)
        }
    }
}
