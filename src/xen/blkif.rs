//! The block device protocol (`io/blkif.h`): the requests and responses of a block frontend's shared ring,
//! and the limits that go with them.
//!
//! The protocol, in a screenful:
//!
//! - The frontend grants the ring's pages (`ring-ref`, or `ring-ref0..` with `ring-page-order` for a ring
//!   of 2, 4, 8 or 16 pages when the backend offers `max-ring-page-order`) and an event channel. Each slot
//!   holds a [`BlkifRequest`] (112 bytes), overwritten by its [`BlkifResponse`] (16 bytes): 32 slots in one
//!   page, 64/128/256/512 in 2/4/8/16 ([`ring_entries`]).
//! - A read or write request names up to [`BLKIF_MAX_SEGMENTS_PER_REQUEST`] (11) segments, each a granted
//!   page and the sectors of it to transfer (`first_sect..=last_sect`, 512-byte sectors, at most 8 per
//!   page); the request's `sector_number` is where on the disk the first segment's first sector goes, the
//!   segments following each other on disk.
//! - With `feature-max-indirect-segments` offered, a [`BlkifRequestIndirect`] (written into the same slot)
//!   carries up to that many segments in granted pages of [`BlkifRequestSegment`]s (512 per page, at most
//!   [`BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST`] pages).
//! - `BLKIF_OP_FLUSH_DISKCACHE` (with `feature-flush-cache`) has no segments and returns once the data
//!   written before it is on stable storage; `BLKIF_OP_DISCARD` ([`BlkifRequestDiscard`], with
//!   `feature-discard`) names a sector range.
//! - The response echoes the request's `id` and `operation`; its `status` is [`BLKIF_RSP_OKAY`],
//!   [`BLKIF_RSP_ERROR`] or [`BLKIF_RSP_EOPNOTSUPP`]. Responses may come in any order.
//!
//! The layouts are the same on 32-bit ARM, AArch64 and x86-64 (the 64-bit fields are 8-aligned on all
//! three; only i386, which this crate does not target, packs them differently): a host test compiles
//! `io/blkif.h` with clang for the three and compares every field.
//!
//! ```
//! use xen_hypercall::xen::blkif::{self, BlkifRequest, BlkifRequestSegment, BLKIF_OP_READ};
//! use xen_hypercall::xen::grant_table::GrantRef;
//! let mut req = BlkifRequest::new(BLKIF_OP_READ, 0, 7, 2048);
//! req.seg[0] = BlkifRequestSegment::new(GrantRef(8), 0, 7); // a whole page: sectors 0 to 7
//! req.nr_segments = 1;
//! assert_eq!((core::mem::size_of::<BlkifRequest>(), blkif::ring_entries(0)), (112, 32));
//! ```

use core::mem::size_of;

use super::grant_table::GrantRef;
use super::ring::{self, Slot};

/// `BLKIF_OP_READ`: read from the disk into the segments' pages.
pub const BLKIF_OP_READ: u8 = 0;
/// `BLKIF_OP_WRITE`: write the segments' pages to the disk.
pub const BLKIF_OP_WRITE: u8 = 1;
/// `BLKIF_OP_WRITE_BARRIER` (`feature-barrier`).
pub const BLKIF_OP_WRITE_BARRIER: u8 = 2;
/// `BLKIF_OP_FLUSH_DISKCACHE` (`feature-flush-cache`).
pub const BLKIF_OP_FLUSH_DISKCACHE: u8 = 3;
/// `BLKIF_OP_RESERVED_1`.
pub const BLKIF_OP_RESERVED_1: u8 = 4;
/// `BLKIF_OP_DISCARD` (`feature-discard`).
pub const BLKIF_OP_DISCARD: u8 = 5;
/// `BLKIF_OP_INDIRECT` (`feature-max-indirect-segments`).
pub const BLKIF_OP_INDIRECT: u8 = 6;

/// `BLKIF_MAX_SEGMENTS_PER_REQUEST`: the segments a direct request holds.
pub const BLKIF_MAX_SEGMENTS_PER_REQUEST: usize = 11;
/// `BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST`: the indirect pages an indirect request names.
pub const BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST: usize = 8;
/// The segments one indirect page holds (`XEN_PAGE_SIZE / sizeof(struct blkif_request_segment)`).
pub const SEGMENTS_PER_INDIRECT_PAGE: usize = ring::PAGE_SIZE / size_of::<BlkifRequestSegment>();
/// The size of the sectors of `sector_number`, `first_sect` and `last_sect` (without
/// `feature-large-sector-size`, which this crate does not advertise).
pub const SECTOR_SIZE: usize = 512;
/// Sectors in a page.
pub const SECTORS_PER_PAGE: usize = ring::PAGE_SIZE / SECTOR_SIZE;

