//! Rings shared with another domain: the request/response rings of split drivers (`io/ring.h`) and the
//! byte rings of the PV console (`io/console.h`) and xenstore (`io/xs_wire.h`).
//!
//! Convention:
//!
//! - A ring lives in a [`SharedArea`]: memory given up to sharing, which Rust never references. It is
//!   built from a [`Grant`] or a [`Mapping`] (safe, borrowing them for the ring's life) or from a raw
//!   pointer (`unsafe`, with the contract stated). Two rings over the same area (the two ends, in a test)
//!   are fine: every access to it is atomic (the indices) or volatile (the slots and bytes).
//! - Indices are free-running `u32`s, as in C, and masked on every access: whatever the peer writes, no
//!   access leaves the ring. An index the protocol rules out (a producer more than a ring ahead of its
//!   consumer, or behind it) is refused with [`Error::EIO`]; nothing panics, and the ring is left as it
//!   was.
//! - Notifying the peer is the caller's ([`evtchn::send`](super::evtchn::send)):
//!   [`FrontRing::push_requests_and_check_notify`] and [`BackRing::push_responses_and_check_notify`] say
//!   whether to; before sleeping, [`FrontRing::final_check_for_responses`] and
//!   [`BackRing::final_check_for_requests`] ask the peer to notify and re-check.
//!
//! The barriers of `ring.h`, `hvc_xen.c` and Linux's xenstore ring code, and what replaces each:
//!
//! | C | where | Rust |
//! |---|---|---|
//! | `xen_wmb()` before publishing a producer index | `RING_PUSH_*`, console and xenstore writes | `store(Release)` of the index: the slots/bytes written before it are visible first |
//! | `xen_mb()` between publishing `req_prod`/`rsp_prod` and reading `req_event`/`rsp_event` | `RING_PUSH_*_AND_CHECK_NOTIFY` | `fence(SeqCst)`: a store followed by a load needs a full (StoreLoad) barrier; the peer's `RING_FINAL_CHECK_*` has the mirror fence, so one of the two sees the other |
//! | `xen_mb()` between writing `req_event`/`rsp_event` and re-reading the producer index | `RING_FINAL_CHECK_FOR_*` | `fence(SeqCst)`, for the same reason |
//! | `virt_rmb()` after reading a producer index, before reading slots/bytes | blkfront, netfront, `domU_read_console`, `xb_read` | `load(Acquire)` of the producer index |
//! | `mb()` after reading the consumer index, before writing bytes | `__write_console`, `xb_write` | `load(Acquire)` of the consumer index: the bytes it freed are not overwritten before it is read |
//! | `mb()` after reading bytes, before publishing the consumer index | `domU_read_console`, `xb_read` | `store(Release)` of the consumer index: the bytes are read before the peer may overwrite them |
//!
//! A front ring and a back ring over one page (on the host; in a guest the back end is another domain):
//!
//! ```
//! use xen_hypercall::xen::Page;
//! use xen_hypercall::xen::ring::{BackRing, FrontRing, SharedArea};
//! let page: *mut Page = Box::into_raw(Box::new(Page::new()));
//! // SAFETY: the page is leaked, never referenced, and accessed only through the two rings.
//! let (a, b) = unsafe { (SharedArea::new(page, 1)?, SharedArea::new(page, 1)?) };
//! let mut front = FrontRing::<u64, u64>::init(a)?;
//! let mut back = BackRing::<u64, u64>::attach(b, 0)?;
//! assert_eq!(front.size(), 256); // (4096 - 64) / 8 = 504, rounded down to a power of two
//! front.next_request(7)?;
//! assert!(front.push_requests_and_check_notify()); // the back end asked (req_event = 1): notify it
//! let req = back.take_request()?.unwrap();
//! back.next_response(req * 6)?;
//! assert!(back.push_responses_and_check_notify());
//! assert_eq!(front.take_response()?, Some(42));
//! assert!(!front.final_check_for_responses()?); // nothing more: rsp_event set, safe to sleep
//! # Ok::<(), xen_hypercall::xen::Error>(())
//! ```

use core::marker::PhantomData;
use core::mem::{align_of, offset_of, size_of};
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicU32, Ordering, fence};

use super::grant_table::{Grant, Mapping};
use super::{Error, Page, Plain, Result};

/// `RING_IDX`, `XENCONS_RING_IDX`, `XENSTORE_RING_IDX`: a free-running index (wraps at 2^32).
pub type RingIdx = u32;

/// The size of Xen's pages for ring protocols (`XEN_PAGE_SIZE`), whatever the guest's page size.
pub const PAGE_SIZE: usize = 4096;

