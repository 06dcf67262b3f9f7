//! Shared rings, byte rings and the PV console on the host: a front end and a back end over the same
//! page, as two domains would be. Expected notify decisions and index values are computed by hand from
//! `io/ring.h`'s rules (`notify = (new - event) < (new - old)`, `final check: event = cons + 1`), with
//! distinct values throughout; peers writing impossible indices are refused; threads exercise the
//! orderings.

use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use xen_hypercall::mock;
use xen_hypercall::xen::console::{self, Console, PvConsole};
use xen_hypercall::xen::evtchn::{self, Port, PortArg};
use xen_hypercall::xen::hvm::{self, HvmParam};
use xen_hypercall::xen::ring::{
    BackRing, ByteRing, End, FrontRing, RingIdx, SharedArea, SringHeader, XenconsInterface,
    XenstoreDomainInterface, ring_size,
};
use xen_hypercall::xen::{Error, Page, Plain, nr};

/// A blkif-sized request (`blkif_request`: 112 bytes, 8-aligned).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BlkReq {
    pub id: u64,
    pub sector: u64,
    pub rest: [u8; 96],
}
// SAFETY: integers and bytes, no padding.
unsafe impl Plain for BlkReq {}

/// A blkif-sized response (`blkif_response`: 16 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BlkRsp {
    pub id: u64,
    pub status: i64,
}
// SAFETY: integers, no padding.
unsafe impl Plain for BlkRsp {}

fn req(id: u64) -> BlkReq {
    BlkReq {
        id,
        sector: id * 8,
        rest: [id as u8; 96],
    }
}

fn rsp(id: u64) -> BlkRsp {
    BlkRsp {
        id,
        status: -(id as i64),
    }
}

/// A zeroed page nobody else references (leaked: the rings may outlive the test's frame).
fn page() -> *mut Page {
    Box::into_raw(Box::new(Page::new()))
}

/// Two areas over the same `pages` pages at `p`: the two ends.
fn two_ends(p: *mut Page, pages: usize) -> (SharedArea<'static>, SharedArea<'static>) {
    // SAFETY: `p` is leaked, never referenced, and accessed only through rings and this test's volatile
    // or atomic accesses.
    unsafe {
        (
            SharedArea::new(p, pages).unwrap(),
            SharedArea::new(p, pages).unwrap(),
        )
    }
}

/// The shared index at `field` of the ring header at `p`, as the peer sees it.
fn shared(p: *mut Page, field: fn(*mut SringHeader) -> *mut RingIdx) -> &'static AtomicU32 {
    // SAFETY: the field is inside the leaked page, 4-aligned, accessed atomically only.
    unsafe { AtomicU32::from_ptr(field(p.cast())) }
}

fn req_prod(h: *mut SringHeader) -> *mut RingIdx {
    // SAFETY: only the address is formed.
    unsafe { &raw mut (*h).req_prod }
}
fn req_event(h: *mut SringHeader) -> *mut RingIdx {
    // SAFETY: only the address is formed.
    unsafe { &raw mut (*h).req_event }
}
fn rsp_prod(h: *mut SringHeader) -> *mut RingIdx {
    // SAFETY: only the address is formed.
    unsafe { &raw mut (*h).rsp_prod }
}
fn rsp_event(h: *mut SringHeader) -> *mut RingIdx {
    // SAFETY: only the address is formed.
    unsafe { &raw mut (*h).rsp_event }
}

// ---------------------------------------------------------------- shared rings

#[test]
fn ring_sizes_are_ring_h_s() {
    // (4096 - 64) / 112 = 36 -> 32; / 16 = 252 -> 128; / 12 = 336 -> 256; / 8 = 504 -> 256.
    assert_eq!(ring_size(4096, 112), 32);
    assert_eq!(ring_size(4096, 16), 128);
    assert_eq!(ring_size(4096, 12), 256);
    assert_eq!(ring_size(4096, 8), 256);
    // ring-page-order 1, 2, 3: 72 -> 64, 145 -> 128, 292 -> 256.
    assert_eq!(ring_size(2 * 4096, 112), 64);
    assert_eq!(ring_size(4 * 4096, 112), 128);
    assert_eq!(ring_size(8 * 4096, 112), 256);
    // Nothing fits.
    assert_eq!(ring_size(4096, 4096), 0);
    assert_eq!(ring_size(64, 8), 0);
    assert_eq!(ring_size(4096, 0), 0);
    // A ring of blkif-sized slots, built: 32 entries, and a 4-page one 128.
    let (a, _) = two_ends(page(), 1);
    assert_eq!(FrontRing::<BlkReq, BlkRsp>::init(a).unwrap().size(), 32);
    let p: *mut Page = Box::into_raw(Box::new([
        Page::new(),
        Page::new(),
        Page::new(),
        Page::new(),
    ]))
    .cast();
    let (a, _) = two_ends(p, 4);
    assert_eq!(FrontRing::<BlkReq, BlkRsp>::init(a).unwrap().size(), 128);
}

#[test]
fn areas_and_rings_refuse_bad_places() {
    let p = page();
    // SAFETY: refused before any access.
    unsafe {
        assert_eq!(
            SharedArea::new(ptr::null_mut(), 1).unwrap_err(),
            Error::EINVAL
        );
        assert_eq!(
            SharedArea::new(p.cast::<u8>().add(8).cast(), 1).unwrap_err(),
            Error::EINVAL
        );
        assert_eq!(SharedArea::new(p, 0).unwrap_err(), Error::EINVAL);
        assert_eq!(SharedArea::new(p, usize::MAX).unwrap_err(), Error::EINVAL);
    }
    // A slot larger than the page fits no entry.
    let (a, b) = two_ends(p, 1);
    assert_eq!(
        FrontRing::<[u64; 512], u64>::init(a).err(),
        Some(Error::EINVAL)
    );
    assert_eq!(
        BackRing::<[u64; 512], u64>::attach(b, 0).err(),
        Some(Error::EINVAL)
    );
}

