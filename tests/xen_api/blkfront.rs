//! The block frontend on the host: a fake blkback on the back end of the same ring (`BackRing`), serving a
//! disk held in a `Vec`, reached through the grant entries the frontend wrote (frame → page), driven
//! inside the frontend's `wait` (one thread, as with the xenstore tests) and its xenbus `pause`. The
//! expected disk contents are computed by the test from its own model, never by the frontend.
//!
//! Backends that answer errors, answer out of order, answer garbage, vanish, or close are each checked
//! for the error the frontend must give, without a hang and without a page handed back while "mapped".

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

use xen_hypercall::mock;
use xen_hypercall::xen::blkfront::{
    BlkError, BlkFront, Options, Pages, Returned, Xenbus, parse_u64,
};
use xen_hypercall::xen::blkif::{
    BLKIF_OP_DISCARD, BLKIF_OP_FLUSH_DISKCACHE, BLKIF_OP_INDIRECT, BLKIF_OP_READ, BLKIF_OP_WRITE,
    BLKIF_RSP_EOPNOTSUPP, BLKIF_RSP_ERROR, BLKIF_RSP_OKAY, BlkifRequest, BlkifRequestDiscard,
    BlkifRequestIndirect, BlkifRequestSegment, BlkifResponse,
};
use xen_hypercall::xen::evtchn::{self, Port};
use xen_hypercall::xen::grant_table::{GTF_WRITING, GrantEntryV1, GrantTable};
use xen_hypercall::xen::ring::{BackRing, SharedArea};
use xen_hypercall::xen::{Error, Page, nr};

const FRONT: &str = "device/vbd/51712";
const BACK: &str = "/local/domain/0/backend/vbd/1/51712";
const PORT: u32 = 7;
/// The disk: 2 MiB of 512-byte sectors (512 KiB under Miri, where every byte the fake backend moves
/// costs thousands of times more).
const SECTORS: u64 = if cfg!(miri) { 1024 } else { 4096 };

std::thread_local! {
    /// The first page of this test's memory region: frame 1.
    static BASE: Cell<usize> = const { Cell::new(0) };
}

/// Frames are counted from the region's start (frame 1), so that they fit a v1 entry's 32 bits.
fn gfn_of(p: *const Page) -> u64 {
    ((p as usize - BASE.with(Cell::get)) / 4096 + 1) as u64
}

fn page_of(frame: u32) -> *mut Page {
    (BASE.with(Cell::get) + (frame as usize - 1) * 4096) as *mut Page
}

/// The region: the grant table's frame, then every page the frontend gets.
struct Memory {
    table: GrantTable<512>,
    entries: *mut GrantEntryV1,
    ring: &'static mut [Page],
    data: &'static mut [Page],
    indirect: &'static mut [Page],
}

fn memory(ring: usize, data: usize, indirect: usize) -> Memory {
    let all: &'static mut [Page] = Box::leak(
        (0..1 + ring + data + indirect)
            .map(|_| Page::new())
            .collect(),
    );
    BASE.with(|b| b.set(all.as_ptr() as usize));
    let (frame, rest) = all.split_at_mut(1);
    let entries = frame.as_mut_ptr().cast::<GrantEntryV1>();
    // SAFETY: the frame is leaked, used as the table's entries only (and read by the fake backend through
    // raw pointers, as Xen would); pages' frames come from `gfn_of`, which covers the region.
    let table = unsafe { GrantTable::<512>::new(entries, 1).with_gfn_of(gfn_of) };
    let (ring, rest) = rest.split_at_mut(ring);
    let (data, indirect) = rest.split_at_mut(data);
    Memory {
        table,
        entries,
        ring,
        data,
        indirect,
    }
}

impl Memory {
    /// The grant table, and the pages to give the frontend.
    fn split(self) -> (GrantTable<512>, Pages) {
        let pages = Pages {
            ring: self.ring,
            data: self.data,
            indirect: self.indirect,
        };
        (self.table, pages)
    }
}

/// How the fake backend misbehaves.
#[derive(Clone, Copy, Debug, Default)]
struct Mode {
    /// Answer each turn's requests last first.
    reverse: bool,
    /// Answer `BLKIF_RSP_ERROR` to a request covering this sector.
    fail_sector: Option<u64>,
    /// Answer flushes with `BLKIF_RSP_EOPNOTSUPP`.
    no_flush: bool,
    /// Answer discards with `BLKIF_RSP_EOPNOTSUPP`.
    no_discard: bool,
    /// Stop answering after this many requests (and set `GTF_writing` on the pages of those not answered:
    /// still mapped).
    vanish_after: Option<usize>,
    /// Write backend state 5 (Closing) after this many requests.
    close_after: Option<usize>,
    /// Answer with an id no request has.
    garbage_id: bool,
    /// Flip one byte of everything it reads (the negative control of the data checks).
    corrupt: bool,
}

