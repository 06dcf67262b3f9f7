//! A network frontend (the [`netif`] protocol) over a backend such as Linux's `netback`: the xenbus
//! handshake, raw Ethernet frames sent and received through the caller's buffers, and a teardown that
//! hands pages back only once no domain can reach them.
//!
//! The convention:
//!
//! - **Memory.** The program gives the frontend pages, `&'static mut` ([`Pages`]): one per ring, a
//!   transmit pool and a receive pool. All are granted to the backend once, when the frontend is made
//!   (the transmit pool read-only), and stay granted until [`NetFront::close`], which ends each grant and
//!   returns the pages whose access really ended ([`Returned`]); a page the backend still maps is never
//!   handed back (its [`Grant`] is leaked instead). A caller's buffer is never shared with another domain:
//!   frames are copied. The frontend's bookkeeping (the grants, the requests in flight, about 13 KiB) is
//!   in a [`Tables`] the program also gives (`&'static mut`, usually a `static` made by the `const`
//!   [`Tables::new`]): it is built in place, never copied, and a [`NetFront`] itself is a few hundred
//!   bytes, so connecting needs no deep stack.
//! - **Transmit.** The transmit pool is one byte ring over its pages: each frame is copied where the
//!   previous one ended, so small frames share a page, and a frame that crosses a page's end goes out as
//!   several requests (`NETTXF_more_data`; the first request's `size` the whole frame's). A frame never
//!   starts fewer than [`MIN_FIRST_SLOT`] bytes before a page's end (the headers stay in its first
//!   request), and starts at its buffer's alignment to 8 (up to 7 bytes skipped), so that it is copied a
//!   word at a time. Requests are reclaimed in ring order as their responses come ([`NETIF_RSP_OKAY`]; an error
//!   or drop is counted in [`Stats`]); a response naming no request in flight is
//!   [`NetError::Protocol`]. [`NetFront::queue`] adds a frame, [`NetFront::flush`] publishes the queued
//!   requests with one `RING_PUSH_REQUESTS_AND_CHECK_NOTIFY` (one notification per batch, only when the
//!   backend asked); [`NetFront::send`] is both. A frame longer than the MTU and its Ethernet header is
//!   [`NetError::TooLarge`]; no room in the ring or the pool after reclaiming is [`NetError::Full`]
//!   (`EAGAIN`: try again after the backend answered). [`NetFront::has_room`] says beforehand whether a
//!   frame would go, for a program that must build it only then (a TCP/IP stack's transmit token).
//! - **Receive** (copy mode, `request-rx-copy`): every receive page is posted as a request; the backend
//!   copies each frame into one or more of them. [`NetFront::receive`] looks at the responses of one whole
//!   frame before taking any (`NETRXF_more_data` chains, `NETRXF_extra_info` slots skipped), copies it into
//!   the caller's buffer, and gives its pages back to the pool; the pool is posted again in batches of
//!   [`Options::rx_refill`] pages (or when the ring runs low), one push and at most one notification per
//!   batch. An incomplete frame is left in the ring until its last response comes. A frame larger than
//!   the caller's buffer is dropped and is [`NetError::BufferTooSmall`]. With [`Options::gso_tcpv4`]
//!   (`feature-gso-tcpv4`) the backend may hand over TCP in segments of up to 64 KiB, over several
//!   pages and a `XEN_NETIF_EXTRA_TYPE_GSO` slot ([`Frame::gso_size`]): fewer frames and fewer
//!   acknowledgements for the same bytes, as Linux's netfront takes them.
//! - **Checksums.** With [`Options::csum_offload`] (the default) the frontend writes
//!   `feature-no-csum-offload` = 0: the backend may hand it TCP and UDP over IPv4 with the checksum left
//!   blank (`NETRXF_csum_blank`, Linux's `CHECKSUM_PARTIAL`: the field holds the pseudo-header's sum), and
//!   [`NetFront::receive_frame`] fills each one in (`skb_checksum_help`'s sum over the segment, folded and
//!   inverted; a UDP result of 0 is sent as `0xffff`), so the program's stack checks it as any other. So
//!   the backend's side (dom0's TCP/IP stack, its bridge) skips checksumming what it sends the domain.
//!   Without it, `feature-no-csum-offload` = 1 and every frame comes complete. No
//!   `feature-ipv6-csum-offload`. Frames are sent with no checksum flag (the program fills in its
//!   checksums). `NETRXF_data_validated` is reported with the frame ([`Frame`]).
//! - **Waiting and the backend going away.** Nothing here blocks: [`NetFront::receive`] says `None` when
//!   no frame is there, and [`NetFront::prepare_wait`] asks the backend for an event before the program
//!   sleeps on [`NetFront::ports`] (bounded, with `sched_poll`). The program watches the backend's state
//!   ([`NetFront::watch_backend`]) and calls [`NetFront::check_backend`] on a watch event: once the
//!   backend is `Closing` or `Closed` (the toolstack detaching the device), every call is
//!   [`NetError::BackendGone`] and no page is used again; [`NetFront::close`] then hands back what it can.
//! - **xenbus** ([`NetFront::connect`], `device/vif/<id>`): reads `mac` and `mtu` (default 1500) from its
//!   own directory, waits for the backend's `InitWait`, writes `tx-ring-ref`, `rx-ring-ref`,
//!   `event-channel` (or `event-channel-tx`/`event-channel-rx` when the backend offers
//!   `feature-split-event-channels` and [`Options::split_channels`]), `request-rx-copy` = 1,
//!   `feature-rx-notify` = 1, `feature-sg` = 1, `feature-no-csum-offload` in one transaction,
//!   switches to `Connected` and waits for the backend's `Connected`.
//! - **Queues.** [`NetFront::connect`] uses one queue (`multi-queue-num-queues` not written: the
//!   backend's default). [`queues::MultiQueue::connect`] takes as many as the backend offers
//!   (`multi-queue-max-queues`) up to the program's count: a [`NetFront`] per queue, with its own rings,
//!   event channel(s) and pools, each queue's keys under `queue-<i>/`.

use arrayvec::ArrayVec;
use core::fmt;

use super::evtchn::{self, Port};
use super::grant_table::{Grant, GrantRef, GrantTable};
use super::netif::{
    NETIF_RSP_OKAY, NETRXF_CSUM_BLANK, NETRXF_DATA_VALIDATED, NETRXF_EXTRA_INFO, NETRXF_MORE_DATA,
    NETTXF_MORE_DATA, NetifExtraInfo, NetifRxRequest, NetifRxResponse, NetifTxRequest,
    NetifTxResponse, RX_RING_SIZE, TX_RING_SIZE, XEN_NETIF_EXTRA_FLAG_MORE,
    XEN_NETIF_EXTRA_TYPE_GSO, XEN_NETIF_MAX_TX_SIZE, XEN_NETIF_NR_SLOTS_MIN,
};
use super::ring::{FrontRing, PAGE_SIZE, RingIdx, SharedArea};
use super::xenbus::{self, Frontend, XenbusState};
use super::xenstore::{Store, Xenstore};
use super::{DomId, Error, Page};

