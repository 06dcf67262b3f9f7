//! The network device protocol (`io/netif.h`): the requests and responses of a network frontend's two
//! shared rings, their flags, and the ring sizes.
//!
//! The protocol, in a screenful:
//!
//! - The frontend grants two ring pages (`tx-ring-ref`, `rx-ring-ref`) and gives one event channel
//!   (`event-channel`; or `event-channel-tx` and `event-channel-rx` when the backend offers
//!   `feature-split-event-channels`). A page holds 256 slots on either ring ([`TX_RING_SIZE`],
//!   [`RX_RING_SIZE`]: 336 and 504 fit, rounded down to a power of two).
//! - **Transmit** (frontend → backend): a frame is one or more [`NetifTxRequest`]s, each naming a granted
//!   page, an offset and a size inside it (never across the page's end). The first request's `size` is
//!   the **whole frame's** length, the others' their own part; every request but the last has
//!   [`NETTXF_MORE_DATA`]. [`NETTXF_EXTRA_INFO`] says a [`NetifExtraInfo`] follows in the next slot (GSO,
//!   multicast filters). Each request gets a [`NetifTxResponse`] echoing its `id`, status
//!   [`NETIF_RSP_OKAY`], [`NETIF_RSP_ERROR`] or [`NETIF_RSP_DROPPED`] (and [`NETIF_RSP_NULL`] for an extra
//!   slot). A backend accepts at least [`XEN_NETIF_NR_SLOTS_MIN`] slots per frame.
//! - **Receive** (backend → frontend), copy mode (`request-rx-copy` = 1, the only mode Linux's netback
//!   has): the frontend posts [`NetifRxRequest`]s, each an empty granted page; the backend copies a
//!   frame into one or more of them and answers each with a [`NetifRxResponse`]: `offset` into the page,
//!   `status` the bytes there (negative: an error), [`NETRXF_MORE_DATA`] when the frame goes on in the
//!   next response. Responses come in request order: the page of a response is the one posted at the
//!   same ring index (an extra-info response carries no `id`).
//! - **Checksums**: [`NETTXF_CSUM_BLANK`]/[`NETRXF_CSUM_BLANK`] say the L4 checksum field is not filled in
//!   (offload; the receiver must compute it), [`NETTXF_DATA_VALIDATED`]/[`NETRXF_DATA_VALIDATED`] that the
//!   data was checked. A frontend that writes `feature-no-csum-offload` = 1 gets complete checksums only.
//!
//! The layouts are the same on 32-bit ARM, AArch64 and x86-64: a host test compiles `io/netif.h` with
//! clang for the three and compares every field and constant.
//!
//! ```
//! use xen_hypercall::xen::netif::{self, NetifTxRequest, NETTXF_MORE_DATA};
//! use xen_hypercall::xen::grant_table::GrantRef;
//! // A 1514-byte frame starting 3000 bytes into one page: 1096 bytes there, 418 in the next.
//! let first = NetifTxRequest::new(GrantRef(9), 3000, NETTXF_MORE_DATA, 0, 1514);
//! let second = NetifTxRequest::new(GrantRef(10), 0, 0, 1, 418);
//! assert_eq!((first.size, second.size), (1514, 418));
//! assert_eq!((netif::TX_RING_SIZE, netif::RX_RING_SIZE), (256, 256));
//! ```

use core::mem::size_of;

use super::grant_table::GrantRef;
use super::ring::{self, Slot};

/// `XEN_NETIF_NR_SLOTS_MIN`: the slots of one frame every backend accepts.
pub const XEN_NETIF_NR_SLOTS_MIN: usize = 18;
/// `XEN_NETIF_MAX_TX_SIZE`: the largest frame a transmit request's `size` can say.
pub const XEN_NETIF_MAX_TX_SIZE: usize = 0xFFFF;