/// The header of a shared ring (`struct *_sring` up to `ring`): the shared indices and the padding.
///
/// Its layout only: a ring accesses the fields through raw pointers, atomically.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SringHeader {
    /// The front end's published request producer.
    pub req_prod: RingIdx,
    /// The request index at which the back end wants a notification.
    pub req_event: RingIdx,
    /// The back end's published response producer.
    pub rsp_prod: RingIdx,
    /// The response index at which the front end wants a notification.
    pub rsp_event: RingIdx,
    /// `pvt`: a protocol's private bytes (netif's `smartpoll_active`), zeroed by the front end.
    pub pvt: [u8; 4],
    /// `__pad`.
    pub pad: [u8; 44],
}

/// Where the slots start (`offsetof(struct *_sring, ring)`).
pub const HEADER_SIZE: usize = size_of::<SringHeader>();

/// A slot of a shared ring (`union *_sring_entry`): a request or its response.
#[repr(C)]
#[derive(Clone, Copy)]
pub union Slot<Req: Copy, Rsp: Copy> {
    /// The request the front end wrote.
    pub req: Req,
    /// The response the back end wrote over it.
    pub rsp: Rsp,
}

/// The number of entries of a ring of `slot`-byte slots in `bytes` bytes (`__RING_SIZE`): as many as fit
/// after the header, rounded down to a power of two (`__RD32`); 0 if none fits.
///
/// ```
/// use xen_hypercall::xen::ring::ring_size;
/// assert_eq!(ring_size(4096, 112), 32); // blkif: 36 fit
/// assert_eq!(ring_size(4 * 4096, 112), 128); // blkif, ring-page-order 2: 145 fit
/// assert_eq!(ring_size(4096, 12), 256); // netif tx: 336 fit
/// ```
pub const fn ring_size(bytes: usize, slot: usize) -> u32 {
    if slot == 0 || bytes <= HEADER_SIZE {
        return 0;
    }
    let n = (bytes - HEADER_SIZE) / slot;
    let n = if n > u32::MAX as usize {
        u32::MAX
    } else {
        n as u32
    };
    if n == 0 {
        0
    } else {
        1 << (31 - n.leading_zeros())
    }
}

/// Memory shared with another domain, `pages` 4 KiB pages from a page-aligned address, borrowed for
/// `'a`: where rings live.
#[derive(Debug)]
pub struct SharedArea<'a> {
    base: NonNull<Page>,
    pages: usize,
    _area: PhantomData<&'a Page>,
}

// SAFETY: the area is memory given up to sharing, accessed atomically or volatilely only; nothing in it
// is tied to a thread.
unsafe impl Send for SharedArea<'_> {}

