//! A block device frontend (the [`blkif`] protocol) over a backend such as Linux's
//! `blkback`: the xenbus handshake, reads and writes of any sector range into the caller's buffers, flush,
//! and a teardown that hands pages back only once no domain can reach them.
//!
//! The convention:
//!
//! - **Memory.** The program gives the frontend pages, `&'static mut` ([`Pages`]): the ring's (1, 2, 4, 8 or
//!   16, contiguous), a pool of data pages, and optionally indirect pages. All are granted to the backend
//!   once, at [`BlkFront::connect`], and stay granted until [`BlkFront::close`], which ends each grant and
//!   returns the pages whose access really ended ([`Returned`]); a page the backend still maps is never
//!   handed back (its [`Grant`] is leaked instead).
//! - **Persistent grants, always.** Data moves by copying between the caller's buffer and the pool's
//!   granted pages, as Linux's `blkfront` does when `feature-persistent` is negotiated ("bounce buffer"):
//!   the same grant references serve every request, so a backend that keeps them mapped (blkback with
//!   `feature-persistent`, which this frontend always advertises) maps each page once instead of mapping
//!   and unmapping (with a TLB flush) per request, and the frontend writes no grant entry per request.
//!   It is also what makes the API safe: a caller's `&mut [u8]` is never shared with another domain, and
//!   no request outlives the call that made it. A backend without persistent grants maps the same
//!   references per request; nothing changes here.
//! - **Requests.** A transfer is split into requests of up to 11 segments (44 KiB), or, when the backend
//!   offers `feature-max-indirect-segments` and indirect pages were given, indirect requests of up to
//!   [`MAX_SEGMENTS`] segments. As many requests as the ring, the pool and [`MAX_INFLIGHT`] allow are queued,
//!   then published with one `RING_PUSH_REQUESTS_AND_CHECK_NOTIFY`: the backend is notified once per batch,
//!   and only when it asked (`req_event`). Responses are matched by `id` (slot and generation) in any
//!   order; [`BLKIF_RSP_ERROR`] is [`BlkError::Io`], [`BLKIF_RSP_EOPNOTSUPP`] is
//!   [`BlkError::NotSupported`], and a response that names no request in flight is
//!   [`BlkError::Protocol`]. Every request of a call is answered before the call returns, also when one
//!   failed, so that no page is reused while the backend may still write it.
//! - **Waiting.** The program's `wait(port)` waits (bounded) for the backend's event: `Ok(true)` when it
//!   came, `Ok(false)` when the time allowed passed. After [`Options::patience`] waits in a row with
//!   nothing answered, or when the backend's state has become `Closing`/`Closed` (xenbus, watched), the
//!   frontend gives up: [`BlkError::BackendGone`], and the pages of the requests still in flight are
//!   never used again.
//! - **xenbus.** The handshake goes through [`Xenbus`], a small interface (read, write, switch state,
//!   watch, changed, pause) that a host test can fake; [`XenstoreBus`] implements it over the library's
//!   xenstore client, switching states as [`xenbus::Frontend::switch_state`] does. States are
//!   [`XenbusState`]s. Frontend: `ring-ref` (or `ring-page-order` and `ring-ref0..`), `event-channel`,
//!   `protocol`, `feature-persistent`, state `Initialised`; backend: `max-ring-page-order` at `InitWait`,
//!   then at `Connected` `sectors`, `sector-size`, `info`, `feature-flush-cache`, `feature-barrier`,
//!   `feature-persistent`, `feature-max-indirect-segments`, `feature-discard` (with
//!   `discard-granularity`, `discard-alignment`, `discard-secure`); frontend state `Connected`.
//! - **Flush and discard** are one request each, with no data pages: [`BlkFront::flush`]
//!   (`BLKIF_OP_FLUSH_DISKCACHE`) and [`BlkFront::discard`] (`BLKIF_OP_DISCARD`, a sector range the
//!   disk may forget: it reads back as zeros or as before, the backend's choice), refused with
//!   [`BlkError::NotSupported`] and nothing sent when the backend does not offer them.
//!
//! Sector numbers and lengths are in 512-byte units (the protocol's, without
//! `feature-large-sector-size`); a transfer must also be aligned to the backend's `sector-size`.

use arrayvec::ArrayVec;
use core::ptr::{self, NonNull};

use super::blkif::{
    AsRequest, BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST, BLKIF_MAX_SEGMENTS_PER_REQUEST,
    BLKIF_OP_DISCARD, BLKIF_OP_FLUSH_DISKCACHE, BLKIF_OP_INDIRECT, BLKIF_OP_READ, BLKIF_OP_WRITE,
    BLKIF_RSP_EOPNOTSUPP, BLKIF_RSP_ERROR, BLKIF_RSP_OKAY, BlkifRequest, BlkifRequestDiscard,
    BlkifRequestIndirect, BlkifRequestSegment, BlkifResponse, MAX_RING_PAGE_ORDER, SECTOR_SIZE,
    VDISK_READONLY,
};
use super::evtchn::{self, Port};
use super::grant_table::{Grant, GrantRef, GrantTable};
use super::ring::{FrontRing, PAGE_SIZE, SharedArea};
use super::xenbus::{self, XenbusState};
use super::xenstore::Xenstore;
use super::{DomId, Error, Page, Result};

#[cfg(doc)]
use super::blkif;

/// The most requests in flight at once.
pub const MAX_INFLIGHT: usize = 32;
/// The most segments of one request this frontend makes (an indirect request: one indirect page).
pub const MAX_SEGMENTS: usize = 64;
/// The most data pages the pool may have.
pub const MAX_DATA_PAGES: usize = 256;
/// The most indirect pages (one per indirect request in flight).
pub const MAX_INDIRECT_PAGES: usize = MAX_INFLIGHT;
/// The most ring pages (`ring-page-order` 4).
pub const MAX_RING_PAGES: usize = 1 << MAX_RING_PAGE_ORDER;

