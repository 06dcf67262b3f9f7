//! An `xl` domU with a disk (`cargo xtask xl blk`): the library's block frontend (`xen::blkfront`) on
//! Linux's blkback, over a RAM disk dom0 filled with a pattern it computes itself.
//!
//! What it does depends on its name (xenstore's `name`):
//!
//! - `blk` and `blk32` (the frontend's defaults: a multi-page ring, indirect requests and persistent
//!   grants as the backend offers) and `blk1` (one ring page, direct requests only, no
//!   `feature-persistent`): once dom0 writes `data/disk-ready`, read the whole disk and check every
//!   sector (sector `s` holds the 8-digit decimal of `s` 64 times), write the regions of `REGIONS`
//!   (sector `s` then holds `s + 10000000`), flush, read the regions back, read the whole disk again
//!   and check it, read past the end (a clear error), close, write `data/blk-done` and wait for dom0's
//!   `data/blk-ack` (dom0 compares the disk with its own image meanwhile).
//! - `blkbench` (`cargo bench --bench blk`): timed workloads, synchronous 4 KiB sequential and random
//!   transfers and 1 MiB ones, three rounds, each with the frontend's counters; `data/bench-done` lets
//!   dom0 read blkback's interrupt count for the disk before the frontend disconnects.
//! - `blkflush`: the same on a disk with a write cache (a loop device over a file in dom0):
//!   the flush must be offered and answered, one request; then a discard, one request, after which the
//!   sectors read as zeros (dom0 checks the file).
//! - `blkerr`: a disk whose sectors 2048..2112 fail in dom0 (device-mapper `error`): reads and writes
//!   touching them are typed I/O errors, everything around them still reads and writes.
//! - `blkdet` (one ring page): reads the disk again and again after writing `data/blk-reading`, until dom0's
//!   `xl block-detach` takes the disk away: the frontend must say the backend is gone, without a hang,
//!   and close handing back every page whose grant ended.
//!
//! Lines: `xl-blk: ok …`/`FAIL …` checks, figures (`features …`, `stats …`, `bench …`), and `done`.
//! The console, the xenstore client, the grant table, the shared info page and the event channel are
//! the library's.

#![no_std]
#![no_main]

include!("../modules.rs");
#[path = "../xl.rs"]
#[allow(dead_code)]
mod xl;

use core::cell::Cell;

use common::{Deadline, Line};
use xen_hypercall::xen::blkfront::{BlkError, BlkFront, Options, Pages, Xenbus, XenstoreBus};
use xen_hypercall::xen::evtchn::Port;
use xen_hypercall::xen::hvm::{self, Param};
use xen_hypercall::xen::ring::{ByteRing, End};
use xen_hypercall::xen::xenstore::Xenstore;
use xen_hypercall::xen::{DomId, Error, Page};
use xl::{Out, cntfrq, cntpct, end_with, ms_since, xen_time_after};

const TAG: &str = "xl-blk: ";
/// The regions written, (start, sectors): `BLK_REGIONS` of the harness.
const REGIONS: [(u64, u64); 6] = [
    (1, 1),
    (3, 97),
    (200, 89),
    (511, 300),
    (4000, 177),
    (8191, 1),
];
/// How long one wait for the backend's event lasts at most, in ms.
const EVENT_MS: u64 = 500;
/// How long the whole run may take.
const RUN_MS: u64 = 120_000;
/// The chunk read at a time.
const CHUNK: usize = 1024 * 1024;

static mut SHARED: Page = Page::new();
static mut RING: [Page; 16] = [const { Page::new() }; 16];
static mut DATA: [Page; 256] = [const { Page::new() }; 256];
static mut INDIRECT: [Page; 8] = [const { Page::new() }; 8];
static mut BUF: [u8; CHUNK] = [0; CHUNK];

/// The byte at `i` of sector `s` as dom0 wrote it (`written`: as this domU writes it).
fn expected(s: u64, i: usize, written: bool) -> u8 {
    let v = if written { s + 10_000_000 } else { s };
    let digit = 7 - (i % 8);
    b'0' + ((v / 10u64.pow(digit as u32)) % 10) as u8
}

fn in_region(s: u64) -> bool {
    REGIONS.iter().any(|&(a, n)| s >= a && s < a + n)
}