impl<'a> SharedArea<'a> {
    /// The `pages` pages at `base` (a multi-page ring's `1 << ring-page-order`, contiguous in the guest's
    /// address space). `EINVAL` for a null or misaligned `base` or no pages.
    ///
    /// # Safety
    ///
    /// For `'a`, the `pages * 4096` bytes at `base` must be valid for reads and writes, and given up to
    /// sharing: no Rust reference to them may exist, and the program accesses them only through rings
    /// (atomic and volatile accesses) while the other domain may write anything into them at any time.
    /// (Identity-mapped, or with the MMU off on ARM, a frame `pfn` is at `pfn * 4096`.)
    ///
    /// ```compile_fail,E0133
    /// # use xen_hypercall::xen::{Page, ring::SharedArea};
    /// static mut PAGE: Page = Page::new();
    /// let area = SharedArea::new(&raw mut PAGE, 1); // needs `unsafe`: the contract above
    /// ```
    pub unsafe fn new(base: *mut Page, pages: usize) -> Result<SharedArea<'a>> {
        let base = NonNull::new(base).ok_or(Error::EINVAL)?;
        let fits = pages
            .checked_mul(PAGE_SIZE)
            .is_some_and(|n| n <= isize::MAX as usize);
        if pages == 0 || !fits || !(base.as_ptr() as usize).is_multiple_of(PAGE_SIZE) {
            return Err(Error::EINVAL);
        }
        Ok(SharedArea {
            base,
            pages,
            _area: PhantomData,
        })
    }

    /// The page granted by `grant`, for as long as the grant is borrowed (it cannot be ended meanwhile).
    /// `EINVAL` for a grant of a frame rather than a page.
    ///
    /// ```
    /// use xen_hypercall::xen::grant_table::GrantTable;
    /// use xen_hypercall::xen::ring::{FrontRing, SharedArea};
    /// use xen_hypercall::xen::{DomId, Page};
    /// fn serve(table: &mut GrantTable<4>, page: &'static mut Page) -> Option<&'static mut Page> {
    ///     let grant = table.grant(DomId(0), page, false).ok()?;
    ///     let ring = FrontRing::<u64, u64>::init(SharedArea::granted(&grant).ok()?).ok()?;
    ///     // ... publish grant.gref(), exchange, disconnect ...
    ///     drop(ring);
    ///     table.end_access(grant).ok()? // the page back (`None`: a frame's grant)
    /// }
    /// ```
    ///
    /// Ending the access while a ring uses the page does not compile:
    ///
    /// ```compile_fail,E0505
    /// # use xen_hypercall::xen::grant_table::GrantTable;
    /// # use xen_hypercall::xen::ring::{FrontRing, SharedArea};
    /// # use xen_hypercall::xen::{DomId, Page};
    /// fn serve(table: &mut GrantTable<4>, page: &'static mut Page) -> Option<&'static mut Page> {
    ///     let grant = table.grant(DomId(0), page, false).ok()?;
    ///     let ring = FrontRing::<u64, u64>::init(SharedArea::granted(&grant).ok()?).ok()?;
    ///     let page = table.end_access(grant).ok()?;
    ///     drop(ring);
    ///     page
    /// }
    /// ```
    pub fn granted(grant: &'a Grant) -> Result<SharedArea<'a>> {
        let page = grant.page().ok_or(Error::EINVAL)?;
        // SAFETY: a granted page was given up by `&'static mut` and stays so until `end_access`, which
        // takes the grant by value: not while it is borrowed for `'a`.
        unsafe { SharedArea::new(page, 1) }
    }

    /// The page mapped by `mapping`, for as long as the mapping is borrowed. `EROFS` for a read-only
    /// mapping (rings are written by both ends).
    pub fn mapped(mapping: &'a Mapping) -> Result<SharedArea<'a>> {
        if mapping.readonly() {
            return Err(Error::EROFS);
        }
        // SAFETY: a mapping's page is in its area's window (memory given up to the area), mapped until
        // `unmap`, which takes the mapping by value: not while it is borrowed for `'a`.
        unsafe { SharedArea::new(mapping.as_ptr(), 1) }
    }

    /// Its size in bytes.
    #[inline]
    pub const fn len(&self) -> usize {
        self.pages * PAGE_SIZE
    }

    /// Never: an area has at least one page.
    #[inline]
    pub const fn is_empty(&self) -> bool {
        false
    }

    /// Its first byte.
    #[inline]
    pub const fn as_ptr(&self) -> *mut u8 {
        self.base.as_ptr().cast()
    }

    /// The index at byte `offset` (4-aligned, inside the area: the callers' constants).
    #[inline(always)]
    fn index(&self, offset: usize) -> &AtomicU32 {
        // SAFETY: `offset` is inside the area and 4-aligned from a page-aligned base; the area is valid
        // for `'a` (which outlives `&self`) and accessed only atomically or volatilely (its contract).
        unsafe { AtomicU32::from_ptr(self.as_ptr().add(offset).cast()) }
    }
}

/// The common part of both ends of a shared ring.
struct Sring<'a, Req, Rsp> {
    area: SharedArea<'a>,
    size: u32,
    _slots: PhantomData<(Req, Rsp)>,
}

impl<'a, Req: Plain, Rsp: Plain> Sring<'a, Req, Rsp> {
    fn new(area: SharedArea<'a>) -> Result<Self> {
        // The slots start at 64 in C as long as the union's alignment divides 64.
        if align_of::<Slot<Req, Rsp>>() > HEADER_SIZE {
            return Err(Error::EINVAL);
        }
        let size = ring_size(area.len(), size_of::<Slot<Req, Rsp>>());
        if size == 0 {
            return Err(Error::EINVAL);
        }
        Ok(Sring {
            area,
            size,
            _slots: PhantomData,
        })
    }

    #[inline(always)]
    fn req_prod(&self) -> &AtomicU32 {
        self.area.index(offset_of!(SringHeader, req_prod))
    }
    #[inline(always)]
    fn req_event(&self) -> &AtomicU32 {
        self.area.index(offset_of!(SringHeader, req_event))
    }
    #[inline(always)]
    fn rsp_prod(&self) -> &AtomicU32 {
        self.area.index(offset_of!(SringHeader, rsp_prod))
    }
    #[inline(always)]
    fn rsp_event(&self) -> &AtomicU32 {
        self.area.index(offset_of!(SringHeader, rsp_event))
    }

    /// The slot of index `i`, masked into the ring.
    #[inline(always)]
    fn slot(&self, i: RingIdx) -> *mut Slot<Req, Rsp> {
        let n = (i & (self.size - 1)) as usize;
        // SAFETY: `n < size`, and `size` slots fit after the header in the area (`ring_size`).
        unsafe {
            self.area
                .as_ptr()
                .add(HEADER_SIZE + n * size_of::<Slot<Req, Rsp>>())
                .cast()
        }
    }