#[test]
fn init_sets_the_shared_indices_as_shared_ring_init() {
    let p = page();
    // Garbage left in the page by a previous user.
    // SAFETY: the leaked page, not referenced.
    unsafe { ptr::write_bytes(p.cast::<u8>(), 0xa5, 4096) };
    let (a, _) = two_ends(p, 1);
    let front = FrontRing::<BlkReq, BlkRsp>::init(a).unwrap();
    assert_eq!(shared(p, req_prod).load(Ordering::Relaxed), 0);
    assert_eq!(shared(p, rsp_prod).load(Ordering::Relaxed), 0);
    assert_eq!(shared(p, req_event).load(Ordering::Relaxed), 1);
    assert_eq!(shared(p, rsp_event).load(Ordering::Relaxed), 1);
    // SAFETY: as above.
    let header = unsafe { ptr::read_volatile(p.cast::<SringHeader>()) };
    assert_eq!(header.pvt, [0; 4]);
    assert_eq!(header.pad, [0; 44]);
    // The slots are left alone.
    // SAFETY: as above.
    assert_eq!(unsafe { ptr::read_volatile(p.cast::<u8>().add(64)) }, 0xa5);
    assert_eq!(
        (
            front.req_prod_pvt(),
            front.rsp_cons(),
            front.free_requests()
        ),
        (0, 0, 32)
    );
}

#[test]
fn requests_and_responses_cross_with_ring_h_s_notify_decisions() {
    let p = page();
    let (a, b) = two_ends(p, 1);
    let mut front = FrontRing::<BlkReq, BlkRsp>::init(a).unwrap();
    let mut back = BackRing::<BlkReq, BlkRsp>::attach(b, 0).unwrap();

    // One request: old 0, new 1, req_event 1 -> (1-1)=0 < (1-0)=1: notify.
    assert_eq!(front.next_request(req(10)), Ok(0));
    assert_eq!(
        shared(p, req_prod).load(Ordering::Relaxed),
        0,
        "not published before the push"
    );
    assert!(front.push_requests_and_check_notify());
    assert_eq!(shared(p, req_prod).load(Ordering::Relaxed), 1);
    // Two more: old 1, new 3, req_event still 1 -> (3-1)=2 < 2 is false: the back end did not ask.
    front.next_request(req(11)).unwrap();
    front.next_request(req(12)).unwrap();
    assert!(!front.push_requests_and_check_notify());
    assert_eq!(front.free_requests(), 29);

    // The back end takes the three, finds nothing more and re-arms: req_event = req_cons + 1 = 4.
    assert_eq!(back.unconsumed_requests(), Ok(3));
    for id in 10..13 {
        assert_eq!(back.take_request(), Ok(Some(req(id))));
    }
    assert_eq!(back.take_request(), Ok(None));
    assert_eq!(back.final_check_for_requests(), Ok(false));
    assert_eq!(shared(p, req_event).load(Ordering::Relaxed), 4);
    // Now a push reaching index 4 notifies: old 3, new 4 -> (4-4)=0 < 1.
    front.next_request(req(13)).unwrap();
    assert!(front.push_requests_and_check_notify());
    assert_eq!(
        back.final_check_for_requests(),
        Ok(true),
        "work waiting: no re-arm"
    );
    assert_eq!(shared(p, req_event).load(Ordering::Relaxed), 4);
    assert_eq!(back.take_request(), Ok(Some(req(13))));

    // Four responses: old 0, new 4, rsp_event 1 -> (4-1)=3 < 4: notify.
    for id in 10..14 {
        back.next_response(rsp(id)).unwrap();
    }
    assert_eq!(
        back.next_response(rsp(99)),
        Err(Error::EINVAL),
        "no request left to answer"
    );
    assert!(back.push_responses_and_check_notify());
    assert_eq!(front.unconsumed_responses(), Ok(4));
    for id in 10..14 {
        assert_eq!(front.take_response(), Ok(Some(rsp(id))));
    }
    assert_eq!(front.take_response(), Ok(None));
    assert_eq!(front.free_requests(), 32);
    // Nothing left: rsp_event = rsp_cons + 1 = 5, sleep.
    assert_eq!(front.final_check_for_responses(), Ok(false));
    assert_eq!(shared(p, rsp_event).load(Ordering::Relaxed), 5);
}

#[test]
fn a_back_end_batching_its_events_is_notified_only_when_the_batch_is_reached() {
    let p = page();
    let (a, b) = two_ends(p, 1);
    let mut front = FrontRing::<u64, u64>::init(a).unwrap();
    let _back = BackRing::<u64, u64>::attach(b, 0).unwrap();
    // A back end wanting one event per four requests (ring.h: "a customised version of FINAL_CHECK").
    shared(p, req_event).store(4, Ordering::Relaxed);
    let mut notified = Vec::new();
    for i in 0..6 {
        front.next_request(i).unwrap();
        notified.push(front.push_requests_and_check_notify());
    }
    // Publishing index 3 (new = 4) crosses req_event = 4; the others do not.
    assert_eq!(notified, [false, false, false, true, false, false]);
    // Several at once across the event: old 6, new 9, event 8 -> (9-8)=1 < 3.
    shared(p, req_event).store(8, Ordering::Relaxed);
    for i in 0..3 {
        front.next_request(i).unwrap();
    }
    assert!(front.push_requests_and_check_notify());
}

#[test]
fn the_front_end_stops_at_a_full_ring_and_the_back_end_at_unanswered_requests() {
    let (a, b) = two_ends(page(), 1);
    let mut front = FrontRing::<BlkReq, BlkRsp>::init(a).unwrap();
    let mut back = BackRing::<BlkReq, BlkRsp>::attach(b, 0).unwrap();
    for id in 0..32 {
        assert_eq!(front.next_request(req(id)), Ok(id as u32));
    }
    assert!(front.is_full());
    assert_eq!(front.next_request(req(32)), Err(Error::EAGAIN));
    front.push_requests();
    for id in 0..32 {
        assert_eq!(back.take_request(), Ok(Some(req(id))));
    }
    // All 32 taken, none answered: the next index would overflow (RING_REQUEST_CONS_OVERFLOW).
    assert!(back.request_cons_overflow(back.req_cons()));
    assert_eq!(back.take_request(), Ok(None));
    back.next_response(rsp(0)).unwrap();
    assert!(!back.request_cons_overflow(back.req_cons()));
    back.push_responses();
    assert_eq!(front.take_response(), Ok(Some(rsp(0))));
    assert_eq!(front.free_requests(), 1);
}