/// What the handshake needs of xenbus: xenstore reads and writes of absolute or domain-relative paths,
/// a watch on the backend's state, and a way to wait.
pub trait Xenbus {
    /// Reads `path` into `buf`; returns its length (`ENOENT` when absent).
    fn read(&mut self, path: &[u8], buf: &mut [u8]) -> Result<usize>;
    /// Writes `value` at `path`.
    fn write(&mut self, path: &[u8], value: &[u8]) -> Result<()>;
    /// Switches the `state` key at `path` to `state` (by default a plain write of its decimal value;
    /// [`XenstoreBus`] does it as [`xenbus::Frontend::switch_state`] does, in a transaction that writes
    /// only a different state and never re-creates a removed key).
    fn switch_state(&mut self, path: &[u8], state: XenbusState) -> Result<()> {
        self.write(path, &decimal(state.0.into()))
    }
    /// Watches `path`: [`changed`](Xenbus::changed) says when it may have changed.
    fn watch(&mut self, path: &[u8]) -> Result<()>;
    /// Whether a watched path may have changed since the last call. Cheap (called between batches).
    fn changed(&mut self) -> Result<bool>;
    /// Called while waiting for the other end's state: gives the CPU away (or waits for a watch event).
    /// `ETIMEDOUT` ends the wait (the caller's time limit).
    fn pause(&mut self) -> Result<()>;
}

/// [`Xenbus`] over the library's [`Xenstore`] client: `pause` is the program's (bounded) pause, the watch
/// token is `blkfront`.
pub struct XenstoreBus<'x, 'a, W, P> {
    /// The client.
    pub xs: &'x mut Xenstore<'a, W>,
    /// Gives the CPU away between looks at the backend's state; `ETIMEDOUT` when the time is up.
    pub pause: P,
}

impl<W: FnMut() -> Result<()>, P: FnMut() -> Result<()>> Xenbus for XenstoreBus<'_, '_, W, P> {
    fn read(&mut self, path: &[u8], buf: &mut [u8]) -> Result<usize> {
        self.xs.read(path, buf)
    }
    fn write(&mut self, path: &[u8], value: &[u8]) -> Result<()> {
        self.xs.write(path, value)
    }
    fn switch_state(&mut self, path: &[u8], state: XenbusState) -> Result<()> {
        self.xs.transaction(|tx| {
            if xenbus::read_state(tx, path)? == state {
                return Ok(());
            }
            xenbus::printf(tx, path, format_args!("{}", state.0))
        })
    }
    fn watch(&mut self, path: &[u8]) -> Result<()> {
        self.xs.watch(path, b"blkfront")
    }
    fn changed(&mut self) -> Result<bool> {
        let mut any = self.xs.watch_overflow();
        let mut buf = [0u8; 256];
        while self.xs.next_watch_event(&mut buf)?.is_some() {
            any = true;
        }
        Ok(any)
    }
    fn pause(&mut self) -> Result<()> {
        (self.pause)()
    }
}

/// The pages the program gives the frontend.
pub struct Pages {
    /// The ring's: `1 << order` of them are used, `order` the largest both sides allow (see
    /// [`Options::ring_page_order`]); the rest come back unused at [`BlkFront::close`].
    pub ring: &'static mut [Page],
    /// The data pool (at most [`MAX_DATA_PAGES`]; at least one).
    pub data: &'static mut [Page],
    /// Pages for indirect segments (at most [`MAX_INDIRECT_PAGES`]; none: no indirect requests).
    pub indirect: &'static mut [Page],
}

/// What the frontend asks for.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// The largest `ring-page-order` to use (0 to 4), if the backend's `max-ring-page-order` and the
    /// ring pages given allow.
    pub ring_page_order: u32,
    /// Advertise `feature-persistent` (the pool's grants are kept either way).
    pub persistent: bool,
    /// The most segments of an indirect request (0: none; capped at [`MAX_SEGMENTS`] and at the
    /// backend's `feature-max-indirect-segments`).
    pub indirect_segments: u32,
    /// Consecutive waits with nothing answered before the backend counts as gone.
    pub patience: u32,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            ring_page_order: MAX_RING_PAGE_ORDER,
            persistent: true,
            indirect_segments: MAX_SEGMENTS as u32,
            patience: 4,
        }
    }
}

/// What the handshake found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Info {
    /// The backend's domain.
    pub backend: DomId,
    /// The event channel.
    pub port: Port,
    /// The disk's size in `sector_size` units (`sectors`).
    pub sectors: u64,
    /// The backend's `sector-size` (a power of two, at least 512).
    pub sector_size: u32,
    /// `info` (`VDISK_*`).
    pub info: u32,
    /// `feature-flush-cache`.
    pub flush: bool,
    /// `feature-barrier`.
    pub barrier: bool,
    /// `feature-discard`.
    pub discard: bool,
    /// `discard-granularity`, in bytes (0: not said).
    pub discard_granularity: u32,
    /// `discard-alignment`, in bytes (0: not said).
    pub discard_alignment: u32,
    /// `discard-secure`: the backend can erase securely (not used by this frontend).
    pub discard_secure: bool,
    /// `feature-persistent` of the backend.
    pub backend_persistent: bool,
    /// `feature-max-indirect-segments` (0: not offered).
    pub max_indirect_segments: u32,
    /// The backend's `max-ring-page-order`.
    pub max_ring_page_order: u32,
    /// The `ring-page-order` used.
    pub ring_page_order: u32,
    /// The ring's slots.
    pub ring_entries: u32,
    /// The most segments of one request used (11, or more with indirect requests).
    pub segments_per_request: u32,
}

impl Info {
    /// The disk's size in 512-byte sectors.
    pub fn sectors_512(&self) -> u64 {
        self.sectors
            .saturating_mul(u64::from(self.sector_size / SECTOR_SIZE as u32))
    }
}

/// What the frontend did: the counters behind "notifications per MiB" and "grant operations per
/// request".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Requests queued.
    pub requests: u64,
    /// Of which indirect.
    pub indirect_requests: u64,
    /// Segments.
    pub segments: u64,
    /// Batches published (`RING_PUSH_REQUESTS_AND_CHECK_NOTIFY`).
    pub batches: u64,
    /// Notifications sent (`EVTCHNOP_send`).
    pub notifications: u64,
    /// Calls of the program's `wait`.
    pub waits: u64,
    /// Responses taken.
    pub responses: u64,
    /// Bytes moved.
    pub bytes: u64,
    /// Grant entries written (all at `connect`).
    pub grants: u64,
    /// Grant entries ended (all at `close`).
    pub grant_ends: u64,
}