#[cfg(doc)]
use super::netif::{self, NETIF_RSP_DROPPED, NETIF_RSP_ERROR};

pub mod queues;

/// The most pages of the transmit pool.
pub const MAX_TX_PAGES: usize = 64;
/// The most pages of the receive pool (one per receive ring slot).
pub const MAX_RX_PAGES: usize = RX_RING_SIZE as usize;
/// The Ethernet header's length (destination, source, type).
pub const ETH_HLEN: usize = 14;
/// The MTU when the toolstack gives none (`io/netif.h`).
pub const DEFAULT_MTU: u16 = 1500;
/// The fewest bytes of a frame in its first transmit request (when the frame is longer): a frame is not
/// started closer than this to a page's end, so that its headers are in one piece.
pub const MIN_FIRST_SLOT: usize = 128;
/// The longest frame received with [`Options::gso_tcpv4`]: an IPv4 packet of 65535 bytes and the
/// Ethernet header.
pub const MAX_GSO_FRAME: usize = 65535 + ETH_HLEN;

/// What went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetError {
    /// A hypercall or xenstore request failed.
    Xen(Error),
    /// The frame is longer than the MTU and its Ethernet header (`max`), than a request can say, or than
    /// the transmit pool holds.
    TooLarge {
        /// The frame's length.
        len: usize,
        /// The longest frame allowed.
        max: usize,
    },
    /// The frame is shorter than an Ethernet header.
    TooShort,
    /// The transmit ring or pool is full of frames the backend has not answered yet (`EAGAIN`): try again
    /// after its next event.
    Full,
    /// The received frame (now dropped) is longer than the caller's buffer.
    BufferTooSmall {
        /// The frame's length.
        needed: usize,
    },
    /// The backend is closing or closed (the device is being detached), or broke the protocol: nothing
    /// more is sent or received.
    BackendGone,
    /// The backend broke the protocol (a response naming no request, data outside its page, an index
    /// out of range); the frontend now counts the backend as gone.
    Protocol,
    /// The pages given do not fit: no transmit or receive page, or more than [`MAX_TX_PAGES`] or
    /// [`MAX_RX_PAGES`].
    BadPages,
}

impl From<Error> for NetError {
    fn from(e: Error) -> NetError {
        NetError::Xen(e)
    }
}

impl From<NetError> for Error {
    /// `EMSGSIZE` for a frame too large, `EINVAL` too short or bad pages, `EAGAIN` full, `ENOBUFS` for a
    /// buffer too small, `ENOTCONN` for a backend gone, `EIO` for a protocol error.
    fn from(e: NetError) -> Error {
        match e {
            NetError::Xen(e) => e,
            NetError::TooLarge { .. } => Error::EMSGSIZE,
            NetError::TooShort | NetError::BadPages => Error::EINVAL,
            NetError::Full => Error::EAGAIN,
            NetError::BufferTooSmall { .. } => Error::ENOBUFS,
            NetError::BackendGone => Error::ENOTCONN,
            NetError::Protocol => Error::EIO,
        }
    }
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetError::Xen(e) => write!(f, "{e}"),
            NetError::TooLarge { len, max } => {
                write!(f, "frame of {len} bytes is larger than {max}")
            }
            NetError::TooShort => f.write_str("frame shorter than an Ethernet header"),
            NetError::Full => f.write_str("transmit ring full of unanswered frames"),
            NetError::BufferTooSmall { needed } => {
                write!(
                    f,
                    "received frame of {needed} bytes does not fit the buffer"
                )
            }
            NetError::BackendGone => f.write_str("backend gone"),
            NetError::Protocol => f.write_str("backend broke the protocol"),
            NetError::BadPages => f.write_str("pages given do not fit"),
        }
    }
}

impl core::error::Error for NetError {}

/// The result of the frontend's calls.
pub type Result<T> = core::result::Result<T, NetError>;

/// The pages the program gives the frontend.
pub struct Pages {
    /// The transmit ring's.
    pub tx_ring: &'static mut Page,
    /// The receive ring's.
    pub rx_ring: &'static mut Page,
    /// The transmit pool (1 to [`MAX_TX_PAGES`]).
    pub tx: &'static mut [Page],
    /// The receive pool (1 to [`MAX_RX_PAGES`]).
    pub rx: &'static mut [Page],
    /// The frontend's bookkeeping (cleared when the frontend is made).
    pub tables: &'static mut Tables,
}

/// The frontend's bookkeeping, given by the program ([`Pages::tables`]) so that it is built where it
/// stays (about 13 KiB): the grants of both pools, the transmit requests in flight, the receive pages
/// posted. Nothing in it is shared with another domain.
pub struct Tables {
    tx_pages: ArrayVec<Grant, MAX_TX_PAGES>,
    rx_pages: ArrayVec<Grant, MAX_RX_PAGES>,
    /// Transmit requests by ring index (the request's `id`).
    tx_slots: [TxSlot; TX_RING_SIZE as usize],
    /// The receive page posted at each ring index ([`NO_PAGE`]: none).
    rx_posted: [u16; RX_RING_SIZE as usize],
    /// Receive pages not posted.
    rx_free: ArrayVec<u16, MAX_RX_PAGES>,
}

impl Tables {
    /// Empty tables, for a `static`: `static mut TABLES: Tables = Tables::new();`.
    pub const fn new() -> Tables {
        Tables {
            tx_pages: ArrayVec::new_const(),
            rx_pages: ArrayVec::new_const(),
            tx_slots: [TxSlot::EMPTY; TX_RING_SIZE as usize],
            rx_posted: [NO_PAGE; RX_RING_SIZE as usize],
            rx_free: ArrayVec::new_const(),
        }
    }

    /// Back to [`Tables::new`]'s state, in place. The grants still held are dropped (left in place).
    fn clear(&mut self) {
        self.tx_pages.clear();
        self.rx_pages.clear();
        self.tx_slots.fill(TxSlot::EMPTY);
        self.rx_posted.fill(NO_PAGE);
        self.rx_free.clear();
    }
}

impl Default for Tables {
    fn default() -> Tables {
        Tables::new()
    }
}

