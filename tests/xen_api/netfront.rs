//! The network frontend on the host: a fake netback on the back ends of the same two rings (`BackRing`),
//! reaching the frontend's pages through the grant entries it wrote (frame → page), as Xen's grant copy
//! would. Frames are made by the test and compared with the test's own copies, never with what the
//! frontend computed.
//!
//! Errors (too large, too short, buffer too small, error responses), frames across a page's end (several
//! transmit requests; several receive responses reassembled), a full ring, batching of notifications and
//! refills, a backend answering garbage, and a backend that vanishes are each checked.

use std::cell::Cell;

use xen_hypercall::mock;
use xen_hypercall::xen::evtchn::{self, Port};
use xen_hypercall::xen::grant_table::{
    GTF_PERMIT_ACCESS, GTF_READING, GTF_READONLY, Grant, GrantEntryV1, GrantTable,
};
use xen_hypercall::xen::netfront::{
    ETH_HLEN, Info, MAX_GSO_FRAME, MIN_FIRST_SLOT, NetError, NetFront, Options, Pages, Tables,
    internet_sum, parse_mac,
};
use xen_hypercall::xen::netif::{
    NETIF_RSP_ERROR, NETIF_RSP_NULL, NETIF_RSP_OKAY, NETRXF_CSUM_BLANK, NETRXF_DATA_VALIDATED,
    NETRXF_EXTRA_INFO, NETRXF_MORE_DATA, NETTXF_MORE_DATA, NetifRxRequest, NetifRxResponse,
    NetifTxRequest, NetifTxResponse, XEN_NETIF_EXTRA_FLAG_MORE, XEN_NETIF_EXTRA_TYPE_GSO,
};
use xen_hypercall::xen::ring::{BackRing, SharedArea};
use xen_hypercall::xen::{DomId, Error, Page, nr};

const TX_PORT: u32 = 9;
const RX_PORT: u32 = 10;

std::thread_local! {
    /// The first page of this test's memory region: frame 1.
    static BASE: Cell<usize> = const { Cell::new(0) };
    /// Event channel notifications sent, per port.
    static SENT: Cell<[u32; 2]> = const { Cell::new([0, 0]) };
}

/// Frames are counted from the region's start (frame 1), so that they fit a v1 entry's 32 bits.
fn gfn_of(p: *const Page) -> u64 {
    ((p as usize - BASE.with(Cell::get)) / 4096 + 1) as u64
}

fn page_of(frame: u32) -> *mut u8 {
    (BASE.with(Cell::get) + (frame as usize - 1) * 4096) as *mut u8
}

/// Answers every hypercall 0 and counts `EVTCHNOP_send` per port.
fn count_notifications() {
    mock::reset();
    SENT.with(|s| s.set([0, 0]));
    mock::set_default(|c| {
        if c.op() == nr::EVENT_CHANNEL_OP && c.arg(0) == evtchn::EVTCHNOP_SEND {
            let port: u32 = c.read(1).unwrap();
            SENT.with(|s| {
                let mut v = s.get();
                v[usize::from(port == RX_PORT)] += 1;
                s.set(v);
            });
        }
        0
    });
}

fn sent() -> [u32; 2] {
    SENT.with(Cell::get)
}

/// The frontend over a fresh region (grant table frame, two ring pages, the pools), and its fake backend.
struct Rig {
    net: NetFront,
    table: GrantTable<512>,
    entries: *mut GrantEntryV1,
    tx: BackRing<'static, NetifTxRequest, NetifTxResponse>,
    rx: BackRing<'static, NetifRxRequest, NetifRxResponse>,
    /// Receive requests taken from the ring and not answered yet.
    posted: Vec<NetifRxRequest>,
}

fn rig(tx_pages: usize, rx_pages: usize, options: Options) -> Rig {
    rig_mtu(tx_pages, rx_pages, options, 1500)
}

fn rig_mtu(tx_pages: usize, rx_pages: usize, options: Options, mtu: u16) -> Rig {
    count_notifications();
    let all: &'static mut [Page] =
        Box::leak((0..3 + tx_pages + rx_pages).map(|_| Page::new()).collect());
    BASE.with(|b| b.set(all.as_ptr() as usize));
    let (frame, rest) = all.split_at_mut(1);
    let entries = frame.as_mut_ptr().cast::<GrantEntryV1>();
    // SAFETY: the frame is leaked and used as the table's entries only (read by the fake backend through
    // raw pointers, as Xen would); pages' frames come from `gfn_of`, which covers the region.
    let mut table = unsafe { GrantTable::<512>::new(entries, 1).with_gfn_of(gfn_of) };
    let (rings, rest) = rest.split_at_mut(2);
    let (tx_ring, rx_ring) = rings.split_at_mut(1);
    let (tx, rx) = rest.split_at_mut(tx_pages);
    let info = Info {
        mac: [0, 0x16, 0x3e, 0, 0, 1],
        mtu,
        tx_port: Port(TX_PORT),
        rx_port: Port(RX_PORT),
        split: true,
        backend: DomId(0),
    };
    let pages = Pages {
        tx_ring: &mut tx_ring[0],
        rx_ring: &mut rx_ring[0],
        tx,
        rx,
        tables: Box::leak(Box::new(Tables::new())),
    };
    let net = NetFront::new(&mut table, info, pages, options).unwrap();
    let entry = |r: u32| {
        // SAFETY: `r` is one of the table's references (inside its one frame).
        unsafe { *entries.add(r as usize) }
    };
    // The backend maps the rings by the references the frontend would publish: read-write grants to dom0.
    let ring = |r: u32| {
        let e = entry(r);
        assert_eq!((e.flags, e.domid), (GTF_PERMIT_ACCESS, DomId(0)));
        // SAFETY: the page is the leaked region's, accessed by both ends atomically or volatilely.
        unsafe { SharedArea::new(page_of(e.frame).cast(), 1).unwrap() }
    };
    let tx = BackRing::attach(ring(net.tx_ring_ref().0), 0).unwrap();
    let rx = BackRing::attach(ring(net.rx_ring_ref().0), 0).unwrap();
    Rig {
        net,
        table,
        entries,
        tx,
        rx,
        posted: Vec::new(),
    }
}

