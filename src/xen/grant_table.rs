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
use core::ops::{BitOr, BitOrAssign};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU16, AtomicU32, Ordering};

use arrayvec::ArrayVec;

use super::call::{Arg, call3};
use super::{DomId, Error, Page, Plain, nr};

/// `GNTTABOP_map_grant_ref`.
pub const GNTTABOP_MAP_GRANT_REF: usize = 0;
/// `GNTTABOP_unmap_grant_ref`.
pub const GNTTABOP_UNMAP_GRANT_REF: usize = 1;
/// `GNTTABOP_copy`.
pub const GNTTABOP_COPY: usize = 5;
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

/// `GNTTAB_NR_RESERVED_ENTRIES`: references 0..8 are reserved by convention (the toolstack puts the
/// console and xenstore pages in them); [`GrantTable`] never hands them out.
pub const GNTTAB_NR_RESERVED_ENTRIES: u32 = 8;

/// The handle of a grant mapping (`grant_handle_t`), returned by [`map_grant_ref`] and needed to unmap.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GrantHandle(pub u32);

/// `GNTMAP_*`: how a grant is mapped, as a set of flags combined with `|`.
///
/// Xen on ARM accepts exactly [`GntMap::HOST_MAP`], optionally with [`GntMap::READONLY`]
/// (`create_grant_host_mapping` in `xen/arch/arm/mm.c`); anything else fails with
/// [`GrantStatus::GENERAL_ERROR`].
///
/// ```
/// use xen_hypercall::xen::grant_table::GntMap;
/// let f = GntMap::HOST_MAP | GntMap::READONLY;
/// assert_eq!(f.bits(), 0b110);
/// assert!(f.contains(GntMap::READONLY) && !f.contains(GntMap::DEVICE_MAP));
/// ```
#[repr(transparent)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct GntMap(u32);

impl GntMap {
    /// No flag.
    pub const NONE: GntMap = GntMap(0);
    /// `GNTMAP_device_map`: map for device (DMA) access (not on ARM).
    pub const DEVICE_MAP: GntMap = GntMap(1 << 0);
    /// `GNTMAP_host_map`: map into the caller's address space at `host_addr` (on ARM: a guest physical
    /// address, whose frame Xen replaces in the caller's second-stage tables).
    pub const HOST_MAP: GntMap = GntMap(1 << 1);
    /// `GNTMAP_readonly`: map read-only (needed for a grant given read-only).
    pub const READONLY: GntMap = GntMap(1 << 2);
    /// `GNTMAP_application_map`: user-level mapping (x86 PV only).
    pub const APPLICATION_MAP: GntMap = GntMap(1 << 3);
    /// `GNTMAP_contains_pte`: `host_addr` is a page-table entry's address (x86 PV only).
    pub const CONTAINS_PTE: GntMap = GntMap(1 << 4);

    /// The raw `GNTMAP_*` bits.
    #[inline(always)]
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// The flags of raw bits (any bits kept, for flags this crate does not name).
    #[inline(always)]
    pub const fn from_bits(bits: u32) -> GntMap {
        GntMap(bits)
    }

    /// Whether every flag of `other` is set.
    #[inline(always)]
    pub const fn contains(self, other: GntMap) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for GntMap {
    type Output = GntMap;
    #[inline(always)]
    fn bitor(self, rhs: GntMap) -> GntMap {
        GntMap(self.0 | rhs.0)
    }
}

impl BitOrAssign for GntMap {
    #[inline(always)]
    fn bitor_assign(&mut self, rhs: GntMap) {
        self.0 |= rhs.0;
    }
}

/// `GNTCOPY_source_gref`: the copy's source is a grant reference (else a frame of the caller).
pub const GNTCOPY_SOURCE_GREF: u16 = 1 << 0;
/// `GNTCOPY_dest_gref`: the copy's destination is a grant reference (else a frame of the caller).
pub const GNTCOPY_DEST_GREF: u16 = 1 << 1;

macro_rules! statuses {
    ($($name:ident = $value:literal, $c:literal, $errno:ident, $text:literal;)*) => {
        /// A failed per-operation status of a grant-table operation (`GNTST_*` of `grant_table.h`), one
        /// register wide: the raw negative code, with one associated constant per status the header names.
        /// Codes the header does not name are kept as they came.
        ///
        /// ```
        /// use xen_hypercall::xen::grant_table::GrantStatus;
        /// assert_eq!(GrantStatus::from_raw(-8), Some(GrantStatus::PERMISSION_DENIED));
        /// assert_eq!(GrantStatus::from_raw(0), None);
        /// assert_eq!(GrantStatus::from_raw(-14).map(|s| s.code()), Some(-14));
        /// assert_eq!(GrantStatus::PERMISSION_DENIED.name(), Some("GNTST_permission_denied"));
        /// ```
        #[repr(transparent)]
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct GrantStatus(i16);

        impl GrantStatus {
            $(
                #[doc = concat!("`", $c, "` (", stringify!($value), "): ", $text, ".")]
                pub const $name: GrantStatus = GrantStatus($value);
            )*

            /// Every status `grant_table.h` names, in its order.
            pub const ALL: &'static [GrantStatus] = &[$(GrantStatus::$name),*];

            /// The status for a raw `status` field: `None` for `GNTST_okay` (0) and positive values.
            #[inline(always)]
            pub const fn from_raw(status: i16) -> Option<GrantStatus> {
                if status < 0 { Some(GrantStatus(status)) } else { None }
            }

            /// The raw (negative) `GNTST_*` value.
            #[inline(always)]
            pub const fn code(&self) -> i16 {
                self.0
            }

            /// The nearest errno, for callers that must report a status as one: `ESRCH` for a bad domain,
            /// `EPERM` for permission denied, `EFAULT` for bad addresses, `ENOSPC` for lack of space,
            /// `ERANGE` for an address too big, `EAGAIN` for try again, `EINVAL` otherwise.
            pub const fn nearest_errno(&self) -> Error {
                match self.0 {
                    $($value => Error::$errno,)*
                    _ => Error::EINVAL,
                }
            }

            /// The status's name in `grant_table.h` (`"GNTST_bad_domain"`), if it is one.
            pub const fn name(&self) -> Option<&'static str> {
                match self.0 {
                    $($value => Some($c),)*
                    _ => None,
                }
            }

            /// The status's name in `grant_table.h`, or `"GNTST_?"` for a code it does not name.
            pub const fn c_name(&self) -> &'static str {
                match self.name() {
                    Some(n) => n,
                    None => "GNTST_?",
                }
            }

            /// What the status means, from `grant_table.h`.
            pub const fn description(&self) -> &'static str {
                match self.0 {
                    $($value => $text,)*
                    _ => "unknown grant-table status",
                }
            }
        }

        impl fmt::Debug for GrantStatus {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => write!(f, "GrantStatus({n})"),
                    None => write!(f, "GrantStatus({})", self.0),
                }
            }
        }
    };
}

statuses! {
    GENERAL_ERROR = -1, "GNTST_general_error", EINVAL, "General undefined error";
    BAD_DOMAIN = -2, "GNTST_bad_domain", ESRCH, "Unrecognised domain id";
    BAD_GNTREF = -3, "GNTST_bad_gntref", EINVAL, "Unrecognised or inappropriate gntref";
    BAD_HANDLE = -4, "GNTST_bad_handle", EINVAL, "Unrecognised or inappropriate handle";
    BAD_VIRT_ADDR = -5, "GNTST_bad_virt_addr", EFAULT, "Inappropriate virtual address to map";
    BAD_DEV_ADDR = -6, "GNTST_bad_dev_addr", EFAULT, "Inappropriate device address to unmap";
    NO_DEVICE_SPACE = -7, "GNTST_no_device_space", ENOSPC, "Out of space in I/O MMU";
    PERMISSION_DENIED = -8, "GNTST_permission_denied", EPERM, "Not enough privilege for operation";
    BAD_PAGE = -9, "GNTST_bad_page", EINVAL, "Specified page was invalid for op";
    BAD_COPY_ARG = -10, "GNTST_bad_copy_arg", EINVAL, "copy arguments cross page boundary";
    ADDRESS_TOO_BIG = -11, "GNTST_address_too_big", ERANGE, "transfer page address too large";
    EAGAIN = -12, "GNTST_eagain", EAGAIN, "Operation not done; try again";
    NO_SPACE = -13, "GNTST_no_space", ENOSPC, "Out of space (handles etc)";
}

/// A failed grant-table operation: the hypercall itself failed, or Xen ran the operation and its
/// per-operation status reports a failure.
///
/// ```
/// use xen_hypercall::xen::{Error, grant_table::{GrantError, GrantStatus}};
/// assert_eq!(GrantError::from(Error::EINVAL), GrantError::Xen(Error::EINVAL));
/// assert_eq!(GrantError::Status(GrantStatus::BAD_DOMAIN).to_string(),
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