/// `BLKIF_DISCARD_SECURE`: a discard that must also erase.
pub const BLKIF_DISCARD_SECURE: u8 = 1 << 0;

/// `BLKIF_RSP_EOPNOTSUPP`: the backend does not do this operation.
pub const BLKIF_RSP_EOPNOTSUPP: i16 = -2;
/// `BLKIF_RSP_ERROR`: the operation failed.
pub const BLKIF_RSP_ERROR: i16 = -1;
/// `BLKIF_RSP_OKAY`: the operation succeeded.
pub const BLKIF_RSP_OKAY: i16 = 0;

/// `VDISK_CDROM` (the backend's `info`).
pub const VDISK_CDROM: u32 = 0x1;
/// `VDISK_REMOVABLE`.
pub const VDISK_REMOVABLE: u32 = 0x2;
/// `VDISK_READONLY`: writes fail.
pub const VDISK_READONLY: u32 = 0x4;

/// `struct blkif_request_segment`: a granted page and the sectors of it to transfer.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlkifRequestSegment {
    /// The grant of the page.
    pub gref: GrantRef,
    /// The first sector of the page to transfer (0..=7).
    pub first_sect: u8,
    /// The last sector of the page to transfer, inclusive (`first_sect..=7`).
    pub last_sect: u8,
    /// Padding (the structure is 4-aligned).
    pub _pad: u16,
}

impl BlkifRequestSegment {
    /// Sectors `first..=last` of the page granted by `gref`.
    #[inline]
    pub const fn new(gref: GrantRef, first: u8, last: u8) -> Self {
        BlkifRequestSegment {
            gref,
            first_sect: first,
            last_sect: last,
            _pad: 0,
        }
    }
}

/// `struct blkif_request`: a read, write, flush or barrier request with up to 11 segments.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlkifRequest {
    /// `BLKIF_OP_*`.
    pub operation: u8,
    /// How many of `seg` are used.
    pub nr_segments: u8,
    /// The virtual device (`blkif_vdev_t`; only read and write use it).
    pub handle: u16,
    /// Padding before `id` (8-aligned on every target this crate has).
    pub _pad: u32,
    /// The frontend's own value, echoed in the response.
    pub id: u64,
    /// Where on the disk the first segment starts, in 512-byte sectors.
    pub sector_number: u64,
    /// The segments.
    pub seg: [BlkifRequestSegment; BLKIF_MAX_SEGMENTS_PER_REQUEST],
}

impl BlkifRequest {
    /// A request of `operation` for `handle`, with no segments yet.
    #[inline]
    pub const fn new(operation: u8, handle: u16, id: u64, sector_number: u64) -> Self {
        BlkifRequest {
            operation,
            nr_segments: 0,
            handle,
            _pad: 0,
            id,
            sector_number,
            seg: [BlkifRequestSegment::new(GrantRef(0), 0, 0); BLKIF_MAX_SEGMENTS_PER_REQUEST],
        }
    }
}

/// `struct blkif_request_discard`: discard `nr_sectors` sectors from `sector_number`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlkifRequestDiscard {
    /// [`BLKIF_OP_DISCARD`].
    pub operation: u8,
    /// [`BLKIF_DISCARD_SECURE`] or 0.
    pub flag: u8,
    /// The virtual device.
    pub handle: u16,
    /// Padding before `id`.
    pub _pad: u32,
    /// Echoed in the response.
    pub id: u64,
    /// The first sector.
    pub sector_number: u64,
    /// How many sectors.
    pub nr_sectors: u64,
}

