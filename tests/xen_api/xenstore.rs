//! The xenstore client on the host: a fake xenstored on the back end of the same page, driven inside the
//! client's `wait` closure (one thread, so the mock's notifications stay on the test's thread). The
//! daemon parses each request and answers with what the test scripts; every request it saw is recorded
//! for the assertions.

use std::cell::RefCell;
use std::rc::Rc;

use xen_hypercall::mock;

use crate::xs_daemon;
use xen_hypercall::xen::evtchn::Port;
use xen_hypercall::xen::ring::{ByteRing, End, SharedArea, XENSTORE_RING_SIZE};
use xen_hypercall::xen::xenstore::{
    self, TxId, WatchEvent, XENSTORE_PAYLOAD_MAX, XS_DIRECTORY, XS_ERROR, XS_READ,
    XS_TRANSACTION_END, XS_TRANSACTION_START, XS_WATCH_EVENT, XS_WRITE, Xenstore, XsdSockmsg,
};
use xen_hypercall::xen::{Error, Page, nr};

/// A message as the daemon saw it or sends it.
#[derive(Clone, Debug, PartialEq)]
struct Msg {
    h: XsdSockmsg,
    payload: Vec<u8>,
}

fn reply(req: &Msg, ty: u32, payload: &[u8]) -> Vec<u8> {
    raw(ty, req.h.req_id, req.h.tx_id, payload.len() as u32, payload)
}

/// A message's bytes with any header values (garbage included).
fn raw(ty: u32, req_id: u32, tx_id: u32, len: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    for w in [ty, req_id, tx_id, len] {
        v.extend_from_slice(&w.to_ne_bytes());
    }
    v.extend_from_slice(payload);
    v
}

type Handler = Box<dyn FnMut(&Msg) -> Vec<u8>>;

/// The fake xenstored: the back end of the ring, the bytes received so far, the bytes still to send.
struct Daemon {
    ring: ByteRing<'static>,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    seen: Vec<Msg>,
    waits: usize,
    handler: Handler,
}

impl Daemon {
    /// One turn: takes the requests waiting, answers the complete ones, sends what fits.
    fn turn(&mut self) {
        self.waits += 1;
        assert!(self.waits < 1000, "the client waits forever");
        xs_daemon::receive(&mut self.ring, &mut self.inbuf);
        while let Some((h, payload)) = xs_daemon::next_message(&mut self.inbuf) {
            let m = Msg { h, payload };
            let r = (self.handler)(&m);
            self.out.extend_from_slice(&r);
            self.seen.push(m);
        }
        let n = self.ring.write(&self.out).unwrap();
        self.out.drain(..n);
    }
}

/// The client of the tests: its `wait` runs a turn of the daemon.
type Client = Xenstore<'static, Box<dyn FnMut() -> Result<(), Error>>>;

/// A client and its daemon over one leaked page.
fn setup(handler: impl FnMut(&Msg) -> Vec<u8> + 'static) -> (Client, Rc<RefCell<Daemon>>) {
    mock::reset();
    mock::answer_zero();
    let (front, back) = xs_daemon::ring_ends();
    let d = Rc::new(RefCell::new(Daemon {
        ring: back,
        inbuf: Vec::new(),
        out: Vec::new(),
        seen: Vec::new(),
        waits: 0,
        handler: Box::new(handler),
    }));
    let d2 = d.clone();
    let wait: Box<dyn FnMut() -> Result<(), Error>> = Box::new(move || {
        d2.borrow_mut().turn();
        Ok(())
    });
    let xs = Xenstore::new(front, Port(9), wait);
    (xs, d)
}

/// The notifications the client sent (all `EVTCHNOP_send`s to port 9).
fn sends() -> usize {
    let calls = mock::take_calls();
    assert!(calls.iter().all(|c| c.op == nr::EVENT_CHANNEL_OP));
    calls.len()
}

#[test]
fn read_returns_the_value_and_sends_path_nul() {
    let (mut xs, d) = setup(|m| {
        assert_eq!(m.h.r#type, XS_READ);
        reply(m, XS_READ, b"vm-42")
    });
    let mut buf = [0u8; 16];
    assert_eq!(xs.read(b"name", &mut buf), Ok(5));
    assert_eq!(&buf[..5], b"vm-42");
    let seen = d.borrow().seen.clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].payload, b"name\0");
    assert_eq!(seen[0].h.tx_id, 0);
    assert!(sends() >= 1);
    // Too small a buffer: ERANGE, not a truncated value.
    assert_eq!(xs.read(b"name", &mut buf[..4]), Err(Error::ERANGE));
    // Each request has a fresh id.
    let seen = d.borrow().seen.clone();
    assert_ne!(seen[0].h.req_id, seen[1].h.req_id);
}