/// Why a frontend operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlkError {
    /// A hypercall or xenstore request failed.
    Xen(Error),
    /// The backend answered `BLKIF_RSP_ERROR` for the request starting at this 512-byte sector.
    Io {
        /// The request's first sector.
        sector: u64,
    },
    /// The backend answered `BLKIF_RSP_EOPNOTSUPP`, or does not offer the operation.
    NotSupported,
    /// The range goes past the end of the disk.
    OutOfRange,
    /// A length not a multiple of 512, or a range not aligned to the backend's `sector-size`.
    Unaligned,
    /// A write to a read-only disk (`VDISK_READONLY`).
    ReadOnly,
    /// The backend is closing or closed, or stopped answering: nothing more can be done but
    /// [`BlkFront::close`].
    BackendGone,
    /// The backend broke the protocol (a response to no request in flight, an unknown status, impossible
    /// ring indices, a bad value in xenstore).
    Protocol,
    /// The pages given do not fit ([`Pages`]: no ring or data page, too many).
    BadPages,
}

impl From<Error> for BlkError {
    fn from(e: Error) -> BlkError {
        BlkError::Xen(e)
    }
}

impl From<BlkError> for Error {
    /// The nearest errno.
    fn from(e: BlkError) -> Error {
        match e {
            BlkError::Xen(e) => e,
            BlkError::Io { .. } => Error::EIO,
            BlkError::NotSupported => Error::EOPNOTSUPP,
            BlkError::OutOfRange => Error::ENOSPC,
            BlkError::Unaligned | BlkError::BadPages => Error::EINVAL,
            BlkError::ReadOnly => Error::EROFS,
            BlkError::BackendGone => Error::ENODEV,
            BlkError::Protocol => Error::EIO,
        }
    }
}

impl core::fmt::Display for BlkError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BlkError::Xen(e) => write!(f, "xen: {e:?}"),
            BlkError::Io { sector } => write!(f, "I/O error at sector {sector}"),
            BlkError::NotSupported => f.write_str("operation not supported by the backend"),
            BlkError::OutOfRange => f.write_str("past the end of the disk"),
            BlkError::Unaligned => f.write_str("not aligned to the sector size"),
            BlkError::ReadOnly => f.write_str("read-only disk"),
            BlkError::BackendGone => f.write_str("the backend is gone"),
            BlkError::Protocol => f.write_str("the backend broke the protocol"),
            BlkError::BadPages => f.write_str("unusable pages"),
        }
    }
}

impl core::error::Error for BlkError {}

/// The pages [`BlkFront::close`] hands back: those whose grant really ended.
pub struct Returned {
    /// Ring pages (used and unused).
    pub ring: ArrayVec<&'static mut Page, MAX_RING_PAGES>,
    /// Data pages.
    pub data: ArrayVec<&'static mut Page, MAX_DATA_PAGES>,
    /// Indirect pages.
    pub indirect: ArrayVec<&'static mut Page, MAX_INDIRECT_PAGES>,
    /// Grants that could not be ended (the backend still maps the page): left in place for good.
    pub leaked: usize,
    /// Whether the backend reached `Closing` or `Closed` (else the close timed out waiting for it).
    pub backend_closed: bool,
}

/// A request in flight.
#[derive(Clone, Debug, Default)]
struct Inflight {
    /// Set by [`BlkFront::queue`].
    generation: u32,
    write: bool,
    sector: u64,
    /// Data pages, in segment order.
    pages: ArrayVec<u16, MAX_SEGMENTS>,
    indirect: Option<u16>,
    /// Where in the caller's buffer its bytes are.
    offset: usize,
    len: usize,
}