    /// `RING_COPY_REQUEST`: a volatile copy, which the peer cannot change after the fact.
    #[inline(always)]
    fn read_req(&self, i: RingIdx) -> Req {
        // SAFETY: the slot is inside the area and aligned (page-aligned base, offset 64 + n * size, both
        // multiples of the alignment); `Req` is `Plain`, valid for any bytes.
        unsafe { ptr::read_volatile(self.slot(i).cast::<Req>()) }
    }
    #[inline(always)]
    fn read_rsp(&self, i: RingIdx) -> Rsp {
        // SAFETY: as in `read_req`.
        unsafe { ptr::read_volatile(self.slot(i).cast::<Rsp>()) }
    }
    #[inline(always)]
    fn write_req(&self, i: RingIdx, req: Req) {
        // SAFETY: as in `read_req`; the area is writable (its contract).
        unsafe { ptr::write_volatile(self.slot(i).cast::<Req>(), req) }
    }
    #[inline(always)]
    fn write_rsp(&self, i: RingIdx, rsp: Rsp) {
        // SAFETY: as in `write_req`.
        unsafe { ptr::write_volatile(self.slot(i).cast::<Rsp>(), rsp) }
    }

    /// Publishes `new` as `prod` and says whether the peer asked for a notification through `event`
    /// (`RING_PUSH_*_AND_CHECK_NOTIFY`).
    #[inline(always)]
    fn push_and_check(prod: &AtomicU32, event: &AtomicU32, new: RingIdx) -> bool {
        let old = prod.load(Ordering::Relaxed); // our own index
        // xen_wmb(); prod = new: a Release store, the slots written before it are seen first.
        prod.store(new, Ordering::Release);
        // xen_mb(): the store above before the load of `event` below (StoreLoad), paired with the
        // peer's fence between writing `event` and re-reading `prod` in its final check.
        fence(Ordering::SeqCst);
        let event = event.load(Ordering::Relaxed);
        new.wrapping_sub(event) < new.wrapping_sub(old)
    }
}

/// The front end of a shared ring (`*_front_ring`): queues requests, takes responses.
pub struct FrontRing<'a, Req: Plain, Rsp: Plain> {
    ring: Sring<'a, Req, Rsp>,
    req_prod_pvt: RingIdx,
    rsp_cons: RingIdx,
}

// SAFETY: the ring holds a shared area (`Send`) and plain data; its methods take `&mut self` to change it.
unsafe impl<Req: Plain, Rsp: Plain> Send for FrontRing<'_, Req, Rsp> {}

impl<'a, Req: Plain, Rsp: Plain> FrontRing<'a, Req, Rsp> {
    /// A new ring over `area` (`XEN_FRONT_RING_INIT`): the shared indices set (`SHARED_RING_INIT`:
    /// producers 0, events 1, padding zeroed), the private ones 0. Done before the back end is told
    /// where the ring is. `EINVAL` if no slot fits or the slots' alignment exceeds 64.
    pub fn init(area: SharedArea<'a>) -> Result<Self> {
        let ring = Sring::new(area)?;
        ring.req_prod().store(0, Ordering::Relaxed);
        ring.rsp_prod().store(0, Ordering::Relaxed);
        ring.req_event().store(1, Ordering::Relaxed);
        ring.rsp_event().store(1, Ordering::Relaxed);
        for i in offset_of!(SringHeader, pvt)..HEADER_SIZE {
            // SAFETY: inside the header, inside the area (writable, accessed volatilely only).
            unsafe { ptr::write_volatile(ring.area.as_ptr().add(i), 0) };
        }
        // Published with the back end's address of the ring (a Release store or a hypercall).
        fence(Ordering::Release);
        Ok(FrontRing {
            ring,
            req_prod_pvt: 0,
            rsp_cons: 0,
        })
    }

    /// The front end of a ring already in use, resuming at index `start` (`FRONT_RING_ATTACH`): the
    /// shared indices are left alone.
    pub fn attach(area: SharedArea<'a>, start: RingIdx) -> Result<Self> {
        Ok(FrontRing {
            ring: Sring::new(area)?,
            req_prod_pvt: start,
            rsp_cons: start,
        })
    }

    /// The number of entries (`RING_SIZE`).
    #[inline]
    pub fn size(&self) -> u32 {
        self.ring.size
    }

    /// The next request index (`req_prod_pvt`, not yet published if ahead of `req_prod`).
    #[inline]
    pub fn req_prod_pvt(&self) -> RingIdx {
        self.req_prod_pvt
    }

