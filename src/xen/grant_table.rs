//! `grant_table_op`: the grant table (`HYPERVISOR_grant_table_op(cmd, uop, count)`, declared arity 3).
//!
//! Each operation has a per-operation `status` (`GNTST_*`) besides the hypercall's own result: a
//! hypercall that succeeds with a failed status is reported as [`Error::Grant`].

use super::call::{Arg, call3};
use super::{DomId, Error, Plain, Result, nr};

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

            /// The nearest errno, which stands for this status in [`Error::errno`]: `ESRCH` for a bad
            /// domain, `EPERM` for permission denied, `EFAULT` for bad addresses, `ENOSPC` for lack of
            /// space, `ERANGE` for an address too big, `EAGAIN` for try again, `EINVAL` otherwise.
            pub const fn errno(&self) -> i32 {
                match self {
                    $(GrantStatus::$name => Error::$errno.errno(),)*
                    GrantStatus::Unknown(_) => Error::EINVAL.errno(),
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

/// The hypercall's result, then the operation's status.
fn check(ret: isize, status: i16) -> Result<()> {
    Error::check(ret)?;
    match GrantStatus::from_raw(status) {
        None => Ok(()),
        Some(s) => Err(Error::Grant(s)),
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

/// `struct grant_entry_header`: the common head of a version 2 entry.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GrantEntryHeader {
    /// `GTF_*` type and flags.
    pub flags: u16,
    /// The domain granted access.
    pub domid: DomId,
}

/// The `full_page` member of `union grant_entry_v2` (16 bytes): a whole-frame grant.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GrantEntryV2FullPage {
    /// Type, flags, grantee.
    pub hdr: GrantEntryHeader,
    /// Padding.
    pub pad0: u32,
    /// The guest frame granted.
    pub frame: u64,
}

/// The `sub_page` member of `union grant_entry_v2`: bytes `[page_off, page_off + length)` of a frame.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GrantEntryV2SubPage {
    /// Type, flags (with `GTF_sub_page`), grantee.
    pub hdr: GrantEntryHeader,
    /// Offset of the granted bytes.
    pub page_off: u16,
    /// Their length.
    pub length: u16,
    /// The guest frame.
    pub frame: u64,
}

/// `union grant_entry_v2` (16 bytes, 8-aligned).
#[repr(C)]
#[derive(Clone, Copy)]
pub union GrantEntryV2 {
    /// The header every member starts with.
    pub hdr: GrantEntryHeader,
    /// A whole-frame grant.
    pub full_page: GrantEntryV2FullPage,
    /// A sub-page grant.
    pub sub_page: GrantEntryV2SubPage,
    /// The padding member, `uint32_t __spacer[4]`.
    pub spacer: [u32; 4],
}

/// `GTF_invalid`: the entry grants nothing.
pub const GTF_INVALID: u16 = 0;
/// `GTF_permit_access`: the grantee may map or copy the frame.
pub const GTF_PERMIT_ACCESS: u16 = 1;
/// `GTF_accept_transfer`: the grantee may transfer a frame to us.
pub const GTF_ACCEPT_TRANSFER: u16 = 2;
/// `GTF_transitive`: a transitive grant (version 2).
pub const GTF_TRANSITIVE: u16 = 3;
/// `GTF_type_mask`.
pub const GTF_TYPE_MASK: u16 = 3;
/// `GTF_readonly`: the grantee may only read.
pub const GTF_READONLY: u16 = 1 << 2;
/// `GTF_reading`: the grantee has it mapped for reading (set by Xen).
pub const GTF_READING: u16 = 1 << 3;
/// `GTF_writing`: the grantee has it mapped for writing (set by Xen).
pub const GTF_WRITING: u16 = 1 << 4;
/// `GTF_sub_page`: a sub-page grant (version 2).
pub const GTF_SUB_PAGE: u16 = 1 << 8;

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

// SAFETY: transparent wrappers and repr(C) structs of integers; the union's members are all plain.
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
// SAFETY: as above.
unsafe impl Plain for GrantEntryHeader {}
// SAFETY: as above.
unsafe impl Plain for GrantEntryV2FullPage {}
// SAFETY: as above.
unsafe impl Plain for GrantEntryV2SubPage {}
// SAFETY: as above.
unsafe impl Plain for GrantEntryV2 {}

/// `grant_table_op(cmd, &mut op, 1)`.
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
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
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
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
pub fn setup_table(dom: DomId, frames: &mut [u64]) -> Result<()> {
    let nr_frames = u32::try_from(frames.len()).map_err(|_| Error::EINVAL)?;
    let mut s = GnttabSetupTable {
        dom,
        nr_frames,
        frame_list: frames.as_mut_ptr() as usize as u64,
        ..GnttabSetupTable::default()
    };
    check(op1(GNTTABOP_SETUP_TABLE, &mut s), s.status)
}

/// Switches the calling domain's grant table to `version` (1 or 2) and returns the version in force
/// (`GNTTABOP_set_version`).
///
/// ```
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))] {
/// let v = xen_hypercall::xen::grant_table::set_version(1)?;
/// # let _ = v; }
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
pub fn set_version(version: u32) -> Result<u32> {
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
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
pub fn get_version(dom: DomId) -> Result<u32> {
    let mut g = GnttabGetVersion {
        dom,
        pad: 0,
        version: 0,
    };
    Error::check(op1(GNTTABOP_GET_VERSION, &mut g))?;
    Ok(g.version)
}