/// The caller's buffer of a transfer.
enum Buf<'b> {
    Read(&'b mut [u8]),
    Write(&'b [u8]),
    None,
}

/// Grants each of `pages` to `backend` (writable), onto `grants` and its index onto `free` (the first page
/// on top), counting each grant in `granted`.
fn grant_pool<const N: usize, const P: usize>(
    table: &mut GrantTable<N>,
    backend: DomId,
    pages: &'static mut [Page],
    grants: &mut ArrayVec<Grant, P>,
    free: &mut ArrayVec<u16, P>,
    granted: &mut u64,
) -> Result<()> {
    for p in pages.iter_mut() {
        let g = table.grant(backend, p, false).map_err(Error::from)?;
        *granted += 1;
        free.push(grants.len() as u16);
        grants.push(g);
    }
    free.reverse();
    Ok(())
}

/// A path built in place.
type Path = ArrayVec<u8, 128>;

fn path(parts: &[&[u8]]) -> Result<Path> {
    let mut p = Path::new();
    for part in parts {
        p.try_extend_from_slice(part)
            .map_err(|_| Error::ENAMETOOLONG)?;
    }
    Ok(p)
}

/// Decimal digits of `v`.
fn decimal(v: u64) -> ArrayVec<u8, 20> {
    let mut d = [0u8; 20];
    let (mut i, mut v) = (d.len(), v);
    loop {
        i -= 1;
        d[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    d[i..].iter().copied().collect()
}

/// A decimal number as xenstore holds it (surrounding NULs and whitespace ignored).
pub fn parse_u64(v: &[u8]) -> Option<u64> {
    let v = v
        .iter()
        .position(|&c| c == 0)
        .map_or(v, |n| &v[..n])
        .trim_ascii();
    if v.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for &c in v {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(n)
}

/// The ring protocol's ABI name (`XEN_IO_PROTO_ABI_*`).
pub const PROTOCOL: &[u8] = if cfg!(any(target_arch = "arm", target_arch = "aarch64")) {
    b"arm-abi"
} else {
    b"x86_64-abi"
};

/// Copies `src` into the shared page at `page` (volatile: `grant_table::write_shared`).
fn copy_to_page(page: *mut Page, src: &[u8]) {
    // SAFETY: `src` is at most a page (the callers'), so the bytes written are inside the shared page,
    // which is accessed only volatilely (memory given up to sharing).
    unsafe { super::grant_table::write_shared(page.cast::<u8>(), src) }
}

/// Copies from the shared page at `page` into `dst` (volatile: `grant_table::read_shared`).
fn copy_from_page(page: *mut Page, dst: &mut [u8]) {
    // SAFETY: as in `copy_to_page`.
    unsafe { super::grant_table::read_shared(page.cast::<u8>(), dst) }
}

/// A connected block frontend. `B`: its [`Xenbus`]; `W`: the program's `wait(port)`.
pub struct BlkFront<B, W> {
    bus: B,
    wait: W,
    info: Info,
    stats: Stats,
    /// Over the pages of `ring_grants`, which are ended only after it is dropped (`close`).
    ring: Option<FrontRing<'static, BlkifRequest, BlkifResponse>>,
    ring_grants: ArrayVec<Grant, MAX_RING_PAGES>,
    ring_spare: ArrayVec<&'static mut Page, MAX_RING_PAGES>,
    data: ArrayVec<Grant, MAX_DATA_PAGES>,
    indirect: ArrayVec<Grant, MAX_INDIRECT_PAGES>,
    /// Free data and indirect pages, used last-in first-out (the backend's persistent grants' LRU).
    free_data: ArrayVec<u16, MAX_DATA_PAGES>,
    free_indirect: ArrayVec<u16, MAX_INDIRECT_PAGES>,
    inflight: [Option<Inflight>; MAX_INFLIGHT],
    in_flight: usize,
    generation: u32,
    options: Options,
    front: Path,
    backend: Path,
    /// The backend is closing, closed or silent: no new requests.
    gone: bool,
}

impl<B: Xenbus, W: FnMut(Port) -> Result<bool>> BlkFront<B, W> {
    /// The handshake with the backend of virtual device `vdev` (its `device/vbd/<vdev>` directory):
    /// grants the pages, allocates the event channel, writes the frontend's nodes and waits (through
    /// `bus.pause`) for the backend to connect. On failure the grants made are ended (the pages are not
    /// handed back) and the event channel closed.
    pub fn connect<const N: usize>(
        mut bus: B,
        table: &mut GrantTable<N>,
        vdev: u32,
        pages: Pages,
        options: Options,
        wait: W,
    ) -> core::result::Result<BlkFront<B, W>, BlkError> {
        let Pages {
            ring,
            data,
            indirect,
        } = pages;
        if ring.is_empty()
            || ring.len() > MAX_RING_PAGES
            || data.is_empty()
            || data.len() > MAX_DATA_PAGES
            || indirect.len() > MAX_INDIRECT_PAGES
        {
            return Err(BlkError::BadPages);
        }
        let front = path(&[b"device/vbd/", &decimal(vdev.into())])?;
        let mut buf = [0u8; 128];
        let n = bus.read(&path(&[&front, b"/backend-id"])?, &mut buf)?;
        let backend_id = parse_u64(&buf[..n])
            .and_then(|d| u16::try_from(d).ok())
            .ok_or(BlkError::Protocol)?;
        let n = bus.read(&path(&[&front, b"/backend"])?, &mut buf)?;
        let end = buf[..n].iter().position(|&c| c == 0).unwrap_or(n);
        let backend = path(&[&buf[..end]])?;
        let mut fe = BlkFront {
            bus,
            wait,
            info: Info {
                backend: DomId(backend_id),
                ..Info::default()
            },
            stats: Stats::default(),
            ring: None,
            ring_grants: ArrayVec::new(),
            ring_spare: ArrayVec::new(),
            data: ArrayVec::new(),
            indirect: ArrayVec::new(),
            free_data: ArrayVec::new(),
            free_indirect: ArrayVec::new(),
            inflight: core::array::from_fn(|_| None),
            in_flight: 0,
            generation: 0,
            options,
            front,
            backend,
            gone: false,
        };
        match fe.handshake(table, ring, data, indirect) {
            Ok(()) => Ok(fe),
            Err(e) => {
                fe.abort(table);
                Err(e)
            }
        }
    }

    fn handshake<const N: usize>(
        &mut self,
        table: &mut GrantTable<N>,
        ring: &'static mut [Page],
        data: &'static mut [Page],
        indirect: &'static mut [Page],
    ) -> core::result::Result<(), BlkError> {
        let backend = self.info.backend;
        // The backend's transport parameters are there from InitWait on.
        let s = self.wait_backend(|s| s >= XenbusState::INIT_WAIT)?;
        if s.is_closing() {
            return Err(BlkError::BackendGone);
        }
        let max_order = self.backend_u64(b"/max-ring-page-order")?.unwrap_or(0);
        self.info.max_ring_page_order = u32::try_from(max_order).unwrap_or(u32::MAX);
        let given = ring.len().ilog2();
        let order = self
            .options
            .ring_page_order
            .min(self.info.max_ring_page_order)
            .min(given)
            .min(MAX_RING_PAGE_ORDER);
        let (used, spare) = ring.split_at_mut(1 << order);
        self.ring_spare.extend(spare.iter_mut());
        // The ring's pages are given up as one area: from here on they are reached only through `base`
        // and pointers derived from it (each grant's, and the ring's), never through `used` again, so
        // that no reborrow of one page invalidates the ring's view of all of them.
        let base = NonNull::from(used).cast::<Page>();
        for i in 0..1usize << order {
            // SAFETY: page `i` of the `&'static mut` slice `used`, in bounds (`used` has `1 << order`
            // pages), given up: `used` is never used again, and the page is reached only through `base`
            // (by this grant and the ring below, volatilely and atomically) until `close` or `abort`
            // ends the grant, after dropping the ring; no other grant is made of it.
            let g = unsafe { table.grant_raw(backend, base.add(i), false) }?;
            self.stats.grants += 1;
            self.ring_grants.push(g);
        }
        // SAFETY: the `1 << order` pages at `base` are the area given up to the grants held in
        // `ring_grants` (no reference to them exists any more); they are ended only in `close` and
        // `abort`, after this ring is dropped, and the ring never leaves `self`.
        let area = unsafe { SharedArea::new(base.as_ptr(), 1 << order) }?;
        let ring = FrontRing::init(area)?;
        self.info.ring_page_order = order;
        self.info.ring_entries = ring.size();
        self.ring = Some(ring);
        let granted = &mut self.stats.grants;
        grant_pool(
            table,
            backend,
            data,
            &mut self.data,
            &mut self.free_data,
            granted,
        )?;
        grant_pool(
            table,
            backend,
            indirect,
            &mut self.indirect,
            &mut self.free_indirect,
            granted,
        )?;
        let port = evtchn::alloc_unbound(DomId::SELF, backend)?;
        self.info.port = port;

        // The frontend's nodes, then its state.
        if order == 0 {
            let gref = self.ring_grants[0].gref();
            self.front_write(b"/ring-ref", &decimal(gref.0.into()))?;
        } else {
            self.front_write(b"/ring-page-order", &decimal(order.into()))?;
            for i in 0..self.ring_grants.len() {
                let gref = self.ring_grants[i].gref();
                let node = path(&[b"/ring-ref", &decimal(i as u64)])?;
                self.front_write(&node, &decimal(gref.0.into()))?;
            }
        }
        self.front_write(b"/event-channel", &decimal(port.0.into()))?;
        self.front_write(b"/protocol", PROTOCOL)?;
        let persistent: &[u8] = if self.options.persistent { b"1" } else { b"0" };
        self.front_write(b"/feature-persistent", persistent)?;
        self.switch(XenbusState::INITIALISED)?;

        let s = self.wait_backend(|s| s >= XenbusState::CONNECTED)?;
        if s != XenbusState::CONNECTED {
            return Err(BlkError::BackendGone);
        }
        let sectors = self.backend_u64(b"/sectors")?.ok_or(BlkError::Protocol)?;
        let sector_size = self.backend_u64(b"/sector-size")?.unwrap_or(512);
        let sector_size = u32::try_from(sector_size).map_err(|_| BlkError::Protocol)?;
        if !sector_size.is_power_of_two() || sector_size < SECTOR_SIZE as u32 {
            return Err(BlkError::Protocol);
        }
        let info = self.backend_u64(b"/info")?.unwrap_or(0);
        self.info.sectors = sectors;
        self.info.sector_size = sector_size;
        self.info.info = u32::try_from(info).map_err(|_| BlkError::Protocol)?;
        self.info.flush = self.backend_u64(b"/feature-flush-cache")?.unwrap_or(0) == 1;
        self.info.barrier = self.backend_u64(b"/feature-barrier")?.unwrap_or(0) == 1;
        self.info.discard = self.backend_u64(b"/feature-discard")?.unwrap_or(0) == 1;
        if self.info.discard {
            let g = self.backend_u64(b"/discard-granularity")?.unwrap_or(0);
            let a = self.backend_u64(b"/discard-alignment")?.unwrap_or(0);
            self.info.discard_granularity = u32::try_from(g).map_err(|_| BlkError::Protocol)?;
            self.info.discard_alignment = u32::try_from(a).map_err(|_| BlkError::Protocol)?;
            self.info.discard_secure = self.backend_u64(b"/discard-secure")?.unwrap_or(0) == 1;
        }
        self.info.backend_persistent = self.backend_u64(b"/feature-persistent")?.unwrap_or(0) == 1;
        let indirect = self
            .backend_u64(b"/feature-max-indirect-segments")?
            .unwrap_or(0);
        self.info.max_indirect_segments = u32::try_from(indirect).unwrap_or(u32::MAX);
        let mut segs = BLKIF_MAX_SEGMENTS_PER_REQUEST as u32;
        if !self.indirect.is_empty() {
            let ind = self
                .options
                .indirect_segments
                .min(self.info.max_indirect_segments)
                .min(MAX_SEGMENTS as u32);
            if ind > segs {
                segs = ind;
            }
        }
        self.info.segments_per_request = segs.min(self.data.len() as u32);
        self.switch(XenbusState::CONNECTED)?;
        let state = path(&[&self.backend, b"/state"])?;
        self.bus.watch(&state)?;
        Ok(())
    }

    /// Ends what `connect` did after a failure: state `Closed`, grants ended (pages not handed back;
    /// those still mapped leak), the port closed.
    fn abort<const N: usize>(mut self, table: &mut GrantTable<N>) {
        let _ = self.switch(XenbusState::CLOSED);
        self.ring = None;
        for g in self
            .ring_grants
            .drain(..)
            .chain(self.data.drain(..))
            .chain(self.indirect.drain(..))
        {
            let _ = table.end_access(g);
        }
        if self.info.port != Port::default() {
            let _ = evtchn::close(self.info.port);
        }
    }

    fn front_write(&mut self, node: &[u8], value: &[u8]) -> Result<()> {
        let p = path(&[&self.front, node])?;
        self.bus.write(&p, value)
    }

    /// Switches the frontend's own state.
    fn switch(&mut self, state: XenbusState) -> Result<()> {
        let p = path(&[&self.front, b"/state"])?;
        self.bus.switch_state(&p, state)
    }

    /// A number node of the backend's; `None` when absent.
    fn backend_u64(&mut self, node: &[u8]) -> core::result::Result<Option<u64>, BlkError> {
        let p = path(&[&self.backend, node])?;
        let mut buf = [0u8; 32];
        match self.bus.read(&p, &mut buf) {
            Ok(n) => parse_u64(&buf[..n]).map(Some).ok_or(BlkError::Protocol),
            Err(Error::ENOENT) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The backend's state (`Unknown` when its node is gone).
    pub fn backend_state(&mut self) -> Result<XenbusState> {
        let p = path(&[&self.backend, b"/state"])?;
        let mut buf = [0u8; 16];
        match self.bus.read(&p, &mut buf) {
            Ok(n) => Ok(parse_u64(&buf[..n])
                .and_then(|v| u32::try_from(v).ok())
                .map_or(XenbusState::UNKNOWN, XenbusState)),
            Err(Error::ENOENT) => Ok(XenbusState::UNKNOWN),
            Err(e) => Err(e),
        }
    }

    /// Waits (through `bus.pause`) until `done(backend state)`, or the backend closes; returns the state.
    fn wait_backend(&mut self, done: impl Fn(XenbusState) -> bool) -> Result<XenbusState> {
        loop {
            let s = self.backend_state()?;
            if done(s) || s.is_closing() {
                return Ok(s);
            }
            self.bus.pause()?;
        }
    }

    /// What the handshake found.
    pub fn info(&self) -> &Info {
        &self.info
    }

    /// The counters so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The program's `wait`, to change how long it waits.
    pub fn wait_mut(&mut self) -> &mut W {
        &mut self.wait
    }

    /// The xenbus, to reach xenstore between transfers.
    pub fn bus_mut(&mut self) -> &mut B {
        &mut self.bus
    }

    /// Whether the backend is known to be gone (every transfer fails with [`BlkError::BackendGone`]).
    pub fn is_gone(&self) -> bool {
        self.gone
    }

    /// Reads `buf.len()` bytes (a multiple of 512) from 512-byte sector `sector` on.
    pub fn read(&mut self, sector: u64, buf: &mut [u8]) -> core::result::Result<(), BlkError> {
        self.transfer(sector, Buf::Read(buf))
    }

    /// Writes `buf` (a multiple of 512 bytes) from 512-byte sector `sector` on.
    pub fn write(&mut self, sector: u64, buf: &[u8]) -> core::result::Result<(), BlkError> {
        if self.info.info & VDISK_READONLY != 0 {
            return Err(BlkError::ReadOnly);
        }
        self.transfer(sector, Buf::Write(buf))
    }

    /// Flushes the disk's write cache (`BLKIF_OP_FLUSH_DISKCACHE`): what was written is on stable
    /// storage when it returns. [`BlkError::NotSupported`] without `feature-flush-cache`.
    pub fn flush(&mut self) -> core::result::Result<(), BlkError> {
        if !self.info.flush {
            return Err(BlkError::NotSupported);
        }
        self.one_request(0, |id| {
            BlkifRequest::new(BLKIF_OP_FLUSH_DISKCACHE, 0, id, 0)
        })
    }

    /// Discards `sectors` 512-byte sectors from sector `sector` on (`BLKIF_OP_DISCARD`, one request): the
    /// disk may forget them, and they read back as zeros or as before (Linux's blkback passes the range
    /// to the device's discard; a loop device over a tmpfs file punches a hole, which reads as zeros).
    /// [`BlkError::NotSupported`] without `feature-discard`, [`BlkError::ReadOnly`] on a read-only disk,
    /// [`BlkError::OutOfRange`] past the end and [`BlkError::Unaligned`] for a range not aligned to the
    /// backend's `sector-size`, each with nothing sent; no sectors: `Ok`, nothing sent.
    /// `discard-granularity` is the backend's hint, not checked: a smaller or unaligned range may
    /// leave some or all of its sectors as they were.
    pub fn discard(&mut self, sector: u64, sectors: u64) -> core::result::Result<(), BlkError> {
        if !self.info.discard {
            return Err(BlkError::NotSupported);
        }
        if self.info.info & VDISK_READONLY != 0 {
            return Err(BlkError::ReadOnly);
        }
        let per = u64::from(self.info.sector_size / SECTOR_SIZE as u32).max(1);
        if !sector.is_multiple_of(per) || !sectors.is_multiple_of(per) {
            return Err(BlkError::Unaligned);
        }
        match sector.checked_add(sectors) {
            Some(end) if end <= self.info.sectors_512() => {}
            _ => return Err(BlkError::OutOfRange),
        }
        if sectors == 0 {
            return Ok(());
        }
        self.one_request(sector, |id| {
            BlkifRequestDiscard {
                operation: BLKIF_OP_DISCARD,
                id,
                sector_number: sector,
                nr_sectors: sectors,
                ..BlkifRequestDiscard::default()
            }
            .as_request()
        })
    }

    /// Sends one request without data pages (`make(id)`, for `sector`) and waits for its answer.
    fn one_request(
        &mut self,
        sector: u64,
        make: impl FnOnce(u64) -> BlkifRequest,
    ) -> core::result::Result<(), BlkError> {
        self.check_backend()?;
        let slot = self.free_slot().ok_or(BlkError::Protocol)?;
        let req = make(self.id(slot));
        let what = Inflight {
            sector,
            ..Inflight::default()
        };
        self.queue(slot, req, what)?;
        self.publish()?;
        let mut first = None;
        while self.in_flight > 0 {
            self.collect(&mut Buf::None, &mut first)?;
        }
        first.map_or(Ok(()), Err)
    }

    /// The request id of `slot`: the slot in the low half, the next generation in the high half.
    fn id(&self, slot: usize) -> u64 {
        (u64::from(self.generation.wrapping_add(1)) << 32) | slot as u64
    }

    fn free_slot(&self) -> Option<usize> {
        self.inflight.iter().position(Option::is_none)
    }

    /// Gives up when the backend's state (read when the watch fired) is `Closing` or later.
    fn check_backend(&mut self) -> core::result::Result<(), BlkError> {
        if self.gone {
            return Err(BlkError::BackendGone);
        }
        if self.bus.changed()? && self.backend_state()? != XenbusState::CONNECTED {
            self.gone = true;
        }
        if self.gone {
            return Err(BlkError::BackendGone);
        }
        Ok(())
    }

    fn transfer(&mut self, sector: u64, mut buf: Buf<'_>) -> core::result::Result<(), BlkError> {
        let len = match &buf {
            Buf::Read(b) => b.len(),
            Buf::Write(b) => b.len(),
            Buf::None => 0,
        };
        let ss = u64::from(self.info.sector_size);
        if !len.is_multiple_of(SECTOR_SIZE)
            || !(len as u64).is_multiple_of(ss)
            || !(sector.wrapping_mul(SECTOR_SIZE as u64)).is_multiple_of(ss)
        {
            return Err(BlkError::Unaligned);
        }
        let sectors = (len / SECTOR_SIZE) as u64;
        match sector.checked_add(sectors) {
            Some(end) if end <= self.info.sectors_512() => {}
            _ => return Err(BlkError::OutOfRange),
        }
        self.check_backend()?;
        let write = matches!(buf, Buf::Write(_));
        let per_request = self.info.segments_per_request as usize * PAGE_SIZE;
        let mut off = 0;
        let mut first: Option<BlkError> = None;
        loop {
            let mut queued = 0;
            while off < len && first.is_none() && !self.gone {
                let want = (len - off).min(per_request);
                let Some(n) = self.queue_transfer(sector, off, want, write, &buf)? else {
                    break;
                };
                off += n;
                queued += 1;
            }
            if queued > 0 {
                self.publish()?;
            }
            if self.in_flight == 0 {
                break;
            }
            self.collect(&mut buf, &mut first)?;
            if first.is_none()
                && self.bus.changed()?
                && self.backend_state()? != XenbusState::CONNECTED
            {
                // Nothing new is sent; what is in flight is still collected.
                self.gone = true;
                first = Some(BlkError::BackendGone);
            }
        }
        if let Some(e) = first {
            return Err(e);
        }
        if off < len {
            return Err(BlkError::BackendGone);
        }
        self.stats.bytes += len as u64;
        Ok(())
    }

    /// Queues one request for up to `want` bytes at `off` of the transfer; `None` when the ring, the pool
    /// or the in-flight table is full. Returns the bytes it covers.
    fn queue_transfer(
        &mut self,
        sector: u64,
        off: usize,
        want: usize,
        write: bool,
        buf: &Buf<'_>,
    ) -> core::result::Result<Option<usize>, BlkError> {
        let Some(ring) = self.ring.as_ref() else {
            return Err(BlkError::BackendGone);
        };
        let Some(slot) = self.free_slot() else {
            return Ok(None);
        };
        if ring.is_full() || self.free_data.is_empty() {
            return Ok(None);
        }
        let pages_wanted = want.div_ceil(PAGE_SIZE);
        let direct =
            pages_wanted <= BLKIF_MAX_SEGMENTS_PER_REQUEST || self.free_indirect.is_empty();
        let limit = if direct {
            BLKIF_MAX_SEGMENTS_PER_REQUEST
        } else {
            MAX_SEGMENTS
        };
        let npages = pages_wanted.min(limit).min(self.free_data.len());
        let bytes = want.min(npages * PAGE_SIZE);
        let mut pages = ArrayVec::<u16, MAX_SEGMENTS>::new();
        for _ in 0..npages {
            if let Some(p) = self.free_data.pop() {
                pages.push(p);
            }
        }
        let id = self.id(slot);
        let first_sector = sector + (off / SECTOR_SIZE) as u64;
        let op = if write { BLKIF_OP_WRITE } else { BLKIF_OP_READ };
        // The segments: page k holds bytes k*4096.. of the request, from its sector 0.
        let mut segs = ArrayVec::<BlkifRequestSegment, MAX_SEGMENTS>::new();
        for (k, &p) in pages.iter().enumerate() {
            let n = (bytes - k * PAGE_SIZE).min(PAGE_SIZE);
            let last = (n / SECTOR_SIZE - 1) as u8;
            segs.push(BlkifRequestSegment::new(
                self.data[p as usize].gref(),
                0,
                last,
            ));
            if let Buf::Write(b) = buf
                && let Some(page) = self.data[p as usize].page()
            {
                let at = off + k * PAGE_SIZE;
                copy_to_page(page, &b[at..at + n]);
            }
        }
        let (req, indirect) = if segs.len() <= BLKIF_MAX_SEGMENTS_PER_REQUEST {
            let mut r = BlkifRequest::new(op, 0, id, first_sector);
            r.nr_segments = segs.len() as u8;
            r.seg[..segs.len()].copy_from_slice(&segs);
            (r, None)
        } else {
            let Some(ip) = self.free_indirect.pop() else {
                return Err(BlkError::Protocol);
            };
            let g = &self.indirect[ip as usize];
            if let Some(page) = g.page() {
                for (i, s) in segs.iter().enumerate() {
                    // SAFETY: at most MAX_SEGMENTS (64) of 8 bytes, inside the shared indirect page,
                    // accessed volatilely only.
                    unsafe { ptr::write_volatile(page.cast::<BlkifRequestSegment>().add(i), *s) };
                }
            }
            let mut grefs = [GrantRef(0); BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST];
            grefs[0] = g.gref();
            let r = BlkifRequestIndirect {
                operation: BLKIF_OP_INDIRECT,
                indirect_op: op,
                nr_segments: segs.len() as u16,
                id,
                sector_number: first_sector,
                handle: 0,
                indirect_grefs: grefs,
                ..BlkifRequestIndirect::default()
            };
            (r.as_request(), Some(ip))
        };
        self.stats.segments += segs.len() as u64;
        if indirect.is_some() {
            self.stats.indirect_requests += 1;
        }
        let what = Inflight {
            write,
            sector: first_sector,
            pages,
            indirect,
            offset: off,
            len: bytes,
            ..Inflight::default()
        };
        self.queue(slot, req, what)?;
        Ok(Some(bytes))
    }

    /// Puts `req` on the ring and records it in `slot` as `what`, under the next generation (the one in
    /// `req`'s id).
    fn queue(
        &mut self,
        slot: usize,
        req: BlkifRequest,
        what: Inflight,
    ) -> core::result::Result<(), BlkError> {
        let ring = self.ring.as_mut().ok_or(BlkError::BackendGone)?;
        ring.next_request(req)?;
        self.generation = self.generation.wrapping_add(1);
        self.inflight[slot] = Some(Inflight {
            generation: self.generation,
            ..what
        });
        self.in_flight += 1;
        self.stats.requests += 1;
        Ok(())
    }

    /// Publishes the queued requests, notifying the backend if it asked.
    fn publish(&mut self) -> core::result::Result<(), BlkError> {
        let ring = self.ring.as_mut().ok_or(BlkError::BackendGone)?;
        self.stats.batches += 1;
        if ring.push_requests_and_check_notify() {
            self.stats.notifications += 1;
            evtchn::send(self.info.port)?;
        }
        Ok(())
    }

    /// Takes the responses waiting (waiting for at least one), copying reads back into `buf`; the first
    /// failure goes to `first`. After `patience` empty waits, or once the backend is gone, the requests
    /// still in flight are abandoned (their pages never reused) and the backend counts as gone.
    fn collect(
        &mut self,
        buf: &mut Buf<'_>,
        first: &mut Option<BlkError>,
    ) -> core::result::Result<(), BlkError> {
        let mut idle = 0;
        loop {
            let mut got = 0;
            loop {
                let ring = self.ring.as_mut().ok_or(BlkError::BackendGone)?;
                let rsp = match ring.take_response() {
                    Ok(Some(r)) => r,
                    Ok(None) => break,
                    Err(_) => {
                        self.abandon();
                        return Err(BlkError::Protocol);
                    }
                };
                got += 1;
                self.stats.responses += 1;
                match self.complete(rsp, buf) {
                    Ok(()) => {}
                    // A backend that answers what was not asked cannot be trusted with the rest.
                    Err(BlkError::Protocol) => {
                        self.abandon();
                        return Err(BlkError::Protocol);
                    }
                    Err(e) => {
                        if first.is_none() {
                            *first = Some(e);
                        }
                    }
                }
            }
            if got > 0 {
                return Ok(());
            }
            let ring = self.ring.as_mut().ok_or(BlkError::BackendGone)?;
            match ring.final_check_for_responses() {
                Ok(true) => continue,
                Ok(false) => {}
                Err(_) => {
                    self.abandon();
                    return Err(BlkError::Protocol);
                }
            }
            if idle >= self.options.patience {
                self.abandon();
                return Err(BlkError::BackendGone);
            }
            self.stats.waits += 1;
            match (self.wait)(self.info.port) {
                Ok(true) => idle = 0,
                Ok(false) => {
                    idle += 1;
                    // Silent: is it still there?
                    if self.backend_state()?.is_closing() {
                        self.gone = true;
                        // What it has answered is collected; then it gets `patience` more waits.
                    }
                }
                Err(e) => {
                    self.abandon();
                    return Err(e.into());
                }
            }
        }
    }

    /// Completes the request `rsp` answers.
    fn complete(
        &mut self,
        rsp: BlkifResponse,
        buf: &mut Buf<'_>,
    ) -> core::result::Result<(), BlkError> {
        let slot = (rsp.id & 0xffff_ffff) as usize;
        let generation = (rsp.id >> 32) as u32;
        let matches = self
            .inflight
            .get(slot)
            .and_then(Option::as_ref)
            .is_some_and(|f| f.generation == generation);
        if !matches {
            return Err(BlkError::Protocol);
        }
        let Some(f) = self.inflight[slot].take() else {
            return Err(BlkError::Protocol);
        };
        self.in_flight -= 1;
        let result = match rsp.status {
            BLKIF_RSP_OKAY => Ok(()),
            BLKIF_RSP_ERROR => Err(BlkError::Io { sector: f.sector }),
            BLKIF_RSP_EOPNOTSUPP => Err(BlkError::NotSupported),
            _ => Err(BlkError::Protocol),
        };
        if result.is_ok()
            && !f.write
            && let Buf::Read(b) = buf
        {
            for (k, &p) in f.pages.iter().enumerate() {
                let at = f.offset + k * PAGE_SIZE;
                let n = (f.len - k * PAGE_SIZE).min(PAGE_SIZE);
                if let (Some(page), Some(dst)) =
                    (self.data[p as usize].page(), b.get_mut(at..at + n))
                {
                    copy_from_page(page, dst);
                }
            }
        }
        // The backend has answered: its pages are free again.
        self.free_data.extend(f.pages.iter().rev().copied());
        if let Some(i) = f.indirect {
            self.free_indirect.push(i);
        }
        result
    }

    /// Forgets the requests in flight: their pages stay out of the free lists for good (the backend may
    /// still write them), and no new request is made.
    fn abandon(&mut self) {
        for f in self.inflight.iter_mut() {
            *f = None;
        }
        self.in_flight = 0;
        self.gone = true;
    }

    /// Disconnects (state `Closing`, the backend's `Closing`/`Closed` awaited through `bus.pause`, state
    /// `Closed`), ends every grant (retrying through `bus.pause` while the backend still maps a page),
    /// closes the event channel, and hands back the pages whose grant ended.
    pub fn close<const N: usize>(mut self, table: &mut GrantTable<N>) -> Returned {
        self.abandon();
        let _ = self.switch(XenbusState::CLOSING);
        let backend_closed = matches!(
            self.wait_backend(|s| s.is_closing() || s == XenbusState::UNKNOWN),
            Ok(s) if s.is_closing() || s == XenbusState::UNKNOWN
        );
        let _ = self.switch(XenbusState::CLOSED);
        // The ring first: its pages are handed back below.
        self.ring = None;
        let mut out = Returned {
            ring: ArrayVec::new(),
            data: ArrayVec::new(),
            indirect: ArrayVec::new(),
            leaked: 0,
            backend_closed,
        };
        let mut end = |g: Grant, stats: &mut Stats, bus: &mut B| -> Option<&'static mut Page> {
            let mut g = g;
            // A backend unmaps its persistent grants when it disconnects: a few looks before giving up.
            for _ in 0..8 {
                match table.end_access(g) {
                    Ok(p) => {
                        stats.grant_ends += 1;
                        return p;
                    }
                    Err(r) if r.error == Error::EBUSY => {
                        g = r.grant;
                        if bus.pause().is_err() {
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
            drop(g); // a dropped `Grant` leaves the access in place
            None
        };
        for g in core::mem::take(&mut self.ring_grants) {
            match end(g, &mut self.stats, &mut self.bus) {
                Some(p) => out.ring.push(p),
                None => out.leaked += 1,
            }
        }
        for p in self.ring_spare.drain(..) {
            out.ring.push(p);
        }
        for g in core::mem::take(&mut self.data) {
            match end(g, &mut self.stats, &mut self.bus) {
                Some(p) => out.data.push(p),
                None => out.leaked += 1,
            }
        }
        for g in core::mem::take(&mut self.indirect) {
            match end(g, &mut self.stats, &mut self.bus) {
                Some(p) => out.indirect.push(p),
                None => out.leaked += 1,
            }
        }
        let _ = evtchn::close(self.info.port);
        out
    }
}