impl From<GrantError> for Error {
    /// A grant-table failure reported as an errno, for callers whose functions return
    /// [`xen::Result`](super::Result) (`?` on a grant-table call): [`GrantError::Xen`] is its errno as it
    /// came; [`GrantError::Status`] becomes the status's [`nearest_errno`](GrantStatus::nearest_errno)
    /// (`GNTST_bad_domain` → `ESRCH`, `GNTST_permission_denied` → `EPERM`, …, `EINVAL` for statuses
    /// without a closer one). The status itself is lost: match on the [`GrantError`] to keep it.
    ///
    /// ```
    /// use xen_hypercall::xen::{self, Error, grant_table::{GrantError, GrantStatus}};
    /// assert_eq!(Error::from(GrantError::Xen(Error::EFAULT)), Error::EFAULT);
    /// assert_eq!(Error::from(GrantError::Status(GrantStatus::BAD_DOMAIN)), Error::ESRCH);
    /// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))] {
    /// fn frames() -> xen::Result<u32> {
    ///     Ok(xen::grant_table::query_size(xen::DomId::SELF)?.nr_frames)
    /// }
    /// # let _ = frames; }
    /// ```
    #[inline]
    fn from(e: GrantError) -> Error {
        match e {
            GrantError::Xen(e) => e,
            GrantError::Status(s) => s.nearest_errno(),
        }
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
    // Success is one sign test of both values together; which one failed is sorted out after.
    if (ret | status as isize) >= 0 {
        return Ok(());
    }
    Err(if ret < 0 {
        GrantError::Xen(Error::from_failed(ret))
    } else {
        GrantError::Status(GrantStatus(status))
    })
}

/// The raw `status` an operation has before Xen reaches it: the batch wrappers store it in every
/// operation before the call, so an operation Xen never processed (the hypercall failed part-way) reads
/// as failed ([`GrantStatus::GENERAL_ERROR`]), never as done.
const NOT_DONE: i16 = -1;

/// `struct gnttab_map_grant_ref`: one operation of [`map_grant_ref`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GnttabMapGrantRef {
    /// IN: where to map (for [`GntMap::HOST_MAP`] on ARM, a page-aligned guest physical address).
    pub host_addr: u64,
    /// IN: `GNTMAP_*`.
    pub flags: u32,
    /// IN: the grant reference in `dom`'s table.
    pub r#ref: GrantRef,
    /// IN: the granting domain.
    pub dom: DomId,
    /// OUT: `GNTST_*`.
    pub status: i16,
    /// OUT: the handle to unmap with.
    pub handle: GrantHandle,
    /// OUT: the bus address, for [`GntMap::DEVICE_MAP`].
    pub dev_bus_addr: u64,
}

impl GnttabMapGrantRef {
    /// An operation mapping grant `gref` of domain `dom` at `host_addr` with `flags`.
    #[inline(always)]
    pub const fn new(host_addr: u64, flags: GntMap, gref: GrantRef, dom: DomId) -> Self {
        GnttabMapGrantRef {
            host_addr,
            flags: flags.0,
            r#ref: gref,
            dom,
            status: NOT_DONE,
            handle: GrantHandle(0),
            dev_bus_addr: 0,
        }
    }

    /// This operation's outcome, once [`map_grant_ref`] returned: the handle, or the failed status.
    #[inline(always)]
    pub const fn result(&self) -> core::result::Result<GrantHandle, GrantStatus> {
        match GrantStatus::from_raw(self.status) {
            None => Ok(self.handle),
            Some(s) => Err(s),
        }
    }

    /// This operation's status: `Ok(())` for `GNTST_okay`.
    #[inline(always)]
    pub const fn status(&self) -> core::result::Result<(), GrantStatus> {
        status_of(self.status)
    }
}

/// `struct gnttab_unmap_grant_ref`: one operation of [`unmap_grant_ref`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GnttabUnmapGrantRef {
    /// IN: the address the grant was mapped at (0: ignored).
    pub host_addr: u64,
    /// IN: the bus address (0: ignored).
    pub dev_bus_addr: u64,
    /// IN: the handle [`map_grant_ref`] returned.
    pub handle: GrantHandle,
    /// OUT: `GNTST_*`.
    pub status: i16,
    /// Padding (implicit in C).
    pub _pad: u16,
}

impl GnttabUnmapGrantRef {
    /// An operation unmapping the host mapping at `host_addr` made with `handle`.
    #[inline(always)]
    pub const fn new(host_addr: u64, handle: GrantHandle) -> Self {
        GnttabUnmapGrantRef {
            host_addr,
            dev_bus_addr: 0,
            handle,
            status: NOT_DONE,
            _pad: 0,
        }
    }

    /// This operation's status: `Ok(())` for `GNTST_okay`.
    #[inline(always)]
    pub const fn status(&self) -> core::result::Result<(), GrantStatus> {
        status_of(self.status)
    }
}

/// `struct gnttab_copy_ptr`: one end of a [`GnttabCopy`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GnttabCopyPtr {
    /// The union `u`: `ref` (a [`GrantRef`], low 32 bits) or `gmfn` (a frame of the caller, `xen_pfn_t`).
    pub u: u64,
    /// The domain owning the grant (for a frame: [`DomId::SELF`]).
    pub domid: DomId,
    /// Byte offset in the page.
    pub offset: u16,
    /// Padding (implicit in C).
    pub _pad: u32,
}

/// One end of a grant copy, for [`GnttabCopy::new`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyPtr {
    /// Byte `offset` of the page granted by `dom` under `gref`.
    Gref {
        /// The granting domain.
        dom: DomId,
        /// Its grant reference.
        gref: GrantRef,
        /// Byte offset in the page.
        offset: u16,
    },
    /// Byte `offset` of the caller's own guest frame `gmfn`.
    Frame {
        /// The caller's guest frame number.
        gmfn: u64,
        /// Byte offset in the page.
        offset: u16,
    },
}

/// `struct gnttab_copy`: one operation of [`copy`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GnttabCopy {
    /// IN: where the bytes come from.
    pub source: GnttabCopyPtr,
    /// IN: where they go.
    pub dest: GnttabCopyPtr,
    /// IN: how many bytes (neither end may cross its page: else [`GrantStatus::BAD_COPY_ARG`]).
    pub len: u16,
    /// IN: `GNTCOPY_*`: which ends are grant references.
    pub flags: u16,
    /// OUT: `GNTST_*`.
    pub status: i16,
    /// Padding (implicit in C).
    pub _pad: u16,
}

impl CopyPtr {
    #[inline(always)]
    const fn raw(self, gref_flag: u16) -> (GnttabCopyPtr, u16) {
        match self {
            CopyPtr::Gref { dom, gref, offset } => (
                GnttabCopyPtr {
                    u: gref.0 as u64,
                    domid: dom,
                    offset,
                    _pad: 0,
                },
                gref_flag,
            ),
            CopyPtr::Frame { gmfn, offset } => (
                GnttabCopyPtr {
                    u: gmfn,
                    domid: DomId::SELF,
                    offset,
                    _pad: 0,
                },
                0,
            ),
        }
    }
}

/// Byte `offset` of the page domain `dom` granted under `gref`: the destination of a safe [`copy`].
///
/// A copy may write only into a granted page (memory its owner has shared for exactly this), never into a
/// frame of the caller's given by number: that could be any of the program's memory. Such copies are made
/// with [`GnttabCopy::to_frame`] and submitted with [`copy_unchecked`] (`unsafe`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GrantPtr {
    /// The granting domain.
    pub dom: DomId,
    /// Its grant reference.
    pub gref: GrantRef,
    /// Byte offset in the page.
    pub offset: u16,
}

impl From<GrantPtr> for CopyPtr {
    #[inline(always)]
    fn from(g: GrantPtr) -> CopyPtr {
        CopyPtr::Gref {
            dom: g.dom,
            gref: g.gref,
            offset: g.offset,
        }
    }
}

impl GnttabCopy {
    /// An operation copying `len` bytes from `source` (a granted page, or a frame of the caller's, which
    /// Xen only reads) into the granted page `dest`: submitted with [`copy`].
    #[inline(always)]
    pub const fn new(source: CopyPtr, dest: GrantPtr, len: u16) -> Self {
        let dest = CopyPtr::Gref {
            dom: dest.dom,
            gref: dest.gref,
            offset: dest.offset,
        };
        GnttabCopy::raw(source, dest, len)
    }

    /// An operation copying `len` bytes from `source` into byte `offset` of the caller's own guest frame
    /// `gmfn`. Xen writes that frame whatever it holds, so only [`copy_unchecked`] (`unsafe`) submits it;
    /// [`copy`] refuses it.
    #[inline(always)]
    pub const fn to_frame(source: CopyPtr, gmfn: u64, offset: u16, len: u16) -> Self {
        GnttabCopy::raw(source, CopyPtr::Frame { gmfn, offset }, len)
    }

    #[inline(always)]
    const fn raw(source: CopyPtr, dest: CopyPtr, len: u16) -> Self {
        let (source, sf) = source.raw(GNTCOPY_SOURCE_GREF);
        let (dest, df) = dest.raw(GNTCOPY_DEST_GREF);
        GnttabCopy {
            source,
            dest,
            len,
            flags: sf | df,
            status: NOT_DONE,
            _pad: 0,
        }
    }

    /// Whether Xen would write a frame of the caller's given by number (`GNTCOPY_dest_gref` clear), which
    /// only [`copy_unchecked`] submits.
    #[inline(always)]
    pub const fn writes_frame(&self) -> bool {
        self.flags & GNTCOPY_DEST_GREF == 0
    }

    /// This operation's status: `Ok(())` for `GNTST_okay`.
    #[inline(always)]
    pub const fn status(&self) -> core::result::Result<(), GrantStatus> {
        status_of(self.status)
    }
}