impl Rig {
    fn entry(&self, r: u32) -> GrantEntryV1 {
        // SAFETY: as in `rig`.
        unsafe { *self.entries.add(r as usize) }
    }

    /// Takes every transmit request, assembles the frames as netback would (the first request's size is
    /// the frame's, the others' their part, `NETTXF_more_data` chaining them; each page read-only granted
    /// to dom0), answers each request with `status`, and returns the frames with their request counts.
    fn take_frames(&mut self, status: i16) -> Vec<(Vec<u8>, usize)> {
        let mut out = Vec::new();
        let mut group: Vec<NetifTxRequest> = Vec::new();
        while let Some(req) = self.tx.take_request().unwrap() {
            let e = self.entry(req.gref.0);
            assert_eq!(
                (e.flags, e.domid),
                (GTF_PERMIT_ACCESS | GTF_READONLY, DomId(0)),
                "transmit pages are granted read-only"
            );
            self.tx
                .next_response(NetifTxResponse { id: req.id, status })
                .unwrap();
            group.push(req);
            if req.flags & NETTXF_MORE_DATA != 0 {
                continue;
            }
            // As netback: the first request's own bytes are the frame's size less the others' sizes.
            let whole = group[0].size as usize;
            let others: usize = group[1..].iter().map(|q| q.size as usize).sum();
            assert!(others < whole, "the first request says the whole frame");
            let mut bytes = Vec::new();
            for (i, q) in group.iter().enumerate() {
                let part = if i == 0 {
                    whole - others
                } else {
                    q.size as usize
                };
                assert!(
                    q.offset as usize + part <= 4096,
                    "a request stays in its page"
                );
                let p = page_of(self.entry(q.gref.0).frame);
                for k in 0..part {
                    // SAFETY: inside the granted page.
                    bytes.push(unsafe { p.add(q.offset as usize + k).read_volatile() });
                }
            }
            out.push((bytes, group.len()));
            group.clear();
        }
        assert!(group.is_empty(), "a frame was left unfinished");
        self.tx.push_responses();
        out
    }

    /// Takes the receive requests posted since the last call.
    fn take_posted(&mut self) -> usize {
        let mut n = 0;
        while let Some(r) = self.rx.take_request().unwrap() {
            let e = self.entry(r.gref.0);
            assert_eq!(
                (e.flags, e.domid),
                (GTF_PERMIT_ACCESS, DomId(0)),
                "receive pages are granted read-write"
            );
            self.posted.push(r);
            n += 1;
        }
        n
    }

    /// Copies `frame` into posted pages, `chunk` bytes per response at `offset` into each page, with
    /// `first_flags` on the first response and an extra-info slot after it when `extra`. Does not push.
    fn put(&mut self, frame: &[u8], chunk: usize, offset: usize, first_flags: u16, extra: bool) {
        self.take_posted();
        let mut parts: Vec<&[u8]> = frame.chunks(chunk).collect();
        if parts.is_empty() {
            parts.push(&[]);
        }
        let last = parts.len() - 1;
        for (i, part) in parts.into_iter().enumerate() {
            let req = self.posted.remove(0);
            let p = page_of(self.entry(req.gref.0).frame);
            for (k, &b) in part.iter().enumerate() {
                // SAFETY: inside the granted page (offset + chunk <= 4096 in every test).
                unsafe { p.add(offset + k).write_volatile(b) };
            }
            let mut flags = if i < last { NETRXF_MORE_DATA } else { 0 };
            if i == 0 {
                flags |= first_flags | if extra { NETRXF_EXTRA_INFO } else { 0 };
            }
            self.rx
                .next_response(NetifRxResponse {
                    id: req.id,
                    offset: offset as u16,
                    flags,
                    status: part.len() as i16,
                })
                .unwrap();
            if i == 0 && extra {
                // A GSO extra slot (type 1, no more), laid out over the response slot.
                let x = self.posted.remove(0);
                let _ = x;
                self.rx
                    .next_response(NetifRxResponse {
                        id: u16::from_le_bytes([XEN_NETIF_EXTRA_TYPE_GSO, 0]),
                        offset: 1448,
                        flags: 4,
                        status: 0,
                    })
                    .unwrap();
            }
        }
    }

    fn deliver(&mut self, frame: &[u8], chunk: usize) {
        self.put(frame, chunk, 0, 0, false);
        self.rx.push_responses();
    }
}

/// A frame of `len` bytes whose every byte depends on `seed` and its position.
fn frame(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8)
        .collect()
}

/// Sends `f` from a buffer aligned to 8, as the placement the tests count by hand assumes (a frame starts
/// at its buffer's alignment in the pool, and a `Vec<u8>` may lie anywhere, under Miri).
fn send_aligned(net: &mut NetFront, f: &[u8]) -> Result<(), NetError> {
    #[repr(align(8))]
    struct Aligned([u8; 9100]);
    let mut a = Box::new(Aligned([0; 9100]));
    a.0[..f.len()].copy_from_slice(f);
    net.send(&a.0[..f.len()])
}