/// What the frontend asks for.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Use two event channels (transmit and receive) when the backend offers them.
    pub split_channels: bool,
    /// Receive pages given back before they are posted again (one push, at most one notification).
    pub rx_refill: usize,
    /// Let the backend leave the checksums of TCP and UDP over IPv4 blank (`feature-no-csum-offload` =
    /// 0); the frontend fills them in on receipt.
    pub csum_offload: bool,
    /// Take TCP over IPv4 in segments of up to 64 KiB (`feature-gso-tcpv4`): the backend hands over what
    /// the sending stack built before it is cut into frames of the MTU, one frame over several pages
    /// ([`Frame::gso_size`]: the size the frames would have had), fewer frames for the same bytes. The
    /// caller's buffers must then take [`MAX_GSO_FRAME`] bytes, or such frames are dropped
    /// ([`NetError::BufferTooSmall`]). Needs [`csum_offload`](Self::csum_offload) (Linux's netback
    /// offers GSO only with checksum offload).
    pub gso_tcpv4: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            split_channels: true,
            rx_refill: 16,
            csum_offload: true,
            gso_tcpv4: false,
        }
    }
}

/// Counters (frames and bytes each way, errors, notifications, grants).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Frames queued for transmission.
    pub tx_frames: u64,
    /// Their bytes.
    pub tx_bytes: u64,
    /// Transmit requests made (a frame crossing a page's end takes two).
    pub tx_slots: u64,
    /// Transmit responses with an error or drop status.
    pub tx_errors: u64,
    /// Frames received.
    pub rx_frames: u64,
    /// Their bytes.
    pub rx_bytes: u64,
    /// Receive responses taken (a frame may take several).
    pub rx_slots: u64,
    /// Received frames with an error status, dropped.
    pub rx_errors: u64,
    /// Received frames dropped because the caller's buffer was too small.
    pub rx_too_big: u64,
    /// Event channel notifications sent to the backend.
    pub notifications: u64,
    /// Pushes of receive requests (refill batches).
    pub rx_refills: u64,
    /// Received frames whose blank checksum (`NETRXF_csum_blank`) the frontend filled in.
    pub rx_csum_filled: u64,
    /// Received frames that were GSO segments ([`Frame::gso_size`] not 0).
    pub rx_gso: u64,
}

/// A received frame: its length in the caller's buffer and the backend's checksum flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Its length.
    pub len: usize,
    /// `NETRXF_data_validated`: the backend says its checksums were checked.
    pub data_validated: bool,
    /// `NETRXF_csum_blank` on a frame the frontend could not fill in (not TCP or UDP over IPv4): its L4
    /// checksum is blank, the program's to fill in or ignore. `false` once filled in.
    pub csum_blank: bool,
    /// For a GSO segment ([`Options::gso_tcpv4`]): the payload size of the frames it stands for
    /// (`XEN_NETIF_EXTRA_TYPE_GSO`'s `size`); 0 for an ordinary frame.
    pub gso_size: u16,
}

/// What the handshake learnt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Info {
    /// The frontend's MAC address (`mac`).
    pub mac: [u8; 6],
    /// The MTU (`mtu`, or [`DEFAULT_MTU`]).
    pub mtu: u16,
    /// The transmit event channel (also the receive one unless split).
    pub tx_port: Port,
    /// The receive event channel.
    pub rx_port: Port,
    /// Whether the channels are split.
    pub split: bool,
    /// The backend's domain.
    pub backend: DomId,
}

/// The pages [`NetFront::close`] handed back, and how many it could not (still mapped by the backend).
pub struct Returned {
    /// The ring pages whose access ended.
    pub rings: ArrayVec<&'static mut Page, 2>,
    /// The transmit pool's.
    pub tx: ArrayVec<&'static mut Page, MAX_TX_PAGES>,
    /// The receive pool's.
    pub rx: ArrayVec<&'static mut Page, MAX_RX_PAGES>,
    /// Grants left in place for good (their pages never reused).
    pub leaked: usize,
    /// The backend reached `Closed` (only through [`NetFront::close`] with xenbus).
    pub backend_closed: bool,
    /// The frontend's bookkeeping, empty again (for another frontend).
    pub tables: &'static mut Tables,
}

/// A transmit request in flight: where its part of the pool ends.
#[derive(Clone, Copy, Default)]
struct TxSlot {
    end: u64,
    in_flight: bool,
    done: bool,
}

impl TxSlot {
    const EMPTY: TxSlot = TxSlot {
        end: 0,
        in_flight: false,
        done: false,
    };
}

const NO_PAGE: u16 = u16::MAX;

/// A connected network frontend.
pub struct NetFront {
    info: Info,
    stats: Stats,
    options: Options,
    /// Over the page of `tx_ring_grant`, which is ended only after the ring is dropped (`close`).
    tx: Option<FrontRing<'static, NetifTxRequest, NetifTxResponse>>,
    /// Over the page of `rx_ring_grant`, likewise.
    rx: Option<FrontRing<'static, NetifRxRequest, NetifRxResponse>>,
    tx_ring_grant: Option<Grant>,
    rx_ring_grant: Option<Grant>,
    /// The pools' grants and the requests' bookkeeping (the program's, see [`Tables`]).
    t: &'static mut Tables,
    /// The oldest transmit request not yet reclaimed.
    tx_oldest: RingIdx,
    /// The transmit pool's byte ring: the next byte written, the oldest byte still in flight.
    tx_head: u64,
    tx_tail: u64,
    /// Requests queued and not yet pushed.
    tx_queued: bool,
    frontend: Option<Frontend>,
    gone: bool,
}

/// The one's-complement sum of `data` as big-endian 16-bit words, the last byte of an odd length padded
/// with a zero (RFC 1071), folded to 16 bits and not inverted: what an Internet checksum is made of.
/// Eight bytes at a time (aligned 64-bit loads, the lanes' byte order put right once at the end, as
/// Linux's `do_csum`), so that a 64 KiB GSO segment costs about 8 K loads.
pub fn internet_sum(data: &[u8]) -> u16 {
    let fold = |mut s: u64| {
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        s as u16
    };
    // A byte at an even offset is a word's high byte.
    let bytes = |from: usize, b: &[u8]| -> u64 {
        b.iter()
            .enumerate()
            .map(|(i, &x)| u64::from(x) << if (from + i).is_multiple_of(2) { 8 } else { 0 })
            .sum()
    };
    // SAFETY: every bit pattern is a valid u64; the words are read in place, aligned.
    let (head, words, tail) = unsafe { data.align_to::<u64>() };
    // Each word's two 32-bit halves added (at most 2^33 a word: no overflow below 2^31 words).
    let mut lanes: u64 = 0;
    for w in words {
        lanes += (w & 0xffff_ffff) + (w >> 32);
    }
    // The lanes hold 16-bit words of memory order: big-endian ones when the words start at an even
    // offset on a big-endian machine or an odd one on a little-endian one; byte-swapped otherwise.
    let even = head.len().is_multiple_of(2);
    let lanes = if even == cfg!(target_endian = "little") {
        fold(lanes).swap_bytes()
    } else {
        fold(lanes)
    };
    let rest = bytes(0, head) + bytes(head.len() + words.len() * 8, tail);
    fold(u64::from(lanes) + rest)
}