#[inline(always)]
const fn status_of(raw: i16) -> core::result::Result<(), GrantStatus> {
    match GrantStatus::from_raw(raw) {
        None => Ok(()),
        Some(s) => Err(s),
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

crate::impl_plain! {
    GrantRef { 0: u32 };
    GnttabQuerySize { dom: DomId, _pad0: u16, nr_frames: u32, max_nr_frames: u32, status: i16, _pad1: u16 };
    GnttabSetupTable { dom: DomId, _pad0: u16, nr_frames: u32, status: i16, _pad1: [u16; 3], frame_list: u64 };
    GnttabSetVersion { version: u32 };
    GnttabGetVersion { dom: DomId, pad: u16, version: u32 };
    GrantEntryV1 { flags: u16, domid: DomId, frame: u32 };
    GrantHandle { 0: u32 };
    GnttabMapGrantRef { host_addr: u64, flags: u32, r#ref: GrantRef, dom: DomId, status: i16, handle: GrantHandle, dev_bus_addr: u64 };
    GnttabUnmapGrantRef { host_addr: u64, dev_bus_addr: u64, handle: GrantHandle, status: i16, _pad: u16 };
    GnttabCopyPtr { u: u64, domid: DomId, offset: u16, _pad: u32 };
    GnttabCopy { source: GnttabCopyPtr, dest: GnttabCopyPtr, len: u16, flags: u16, status: i16, _pad: u16 };
}

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
/// # #[cfg(feature = "mock")] xen_hypercall::mock::answer_zero();
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))] {
/// use xen_hypercall::xen::{DomId, grant_table};
/// let size = grant_table::query_size(DomId::SELF)?;
/// # let _ = (size.nr_frames, size.max_nr_frames); }
/// # Ok::<(), xen_hypercall::xen::grant_table::GrantError>(())
/// ```
#[inline]
#[expect(
    clippy::field_reassign_with_default,
    reason = "the literal lowers to an unaligned memset, a call on 32-bit ARM (see below)"
)]
pub fn query_size(dom: DomId) -> Result<QuerySize> {
    // Zeroed whole (16 bytes, 4-aligned: four word stores), then `dom` written. Written as a literal with
    // `..Default::default()`, the 14 bytes after `dom` became one 2-aligned `memset`, which 32-bit ARM at
    // opt-level s lowers to a call of `__aeabi_memclr`: some fifty instructions per query.
    let mut q = GnttabQuerySize::default();
    q.dom = dom;
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
/// # #[cfg(feature = "mock")] xen_hypercall::mock::answer_zero();
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
    let len = frames.len();
    // SAFETY: a `gnttab_setup_table`, count 1, mutably borrowed for the call; Xen writes up to `nr_frames`
    // frame numbers behind its handle, into `frames` (exclusively borrowed).
    let ret = unsafe {
        call3::<{ nr::GRANT_TABLE_OP }>(
            Arg::val(GNTTABOP_SETUP_TABLE),
            Arg::inout(&mut s).handle_inout(frames.as_mut_ptr(), len),
            Arg::val(1),
        )
    };
    check(ret, s.status)
}

/// Sets the calling domain's grant table version (`GNTTABOP_set_version`) and returns the version in
/// force. Xen on ARM has version 1 only: any other version is refused with `EINVAL` without a hypercall.
///
/// ```
/// # #[cfg(feature = "mock")] xen_hypercall::mock::answer_zero();
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
    Error::check_status(op1(GNTTABOP_SET_VERSION, &mut s))?;
    Ok(s.version)
}

/// The grant table version of `dom` (`GNTTABOP_get_version`).
///
/// ```
/// # #[cfg(feature = "mock")] xen_hypercall::mock::answer_zero();
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
    Error::check_status(op1(GNTTABOP_GET_VERSION, &mut g))?;
    Ok(g.version)
}

/// Operations a batch wrapper submits: their raw status field.
trait BatchOp: Plain {
    fn status_mut(&mut self) -> &mut i16;
    fn raw_status(&self) -> i16;
}

macro_rules! batch_op {
    ($($t:ty),*) => { $(
        impl BatchOp for $t {
            #[inline(always)]
            fn status_mut(&mut self) -> &mut i16 {
                &mut self.status
            }
            #[inline(always)]
            fn raw_status(&self) -> i16 {
                self.status
            }
        }
    )* };
}
batch_op!(GnttabMapGrantRef, GnttabUnmapGrantRef, GnttabCopy);

/// `grant_table_op(cmd, ops, ops.len())`: one hypercall for the batch, every status checked.
#[inline(always)]
fn batch<T: BatchOp>(cmd: usize, ops: &mut [T]) -> Result<()> {
    if ops.is_empty() {
        return Ok(());
    }
    let Ok(count) = u32::try_from(ops.len()) else {
        return Err(GrantError::Xen(Error::EINVAL));
    };
    for op in ops.iter_mut() {
        *op.status_mut() = NOT_DONE;
    }
    // SAFETY: `ops` is an array of the structure Xen expects for `cmd` (each caller pairs them), of
    // `count` elements, exclusively borrowed for the call; Xen keeps no reference to it.
    let ret = unsafe {
        call3::<{ nr::GRANT_TABLE_OP }>(
            Arg::val(cmd),
            Arg::slice_inout(ops.as_mut_ptr(), ops.len()),
            Arg::val(count as usize),
        )
    };
    Error::check_status(ret)?;
    match ops
        .iter()
        .find_map(|op| GrantStatus::from_raw(op.raw_status()))
    {
        None => Ok(()),
        Some(s) => Err(GrantError::Status(s)),
    }
}