#[test]
fn frames_sent_arrive_whole_and_a_page_end_splits_them() {
    let mut r = rig(2, 8, Options::default());
    let sizes = [60, 1514, 14, 1000, 1514, 777, 1514, 1514, 64, 1500, 333];
    let mut crossed = 0;
    for (k, &len) in sizes.iter().enumerate() {
        let f = frame(len, k as u8);
        send_aligned(&mut r.net, &f).unwrap();
        let got = r.take_frames(NETIF_RSP_OKAY);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, f, "frame {k} of {len} bytes");
        crossed += usize::from(got[0].1 > 1);
        assert!(got[0].1 <= 2);
    }
    // The pool is 8 KiB and each frame starts at its buffer's alignment (a `Vec`'s: 8): by hand, the
    // frame at 2600..4114 crosses the first page's end, the one at 8008..9508 the second's (the pool's
    // end, back to its first page).
    assert_eq!(crossed, 2);
    let s = r.net.stats();
    assert_eq!(s.tx_frames, sizes.len() as u64);
    assert_eq!(s.tx_slots, (sizes.len() + crossed) as u64);
    assert_eq!(s.tx_bytes, sizes.iter().sum::<usize>() as u64);
    assert_eq!(s.tx_errors, 0);
}

#[test]
fn a_frame_is_not_started_just_before_a_page_end() {
    let mut r = rig(2, 8, Options::default());
    // 4000 bytes used: 96 left, fewer than MIN_FIRST_SLOT: the next frame starts on the next page.
    for len in [1000, 1000, 1000, 1000] {
        send_aligned(&mut r.net, &frame(len, 1)).unwrap();
    }
    r.take_frames(NETIF_RSP_OKAY);
    send_aligned(&mut r.net, &frame(200, 2)).unwrap();
    let req = {
        let mut v = Vec::new();
        while let Some(q) = r.tx.take_request().unwrap() {
            v.push(q);
        }
        v
    };
    assert_eq!(req.len(), 1);
    assert_eq!(req[0].offset, 0);
    const { assert!(96 < MIN_FIRST_SLOT) };
}

#[test]
fn a_frame_starts_at_its_buffers_alignment_in_the_pool() {
    let mut r = rig(2, 8, Options::default());
    let f = frame(64, 1);
    // From a buffer 0, 3 and 5 bytes past an 8-byte boundary: the pool offsets agree modulo 8, and the
    // bytes arrive whole.
    #[repr(align(8))]
    struct Aligned([u8; 128]);
    let mut aligned = Aligned([0; 128]);
    let bytes = &mut aligned.0;
    let mut at = Vec::new();
    for skew in [0usize, 3, 5] {
        bytes[skew..skew + 64].copy_from_slice(&f);
        r.net.send(&bytes[skew..skew + 64]).unwrap();
        let req = r.tx.take_request().unwrap().unwrap();
        assert_eq!(
            usize::from(req.offset) % 8,
            skew,
            "frame from a buffer at {skew}"
        );
        at.push(req.offset);
        r.tx.push_responses();
    }
    // 0..64, then 67 (the first byte at 3 from 64), then 133 (at 5 from 131).
    assert_eq!(at, vec![0, 67, 133]);
}

#[test]
fn too_large_and_too_short_frames_are_refused_and_nothing_is_queued() {
    let mut r = rig(2, 8, Options::default());
    assert_eq!(r.net.max_frame(), 1514);
    assert_eq!(
        send_aligned(&mut r.net, &frame(1515, 0)),
        Err(NetError::TooLarge {
            len: 1515,
            max: 1514
        })
    );
    assert_eq!(
        send_aligned(&mut r.net, &frame(ETH_HLEN - 1, 0)),
        Err(NetError::TooShort)
    );
    assert_eq!(
        Error::from(NetError::TooLarge { len: 1, max: 0 }),
        Error::EMSGSIZE
    );
    assert!(r.tx.take_request().unwrap().is_none());
    assert_eq!(sent(), [0, 0]);
    // The largest allowed goes (the negative control of the limit).
    send_aligned(&mut r.net, &frame(1514, 3)).unwrap();
    assert_eq!(r.take_frames(NETIF_RSP_OKAY)[0].0, frame(1514, 3));
}

#[test]
fn a_pool_full_of_unanswered_frames_is_full_until_the_backend_answers() {
    let mut r = rig(1, 8, Options::default());
    // One 4 KiB page: frames at 0, 1000, 2000, 3000; the fifth would start at 4096 (96 left before the
    // end), beyond the pool.
    for k in 0..4 {
        send_aligned(&mut r.net, &frame(1000, k)).unwrap();
    }
    assert_eq!(
        send_aligned(&mut r.net, &frame(1000, 9)),
        Err(NetError::Full)
    );
    assert_eq!(Error::from(NetError::Full), Error::EAGAIN);
    // `has_room` says so beforehand, and that a frame still fitting the page's end would go: 96 bytes,
    // less the 7 a buffer's alignment may skip.
    assert_eq!(r.net.has_room(1000), Ok(false));
    assert_eq!(r.net.has_room(89), Ok(true));
    assert_eq!(r.net.has_room(90), Ok(false));
    assert_eq!(r.net.has_room(1515), Ok(false));
    assert_eq!(r.net.has_room(ETH_HLEN - 1), Ok(false));
    assert_eq!(r.net.tx_in_flight(), 4);
    let got = r.take_frames(NETIF_RSP_OKAY);
    assert_eq!(got.len(), 4);
    for (k, (f, _)) in got.iter().enumerate() {
        assert_eq!(*f, frame(1000, k as u8));
    }
    // Answered: room again (reclaimed by `has_room` itself), and the next send goes.
    assert_eq!(r.net.has_room(1000), Ok(true));
    assert_eq!(r.net.tx_in_flight(), 0);
    send_aligned(&mut r.net, &frame(1000, 9)).unwrap();
    assert_eq!(r.take_frames(NETIF_RSP_OKAY)[0].0, frame(1000, 9));
}

