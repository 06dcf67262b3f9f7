//! `grant_table_op`: the grant table (`HYPERVISOR_grant_table_op(cmd, uop, count)`, declared arity 3).
//!
//! Each operation has a per-operation `status` (`GNTST_*`) besides the hypercall's own result. Statuses
//! are not errnos: a failed operation is a [`GrantError`], either the hypercall's [`Error`] or the
//! operation's [`GrantStatus`].
//!
//! Xen on ARM implements grant tables of version 1 only (`GNTTAB_MAX_VERSION` is 1 in its ARM
//! `asm/grant_table.h`): there are no version 2 entries or status frames here, and [`set_version`]
//! refuses any other version without asking Xen.

use core::fmt;

use super::call::{Arg, call3};
use super::{DomId, Error, Plain, nr};

/// `GNTTABOP_setup_table`.
pub const GNTTABOP_SETUP_TABLE: usize = 2;
/// `GNTTABOP_query_size`.
pub const GNTTABOP_QUERY_SIZE: usize = 6;
/// `GNTTABOP_set_version`.
pub const GNTTABOP_SET_VERSION: usize = 8;
/// `GNTTABOP_get_version`.
pub const GNTTABOP_GET_VERSION: usize = 10;

/// A grant reference: an index into the grant table (`grant_ref_t`).
#[repr(transparent)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GrantRef(pub u32);

macro_rules! statuses {
    ($($name:ident = $value:literal, $c:literal, $errno:ident, $text:literal;)*) => {
        /// A failed per-operation status of a grant-table operation (`GNTST_*` of `grant_table.h`).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum GrantStatus {
            $(
                #[doc = concat!("`", $c, "` (", stringify!($value), "): ", $text, ".")]
                $name,
            )*
            /// A negative status `grant_table.h` does not define.
            Unknown(i16),
        }

        impl GrantStatus {
            /// The status for a raw `status` field: `None` for `GNTST_okay` (0) and positive values.
            pub const fn from_raw(status: i16) -> Option<GrantStatus> {
                match status {
                    $($value => Some(GrantStatus::$name),)*
                    s if s < 0 => Some(GrantStatus::Unknown(s)),
                    _ => None,
                }
            }

            /// The raw (negative) `GNTST_*` value.
            pub const fn code(&self) -> i16 {
                match self {
                    $(GrantStatus::$name => $value,)*
                    GrantStatus::Unknown(s) => *s,
                }
            }

            /// The nearest errno, for callers that must report a status as one: `ESRCH` for a bad domain,
            /// `EPERM` for permission denied, `EFAULT` for bad addresses, `ENOSPC` for lack of space,
            /// `ERANGE` for an address too big, `EAGAIN` for try again, `EINVAL` otherwise.
            pub const fn nearest_errno(&self) -> Error {
                match self {
                    $(GrantStatus::$name => Error::$errno,)*
                    GrantStatus::Unknown(_) => Error::EINVAL,
                }
            }

            /// The status's name in `grant_table.h` (`"GNTST_bad_domain"`).
            pub const fn c_name(&self) -> &'static str {
                match self {
                    $(GrantStatus::$name => $c,)*
                    GrantStatus::Unknown(_) => "GNTST_?",
                }
            }

            /// What the status means, from `grant_table.h`.
            pub const fn description(&self) -> &'static str {
                match self {
                    $(GrantStatus::$name => $text,)*
                    GrantStatus::Unknown(_) => "unknown grant-table status",
                }
            }
        }
    };
}

statuses! {
    GeneralError = -1, "GNTST_general_error", EINVAL, "General undefined error";
    BadDomain = -2, "GNTST_bad_domain", ESRCH, "Unrecognised domain id";
    BadGntref = -3, "GNTST_bad_gntref", EINVAL, "Unrecognised or inappropriate gntref";
    BadHandle = -4, "GNTST_bad_handle", EINVAL, "Unrecognised or inappropriate handle";
    BadVirtAddr = -5, "GNTST_bad_virt_addr", EFAULT, "Inappropriate virtual address to map";
    BadDevAddr = -6, "GNTST_bad_dev_addr", EFAULT, "Inappropriate device address to unmap";
    NoDeviceSpace = -7, "GNTST_no_device_space", ENOSPC, "Out of space in I/O MMU";
    PermissionDenied = -8, "GNTST_permission_denied", EPERM, "Not enough privilege for operation";
    BadPage = -9, "GNTST_bad_page", EINVAL, "Specified page was invalid for op";
    BadCopyArg = -10, "GNTST_bad_copy_arg", EINVAL, "copy arguments cross page boundary";
    AddressTooBig = -11, "GNTST_address_too_big", ERANGE, "transfer page address too large";
    Eagain = -12, "GNTST_eagain", EAGAIN, "Operation not done; try again";
    NoSpace = -13, "GNTST_no_space", ENOSPC, "Out of space (handles etc)";
}