/// Maps the grants `ops` describe, in one hypercall (`GNTTABOP_map_grant_ref`, count `ops.len()`), at
/// the addresses they name. [`MapArea`] is the safe way: it maps only into a window given up to it.
///
/// Every operation's status is checked: `Ok(())` when the hypercall and every operation succeeded;
/// `Err(GrantError::Xen(_))` when the hypercall failed (operations Xen did not reach read as
/// [`GrantStatus::GENERAL_ERROR`]); `Err(GrantError::Status(s))` with the first failed status otherwise.
/// In both error cases each operation tells its own outcome ([`GnttabMapGrantRef::result`]): those that
/// succeeded are mapped and must be unmapped. An empty batch makes no hypercall.
///
/// # Safety
///
/// Xen replaces what is mapped at each `host_addr`: on ARM (and x86 HVM/PVH) it is a guest physical
/// address whose second-stage entry now points at the granted frame; on x86 PV a virtual address whose
/// page-table entry is replaced (with [`GntMap::CONTAINS_PTE`], the address of that entry itself). So for
/// every operation, the page at `host_addr` must hold nothing the program uses, for as long as the mapping
/// lasts and after [`unmap_grant_ref`] leaves a hole there: a frame of no RAM (a hole made with
/// [`memory::decrease_reservation`](super::memory::decrease_reservation), or a free range outside the RAM
/// banks of [`layout`](super::layout)), or a page given up for good. What the granting domain writes into
/// a mapped page is shared memory: access it with volatile or atomic operations only.
///
/// ```
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))] {
/// use xen_hypercall::xen::{DomId, grant_table::{self as gt, GntMap, GnttabMapGrantRef, GrantRef}};
/// # xen_hypercall::mock::respond(|c| { c.update(1, |o: &mut [GnttabMapGrantRef; 2]| {
/// #     o[0].status = 0; o[0].handle = gt::GrantHandle(5); o[1].status = -8; }); 0 });
/// let mut ops = [
///     GnttabMapGrantRef::new(0x8000_0000, GntMap::HOST_MAP, GrantRef(8), DomId(1)),
///     GnttabMapGrantRef::new(0x8000_1000, GntMap::HOST_MAP, GrantRef(9), DomId(1)),
/// ];
/// // SAFETY: 0x8000_0000..0x8000_2000 is a range of no RAM that nothing else uses.
/// let all = unsafe { gt::map_grant_ref(&mut ops) };
/// assert_eq!(all, Err(gt::GrantError::Status(gt::GrantStatus::PERMISSION_DENIED)));
/// assert_eq!(ops[0].result(), Ok(gt::GrantHandle(5))); // mapped: unmap it later
/// assert_eq!(ops[1].result(), Err(gt::GrantStatus::PERMISSION_DENIED));
/// # }
/// ```
#[inline]
pub unsafe fn map_grant_ref(ops: &mut [GnttabMapGrantRef]) -> Result<()> {
    batch(GNTTABOP_MAP_GRANT_REF, ops)
}

/// Unmaps the grant mappings `ops` describe, in one hypercall (`GNTTABOP_unmap_grant_ref`); statuses are
/// reported as by [`map_grant_ref`] ([`GnttabUnmapGrantRef::status`]). [`MapArea::unmap`] is the safe
/// way.
///
/// # Safety
///
/// Each `host_addr` becomes a hole (on ARM, no frame at all until one is put there again): nothing the
/// program still uses may be there, and no reference into the mapped page may be used afterwards. The
/// handle must be the one [`map_grant_ref`] returned for that address.
///
/// ```
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))] {
/// use xen_hypercall::xen::grant_table::{self as gt, GnttabUnmapGrantRef, GrantHandle};
/// # xen_hypercall::mock::respond(|c| { c.update(1, |o: &mut GnttabUnmapGrantRef| o.status = 0); 0 });
/// // SAFETY: the mapping at 0x8000_0000 is no longer used.
/// unsafe { gt::unmap_grant_ref(&mut [GnttabUnmapGrantRef::new(0x8000_0000, GrantHandle(5))]) }?;
/// # }
/// # Ok::<(), xen_hypercall::xen::grant_table::GrantError>(())
/// ```
#[inline]
pub unsafe fn unmap_grant_ref(ops: &mut [GnttabUnmapGrantRef]) -> Result<()> {
    batch(GNTTABOP_UNMAP_GRANT_REF, ops)
}

/// Copies bytes into granted pages, in one hypercall (`GNTTABOP_copy`); statuses are reported as by
/// [`map_grant_ref`] ([`GnttabCopy::status`]). A copy needs no mapping, and no second-stage change in the
/// caller.
///
/// Every destination must be a grant reference ([`GnttabCopy::new`]): a batch with an operation that
/// writes a frame of the caller's ([`GnttabCopy::to_frame`], or a hand-built operation without
/// `GNTCOPY_dest_gref`) is refused with [`Error::EPERM`] before any hypercall, its statuses left "not
/// done". Sources may be either: Xen only reads them.
///
/// ```
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))] {
/// use xen_hypercall::xen::{DomId, grant_table::{self as gt, CopyPtr, GnttabCopy, GrantPtr, GrantRef}};
/// # xen_hypercall::mock::respond(|c| { c.update(1, |o: &mut GnttabCopy| o.status = 0); 0 });
/// // 64 bytes from our frame 0x40123 at offset 128 into the page domain 1 granted as ref 8.
/// gt::copy(&mut [GnttabCopy::new(
///     CopyPtr::Frame { gmfn: 0x40123, offset: 128 },
///     GrantPtr { dom: DomId(1), gref: GrantRef(8), offset: 0 },
///     64,
/// )])?;
/// # }
/// # Ok::<(), xen_hypercall::xen::grant_table::GrantError>(())
/// ```
#[inline]
pub fn copy(ops: &mut [GnttabCopy]) -> Result<()> {
    if ops.iter().any(GnttabCopy::writes_frame) {
        for op in ops.iter_mut() {
            op.status = NOT_DONE;
        }
        return Err(GrantError::Xen(Error::EPERM));
    }
    batch(GNTTABOP_COPY, ops)
}

/// Copies as [`copy`] does, also into frames of the caller's given by number ([`GnttabCopy::to_frame`]).
///
/// # Safety
///
/// For every operation that writes a frame of the caller's, bytes `offset..offset + len` of that frame
/// hold nothing the program uses as anything but plain bytes it expects to change (no live Rust object,
/// no code, no page table), and no reference to them is live during the call.
///
/// ```
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))] {
/// use xen_hypercall::xen::{DomId, grant_table::{self as gt, CopyPtr, GnttabCopy, GrantRef}};
/// # xen_hypercall::mock::respond(|c| { c.update(1, |o: &mut GnttabCopy| o.status = 0); 0 });
/// // 64 bytes from offset 0 of the page domain 1 granted as ref 8, to our frame 0x40123 at offset 128.
/// let from = CopyPtr::Gref { dom: DomId(1), gref: GrantRef(8), offset: 0 };
/// // SAFETY: frame 0x40123 is a buffer of ours that nothing else uses meanwhile.
/// unsafe { gt::copy_unchecked(&mut [GnttabCopy::to_frame(from, 0x40123, 128, 64)]) }?;
/// # }
/// # Ok::<(), xen_hypercall::xen::grant_table::GrantError>(())
/// ```
#[inline]
pub unsafe fn copy_unchecked(ops: &mut [GnttabCopy]) -> Result<()> {
    batch(GNTTABOP_COPY, ops)
}

/// Entries per 4 KiB frame of a version 1 grant table.
pub const ENTRIES_PER_FRAME: u32 = 4096 / core::mem::size_of::<GrantEntryV1>() as u32;

/// The version 1 grant entries of the caller's own table, as mapped in its address space, changed with
/// atomic operations only (Xen and the grantee's hypercalls read and write them concurrently).
///
/// This is the low level: it grants and ends access on references the caller chooses. [`GrantTable`]
/// adds the allocation of references.
pub struct GrantEntries {
    base: NonNull<GrantEntryV1>,
    len: u32,
}

// SAFETY: `GrantEntries` holds the address of memory shared with Xen, accessed only atomically.
unsafe impl Send for GrantEntries {}
// SAFETY: as above.
unsafe impl Sync for GrantEntries {}

impl GrantEntries {
    /// The `frames` frames of grant entries at `base`.
    ///
    /// # Safety
    ///
    /// `base` must point to the caller's grant table frames `0..frames` (mapped with
    /// [`memory::map_grant_frame`](super::memory::map_grant_frame); in a test, memory standing in for
    /// them), 4 KiB-aligned, valid for `frames * 4096` bytes for as long as the value is used, and
    /// accessed by the guest only through it (or other atomic operations) meanwhile.
    #[inline]
    pub unsafe fn new(base: *mut GrantEntryV1, frames: u32) -> GrantEntries {
        GrantEntries {
            // SAFETY: the contract asks for a valid pointer.
            base: unsafe { NonNull::new_unchecked(base) },
            len: frames.saturating_mul(ENTRIES_PER_FRAME),
        }
    }

    /// How many entries the frames hold.
    #[inline(always)]
    pub const fn len(&self) -> u32 {
        self.len
    }

    /// Whether there is no entry at all.
    #[inline(always)]
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The entry of `r`, if the table has it.
    #[inline(always)]
    fn entry(&self, r: GrantRef) -> Option<*mut GrantEntryV1> {
        // SAFETY: `r.0 < len`: inside the frames (constructor contract).
        (r.0 < self.len).then(|| unsafe { self.base.as_ptr().add(r.0 as usize) })
    }

    #[inline(always)]
    fn flags(&self, e: *mut GrantEntryV1) -> &AtomicU16 {
        // SAFETY: `e` is an entry of the table, valid while `self` is, 2-aligned and accessed only
        // atomically (constructor contract).
        unsafe { AtomicU16::from_ptr(&raw mut (*e).flags) }
    }

    /// A snapshot of entry `r` (flags last, as Xen writes them first); `None` beyond the table.
    #[inline]
    pub fn get(&self, r: GrantRef) -> Option<GrantEntryV1> {
        let e = self.entry(r)?;
        let flags = self.flags(e).load(Ordering::Acquire);
        // SAFETY: as in `flags`, for the 2-aligned domid and the 4-aligned frame.
        let (domid, frame) = unsafe {
            (
                AtomicU16::from_ptr((&raw mut (*e).domid).cast::<u16>()).load(Ordering::Relaxed),
                AtomicU32::from_ptr(&raw mut (*e).frame).load(Ordering::Relaxed),
            )
        };
        Some(GrantEntryV1 {
            flags,
            domid: DomId(domid),
            frame,
        })
    }

    /// Grants domain `dom` access to the caller's guest frame `frame` under reference `r`, read-only if
    /// `readonly` (as Linux's `gnttab_grant_foreign_access_ref`): writes the frame and the domain, then,
    /// after a release barrier, the flags `GTF_permit_access` (| `GTF_readonly`).
    ///
    /// Refused with [`Error::EINVAL`] for a reference beyond the table or a frame beyond 32 bits (a v1
    /// entry's limit), and with [`Error::EBUSY`] if the entry is in use (its flags are not
    /// `GTF_invalid`). [`GrantTable::grant`] is the safe way.
    ///
    /// # Safety
    ///
    /// - `r` is the caller's alone: nothing else grants or ends access under it meanwhile (the check of
    ///   the flags and the writes that follow are not one atomic step), and no [`GrantTable`] over the same
    ///   entries holds it in its free list.
    /// - `dom` may read (and unless `readonly`, write) `frame` from now until an [`end_access`]
    ///   succeeds: the frame holds nothing the program uses but as memory shared with `dom` (accessed
    ///   with volatile or atomic operations), or nothing at all.
    ///
    /// [`end_access`]: GrantEntries::end_access
    #[inline]
    pub unsafe fn grant_access(
        &self,
        r: GrantRef,
        dom: DomId,
        frame: u64,
        readonly: bool,
    ) -> super::Result<()> {
        let e = self.entry(r).ok_or(Error::EINVAL)?;
        let frame = u32::try_from(frame).map_err(|_| Error::EINVAL)?;
        let flags = self.flags(e);
        if flags.load(Ordering::Acquire) != GTF_INVALID {
            return Err(Error::EBUSY);
        }
        // SAFETY: as in `get`.
        unsafe {
            AtomicU16::from_ptr((&raw mut (*e).domid).cast::<u16>())
                .store(dom.0, Ordering::Relaxed);
            AtomicU32::from_ptr(&raw mut (*e).frame).store(frame, Ordering::Relaxed);
        }
        let f = GrantEntryV1::permit_access(dom, frame, readonly).flags;
        // Release: the domain and frame are visible before the entry becomes valid.
        flags.store(f, Ordering::Release);
        Ok(())
    }

    /// Ends the access granted under `r`, atomically (as Linux's `gnttab_end_foreign_access_ref`): a
    /// compare-and-swap of the flags to `GTF_invalid`, refused with [`Error::EBUSY`] while Xen has the
    /// grant mapped (`GTF_reading` or `GTF_writing` set), so that a mapped page is never revoked.
    /// [`Error::EINVAL`] for a reference beyond the table. Ending an entry already invalid succeeds.
    #[inline]
    pub fn end_access(&self, r: GrantRef) -> super::Result<()> {
        let e = self.entry(r).ok_or(Error::EINVAL)?;
        let flags = self.flags(e);
        let mut cur = flags.load(Ordering::Acquire);
        loop {
            if cur & (GTF_READING | GTF_WRITING) != 0 {
                return Err(Error::EBUSY);
            }
            match flags.compare_exchange_weak(cur, GTF_INVALID, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Ok(()),
                Err(now) => cur = now,
            }
        }
    }
}

/// A fixed-capacity free list of grant references, without an allocator: at most `N` references, never
/// one of the reserved `0..GNTTAB_NR_RESERVED_ENTRIES`.
///
/// ```
/// use xen_hypercall::xen::grant_table::{FreeRefs, GrantRef};
/// let mut free = FreeRefs::<4>::new(512); // one frame: refs 8..512, of which 4 are kept
/// assert_eq!(free.len(), 4);
/// let r = free.alloc().unwrap();
/// assert!(r.0 >= 8);
/// assert_eq!(free.free(GrantRef(3)), Err(xen_hypercall::xen::Error::EINVAL)); // reserved
/// free.free(r).unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct FreeRefs<const N: usize> {
    refs: ArrayVec<GrantRef, N>,
    limit: u32,
}

