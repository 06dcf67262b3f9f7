//! `xen_version`: the hypervisor's version and properties (`HYPERVISOR_xen_version`, declared arity 2).

use core::fmt;

use super::call::{Arg, call2};
use super::{Error, Plain, Result, nr};

/// `XENVER_version`.
pub const XENVER_VERSION: usize = 0;
/// `XENVER_extraversion`.
pub const XENVER_EXTRAVERSION: usize = 1;
/// `XENVER_compile_info`.
pub const XENVER_COMPILE_INFO: usize = 2;
/// `XENVER_capabilities`.
pub const XENVER_CAPABILITIES: usize = 3;
/// `XENVER_changeset`.
pub const XENVER_CHANGESET: usize = 4;
/// `XENVER_platform_parameters`.
pub const XENVER_PLATFORM_PARAMETERS: usize = 5;
/// `XENVER_get_features`.
pub const XENVER_GET_FEATURES: usize = 6;
/// `XENVER_pagesize`.
pub const XENVER_PAGESIZE: usize = 7;
/// `XENVER_guest_handle`.
pub const XENVER_GUEST_HANDLE: usize = 8;

/// The hypervisor's version, `major.minor`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// The major version (4 for Xen 4.17).
    pub major: u16,
    /// The minor version (17 for Xen 4.17).
    pub minor: u16,
}

impl Version {
    /// Decodes `XENVER_version`'s result, `major << 16 | minor`.
    #[inline]
    pub const fn from_raw(raw: u32) -> Version {
        Version {
            major: (raw >> 16) as u16,
            minor: raw as u16,
        }
    }
}

impl fmt::Display for Version {
    #[inline(always)]
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// A fixed-size, NUL-padded C string as Xen returns it (`char[N]`).
#[repr(transparent)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FixedStr<const N: usize>(pub [u8; N]);

impl<const N: usize> FixedStr<N> {
    /// All zero.
    #[inline]
    pub const fn zeroed() -> Self {
        FixedStr([0; N])
    }

    /// The bytes up to the first NUL (all of them if there is none).
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        let end = self.0.iter().position(|&b| b == 0).unwrap_or(N);
        &self.0[..end]
    }

    /// The text, if it is UTF-8.
    #[inline]
    pub fn as_str(&self) -> Option<&str> {
        core::str::from_utf8(self.as_bytes()).ok()
    }
}

impl<const N: usize> Default for FixedStr<N> {
    #[inline(always)]
    fn default() -> Self {
        Self::zeroed()
    }
}

impl<const N: usize> fmt::Debug for FixedStr<N> {
    #[inline(always)]
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.as_str() {
            Some(s) => fmt::Debug::fmt(s, f),
            None => fmt::Debug::fmt(self.as_bytes(), f),
        }
    }
}

impl<const N: usize> fmt::Display for FixedStr<N> {
    #[inline(always)]
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.as_bytes().utf8_chunks() {
            f.write_str(chunk.valid())?;
            if !chunk.invalid().is_empty() {
                f.write_str("\u{FFFD}")?;
            }
        }
        Ok(())
    }
}

/// `xen_extraversion_t`: `char[16]`.
pub type ExtraVersion = FixedStr<16>;
/// `xen_capabilities_info_t`: `char[1024]`.
pub type Capabilities = FixedStr<1024>;
/// `xen_changeset_info_t`: `char[64]`.
pub type Changeset = FixedStr<64>;

/// `struct xen_compile_info`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompileInfo {
    /// The compiler that built Xen.
    pub compiler: FixedStr<64>,
    /// Who built it.
    pub compile_by: FixedStr<16>,
    /// The builder's domain.
    pub compile_domain: FixedStr<32>,
    /// When.
    pub compile_date: FixedStr<32>,
}

/// `struct xen_platform_parameters`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PlatformParameters {
    /// The start of the hypervisor's virtual address range (`xen_ulong_t`; 0 on ARM).
    pub virt_start: u64,
}

/// `struct xen_feature_info`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FeatureInfo {
    /// IN: which 32-bit submap to return.
    pub submap_idx: u32,
    /// OUT: the submap (bit `n` is feature `32 * submap_idx + n`, `XENFEAT_*` of `features.h`).
    pub submap: u32,
}

/// `xen_domain_handle_t`: the domain's 16-byte handle (its UUID).
pub type DomainHandle = [u8; 16];

// SAFETY: a transparent wrapper of a byte array: no padding, any bits valid. (Generic, so not checked by
// `impl_plain!`.)
unsafe impl<const N: usize> Plain for FixedStr<N> {}
crate::impl_plain! {
    CompileInfo {
        compiler: FixedStr<64>,
        compile_by: FixedStr<16>,
        compile_domain: FixedStr<32>,
        compile_date: FixedStr<32>,
    };
    PlatformParameters { virt_start: u64 };
    FeatureInfo { submap_idx: u32, submap: u32 };
}

/// `xen_version(cmd, NULL)`: the commands that take no structure.
#[inline(always)]
fn scalar(cmd: usize) -> Result<usize> {
    // SAFETY: with a NULL argument Xen reads and writes no guest memory.
    Error::check(unsafe { call2::<{ nr::XEN_VERSION }>(Arg::val(cmd), Arg::val(0)) })
}