/// A failed grant-table operation: the hypercall itself failed, or Xen ran the operation and its
/// per-operation status reports a failure.
///
/// ```
/// use xen_hypercall::xen::{Error, grant_table::{GrantError, GrantStatus}};
/// assert_eq!(GrantError::from(Error::EINVAL), GrantError::Xen(Error::EINVAL));
/// assert_eq!(GrantError::Status(GrantStatus::BadDomain).to_string(),
///            "grant-table status -2 (GNTST_bad_domain): Unrecognised domain id");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GrantError {
    /// The hypercall returned `-errno`.
    Xen(Error),
    /// The hypercall succeeded; the operation's `status` is this failure.
    Status(GrantStatus),
}

impl From<Error> for GrantError {
    #[inline(always)]
    fn from(e: Error) -> GrantError {
        GrantError::Xen(e)
    }
}

impl fmt::Display for GrantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GrantError::Xen(e) => e.fmt(f),
            GrantError::Status(s) => write!(
                f,
                "grant-table status {} ({}): {}",
                s.code(),
                s.c_name(),
                s.description()
            ),
        }
    }
}

impl core::error::Error for GrantError {}

/// The result of a grant-table operation.
pub type Result<T> = core::result::Result<T, GrantError>;

/// The hypercall's result, then the operation's status.
#[inline(always)]
fn check(ret: isize, status: i16) -> Result<()> {
    Error::check(ret)?;
    match GrantStatus::from_raw(status) {
        None => Ok(()),
        Some(s) => Err(GrantError::Status(s)),
    }
}

/// `struct gnttab_query_size`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GnttabQuerySize {
    /// IN: the domain.
    pub dom: DomId,
    /// Padding (implicit in C).
    pub _pad0: u16,
    /// OUT: frames in use.
    pub nr_frames: u32,
    /// OUT: the most frames the table may have.
    pub max_nr_frames: u32,
    /// OUT: `GNTST_*`.
    pub status: i16,
    /// Padding (implicit in C).
    pub _pad1: u16,
}

/// `struct gnttab_setup_table` (interface version 0x00040300 and later: `frame_list` of `xen_pfn_t`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GnttabSetupTable {
    /// IN: the domain.
    pub dom: DomId,
    /// Padding (implicit in C).
    pub _pad0: u16,
    /// IN: how many frames to set up.
    pub nr_frames: u32,
    /// OUT: `GNTST_*`.
    pub status: i16,
    /// Padding (implicit in C).
    pub _pad1: [u16; 3],
    /// Guest handle (64-bit slot) of the array of `nr_frames` `xen_pfn_t` that Xen fills.
    pub frame_list: u64,
}

/// `struct gnttab_set_version`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GnttabSetVersion {
    /// IN/OUT: the version wanted; OUT: the version in force.
    pub version: u32,
}

/// `struct gnttab_get_version`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GnttabGetVersion {
    /// IN: the domain.
    pub dom: DomId,
    /// Padding.
    pub pad: u16,
    /// OUT: its grant table version.
    pub version: u32,
}

/// `struct grant_entry_v1`: an entry of a version 1 grant table (8 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GrantEntryV1 {
    /// `GTF_*` type and flags.
    pub flags: u16,
    /// The domain granted access.
    pub domid: DomId,
    /// The guest frame granted.
    pub frame: u32,
}

/// `GTF_invalid`: the entry grants nothing.
pub const GTF_INVALID: u16 = 0;
/// `GTF_permit_access`: the grantee may map or copy the frame.
pub const GTF_PERMIT_ACCESS: u16 = 1;
/// `GTF_accept_transfer`: the grantee may transfer a frame to us.
pub const GTF_ACCEPT_TRANSFER: u16 = 2;
/// `GTF_type_mask`.
pub const GTF_TYPE_MASK: u16 = 3;
/// `GTF_readonly`: the grantee may only read.
pub const GTF_READONLY: u16 = 1 << 2;
/// `GTF_reading`: the grantee has it mapped for reading (set by Xen).
pub const GTF_READING: u16 = 1 << 3;
/// `GTF_writing`: the grantee has it mapped for writing (set by Xen).
pub const GTF_WRITING: u16 = 1 << 4;

impl GrantEntryV1 {
    /// An entry granting `domid` access to guest frame `frame`, read-only if `readonly`.
    ///
    /// Write it to the table with the `flags` last (after a barrier): Xen acts on an entry as soon as its
    /// type is valid.
    pub const fn permit_access(domid: DomId, frame: u32, readonly: bool) -> GrantEntryV1 {
        GrantEntryV1 {
            flags: GTF_PERMIT_ACCESS | if readonly { GTF_READONLY } else { 0 },
            domid,
            frame,
        }
    }
}