    /// The next response index to take (`rsp_cons`).
    #[inline]
    pub fn rsp_cons(&self) -> RingIdx {
        self.rsp_cons
    }

    /// The requests that can still be queued (`RING_FREE_REQUESTS`).
    #[inline]
    pub fn free_requests(&self) -> u32 {
        // Both private: 0 <= req_prod_pvt - rsp_cons <= size (responses are taken only for requests).
        self.size()
            .saturating_sub(self.req_prod_pvt.wrapping_sub(self.rsp_cons))
    }

    /// Whether no request can be queued (`RING_FULL`).
    #[inline]
    pub fn is_full(&self) -> bool {
        self.free_requests() == 0
    }

    /// Writes `req` into the next free slot (`*RING_GET_REQUEST(req_prod_pvt++) = req`) and returns its
    /// index; the back end sees it once pushed. `EAGAIN` when the ring is full.
    #[inline]
    pub fn next_request(&mut self, req: Req) -> Result<RingIdx> {
        if self.is_full() {
            return Err(Error::EAGAIN);
        }
        let i = self.req_prod_pvt;
        self.ring.write_req(i, req);
        self.req_prod_pvt = i.wrapping_add(1);
        Ok(i)
    }

    /// Publishes the queued requests (`RING_PUSH_REQUESTS`).
    #[inline]
    pub fn push_requests(&mut self) {
        // xen_wmb(); req_prod = req_prod_pvt: a Release store.
        self.ring
            .req_prod()
            .store(self.req_prod_pvt, Ordering::Release);
    }

    /// Publishes the queued requests and says whether the back end must be notified
    /// (`RING_PUSH_REQUESTS_AND_CHECK_NOTIFY`): whether `req_event` lies among the indices just published.
    #[inline]
    pub fn push_requests_and_check_notify(&mut self) -> bool {
        Sring::<Req, Rsp>::push_and_check(
            self.ring.req_prod(),
            self.ring.req_event(),
            self.req_prod_pvt,
        )
    }

    /// The responses published and not yet taken (`RING_HAS_UNCONSUMED_RESPONSES`). `EIO` if the back
    /// end claims more responses than requests are outstanding (`RING_RESPONSE_PROD_OVERFLOW`, tightened:
    /// a response is written over a request the back end took).
    #[inline]
    pub fn unconsumed_responses(&self) -> Result<u32> {
        // virt_rmb() after reading rsp_prod: an Acquire load, the slots are read after it.
        let prod = self.ring.rsp_prod().load(Ordering::Acquire);
        let n = prod.wrapping_sub(self.rsp_cons);
        if n > self.req_prod_pvt.wrapping_sub(self.rsp_cons) {
            return Err(Error::EIO);
        }
        Ok(n)
    }

    /// Takes the next response, copied out of the ring (`RING_COPY_RESPONSE`, `rsp_cons++`); `None` if
    /// none is waiting. `EIO` as for [`unconsumed_responses`](Self::unconsumed_responses).
    #[inline]
    pub fn take_response(&mut self) -> Result<Option<Rsp>> {
        if self.unconsumed_responses()? == 0 {
            return Ok(None);
        }
        let rsp = self.ring.read_rsp(self.rsp_cons);
        self.rsp_cons = self.rsp_cons.wrapping_add(1);
        Ok(Some(rsp))
    }

    /// The `n`-th response waiting (0: the next one [`take_response`](Self::take_response) takes), copied
    /// out of the ring without taking it; `None` if fewer than `n + 1` are waiting. For a protocol whose
    /// unit spans several responses (a network frame): look at all of them before taking any. `EIO` as
    /// for [`unconsumed_responses`](Self::unconsumed_responses).
    #[inline]
    pub fn peek_response(&self, n: u32) -> Result<Option<Rsp>> {
        if n >= self.unconsumed_responses()? {
            return Ok(None);
        }
        Ok(Some(self.ring.read_rsp(self.rsp_cons.wrapping_add(n))))
    }

    /// Whether responses are waiting; if none, asks the back end to notify on the next one and looks
    /// again (`RING_FINAL_CHECK_FOR_RESPONSES`): `false` means it is safe to sleep until the event.
    #[inline]
    pub fn final_check_for_responses(&mut self) -> Result<bool> {
        if self.unconsumed_responses()? > 0 {
            return Ok(true);
        }
        self.ring
            .rsp_event()
            .store(self.rsp_cons.wrapping_add(1), Ordering::Relaxed);
        // xen_mb(): rsp_event is written before rsp_prod is read again (StoreLoad), paired with the back
        // end's fence between publishing rsp_prod and reading rsp_event.
        fence(Ordering::SeqCst);
        Ok(self.unconsumed_responses()? > 0)
    }
}