impl<const N: usize> FreeRefs<N> {
    /// The references `8..limit`, as many as fit (the first `N`), handed out lowest first; only those
    /// are accepted back.
    #[inline]
    pub fn new(limit: u32) -> FreeRefs<N> {
        let mut refs = ArrayVec::new();
        let first = GNTTAB_NR_RESERVED_ENTRIES;
        let end = limit.min(first.saturating_add(N.min(u32::MAX as usize) as u32));
        for r in (first..end).rev() {
            refs.push(GrantRef(r));
        }
        FreeRefs {
            refs,
            limit: end.max(first),
        }
    }

    /// How many references are free.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.refs.len()
    }

    /// Whether none is free.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.refs.is_empty()
    }

    /// A free reference, or `None` if all are in use.
    #[inline]
    pub fn alloc(&mut self) -> Option<GrantRef> {
        self.refs.pop()
    }

    /// Gives `r` back. Refused with [`Error::EINVAL`] for a reserved reference, one outside the list's
    /// range, or one already free.
    #[inline]
    pub fn free(&mut self, r: GrantRef) -> super::Result<()> {
        if r.0 < GNTTAB_NR_RESERVED_ENTRIES || r.0 >= self.limit || self.refs.contains(&r) {
            return Err(Error::EINVAL);
        }
        self.refs.try_push(r).map_err(|_| Error::EINVAL)
    }

    /// Whether `r` is in the list's range and not free (handed out).
    #[inline]
    pub fn is_allocated(&self, r: GrantRef) -> bool {
        (GNTTAB_NR_RESERVED_ENTRIES..self.limit).contains(&r.0) && !self.refs.contains(&r)
    }
}

/// The caller's version 1 grant table with a free list of `N` references: grant pages to another domain
/// and end the access, with no `unsafe` after the one-time mapping.
///
/// A page is granted by giving it up ([`GrantTable::grant`] takes `&'static mut Page`) and comes back
/// only when the access has ended ([`GrantTable::end_access`]); the reference is a move-only [`Grant`].
/// While granted, the page is memory shared with the grantee, reached through [`Grant::page`] with
/// volatile or atomic operations.
///
/// ```
/// use xen_hypercall::xen::{DomId, Error, Page, grant_table::{GrantEntryV1, GrantTable, GTF_WRITING}};
///
/// #[repr(C, align(4096))]
/// struct Frame([GrantEntryV1; 512]);
/// let mut frame = Frame([GrantEntryV1::default(); 512]); // stands in for the mapped frame
/// // SAFETY: `frame` outlives `table` and is accessed only through it; memory is identity-mapped.
/// let mut table = unsafe { GrantTable::<16>::new(frame.0.as_mut_ptr(), 1) };
/// # // A host's addresses are beyond a v1 entry's 32-bit frames: keep the low bits.
/// # let mut table = unsafe { table.with_gfn_of(|p| (p as usize as u64 >> 12) & 0xffff_ffff) };
///
/// let page: &'static mut Page = Box::leak(Box::new(Page::new()));
/// let frame_of_page = (page as *const Page as usize >> 12) as u32;
/// let grant = table.grant(DomId(0), page, false)?;
/// let r = grant.gref();
/// assert_eq!(table.entries().get(r).map(|e| (e.flags, e.frame)), Some((1, frame_of_page)));
/// # unsafe { (*frame.0.as_mut_ptr().add(r.0 as usize)).flags |= GTF_WRITING; }
/// // While the grantee has it mapped (Xen set GTF_writing), the access cannot end: the grant comes back.
/// let refused = table.end_access(grant).unwrap_err();
/// assert_eq!(refused.error, Error::EBUSY);
/// # unsafe { (*frame.0.as_mut_ptr().add(r.0 as usize)).flags &= !GTF_WRITING; }
/// // After the unmap: the page is ours again, and `r` is free.
/// let page: &'static mut Page = table.end_access(refused.grant)?.unwrap();
/// # let _ = page;
/// # Ok::<(), Error>(())
/// ```
pub struct GrantTable<const N: usize> {
    entries: GrantEntries,
    free: FreeRefs<N>,
    gfn_of: fn(*const Page) -> u64,
}

/// The guest frame of a page in identity-mapped memory: its address divided by 4096.
fn identity_gfn(p: *const Page) -> u64 {
    p as usize as u64 >> 12
}

/// Access granted to another domain under one reference of a [`GrantTable`]: move-only, ended only by
/// [`GrantTable::end_access`] on the table that made it.
///
/// Dropping it leaves the access in place for good: the reference stays taken and the page given up (a
/// leak, never a page handed back while the grantee may still use it).
#[must_use = "dropping a Grant leaks its reference and its page; end it with GrantTable::end_access"]
pub struct Grant {
    gref: GrantRef,
    table: NonNull<GrantEntryV1>,
    page: Option<NonNull<Page>>,
}

// SAFETY: a `Grant` owns its page (given up by `&'static mut`) and its reference; nothing in it is tied
// to a thread.
unsafe impl Send for Grant {}

impl Grant {
    /// Copies `buf.len()` bytes from offset `offset` of the granted page into `buf` (volatile reads: the
    /// grantee may be writing). [`Error::EINVAL`] beyond the page, or for a frame granted with
    /// [`GrantTable::grant_frame`] (no page). What a frontend reads from the pages it shares, as
    /// [`Mapping::read`] is for a backend.
    #[inline]
    pub fn read(&self, offset: usize, buf: &mut [u8]) -> super::Result<()> {
        let page = self.page().ok_or(Error::EINVAL)?;
        // SAFETY: the granted page, given up to this grant for as long as it lives, accessed only
        // volatilely.
        unsafe { read_page(page, offset, buf) }
    }

    /// Copies `data` to offset `offset` of the granted page (volatile writes). [`Error::EINVAL`] beyond
    /// the page, or for a frame granted with [`GrantTable::grant_frame`].
    #[inline]
    pub fn write(&self, offset: usize, data: &[u8]) -> super::Result<()> {
        let page = self.page().ok_or(Error::EINVAL)?;
        // SAFETY: as in `read`; the page is the caller's own memory, given up to sharing.
        unsafe { write_page(page, offset, data) }
    }

    /// The reference to give the grantee (through xenstore or a ring).
    #[inline(always)]
    pub const fn gref(&self) -> GrantRef {
        self.gref
    }

    /// The granted page, shared with the grantee: read and write it with volatile or atomic operations
    /// only. `None` for a frame granted with [`GrantTable::grant_frame`].
    #[inline(always)]
    pub fn page(&self) -> Option<*mut Page> {
        self.page.map(NonNull::as_ptr)
    }
}

impl fmt::Debug for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Grant")
            .field("gref", &self.gref)
            .field("page", &self.page)
            .finish()
    }
}

/// [`GrantTable::grant`] refused: the reason, and the page, still the caller's.
pub struct GrantRefused {
    /// Why: [`Error::ENOSPC`] when no reference is free, [`Error::EINVAL`] for a page beyond a v1
    /// entry's 32-bit frame.
    pub error: Error,
    /// The page, not granted.
    pub page: &'static mut Page,
}

/// [`GrantTable::end_access`] refused: the reason, and the grant, still in place.
pub struct EndRefused {
    /// Why: [`Error::EBUSY`] while the grantee has the page mapped (try again after it unmaps it),
    /// [`Error::EINVAL`] for a grant of another table.
    pub error: Error,
    /// The grant, unchanged.
    pub grant: Grant,
}

impl fmt::Debug for GrantRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrantRefused")
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for EndRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndRefused")
            .field("error", &self.error)
            .field("grant", &self.grant)
            .finish()
    }
}

impl From<GrantRefused> for Error {
    /// The reason; the page is left given up for good (never reused).
    #[inline]
    fn from(r: GrantRefused) -> Error {
        r.error
    }
}