#[test]
fn a_ring_full_of_unanswered_requests_is_full() {
    let mut r = rig(64, 8, Options::default());
    // 60-byte frames: 256 fit the ring (about 4 pages of the pool); the 257th does not.
    for k in 0..256 {
        r.net.queue(&frame(60, k as u8)).unwrap();
    }
    assert_eq!(r.net.queue(&frame(60, 0)), Err(NetError::Full));
    r.net.flush().unwrap();
    let got = r.take_frames(NETIF_RSP_OKAY);
    assert_eq!(got.len(), 256);
    assert!(
        got.iter()
            .enumerate()
            .all(|(k, f)| f.0 == frame(60, k as u8))
    );
    send_aligned(&mut r.net, &frame(60, 1)).unwrap();
}

#[test]
fn error_responses_are_counted() {
    let mut r = rig(2, 8, Options::default());
    send_aligned(&mut r.net, &frame(100, 0)).unwrap();
    r.take_frames(NETIF_RSP_ERROR);
    r.net.reclaim().unwrap();
    assert_eq!(r.net.stats().tx_errors, 1);
    assert_eq!(r.net.tx_in_flight(), 0);
}

#[test]
fn one_notification_per_batch_and_only_when_asked() {
    let mut r = rig(8, 8, Options::default());
    for k in 0..10 {
        r.net.queue(&frame(300, k)).unwrap();
    }
    assert_eq!(sent(), [0, 0]);
    assert!(r.net.flush().unwrap());
    assert_eq!(sent(), [1, 0]);
    assert!(!r.net.flush().unwrap(), "nothing queued: no notification");
    // The backend took the requests without asking for another event (req_event not moved): the next
    // batch goes without a notification.
    assert_eq!(r.take_frames(NETIF_RSP_OKAY).len(), 10);
    send_aligned(&mut r.net, &frame(300, 1)).unwrap();
    assert_eq!(sent(), [1, 0]);
    // Now it asks (its final check before sleeping): the next batch notifies once.
    r.take_frames(NETIF_RSP_OKAY);
    assert!(!r.tx.final_check_for_requests().unwrap());
    r.net.queue(&frame(300, 2)).unwrap();
    r.net.queue(&frame(300, 3)).unwrap();
    r.net.flush().unwrap();
    assert_eq!(sent(), [2, 0]);
}

#[test]
fn frames_received_whole_also_over_several_responses() {
    let mut r = rig(2, 32, Options::default());
    r.net.refill(true).unwrap();
    assert_eq!(r.take_posted(), 32);
    let mut buf = [0u8; 2048];
    assert_eq!(r.net.receive(&mut buf), Ok(None));
    // One response, three (more_data), an extra-info slot after the first, validated flags.
    r.deliver(&frame(1514, 1), 4096);
    r.deliver(&frame(1514, 2), 600);
    r.put(&frame(900, 3), 4096, 100, NETRXF_DATA_VALIDATED, true);
    r.rx.push_responses();
    let f = r.net.receive_frame(&mut buf).unwrap().unwrap();
    assert_eq!(&buf[..f.len], &frame(1514, 1)[..]);
    let f = r.net.receive_frame(&mut buf).unwrap().unwrap();
    assert_eq!(&buf[..f.len], &frame(1514, 2)[..]);
    let f = r.net.receive_frame(&mut buf).unwrap().unwrap();
    assert_eq!(&buf[..f.len], &frame(900, 3)[..]);
    assert!(f.data_validated && !f.csum_blank);
    // The extra slot is a GSO one: its size reported.
    assert_eq!(f.gso_size, 1448);
    assert_eq!(r.net.receive(&mut buf), Ok(None));
    let s = r.net.stats();
    assert_eq!((s.rx_frames, s.rx_slots, s.rx_gso), (3, 1 + 3 + 2, 1));
    assert_eq!(s.rx_bytes, 1514 + 1514 + 900);
    // A GSO segment of 20000 bytes over five pages: whole into a buffer of MAX_GSO_FRAME, dropped as
    // too large for a buffer of the MTU.
    let mut big = vec![0u8; MAX_GSO_FRAME];
    for (seed, room) in [(4, big.len()), (5, 2048)] {
        r.net.refill(true).unwrap();
        r.put(&frame(20000, seed), 4096, 0, 0, true);
        r.rx.push_responses();
        let got = r.net.receive_frame(&mut big[..room]);
        if room == 2048 {
            assert_eq!(got, Err(NetError::BufferTooSmall { needed: 20000 }));
        } else {
            let f = got.unwrap().unwrap();
            assert_eq!((f.len, f.gso_size), (20000, 1448));
            assert_eq!(&big[..f.len], &frame(20000, 4)[..]);
        }
    }
    assert_eq!(r.net.stats().rx_gso, 2);
}