/// What the backend offers.
#[derive(Clone, Copy, Debug)]
struct Offer {
    max_ring_page_order: Option<u32>,
    indirect: Option<u32>,
    flush: bool,
    persistent: bool,
    /// `feature-discard` (with `discard-granularity` 4096).
    discard: bool,
}

impl Default for Offer {
    fn default() -> Offer {
        Offer {
            max_ring_page_order: None,
            indirect: None,
            flush: true,
            persistent: true,
            discard: false,
        }
    }
}

struct Backend {
    store: BTreeMap<String, String>,
    entries: *mut GrantEntryV1,
    ring: Option<BackRing<'static, BlkifRequest, BlkifResponse>>,
    disk: Vec<u8>,
    mode: Mode,
    offer: Offer,
    /// Requests seen: (operation, indirect_op, sector, segments).
    seen: Vec<(u8, u8, u64, usize)>,
    /// Discards seen: (flag, sector, sectors).
    discards: Vec<(u8, u64, u64)>,
    answered: usize,
    turns: usize,
    /// Pages of requests never answered (marked `GTF_writing`).
    held: Vec<u32>,
    changed: bool,
}

impl Backend {
    fn new(entries: *mut GrantEntryV1, offer: Offer, mode: Mode) -> Rc<RefCell<Backend>> {
        let mut store = BTreeMap::new();
        store.insert(format!("{FRONT}/backend"), BACK.to_string());
        store.insert(format!("{FRONT}/backend-id"), "0".to_string());
        store.insert(format!("{FRONT}/state"), "1".to_string());
        store.insert(format!("{BACK}/state"), "2".to_string());
        if let Some(o) = offer.max_ring_page_order {
            store.insert(format!("{BACK}/max-ring-page-order"), o.to_string());
        }
        let disk = initial_disk();
        Rc::new(RefCell::new(Backend {
            store,
            entries,
            ring: None,
            disk,
            mode,
            offer,
            seen: Vec::new(),
            discards: Vec::new(),
            answered: 0,
            turns: 0,
            held: Vec::new(),
            changed: false,
        }))
    }

    fn get(&self, k: &str) -> Option<&str> {
        self.store.get(k).map(String::as_str)
    }

    /// The page a grant reference names (its entry's frame), checking it is granted to dom0.
    fn page(&self, gref: u32) -> *mut Page {
        // SAFETY: the entry is inside the leaked table frame (512 entries); read as Xen would.
        let e = unsafe { std::ptr::read_volatile(self.entries.add(gref as usize)) };
        assert_eq!(e.flags & 3, 1, "gref {gref} is not a permit-access grant");
        assert_eq!(e.domid.0, 0);
        page_of(e.frame)
    }

    fn mark_writing(&self, gref: u32) {
        // SAFETY: as in `page`; Xen sets GTF_writing while a grant is mapped writable.
        unsafe {
            let f = &raw mut (*self.entries.add(gref as usize)).flags;
            f.write_volatile(f.read_volatile() | GTF_WRITING);
        }
    }

    /// The xenbus side: connects once the frontend is Initialised.
    fn xenbus(&mut self) {
        if self.ring.is_some() || self.get(&format!("{FRONT}/state")) != Some("3") {
            return;
        }
        let order: u32 = self
            .get(&format!("{FRONT}/ring-page-order"))
            .map_or(0, |v| v.parse().unwrap());
        let gref: u32 = if order == 0 {
            self.get(&format!("{FRONT}/ring-ref"))
                .unwrap()
                .parse()
                .unwrap()
        } else {
            assert!(self.get(&format!("{FRONT}/ring-ref")).is_none());
            let refs: Vec<u32> = (0..1u32 << order)
                .map(|i| {
                    self.get(&format!("{FRONT}/ring-ref{i}"))
                        .unwrap()
                        .parse()
                        .unwrap()
                })
                .collect();
            // The ring's pages are contiguous here: each ref's page follows the previous one.
            for w in refs.windows(2) {
                assert_eq!(self.page(w[1]) as usize, self.page(w[0]) as usize + 4096);
            }
            refs[0]
        };
        assert_eq!(self.get(&format!("{FRONT}/event-channel")), Some("7"));
        // SAFETY: the ring's pages are leaked, contiguous (checked above), and accessed only through
        // the two rings.
        let area = unsafe { SharedArea::new(self.page(gref), 1 << order) }.unwrap();
        self.ring = Some(BackRing::attach(area, 0).unwrap());
        let o = self.offer;
        let mut put = |k: &str, v: String| {
            self.store.insert(format!("{BACK}/{k}"), v);
        };
        put("sectors", SECTORS.to_string());
        put("sector-size", "512".into());
        put("info", "0".into());
        put("feature-flush-cache", (o.flush as u8).to_string());
        put("feature-persistent", (o.persistent as u8).to_string());
        if let Some(n) = o.indirect {
            put("feature-max-indirect-segments", n.to_string());
        }
        if o.discard {
            put("feature-discard", "1".into());
            put("discard-granularity", "4096".into());
            put("discard-alignment", "0".into());
        }
        put("state", "4".into());
    }