/// `NETTXF_csum_blank`: the frame's L4 checksum is blank (the backend fills it in).
pub const NETTXF_CSUM_BLANK: u16 = 1 << 0;
/// `NETTXF_data_validated`: the frame's data was validated against its checksum.
pub const NETTXF_DATA_VALIDATED: u16 = 1 << 1;
/// `NETTXF_more_data`: the frame continues in the next request.
pub const NETTXF_MORE_DATA: u16 = 1 << 2;
/// `NETTXF_extra_info`: a [`NetifExtraInfo`] follows in the next slot.
pub const NETTXF_EXTRA_INFO: u16 = 1 << 3;

/// `NETRXF_data_validated`: the frame's data was validated against its checksum.
pub const NETRXF_DATA_VALIDATED: u16 = 1 << 0;
/// `NETRXF_csum_blank`: the frame's L4 checksum is blank (the frontend must compute it).
pub const NETRXF_CSUM_BLANK: u16 = 1 << 1;
/// `NETRXF_more_data`: the frame continues in the next response.
pub const NETRXF_MORE_DATA: u16 = 1 << 2;
/// `NETRXF_extra_info`: a [`NetifExtraInfo`] follows in the next slot.
pub const NETRXF_EXTRA_INFO: u16 = 1 << 3;
/// `NETRXF_gso_prefix`: a GSO prefix descriptor (old protocol; never asked for here).
pub const NETRXF_GSO_PREFIX: u16 = 1 << 4;

/// `XEN_NETIF_EXTRA_TYPE_NONE`: never used.
pub const XEN_NETIF_EXTRA_TYPE_NONE: u8 = 0;
/// `XEN_NETIF_EXTRA_TYPE_GSO`.
pub const XEN_NETIF_EXTRA_TYPE_GSO: u8 = 1;
/// `XEN_NETIF_EXTRA_TYPE_MCAST_ADD`.
pub const XEN_NETIF_EXTRA_TYPE_MCAST_ADD: u8 = 2;
/// `XEN_NETIF_EXTRA_TYPE_MCAST_DEL`.
pub const XEN_NETIF_EXTRA_TYPE_MCAST_DEL: u8 = 3;
/// `XEN_NETIF_EXTRA_TYPE_HASH`.
pub const XEN_NETIF_EXTRA_TYPE_HASH: u8 = 4;
/// `XEN_NETIF_EXTRA_TYPE_MAX`.
pub const XEN_NETIF_EXTRA_TYPE_MAX: u8 = 5;
/// `XEN_NETIF_EXTRA_FLAG_MORE`: another extra-info slot follows.
pub const XEN_NETIF_EXTRA_FLAG_MORE: u8 = 1 << 0;
/// `XEN_NETIF_GSO_TYPE_NONE`.
pub const XEN_NETIF_GSO_TYPE_NONE: u8 = 0;
/// `XEN_NETIF_GSO_TYPE_TCPV4`.
pub const XEN_NETIF_GSO_TYPE_TCPV4: u8 = 1;
/// `XEN_NETIF_GSO_TYPE_TCPV6`.
pub const XEN_NETIF_GSO_TYPE_TCPV6: u8 = 2;

/// `NETIF_RSP_DROPPED`: the frame was dropped.
pub const NETIF_RSP_DROPPED: i16 = -2;
/// `NETIF_RSP_ERROR`: the request was malformed or failed.
pub const NETIF_RSP_ERROR: i16 = -1;
/// `NETIF_RSP_OKAY`.
pub const NETIF_RSP_OKAY: i16 = 0;
/// `NETIF_RSP_NULL`: the response to an extra-info slot.
pub const NETIF_RSP_NULL: i16 = 1;

/// `struct netif_tx_request` (12 bytes): part of a frame to transmit.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetifTxRequest {
    /// The granted page holding this part.
    pub gref: GrantRef,
    /// Where in the page the part starts.
    pub offset: u16,
    /// `NETTXF_*`.
    pub flags: u16,
    /// Echoed in the response.
    pub id: u16,
    /// First request: the whole frame's length; the others: their part's.
    pub size: u16,
}

impl NetifTxRequest {
    /// A request of the given fields.
    #[inline]
    pub const fn new(gref: GrantRef, offset: u16, flags: u16, id: u16, size: u16) -> Self {
        NetifTxRequest {
            gref,
            offset,
            flags,
            id,
            size,
        }
    }
}