/// `struct blkif_request_indirect`: a read or write whose segments are in granted pages.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlkifRequestIndirect {
    /// [`BLKIF_OP_INDIRECT`].
    pub operation: u8,
    /// [`BLKIF_OP_READ`] or [`BLKIF_OP_WRITE`].
    pub indirect_op: u8,
    /// How many segments, at most the backend's `feature-max-indirect-segments`.
    pub nr_segments: u16,
    /// Padding before `id`.
    pub _pad0: u32,
    /// Echoed in the response.
    pub id: u64,
    /// Where on the disk the first segment starts, in 512-byte sectors.
    pub sector_number: u64,
    /// The virtual device.
    pub handle: u16,
    /// Padding before `indirect_grefs`.
    pub _pad1: u16,
    /// The grants of the pages holding the segments ([`SEGMENTS_PER_INDIRECT_PAGE`] each).
    pub indirect_grefs: [GrantRef; BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST],
    /// Padding to the structure's 8-byte alignment.
    pub _pad2: u32,
}

/// `struct blkif_response`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlkifResponse {
    /// The request's `id`.
    pub id: u64,
    /// The request's `operation`.
    pub operation: u8,
    /// Padding before `status`.
    pub _pad0: u8,
    /// `BLKIF_RSP_*`.
    pub status: i16,
    /// Padding to the structure's 8-byte alignment.
    pub _pad1: u32,
}

crate::impl_plain! {
    BlkifRequestSegment { gref: GrantRef, first_sect: u8, last_sect: u8, _pad: u16 };
    BlkifRequest {
        operation: u8, nr_segments: u8, handle: u16, _pad: u32, id: u64, sector_number: u64,
        seg: [BlkifRequestSegment; BLKIF_MAX_SEGMENTS_PER_REQUEST]
    };
    BlkifRequestDiscard {
        operation: u8, flag: u8, handle: u16, _pad: u32, id: u64, sector_number: u64, nr_sectors: u64
    };
    BlkifRequestIndirect {
        operation: u8, indirect_op: u8, nr_segments: u16, _pad0: u32, id: u64, sector_number: u64,
        handle: u16, _pad1: u16, indirect_grefs: [GrantRef; BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST],
        _pad2: u32
    };
    BlkifResponse { id: u64, operation: u8, _pad0: u8, status: i16, _pad1: u32 };
}

/// A request of another shape ([`BlkifRequestIndirect`], [`BlkifRequestDiscard`]) as the ring's slot
/// type: its bytes at the start of a zeroed [`BlkifRequest`], the way C writes it through the union of
/// `DEFINE_RING_TYPES`.
pub trait AsRequest: super::Plain {
    /// The request in a ring slot.
    fn as_request(&self) -> BlkifRequest {
        const { assert!(size_of::<Self>() <= size_of::<BlkifRequest>()) };
        let mut r = BlkifRequest::default();
        // SAFETY: both types are `Plain` (no padding, any bytes valid), `Self` is no larger than the
        // destination (checked at compile time), and the two are distinct objects.
        unsafe {
            core::ptr::copy_nonoverlapping(
                (self as *const Self).cast::<u8>(),
                (&raw mut r).cast::<u8>(),
                size_of::<Self>(),
            )
        };
        r
    }
}

impl AsRequest for BlkifRequestIndirect {}
impl AsRequest for BlkifRequestDiscard {}

/// The most ring pages a frontend may use (`ring-page-order` 4), Linux blkback's limit
/// (`XENBUS_MAX_RING_GRANT_ORDER`).
pub const MAX_RING_PAGE_ORDER: u32 = 4;

/// The slots of a blkif ring of `1 << order` pages (`__CONST_RING_SIZE(blkif, 4096 << order)`): 32, 64,
/// 128, 256 and 512 for orders 0 to 4; 0 beyond [`MAX_RING_PAGE_ORDER`].
pub const fn ring_entries(order: u32) -> u32 {
    if order > MAX_RING_PAGE_ORDER {
        return 0;
    }
    ring::ring_size(
        ring::PAGE_SIZE << order,
        size_of::<Slot<BlkifRequest, BlkifResponse>>(),
    )
}

const _: () = {
    use core::mem::align_of;
    assert!(size_of::<BlkifRequestSegment>() == 8 && align_of::<BlkifRequestSegment>() == 4);
    assert!(size_of::<BlkifRequest>() == 112 && align_of::<BlkifRequest>() == 8);
    assert!(size_of::<BlkifRequestDiscard>() == 32 && align_of::<BlkifRequestDiscard>() == 8);
    assert!(size_of::<BlkifRequestIndirect>() == 64 && align_of::<BlkifRequestIndirect>() == 8);
    assert!(size_of::<BlkifResponse>() == 16 && align_of::<BlkifResponse>() == 8);
    assert!(SEGMENTS_PER_INDIRECT_PAGE == 512);
};