    /// One turn of the block side: takes every request waiting, answers (per the mode), publishes.
    /// Returns whether it answered anything.
    fn serve(&mut self) -> bool {
        self.turns += 1;
        assert!(self.turns < 10_000, "the frontend waits forever");
        let Some(mut ring) = self.ring.take() else {
            return false;
        };
        let mut batch = Vec::new();
        loop {
            while let Some(req) = ring.take_request().unwrap() {
                batch.push(req);
            }
            if !ring.final_check_for_requests().unwrap() {
                break;
            }
        }
        let mut rsps = Vec::new();
        for req in batch {
            let n = self.seen.len();
            if let Some(v) = self.mode.vanish_after
                && n >= v
            {
                for (g, _, _) in self.segments(&req) {
                    self.mark_writing(g);
                    self.held.push(g);
                }
                self.seen.push((req.operation, 0, req.sector_number, 0));
                continue;
            }
            if self.mode.close_after == Some(n) {
                self.store.insert(format!("{BACK}/state"), "5".into());
                self.changed = true;
            }
            rsps.push(self.execute(&req));
        }
        if self.mode.reverse {
            rsps.reverse();
        }
        let any = !rsps.is_empty();
        for r in rsps {
            ring.next_response(r).unwrap();
            self.answered += 1;
        }
        ring.push_responses_and_check_notify();
        self.ring = Some(ring);
        any
    }

    /// The (gref, first, last) segments of a read, write or indirect request.
    fn segments(&self, req: &BlkifRequest) -> Vec<(u32, u8, u8)> {
        if req.operation == BLKIF_OP_INDIRECT {
            // SAFETY: a slot holds either shape: the indirect request's 64 bytes are the slot's start.
            let ind: BlkifRequestIndirect = unsafe { std::mem::transmute_copy(req) };
            let page = self
                .page(ind.indirect_grefs[0].0)
                .cast::<BlkifRequestSegment>();
            (0..ind.nr_segments as usize)
                .map(|i| {
                    // SAFETY: within the indirect page (at most 512 segments).
                    let s = unsafe { page.add(i).read_volatile() };
                    (s.gref.0, s.first_sect, s.last_sect)
                })
                .collect()
        } else {
            req.seg[..req.nr_segments as usize]
                .iter()
                .map(|s| (s.gref.0, s.first_sect, s.last_sect))
                .collect()
        }
    }

    fn execute(&mut self, req: &BlkifRequest) -> BlkifResponse {
        let (op, ind_op) = if req.operation == BLKIF_OP_INDIRECT {
            // SAFETY: as in `segments`.
            let ind: BlkifRequestIndirect = unsafe { std::mem::transmute_copy(req) };
            (ind.indirect_op, BLKIF_OP_INDIRECT)
        } else {
            (req.operation, 0)
        };
        let (id, sector) = if req.operation == BLKIF_OP_INDIRECT {
            // SAFETY: as in `segments`.
            let ind: BlkifRequestIndirect = unsafe { std::mem::transmute_copy(req) };
            (ind.id, ind.sector_number)
        } else {
            (req.id, req.sector_number)
        };
        let segs = self.segments(req);
        let sectors: u64 = segs.iter().map(|s| (s.2 - s.1 + 1) as u64).sum();
        self.seen.push((op, ind_op, sector, segs.len()));
        let mut status = BLKIF_RSP_OKAY;
        if op == BLKIF_OP_DISCARD {
            // SAFETY: a slot holds either shape: the discard request's 32 bytes are the slot's start.
            let d: BlkifRequestDiscard = unsafe { std::mem::transmute_copy(req) };
            self.discards.push((d.flag, d.sector_number, d.nr_sectors));
            let range =
                (d.sector_number as usize * 512)..((d.sector_number + d.nr_sectors) as usize * 512);
            let failing = self.mode.fail_sector.is_some_and(|f| {
                (d.sector_number..d.sector_number.saturating_add(d.nr_sectors)).contains(&f)
            });
            if self.mode.no_discard {
                status = BLKIF_RSP_EOPNOTSUPP;
            } else if failing {
                status = BLKIF_RSP_ERROR;
            } else if let Some(bytes) = self.disk.get_mut(range) {
                // As a tmpfs file under a loop device does: a hole, read as zeros.
                bytes.fill(0);
            } else {
                status = BLKIF_RSP_ERROR;
            }
        } else if op == BLKIF_OP_FLUSH_DISKCACHE && self.mode.no_flush {
            status = BLKIF_RSP_EOPNOTSUPP;
        } else if self
            .mode
            .fail_sector
            .is_some_and(|f| (sector..sector + sectors).contains(&f))
        {
            status = BLKIF_RSP_ERROR;
        } else if op == BLKIF_OP_READ || op == BLKIF_OP_WRITE {
            let mut at = sector as usize * 512;
            for (gref, first, last) in segs {
                let p = self.page(gref).cast::<u8>();
                for s in first..=last {
                    let sector = p.wrapping_add(s as usize * 512);
                    let disk = &mut self.disk[at..at + 512];
                    // SAFETY: the sector is inside the granted page (`last` < 8); a copy through the raw
                    // pointer, as Xen's would be (one copy a sector: a byte loop is slow under Miri).
                    unsafe {
                        if op == BLKIF_OP_WRITE {
                            std::ptr::copy_nonoverlapping(sector, disk.as_mut_ptr(), 512);
                        } else {
                            std::ptr::copy_nonoverlapping(disk.as_ptr(), sector, 512);
                            if self.mode.corrupt && (at..at + 512).contains(&1000) {
                                let b = sector.add(1000 - at);
                                b.write(b.read() ^ 0xff);
                            }
                        }
                    }
                    at += 512;
                }
            }
        }
        BlkifResponse {
            id: if self.mode.garbage_id {
                id ^ 0x5_0000_0000
            } else {
                id
            },
            operation: req.operation,
            status,
            ..Default::default()
        }
    }
}