/// Frames whose TCP or UDP checksum was left blank: headers (Ethernet, IPv4, TCP or UDP) and the checksum
/// each must end with, as Python's RFC 1071 sum computed them (not this crate), and the pseudo-header sum
/// the backend leaves in the field (Linux's `CHECKSUM_PARTIAL`).
mod blank {
    /// 169.254.1.1:40000 → 169.254.1.2:9, TCP (flags PSH|ACK), 1007 bytes: `0..=250` four times, `xyz`.
    pub const TCP: &str = "00163e000001fe1234567890080045000417000140004006e0e0a9fe0101a9fe0102\
                           9c400009010203040a0b0c0d5018ffff00000000";
    pub const TCP_AT: usize = 34 + 16;
    pub const TCP_SUMS: [u16; 2] = [0x98e8, 0x5a09];
    /// The same addresses and ports, UDP, `hello, checksum offload!!`.
    pub const UDP: &str =
        "00163e000001fe1234567890080045000035000140004011e4b7a9fe0101a9fe01029c40000900210000";
    pub const UDP_SUMS: [u16; 2] = [0x3245, 0x5632];
    /// UDP with the payload `zero` 0x20b4, whose sum inverted is 0: sent as 0xffff.
    pub const ZERO: &str =
        "00163e000001fe1234567890080045000022000140004011e4caa9fe0101a9fe01029c400009000e0000";
    pub const ZERO_SUMS: [u16; 2] = [0xffff, 0x561f];
    pub const UDP_AT: usize = 34 + 6;
}

fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// A frame of `headers` and `payload` with `sum` at `at`.
fn with_sum(headers: &str, payload: &[u8], at: usize, sum: u16) -> Vec<u8> {
    let mut f = unhex(headers);
    f.extend_from_slice(payload);
    f[at..at + 2].copy_from_slice(&sum.to_be_bytes());
    f
}

#[test]
fn blank_checksums_are_filled_in_and_nothing_else_is_touched() {
    let tcp_payload: Vec<u8> = (0..4).flat_map(|_| 0..=250u8).chain(*b"xyz").collect();
    let cases = [
        (blank::TCP, &tcp_payload[..], blank::TCP_AT, blank::TCP_SUMS),
        (
            blank::UDP,
            &b"hello, checksum offload!!"[..],
            blank::UDP_AT,
            blank::UDP_SUMS,
        ),
        (
            blank::ZERO,
            &b"zero\x20\xb4"[..],
            blank::UDP_AT,
            blank::ZERO_SUMS,
        ),
    ];
    let mut r = rig(2, 32, Options::default());
    r.net.refill(true).unwrap();
    assert_eq!(r.take_posted(), 32);
    let mut buf = [0u8; 2048];
    for &(headers, payload, at, [full, partial]) in &cases {
        let blank = with_sum(headers, payload, at, partial);
        // Over two responses for the TCP frame: the sum spans them.
        r.put(
            &blank,
            600,
            0,
            NETRXF_CSUM_BLANK | NETRXF_DATA_VALIDATED,
            false,
        );
        r.rx.push_responses();
        let f = r.net.receive_frame(&mut buf).unwrap().unwrap();
        assert_eq!(&buf[..f.len], &with_sum(headers, payload, at, full)[..]);
        assert!(f.data_validated && !f.csum_blank);
    }
    assert_eq!(r.net.stats().rx_csum_filled, 3);
    // Without the flag a frame is left as it came, a wrong checksum included.
    let as_sent = with_sum(
        blank::UDP,
        b"hello, checksum offload!!",
        blank::UDP_AT,
        0x1234,
    );
    r.put(&as_sent, 4096, 0, 0, false);
    // An IPv6 frame (no `feature-ipv6-csum-offload` was offered) and an IPv4 fragment are not filled in:
    // reported blank.
    let mut v6 = as_sent.clone();
    v6[12..14].copy_from_slice(&[0x86, 0xdd]);
    r.put(&v6, 4096, 0, NETRXF_CSUM_BLANK, false);
    let mut fragment = as_sent.clone();
    fragment[14 + 6] |= 0x20; // more fragments
    r.put(&fragment, 4096, 0, NETRXF_CSUM_BLANK, false);
    r.rx.push_responses();
    for (sent, blank) in [(&as_sent, false), (&v6, true), (&fragment, true)] {
        let f = r.net.receive_frame(&mut buf).unwrap().unwrap();
        assert_eq!((&buf[..f.len], f.csum_blank), (&sent[..], blank));
    }
    assert_eq!(r.net.stats().rx_csum_filled, 3);
}

#[test]
fn an_incomplete_frame_waits_for_its_last_response() {
    let mut r = rig(2, 8, Options::default());
    r.net.refill(true).unwrap();
    r.take_posted();
    let f = frame(1200, 5);
    // The first 500 bytes published alone (more_data set), the rest later.
    let req = r.posted.remove(0);
    let p = page_of(r.entry(req.gref.0).frame);
    for (k, &b) in f[..500].iter().enumerate() {
        // SAFETY: inside the granted page.
        unsafe { p.add(k).write_volatile(b) };
    }
    r.rx.next_response(NetifRxResponse {
        id: req.id,
        offset: 0,
        flags: NETRXF_MORE_DATA,
        status: 500,
    })
    .unwrap();
    r.rx.push_responses();
    let mut buf = [0u8; 1514];
    assert_eq!(r.net.receive(&mut buf), Ok(None));
    r.put(&f[500..], 4096, 0, 0, false);
    r.rx.push_responses();
    assert_eq!(r.net.receive(&mut buf), Ok(Some(1200)));
    assert_eq!(&buf[..1200], &f[..]);
}