#[test]
fn free_running_indices_wrap_at_2_pow_32() {
    let p = page();
    let start: RingIdx = u32::MAX - 2;
    // A ring in use whose indices are about to wrap (as SHARED_RING_INIT would leave it after 2^32 - 3
    // requests): producers at `start`, events one further.
    shared(p, req_prod).store(start, Ordering::Relaxed);
    shared(p, rsp_prod).store(start, Ordering::Relaxed);
    shared(p, req_event).store(start.wrapping_add(1), Ordering::Relaxed);
    shared(p, rsp_event).store(start.wrapping_add(1), Ordering::Relaxed);
    let (a, b) = two_ends(p, 1);
    let mut front = FrontRing::<BlkReq, BlkRsp>::attach(a, start).unwrap();
    let mut back = BackRing::<BlkReq, BlkRsp>::attach(b, start).unwrap();
    for id in 0..8 {
        front.next_request(req(id)).unwrap();
    }
    assert_eq!(front.req_prod_pvt(), 5, "MAX-2 + 8 wraps to 5");
    assert_eq!(front.free_requests(), 24);
    // old MAX-2, new 5, event MAX-1 -> (5-(MAX-1)) = 7 < 8: notify across the wrap.
    assert!(front.push_requests_and_check_notify());
    assert_eq!(back.unconsumed_requests(), Ok(8));
    for id in 0..8 {
        assert_eq!(back.take_request(), Ok(Some(req(id))));
        back.next_response(rsp(id)).unwrap();
    }
    assert!(back.push_responses_and_check_notify());
    assert_eq!(front.unconsumed_responses(), Ok(8));
    for id in 0..8 {
        assert_eq!(front.take_response(), Ok(Some(rsp(id))));
    }
    assert_eq!(
        (front.rsp_cons(), back.req_cons(), back.rsp_prod_pvt()),
        (5, 5, 5)
    );
    assert_eq!(front.final_check_for_responses(), Ok(false));
    assert_eq!(shared(p, rsp_event).load(Ordering::Relaxed), 6);
    assert_eq!(back.final_check_for_requests(), Ok(false));
    assert_eq!(shared(p, req_event).load(Ordering::Relaxed), 6);
}

#[test]
fn a_response_pushed_without_notification_is_caught_by_the_final_check() {
    let p = page();
    let (a, b) = two_ends(p, 1);
    let mut front = FrontRing::<u64, u64>::init(a).unwrap();
    let mut back = BackRing::<u64, u64>::attach(b, 0).unwrap();
    front.next_request(1).unwrap();
    front.next_request(2).unwrap();
    front.push_requests();
    back.take_request().unwrap();
    back.take_request().unwrap();
    back.next_response(10).unwrap();
    assert!(
        back.push_responses_and_check_notify(),
        "rsp_event 1 reached"
    );
    // The front end takes the response and finds the ring empty: it is about to sleep.
    assert_eq!(front.take_response(), Ok(Some(10)));
    assert_eq!(front.unconsumed_responses(), Ok(0));
    // Meanwhile the back end answers the second request: rsp_event is still 1, so it does not notify
    // (old 1, new 2 -> (2-1)=1 < 1 is false).
    back.next_response(20).unwrap();
    assert!(!back.push_responses_and_check_notify());
    // Sleeping now would lose it: the final check finds it.
    assert_eq!(front.final_check_for_responses(), Ok(true));
    assert_eq!(front.take_response(), Ok(Some(20)));
    assert_eq!(front.final_check_for_responses(), Ok(false));
    // The same on the request side.
    assert!(
        !front.push_requests_and_check_notify(),
        "nothing new, no notify"
    );
    assert_eq!(back.final_check_for_requests(), Ok(false));
    front.next_request(3).unwrap();
    assert!(
        front.push_requests_and_check_notify(),
        "req_event = 3 reached"
    );
    shared(p, req_event).store(1, Ordering::Relaxed); // as if the back end never re-armed
    front.next_request(4).unwrap();
    assert!(!front.push_requests_and_check_notify());
    assert_eq!(back.final_check_for_requests(), Ok(true));
}

#[test]
fn a_front_end_claiming_impossible_requests_is_refused() {
    let p = page();
    let (a, b) = two_ends(p, 1);
    let _front = FrontRing::<BlkReq, BlkRsp>::init(a).unwrap();
    let mut back = BackRing::<BlkReq, BlkRsp>::attach(b, 0).unwrap();
    // Exactly a ring's worth is fine.
    shared(p, req_prod).store(32, Ordering::Relaxed);
    assert_eq!(back.unconsumed_requests(), Ok(32));
    // One more is not (RING_REQUEST_PROD_OVERFLOW), nor far ahead, nor wrapped "behind".
    for bad in [33, 0x8000_0000, u32::MAX] {
        shared(p, req_prod).store(bad, Ordering::Relaxed);
        assert_eq!(
            back.unconsumed_requests(),
            Err(Error::EIO),
            "req_prod {bad}"
        );
        assert_eq!(back.take_request(), Err(Error::EIO), "req_prod {bad}");
        assert_eq!(
            back.final_check_for_requests(),
            Err(Error::EIO),
            "req_prod {bad}"
        );
        assert_eq!(back.req_cons(), 0, "nothing taken");
    }
    // Moved back after requests were taken.
    shared(p, req_prod).store(4, Ordering::Relaxed);
    for _ in 0..4 {
        back.take_request().unwrap().unwrap();
    }
    shared(p, req_prod).store(2, Ordering::Relaxed);
    assert_eq!(back.take_request(), Err(Error::EIO));
    assert_eq!(back.req_cons(), 4);
}

#[test]
fn a_back_end_claiming_impossible_responses_is_refused() {
    let p = page();
    let (a, _) = two_ends(p, 1);
    let mut front = FrontRing::<BlkReq, BlkRsp>::init(a).unwrap();
    // No request outstanding: a single response is impossible.
    shared(p, rsp_prod).store(1, Ordering::Relaxed);
    assert_eq!(front.unconsumed_responses(), Err(Error::EIO));
    assert_eq!(front.take_response(), Err(Error::EIO));
    assert_eq!(front.final_check_for_responses(), Err(Error::EIO));
    // Three outstanding: three are fine, four or far ahead are not.
    for id in 0..3 {
        front.next_request(req(id)).unwrap();
    }
    front.push_requests();
    for bad in [4, 33, 0x8000_0000, u32::MAX] {
        shared(p, rsp_prod).store(bad, Ordering::Relaxed);
        assert_eq!(front.take_response(), Err(Error::EIO), "rsp_prod {bad}");
        assert_eq!(front.rsp_cons(), 0);
    }
    shared(p, rsp_prod).store(3, Ordering::Relaxed);
    assert_eq!(front.unconsumed_responses(), Ok(3));
    assert!(front.take_response().unwrap().is_some());
}

/// A small xorshift generator: garbage written by a peer.
fn garbage(state: &mut u64) -> u32 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state as u32
}