fn initial(i: usize) -> u8 {
    (i as u8).wrapping_mul(31).wrapping_add((i >> 9) as u8)
}

/// The whole disk of [`initial`] bytes, sector by sector as copies (a byte-by-byte loop over the disk
/// takes a minute under Miri): byte `j` of sector `s` is `31 j + s = 31 (j + 223 s)` (mod 256; 223 is 31's
/// inverse), so sector `s` is the 256-periodic run `31 i` from `i = 223 s`.
fn initial_disk() -> Vec<u8> {
    let run: Vec<u8> = (0..768usize).map(|i| (i as u8).wrapping_mul(31)).collect();
    let mut disk = Vec::with_capacity(SECTORS as usize * 512);
    for s in 0..SECTORS as usize {
        let k = (223 * s) % 256;
        disk.extend_from_slice(&run[k..k + 512]);
    }
    disk
}

#[test]
#[cfg_attr(miri, ignore = "byte by byte: a minute under Miri")]
fn the_initial_disk_is_initial_bytes() {
    let disk = initial_disk();
    assert_eq!(disk.len(), SECTORS as usize * 512);
    for (i, &b) in disk.iter().enumerate() {
        assert_eq!(b, initial(i), "byte {i}");
    }
}

/// The frontend's xenbus: the backend's store; `pause` runs the backend's xenbus side.
struct Bus {
    be: Rc<RefCell<Backend>>,
    pauses: usize,
    watched: Vec<String>,
}

impl Bus {
    fn new(be: &Rc<RefCell<Backend>>) -> Bus {
        Bus {
            be: be.clone(),
            pauses: 0,
            watched: Vec::new(),
        }
    }
}

impl Xenbus for Bus {
    fn read(&mut self, path: &[u8], buf: &mut [u8]) -> Result<usize, Error> {
        let p = std::str::from_utf8(path).unwrap();
        let be = self.be.borrow();
        let v = be.get(p).ok_or(Error::ENOENT)?;
        buf[..v.len()].copy_from_slice(v.as_bytes());
        Ok(v.len())
    }
    fn write(&mut self, path: &[u8], value: &[u8]) -> Result<(), Error> {
        let p = std::str::from_utf8(path).unwrap().to_string();
        let v = std::str::from_utf8(value).unwrap().to_string();
        self.be.borrow_mut().store.insert(p, v);
        Ok(())
    }
    fn watch(&mut self, path: &[u8]) -> Result<(), Error> {
        self.watched.push(std::str::from_utf8(path).unwrap().into());
        Ok(())
    }
    fn changed(&mut self) -> Result<bool, Error> {
        Ok(std::mem::take(&mut self.be.borrow_mut().changed))
    }
    fn pause(&mut self) -> Result<(), Error> {
        self.pauses += 1;
        if self.pauses > 50 {
            return Err(Error::ETIMEDOUT);
        }
        self.be.borrow_mut().xenbus();
        Ok(())
    }
}

type Wait = Box<dyn FnMut(Port) -> Result<bool, Error>>;
type Front = BlkFront<Bus, Wait>;

/// The mock answers `alloc_unbound` with port 7 and every other call with 0.
fn hypervisor() {
    mock::reset();
    mock::set_default(|c| {
        if c.op() == nr::EVENT_CHANNEL_OP && c.arg(0) == evtchn::EVTCHNOP_ALLOC_UNBOUND {
            c.update(1, |a: &mut evtchn::AllocUnbound| a.port = Port(PORT));
        }
        0
    });
}

struct Rig {
    be: Rc<RefCell<Backend>>,
    table: GrantTable<512>,
    entries: *mut GrantEntryV1,
}