impl From<EndRefused> for Error {
    /// The reason; the grant stays in place for good (its page is never reused).
    #[inline]
    fn from(r: EndRefused) -> Error {
        r.error
    }
}

impl<const N: usize> GrantTable<N> {
    /// The table over the `frames` frames of entries at `base`, with the first `N` unreserved references
    /// free.
    ///
    /// # Safety
    ///
    /// As for [`GrantEntries::new`]; no other `GrantTable` or `GrantEntries` grants the same references;
    /// and the memory of the pages given to [`GrantTable::grant`] is identity-mapped (a page's guest frame
    /// is its address divided by 4096), else [`GrantTable::with_gfn_of`] says how to find it.
    #[inline]
    pub unsafe fn new(base: *mut GrantEntryV1, frames: u32) -> GrantTable<N> {
        // SAFETY: forwarded.
        let entries = unsafe { GrantEntries::new(base, frames) };
        let free = FreeRefs::new(entries.len());
        GrantTable {
            entries,
            free,
            gfn_of: identity_gfn,
        }
    }

    /// The same table, finding the guest frame of a page with `gfn_of` (for memory that is not
    /// identity-mapped; on x86 PV, the machine frame).
    ///
    /// # Safety
    ///
    /// `gfn_of(p)` is the frame the grantee must be given for the page at `p` (its guest frame; on x86
    /// PV its machine frame), for every page the program can give to [`GrantTable::grant`].
    #[inline]
    pub unsafe fn with_gfn_of(self, gfn_of: fn(*const Page) -> u64) -> GrantTable<N> {
        GrantTable { gfn_of, ..self }
    }

    /// Maps grant table frames `0..frames` at guest frames `gpfn..gpfn + frames`
    /// ([`memory::map_grant_frame`](super::memory::map_grant_frame); Xen grows the table as needed) and
    /// returns the table over them, seen at address `va` in the caller's address space (equal to
    /// `gpfn * 4096` when memory is identity-mapped). The usual place is
    /// [`layout::GUEST_GNTTAB_BASE`](super::layout::GUEST_GNTTAB_BASE).
    ///
    /// # Safety
    ///
    /// The guest frames must hold nothing the program uses (they become Xen's grant table), `va` must map
    /// them as Normal Write-Back memory, and the rest is as for [`GrantTable::new`].
    ///
    /// ```no_run
    /// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))] {
    /// use xen_hypercall::xen::{grant_table::GrantTable, layout};
    /// // SAFETY: the grant table region is unused and identity-mapped.
    /// let table = unsafe {
    ///     GrantTable::<64>::map(layout::GUEST_GNTTAB_BASE / 4096, 1, layout::GUEST_GNTTAB_BASE as *mut _)
    /// }?;
    /// # let _ = table; }
    /// # Ok::<(), xen_hypercall::xen::Error>(())
    /// ```
    #[inline]
    pub unsafe fn map(
        gpfn: u64,
        frames: u32,
        va: *mut GrantEntryV1,
    ) -> super::Result<GrantTable<N>> {
        for i in 0..frames {
            // SAFETY: the caller reserved the frames for the grant table.
            unsafe { super::memory::map_grant_frame(i, gpfn + u64::from(i)) }?;
        }
        // SAFETY: the frames are mapped at `va`; the rest is the caller's contract.
        Ok(unsafe { GrantTable::new(va, frames) })
    }

    /// The entries, to read them (and to end access under references managed elsewhere).
    #[inline(always)]
    pub fn entries(&self) -> &GrantEntries {
        &self.entries
    }

    /// How many references are free.
    #[inline(always)]
    pub fn free_count(&self) -> usize {
        self.free.len()
    }

    /// Gives `page` up to domain `dom` (read-only if `readonly`) under a free reference, until
    /// [`GrantTable::end_access`] hands it back. Refused, with the page, with [`Error::ENOSPC`] when no
    /// reference is free and [`Error::EINVAL`] for a page beyond a v1 entry's 32-bit frame.
    #[inline]
    pub fn grant(
        &mut self,
        dom: DomId,
        page: &'static mut Page,
        readonly: bool,
    ) -> core::result::Result<Grant, GrantRefused> {
        // From here on the page is reached through this pointer only, and its address is handed to
        // another domain: exposed, as memory whose address leaves the program is.
        let ptr = NonNull::from(page);
        let frame = (self.gfn_of)(ptr.as_ptr().cast_const());
        let _ = ptr.as_ptr().expose_provenance();
        match self.claim(dom, frame, readonly) {
            Ok(gref) => Ok(Grant {
                gref,
                table: self.entries.base,
                page: Some(ptr),
            }),
            Err(error) => Err(GrantRefused {
                error,
                // SAFETY: `ptr` is the `&'static mut` given above, not shared: nothing was granted.
                page: unsafe { &mut *ptr.as_ptr() },
            }),
        }
    }

    /// Gives the page at `page` up to domain `dom` (read-only if `readonly`), as [`GrantTable::grant`]
    /// gives up a `&'static mut Page`, but through a raw pointer: for a page of a larger area given up as
    /// a whole (a multi-page ring), which the program keeps reaching through pointers derived from the
    /// same one as `page` (a `&'static mut` reborrowed per page would invalidate them).
    /// [`GrantTable::end_access`] hands it back as a `&'static mut Page`. [`Error::ENOSPC`] when no
    /// reference is free, [`Error::EINVAL`] for a page beyond a v1 entry's 32-bit frame; refused,
    /// nothing was granted.
    ///
    /// # Safety
    ///
    /// `page` is a page of the program's memory, valid for reads and writes for `'static`, and given up
    /// to sharing with `dom` until `end_access` succeeds: for that long no Rust reference to it exists
    /// or is used, the program accesses it only with volatile or atomic operations (`dom` may write
    /// anything into it at any time; none of the grantee's writes make it invalid for the program), and
    /// it is granted under no other reference. After a successful `end_access`, the `&'static mut Page`
    /// it returns is the only way the program reaches the page.
    ///
    /// ```
    /// use core::ptr::NonNull;
    /// use xen_hypercall::xen::{DomId, Error, Page, grant_table::{GrantEntryV1, GrantTable}};
    /// use xen_hypercall::xen::ring::{FrontRing, SharedArea};
    ///
    /// #[repr(C, align(4096))]
    /// struct Frame([GrantEntryV1; 512]);
    /// let mut frame = Frame([GrantEntryV1::default(); 512]); // stands in for the mapped frame
    /// // SAFETY: `frame` outlives `table` and is accessed only through it; memory is identity-mapped.
    /// let mut table = unsafe { GrantTable::<16>::new(frame.0.as_mut_ptr(), 1) };
    /// # let mut table = unsafe { table.with_gfn_of(|p| (p as usize as u64 >> 12) & 0xffff_ffff) };
    ///
    /// // A two-page ring: given up as a whole, reached only through `base` from here on.
    /// let area: &'static mut [Page; 2] = Box::leak(Box::new([Page::new(), Page::new()]));
    /// let base: NonNull<Page> = NonNull::from(area).cast();
    /// // SAFETY: each page is given up, reached through `base` only, volatilely, until `end_access`.
    /// let grants = unsafe {
    ///     [table.grant_raw(DomId(0), base, false)?, table.grant_raw(DomId(0), base.add(1), false)?]
    /// };
    /// // SAFETY: the two granted pages, ended below only after the ring is dropped.
    /// let ring = FrontRing::<u64, u64>::init(unsafe { SharedArea::new(base.as_ptr(), 2) }?)?;
    /// // ... publish the references, exchange, disconnect ...
    /// drop(ring);
    /// for g in grants {
    ///     let page: &'static mut Page = table.end_access(g).map_err(|r| r.error)?.unwrap();
    ///     # let _ = page;
    /// }
    /// # Ok::<(), Error>(())
    /// ```
    #[inline]
    pub unsafe fn grant_raw(
        &mut self,
        dom: DomId,
        page: NonNull<Page>,
        readonly: bool,
    ) -> super::Result<Grant> {
        let frame = (self.gfn_of)(page.as_ptr().cast_const());
        let _ = page.as_ptr().expose_provenance();
        let gref = self.claim(dom, frame, readonly)?;
        Ok(Grant {
            gref,
            table: self.entries.base,
            page: Some(page),
        })
    }

    /// Grants `dom` access to guest frame `frame` (read-only if `readonly`) under a free reference:
    /// [`Error::ENOSPC`] when none is free, [`Error::EINVAL`] for a frame beyond 32 bits.
    ///
    /// # Safety
    ///
    /// `dom` may read (and unless `readonly`, write) `frame` until [`GrantTable::end_access`] succeeds:
    /// the frame must hold nothing the program uses but as memory shared with `dom` (accessed with
    /// volatile or atomic operations), or nothing at all, for that long.
    #[inline]
    pub unsafe fn grant_frame(
        &mut self,
        dom: DomId,
        frame: u64,
        readonly: bool,
    ) -> super::Result<Grant> {
        let gref = self.claim(dom, frame, readonly)?;
        Ok(Grant {
            gref,
            table: self.entries.base,
            page: None,
        })
    }