/// The back end of a shared ring (`*_back_ring`): takes requests, queues responses.
pub struct BackRing<'a, Req: Plain, Rsp: Plain> {
    ring: Sring<'a, Req, Rsp>,
    rsp_prod_pvt: RingIdx,
    req_cons: RingIdx,
}

// SAFETY: as for `FrontRing`.
unsafe impl<Req: Plain, Rsp: Plain> Send for BackRing<'_, Req, Rsp> {}

impl<'a, Req: Plain, Rsp: Plain> BackRing<'a, Req, Rsp> {
    /// The back end of the ring over `area`, starting at index `start` (`BACK_RING_ATTACH`; 0 is
    /// `BACK_RING_INIT`): the front end initialised the shared indices. `EINVAL` as for
    /// [`FrontRing::init`].
    pub fn attach(area: SharedArea<'a>, start: RingIdx) -> Result<Self> {
        Ok(BackRing {
            ring: Sring::new(area)?,
            rsp_prod_pvt: start,
            req_cons: start,
        })
    }

    /// The number of entries (`RING_SIZE`).
    #[inline]
    pub fn size(&self) -> u32 {
        self.ring.size
    }

    /// The next request index to take (`req_cons`).
    #[inline]
    pub fn req_cons(&self) -> RingIdx {
        self.req_cons
    }

    /// The next response index (`rsp_prod_pvt`, not yet published if ahead of `rsp_prod`).
    #[inline]
    pub fn rsp_prod_pvt(&self) -> RingIdx {
        self.rsp_prod_pvt
    }

    /// The requests published and not yet taken, at most as many as can still be answered
    /// (`RING_HAS_UNCONSUMED_REQUESTS`). `EIO` if the front end claims more requests than the ring
    /// holds (`RING_REQUEST_PROD_OVERFLOW`) or moved `req_prod` back.
    #[inline]
    pub fn unconsumed_requests(&self) -> Result<u32> {
        // virt_rmb() after reading req_prod: an Acquire load, the slots are read after it.
        let prod = self.ring.req_prod().load(Ordering::Acquire);
        let in_flight = prod.wrapping_sub(self.rsp_prod_pvt);
        let req = prod.wrapping_sub(self.req_cons);
        if in_flight > self.size() || req > in_flight {
            return Err(Error::EIO);
        }
        // Private: 0 <= req_cons - rsp_prod_pvt <= size.
        let rsp = self
            .size()
            .saturating_sub(self.req_cons.wrapping_sub(self.rsp_prod_pvt));
        Ok(req.min(rsp))
    }

    /// Whether taking request `cons` would leave no slot for its response (`RING_REQUEST_CONS_OVERFLOW`).
    #[inline]
    pub fn request_cons_overflow(&self, cons: RingIdx) -> bool {
        cons.wrapping_sub(self.rsp_prod_pvt) >= self.size()
    }

    /// Takes the next request, copied out of the ring (`RING_COPY_REQUEST`, `req_cons++`); `None` if
    /// none is waiting or none can be answered until responses are queued
    /// ([`request_cons_overflow`](Self::request_cons_overflow)). `EIO` as for
    /// [`unconsumed_requests`](Self::unconsumed_requests).
    #[inline]
    pub fn take_request(&mut self) -> Result<Option<Req>> {
        if self.unconsumed_requests()? == 0 || self.request_cons_overflow(self.req_cons) {
            return Ok(None);
        }
        let req = self.ring.read_req(self.req_cons);
        self.req_cons = self.req_cons.wrapping_add(1);
        Ok(Some(req))
    }

    /// Writes `rsp` into the slot of the oldest request taken and not yet answered
    /// (`*RING_GET_RESPONSE(rsp_prod_pvt++) = rsp`) and returns its index. `EINVAL` if every request
    /// taken is answered (the slot would be a request not yet taken).
    #[inline]
    pub fn next_response(&mut self, rsp: Rsp) -> Result<RingIdx> {
        if self.rsp_prod_pvt == self.req_cons {
            return Err(Error::EINVAL);
        }
        let i = self.rsp_prod_pvt;
        self.ring.write_rsp(i, rsp);
        self.rsp_prod_pvt = i.wrapping_add(1);
        Ok(i)
    }

    /// Publishes the queued responses (`RING_PUSH_RESPONSES`).
    #[inline]
    pub fn push_responses(&mut self) {
        // xen_wmb(); rsp_prod = rsp_prod_pvt: a Release store.
        self.ring
            .rsp_prod()
            .store(self.rsp_prod_pvt, Ordering::Release);
    }