fn rig(
    pages: (usize, usize, usize),
    offer: Offer,
    mode: Mode,
    options: Options,
) -> (Rig, Result<Front, BlkError>) {
    hypervisor();
    let m = memory(pages.0, pages.1, pages.2);
    let entries = m.entries;
    let be = Backend::new(entries, offer, mode);
    let bus = Bus::new(&be);
    let b2 = be.clone();
    let wait: Wait = Box::new(move |port| {
        assert_eq!(port, Port(PORT));
        Ok(b2.borrow_mut().serve())
    });
    let (mut table, pages) = m.split();
    let fe = BlkFront::connect(bus, &mut table, 51712, pages, options, wait);
    (Rig { be, table, entries }, fe)
}

/// [`rig`] with the default options, connected.
fn front(pages: (usize, usize, usize), offer: Offer, mode: Mode) -> (Rig, Front) {
    let (r, fe) = rig(pages, offer, mode, Options::default());
    (r, fe.unwrap())
}

fn sends() -> usize {
    mock::calls()
        .iter()
        .filter(|c| c.op == nr::EVENT_CHANNEL_OP && c.args[0] == evtchn::EVTCHNOP_SEND)
        .count()
}

/// A test pattern the test computes itself.
/// Byte `i` is `(13 i + seed) ^ (i >> 11)` (the XOR tells 2 KiB blocks apart), made eight bytes at a
/// time: a byte loop over the writes of a round trip takes minutes under Miri.
fn pattern(seed: u8, n: usize) -> Vec<u8> {
    let run: Vec<u64> = (0..256)
        .map(|w| {
            u64::from_le_bytes(core::array::from_fn(|b| {
                ((w * 8 + b) as u8).wrapping_mul(13).wrapping_add(seed)
            }))
        })
        .collect();
    let mut out = Vec::with_capacity(n + 8);
    for w in 0..n.div_ceil(8) {
        let block = ((w * 8) >> 11) as u8;
        out.extend_from_slice(
            &(run[w % 256] ^ (u64::from(block) * 0x0101_0101_0101_0101)).to_le_bytes(),
        );
    }
    out.truncate(n);
    out
}

#[test]
#[cfg_attr(miri, ignore = "byte by byte: slow under Miri")]
fn the_fast_pattern_is_the_pattern() {
    for (seed, n) in [(1u8, 512 * 97), (3, 5000), (200, 7)] {
        let slow: Vec<u8> = (0..n)
            .map(|i| (i as u8).wrapping_mul(13).wrapping_add(seed) ^ (i >> 11) as u8)
            .collect();
        assert_eq!(pattern(seed, n), slow, "seed {seed}, {n} bytes");
    }
}

#[test]
fn handshake_writes_the_frontend_nodes_and_reads_the_backend() {
    let (r, fe) = front((1, 8, 0), Offer::default(), Mode::default());
    let be = r.be.borrow();
    let s = |k: &str| be.get(&format!("{FRONT}/{k}")).map(str::to_string);
    // The ring's reference: the first unreserved one (8), then the data pages 9..17.
    assert_eq!(s("ring-ref").as_deref(), Some("8"));
    assert_eq!(s("ring-page-order"), None);
    assert_eq!(s("event-channel").as_deref(), Some("7"));
    assert_eq!(s("protocol").as_deref(), Some("x86_64-abi"));
    assert_eq!(s("feature-persistent").as_deref(), Some("1"));
    assert_eq!(s("state").as_deref(), Some("4"));
    let i = fe.info();
    assert_eq!(
        (i.sectors, i.sector_size, i.ring_page_order, i.ring_entries),
        (SECTORS, 512, 0, 32)
    );
    assert!(i.flush && i.backend_persistent && i.max_indirect_segments == 0);
    assert_eq!(i.segments_per_request, 8); // 11, but only 8 data pages
    // The event channel was allocated for dom0.
    let alloc = mock::calls()
        .into_iter()
        .find(|c| c.op == nr::EVENT_CHANNEL_OP && c.args[0] == evtchn::EVTCHNOP_ALLOC_UNBOUND)
        .unwrap();
    let a: evtchn::AllocUnbound = alloc.read(1).unwrap();
    assert_eq!((a.dom.0, a.remote_dom.0), (0x7FF0, 0));
    // Every page granted to dom0 read-write: ring 8, data 9..=16.
    for g in 8..17 {
        // SAFETY: inside the leaked table frame.
        let e = unsafe { r.entries.add(g).read_volatile() };
        assert_eq!((e.flags, e.domid.0), (1, 0), "gref {g}");
    }
    assert_eq!(fe.stats().grants, 9);
}