#[test]
fn a_frame_larger_than_the_buffer_or_in_error_is_dropped_and_the_next_one_comes() {
    let mut r = rig(2, 8, Options::default());
    r.net.refill(true).unwrap();
    r.deliver(&frame(1000, 1), 4096);
    // An error response (netback's for a frame it could not copy).
    r.take_posted();
    let req = r.posted.remove(0);
    r.rx.next_response(NetifRxResponse {
        id: req.id,
        offset: 0,
        flags: 0,
        status: NETIF_RSP_ERROR,
    })
    .unwrap();
    r.deliver(&frame(300, 2), 4096);
    let mut small = [0u8; 500];
    assert_eq!(
        r.net.receive(&mut small),
        Err(NetError::BufferTooSmall { needed: 1000 })
    );
    assert_eq!(r.net.receive(&mut small), Ok(Some(300)));
    assert_eq!(&small[..300], &frame(300, 2)[..]);
    let s = r.net.stats();
    assert_eq!((s.rx_too_big, s.rx_errors, s.rx_frames), (1, 1, 1));
    assert_eq!(r.net.receive(&mut small), Ok(None));
}

#[test]
fn receive_pages_are_posted_again_in_batches() {
    let opts = Options {
        rx_refill: 4,
        ..Options::default()
    };
    let mut r = rig(2, 16, opts);
    r.net.refill(true).unwrap();
    assert_eq!(r.take_posted(), 16);
    assert_eq!(sent(), [0, 1], "the first post notifies (req_event 1)");
    // The backend asks for an event on new requests (its final check), as netback does.
    assert!(!r.rx.final_check_for_requests().unwrap());
    let mut buf = [0u8; 1514];
    for k in 0..3 {
        r.deliver(&frame(100, k), 4096);
        assert_eq!(r.net.receive(&mut buf), Ok(Some(100)));
    }
    // Three free: fewer than the batch, nothing posted yet.
    assert_eq!(r.take_posted(), 0);
    r.deliver(&frame(100, 3), 4096);
    assert_eq!(r.net.receive(&mut buf), Ok(Some(100)));
    assert_eq!(r.take_posted(), 4, "one batch of four");
    assert_eq!(sent(), [0, 2], "one notification for the batch");
    assert_eq!(r.net.stats().rx_refills, 2);
}

#[test]
fn a_response_naming_no_request_is_a_protocol_error_and_the_backend_counts_as_gone() {
    let mut r = rig(2, 8, Options::default());
    send_aligned(&mut r.net, &frame(100, 0)).unwrap();
    let req = r.tx.take_request().unwrap().unwrap();
    r.tx.next_response(NetifTxResponse {
        id: req.id + 7,
        status: NETIF_RSP_OKAY,
    })
    .unwrap();
    r.tx.push_responses();
    assert_eq!(r.net.reclaim(), Err(NetError::Protocol));
    assert!(r.net.is_gone());
    assert_eq!(
        send_aligned(&mut r.net, &frame(100, 0)),
        Err(NetError::BackendGone)
    );
    // And an extra slot answered NULL where a request was: also refused (not in flight twice).
    let _ = NETIF_RSP_NULL;
}