    /// Takes a free reference and writes the grant into its entry. A reference whose entry is found in
    /// use (which only code outside this table can have done) is dropped from the list, never tried
    /// again, and the next one is taken.
    fn claim(&mut self, dom: DomId, frame: u64, readonly: bool) -> super::Result<GrantRef> {
        if u32::try_from(frame).is_err() {
            return Err(Error::EINVAL);
        }
        loop {
            let r = self.free.alloc().ok_or(Error::ENOSPC)?;
            // SAFETY: `r` came off this table's free list, so nothing else grants under it (constructor
            // contract); what `dom` may then do with `frame` is the caller's contract (`grant` gives the
            // page up, `grant_frame` is `unsafe`).
            match unsafe { self.entries.grant_access(r, dom, frame, readonly) } {
                Ok(()) => return Ok(r),
                // In use behind the table's back: leave it out of the list.
                Err(Error::EBUSY) => continue,
                Err(e) => {
                    let _ = self.free.free(r);
                    return Err(e);
                }
            }
        }
    }

    /// Ends the access `grant` gives ([`GrantEntries::end_access`]), frees its reference and hands the
    /// page back (`None` for a frame granted with [`GrantTable::grant_frame`]). Refused, with the grant,
    /// with [`Error::EBUSY`] while the grantee has the page mapped, and [`Error::EINVAL`] for a grant of
    /// another table.
    #[inline]
    pub fn end_access(
        &mut self,
        grant: Grant,
    ) -> core::result::Result<Option<&'static mut Page>, EndRefused> {
        if grant.table != self.entries.base || !self.free.is_allocated(grant.gref) {
            return Err(EndRefused {
                error: Error::EINVAL,
                grant,
            });
        }
        if let Err(error) = self.entries.end_access(grant.gref) {
            return Err(EndRefused { error, grant });
        }
        let _ = self.free.free(grant.gref);
        // SAFETY: the page was given up as `&'static mut` by `grant`, and no domain can reach it any
        // more: the entry is `GTF_invalid` and Xen had it neither mapped nor in a copy.
        Ok(grant.page.map(|mut p| unsafe { p.as_mut() }))
    }
}

/// One grant to map with [`MapArea::map_batch`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapRequest {
    /// The granting domain.
    pub dom: DomId,
    /// Its grant reference.
    pub gref: GrantRef,
    /// Map it read-only (required for a read-only grant).
    pub readonly: bool,
}

/// A window of `N` pages of the caller's address space given up to grant mappings: the safe way to map
/// another domain's grants. Each page (a slot) holds one mapping at a time; a [`Mapping`] is move-only and
/// ends with [`MapArea::unmap`].
///
/// ```
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))] {
/// use xen_hypercall::xen::{DomId, Page, grant_table::{GnttabMapGrantRef, GrantHandle, GrantRef, MapArea}};
/// # xen_hypercall::mock::respond(|c| { c.update(1, |o: &mut GnttabMapGrantRef| {
/// #     o.status = 0; o.handle = GrantHandle(3); }); 0 });
/// # xen_hypercall::mock::respond(|c| { c.update(1, |o: &mut xen_hypercall::xen::grant_table::GnttabUnmapGrantRef| o.status = 0); 0 });
/// // SAFETY: 0x8000_0000..0x8000_4000 is a range of no RAM, seen at the same address, used by nothing else.
/// let mut area = unsafe { MapArea::<4>::new(0x8000_0000, 0x8000_0000 as *mut Page) };
/// let m = area.map(DomId(1), GrantRef(8), true)?;
/// assert_eq!(m.as_ptr() as usize, 0x8000_0000);
/// area.unmap(m).map_err(|r| r.error)?;
/// # }
/// # Ok::<(), xen_hypercall::xen::grant_table::GrantError>(())
/// ```
pub struct MapArea<const N: usize> {
    host_addr: u64,
    va: NonNull<Page>,
    used: [bool; N],
}

// SAFETY: the area owns its window; nothing in it is tied to a thread.
unsafe impl<const N: usize> Send for MapArea<N> {}

/// A grant mapped in a slot of a [`MapArea`]: move-only, ended by [`MapArea::unmap`]. Dropping it leaves
/// the mapping (and the slot) in place for good.
#[must_use = "dropping a Mapping leaks its slot; end it with MapArea::unmap"]
pub struct Mapping {
    area: NonNull<Page>,
    slot: usize,
    handle: GrantHandle,
    readonly: bool,
}

// SAFETY: as for `MapArea`.
unsafe impl Send for Mapping {}

impl fmt::Debug for Mapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mapping")
            .field("at", &self.as_ptr())
            .field("handle", &self.handle)
            .field("readonly", &self.readonly)
            .finish()
    }
}

impl Mapping {
    /// Where the granted page is seen: memory shared with the granting domain, to read (and unless
    /// read-only, write) with volatile or atomic operations only.
    #[inline(always)]
    pub fn as_ptr(&self) -> *mut Page {
        // SAFETY: `slot < N`, inside the area's window (its constructor's contract).
        unsafe { self.area.as_ptr().add(self.slot) }
    }

    /// The handle Xen returned.
    #[inline(always)]
    pub const fn handle(&self) -> GrantHandle {
        self.handle
    }

    /// Whether it is mapped read-only.
    #[inline(always)]
    pub const fn readonly(&self) -> bool {
        self.readonly
    }

    /// Copies `buf.len()` bytes from offset `offset` of the page into `buf` (volatile reads: the granting
    /// domain may be writing). [`Error::EINVAL`] beyond the page.
    #[inline]
    pub fn read(&self, offset: usize, buf: &mut [u8]) -> super::Result<()> {
        // SAFETY: the mapped page, which stays mapped while `self` lives.
        unsafe { read_page(self.as_ptr(), offset, buf) }
    }

    /// Copies `data` to offset `offset` of the page (volatile writes). [`Error::EINVAL`] beyond the page,
    /// [`Error::EPERM`] for a read-only mapping.
    #[inline]
    pub fn write(&self, offset: usize, data: &[u8]) -> super::Result<()> {
        if self.readonly {
            return Err(Error::EPERM);
        }
        // SAFETY: as in `read`; the mapping is writable.
        unsafe { write_page(self.as_ptr(), offset, data) }
    }
}

/// Copies `buf.len()` bytes from offset `offset` of `page` into `buf` with [`read_shared`];
/// [`Error::EINVAL`] beyond the page.
///
/// # Safety
///
/// `page` points at a whole page shared with another domain, readable for the call, and accessed by this
/// program with volatile or atomic operations only.
#[inline]
unsafe fn read_page(page: *mut Page, offset: usize, buf: &mut [u8]) -> super::Result<()> {
    // SAFETY: a whole page (the contract).
    let p = unsafe { page_range(page, offset, buf.len()) }?;
    // SAFETY: inside the page (checked), under the contract.
    unsafe { read_shared(p, buf) };
    Ok(())
}

/// Copies `data` to offset `offset` of `page` with [`write_shared`]; [`Error::EINVAL`] beyond the page.
///
/// # Safety
///
/// As for [`read_page`], and the page is writable.
#[inline]
unsafe fn write_page(page: *mut Page, offset: usize, data: &[u8]) -> super::Result<()> {
    // SAFETY: a whole page (the contract).
    let p = unsafe { page_range(page, offset, data.len()) }?;
    // SAFETY: inside the page (checked), under the contract.
    unsafe { write_shared(p, data) };
    Ok(())
}

/// Where `len` bytes at `offset` of `page` start; [`Error::EINVAL`] unless they lie inside the page.
///
/// # Safety
///
/// `page` points at a whole page (granted or mapped) for the call.
#[inline(always)]
unsafe fn page_range(page: *mut Page, offset: usize, len: usize) -> super::Result<*mut u8> {
    match offset.checked_add(len) {
        Some(end) if end <= 4096 => {
            // SAFETY: `offset <= 4096`: inside the page or one past it.
            Ok(unsafe { page.cast::<u8>().add(offset) })
        }
        _ => Err(Error::EINVAL),
    }
}

/// Copies `buf.len()` bytes from `p` into `buf`, with volatile reads (the other domain may be writing):
/// bytes up to the page's next 8-byte boundary, then aligned 64-bit words of the page, stored as words
/// when `buf` is aligned alike (four per pass) and as eight bytes otherwise (bare-metal targets forbid
/// unaligned accesses), then the last bytes. About 0.4 instructions a byte on AArch64 when aligned alike,
/// 2.5 otherwise; a byte at a time it would be 4.
///
/// # Safety
///
/// `p..p + buf.len()` lies inside a page shared with another domain, readable for the call, and
/// accessed by this program with volatile or atomic operations only.
#[inline]
pub(crate) unsafe fn read_shared(p: *const u8, buf: &mut [u8]) {
    let len = buf.len();
    // SAFETY: the caller's contract for the page; `buf` is `len` writable bytes.
    unsafe { copy_shared::<FromPage>(p.cast_mut(), buf.as_mut_ptr(), len) };
}

/// Copies `data` to `p` with volatile writes (the other domain may be reading), as [`read_shared`]
/// reads.
///
/// # Safety
///
/// As for [`read_shared`], and the page is writable.
#[inline]
pub(crate) unsafe fn write_shared(p: *mut u8, data: &[u8]) {
    // SAFETY: the caller's contract for the page; `data` is `data.len()` readable bytes, only read by
    // `ToPage`.
    unsafe { copy_shared::<ToPage>(p, data.as_ptr().cast_mut(), data.len()) };
}