#[test]
fn a_multi_page_ring_uses_ring_page_order_and_ring_refs() {
    // Backend allows 8 pages, the program gave 4 (plus one more: 5 → 4 used, 1 spare).
    let offer = Offer {
        max_ring_page_order: Some(3),
        ..Offer::default()
    };
    let (mut r, mut fe) = front((5, 4, 0), offer, Mode::default());
    {
        let be = r.be.borrow();
        assert_eq!(be.get(&format!("{FRONT}/ring-page-order")), Some("2"));
        let refs: Vec<_> = (0..4)
            .map(|i| be.get(&format!("{FRONT}/ring-ref{i}")).unwrap().to_string())
            .collect();
        assert_eq!(refs, ["8", "9", "10", "11"]);
    }
    assert_eq!(
        (fe.info().ring_page_order, fe.info().ring_entries),
        (2, 128)
    );
    // The ring works: a read through it.
    let mut buf = vec![0u8; 4096];
    fe.read(8, &mut buf).unwrap();
    assert_eq!(buf, initial_disk()[4096..8192]);
    // The program's option caps it: order 1.
    let (_r2, fe2) = rig(
        (4, 4, 0),
        offer,
        Mode::default(),
        Options {
            ring_page_order: 1,
            ..Options::default()
        },
    );
    assert_eq!(fe2.unwrap().info().ring_entries, 64);
    let back = fe.close(&mut r.table);
    assert_eq!((back.ring.len(), back.data.len(), back.leaked), (5, 4, 0));
}

/// Writes at odd sector offsets and lengths (requests crossing the 11-segment limit), then reads the
/// whole disk back: it must be the test's own model.
/// Returns what the full read read and the model.
fn round_trip(
    pages: (usize, usize, usize),
    offer: Offer,
    mode: Mode,
) -> (Rig, Front, Vec<u8>, Vec<u8>) {
    let (r, mut fe) = front(pages, offer, mode);
    let mut model = initial_disk();
    for (k, &(sector, sectors)) in [
        (1u64, 1usize),
        (3, 97),
        (200, 89),
        (511, 300),
        (SECTORS - 96, 96),
    ]
    .iter()
    .enumerate()
    {
        let data = pattern(k as u8 + 1, sectors * 512);
        fe.write(sector, &data).unwrap();
        model[sector as usize * 512..][..data.len()].copy_from_slice(&data);
    }
    fe.flush().unwrap();
    let mut all = vec![0u8; SECTORS as usize * 512];
    fe.read(0, &mut all).unwrap();
    assert_eq!(r.be.borrow().disk, model, "the backend's disk");
    (r, fe, all, model)
}

fn assert_same(read: &[u8], model: &[u8]) {
    // Compared whole first (one comparison, fast under Miri); counted only when they differ.
    if read != model {
        let bad = read.iter().zip(model).filter(|(a, b)| a != b).count();
        panic!("{bad} bytes read differ from the model");
    }
}

#[test]
fn odd_writes_then_a_full_read_match_the_model_direct_requests() {
    let (r, fe, read, model) = round_trip((1, 32, 0), Offer::default(), Mode::default());
    assert_same(&read, &model);
    let be = r.be.borrow();
    // No request has more than 11 segments; the 97-sector write needs 13 pages: 2 requests.
    assert!(be.seen.iter().all(|s| s.3 <= 11 && s.1 == 0));
    let writes: Vec<_> = be.seen.iter().filter(|s| s.0 == BLKIF_OP_WRITE).collect();
    assert_eq!((writes[0].2, writes[0].3), (1, 1));
    assert_eq!(
        (writes[1].2, writes[1].3, writes[2].2, writes[2].3),
        (3, 11, 91, 2)
    );
    let st = fe.stats();
    // Batched: at most one notification per batch, and fewer batches than requests.
    assert!(
        st.notifications <= st.batches && st.batches < st.requests,
        "{st:?}"
    );
    assert_eq!(sends() as u64, st.notifications);
    assert_eq!(st.grants, 33);
}

#[test]
fn indirect_requests_when_offered() {
    let offer = Offer {
        indirect: Some(32),
        ..Offer::default()
    };
    let (r, fe, read, model) = round_trip((1, 64, 4), offer, Mode::default());
    assert_same(&read, &model);
    assert_eq!(fe.info().segments_per_request, 32);
    let be = r.be.borrow();
    assert!(be.seen.iter().any(|s| s.1 == BLKIF_OP_INDIRECT && s.3 > 11));
    assert!(be.seen.iter().all(|s| s.3 <= 32));
    // The full read: SECTORS / 8 pages (512 for 2 MiB) in requests of 32 (16 for 2 MiB).
    let reads = be.seen.iter().filter(|s| s.0 == BLKIF_OP_READ).count() as u64;
    assert_eq!(reads, SECTORS / 8 / 32);
    assert!(fe.stats().indirect_requests > 0);
}

#[test]
fn out_of_order_responses_are_matched_by_id() {
    let mode = Mode {
        reverse: true,
        ..Mode::default()
    };
    let (_r, _fe, read, model) = round_trip((1, 64, 0), Offer::default(), mode);
    assert_same(&read, &model);
}

#[test]
fn a_corrupting_backend_is_seen_by_the_data_check() {
    // The negative control of the checks above: one byte flipped on every read.
    let mode = Mode {
        corrupt: true,
        ..Mode::default()
    };
    let (r, mut fe) = front((1, 16, 0), Offer::default(), mode);
    let mut all = vec![0u8; 8192];
    fe.read(0, &mut all).unwrap();
    let model = &initial_disk()[..8192];
    let diff: Vec<u8> = all.iter().zip(model).map(|(a, b)| a ^ b).collect();
    assert_eq!(diff.iter().filter(|&&d| d != 0).count(), 1);
    assert_eq!(diff[1000], 0xff);
    drop(r);
}