/// `xen_version(cmd, &mut out)`.
#[inline(always)]
fn fill<T: Plain>(cmd: usize, out: &mut T) -> Result<()> {
    // SAFETY: `T` is the structure Xen writes for `cmd` (each caller pairs them); mutably borrowed for the
    // call, not kept by Xen.
    Error::check_status(unsafe { call2::<{ nr::XEN_VERSION }>(Arg::val(cmd), Arg::inout(out)) })
}

/// The hypervisor's version (`XENVER_version`).
///
/// ```
/// # #[cfg(feature = "mock")] xen_hypercall::mock::answer_zero();
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))] {
/// let v = xen_hypercall::xen::version::version()?;
/// # let _ = (v.major, v.minor); }
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
///
/// The result, `major << 16 | minor`, is non-negative for every Xen (whose major is below `0x8000`), so
/// any negative result is a failure (`-errno`, as [`Error::check_status`] decides): one sign test, where
/// [`Error::check`]'s `-4095..=-1` range costs a compare and a select on 32-bit guests.
#[inline]
pub fn version() -> Result<Version> {
    // SAFETY: with a NULL argument Xen reads and writes no guest memory.
    let ret = unsafe { call2::<{ nr::XEN_VERSION }>(Arg::val(XENVER_VERSION), Arg::val(0)) };
    super::unit(ret)?;
    Ok(Version::from_raw(ret as u32))
}

/// The version's suffix, such as `".7"` (`XENVER_extraversion`).
///
/// ```
/// # #[cfg(feature = "mock")] xen_hypercall::mock::answer_zero();
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))] {
/// let extra = xen_hypercall::xen::version::extraversion()?;
/// # let _ = extra; }
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
#[inline]
pub fn extraversion() -> Result<ExtraVersion> {
    let mut out = ExtraVersion::zeroed();
    fill(XENVER_EXTRAVERSION, &mut out)?;
    Ok(out)
}

/// Who built the hypervisor, when and with what (`XENVER_compile_info`).
///
/// ```
/// # #[cfg(feature = "mock")] xen_hypercall::mock::answer_zero();
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))] {
/// let info = xen_hypercall::xen::version::compile_info()?;
/// # let _ = info; }
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
#[inline]
pub fn compile_info() -> Result<CompileInfo> {
    let mut out = CompileInfo::default();
    fill(XENVER_COMPILE_INFO, &mut out)?;
    Ok(out)
}

/// The guest ABIs the hypervisor runs, such as `"xen-3.0-aarch64 xen-3.0-armv7l "`
/// (`XENVER_capabilities`; 1 KiB).
///
/// ```
/// # #[cfg(feature = "mock")] xen_hypercall::mock::answer_zero();
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))] {
/// let caps = xen_hypercall::xen::version::capabilities()?;
/// # let _ = caps; }
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
#[inline]
pub fn capabilities() -> Result<Capabilities> {
    let mut out = Capabilities::zeroed();
    fill(XENVER_CAPABILITIES, &mut out)?;
    Ok(out)
}

/// The source revision the hypervisor was built from (`XENVER_changeset`).
///
/// ```
/// # #[cfg(feature = "mock")] xen_hypercall::mock::answer_zero();
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))] {
/// let rev = xen_hypercall::xen::version::changeset()?;
/// # let _ = rev; }
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
#[inline]
pub fn changeset() -> Result<Changeset> {
    let mut out = Changeset::zeroed();
    fill(XENVER_CHANGESET, &mut out)?;
    Ok(out)
}

/// The platform parameters (`XENVER_platform_parameters`).
///
/// ```
/// # #[cfg(feature = "mock")] xen_hypercall::mock::answer_zero();
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))] {
/// let p = xen_hypercall::xen::version::platform_parameters()?;
/// # let _ = p.virt_start; }
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
#[inline]
pub fn platform_parameters() -> Result<PlatformParameters> {
    let mut out = PlatformParameters::default();
    fill(XENVER_PLATFORM_PARAMETERS, &mut out)?;
    Ok(out)
}

/// Feature submap `submap_idx` (`XENVER_get_features`): bit `n` is feature `32 * submap_idx + n`.
///
/// ```
/// # #[cfg(feature = "mock")] xen_hypercall::mock::answer_zero();
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))] {
/// let features = xen_hypercall::xen::version::get_features(0)?;
/// # let _ = features; }
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
#[inline]
pub fn get_features(submap_idx: u32) -> Result<u32> {
    let mut out = FeatureInfo {
        submap_idx,
        submap: 0,
    };
    fill(XENVER_GET_FEATURES, &mut out)?;
    Ok(out.submap)
}

/// The hypervisor's page size in bytes (`XENVER_pagesize`; 4096 on ARM).
///
/// ```
/// # #[cfg(feature = "mock")] xen_hypercall::mock::answer_zero();
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))] {
/// let page = xen_hypercall::xen::version::pagesize()?;
/// # let _ = page; }
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
#[inline]
pub fn pagesize() -> Result<usize> {
    scalar(XENVER_PAGESIZE)
}

/// The calling domain's handle, its UUID (`XENVER_guest_handle`).
///
/// ```
/// # #[cfg(feature = "mock")] xen_hypercall::mock::answer_zero();
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))] {
/// let uuid = xen_hypercall::xen::version::guest_handle()?;
/// # let _ = uuid; }
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
#[inline]
pub fn guest_handle() -> Result<DomainHandle> {
    let mut out: DomainHandle = [0; 16];
    fill(XENVER_GUEST_HANDLE, &mut out)?;
    Ok(out)
}