#[test]
fn a_vanished_backend_is_an_error_and_no_mapped_page_comes_back() {
    let mut r = rig(2, 4, Options::default());
    r.net.refill(true).unwrap();
    r.take_posted();
    send_aligned(&mut r.net, &frame(1514, 0)).unwrap();
    send_aligned(&mut r.net, &frame(1514, 1)).unwrap();
    // The backend took the requests, "maps" the first transmit page and one receive page, and is gone.
    let q = r.tx.take_request().unwrap().unwrap();
    let rx_gref = r.posted[0].gref;
    for g in [q.gref.0, rx_gref.0] {
        // SAFETY: as in `rig`: Xen sets GTF_reading while a grant is mapped.
        unsafe { (*r.entries.add(g as usize)).flags |= GTF_READING };
    }
    // Nothing answered for ever: sending fills the pool and says Full, never blocks.
    let mut full = false;
    for k in 0..10 {
        match send_aligned(&mut r.net, &frame(1514, k)) {
            Ok(()) => {}
            Err(NetError::Full) => {
                full = true;
                break;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(full);
    // The program learns the backend is closing (xenbus): every call says so.
    r.net.set_gone();
    let mut buf = [0u8; 1514];
    assert_eq!(
        send_aligned(&mut r.net, &frame(100, 0)),
        Err(NetError::BackendGone)
    );
    assert_eq!(r.net.receive(&mut buf), Err(NetError::BackendGone));
    assert_eq!(r.net.prepare_wait(), Err(NetError::BackendGone));
    assert_eq!(Error::from(NetError::BackendGone), Error::ENOTCONN);
    let pauses = Cell::new(0);
    let back = r
        .net
        .close::<fn() -> Result<(), Error>, 512>(None, &mut r.table, || {
            pauses.set(pauses.get() + 1);
            true
        });
    // Two rings, two transmit pages, four receive pages: all but the two "mapped" ones come back.
    assert_eq!(back.leaked, 2);
    assert_eq!((back.rings.len(), back.tx.len(), back.rx.len()), (2, 1, 3));
    assert!(pauses.get() > 0 && pauses.get() <= 16, "bounded retries");
    // The mapped pages' entries are still granted (never reused).
    for g in [q.gref.0, rx_gref.0] {
        // SAFETY: as in `rig`.
        let e = unsafe { *r.entries.add(g as usize) };
        assert_ne!(e.flags & GTF_PERMIT_ACCESS, 0);
    }
}

#[test]
fn a_healthy_close_hands_every_page_back() {
    let mut r = rig(3, 5, Options::default());
    r.net.refill(true).unwrap();
    send_aligned(&mut r.net, &frame(200, 0)).unwrap();
    r.take_frames(NETIF_RSP_OKAY);
    let info = *r.net.info();
    let back = r
        .net
        .close::<fn() -> Result<(), Error>, 512>(None, &mut r.table, || true);
    assert_eq!(back.leaked, 0);
    assert_eq!((back.rings.len(), back.tx.len(), back.rx.len()), (2, 3, 5));
    // What was handed back makes another frontend, the tables included: it posts its receive page
    // and sends.
    let mut back = back;
    let (rx_ring, tx_ring) = (back.rings.pop().unwrap(), back.rings.pop().unwrap());
    let pages = Pages {
        tx_ring,
        rx_ring,
        tx: core::slice::from_mut(back.tx.pop().unwrap()),
        rx: core::slice::from_mut(back.rx.pop().unwrap()),
        tables: back.tables,
    };
    let mut again = NetFront::new(&mut r.table, info, pages, Options::default()).unwrap();
    assert_eq!(again.refill(true), Ok(1));
    assert_eq!(again.send(&frame(100, 0)), Ok(()));
    assert_eq!(again.tx_in_flight(), 1);
}

#[test]
fn a_frontend_is_small_its_tables_apart() {
    // Connecting builds a `NetFront` on the stack and returns it: its bookkeeping (about 13 KiB) is
    // in the program's `Tables`, built in place.
    assert!(
        size_of::<NetFront>() <= 1024,
        "{} bytes",
        size_of::<NetFront>()
    );
    assert!(size_of::<Tables>() >= 12 * 1024, "{}", size_of::<Tables>());
}

#[test]
fn macs_are_parsed_and_bad_ones_refused() {
    assert_eq!(
        parse_mac(b"00:16:3e:0A:ff:01"),
        Some([0x00, 0x16, 0x3e, 0x0a, 0xff, 0x01])
    );
    for bad in [
        &b"00:16:3e:0a:ff"[..],
        b"00:16:3e:0a:ff:0g",
        b"00-16-3e-0a-ff-01",
        b"00:16:3e:0a:ff:011",
        b"",
    ] {
        assert_eq!(parse_mac(bad), None, "{:?}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn pages_that_do_not_fit_are_refused() {
    count_notifications();
    let all: &'static mut [Page] = Box::leak((0..4).map(|_| Page::new()).collect());
    BASE.with(|b| b.set(all.as_ptr() as usize));
    let (frame, rest) = all.split_at_mut(1);
    // SAFETY: as in `rig`.
    let mut table =
        unsafe { GrantTable::<16>::new(frame.as_mut_ptr().cast(), 1).with_gfn_of(gfn_of) };
    let (a, rest) = rest.split_at_mut(1);
    let (b, c) = rest.split_at_mut(1);
    let info = Info {
        mac: [0; 6],
        mtu: 1500,
        tx_port: Port(1),
        rx_port: Port(1),
        split: false,
        backend: DomId(0),
    };
    let pages = Pages {
        tx_ring: &mut a[0],
        rx_ring: &mut b[0],
        tx: c,
        rx: &mut [],
        tables: Box::leak(Box::new(Tables::new())),
    };
    assert!(matches!(
        NetFront::new(&mut table, info, pages, Options::default()),
        Err(NetError::BadPages)
    ));
    let _ = XEN_NETIF_EXTRA_FLAG_MORE;
}

/// A grant table over a page of its own and one page granted read-write to dom0.
fn one_granted_page() -> (GrantTable<16>, Grant) {
    let all: &'static mut [Page] = Box::leak((0..2).map(|_| Page::new()).collect());
    BASE.with(|b| b.set(all.as_ptr() as usize));
    let (frame, rest) = all.split_at_mut(1);
    // SAFETY: as in `rig`.
    let mut table =
        unsafe { GrantTable::<16>::new(frame.as_mut_ptr().cast(), 1).with_gfn_of(gfn_of) };
    let g = table.grant(DomId(0), &mut rest[0], true).unwrap();
    (table, g)
}

#[test]
fn a_granted_page_is_read_and_written_within_its_bounds_only() {
    count_notifications();
    let (mut table, g) = one_granted_page();
    g.write(4090, b"abcdef").unwrap();
    let mut back = [0u8; 6];
    g.read(4090, &mut back).unwrap();
    assert_eq!(&back, b"abcdef");
    // What the grantee sees: the same bytes in the frame the entry names.
    let frame = table.entries().get(g.gref()).unwrap().frame;
    // SAFETY: inside the leaked page.
    let seen: Vec<u8> = (0..6)
        .map(|i| unsafe { page_of(frame).add(4090 + i).read_volatile() })
        .collect();
    assert_eq!(seen, b"abcdef");
    assert_eq!(g.write(4091, b"abcdef"), Err(Error::EINVAL));
    assert_eq!(g.read(usize::MAX, &mut back), Err(Error::EINVAL));
    // SAFETY: a frame number nobody maps: nothing reads or writes it.
    let f = unsafe { table.grant_frame(DomId(0), 0x1234, true) }.unwrap();
    assert_eq!(f.read(0, &mut back), Err(Error::EINVAL));
}

/// The word-at-a-time shared copies (`Grant::read`/`write`, the frontends' data path): every start
/// offset within a word, lengths around the word and four-word steps, an unaligned buffer, and the page's
/// last bytes, against plain slice copies of the same bytes.
#[test]
fn granted_page_copies_are_exact_at_every_alignment_and_length() {
    let (table, g) = one_granted_page();
    let frame = table.entries().get(g.gref()).unwrap().frame;
    let pattern: Vec<u8> = (0..4096u32).map(|i| (i * 7 + i / 251) as u8).collect();
    g.write(0, &pattern).unwrap();
    // What the grantee sees in the frame the entry names, bytes `at`.
    let seen = |at: std::ops::Range<usize>| -> Vec<u8> {
        // SAFETY: inside the leaked page.
        at.map(|i| unsafe { page_of(frame).add(i).read_volatile() })
            .collect()
    };
    assert_eq!(seen(0..4096), pattern);
    let lengths = [0, 1, 7, 8, 9, 31, 32, 33, 40, 65, 1514];
    let mut buf = vec![0u8; 1600];
    for offset in (0..9).chain([4096 - 1514, 4096 - 65, 4096 - 1]) {
        for &len in lengths.iter().filter(|&&l| offset + l <= 4096) {
            // Into a buffer that starts one byte past a word, and back out of one.
            let out = &mut buf[1..1 + len];
            g.read(offset, out).unwrap();
            assert_eq!(
                out,
                &pattern[offset..offset + len],
                "read at {offset}, {len}"
            );
            let fresh: Vec<u8> = out.iter().map(|b| !b).collect();
            g.write(offset, &fresh).unwrap();
            // The bytes written, and the words around them untouched.
            let around = offset.saturating_sub(8)..(offset + len + 8).min(4096);
            let mut want = pattern[around.clone()].to_vec();
            let at = offset - around.start;
            want[at..at + len].copy_from_slice(&fresh);
            assert_eq!(seen(around), want, "write at {offset}, {len}");
            g.write(offset, &pattern[offset..offset + len]).unwrap();
        }
    }
}

#[test]
fn a_frame_larger_than_the_pool_is_too_large_not_full_for_ever() {
    // MTU 9000, one 4 KiB page: the pool holds 4096 - 128 - 7 bytes wherever a frame starts and whatever
    // its buffer's alignment.
    let mut r = rig_mtu(1, 8, Options::default(), 9000);
    assert_eq!(r.net.max_frame(), 9014);
    assert_eq!(
        send_aligned(&mut r.net, &frame(3962, 0)),
        Err(NetError::TooLarge {
            len: 3962,
            max: 3961
        })
    );
    assert!(r.net.has_room(3961).unwrap() && !r.net.has_room(3962).unwrap());
    send_aligned(&mut r.net, &frame(3961, 1)).unwrap();
    let got = r.take_frames(NETIF_RSP_OKAY);
    assert_eq!(got, vec![(frame(3961, 1), 1)]);
    // From 3968 (3961 rounded up to the next frame's alignment) exactly MIN_FIRST_SLOT bytes are left
    // before the pool's end: the next frame starts there and wraps to the page's start. While it is
    // unanswered only 3096 bytes are free: a 3961-byte frame waits (Full), and goes once it is answered.
    send_aligned(&mut r.net, &frame(1000, 2)).unwrap();
    assert_eq!(
        send_aligned(&mut r.net, &frame(3961, 4)),
        Err(NetError::Full)
    );
    assert_eq!(r.take_frames(NETIF_RSP_OKAY), vec![(frame(1000, 2), 2)]);
    send_aligned(&mut r.net, &frame(3961, 4)).unwrap();
    assert_eq!(r.take_frames(NETIF_RSP_OKAY)[0].0, frame(3961, 4));
}

/// The Internet sum against RFC 1071's worked example and against a byte-at-a-time sum written here, for
/// every start within two words and many lengths (the words' loads meet the bytes at every offset).
#[test]
fn the_internet_sum_is_rfc_1071s_at_every_alignment_and_length() {
    // RFC 1071, 4.1: 00 01 f2 03 f4 f5 f6 f7 sum to ddf2.
    assert_eq!(
        internet_sum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
        0xddf2
    );
    let naive = |d: &[u8]| {
        let mut s: u32 = 0;
        for (i, &b) in d.iter().enumerate() {
            s += if i % 2 == 0 {
                u32::from(b) << 8
            } else {
                u32::from(b)
            };
        }
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        s as u16
    };
    let data: Vec<u8> = (0..if cfg!(miri) { 1600 } else { 66_000u32 })
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for start in 0..16 {
        for len in (0..40)
            .chain(if cfg!(miri) { 40..40 } else { 40..100 })
            .chain([1500, 1501])
        {
            let d = &data[start..start + len];
            assert_eq!(internet_sum(d), naive(d), "start {start}, length {len}");
        }
    }
    // A GSO segment's length (too slow a walk for Miri: its shorter cases above cover the same paths).
    for start in if cfg!(miri) { &[][..] } else { &[0, 3][..] } {
        let d = &data[*start..*start + 65535];
        assert_eq!(internet_sum(d), naive(d));
    }
    // All ones: 0xffff, never folded to 0.
    assert_eq!(internet_sum(&[0xff; 64]), 0xffff);
}