#[test]
fn an_error_response_is_typed_and_every_request_is_still_collected() {
    let mode = Mode {
        fail_sector: Some(300),
        ..Mode::default()
    };
    let (r, mut fe) = front((1, 64, 0), Offer::default(), mode);
    let mut buf = vec![0u8; 512 * 400];
    // Sectors 0..400 in requests of 88: the one from 264 covers 300.
    assert_eq!(fe.read(0, &mut buf), Err(BlkError::Io { sector: 264 }));
    {
        let be = r.be.borrow();
        assert_eq!(be.answered, be.seen.len(), "a request left in flight");
    }
    // The frontend goes on: a read elsewhere works and sees the disk.
    let mut one = vec![0u8; 1024];
    fe.read(1000, &mut one).unwrap();
    assert_eq!(one, initial_disk()[1000 * 512..1002 * 512]);
    const { assert!(SECTORS >= 1002) };
    assert_eq!(Error::from(BlkError::Io { sector: 1 }), Error::EIO);
}

#[test]
fn flush_not_supported_is_typed() {
    let mode = Mode {
        no_flush: true,
        ..Mode::default()
    };
    let (_r, mut fe) = front((1, 4, 0), Offer::default(), mode);
    assert_eq!(fe.flush(), Err(BlkError::NotSupported));
    // Not offered: refused without a request.
    let offer = Offer {
        flush: false,
        ..Offer::default()
    };
    let (r, mut fe) = front((1, 4, 0), offer, Mode::default());
    assert_eq!(fe.flush(), Err(BlkError::NotSupported));
    assert!(r.be.borrow().seen.is_empty());
}

#[test]
fn a_discard_is_one_request_and_the_range_reads_back_as_zeros() {
    let offer = Offer {
        discard: true,
        ..Offer::default()
    };
    let (r, mut fe) = front((1, 8, 0), offer, Mode::default());
    let i = *fe.info();
    assert!(i.discard && !i.discard_secure);
    assert_eq!((i.discard_granularity, i.discard_alignment), (4096, 0));
    // Sectors 16..48 of 0..64: the model's bytes there are not zeros (else the check below is vacuous).
    let (from, n) = (16u64, 32u64);
    let mut model = initial_disk();
    model.truncate(64 * 512);
    assert!(
        model[from as usize * 512..][..n as usize * 512]
            .iter()
            .any(|&b| b != 0)
    );
    let before = fe.stats().requests;
    fe.discard(from, n).unwrap();
    assert_eq!(fe.stats().requests, before + 1);
    assert_eq!(r.be.borrow().discards, vec![(0, from, n)]);
    model[from as usize * 512..][..n as usize * 512].fill(0);
    let mut back = vec![0xaa; 64 * 512];
    fe.read(0, &mut back).unwrap();
    assert_same(&back, &model);
    // Nothing discarded: nothing sent.
    fe.discard(100, 0).unwrap();
    assert_eq!(r.be.borrow().discards.len(), 1);
}

#[test]
fn a_discard_not_offered_or_out_of_range_sends_nothing() {
    let (r, mut fe) = front((1, 4, 0), Offer::default(), Mode::default());
    assert!(!fe.info().discard);
    assert_eq!(fe.discard(0, 8), Err(BlkError::NotSupported));
    assert!(r.be.borrow().seen.is_empty());
    let offer = Offer {
        discard: true,
        ..Offer::default()
    };
    let (r, mut fe) = front((1, 4, 0), offer, Mode::default());
    assert_eq!(fe.discard(SECTORS - 1, 2), Err(BlkError::OutOfRange));
    assert_eq!(fe.discard(u64::MAX, 2), Err(BlkError::OutOfRange));
    assert_eq!(fe.discard(1, u64::MAX), Err(BlkError::OutOfRange));
    assert!(r.be.borrow().seen.is_empty());
    // The last sector is fine.
    fe.discard(SECTORS - 1, 1).unwrap();
    assert_eq!(r.be.borrow().discards, vec![(0, SECTORS - 1, 1)]);
    // Refused by the backend: typed.
    let mode = Mode {
        no_discard: true,
        ..Mode::default()
    };
    let (r, mut fe) = front((1, 4, 0), offer, mode);
    assert_eq!(fe.discard(0, 8), Err(BlkError::NotSupported));
    assert_eq!(r.be.borrow().discards.len(), 1);
    // A failed discard names its first sector, and the frontend goes on.
    let mode = Mode {
        fail_sector: Some(12),
        ..Mode::default()
    };
    let (r, mut fe) = front((1, 4, 0), offer, mode);
    assert_eq!(fe.discard(8, 8), Err(BlkError::Io { sector: 8 }));
    assert!(!fe.is_gone());
    let mut one = vec![0u8; 512];
    fe.read(16, &mut one).unwrap();
    assert_eq!(one, (16 * 512..17 * 512).map(initial).collect::<Vec<u8>>());
    // Nothing was zeroed.
    assert!(
        r.be.borrow().disk[8 * 512..16 * 512]
            .iter()
            .any(|&b| b != 0)
    );
}