/// What the frontend reads of the IPv4 header of an Ethernet frame ([`fill_checksum`], and the flow a
/// multi-queue frontend sends a frame by).
#[derive(Clone, Copy)]
struct Ipv4 {
    /// The header's length (IHL), in bytes.
    header: usize,
    /// The packet's length (total length).
    total: usize,
    /// The protocol (6 TCP, 17 UDP).
    proto: u8,
    /// More fragments, or a fragment offset: not a whole datagram.
    fragmented: bool,
}

impl Ipv4 {
    /// The header of IPv4 in `frame`: `None` for another EtherType or IP version, or a frame shorter than
    /// the fixed header.
    fn of(frame: &[u8]) -> Option<Ipv4> {
        let ip = frame.get(ETH_HLEN..ETH_HLEN + 20)?;
        if frame[12..14] != [0x08, 0x00] || ip[0] >> 4 != 4 {
            return None;
        }
        Some(Ipv4 {
            header: usize::from(ip[0] & 0x0f) * 4,
            total: usize::from(u16::from_be_bytes([ip[2], ip[3]])),
            proto: ip[9],
            fragmented: u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0,
        })
    }
}

/// Fills in the TCP or UDP checksum of an Ethernet frame carrying IPv4 that the backend left blank
/// (`NETRXF_csum_blank`: the field holds the folded sum of the pseudo-header, as Linux's
/// `CHECKSUM_PARTIAL` leaves it): the one's-complement sum of the segment, that field included, folded and
/// inverted, as Linux's `skb_checksum_help` completes it; a UDP checksum of 0 is written `0xffff` (0 means
/// none). `false`, the frame untouched, for anything else (another EtherType, a fragment, a header that
/// does not add up).
fn fill_checksum(frame: &mut [u8]) -> bool {
    let Some(ip) = Ipv4::of(frame) else {
        return false;
    };
    let (udp, field) = match ip.proto {
        6 => (false, 16),
        17 => (true, 6),
        _ => return false,
    };
    // A fragment's segment is not all here.
    if ip.header < 20 || ip.total < ip.header + field + 2 || ip.fragmented {
        return false;
    }
    let Some(segment) = frame.get_mut(ETH_HLEN + ip.header..ETH_HLEN + ip.total) else {
        return false;
    };
    let check = match !internet_sum(segment) {
        0 if udp => 0xffff,
        c => c,
    };
    segment[field..field + 2].copy_from_slice(&check.to_be_bytes());
    true
}

/// The frontend's watch token on its backend's state.
pub const WATCH_TOKEN: &[u8] = b"netfront";

impl NetFront {
    /// The handshake with the backend of `device/vif/<id>` (see the module's documentation), with one
    /// queue: reads the MAC address and MTU, grants the pages, allocates the event channel(s), writes the
    /// frontend's keys, and waits for the backend to connect; every wait is bounded by the client's
    /// `wait`. The backend's state stays watched ([`WATCH_TOKEN`]). On failure the grants made are left in
    /// place (their pages never reused) and the ports closed. [`queues::MultiQueue::connect`] for more queues.
    pub fn connect<W: FnMut() -> core::result::Result<(), Error>, const N: usize>(
        xs: &mut Xenstore<'_, W>,
        table: &mut GrantTable<N>,
        id: &str,
        pages: Pages,
        options: Options,
    ) -> Result<NetFront> {
        let (fe, mut queues, _) = handshake(xs, table, id, [pages], options)?;
        let mut net = queues.pop().ok_or(NetError::BadPages)?;
        net.frontend = Some(fe);
        Ok(net)
    }

    /// One queue of the handshake: its event channel(s) allocated, then [`new`](Self::new) (the ports
    /// closed again if that fails).
    fn queue_of<const N: usize>(
        table: &mut GrantTable<N>,
        mac: [u8; 6],
        mtu: u16,
        backend: DomId,
        split: bool,
        pages: Pages,
        options: Options,
    ) -> Result<NetFront> {
        let tx_port = evtchn::alloc_unbound(DomId::SELF, backend)?;
        let rx_port = if split {
            match evtchn::alloc_unbound(DomId::SELF, backend) {
                Ok(p) => p,
                Err(e) => {
                    let _ = evtchn::close(tx_port);
                    return Err(e.into());
                }
            }
        } else {
            tx_port
        };
        let info = Info {
            mac,
            mtu,
            tx_port,
            rx_port,
            split,
            backend,
        };
        NetFront::new(table, info, pages, options).inspect_err(|_| {
            let _ = evtchn::close(tx_port);
            if split {
                let _ = evtchn::close(rx_port);
            }
        })
    }

    /// The frontend over `pages` without xenbus, for a backend found another way (and the host tests):
    /// grants the rings read-write, the transmit pool read-only and the receive pool read-write to
    /// `info.backend`, and initialises both rings; nothing is posted yet ([`NetFront::refill`]). On
    /// failure the grants made are left in place (their pages never reused).
    pub fn new<const N: usize>(
        table: &mut GrantTable<N>,
        info: Info,
        pages: Pages,
        options: Options,
    ) -> Result<NetFront> {
        let Pages {
            tx_ring,
            rx_ring,
            tx,
            rx,
            tables,
        } = pages;
        tables.clear();
        if tx.is_empty() || rx.is_empty() || tx.len() > MAX_TX_PAGES || rx.len() > MAX_RX_PAGES {
            return Err(NetError::BadPages);
        }
        let dom = info.backend;
        let mut net = NetFront {
            info,
            stats: Stats::default(),
            options,
            tx: None,
            rx: None,
            tx_ring_grant: None,
            rx_ring_grant: None,
            t: tables,
            tx_oldest: 0,
            tx_head: 0,
            tx_tail: 0,
            tx_queued: false,
            frontend: None,
            gone: false,
        };
        let g = table.grant(dom, tx_ring, false).map_err(Error::from)?;
        let base = g.page().ok_or(NetError::BadPages)?;
        net.tx_ring_grant = Some(g);
        // SAFETY: `base` is the `&'static mut` page given up to the grant held in `tx_ring_grant` (no
        // reference to it exists any more); the grant is ended only in `close`, after this ring is
        // dropped, and the ring never leaves `self`.
        let area = unsafe { SharedArea::new(base, 1) }?;
        net.tx = Some(FrontRing::init(area)?);
        let g = table.grant(dom, rx_ring, false).map_err(Error::from)?;
        let base = g.page().ok_or(NetError::BadPages)?;
        net.rx_ring_grant = Some(g);
        // SAFETY: as for the transmit ring.
        let area = unsafe { SharedArea::new(base, 1) }?;
        net.rx = Some(FrontRing::init(area)?);
        for p in tx.iter_mut() {
            let g = table.grant(dom, p, true).map_err(Error::from)?;
            net.t.tx_pages.push(g);
        }
        for p in rx.iter_mut() {
            let g = table.grant(dom, p, false).map_err(Error::from)?;
            net.t.rx_free.push(net.t.rx_pages.len() as u16);
            net.t.rx_pages.push(g);
        }
        net.t.rx_free.reverse();
        Ok(net)
    }