#[test]
fn garbage_indices_never_panic_nor_escape_the_ring() {
    let p = page();
    let (a, b) = two_ends(p, 1);
    let mut front = FrontRing::<BlkReq, BlkRsp>::init(a).unwrap();
    let mut back = BackRing::<BlkReq, BlkRsp>::attach(b, 0).unwrap();
    let mut s = 0x9e37_79b9_7f4a_7c15;
    let (mut refused, mut taken) = (0, 0);
    let rounds = if cfg!(miri) { 200 } else { 20_000 };
    for _ in 0..rounds {
        let _ = front.next_request(req(1));
        front.push_requests();
        // The "peer" scribbles over every shared index.
        for f in [req_prod, req_event, rsp_prod, rsp_event] {
            let v = garbage(&mut s);
            // Mostly near the real indices, sometimes anywhere.
            let v = if v & 1 == 0 {
                v
            } else {
                front.req_prod_pvt().wrapping_add(v % 5)
            };
            shared(p, f).store(v, Ordering::Relaxed);
        }
        for r in [
            back.take_request().map(|r| r.is_some()),
            front.take_response().map(|r| r.is_some()),
        ] {
            match r {
                Ok(true) => taken += 1,
                Ok(false) => {}
                Err(e) => {
                    assert_eq!(e, Error::EIO);
                    refused += 1;
                }
            }
        }
        let _ = back.next_response(rsp(2));
        let _ = back.push_responses_and_check_notify();
        let _ = front.final_check_for_responses();
        let _ = back.final_check_for_requests();
        assert!(front.free_requests() <= 32);
        assert!(back.req_cons().wrapping_sub(back.rsp_prod_pvt()) <= 32);
    }
    // Both outcomes happened: the loop did not pass by refusing everything (or nothing).
    assert!(
        refused > rounds / 20 && taken > rounds / 20,
        "refused {refused}, taken {taken}"
    );
}

/// The event channel between two threads: a latched flag, as a pending bit is.
#[derive(Default)]
struct Event(AtomicBool);

impl Event {
    fn send(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    /// Waits for the event and takes it; a lost wake-up (none within 10 s) fails the test.
    fn wait(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.0.swap(false, Ordering::SeqCst) {
            assert!(
                Instant::now() < deadline,
                "lost wake-up: slept with work pending"
            );
            std::thread::yield_now();
        }
    }
}

#[test]
fn threads_exchange_requests_and_responses_without_lost_wake_ups() {
    // Fewer under Miri, which runs each access thousands of times slower.
    const N: u64 = if cfg!(miri) { 500 } else { 50_000 };
    let p = page();
    let (a, b) = two_ends(p, 1);
    let mut front = FrontRing::<BlkReq, BlkRsp>::init(a).unwrap();
    let mut back = BackRing::<BlkReq, BlkRsp>::attach(b, 0).unwrap();
    let (to_back, to_front) = (Arc::new(Event::default()), Arc::new(Event::default()));
    let (tb, tf) = (to_back.clone(), to_front.clone());
    let backend = std::thread::spawn(move || {
        let (mut served, mut slept) = (0, 0);
        while served < N {
            while let Some(r) = back.take_request().unwrap() {
                // Every byte of the request as the front end wrote it (the Acquire on req_prod).
                assert_eq!(r, req(r.id));
                back.next_response(rsp(r.id)).unwrap();
                served += 1;
                if back.push_responses_and_check_notify() {
                    tf.send();
                }
            }
            if served < N && !back.final_check_for_requests().unwrap() {
                tb.wait();
                slept += 1;
            }
        }
        slept
    });
    let (mut sent, mut got, mut slept) = (0, 0, 0);
    while got < N {
        let mut queued = false;
        while sent < N && !front.is_full() {
            front.next_request(req(sent)).unwrap();
            sent += 1;
            queued = true;
        }
        if queued && front.push_requests_and_check_notify() {
            to_back.send();
        }
        while let Some(r) = front.take_response().unwrap() {
            assert_eq!(r, rsp(got), "in order, intact");
            got += 1;
        }
        if got < N && (sent == N || front.is_full()) && !front.final_check_for_responses().unwrap()
        {
            to_front.wait();
            slept += 1;
        }
    }
    let back_slept = backend.join().unwrap();
    assert_eq!(front.rsp_cons(), N as u32);
    // The sleeping paths ran (thousands of times on a 2-core host), not only the busy ones.
    assert!(slept + back_slept > 0, "no end ever slept");
}

/// The same exchange with a front end that sleeps without re-arming `rsp_event` (a final check that is
/// only a check): the back end is never asked to notify again and the front end would sleep forever.
#[test]
fn a_final_check_that_does_not_re_arm_loses_the_wake_up() {
    let p = page();
    let (a, b) = two_ends(p, 1);
    let mut front = FrontRing::<u64, u64>::init(a).unwrap();
    let mut back = BackRing::<u64, u64>::attach(b, 0).unwrap();
    front.next_request(1).unwrap();
    front.next_request(2).unwrap();
    front.push_requests();
    back.take_request().unwrap();
    back.take_request().unwrap();
    back.next_response(1).unwrap();
    assert!(back.push_responses_and_check_notify());
    assert_eq!(front.take_response(), Ok(Some(1)));
    // Broken: "nothing waiting" and sleep, without writing rsp_event.
    assert_eq!(front.unconsumed_responses(), Ok(0));
    back.next_response(2).unwrap();
    assert!(
        !back.push_responses_and_check_notify(),
        "the wake-up is lost"
    );
    // The real final check re-arms, so the next push notifies.
    assert_eq!(front.take_response(), Ok(Some(2)));
    assert_eq!(front.final_check_for_responses(), Ok(false));
    front.next_request(3).unwrap();
    front.push_requests();
    back.take_request().unwrap();
    back.next_response(3).unwrap();
    assert!(back.push_responses_and_check_notify());
}

// ---------------------------------------------------------------- byte rings

fn cons_page() -> *mut XenconsInterface {
    page().cast()
}

/// The index `field` of the console page at `c`, as the peer sees it.
fn cons_idx(
    c: *mut XenconsInterface,
    field: fn(*mut XenconsInterface) -> *mut u32,
) -> &'static AtomicU32 {
    // SAFETY: inside the leaked page, 4-aligned, accessed atomically only.
    unsafe { AtomicU32::from_ptr(field(c)) }
}
fn out_cons(c: *mut XenconsInterface) -> *mut u32 {
    // SAFETY: only the address is formed.
    unsafe { &raw mut (*c).out_cons }
}
fn out_prod(c: *mut XenconsInterface) -> *mut u32 {
    // SAFETY: only the address is formed.
    unsafe { &raw mut (*c).out_prod }
}
fn in_cons(c: *mut XenconsInterface) -> *mut u32 {
    // SAFETY: only the address is formed.
    unsafe { &raw mut (*c).in_cons }
}
fn in_prod(c: *mut XenconsInterface) -> *mut u32 {
    // SAFETY: only the address is formed.
    unsafe { &raw mut (*c).in_prod }
}