    /// Publishes the queued responses and says whether the front end must be notified
    /// (`RING_PUSH_RESPONSES_AND_CHECK_NOTIFY`).
    #[inline]
    pub fn push_responses_and_check_notify(&mut self) -> bool {
        Sring::<Req, Rsp>::push_and_check(
            self.ring.rsp_prod(),
            self.ring.rsp_event(),
            self.rsp_prod_pvt,
        )
    }

    /// Whether requests are waiting; if none, asks the front end to notify on the next one and looks
    /// again (`RING_FINAL_CHECK_FOR_REQUESTS`): `false` means it is safe to sleep until the event.
    #[inline]
    pub fn final_check_for_requests(&mut self) -> Result<bool> {
        if self.unconsumed_requests()? > 0 {
            return Ok(true);
        }
        self.ring
            .req_event()
            .store(self.req_cons.wrapping_add(1), Ordering::Relaxed);
        // xen_mb(): req_event is written before req_prod is read again (StoreLoad), paired with the front
        // end's fence between publishing req_prod and reading req_event.
        fence(Ordering::SeqCst);
        Ok(self.unconsumed_requests()? > 0)
    }
}

/// `struct xencons_interface` (`io/console.h`, unchanged up to Xen 4.17): the PV console's page.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct XenconsInterface {
    /// Input: the console daemon writes, the guest reads.
    pub r#in: [u8; 1024],
    /// Output: the guest writes, the console daemon reads.
    pub out: [u8; 2048],
    /// `in_cons`.
    pub in_cons: RingIdx,
    /// `in_prod`.
    pub in_prod: RingIdx,
    /// `out_cons`.
    pub out_cons: RingIdx,
    /// `out_prod`.
    pub out_prod: RingIdx,
}

/// `struct xenstore_domain_interface` (`io/xs_wire.h`, Xen 4.17): the xenstore ring page.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct XenstoreDomainInterface {
    /// Requests to the xenstore daemon.
    pub req: [u8; XENSTORE_RING_SIZE],
    /// Replies and watch events.
    pub rsp: [u8; XENSTORE_RING_SIZE],
    /// `req_cons`.
    pub req_cons: RingIdx,
    /// `req_prod`.
    pub req_prod: RingIdx,
    /// `rsp_cons`.
    pub rsp_cons: RingIdx,
    /// `rsp_prod`.
    pub rsp_prod: RingIdx,
    /// The server's features (`XENSTORE_SERVER_FEATURE_*`).
    pub server_features: u32,
    /// `XENSTORE_CONNECTED` or `XENSTORE_RECONNECT`.
    pub connection: u32,
    /// `XENSTORE_ERROR_*`.
    pub error: u32,
}

/// `XENSTORE_RING_SIZE`.
pub const XENSTORE_RING_SIZE: usize = 1024;

/// Which end of a byte ring the program is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The guest: writes the console's `out` (xenstore's `req`), reads `in` (`rsp`).
    Front,
    /// The daemon: writes `in` (`rsp`), reads `out` (`req`).
    Back,
}

/// One direction of a byte ring: its bytes and its two indices, as offsets in the page.
#[derive(Clone, Copy, Debug)]
struct Dir {
    data: usize,
    size: u32,
    cons: usize,
    prod: usize,
}

/// A pair of byte rings in one page (the PV console's or xenstore's), seen from one [`End`]: bytes are
/// written to one direction and read from the other, indices masked with the ring's size
/// (`MASK_XENCONS_IDX`, `MASK_XENSTORE_IDX`).
#[derive(Debug)]
pub struct ByteRing<'a> {
    area: SharedArea<'a>,
    tx: Dir,
    rx: Dir,
}

// SAFETY: as for `FrontRing`.
unsafe impl Send for ByteRing<'_> {}