    /// What the handshake learnt.
    pub fn info(&self) -> &Info {
        &self.info
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The ports to wait on (the same one twice unless split).
    pub fn ports(&self) -> [Port; 2] {
        [self.info.tx_port, self.info.rx_port]
    }

    /// The longest frame [`send`](Self::send) takes: the MTU and the Ethernet header.
    pub fn max_frame(&self) -> usize {
        usize::from(self.info.mtu) + ETH_HLEN
    }

    /// The transmit ring's grant reference (`tx-ring-ref`).
    pub fn tx_ring_ref(&self) -> GrantRef {
        self.tx_ring_grant
            .as_ref()
            .map(Grant::gref)
            .unwrap_or(GrantRef(0))
    }

    /// The receive ring's grant reference (`rx-ring-ref`).
    pub fn rx_ring_ref(&self) -> GrantRef {
        self.rx_ring_grant
            .as_ref()
            .map(Grant::gref)
            .unwrap_or(GrantRef(0))
    }

    /// Whether the backend counts as gone.
    pub fn is_gone(&self) -> bool {
        self.gone
    }

    /// Counts the backend as gone: nothing more is sent or received, and no page is used again.
    pub fn set_gone(&mut self) {
        self.gone = true;
    }

    fn live(&self) -> Result<()> {
        if self.gone {
            Err(NetError::BackendGone)
        } else {
            Ok(())
        }
    }

    /// A protocol error: the backend counts as gone from now on.
    fn broken(&mut self) -> NetError {
        self.gone = true;
        NetError::Protocol
    }

    fn notify(&mut self, port: Port) -> Result<()> {
        self.stats.notifications += 1;
        evtchn::send(port)?;
        Ok(())
    }

    /// Reads the backend's state (after a watch event): `Closing` or `Closed`, or its directory gone,
    /// makes the backend count as gone. Returns whether it is. Without xenbus ([`new`](Self::new)):
    /// whether it was counted as gone.
    pub fn check_backend(&mut self, store: &mut impl Store) -> Result<bool> {
        if let Some(fe) = &self.frontend {
            match fe.backend_state(store) {
                Ok(s) if s.is_closing() => self.gone = true,
                Err(Error::ENOENT) => self.gone = true,
                Ok(_) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(self.gone)
    }

    /// Watches the backend's state with [`WATCH_TOKEN`] (already done by [`connect`](Self::connect)).
    pub fn watch_backend<W: FnMut() -> core::result::Result<(), Error>>(
        &self,
        xs: &mut Xenstore<'_, W>,
    ) -> Result<()> {
        if let Some(fe) = &self.frontend {
            fe.watch_backend(xs, WATCH_TOKEN)?;
        }
        Ok(())
    }

    // ------------------------------------------------------------------------------------- transmit

    /// Takes the transmit responses waiting and reclaims the pool's bytes of every frame answered, in
    /// ring order. `Protocol` for a response naming no request in flight.
    pub fn reclaim(&mut self) -> Result<usize> {
        self.live()?;
        let mut n = 0;
        loop {
            let Some(ring) = self.tx.as_mut() else {
                return Err(NetError::BackendGone);
            };
            let rsp = match ring.take_response() {
                Ok(Some(r)) => r,
                Ok(None) => break,
                Err(_) => return Err(self.broken()),
            };
            let i = usize::from(rsp.id);
            match self.t.tx_slots.get_mut(i) {
                Some(s) if s.in_flight && !s.done => s.done = true,
                _ => return Err(self.broken()),
            }
            if rsp.status != NETIF_RSP_OKAY {
                self.stats.tx_errors += 1;
            }
            n += 1;
        }
        let prod = self.tx.as_ref().map_or(0, FrontRing::req_prod_pvt);
        while self.tx_oldest != prod {
            let s = &mut self.t.tx_slots[(self.tx_oldest % TX_RING_SIZE) as usize];
            if !s.done {
                break;
            }
            self.tx_tail = s.end;
            *s = TxSlot::default();
            self.tx_oldest = self.tx_oldest.wrapping_add(1);
        }
        Ok(n)
    }

    /// Frames' requests still unanswered.
    pub fn tx_in_flight(&self) -> u32 {
        let prod = self.tx.as_ref().map_or(0, FrontRing::req_prod_pvt);
        prod.wrapping_sub(self.tx_oldest)
    }

    /// Where a frame of `len` bytes whose buffer lies `skew` bytes past an 8-byte boundary would go in
    /// the transmit pool's byte ring: at the first byte from the head with the same skew (the pages are
    /// aligned, so the copy moves whole words: `grant_table::write_shared`), or likewise from the next
    /// page when fewer than MIN_FIRST_SLOT bytes (or the whole frame) fit before this page's end.
    fn place(&self, len: usize, skew: u64) -> (u64, u64) {
        let page = PAGE_SIZE as u64;
        let len = len as u64;
        let at = |from: u64| from + (skew.wrapping_sub(from) & 7);
        let mut start = at(self.tx_head);
        let left = page - start % page;
        if left < len.min(MIN_FIRST_SLOT as u64) {
            start = at(start + left);
        }
        (start, start + len)
    }

    /// Whether a frame of `len` bytes from a buffer at `skew` (see [`place`](Self::place)) fits the pool
    /// and the ring now.
    fn fits(&self, len: usize, skew: u64) -> bool {
        let cap = (self.t.tx_pages.len() * PAGE_SIZE) as u64;
        let (start, end) = self.place(len, skew);
        // At most 17 for a frame of at most 0xFFFF bytes: within what every backend takes.
        const {
            assert!(
                (PAGE_SIZE - 1 + XEN_NETIF_MAX_TX_SIZE).div_ceil(PAGE_SIZE)
                    <= XEN_NETIF_NR_SLOTS_MIN
            )
        };
        let slots = ((start % PAGE_SIZE as u64) as usize + len).div_ceil(PAGE_SIZE) as u32;
        end - self.tx_tail <= cap && self.tx.as_ref().is_some_and(|r| r.free_requests() >= slots)
    }

    /// Whether [`queue`](Self::queue) would take a frame of `len` bytes now (after reclaiming what the
    /// backend answered), for a program that builds a frame only when it can go out (such as a TCP/IP
    /// stack's transmit token). `false` also for a frame too large or too short; `BackendGone`.
    pub fn has_room(&mut self, len: usize) -> Result<bool> {
        self.live()?;
        if len < ETH_HLEN || len > self.max_tx() {
            return Ok(false);
        }
        // Wherever the program's buffer will lie.
        let fits = |s: &Self| (0..8).all(|skew| s.fits(len, skew));
        if !fits(self) {
            self.reclaim()?;
        }
        Ok(fits(self))
    }

    /// The longest frame [`queue`](Self::queue) takes: the MTU and the header, and what the pool holds
    /// wherever a frame starts (up to MIN_FIRST_SLOT - 1 bytes skipped before a page's end, and 7 to
    /// match the buffer's alignment).
    fn max_tx(&self) -> usize {
        let pool = (self.t.tx_pages.len() * PAGE_SIZE).saturating_sub(MIN_FIRST_SLOT + 7);
        self.max_frame().min(XEN_NETIF_MAX_TX_SIZE).min(pool)
    }

    /// Copies `frame` (a whole Ethernet frame, header included) into the transmit pool and queues its
    /// request(s), without publishing them ([`flush`](Self::flush)). `TooLarge`, `TooShort`, `Full` (the
    /// frame is not queued), `BackendGone`.
    pub fn queue(&mut self, frame: &[u8]) -> Result<()> {
        self.live()?;
        let max = self.max_tx();
        if frame.len() > max {
            return Err(NetError::TooLarge {
                len: frame.len(),
                max,
            });
        }
        if frame.len() < ETH_HLEN {
            return Err(NetError::TooShort);
        }
        let len = frame.len() as u64;
        let page = PAGE_SIZE as u64;
        let skew = frame.as_ptr() as u64 & 7;
        let (start, end) = self.place(frame.len(), skew);
        if !self.fits(frame.len(), skew) {
            self.reclaim()?;
            if !self.fits(frame.len(), skew) {
                return Err(NetError::Full);
            }
        }
        let Some(ring) = self.tx.as_mut() else {
            return Err(NetError::BackendGone);
        };
        let mut pos = start;
        let mut done = 0usize;
        while done < frame.len() {
            let off = (pos % page) as usize;
            let part = (PAGE_SIZE - off).min(frame.len() - done);
            let p = ((pos / page) % self.t.tx_pages.len() as u64) as usize;
            let g = &self.t.tx_pages[p];
            g.write(off, &frame[done..done + part])?;
            let last = done + part == frame.len();
            let idx = ring.req_prod_pvt();
            let id = (idx % TX_RING_SIZE) as u16;
            let req = NetifTxRequest::new(
                g.gref(),
                off as u16,
                if last { 0 } else { NETTXF_MORE_DATA },
                id,
                // The first request says the whole frame's length.
                if done == 0 {
                    frame.len() as u16
                } else {
                    part as u16
                },
            );
            if ring.next_request(req).is_err() {
                // Checked above: cannot happen; count the backend as broken rather than panic.
                return Err(self.broken());
            }
            self.t.tx_slots[usize::from(id)] = TxSlot {
                end: pos + part as u64,
                in_flight: true,
                done: false,
            };
            self.stats.tx_slots += 1;
            pos += part as u64;
            done += part;
        }
        self.tx_head = end;
        self.tx_queued = true;
        self.stats.tx_frames += 1;
        self.stats.tx_bytes += len;
        Ok(())
    }

    /// Publishes the queued requests; notifies the backend (once) if it asked. Returns whether it did.
    pub fn flush(&mut self) -> Result<bool> {
        self.live()?;
        if !self.tx_queued {
            return Ok(false);
        }
        self.tx_queued = false;
        let Some(ring) = self.tx.as_mut() else {
            return Err(NetError::BackendGone);
        };
        if ring.push_requests_and_check_notify() {
            self.notify(self.info.tx_port)?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Sends one frame: [`queue`](Self::queue) and [`flush`](Self::flush).
    pub fn send(&mut self, frame: &[u8]) -> Result<()> {
        self.queue(frame)?;
        self.flush()?;
        Ok(())
    }

    // -------------------------------------------------------------------------------------- receive

    /// Posts the free receive pages: when `force`, or when at least [`Options::rx_refill`] are free, or
    /// when fewer than a quarter of the pool is posted. One push, and one notification if the backend
    /// asked. Returns how many were posted.
    pub fn refill(&mut self, force: bool) -> Result<usize> {
        self.live()?;
        let free = self.t.rx_free.len();
        let posted = self.t.rx_pages.len() - free;
        if free == 0
            || !(force
                || free >= self.options.rx_refill.max(1)
                || posted < self.t.rx_pages.len() / 4)
        {
            return Ok(0);
        }
        let Some(ring) = self.rx.as_mut() else {
            return Err(NetError::BackendGone);
        };
        let mut n = 0;
        while !ring.is_full() {
            let Some(p) = self.t.rx_free.pop() else { break };
            let idx = ring.req_prod_pvt();
            let id = (idx % RX_RING_SIZE) as u16;
            let gref = self.t.rx_pages[usize::from(p)].gref();
            if ring.next_request(NetifRxRequest::new(id, gref)).is_err() {
                self.t.rx_free.push(p);
                break;
            }
            self.t.rx_posted[usize::from(id)] = p;
            n += 1;
        }
        if n > 0 {
            self.stats.rx_refills += 1;
            if ring.push_requests_and_check_notify() {
                self.notify(self.info.rx_port)?;
            }
        }
        Ok(n)
    }

    /// Receives one frame into `buf` if a whole one is there: its length and flags, `None` if not.
    /// `BufferTooSmall` (the frame is dropped), `BackendGone`, `Protocol`. Frames the backend marked as
    /// errors are dropped and counted ([`Stats::rx_errors`]).
    pub fn receive_frame(&mut self, buf: &mut [u8]) -> Result<Option<Frame>> {
        self.live()?;
        let _ = self.reclaim()?;
        loop {
            let Some(ring) = self.rx.as_ref() else {
                return Err(NetError::BackendGone);
            };
            // Look at the whole frame first: its slots, its length, whether it is complete.
            let mut slots = 0u32;
            let mut len = 0usize;
            let mut error = false;
            let mut first_flags = None;
            let mut gso_size = 0;
            let complete = 'frame: loop {
                let rsp = match ring.peek_response(slots) {
                    Ok(Some(r)) => r,
                    Ok(None) => break false,
                    Err(_) => return Err(self.broken()),
                };
                slots += 1;
                first_flags.get_or_insert(rsp.flags);
                if rsp.status < 0 {
                    error = true;
                } else {
                    len += rsp.status as usize;
                }
                if rsp.flags & NETRXF_EXTRA_INFO != 0 {
                    // Extra-info slots follow, chained by their own flag.
                    let mut more = true;
                    while more {
                        let x = match ring.peek_response(slots) {
                            Ok(Some(r)) => NetifExtraInfo::from_rx_response(r),
                            Ok(None) => break 'frame false,
                            Err(_) => return Err(self.broken()),
                        };
                        slots += 1;
                        if x.r#type == XEN_NETIF_EXTRA_TYPE_GSO {
                            gso_size = x.gso_size();
                        }
                        more = x.flags & XEN_NETIF_EXTRA_FLAG_MORE != 0;
                    }
                }
                if slots > RX_RING_SIZE {
                    return Err(self.broken());
                }
                if rsp.flags & NETRXF_MORE_DATA == 0 {
                    break true;
                }
            };
            if !complete {
                return Ok(None);
            }
            let flags = first_flags.unwrap_or(0);
            let fits = !error && len <= buf.len();
            // Copy (when it fits) and take the frame's responses, giving their pages back.
            let mut at = 0usize;
            let mut extra = false;
            for _ in 0..slots {
                let Some(ring) = self.rx.as_mut() else {
                    return Err(NetError::BackendGone);
                };
                let idx = ring.rsp_cons();
                let rsp: NetifRxResponse = match ring.take_response() {
                    Ok(Some(r)) => r,
                    _ => return Err(self.broken()),
                };
                let slot = (idx % RX_RING_SIZE) as usize;
                let p = core::mem::replace(&mut self.t.rx_posted[slot], NO_PAGE);
                if p == NO_PAGE {
                    return Err(self.broken());
                }
                self.t.rx_free.push(p);
                self.stats.rx_slots += 1;
                if extra {
                    extra = NetifExtraInfo::from_rx_response(rsp).flags & XEN_NETIF_EXTRA_FLAG_MORE
                        != 0;
                    continue;
                }
                extra = rsp.flags & NETRXF_EXTRA_INFO != 0;
                if !fits || rsp.status <= 0 {
                    continue;
                }
                let (off, n) = (usize::from(rsp.offset), rsp.status as usize);
                if off + n > PAGE_SIZE || at + n > buf.len() {
                    return Err(self.broken());
                }
                self.t.rx_pages[usize::from(p)].read(off, &mut buf[at..at + n])?;
                at += n;
            }
            self.refill(false)?;
            if error {
                self.stats.rx_errors += 1;
                continue;
            }
            if !fits {
                self.stats.rx_too_big += 1;
                return Err(NetError::BufferTooSmall { needed: len });
            }
            self.stats.rx_frames += 1;
            self.stats.rx_bytes += len as u64;
            let blank = flags & NETRXF_CSUM_BLANK != 0;
            let filled = blank && fill_checksum(&mut buf[..len]);
            self.stats.rx_csum_filled += u64::from(filled);
            self.stats.rx_gso += u64::from(gso_size != 0);
            return Ok(Some(Frame {
                len,
                data_validated: flags & NETRXF_DATA_VALIDATED != 0,
                csum_blank: blank && !filled,
                gso_size,
            }));
        }
    }

    /// [`receive_frame`](Self::receive_frame), its length only.
    pub fn receive(&mut self, buf: &mut [u8]) -> Result<Option<usize>> {
        Ok(self.receive_frame(buf)?.map(|f| f.len))
    }

    /// Before the program sleeps on [`ports`](Self::ports): asks the backend to notify on its next
    /// responses on both rings and looks again (`RING_FINAL_CHECK_FOR_RESPONSES`). `true`: something is
    /// there already, do not sleep.
    pub fn prepare_wait(&mut self) -> Result<bool> {
        self.live()?;
        let (Some(tx), Some(rx)) = (self.tx.as_mut(), self.rx.as_mut()) else {
            return Err(NetError::BackendGone);
        };
        let t = tx.final_check_for_responses();
        let r = rx.final_check_for_responses();
        match (t, r) {
            (Ok(t), Ok(r)) => Ok(t || r),
            _ => Err(self.broken()),
        }
    }

    // ------------------------------------------------------------------------------------- teardown

    fn close_ports(&mut self) {
        let _ = evtchn::close(self.info.tx_port);
        if self.info.split {
            let _ = evtchn::close(self.info.rx_port);
        }
    }

    /// Tears down: with xenbus, [`Frontend::close`] (state `Closing`, the backend's `Closing`/`Closed`
    /// awaited, `Closed`, the backend's `Closed` awaited, each bounded by the client's `wait`); then ends
    /// every grant (a few tries, through `pause`, while the backend still maps a page), closes the event
    /// channel(s), and hands back the pages whose grant ended.
    pub fn close<W: FnMut() -> core::result::Result<(), Error>, const N: usize>(
        mut self,
        xs: Option<&mut Xenstore<'_, W>>,
        table: &mut GrantTable<N>,
        pause: impl FnMut() -> bool,
    ) -> Returned {
        // `end` counts the backend as gone, before anything else.
        let backend_closed = match (self.frontend.take(), xs) {
            (Some(fe), Some(xs)) => close_frontend(&fe, xs),
            _ => false,
        };
        self.end(table, pause, backend_closed)
    }

    /// The grants ended and the ports closed, after the backend let go (or was given up on).
    fn end<const N: usize>(
        mut self,
        table: &mut GrantTable<N>,
        mut pause: impl FnMut() -> bool,
        backend_closed: bool,
    ) -> Returned {
        self.gone = true;
        // The rings first: their pages are handed back below.
        self.tx = None;
        self.rx = None;
        let mut rings = ArrayVec::new();
        let mut tx = ArrayVec::new();
        let mut rx = ArrayVec::new();
        let mut leaked = 0;
        let mut end = |g: Grant| -> Option<&'static mut Page> {
            let mut g = g;
            for _ in 0..8 {
                match table.end_access(g) {
                    Ok(p) => return p,
                    Err(r) if r.error == Error::EBUSY => {
                        g = r.grant;
                        if !pause() {
                            break;
                        }
                    }
                    Err(r) => {
                        g = r.grant;
                        break;
                    }
                }
            }
            // Still mapped: the grant stays in place for good, the page is never handed back.
            drop(g);
            None
        };
        for g in [self.tx_ring_grant.take(), self.rx_ring_grant.take()]
            .into_iter()
            .flatten()
        {
            match end(g) {
                Some(p) => rings.push(p),
                None => leaked += 1,
            }
        }
        for g in self.t.tx_pages.drain(..) {
            match end(g) {
                Some(p) => tx.push(p),
                None => leaked += 1,
            }
        }
        for g in self.t.rx_pages.drain(..) {
            match end(g) {
                Some(p) => rx.push(p),
                None => leaked += 1,
            }
        }
        self.close_ports();
        self.t.clear();
        Returned {
            rings,
            tx,
            rx,
            leaked,
            backend_closed,
            tables: self.t,
        }
    }
}

/// The xenbus side of a teardown ([`Frontend::close`]), and the watch removed: whether the backend
/// reached `Closed` (or the toolstack removed its directory).
fn close_frontend<W: FnMut() -> core::result::Result<(), Error>>(
    fe: &Frontend,
    xs: &mut Xenstore<'_, W>,
) -> bool {
    let closed = match fe.close(xs) {
        Ok(()) => true,
        Err(e) => {
            // Closed all the same when the backend did not follow (the key still there).
            if e != Error::ENOENT {
                let _ = fe.switch_state(xs, XenbusState::CLOSED);
            }
            // The toolstack removed the backend's directory: the device is gone.
            matches!(
                fe.backend_state(xs),
                Ok(XenbusState::CLOSED) | Err(Error::ENOENT)
            )
        }
    };
    let _ = fe.unwatch_backend(xs, WATCH_TOKEN);
    closed
}

/// What [`handshake`] gives: the frontend, its queues, and the pages of the queues not used.
type Handshake<const Q: usize> = (Frontend, ArrayVec<NetFront, Q>, ArrayVec<Pages, Q>);

/// The handshake of [`NetFront::connect`] and [`queues::MultiQueue::connect`] with up to `Q` queues (as many as
/// the backend's `multi-queue-max-queues` allows, at least one): the frontend, its queues, and the pages
/// of the queues not used (untouched).
fn handshake<W: FnMut() -> core::result::Result<(), Error>, const N: usize, const Q: usize>(
    xs: &mut Xenstore<'_, W>,
    table: &mut GrantTable<N>,
    id: &str,
    pages: [Pages; Q],
    options: Options,
) -> Result<Handshake<Q>> {
    if Q == 0 {
        return Err(NetError::BadPages);
    }
    let fe = Frontend::new(xs, "vif", id)?;
    let mac = read_mac(xs, fe.key("mac")?.as_bytes())?;
    let mtu = match xenbus::read_u64_or(xs, fe.key("mtu")?.as_bytes(), DEFAULT_MTU.into())? {
        m if (68..=u64::from(u16::MAX)).contains(&m) => m as u16,
        _ => return Err(NetError::Xen(Error::EINVAL)),
    };
    let backend = fe.backend_id();
    fe.watch_backend(xs, WATCH_TOKEN)?;
    fe.wait_for_backend(xs, &[XenbusState::INIT_WAIT, XenbusState::CONNECTED])?;
    let split = options.split_channels
        && xenbus::read_flag_or(
            xs,
            fe.backend_key("feature-split-event-channels")?.as_bytes(),
            false,
        )?;
    let offered = xenbus::read_u64_or(xs, fe.backend_key("multi-queue-max-queues")?.as_bytes(), 1)?;
    let used = (offered.min(Q as u64) as usize).max(1);
    let mut queues = ArrayVec::<NetFront, Q>::new();
    let mut unused = ArrayVec::<Pages, Q>::new();
    let give_up = |queues: &mut ArrayVec<NetFront, Q>| {
        for q in queues.iter_mut() {
            q.gone = true;
            q.close_ports();
        }
    };
    for p in pages {
        if queues.len() == used {
            unused.push(p);
            continue;
        }
        match NetFront::queue_of(table, mac, mtu, backend, split, p, options) {
            Ok(q) => queues.push(q),
            Err(e) => {
                give_up(&mut queues);
                return Err(e);
            }
        }
    }
    let r = write_keys(xs, &fe, &queues, options)
        .and_then(|()| Ok(fe.switch_state(xs, XenbusState::CONNECTED)?))
        .and_then(|()| Ok(fe.wait_for_backend(xs, &[XenbusState::CONNECTED])?));
    if let Err(e) = r {
        give_up(&mut queues);
        return Err(e);
    }
    for q in queues.iter_mut() {
        q.refill(true)?;
    }
    Ok((fe, queues, unused))
}

/// The frontend's keys in one transaction: each queue's ring references and event channel(s), at the
/// top of its directory for one queue, under `queue-<i>/` after `multi-queue-num-queues` for more
/// (Linux's `talk_to_netback`); then the features.
fn write_keys<W: FnMut() -> core::result::Result<(), Error>>(
    xs: &mut Xenstore<'_, W>,
    fe: &Frontend,
    queues: &[NetFront],
    options: Options,
) -> Result<()> {
    let multi = queues.len() > 1;
    let key = |i: usize, name: &str| -> core::result::Result<xenbus::Path, Error> {
        if !multi {
            return fe.key(name);
        }
        let mut k = arrayvec::ArrayString::<40>::new();
        fmt::Write::write_fmt(&mut k, format_args!("queue-{i}/{name}"))
            .map_err(|_| Error::ERANGE)?;
        fe.key(&k)
    };
    xs.transaction(|t| {
        if multi {
            let k = fe.key("multi-queue-num-queues")?;
            xenbus::printf(t, k.as_bytes(), format_args!("{}", queues.len()))?;
        }
        for (i, q) in queues.iter().enumerate() {
            let (tx, rx, info) = (q.tx_ring_ref(), q.rx_ring_ref(), q.info);
            xenbus::printf(
                t,
                key(i, "tx-ring-ref")?.as_bytes(),
                format_args!("{}", tx.0),
            )?;
            xenbus::printf(
                t,
                key(i, "rx-ring-ref")?.as_bytes(),
                format_args!("{}", rx.0),
            )?;
            if info.split {
                let (k_tx, k_rx) = (key(i, "event-channel-tx")?, key(i, "event-channel-rx")?);
                xenbus::printf(t, k_tx.as_bytes(), format_args!("{}", info.tx_port.0))?;
                xenbus::printf(t, k_rx.as_bytes(), format_args!("{}", info.rx_port.0))?;
            } else {
                let k = key(i, "event-channel")?;
                xenbus::printf(t, k.as_bytes(), format_args!("{}", info.tx_port.0))?;
            }
        }
        for k in ["request-rx-copy", "feature-rx-notify", "feature-sg"] {
            t.write(fe.key(k)?.as_bytes(), b"1")?;
        }
        let no_offload: &[u8] = if options.csum_offload { b"0" } else { b"1" };
        t.write(fe.key("feature-no-csum-offload")?.as_bytes(), no_offload)?;
        if options.gso_tcpv4 {
            t.write(fe.key("feature-gso-tcpv4")?.as_bytes(), b"1")?;
        }
        Ok(())
    })?;
    Ok(())
}

/// The MAC address at `path` (`aa:bb:cc:dd:ee:ff`, hexadecimal, either case). `EINVAL` for anything
/// else.
pub fn read_mac(store: &mut impl Store, path: &[u8]) -> Result<[u8; 6]> {
    let mut buf = [0u8; 24];
    let n = store.read(path, &mut buf)?;
    parse_mac(&buf[..n]).ok_or(NetError::Xen(Error::EINVAL))
}

/// `aa:bb:cc:dd:ee:ff` as six bytes.
pub fn parse_mac(text: &[u8]) -> Option<[u8; 6]> {
    if text.len() != 17 {
        return None;
    }
    let hex = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let mut mac = [0u8; 6];
    for (i, m) in mac.iter_mut().enumerate() {
        let t = &text[i * 3..];
        if i < 5 && t[2] != b':' {
            return None;
        }
        *m = hex(t[0])? << 4 | hex(t[1])?;
    }
    Some(mac)
}