#[test]
fn bad_ranges_are_refused_before_any_request() {
    let (r, mut fe) = front((1, 4, 0), Offer::default(), Mode::default());
    let mut buf = vec![0u8; 1024];
    assert_eq!(fe.read(SECTORS - 1, &mut buf), Err(BlkError::OutOfRange));
    assert_eq!(fe.read(u64::MAX, &mut buf), Err(BlkError::OutOfRange));
    assert_eq!(fe.read(0, &mut buf[..100]), Err(BlkError::Unaligned));
    assert_eq!(fe.write(SECTORS, &buf), Err(BlkError::OutOfRange));
    assert!(r.be.borrow().seen.is_empty());
    // The last two sectors are fine.
    fe.read(SECTORS - 2, &mut buf).unwrap();
}

#[test]
fn a_vanished_backend_is_a_clear_error_and_its_pages_are_not_handed_back() {
    let mode = Mode {
        vanish_after: Some(2),
        ..Mode::default()
    };
    let (mut r, mut fe) = front((1, 32, 0), Offer::default(), mode);
    let mut buf = vec![0u8; 512 * 88 * 4];
    assert_eq!(fe.read(0, &mut buf), Err(BlkError::BackendGone));
    // Bounded: patience (4) empty waits after the last answer.
    assert!(r.be.borrow().turns < 20, "{} turns", r.be.borrow().turns);
    assert!(fe.is_gone());
    let turns = r.be.borrow().turns;
    assert_eq!(fe.read(0, &mut buf[..512]), Err(BlkError::BackendGone));
    assert_eq!(r.be.borrow().turns, turns, "no request after gone");
    // The pages of the requests it never answered (from the third on) are still "mapped".
    let held = r.be.borrow().held.clone();
    assert!(!held.is_empty());
    let back: Returned = fe.close(&mut r.table);
    assert_eq!(back.leaked, held.len());
    assert_eq!(back.data.len(), 32 - held.len());
    // Every page handed back has its grant ended; the held ones are still granted.
    for g in 8..8 + 33u32 {
        // SAFETY: inside the leaked table frame.
        let e = unsafe { r.entries.add(g as usize).read_volatile() };
        assert_eq!(e.flags != 0, held.contains(&g), "gref {g}: {e:?}");
    }
}

#[test]
fn a_closing_backend_stops_the_transfer() {
    let mode = Mode {
        close_after: Some(1),
        ..Mode::default()
    };
    let (mut r, mut fe) = front((1, 11, 0), Offer::default(), mode);
    let mut buf = vec![0u8; 512 * 88 * 6];
    assert_eq!(fe.read(0, &mut buf), Err(BlkError::BackendGone));
    let seen = r.be.borrow().seen.len();
    assert!(seen < 6, "{seen} requests after the backend closed");
    // Close: the frontend writes Closing then Closed, ends every grant, closes the port.
    r.be.borrow_mut()
        .store
        .insert(format!("{BACK}/state"), "6".into());
    let back = fe.close(&mut r.table);
    assert_eq!((back.leaked, back.data.len(), back.ring.len()), (0, 11, 1));
    assert!(back.backend_closed);
    assert_eq!(r.be.borrow().get(&format!("{FRONT}/state")), Some("6"));
    assert!(
        mock::calls()
            .iter()
            .any(|c| c.op == nr::EVENT_CHANNEL_OP && c.args[0] == evtchn::EVTCHNOP_CLOSE)
    );
}

#[test]
fn a_response_to_no_request_is_a_protocol_error() {
    let mode = Mode {
        garbage_id: true,
        ..Mode::default()
    };
    let (_r, mut fe) = front((1, 4, 0), Offer::default(), mode);
    let mut buf = vec![0u8; 4096];
    assert_eq!(fe.read(0, &mut buf), Err(BlkError::Protocol));
}

#[test]
fn a_backend_that_never_connects_times_out_cleanly() {
    hypervisor();
    let m = memory(1, 2, 0);
    let be = Backend::new(m.entries, Offer::default(), Mode::default());
    // The backend never reaches InitWait.
    be.borrow_mut()
        .store
        .insert(format!("{BACK}/state"), "1".into());
    let bus = Bus::new(&be);
    let wait: Wait = Box::new(|_| Ok(false));
    let (mut table, pages) = m.split();
    let fe = BlkFront::connect(bus, &mut table, 51712, pages, Options::default(), wait);
    assert_eq!(fe.err(), Some(BlkError::Xen(Error::ETIMEDOUT)));
    // Nothing granted was left behind.
    assert_eq!(table.free_count(), 504);
    assert_eq!(parse_u64(b"12\0"), Some(12));
    assert_eq!(parse_u64(b"x"), None);
}