impl<'a> ByteRing<'a> {
    /// The PV console's rings (`xencons_interface`) at the start of `area`, seen from `end`.
    pub fn console(area: SharedArea<'a>, end: End) -> ByteRing<'a> {
        type I = XenconsInterface;
        let out = Dir {
            data: offset_of!(I, out),
            size: 2048,
            cons: offset_of!(I, out_cons),
            prod: offset_of!(I, out_prod),
        };
        let inp = Dir {
            data: offset_of!(I, r#in),
            size: 1024,
            cons: offset_of!(I, in_cons),
            prod: offset_of!(I, in_prod),
        };
        ByteRing::of(area, end, out, inp)
    }

    /// Xenstore's rings (`xenstore_domain_interface`) at the start of `area`, seen from `end`.
    pub fn xenstore(area: SharedArea<'a>, end: End) -> ByteRing<'a> {
        type I = XenstoreDomainInterface;
        let req = Dir {
            data: offset_of!(I, req),
            size: XENSTORE_RING_SIZE as u32,
            cons: offset_of!(I, req_cons),
            prod: offset_of!(I, req_prod),
        };
        let rsp = Dir {
            data: offset_of!(I, rsp),
            size: XENSTORE_RING_SIZE as u32,
            cons: offset_of!(I, rsp_cons),
            prod: offset_of!(I, rsp_prod),
        };
        ByteRing::of(area, end, req, rsp)
    }

    fn of(area: SharedArea<'a>, end: End, front_tx: Dir, front_rx: Dir) -> ByteRing<'a> {
        let (tx, rx) = match end {
            End::Front => (front_tx, front_rx),
            End::Back => (front_rx, front_tx),
        };
        ByteRing { area, tx, rx }
    }

    /// The bytes waiting in `d` (`prod - cons`); `EIO` beyond its size.
    #[inline]
    fn used(&self, d: Dir, prod: RingIdx, cons: RingIdx) -> Result<u32> {
        let n = prod.wrapping_sub(cons);
        if n > d.size { Err(Error::EIO) } else { Ok(n) }
    }

    /// How many bytes [`write`](Self::write) can take now. `EIO` for impossible indices.
    #[inline]
    pub fn writable(&self) -> Result<u32> {
        let d = self.tx;
        let cons = self.area.index(d.cons).load(Ordering::Relaxed);
        let prod = self.area.index(d.prod).load(Ordering::Relaxed);
        Ok(d.size - self.used(d, prod, cons)?)
    }

    /// Whether everything written has been read by the other end (the direction written is empty).
    /// `EIO` for impossible indices.
    #[inline]
    pub fn is_drained(&self) -> Result<bool> {
        Ok(self.writable()? == self.tx.size)
    }

    /// How many bytes [`read`](Self::read) would return now (with a buffer large enough). `EIO` for
    /// impossible indices.
    #[inline]
    pub fn readable(&self) -> Result<u32> {
        let d = self.rx;
        let prod = self.area.index(d.prod).load(Ordering::Relaxed);
        let cons = self.area.index(d.cons).load(Ordering::Relaxed);
        self.used(d, prod, cons)
    }

    /// Writes as much of `bytes` as fits and publishes it; returns how many bytes were written (0 when
    /// the ring is full). `EIO`, nothing written, if the indices are impossible (the producer more than
    /// the ring's size ahead of the consumer, or behind it).
    pub fn write(&mut self, bytes: &[u8]) -> Result<usize> {
        let d = self.tx;
        // mb() after reading the indices (`__write_console`, `xb_write`): the consumer's index with
        // Acquire, so the bytes it freed are not overwritten before it is read.
        let cons = self.area.index(d.cons).load(Ordering::Acquire);
        let prod = self.area.index(d.prod).load(Ordering::Relaxed);
        let free = d.size - self.used(d, prod, cons)?;
        let n = bytes.len().min(free as usize);
        for (i, &b) in bytes[..n].iter().enumerate() {
            let at = d.data + (prod.wrapping_add(i as u32) & (d.size - 1)) as usize;
            // SAFETY: `at` is inside the direction's bytes, inside the area (writable, volatile only).
            unsafe { ptr::write_volatile(self.area.as_ptr().add(at), b) };
        }
        if n > 0 {
            // wmb(); prod += n: a Release store, the bytes are seen before the index.
            self.area
                .index(d.prod)
                .store(prod.wrapping_add(n as u32), Ordering::Release);
        }
        Ok(n)
    }

    /// Reads up to `buf.len()` waiting bytes and frees them; returns how many were read (0 when none
    /// waits). `EIO`, nothing read, for impossible indices.
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        let d = self.rx;
        // mb() after reading the indices (`domU_read_console`, `xb_read`): the producer's index with
        // Acquire, the bytes are read after it.
        let prod = self.area.index(d.prod).load(Ordering::Acquire);
        let cons = self.area.index(d.cons).load(Ordering::Relaxed);
        let n = buf.len().min(self.used(d, prod, cons)? as usize);
        for (i, b) in buf[..n].iter_mut().enumerate() {
            let at = d.data + (cons.wrapping_add(i as u32) & (d.size - 1)) as usize;
            // SAFETY: `at` is inside the direction's bytes, inside the area (volatile only).
            *b = unsafe { ptr::read_volatile(self.area.as_ptr().add(at)) };
        }
        if n > 0 {
            // mb(); cons += n: a Release store, the bytes are read before the peer may overwrite them.
            self.area
                .index(d.cons)
                .store(cons.wrapping_add(n as u32), Ordering::Release);
        }
        Ok(n)
    }
}