#[test]
fn write_sends_path_nul_value_and_takes_ok() {
    let (mut xs, d) = setup(|m| reply(m, XS_WRITE, b"OK\0"));
    xs.write(b"data/x", b"17").unwrap();
    assert_eq!(d.borrow().seen[0].h.r#type, XS_WRITE);
    assert_eq!(d.borrow().seen[0].payload, b"data/x\x0017");
    // A path with a NUL inside is refused before anything is sent.
    assert_eq!(xs.write(b"a\0b", b"1"), Err(Error::EINVAL));
    assert_eq!(d.borrow().seen.len(), 1);
}

#[test]
fn a_big_value_goes_through_the_small_ring_in_pieces() {
    let value = vec![b'v'; XENSTORE_PAYLOAD_MAX - 2];
    let (mut xs, d) = setup(|m| reply(m, XS_WRITE, b"OK\0"));
    xs.write(b"p", &value).unwrap();
    let d = d.borrow();
    assert_eq!(d.seen[0].payload.len(), XENSTORE_PAYLOAD_MAX);
    assert_eq!(&d.seen[0].payload[2..], &value[..]);
    assert!(d.waits >= XENSTORE_PAYLOAD_MAX / XENSTORE_RING_SIZE);
}

#[test]
fn directory_entries_are_iterated() {
    let (mut xs, _d) = setup(|m| {
        assert_eq!(m.payload, b"device\0");
        reply(m, XS_DIRECTORY, b"vbd\0vif\0console\0")
    });
    let mut buf = [0u8; 64];
    let names: Vec<&[u8]> = xs.directory(b"device", &mut buf).unwrap().collect();
    assert_eq!(names, [&b"vbd"[..], b"vif", b"console"]);
}

#[test]
fn error_replies_map_by_name() {
    let names: Vec<&[u8]> = vec![b"ENOENT\0", b"EACCES\0", b"EISDIR\0", b"EWHATEVER\0", b""];
    let mut i = 0;
    let (mut xs, _d) = setup(move |m| {
        let r = reply(m, XS_ERROR, names[i]);
        i += 1;
        r
    });
    let mut buf = [0u8; 8];
    assert_eq!(xs.read(b"nope", &mut buf), Err(Error::ENOENT));
    assert_eq!(xs.read(b"nope", &mut buf), Err(Error::EACCES));
    assert_eq!(xs.rm(b"nope"), Err(Error::EISDIR));
    assert_eq!(xs.mkdir(b"nope"), Err(Error::EIO));
    assert_eq!(xs.read(b"nope", &mut buf), Err(Error::EIO));
}

#[test]
fn a_watch_event_before_the_reply_is_kept_for_later() {
    let (mut xs, _d) = setup(|m| {
        let mut v = raw(XS_WATCH_EVENT, 0, 0, 15, b"backend/x\0tok1\0");
        v.extend(reply(m, XS_READ, b"1"));
        v
    });
    let mut ev = [0u8; 64];
    assert_eq!(xs.next_watch_event(&mut ev), Ok(None));
    let mut buf = [0u8; 8];
    assert_eq!(xs.read(b"state", &mut buf), Ok(1));
    assert_eq!(buf[0], b'1');
    assert_eq!(
        xs.next_watch_event(&mut ev),
        Ok(Some(WatchEvent {
            path: b"backend/x",
            token: b"tok1",
        }))
    );
    assert_eq!(xs.next_watch_event(&mut ev), Ok(None));
    assert!(!xs.watch_overflow());
}

#[test]
fn watch_events_beyond_the_queue_set_the_overflow_flag() {
    let (mut xs, _d) = setup(|m| {
        let mut v = Vec::new();
        for i in 0..6u8 {
            v.extend(raw(XS_WATCH_EVENT, 0, 0, 4, &[b'p', b'0' + i, 0, b't']));
        }
        v.extend(reply(m, XS_WRITE, b"OK\0"));
        v
    });
    xs.write(b"k", b"v").unwrap();
    let mut ev = [0u8; 16];
    let mut got = Vec::new();
    while let Some(e) = xs.next_watch_event(&mut ev).unwrap() {
        got.push(e.path.to_vec());
    }
    assert_eq!(got, [b"p0", b"p1", b"p2", b"p3"]);
    assert!(xs.watch_overflow());
    assert!(!xs.watch_overflow());
}

#[test]
fn a_refused_commit_is_eagain_and_the_transaction_runs_again() {
    let mut commits = 0;
    let mut next_tx = 40;
    let (mut xs, d) = setup(move |m| match m.h.r#type {
        XS_TRANSACTION_START => {
            next_tx += 1;
            reply(m, XS_TRANSACTION_START, format!("{next_tx}\0").as_bytes())
        }
        XS_TRANSACTION_END => {
            commits += 1;
            if commits == 1 {
                reply(m, XS_ERROR, b"EAGAIN\0")
            } else {
                reply(m, XS_TRANSACTION_END, b"OK\0")
            }
        }
        XS_READ => reply(m, XS_READ, b"5"),
        _ => reply(m, m.h.r#type, b"OK\0"),
    });
    let mut runs = 0;
    let v = xs
        .transaction(|tx| {
            runs += 1;
            let mut b = [0u8; 4];
            let n = tx.read(b"count", &mut b)?;
            tx.write(b"count", &b[..n])?;
            Ok(tx.id())
        })
        .unwrap();
    assert_eq!(runs, 2);
    assert_eq!(v, TxId(42));
    let seen = d.borrow().seen.clone();
    let txs: Vec<(u32, u32)> = seen.iter().map(|m| (m.h.r#type, m.h.tx_id)).collect();
    assert_eq!(
        txs,
        [
            (XS_TRANSACTION_START, 0),
            (XS_READ, 41),
            (XS_WRITE, 41),
            (XS_TRANSACTION_END, 41),
            (XS_TRANSACTION_START, 0),
            (XS_READ, 42),
            (XS_WRITE, 42),
            (XS_TRANSACTION_END, 42),
        ]
    );
    assert_eq!(seen[3].payload, b"T\0");
    // transaction_end alone: the refusal is EAGAIN.
    let (mut xs, _d) = setup(|m| reply(m, XS_ERROR, b"EAGAIN\0"));
    assert_eq!(xs.transaction_end(TxId(7), true), Err(Error::EAGAIN));
}

#[test]
fn a_transaction_always_refused_gives_up_with_eagain() {
    let (mut xs, d) = setup(|m| match m.h.r#type {
        XS_TRANSACTION_START => reply(m, XS_TRANSACTION_START, b"3\0"),
        _ => reply(m, XS_ERROR, b"EAGAIN\0"),
    });
    assert_eq!(xs.transaction(|_| Ok(())), Err(Error::EAGAIN));
    assert_eq!(
        d.borrow().seen.len(),
        2 * xen_hypercall::xen::xenstore::TRANSACTION_RETRIES
    );
}

#[test]
fn a_payload_over_the_maximum_is_refused_before_anything_is_written() {
    let (mut xs, d) = setup(|m| reply(m, XS_WRITE, b"OK\0"));
    let value = vec![b'x'; XENSTORE_PAYLOAD_MAX + 1 - 2]; // "p\0" + value = 4097 bytes
    assert_eq!(xs.write(b"p", &value), Err(Error::E2BIG));
    assert_eq!(sends(), 0);
    let d = d.borrow_mut();
    assert_eq!(d.ring.readable(), Ok(0));
    assert_eq!(d.waits, 0);
    drop(d);
    // One byte less goes through.
    xs.write(b"p", &value[1..]).unwrap();
}

#[test]
fn garbage_replies_are_eio_not_panics() {
    let mut n = 0;
    let (mut xs, _d) = setup(move |m| {
        n += 1;
        match n {
            // A length over the maximum.
            1 => raw(XS_READ, m.h.req_id, 0, 0xffff_ff00, b"junk"),
            // The wrong type for the request.
            2 => reply(m, XS_DIRECTORY, b"x\0"),
            // A write answered with something other than OK.
            3 => reply(m, XS_WRITE, b"KO\0"),
            // A transaction id that is no number.
            4 => reply(m, XS_TRANSACTION_START, b"12a\0"),
            // Too big for a u32.
            5 => reply(m, XS_TRANSACTION_START, b"99999999999\0"),
            _ => reply(m, XS_READ, b"fine"),
        }
    });
    let mut buf = [0u8; 16];
    assert_eq!(xs.read(b"a", &mut buf), Err(Error::EIO));
    assert_eq!(xs.read(b"a", &mut buf), Err(Error::EIO));
    assert_eq!(xs.write(b"a", b"1"), Err(Error::EIO));
    assert_eq!(xs.transaction_start(), Err(Error::EIO));
    assert_eq!(xs.transaction_start(), Err(Error::EIO));
    // The client is back in step afterwards.
    assert_eq!(xs.read(b"a", &mut buf), Ok(4));
    assert_eq!(&buf[..4], b"fine");
}

#[test]
fn a_reply_to_another_request_is_not_taken_for_the_answer() {
    let (mut xs, _d) = setup(|m| {
        let mut v = reply(
            &Msg {
                h: XsdSockmsg {
                    req_id: m.h.req_id.wrapping_add(100),
                    ..m.h
                },
                payload: Vec::new(),
            },
            XS_READ,
            b"stale",
        );
        v.extend(reply(m, XS_READ, b"mine"));
        v
    });
    let mut buf = [0u8; 16];
    assert_eq!(xs.read(b"a", &mut buf), Ok(4));
    assert_eq!(&buf[..4], b"mine");
}

#[test]
fn a_wait_that_fails_ends_the_request() {
    mock::reset();
    mock::answer_zero();
    let p: *mut Page = Box::into_raw(Box::new(Page::new()));
    // SAFETY: the page is leaked and accessed only through the ring.
    let a = unsafe { SharedArea::new(p, 1).unwrap() };
    let mut xs = Xenstore::new(ByteRing::xenstore(a, End::Front), Port(1), || {
        Err(Error::ETIMEDOUT)
    });
    let mut buf = [0u8; 4];
    assert_eq!(xs.read(b"a", &mut buf), Err(Error::ETIMEDOUT));
}

#[test]
fn perms_watch_mkdir_and_rm_send_xs_wire_payloads() {
    let (mut xs, d) = setup(|m| match m.h.r#type {
        xenstore::XS_GET_PERMS => reply(m, xenstore::XS_GET_PERMS, b"n0\0r5\0"),
        ty => reply(m, ty, b"OK\0"),
    });
    let mut buf = [0u8; 16];
    assert_eq!(xs.get_perms(b"device/vif/0", &mut buf), Ok(6));
    assert_eq!(&buf[..6], b"n0\0r5\0");
    xs.set_perms(b"data", b"n0\0b3\0").unwrap();
    xs.watch(b"backend", b"be").unwrap();
    xs.unwatch(b"backend", b"be").unwrap();
    xs.mkdir(b"data/d").unwrap();
    xs.rm(b"data/d").unwrap();
    assert_eq!(xs.watch(b"backend", b"b\0e"), Err(Error::EINVAL));
    let seen: Vec<(u32, Vec<u8>)> = d
        .borrow()
        .seen
        .iter()
        .map(|m| (m.h.r#type, m.payload.clone()))
        .collect();
    assert_eq!(
        seen,
        [
            (xenstore::XS_GET_PERMS, b"device/vif/0\0".to_vec()),
            (xenstore::XS_SET_PERMS, b"data\0n0\0b3\0".to_vec()),
            (xenstore::XS_WATCH, b"backend\0be\0".to_vec()),
            (xenstore::XS_UNWATCH, b"backend\0be\0".to_vec()),
            (xenstore::XS_MKDIR, b"data/d\0".to_vec()),
            (xenstore::XS_RM, b"data/d\0".to_vec()),
        ]
    );
    // Distinct ids, all of them.
    let mut ids: Vec<u32> = d.borrow().seen.iter().map(|m| m.h.req_id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 6);
}

#[test]
fn a_reply_longer_than_the_ring_is_read_in_pieces() {
    let value: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    let v2 = value.clone();
    let (mut xs, d) = setup(move |m| reply(m, XS_READ, &v2));
    let mut buf = vec![0u8; 4096];
    assert_eq!(xs.read(b"big", &mut buf), Ok(3000));
    assert_eq!(&buf[..3000], &value[..]);
    // The daemon needed several turns: the ring holds 1024 bytes.
    assert!(d.borrow().waits >= 3);
    assert!(d.borrow().out.is_empty());
}

#[test]
fn a_watch_event_too_big_for_the_buffer_stays_queued() {
    let (mut xs, _d) = setup(|m| {
        let mut v = raw(XS_WATCH_EVENT, 0, 0, 11, b"some/path\0t");
        v.extend(reply(m, XS_WRITE, b"OK\0"));
        v
    });
    xs.write(b"k", b"v").unwrap();
    let mut small = [0u8; 4];
    assert_eq!(xs.next_watch_event(&mut small), Err(Error::ERANGE));
    let mut ev = [0u8; 32];
    let e = xs.next_watch_event(&mut ev).unwrap().unwrap();
    assert_eq!((e.path, e.token), (&b"some/path"[..], &b"t"[..]));
}

#[test]
fn a_request_left_half_written_breaks_the_client_for_good() {
    mock::reset();
    mock::answer_zero();
    let p: *mut Page = Box::into_raw(Box::new(Page::new()));
    // SAFETY: the page is leaked and accessed only through the ring.
    let a = unsafe { SharedArea::new(p, 1).unwrap() };
    let mut xs = Xenstore::new(ByteRing::xenstore(a, End::Front), Port(1), || {
        Err(Error::ETIMEDOUT)
    });
    // 2000 bytes do not fit in the 1024-byte ring and nobody reads them: the wait fails mid-request.
    assert_eq!(xs.write(b"p", &[b'x'; 2000]), Err(Error::ETIMEDOUT));
    let mut buf = [0u8; 4];
    assert_eq!(xs.read(b"a", &mut buf), Err(Error::EIO));
}