fn console_ends(c: *mut XenconsInterface) -> (ByteRing<'static>, ByteRing<'static>) {
    let (a, b) = two_ends(c.cast(), 1);
    (
        ByteRing::console(a, End::Front),
        ByteRing::console(b, End::Back),
    )
}

#[test]
fn the_console_s_two_directions_are_out_and_in() {
    let c = cons_page();
    let (mut guest, mut daemon) = console_ends(c);
    assert_eq!(guest.writable(), Ok(2048));
    assert_eq!(daemon.writable(), Ok(1024));
    assert_eq!(guest.write(b"hello"), Ok(5));
    assert_eq!(cons_idx(c, out_prod).load(Ordering::Relaxed), 5);
    // SAFETY: the leaked page; a volatile copy.
    let out = unsafe { ptr::read_volatile(&raw const (*c).out) };
    assert_eq!(&out[..5], b"hello");
    assert_eq!(daemon.readable(), Ok(5));
    let mut buf = [0; 8];
    assert_eq!(daemon.read(&mut buf), Ok(5));
    assert_eq!(&buf[..5], b"hello");
    assert_eq!(cons_idx(c, out_cons).load(Ordering::Relaxed), 5);
    assert_eq!(daemon.write(b"ls\n"), Ok(3));
    // SAFETY: as above.
    let inp = unsafe { ptr::read_volatile(&raw const (*c).r#in) };
    assert_eq!(&inp[..3], b"ls\n");
    assert_eq!(guest.read(&mut buf[..2]), Ok(2));
    assert_eq!(&buf[..2], b"ls");
    assert_eq!(cons_idx(c, in_cons).load(Ordering::Relaxed), 2);
    assert_eq!(guest.readable(), Ok(1));
}

#[test]
fn byte_rings_fill_wrap_and_mask() {
    let c = cons_page();
    // Just below 2^32, so that the 2048-byte ring wraps its indices and its bytes.
    for f in [out_cons, out_prod] {
        cons_idx(c, f).store(u32::MAX - 99, Ordering::Relaxed);
    }
    let (mut guest, mut daemon) = console_ends(c);
    let data: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
    assert_eq!(guest.write(&data), Ok(2048), "a full ring's worth");
    assert_eq!(guest.write(&data[2048..]), Ok(0), "full");
    assert_eq!(cons_idx(c, out_prod).load(Ordering::Relaxed), 2048 - 100);
    // Byte 0 went to offset (2^32 - 100) & 2047 = 1948.
    // SAFETY: the leaked page; a volatile read.
    let first = unsafe { ptr::read_volatile(&raw const (*c).out[1948]) };
    assert_eq!(first, data[0]);
    let mut got = vec![0; 1000];
    assert_eq!(daemon.read(&mut got), Ok(1000));
    assert_eq!(got, data[..1000]);
    assert_eq!(guest.write(&data[2048..]), Ok(952));
    let mut rest = vec![0; 3000];
    assert_eq!(daemon.read(&mut rest), Ok(2000));
    assert_eq!(rest[..2000], data[1000..]);
}

#[test]
fn impossible_byte_ring_indices_are_refused() {
    let c = cons_page();
    let (mut guest, mut daemon) = console_ends(c);
    // The producer exactly a ring ahead is full, not an error.
    cons_idx(c, out_cons).store(0, Ordering::Relaxed);
    cons_idx(c, out_prod).store(2048, Ordering::Relaxed);
    assert_eq!(guest.write(b"x"), Ok(0));
    assert_eq!(daemon.readable(), Ok(2048));
    // One more, or the consumer ahead of the producer, is refused, by both ends.
    for (cons, prod) in [(0, 2049), (5, 4), (0, 0x8000_0000)] {
        cons_idx(c, out_cons).store(cons, Ordering::Relaxed);
        cons_idx(c, out_prod).store(prod, Ordering::Relaxed);
        assert_eq!(guest.write(b"x"), Err(Error::EIO), "{cons} {prod}");
        assert_eq!(guest.writable(), Err(Error::EIO));
        assert_eq!(daemon.read(&mut [0; 4]), Err(Error::EIO));
        assert_eq!(
            cons_idx(c, out_prod).load(Ordering::Relaxed),
            prod,
            "nothing written"
        );
        assert_eq!(
            cons_idx(c, out_cons).load(Ordering::Relaxed),
            cons,
            "nothing consumed"
        );
    }
    cons_idx(c, in_cons).store(7, Ordering::Relaxed);
    cons_idx(c, in_prod).store(7 + 1025, Ordering::Relaxed);
    assert_eq!(guest.read(&mut [0; 4]), Err(Error::EIO));
    cons_idx(c, in_prod).store(7 + 1024, Ordering::Relaxed);
    assert_eq!(guest.read(&mut [0; 4]), Ok(4));
}

#[test]
fn xenstore_rings_are_req_and_rsp() {
    let x: *mut XenstoreDomainInterface = page().cast();
    let (a, b) = two_ends(x.cast(), 1);
    let (mut guest, mut xenstored) = (
        ByteRing::xenstore(a, End::Front),
        ByteRing::xenstore(b, End::Back),
    );
    let msg = b"\x01\0\0\0\0\0\0\0\0\0\0\0\x09\0\0\0/local/d\0";
    assert_eq!(guest.write(msg), Ok(msg.len()));
    // SAFETY: the leaked page; volatile reads.
    let (req, req_prod) = unsafe {
        (
            ptr::read_volatile(&raw const (*x).req),
            ptr::read_volatile(&raw const (*x).req_prod),
        )
    };
    assert_eq!((&req[..msg.len()], req_prod), (&msg[..], msg.len() as u32));
    let mut buf = [0; 64];
    assert_eq!(xenstored.read(&mut buf), Ok(msg.len()));
    assert_eq!(xenstored.write(b"OK\0"), Ok(3));
    // SAFETY: as above.
    assert_eq!(unsafe { ptr::read_volatile(&raw const (*x).rsp_prod) }, 3);
    assert_eq!(guest.read(&mut buf), Ok(3));
    assert_eq!(&buf[..3], b"OK\0");
    assert_eq!(guest.writable(), Ok(1024));
    // A 1025-byte claim is refused.
    // SAFETY: as above.
    unsafe { ptr::write_volatile(&raw mut (*x).rsp_prod, 3 + 1025) };
    assert_eq!(guest.read(&mut buf), Err(Error::EIO));
}

// ---------------------------------------------------------------- the PV console

/// The ports the recorded `EVTCHNOP_send`s went to.
fn sends() -> Vec<Port> {
    mock::take_calls()
        .iter()
        .filter(|c| c.op == nr::EVENT_CHANNEL_OP && c.args[0] == evtchn::EVTCHNOP_SEND)
        .map(|c| c.read::<PortArg>(1).unwrap().port)
        .collect()
}

#[test]
fn a_full_console_notifies_waits_and_resumes_when_the_daemon_consumes() {
    mock::reset();
    // Every notification (EVTCHNOP_send) and console_io call succeeds.
    mock::answer_zero();
    let c = cons_page();
    let (guest, mut daemon) = console_ends(c);
    let data: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    let mut received = Vec::new();
    let mut waits = 0;
    {
        let mut con = PvConsole::new(guest, Port(9), || {
            waits += 1;
            // What the wait sees: a full ring, the daemon notified of it.
            assert_eq!(
                cons_idx(c, out_prod).load(Ordering::Relaxed)
                    - cons_idx(c, out_cons).load(Ordering::Relaxed),
                2048
            );
            // The daemon consumes 1500 bytes, then its event comes.
            let mut buf = [0; 1500];
            let n = daemon.read(&mut buf).unwrap();
            received.extend_from_slice(&buf[..n]);
            Ok(())
        });
        con.write(&data).unwrap();
    }
    // 2048 fit; waits free 1500 at a time: 2048 + 1500 = 3548, + 1500 = 5048 >= 5000.
    assert_eq!(waits, 2);
    let mut rest = [0; 2048];
    let n = daemon.read(&mut rest).unwrap();
    received.extend_from_slice(&rest[..n]);
    assert_eq!(received, data);
    // Sends: after writing 2048; the full ring (0 written) before each wait; after each resumed write.
    assert_eq!(sends(), [Port(9); 5]);
}

#[test]
fn a_console_whose_daemon_never_consumes_waits_instead_of_overwriting() {
    mock::reset();
    // Every notification (EVTCHNOP_send) and console_io call succeeds.
    mock::answer_zero();
    let c = cons_page();
    let (guest, _) = console_ends(c);
    let mut waits = 0;
    let mut con = PvConsole::new(guest, Port(4), || {
        waits += 1;
        if waits == 3 {
            Err(Error::ETIMEDOUT)
        } else {
            Ok(())
        }
    });
    let data = [b'z'; 3000];
    assert_eq!(con.write(&data), Err(Error::ETIMEDOUT));

    assert_eq!(waits, 3);
    assert_eq!(
        cons_idx(c, out_prod).load(Ordering::Relaxed),
        2048,
        "no byte beyond the ring"
    );
    assert_eq!(cons_idx(c, out_cons).load(Ordering::Relaxed), 0);
}

#[test]
fn console_input_is_read_and_the_daemon_told() {
    mock::reset();
    // Every notification (EVTCHNOP_send) and console_io call succeeds.
    mock::answer_zero();
    let c = cons_page();
    let (guest, mut daemon) = console_ends(c);
    let mut con = PvConsole::new(guest, Port(6), || Ok(()));
    let mut buf = [0; 16];
    assert_eq!(con.read(&mut buf), Ok(0));
    assert_eq!(sends(), [], "nothing read, nothing said");
    daemon.write(b"yes\r").unwrap();
    assert_eq!(con.read(&mut buf), Ok(4));
    assert_eq!(&buf[..4], b"yes\r");
    assert_eq!(sends(), [Port(6)]);
    use std::fmt::Write as _;
    write!(con, "{}-{}", 4, 2).unwrap();
    let mut out = [0; 8];
    assert_eq!(daemon.read(&mut out), Ok(3));
    assert_eq!(&out[..3], b"4-2");
}

#[test]
fn console_open_finds_the_ring_of_an_xl_domu() {
    mock::reset();
    let c = cons_page();
    mock::set_default(|call| {
        if call.op() == nr::HVM_OP && call.arg(0) == hvm::HVMOP_GET_PARAM {
            call.update(1, |p: &mut HvmParam| {
                p.value = match p.index {
                    17 => 0x3_9001,
                    18 => 11,
                    _ => 0,
                }
            });
        }
        0
    });
    assert_eq!(console::ring_location(), Ok(Some((0x3_9001, Port(11)))));
    let mut asked = None;
    let mut con = Console::open(
        |pfn| {
            asked = Some(pfn);
            // SAFETY: the leaked page stands for frame `pfn`.
            unsafe { SharedArea::new(c.cast(), 1) }
        },
        || Ok(()),
    )
    .unwrap();
    assert!(matches!(con, Console::Ring(_)));
    con.write(b"up\n").unwrap();

    assert_eq!(asked, Some(0x3_9001));
    // SAFETY: the leaked page; volatile reads.
    let out = unsafe { ptr::read_volatile(&raw const (*c).out) };
    assert_eq!(&out[..3], b"up\n");
    assert_eq!(sends(), [Port(11)]);
    mock::reset();
}

#[test]
fn console_open_without_a_ring_is_the_hypervisor_s() {
    mock::reset();
    // Every notification (EVTCHNOP_send) and console_io call succeeds.
    mock::answer_zero();
    // HVM_PARAM_CONSOLE_PFN reads 0 (dom0, dom0less): console_io, the closures untouched.
    let mut con = Console::open(|_| panic!("no ring to map"), || panic!("no wait")).unwrap();
    assert!(matches!(con, Console::Hypervisor));
    mock::take_calls();
    con.write(b"dom0\n").unwrap();
    let calls = mock::take_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(
        (calls[0].op, calls[0].args[0], calls[0].args[1]),
        (nr::CONSOLE_IO, console::CONSOLEIO_WRITE, 5)
    );
    // A parameter that cannot be read (an x86 PV guest) is no ring either.
    mock::fails(Error::EINVAL);
    assert_eq!(console::ring_location(), Ok(None));
}

#[test]
fn threads_stream_through_the_console_ring() {
    const N: usize = if cfg!(miri) { 5_000 } else { 300_000 };
    let c = cons_page();
    let (guest, mut daemon) = console_ends(c);
    let (ev_guest, ev_daemon) = (Arc::new(Event::default()), Arc::new(Event::default()));
    let start = Arc::new(Barrier::new(2));
    let (eg, ed, s2) = (ev_guest.clone(), ev_daemon.clone(), start.clone());
    let writer = std::thread::spawn(move || {
        mock::reset();
        // Every notification (EVTCHNOP_send) succeeds.
        mock::answer_zero();
        s2.wait();
        let data: Vec<u8> = (0..N).map(|i| (i % 253) as u8).collect();
        let mut con = PvConsole::new(guest, Port(2), || {
            eg.wait();
            Ok(())
        });
        for chunk in data.chunks(777) {
            con.write(chunk).unwrap();
            ed.send(); // what the mocked EVTCHNOP_send stands for
        }
    });
    start.wait();
    let mut got = 0;
    let mut buf = [0; 600];
    let mut writer = Some(writer);
    while got < N {
        // Once the writer has ended, joined before the read: the join makes everything it wrote visible
        // (`is_finished` alone does not order its writes before this thread's reads).
        if writer.as_ref().is_some_and(|w| w.is_finished()) {
            writer.take().unwrap().join().unwrap();
        }
        let n = daemon.read(&mut buf).unwrap();
        for (i, &b) in buf[..n].iter().enumerate() {
            assert_eq!(b, ((got + i) % 253) as u8, "byte {}", got + i);
        }
        got += n;
        if n > 0 {
            ev_guest.send(); // room made
        } else if writer.is_none() {
            break; // the writer stopped short
        } else {
            std::thread::yield_now();
        }
    }
    if let Some(w) = writer {
        w.join().unwrap();
    }
    assert_eq!(got, N);
    let _ = ev_daemon;
}

/// The console waiting with `Events::wait` on a `SharedInfo` in memory: each `SCHEDOP_poll` is where the
/// daemon (the mock's responder) consumes 1000 bytes and raises the console's port, as xenconsoled does.
#[test]
fn a_full_console_waits_with_events_wait_and_resumes_on_the_daemon_s_event() {
    use std::cell::RefCell;
    use std::rc::Rc;
    use xen_hypercall::xen::evtchn::Events;
    use xen_hypercall::xen::sched;
    use xen_hypercall::xen::vcpu::SharedInfo;

    mock::reset();
    let info: *mut SharedInfo = Box::into_raw(Box::default());
    // SAFETY: the leaked page stands for the shared info page; the mock's responder writes it between
    // calls, on this thread, as Xen would.
    let events = unsafe { Events::new(info) };
    let c = cons_page();
    let (guest, mut daemon) = console_ends(c);
    let received = Rc::new(RefCell::new(Vec::new()));
    let seen = received.clone();
    mock::set_default(move |call| {
        if call.op() == nr::SCHED_OP && call.arg(0) == sched::SCHEDOP_POLL {
            let mut buf = [0; 1000];
            let n = daemon.read(&mut buf).unwrap();
            seen.borrow_mut().extend_from_slice(&buf[..n]);
            // SAFETY: as above.
            unsafe { (*info).evtchn_pending[0] |= 1 << 5 };
        }
        0
    });
    let port = Port(5);
    let mut con = PvConsole::new(guest, port, || events.wait_forever(port));
    let data: Vec<u8> = (0..5000u32).map(|i| (i % 249) as u8).collect();
    con.write(&data).unwrap();
    let calls = mock::take_calls();
    let polls = calls
        .iter()
        .filter(|c| c.op == nr::SCHED_OP && c.args[0] == sched::SCHEDOP_POLL)
        .count();
    // 2048 fit, then 1000 freed per poll: 3048, 4048, 5048 >= 5000.
    assert_eq!(polls, 3);
    assert!(!events.is_pending(port), "each event taken by the wait");
    // The rest is still in the ring, in order after what the daemon took.
    let (_, mut daemon) = console_ends(c);
    let mut rest = [0; 2048];
    let n = daemon.read(&mut rest).unwrap();
    let mut all = received.borrow().clone();
    all.extend_from_slice(&rest[..n]);
    assert_eq!(all, data);
    mock::reset();
}

/// The safe constructors: a granted page (the front end's) and a mapped grant (the back end's), for as
/// long as they are borrowed; a read-only mapping is refused.
#[test]
fn rings_over_a_grant_and_a_mapping() {
    use xen_hypercall::xen::DomId;
    use xen_hypercall::xen::grant_table::{
        GnttabMapGrantRef, GrantEntryV1, GrantHandle, GrantRef, GrantTable, MapArea,
    };

    mock::reset();
    #[repr(C, align(4096))]
    struct Frame([GrantEntryV1; 512]);
    let frame: *mut GrantEntryV1 = Box::leak(Box::new(Frame([GrantEntryV1::default(); 512])))
        .0
        .as_mut_ptr();
    // SAFETY: the leaked frame stands for the grant table's; the host's memory is taken as
    // identity-mapped, frames truncated to 32 bits as a v1 entry holds them.
    let mut table = unsafe {
        GrantTable::<4>::new(frame, 1).with_gfn_of(|p| (p as usize as u64 >> 12) & 0xffff_ffff)
    };
    let page: &'static mut Page = Box::leak(Box::new(Page::new()));
    // Garbage in the page before it is a ring.
    page.0.fill(0xee);
    let grant = table.grant(DomId(0), page, false).unwrap();
    let at = grant.page().unwrap();
    {
        let mut front =
            FrontRing::<BlkReq, BlkRsp>::init(SharedArea::granted(&grant).unwrap()).unwrap();
        front.next_request(req(3)).unwrap();
        assert!(front.push_requests_and_check_notify());
    }
    // The granted page holds the ring: req_prod 1, req_event 1, the request in slot 0.
    assert_eq!(shared(at, req_prod).load(Ordering::Relaxed), 1);
    assert_eq!(shared(at, req_event).load(Ordering::Relaxed), 1);
    // SAFETY: the granted page; a volatile read of slot 0.
    let slot0 = unsafe { ptr::read_volatile(at.cast::<u8>().add(64).cast::<BlkReq>()) };
    assert_eq!(slot0, req(3));

    let window: *mut Page = Box::leak(Box::new([Page::new(), Page::new()])).as_mut_ptr();
    // SAFETY: the leaked window is given up to the area; the mock maps nothing.
    let mut area = unsafe { MapArea::<2>::new(0x8000_0000, window) };
    for handle in [7, 8] {
        mock::respond(move |c| {
            assert!(c.update(1, |o: &mut [GnttabMapGrantRef; 1]| {
                o[0].status = 0;
                o[0].handle = GrantHandle(handle);
            }));
            0
        });
    }
    let rw = area.map(DomId(1), GrantRef(8), false).unwrap();
    let ro = area.map(DomId(1), GrantRef(9), true).unwrap();
    assert_eq!(SharedArea::mapped(&ro).err(), Some(Error::EROFS));
    // Stand in for the peer's front end in the mapped page, then serve it.
    let p = rw.as_ptr();
    shared(p, req_prod).store(1, Ordering::Relaxed);
    // SAFETY: the mapped page (the window's); a volatile write of slot 0.
    unsafe { ptr::write_volatile(p.cast::<u8>().add(64).cast::<BlkReq>(), req(4)) };
    let mut back = BackRing::<BlkReq, BlkRsp>::attach(SharedArea::mapped(&rw).unwrap(), 0).unwrap();
    assert_eq!(back.take_request(), Ok(Some(req(4))));
    back.next_response(rsp(4)).unwrap();
    back.push_responses();
    assert_eq!(shared(p, rsp_prod).load(Ordering::Relaxed), 1);
    mock::reset();
}

#[test]
fn flush_waits_until_the_daemon_has_read_everything() {
    mock::reset();
    // Every notification (EVTCHNOP_send) succeeds.
    mock::answer_zero();
    let c = cons_page();
    let (guest, mut daemon) = console_ends(c);
    let daemon = std::cell::RefCell::new(&mut daemon);
    let waits = std::cell::Cell::new(0);
    let mut con = PvConsole::new(guest, Port(4), || {
        // The daemon reads 100 bytes per event.
        waits.set(waits.get() + 1);
        let mut buf = [0; 100];
        daemon.borrow_mut().read(&mut buf).map(drop)
    });
    con.write(&[7; 250]).unwrap();
    assert_eq!(waits.get(), 0); // it fitted
    con.flush().unwrap();
    assert_eq!(waits.get(), 3); // 100 + 100 + 50 read
    con.flush().unwrap(); // nothing left: no wait
    assert_eq!(waits.get(), 3);
}

#[test]
fn flush_with_a_daemon_that_never_reads_ends_with_the_wait_s_error() {
    mock::reset();
    mock::answer_zero();
    let c = cons_page();
    let (guest, _daemon) = console_ends(c);
    let waits = std::cell::Cell::new(0);
    let mut con = PvConsole::new(guest, Port(4), || {
        waits.set(waits.get() + 1);
        if waits.get() < 3 {
            Ok(())
        } else {
            Err(Error::ETIMEDOUT)
        }
    });
    con.write(b"unread").unwrap();
    assert_eq!(con.flush(), Err(Error::ETIMEDOUT));
    assert_eq!(waits.get(), 3);
}

/// `Events::waiter` bounds each wait of the console in time: a daemon that never reads ends a flush with
/// `ETIMEDOUT` once the clock says the timeout passed, not before (each poll here takes 10 ms).
#[test]
fn a_console_waiting_with_events_waiter_times_out_by_the_clock() {
    use xen_hypercall::xen::evtchn::Events;
    use xen_hypercall::xen::sched;
    use xen_hypercall::xen::time::Clock;
    use xen_hypercall::xen::vcpu::SharedInfo;

    mock::reset();
    let info: *mut SharedInfo = Box::into_raw(Box::default());
    // 62.5 MHz: 625000 ticks are 10 ms.
    mock::set_default(|call| {
        assert_eq!(
            (call.op(), call.arg(0)),
            (nr::SCHED_OP, sched::SCHEDOP_POLL)
        );
        mock::advance_counter(625_000);
        0
    });
    // SAFETY: the leaked page stands for the shared info page, accessed through `events` and `clock`.
    let (events, clock) = unsafe { (Events::new(info), Clock::new(info).unwrap()) };
    let c = cons_page();
    let (guest, _daemon) = console_ends(c);
    let mut con = PvConsole::new(
        guest,
        Port(4),
        events.waiter(Port(4), &clock, Duration::from_millis(50)),
    );
    mock::returns(0); // the notification of the write (EVTCHNOP_send)
    con.write(b"unread").unwrap();
    let t0 = clock.now();
    mock::returns(0); // the flush's notification
    assert_eq!(con.flush(), Err(Error::ETIMEDOUT));
    let waited = clock.now() - t0;
    assert_eq!(waited, Duration::from_millis(50));
    let polls = mock::take_calls()
        .iter()
        .filter(|c| c.op == nr::SCHED_OP && c.args[0] == sched::SCHEDOP_POLL)
        .count();
    assert_eq!(polls, 5);
}

#[test]
fn a_reader_is_told_to_notify_only_when_the_writer_filled_the_ring() {
    let c = cons_page();
    let (mut guest, mut daemon) = console_ends(c);
    let mut buf = [0; 4096];
    // Nothing waits: nothing read, no notification.
    assert_eq!(daemon.read_and_check_notify(&mut buf), Ok((0, false)));
    // Part of the ring used: the writer is not waiting for room.
    assert_eq!(guest.write(&[1; 100]), Ok(100));
    assert_eq!(daemon.read_and_check_notify(&mut buf), Ok((100, false)));
    // The ring full (2048 of the guest's output): the writer may wait for the room made.
    assert_eq!(guest.write(&[2; 3000]), Ok(2048));
    assert_eq!(daemon.read_and_check_notify(&mut buf[..10]), Ok((10, true)));
    // Read again before the writer wrote more: it was told already, no longer full.
    assert_eq!(
        daemon.read_and_check_notify(&mut buf[..10]),
        Ok((10, false))
    );
    // The writer fills the ring again while the reader reads: `prod - old cons` reaches the size.
    assert_eq!(guest.write(&[3; 20]), Ok(20));
    assert_eq!(daemon.read_and_check_notify(&mut buf), Ok((2048, true)));
    // Impossible indices: refused, as by `read`.
    cons_idx(c, out_prod).store(
        cons_idx(c, out_cons)
            .load(Ordering::Relaxed)
            .wrapping_add(4000),
        Ordering::Relaxed,
    );
    assert_eq!(daemon.read_and_check_notify(&mut buf), Err(Error::EIO));
}