// SAFETY: transparent wrappers and repr(C) structs of integers.
unsafe impl Plain for GrantRef {}
// SAFETY: as above.
unsafe impl Plain for GnttabQuerySize {}
// SAFETY: as above.
unsafe impl Plain for GnttabSetupTable {}
// SAFETY: as above.
unsafe impl Plain for GnttabSetVersion {}
// SAFETY: as above.
unsafe impl Plain for GnttabGetVersion {}
// SAFETY: as above.
unsafe impl Plain for GrantEntryV1 {}

/// `grant_table_op(cmd, &mut op, 1)`.
#[inline(always)]
fn op1<T: Plain>(cmd: usize, op: &mut T) -> isize {
    // SAFETY: `T` is the structure Xen expects for `cmd` (each caller pairs them), one of them (count 1),
    // mutably borrowed for the call; any guest handle inside it is the caller's to make valid.
    unsafe { call3::<{ nr::GRANT_TABLE_OP }>(Arg::val(cmd), Arg::inout(op), Arg::val(1)) }
}

/// The size of a grant table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuerySize {
    /// Frames in use.
    pub nr_frames: u32,
    /// The most frames the table may grow to.
    pub max_nr_frames: u32,
}

/// The current and maximum frame counts of `dom`'s grant table (`GNTTABOP_query_size`).
///
/// ```
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))] {
/// use xen_hypercall::xen::{DomId, grant_table};
/// let size = grant_table::query_size(DomId::SELF)?;
/// # let _ = (size.nr_frames, size.max_nr_frames); }
/// # Ok::<(), xen_hypercall::xen::grant_table::GrantError>(())
/// ```
#[inline]
pub fn query_size(dom: DomId) -> Result<QuerySize> {
    let mut q = GnttabQuerySize {
        dom,
        ..GnttabQuerySize::default()
    };
    check(op1(GNTTABOP_QUERY_SIZE, &mut q), q.status)?;
    Ok(QuerySize {
        nr_frames: q.nr_frames,
        max_nr_frames: q.max_nr_frames,
    })
}

/// Sets up `frames.len()` grant table frames for `dom`; Xen writes their frame numbers into `frames`
/// (`GNTTABOP_setup_table`). On ARM the guest maps the frames with
/// [`memory::map_grant_frame`](super::memory::map_grant_frame) instead of using these numbers.
///
/// ```
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))] {
/// use xen_hypercall::xen::{DomId, grant_table};
/// let mut frames = [0u64; 1];
/// grant_table::setup_table(DomId::SELF, &mut frames)?;
/// # }
/// # Ok::<(), xen_hypercall::xen::grant_table::GrantError>(())
/// ```
#[inline]
pub fn setup_table(dom: DomId, frames: &mut [u64]) -> Result<()> {
    let nr_frames = u32::try_from(frames.len()).map_err(|_| GrantError::Xen(Error::EINVAL))?;
    let mut s = GnttabSetupTable {
        dom,
        nr_frames,
        frame_list: frames.as_mut_ptr() as usize as u64,
        ..GnttabSetupTable::default()
    };
    check(op1(GNTTABOP_SETUP_TABLE, &mut s), s.status)
}

/// Sets the calling domain's grant table version (`GNTTABOP_set_version`) and returns the version in
/// force. Xen on ARM has version 1 only: any other version is refused with `EINVAL` without a hypercall.
///
/// ```
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))] {
/// use xen_hypercall::xen::{Error, grant_table::{self, GrantError}};
/// let v = grant_table::set_version(1)?;
/// assert_eq!(grant_table::set_version(2), Err(GrantError::Xen(Error::EINVAL)));
/// # let _ = v; }
/// # Ok::<(), xen_hypercall::xen::grant_table::GrantError>(())
/// ```
#[inline]
pub fn set_version(version: u32) -> Result<u32> {
    if version != 1 {
        return Err(GrantError::Xen(Error::EINVAL));
    }
    let mut s = GnttabSetVersion { version };
    Error::check(op1(GNTTABOP_SET_VERSION, &mut s))?;
    Ok(s.version)
}

/// The grant table version of `dom` (`GNTTABOP_get_version`).
///
/// ```
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))] {
/// use xen_hypercall::xen::{DomId, grant_table};
/// let v = grant_table::get_version(DomId::SELF)?;
/// # let _ = v; }
/// # Ok::<(), xen_hypercall::xen::grant_table::GrantError>(())
/// ```
#[inline]
pub fn get_version(dom: DomId) -> Result<u32> {
    let mut g = GnttabGetVersion {
        dom,
        pad: 0,
        version: 0,
    };
    Error::check(op1(GNTTABOP_GET_VERSION, &mut g))?;
    Ok(g.version)
}