fn blk_err(l: Line, e: BlkError) -> Line {
    match e {
        BlkError::Xen(e) => l.s("xen ").err(e),
        BlkError::Io { sector } => l.s("I/O error at sector ").dec(sector),
        BlkError::NotSupported => l.s("not supported"),
        BlkError::OutOfRange => l.s("out of range"),
        BlkError::Unaligned => l.s("unaligned"),
        BlkError::ReadOnly => l.s("read-only"),
        BlkError::BackendGone => l.s("backend gone"),
        BlkError::Protocol => l.s("protocol error"),
        BlkError::BadPages => l.s("bad pages"),
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn guest_main(_dtb: usize) -> ! {
    let mut out = Out::new(xl::console(xl::bounded(RUN_MS)), TAG);
    let ok = run_all(&mut out);
    out.done();
    end_with(ok && out.failed == 0)
}

fn run_all<W: FnMut() -> Result<(), Error>>(out: &mut Out<'_, W>) -> bool {
    // The shared info page first: every wait below sleeps in sched_poll on an event channel.
    // SAFETY: SHARED is a page of this image used for nothing else: it becomes the shared info page,
    // touched only through `events`; the only call.
    let (mapped, events, table) = unsafe { xl::shared_info_and_grant_table(&raw mut SHARED) };
    let (Ok(()), Ok(mut table)) = (mapped, table) else {
        out.check("grant table and shared info", false, Line::new());
        return false;
    };
    // xenstore, through its page and event channel (identity-mapped: the frame's address is the page's).
    let (Ok(store_pfn), Ok(store_port)) = (
        hvm::get_param(DomId::SELF, Param::STORE_PFN),
        hvm::get_param(DomId::SELF, Param::STORE_EVTCHN),
    ) else {
        out.check("xenstore", false, Line::new().s("no store page"));
        return false;
    };
    let store_port = Port(store_port as u32);
    // Sleeps up to `ms`, or until xenstored's next event (a reply, a watch): no busy loop that would take
    // the one CPU from dom0.
    let nap = |ms: u64| {
        let _ = events.wait_until_system_time(store_port, xen_time_after(ms));
    };
    // SAFETY: the store page is the toolstack's, identity-mapped (`mmu.rs`), referenced by nothing else in
    // this program.
    let Ok(area) = (unsafe { xl::magic_page(store_pfn) }) else {
        return false;
    };
    let run = Deadline::in_ms(RUN_MS);
    let mut xs = Xenstore::new(ByteRing::xenstore(area, End::Front), store_port, || {
        if run.passed() {
            return Err(Error::ETIMEDOUT);
        }
        nap(20);
        Ok(())
    });
    let mut name = [0u8; 16];
    let n = xs.read(b"name", &mut name).unwrap_or(0);
    let name = &name[..n];

    // Bounded waits: the xenbus phases by a deadline reset per phase, events by sched_poll.
    let phase = Cell::new(Deadline::in_ms(20_000));
    let pause_phase = || {
        if phase.get().passed() {
            return Err(Error::ETIMEDOUT);
        }
        nap(20);
        Ok(())
    };
    let wait = |port: Port| events.wait_until_system_time(port, xen_time_after(EVENT_MS));
    let detach = name == b"blkdet";
    let bench = name == b"blkbench";
    let options = if name == b"blk1" {
        Options {
            ring_page_order: 0,
            persistent: false,
            indirect_segments: 0,
            ..Options::default()
        }
    } else if name == b"blkdet" {
        // One ring page: blkback sets aside about 45 KiB of dom0's memory per ring slot (32 a page), and
        // the detach does not depend on the ring's size.
        Options {
            ring_page_order: 0,
            ..Options::default()
        }
    } else {
        Options::default()
    };
    let (ring, data, indirect) = (&raw mut RING, &raw mut DATA, &raw mut INDIRECT);
    // SAFETY: the only references ever made to RING, DATA and INDIRECT: all are given to the frontend.
    let pages = unsafe {
        Pages {
            ring: &mut *ring,
            data: &mut *data,
            indirect: &mut *indirect,
        }
    };
    let bus = XenstoreBus {
        xs: &mut xs,
        pause: pause_phase,
    };
    let t0 = cntpct();
    let fe = BlkFront::connect(bus, &mut table, 51712, pages, options, wait);
    let mut fe = match fe {
        Ok(fe) => fe,
        Err(e) => {
            out.check("connected", false, blk_err(Line::new(), e));
            return false;
        }
    };
    let i = *fe.info();
    out.check(
        "connected",
        true,
        Line::new()
            .s("sectors ")
            .dec(i.sectors)
            .s(", sector-size ")
            .dec(i.sector_size.into())
            .s(", ring order ")
            .dec(i.ring_page_order.into())
            .s(" (backend max ")
            .dec(i.max_ring_page_order.into())
            .s("), ")
            .dec(i.ring_entries.into())
            .s(" slots, in ")
            .dec(ms_since(t0))
            .s(" ms"),
    );
    // What the backend offers and what the two ends agreed on, for the judge: a backend loaded with
    // features off (`blkdev`) or a frontend that asks for less (`blk1`) each show here.
    out.say(
        Line::new()
            .s("backend offers: ring order ")
            .dec(i.max_ring_page_order.into())
            .s(", indirect ")
            .dec(i.max_indirect_segments.into())
            .s(", persistent ")
            .dec(i.backend_persistent.into())
            .s(", flush ")
            .dec(i.flush.into())
            .s(", discard ")
            .dec(i.discard.into()),
    );
    out.say(
        Line::new()
            .s("using: ring order ")
            .dec(i.ring_page_order.into())
            .s(" (")
            .dec(i.ring_entries.into())
            .s(" slots), segments/request ")
            .dec(i.segments_per_request.into())
            .s(", persistent ")
            .dec((i.backend_persistent && options.persistent).into()),
    );
    // The disk is dom0's to fill first.
    phase.set(Deadline::in_ms(60_000));
    let mut v = [0u8; 4];
    let mut ready = true;
    while !matches!(fe.bus_mut().xs.read(b"data/disk-ready", &mut v), Ok(1)) {
        if phase.get().passed() {
            out.check("disk ready", false, Line::new().s("dom0 never said"));
            ready = false;
            break;
        }
        nap(100);
    }
    let sectors = i.sectors_512();
    let buf = &raw mut BUF;
    // SAFETY: the only reference ever made to BUF.
    let buf: &mut [u8] = unsafe { &mut *buf };
    if ready && bench {
        bench_run(out, &mut fe, buf);
        // dom0 reads blkback's interrupt count for this disk while it is still connected.
        let _ = fe.bus_mut().write(b"data/bench-done", b"1");
        let until = Deadline::in_ms(30_000);
        while !matches!(fe.bus_mut().xs.read(b"data/bench-ack", &mut v), Ok(1)) && !until.passed() {
            nap(100);
        }
    } else if ready && detach {
        detach_run(out, &mut fe, buf, sectors);
    } else if ready && name == b"blkerr" {
        error_run(out, &mut fe, buf, sectors);
    } else if ready {
        data_run(out, &mut fe, buf, sectors);
        if name == b"blkflush" {
            flush_run(out, &mut fe);
            discard_run(out, &mut fe, buf);
        }
        if name == b"blk" || name == b"blkflush" {
            // dom0 reads blkback's counters (its flushes and discards) while the disk is connected:
            // blkback drops them with the rings when the frontend closes.
            let _ = fe.bus_mut().write(b"data/stats-ready", b"1");
            let until = Deadline::in_ms(30_000);
            while !matches!(fe.bus_mut().xs.read(b"data/stats-read", &mut v), Ok(1))
                && !until.passed()
            {
                nap(100);
            }
        }
    }
    let st = *fe.stats();
    phase.set(Deadline::in_ms(10_000));
    let back = fe.close(&mut table);
    out.check(
        "closed",
        back.backend_closed,
        Line::new()
            .s("pages back: ring ")
            .dec(back.ring.len() as u64)
            .s(", data ")
            .dec(back.data.len() as u64)
            .s(", indirect ")
            .dec(back.indirect.len() as u64)
            .s(", grants left mapped ")
            .dec(back.leaked as u64),
    );
    out.say(
        Line::new()
            .s("stats requests ")
            .dec(st.requests)
            .s(" (indirect ")
            .dec(st.indirect_requests)
            .s("), segments ")
            .dec(st.segments)
            .s(", batches ")
            .dec(st.batches)
            .s(", notifications ")
            .dec(st.notifications)
            .s(", waits ")
            .dec(st.waits)
            .s(", responses ")
            .dec(st.responses)
            .s(", KiB ")
            .dec(st.bytes / 1024)
            .s(", grants ")
            .dec(st.grants),
    );
    // Tell dom0, and let it look before the domain goes.
    let _ = xs.write(b"data/blk-done", b"1");
    let until = Deadline::in_ms(30_000);
    while !matches!(xs.read(b"data/blk-ack", &mut v), Ok(1)) && !until.passed() {
        nap(100);
    }
    true
}

/// Checks `buf`, read from sector `first` on: each sector as dom0 wrote it, or as this domU wrote it
/// when `written` and inside a region. Returns the first wrong sector.
fn check_sectors(buf: &[u8], first: u64, written: bool) -> Option<u64> {
    for (k, sector) in buf.chunks(512).enumerate() {
        let s = first + k as u64;
        let w = written && in_region(s);
        if sector
            .iter()
            .enumerate()
            .any(|(i, &b)| b != expected(s, i, w))
        {
            return Some(s);
        }
    }
    None
}

/// Reads the whole disk in chunks and checks it; returns (good, ms).
fn read_all<B, W2>(
    fe: &mut BlkFront<B, W2>,
    buf: &mut [u8],
    sectors: u64,
    written: bool,
) -> (Result<Option<u64>, BlkError>, u64)
where
    B: Xenbus,
    W2: FnMut(Port) -> Result<bool, Error>,
{
    let t0 = cntpct();
    let per = (buf.len() / 512) as u64;
    let mut s = 0;
    while s < sectors {
        let n = per.min(sectors - s);
        let b = &mut buf[..n as usize * 512];
        if let Err(e) = fe.read(s, b) {
            return (Err(e), ms_since(t0));
        }
        if let Some(bad) = check_sectors(b, s, written) {
            return (Ok(Some(bad)), ms_since(t0));
        }
        s += n;
    }
    (Ok(None), ms_since(t0))
}

fn data_run<B, W, W2>(out: &mut Out<'_, W>, fe: &mut BlkFront<B, W2>, buf: &mut [u8], sectors: u64)
where
    W: FnMut() -> Result<(), Error>,
    B: Xenbus,
    W2: FnMut(Port) -> Result<bool, Error>,
{
    let report = |l: Line, r: &Result<Option<u64>, BlkError>, ms: u64| match r {
        Ok(None) => l.dec(sectors).s(" sectors in ").dec(ms).s(" ms"),
        Ok(Some(bad)) => l.s("sector ").dec(*bad).s(" differs"),
        Err(e) => blk_err(l, *e),
    };
    let (r, ms) = read_all(fe, buf, sectors, false);
    out.check(
        "read the whole disk",
        matches!(r, Ok(None)),
        report(Line::new(), &r, ms),
    );
    // The regions, each written in one call (split by the frontend).
    let t0 = cntpct();
    let mut wrote = Ok(());
    for &(a, n) in &REGIONS {
        let b = &mut buf[..n as usize * 512];
        for (k, sector) in b.chunks_mut(512).enumerate() {
            for (i, x) in sector.iter_mut().enumerate() {
                *x = expected(a + k as u64, i, true);
            }
        }
        if let Err(e) = fe.write(a, b) {
            wrote = Err((a, e));
            break;
        }
    }
    out.check(
        "wrote the regions",
        wrote.is_ok(),
        match wrote {
            Ok(()) => Line::new()
                .dec(REGIONS.len() as u64)
                .s(" regions in ")
                .dec(ms_since(t0))
                .s(" ms"),
            Err((a, e)) => blk_err(Line::new().s("at ").dec(a).s(": "), e),
        },
    );
    let f = fe.flush();
    out.check(
        "flush",
        f.is_ok() || (f == Err(BlkError::NotSupported) && !fe.info().flush),
        match f {
            Ok(()) => Line::new().s("done"),
            Err(e) => blk_err(Line::new(), e),
        },
    );
    // The regions back, then everything.
    let mut back = Ok(None);
    for &(a, n) in &REGIONS {
        let b = &mut buf[..n as usize * 512];
        match fe.read(a, b) {
            Err(e) => {
                back = Err(e);
                break;
            }
            Ok(()) => {
                if let Some(bad) = check_sectors(b, a, true) {
                    back = Ok(Some(bad));
                    break;
                }
            }
        }
    }
    let (all, ms) = read_all(fe, buf, sectors, true);
    out.check(
        "read back",
        matches!(back, Ok(None)) && matches!(all, Ok(None)),
        report(Line::new().s("regions and whole disk: "), &all, ms),
    );
    if let Ok(Some(bad)) | Err(BlkError::Io { sector: bad }) = back {
        out.check(
            "read back regions",
            false,
            Line::new().s("sector ").dec(bad),
        );
    }
    // Past the end: refused, nothing sent.
    let before = fe.stats().requests;
    let b = &mut buf[..1024];
    let r1 = fe.read(sectors - 1, b);
    let r2 = fe.read(sectors, &mut b[..512]);
    let r3 = fe.read(0, &mut b[..100]);
    out.check(
        "past the end",
        r1 == Err(BlkError::OutOfRange)
            && r2 == Err(BlkError::OutOfRange)
            && r3 == Err(BlkError::Unaligned)
            && fe.stats().requests == before,
        blk_err(
            blk_err(Line::new(), r1.err().unwrap_or(BlkError::BadPages)).s(", "),
            r2.err().unwrap_or(BlkError::BadPages),
        ),
    );
    // The last two sectors are still fine.
    let r = fe.read(sectors - 2, b);
    out.check(
        "last sectors",
        r.is_ok() && check_sectors(b, sectors - 2, true).is_none(),
        Line::new().dec(sectors - 2),
    );
}

/// The failing sectors of `blkerr`'s disk (dom0's device-mapper `error` target): `FAILING_SECTORS` of
/// the harness.
const FAILING: (u64, u64) = (2048, 64);

/// `blkerr`: a disk whose sectors `FAILING` fail in dom0. Everything around them reads as dom0 wrote it;
/// a read or write touching them is `BlkError::Io` naming the request's first sector; the regions are
/// written (dom0 then compares the disk with its image: the failing write did not land) and read back;
/// and the frontend stays connected through it all.
fn error_run<B, W, W2>(out: &mut Out<'_, W>, fe: &mut BlkFront<B, W2>, buf: &mut [u8], sectors: u64)
where
    W: FnMut() -> Result<(), Error>,
    B: Xenbus,
    W2: FnMut(Port) -> Result<bool, Error>,
{
    let (bad, n) = FAILING;
    // Everything but the failing sectors, in chunks that end at them or start after them.
    let per = (buf.len() / 512) as u64;
    let mut around = Ok(None);
    for (from, to) in [(0, bad), (bad + n, sectors)] {
        let mut s = from;
        while s < to && matches!(around, Ok(None)) {
            let k = per.min(to - s);
            let b = &mut buf[..k as usize * 512];
            around = fe.read(s, b).map(|()| check_sectors(b, s, false));
            s += k;
        }
    }
    out.check(
        "read around the failing sectors",
        matches!(around, Ok(None)),
        match around {
            Ok(None) => Line::new().dec(sectors - n).s(" sectors"),
            Ok(Some(s)) => Line::new().s("sector ").dec(s).s(" differs"),
            Err(e) => blk_err(Line::new(), e),
        },
    );
    let b = &mut buf[..n as usize * 512];
    let r = fe.read(bad, b);
    out.check(
        "failing read",
        r == Err(BlkError::Io { sector: bad }),
        blk_err(Line::new(), r.err().unwrap_or(BlkError::BadPages)),
    );
    // Across its start: one request from 8 sectors before.
    let r = fe.read(bad - 8, &mut buf[..16 * 512]);
    out.check(
        "failing read across its start",
        r == Err(BlkError::Io { sector: bad - 8 }),
        blk_err(Line::new(), r.err().unwrap_or(BlkError::BadPages)),
    );
    // A write there fails too (and dom0 finds the sector as it was).
    let b = &mut buf[..512];
    b.fill(b'X');
    let r = fe.write(bad + 2, b);
    out.check(
        "failing write",
        r == Err(BlkError::Io { sector: bad + 2 }),
        blk_err(Line::new(), r.err().unwrap_or(BlkError::BadPages)),
    );
    // The regions, as the data run writes them, then read back.
    let mut wrote = Ok(());
    let mut back = Ok(None);
    for &(a, k) in &REGIONS {
        let b = &mut buf[..k as usize * 512];
        for (j, sector) in b.chunks_mut(512).enumerate() {
            for (i, x) in sector.iter_mut().enumerate() {
                *x = expected(a + j as u64, i, true);
            }
        }
        if let Err(e) = fe.write(a, b) {
            wrote = Err(e);
            break;
        }
        b.fill(0);
        back = fe.read(a, b).map(|()| check_sectors(b, a, true));
        if !matches!(back, Ok(None)) {
            break;
        }
    }
    out.check(
        "wrote the regions",
        wrote.is_ok(),
        match wrote {
            Ok(()) => Line::new().dec(REGIONS.len() as u64).s(" regions"),
            Err(e) => blk_err(Line::new(), e),
        },
    );
    out.check(
        "read back the regions",
        matches!(back, Ok(None)),
        match back {
            Ok(None) => Line::new().s("as written"),
            Ok(Some(s)) => Line::new().s("sector ").dec(s).s(" differs"),
            Err(e) => blk_err(Line::new(), e),
        },
    );
    let r = fe.read(bad - 1, &mut buf[..512]);
    out.check(
        "still connected",
        !fe.is_gone() && r.is_ok() && check_sectors(&buf[..512], bad - 1, false).is_none(),
        Line::new().s("sector ").dec(bad - 1).s(" reads"),
    );
}

/// `blkflush` (a disk with a write cache), after the data run: the backend offers `feature-flush-cache`,
/// and a flush is one request, answered `Ok` (dom0 counts the flushes blkback received).
fn flush_run<B, W, W2>(out: &mut Out<'_, W>, fe: &mut BlkFront<B, W2>)
where
    W: FnMut() -> Result<(), Error>,
    B: Xenbus,
    W2: FnMut(Port) -> Result<bool, Error>,
{
    let before = *fe.stats();
    let r = fe.flush();
    let after = *fe.stats();
    out.check(
        "flush sent",
        fe.info().flush
            && r.is_ok()
            && after.requests == before.requests + 1
            && after.responses == before.responses + 1,
        match r {
            Ok(()) => Line::new()
                .s("feature-flush-cache ")
                .dec(fe.info().flush.into())
                .s(", requests ")
                .dec(after.requests - before.requests),
            Err(e) => blk_err(Line::new(), e),
        },
    );
}

/// The sectors `blkflush` discards (4 KiB-aligned, away from `REGIONS`): dom0 finds zeros there.
const DISCARDED: (u64, u64) = (6000, 64);

/// `blkflush` (a loop device over a tmpfs file, which offers discard): one `BLKIF_OP_DISCARD` request,
/// answered `Ok`; the sectors then read as zeros (a hole in the file), and their neighbours as before.
fn discard_run<B, W, W2>(out: &mut Out<'_, W>, fe: &mut BlkFront<B, W2>, buf: &mut [u8])
where
    W: FnMut() -> Result<(), Error>,
    B: Xenbus,
    W2: FnMut(Port) -> Result<bool, Error>,
{
    let (from, n) = DISCARDED;
    let i = *fe.info();
    let before = *fe.stats();
    let r = fe.discard(from, n);
    let after = *fe.stats();
    out.check(
        "discard",
        i.discard && r.is_ok() && after.requests == before.requests + 1,
        match r {
            Ok(()) => Line::new()
                .s("feature-discard ")
                .dec(i.discard.into())
                .s(", granularity ")
                .dec(i.discard_granularity.into())
                .s(", requests ")
                .dec(after.requests - before.requests),
            Err(e) => blk_err(Line::new(), e),
        },
    );
    // The discarded sectors and one 4 KiB block either side.
    let b = &mut buf[..(n as usize + 16) * 512];
    b.fill(0xaa);
    let r = fe.read(from - 8, b);
    let zeros = b[8 * 512..][..n as usize * 512].iter().all(|&x| x == 0);
    let sides = check_sectors(&b[..8 * 512], from - 8, false).is_none()
        && check_sectors(&b[(8 + n as usize) * 512..], from + n, false).is_none();
    out.check(
        "discarded sectors read as zeros",
        r.is_ok() && zeros && sides,
        match r {
            Ok(()) => Line::new()
                .s("zeros ")
                .dec(zeros.into())
                .s(", neighbours as before ")
                .dec(sides.into()),
            Err(e) => blk_err(Line::new(), e),
        },
    );
}

/// The benchmark's workloads, three rounds: 1024 synchronous 4 KiB transfers each, sequential and random
/// (the same xorshift sequence of 4 KiB-aligned offsets in the first 4 MiB every time), and 1 MiB ones;
/// one line per workload and round with its time and the frontend's counters for it.
fn bench_run<B, W, W2>(out: &mut Out<'_, W>, fe: &mut BlkFront<B, W2>, buf: &mut [u8])
where
    W: FnMut() -> Result<(), Error>,
    B: Xenbus,
    W2: FnMut(Port) -> Result<bool, Error>,
{
    const OPS: u64 = 1024;
    const WORKLOADS: [(&str, bool, bool, usize); 6] = [
        ("seq-read-4k", false, false, 4096),
        ("seq-write-4k", true, false, 4096),
        ("rand-read-4k", false, true, 4096),
        ("rand-write-4k", true, true, 4096),
        ("seq-read-1m", false, false, 1 << 20),
        ("seq-write-1m", true, false, 1 << 20),
    ];
    // Three rounds: the host's load varies, the benchmark keeps each workload's fastest.
    for &(name, write, random, size) in WORKLOADS.iter().cycle().take(3 * WORKLOADS.len()) {
        let ops = if size == 4096 { OPS } else { 4 };
        let per = (size / 512) as u64;
        let before = *fe.stats();
        let mut x: u32 = 0x2545_f491;
        let t0 = cntpct();
        let mut result = Ok(());
        let mut k = 0;
        while k < ops && result.is_ok() {
            let sector = if random {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                u64::from(x % 1024) * per
            } else {
                k * per
            };
            // Transfers larger than the buffer go in pieces of its size.
            let mut done = 0;
            while done < size && result.is_ok() {
                let n = (size - done).min(buf.len());
                let s = sector + (done / 512) as u64;
                let b = &mut buf[..n];
                result = if write { fe.write(s, b) } else { fe.read(s, b) };
                done += n;
            }
            k += 1;
        }
        let us = (cntpct() - t0) * 1_000_000 / cntfrq().max(1);
        let after = *fe.stats();
        let l = Line::new()
            .s(name)
            .s(": ")
            .dec(ops * size as u64 / 1024)
            .s(" KiB in ")
            .dec(us)
            .s(" us, requests ")
            .dec(after.requests - before.requests)
            .s(", notifications ")
            .dec(after.notifications - before.notifications)
            .s(", waits ")
            .dec(after.waits - before.waits)
            .s(", grants ")
            .dec(after.grants - before.grants);
        match result {
            Ok(()) => out.say(Line::new().s("bench ").bytes(l.text())),
            Err(e) => out.check("bench", false, blk_err(l.s(": "), e)),
        }
    }
}

fn detach_run<B, W, W2>(
    out: &mut Out<'_, W>,
    fe: &mut BlkFront<B, W2>,
    buf: &mut [u8],
    sectors: u64,
) where
    W: FnMut() -> Result<(), Error>,
    B: Xenbus,
    W2: FnMut(Port) -> Result<bool, Error>,
{
    let _ = fe.bus_mut().write(b"data/blk-reading", b"1");
    let until = Deadline::in_ms(60_000);
    let mut rounds = 0u64;
    // The disk's content is not this run's concern (dom0 does not fill it): reads until an error.
    let per = (buf.len() / 512) as u64;
    let result = loop {
        let mut s = 0;
        let mut err = None;
        while s < sectors && err.is_none() {
            let n = per.min(sectors - s);
            err = fe.read(s, &mut buf[..n as usize * 512]).err();
            s += n;
        }
        match err {
            None => rounds += 1,
            Some(e) => break Ok::<BlkError, Line>(e),
        }
        if until.passed() {
            break Err(Line::new().s("never detached"));
        }
    };
    match result {
        Ok(e) => out.check(
            "detached",
            e == BlkError::BackendGone && fe.is_gone(),
            blk_err(Line::new().s("after ").dec(rounds).s(" whole reads: "), e),
        ),
        Err(l) => out.check("detached", false, l),
    }
    // Nothing more is sent.
    let before = fe.stats().requests;
    let again = fe.read(0, &mut buf[..512]);
    out.check(
        "gone stays gone",
        again == Err(BlkError::BackendGone) && fe.stats().requests == before,
        blk_err(Line::new(), again.err().unwrap_or(BlkError::BadPages)),
    );
}