/// `struct netif_tx_response` (4 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetifTxResponse {
    /// The request's `id`.
    pub id: u16,
    /// `NETIF_RSP_*`.
    pub status: i16,
}

/// `struct netif_rx_request` (8 bytes): an empty granted page for the backend to fill.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetifRxRequest {
    /// Echoed in the response.
    pub id: u16,
    /// `pad`.
    pub _pad: u16,
    /// The granted page (read-write for the backend).
    pub gref: GrantRef,
}

impl NetifRxRequest {
    /// A request for the page of `gref`.
    #[inline]
    pub const fn new(id: u16, gref: GrantRef) -> Self {
        NetifRxRequest { id, _pad: 0, gref }
    }
}

/// `struct netif_rx_response` (8 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetifRxResponse {
    /// The request's `id`.
    pub id: u16,
    /// Where in the page the data starts.
    pub offset: u16,
    /// `NETRXF_*`.
    pub flags: u16,
    /// The bytes in the page (`NETIF_RSP_*` when negative).
    pub status: i16,
}

/// `struct netif_extra_info` (8 bytes): a slot of extra information after a request or response with
/// `NETTXF_extra_info`/`NETRXF_extra_info`. The union `u` is kept as its three 16-bit words
/// (`u.pad`); the accessors read its members.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetifExtraInfo {
    /// `XEN_NETIF_EXTRA_TYPE_*`.
    pub r#type: u8,
    /// `XEN_NETIF_EXTRA_FLAG_*`.
    pub flags: u8,
    /// The union (`gso`, `mcast`, `hash`), as `pad[3]`.
    pub u: [u16; 3],
}

impl NetifExtraInfo {
    /// `u.gso.size`: the GSO segment size.
    pub const fn gso_size(&self) -> u16 {
        self.u[0]
    }
    /// `u.gso.type` (`XEN_NETIF_GSO_TYPE_*`).
    pub const fn gso_type(&self) -> u8 {
        self.u[1].to_le_bytes()[0]
    }
    /// `u.gso.features`.
    pub const fn gso_features(&self) -> u16 {
        self.u[2]
    }
    /// `u.mcast.addr`.
    pub const fn mcast_addr(&self) -> [u8; 6] {
        let (a, b, c) = (
            self.u[0].to_le_bytes(),
            self.u[1].to_le_bytes(),
            self.u[2].to_le_bytes(),
        );
        [a[0], a[1], b[0], b[1], c[0], c[1]]
    }
    /// The extra-info slot a receive response slot holds (both are 8 bytes, 2-aligned).
    pub const fn from_rx_response(r: NetifRxResponse) -> Self {
        let (a, b) = (r.id.to_le_bytes(), r.offset);
        NetifExtraInfo {
            r#type: a[0],
            flags: a[1],
            u: [b, r.flags, r.status as u16],
        }
    }
}

crate::impl_plain! {
    NetifTxRequest { gref: GrantRef, offset: u16, flags: u16, id: u16, size: u16 };
    NetifTxResponse { id: u16, status: i16 };
    NetifRxRequest { id: u16, _pad: u16, gref: GrantRef };
    NetifRxResponse { id: u16, offset: u16, flags: u16, status: i16 };
    NetifExtraInfo { r#type: u8, flags: u8, u: [u16; 3] };
}

/// `__CONST_RING_SIZE(netif_tx, XEN_PAGE_SIZE)`: 256.
pub const TX_RING_SIZE: u32 = ring::ring_size(
    ring::PAGE_SIZE,
    size_of::<Slot<NetifTxRequest, NetifTxResponse>>(),
);
/// `__CONST_RING_SIZE(netif_rx, XEN_PAGE_SIZE)`: 256.
pub const RX_RING_SIZE: u32 = ring::ring_size(
    ring::PAGE_SIZE,
    size_of::<Slot<NetifRxRequest, NetifRxResponse>>(),
);