/// One direction of a copy between a shared page and a private buffer: how a byte, and an aligned word of
/// the page, move. The page side is accessed with volatile operations only.
trait Direction {
    /// Moves a byte between `page` and `buf`.
    ///
    /// # Safety
    ///
    /// Both point at a byte that may be accessed in this direction (the contract of [`copy_shared`]).
    unsafe fn byte(page: *mut u8, buf: *mut u8);

    /// Moves eight bytes between `page`, an aligned word, and `buf`: a word when `alike` (then aligned to
    /// 8 too), and eight bytes otherwise.
    ///
    /// # Safety
    ///
    /// Both point at eight bytes that may be accessed in this direction, with that alignment.
    unsafe fn word(page: *mut u8, buf: *mut u8, alike: bool);
}

/// [`read_shared`]: the page into the buffer (the page is only read).
struct FromPage;

impl Direction for FromPage {
    #[inline(always)]
    unsafe fn byte(page: *mut u8, buf: *mut u8) {
        // SAFETY: the contract.
        unsafe { *buf = page.read_volatile() };
    }

    #[inline(always)]
    unsafe fn word(page: *mut u8, buf: *mut u8, alike: bool) {
        // SAFETY: an aligned word of the page; eight bytes of the buffer, aligned when `alike` (the
        // contract).
        unsafe {
            let w = page.cast::<u64>().read_volatile();
            if alike {
                buf.cast::<u64>().write(w);
            } else {
                buf.cast::<[u8; 8]>().write(w.to_ne_bytes());
            }
        }
    }
}

/// [`write_shared`]: the buffer onto the page (the buffer is only read).
struct ToPage;

impl Direction for ToPage {
    #[inline(always)]
    unsafe fn byte(page: *mut u8, buf: *mut u8) {
        // SAFETY: the contract.
        unsafe { page.write_volatile(*buf) };
    }

    #[inline(always)]
    unsafe fn word(page: *mut u8, buf: *mut u8, alike: bool) {
        // SAFETY: eight bytes of the buffer, aligned when `alike`; an aligned word of the page (the
        // contract).
        unsafe {
            let v = if alike {
                buf.cast::<u64>().read()
            } else {
                u64::from_ne_bytes(buf.cast::<[u8; 8]>().read())
            };
            page.cast::<u64>().write_volatile(v);
        }
    }
}

/// The walk of [`read_shared`] and [`write_shared`] over `len` bytes between `page` and `buf`, in
/// direction `D`.
///
/// # Safety
///
/// `page..page + len` lies inside a page shared with another domain, accessible in direction `D` for the
/// call and accessed by this program with volatile or atomic operations only; `buf..buf + len` is a
/// private buffer, accessible likewise.
#[inline(always)]
unsafe fn copy_shared<D: Direction>(page: *mut u8, buf: *mut u8, len: usize) {
    let (head, words, alike) = word_span(page, buf, len);
    let mut i = 0;
    // The contract puts `page + i` inside the shared page and `buf + i` inside the buffer for `i < len`;
    // from `head` to `words`, `page + i` is aligned to 8, and so is `buf + i` when `alike`.
    while i < head {
        // SAFETY: inside the page and the buffer (above).
        unsafe { D::byte(page.add(i), buf.add(i)) };
        i += 1;
    }
    while alike && i + 32 <= words {
        // SAFETY: four aligned words inside the page and the buffer (above).
        unsafe {
            let (p, b) = (page.add(i), buf.add(i));
            D::word(p, b, true);
            D::word(p.add(8), b.add(8), true);
            D::word(p.add(16), b.add(16), true);
            D::word(p.add(24), b.add(24), true);
        }
        i += 32;
    }
    while i < words {
        // SAFETY: an aligned word of the page, and eight bytes of the buffer (above).
        unsafe { D::word(page.add(i), buf.add(i), alike) };
        i += 8;
    }
    while i < len {
        // SAFETY: inside the page and the buffer (above).
        unsafe { D::byte(page.add(i), buf.add(i)) };
        i += 1;
    }
}

/// For a copy of `len` bytes between the shared `page` and `buf`: the bytes before the page's next 8-byte
/// boundary, where its whole words end, and whether `buf` is aligned alike (by the addresses: `addr`
/// exposes no provenance, and `align_offset` may answer "never").
fn word_span(page: *const u8, buf: *const u8, len: usize) -> (usize, usize, bool) {
    let head = ((8 - (page.addr() & 7)) & 7).min(len);
    let alike = page.addr().wrapping_sub(buf.addr()).is_multiple_of(8);
    (head, head + (len - head) / 8 * 8, alike)
}

/// [`MapArea::unmap`] refused: the reason, and the mapping, still in place.
#[derive(Debug)]
pub struct UnmapRefused {
    /// Why (a grant of another area is [`Error::EINVAL`]).
    pub error: GrantError,
    /// The mapping, unchanged.
    pub mapping: Mapping,
}

impl<const N: usize> MapArea<N> {
    /// The `N` pages from `host_addr`, seen at `va`: the address grant mappings are made at
    /// (`host_addr`, what [`map_grant_ref`] takes: on ARM and x86 HVM/PVH a guest physical address, on
    /// x86 PV a virtual one) and the address the program reads them at.
    ///
    /// # Safety
    ///
    /// The window is given up to the area for as long as it or any of its mappings lives: its pages
    /// hold nothing the program uses (no RAM at all, or pages given up for good, whose frames Xen
    /// replaces and which are holes after an unmap), nothing else maps or touches them, `host_addr` is
    /// page-aligned, and `va` is where the program sees `host_addr` (Normal Write-Back memory).
    #[inline]
    pub const unsafe fn new(host_addr: u64, va: *mut Page) -> MapArea<N> {
        MapArea {
            host_addr,
            // SAFETY: the contract asks for a valid window.
            va: unsafe { NonNull::new_unchecked(va) },
            used: [false; N],
        }
    }

    /// How many slots are free.
    #[inline]
    pub fn free_count(&self) -> usize {
        self.used.iter().filter(|u| !**u).count()
    }

    /// Maps grant `gref` of domain `dom` in a free slot (read-only if `readonly`): one hypercall.
    /// [`Error::ENOSPC`] when no slot is free; the grant's status when Xen refuses it.
    #[inline]
    pub fn map(&mut self, dom: DomId, gref: GrantRef, readonly: bool) -> Result<Mapping> {
        let [m] = self.map_batch([MapRequest {
            dom,
            gref,
            readonly,
        }]);
        m
    }

    /// Maps the `K` grants `reqs` in free slots, in one hypercall, each with its own outcome: a
    /// [`Mapping`], [`Error::ENOSPC`] when no slot was left for it, its status when Xen refused it, or the
    /// hypercall's error when Xen did not reach it.
    pub fn map_batch<const K: usize>(&mut self, reqs: [MapRequest; K]) -> [Result<Mapping>; K] {
        let mut slots = [None; K];
        let mut ops = ArrayVec::<GnttabMapGrantRef, K>::new();
        for (k, req) in reqs.iter().enumerate() {
            let Some(slot) = self.used.iter().position(|u| !*u) else {
                break;
            };
            self.used[slot] = true;
            slots[k] = Some((slot, ops.len()));
            let mut flags = GntMap::HOST_MAP;
            if req.readonly {
                flags |= GntMap::READONLY;
            }
            ops.push(GnttabMapGrantRef::new(
                self.slot_addr(slot),
                flags,
                req.gref,
                req.dom,
            ));
        }
        // SAFETY: every `host_addr` is a slot of the window given up to this area (constructor
        // contract), and no mapping is live in it (the slot was free).
        let ret = unsafe { map_grant_ref(&mut ops) };
        core::array::from_fn(|k| {
            let Some((slot, i)) = slots[k] else {
                return Err(GrantError::Xen(Error::ENOSPC));
            };
            match (ops[i].result(), ret) {
                (Ok(handle), _) => Ok(Mapping {
                    area: self.va,
                    slot,
                    handle,
                    readonly: reqs[k].readonly,
                }),
                (Err(s), r) => {
                    self.used[slot] = false;
                    Err(match r {
                        Err(GrantError::Xen(e)) => GrantError::Xen(e),
                        _ => GrantError::Status(s),
                    })
                }
            }
        })
    }

    /// Unmaps `m` and frees its slot. Refused, with the mapping, when Xen refuses it or it is a mapping
    /// of another area ([`Error::EINVAL`]).
    #[inline]
    pub fn unmap(&mut self, m: Mapping) -> core::result::Result<(), UnmapRefused> {
        if m.area != self.va || !self.used.get(m.slot).copied().unwrap_or(false) {
            return Err(UnmapRefused {
                error: GrantError::Xen(Error::EINVAL),
                mapping: m,
            });
        }
        let mut op = [GnttabUnmapGrantRef::new(self.slot_addr(m.slot), m.handle)];
        // SAFETY: the slot is this area's and holds the mapping `m`, which is consumed: nothing can use
        // the page after the unmap.
        match unsafe { unmap_grant_ref(&mut op) } {
            Ok(()) => {
                self.used[m.slot] = false;
                Ok(())
            }
            Err(error) => Err(UnmapRefused { error, mapping: m }),
        }
    }

    #[inline(always)]
    fn slot_addr(&self, slot: usize) -> u64 {
        self.host_addr + slot as u64 * 4096
    }
}
