//! A domU started by `xl` that uses the library's xenstore client against the real `xenstored` of a
//! Linux dom0, then its xenbus frontend against the real blkback (`cargo xtask xl xenbus`).
//!
//! dom0 runs steps of its own meanwhile (the scenario's declaration in `xtask/src/xl.rs`): it checks
//! what this domU wrote, writes what it waits for, and both meet at keys under `data/`. Lines (read by
//! the harness in xenconsoled's log): `ok …`/`FAIL …` checks, `NAME = VALUE` figures, and `done`.
//!
//! 1. xenstore: `name` and `domid`; writes under `data/` (dom0 reads them back); a directory listing; a
//!    missing key (`ENOENT`); writes to dom0's keys (`EACCES`); permissions set on a node of its own
//!    (dom0 checks them with `xenstore-ls -p`); a watch on `data/go` whose event (dom0's write) arrives
//!    while other requests are in flight; a transaction that commits, and one that dom0 makes conflict
//!    (`EAGAIN`, run again); a directory dom0 filled beyond one reply, read with `XS_DIRECTORY_PART`;
//!    a wait for a watch event that never comes, ended by its deadline.
//! 2. xenbus: finds `device/vbd/<id>`, reads its backend, waits for InitWait, grants a ring page and
//!    allocates an event channel for the backend, writes `ring-ref`, `event-channel` and `protocol`,
//!    switches to Initialised, waits for Connected, reads the disk's size and features, then closes
//!    (Closing, Closed) and checks the backend went Closed and let go of the ring page.
//!
//! Every wait is on an event channel, the xenstore's or the console's (`SCHEDOP_poll` through
//! `Events::wait_until`), bounded by a deadline on the library's clock (`time::Clock`): one per step
//! for xenstore, one per line for the console.

#![no_std]
#![no_main]

include!("../modules.rs");
#[path = "../xl.rs"]
#[allow(dead_code)]
mod xl;

use core::cell::{Cell, RefCell};
use core::time::Duration;

use common::Line;
use xen_hypercall::xen::console;
use xen_hypercall::xen::evtchn;
use xen_hypercall::xen::evtchn::Events;
use xen_hypercall::xen::grant_table::{GrantEntryV1, GrantTable};
use xen_hypercall::xen::layout::GUEST_GNTTAB_BASE;
use xen_hypercall::xen::ring::{FrontRing, SharedArea};
use xen_hypercall::xen::sched::ShutdownReason;
use xen_hypercall::xen::time::Clock;
use xen_hypercall::xen::xenbus::{self, Frontend, XenbusState};
use xen_hypercall::xen::xenstore::{self, Xenstore};
use xen_hypercall::xen::{DomId, Error, Page};
use xl::Out;

/// What every console line starts with.
const TAG: &str = "xl-xenbus: ";
/// How long each step may wait for xenstored, dom0 or the backend.
const STEP_MS: u64 = 10_000;
/// How long the wait nobody answers lasts.
const QUIET_MS: u64 = 200;
/// How many children dom0 makes under `data/big` (the scenario's declaration says the same).
const BIG_CHILDREN: usize = 120;

static mut SHARED: Page = Page::new();
static mut RING: Page = Page::new();

/// How long the console may wait for xenconsoled to make room or read everything, from each line.
const CONSOLE_MS: u64 = 3_000;

fn res<T>(r: &Result<T, Error>) -> Line {
    match r {
        Ok(_) => Line::new().s("Ok"),
        Err(e) => Line::new().err(*e),
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn guest_main(_dtb: usize) -> ! {
    let shared = (&raw mut SHARED).cast();
    // SAFETY: SHARED is a page of this image used for nothing else; from now on it is the shared info
    // page, which only `events` and `clock` touch.
    let mapped = unsafe { xen_hypercall::xen::memory::map_shared_info(common::gfn_of(shared)) };
    // SAFETY: as above.
    let (events, clock) = unsafe { (Events::new(shared), Clock::new(shared)) };
    let Ok(clock) = clock else {
        xl::end(ShutdownReason::Crash)
    };
    let con_limit = RefCell::new(clock.now() + Duration::from_millis(CONSOLE_MS));
    // The console waits for xenconsoled's event on its port, until the line's deadline.
    let con_port = match (mapped, console::ring_location()) {
        (Ok(()), Ok(Some((_, port)))) => port,
        _ => xl::end(ShutdownReason::Crash),
    };
    let con = xl::console(|| events.wait_until(con_port, &clock, *con_limit.borrow()));
    // Each line (and the final flush) may wait up to CONSOLE_MS from its start.
    let rearm = || *con_limit.borrow_mut() = clock.now() + Duration::from_millis(CONSOLE_MS);
    let mut out = Out::with_before_line(con, TAG, &rearm);
    out.say(Line::new().s("hello: xenstore and xenbus from an xl domU"));
    out.check("shared info mapped", mapped.is_ok(), res(&mapped));

    // The xenstore client waits on its event channel until the step's deadline.
    let deadline = RefCell::new(clock.now() + Duration::from_millis(STEP_MS));
    let port = match xenstore::ring_location() {
        Ok((_, port)) => port,
        Err(e) => {
            out.check("xenstore ring", false, Line::new().err(e));
            finish(&mut out)
        }
    };
    // Each wait counted: with the client's notifications, what a request costs (`read_cost`).
    let waits = Cell::new(0u64);
    let wait = || {
        waits.set(waits.get() + 1);
        events.wait_until(port, &clock, *deadline.borrow())
    };
    let xs = xl::xenstore(wait);
    let mut xs = match xs {
        Ok(xs) => xs,
        Err(e) => {
            out.check("Xenstore::open", false, Line::new().err(e));
            finish(&mut out)
        }
    };
    let step = || *deadline.borrow_mut() = clock.now() + Duration::from_millis(STEP_MS);

    store_checks(&mut out, &mut xs, &step);
    step();
    read_cost(&mut out, &mut xs, &clock, &waits);

    // A wait nobody answers (no watch is set): it ends with ETIMEDOUT at its deadline, not before, and
    // not much after.
    let mut ev = [0u8; 128];
    while let Ok(Some(_)) = xs.next_watch_event(&mut ev) {}
    let t0 = clock.now();
    *deadline.borrow_mut() = t0 + Duration::from_millis(QUIET_MS);
    let r = xs.wait_watch_event(&mut ev).map(drop);
    let waited = clock.now() - t0;
    out.check(
        "an unanswered wait ends with ETIMEDOUT at its deadline",
        r == Err(Error::ETIMEDOUT)
            && waited >= Duration::from_millis(QUIET_MS)
            && waited < Duration::from_millis(QUIET_MS * 10),
        res(&r).s(" after ").dec(waited.as_millis() as u64).s(" ms"),
    );

    step();
    vbd_handshake(&mut out, &mut xs, &step);
    finish(&mut out)
}

/// Waits for a watch event with `token` (others are dropped).
fn wait_token<W: FnMut() -> Result<(), Error>>(
    xs: &mut Xenstore<'_, W>,
    token: &[u8],
) -> Result<(), Error> {
    let mut ev = [0u8; 128];
    loop {
        if xs.wait_watch_event(&mut ev)?.token == token {
            return Ok(());
        }
    }
}

/// Waits until `key` reads `value`, through a watch on it.
fn await_key<W: FnMut() -> Result<(), Error>>(
    xs: &mut Xenstore<'_, W>,
    key: &[u8],
    value: &[u8],
) -> Result<(), Error> {
    xs.watch(key, b"await")?;
    let mut buf = [0u8; 64];
    let r = loop {
        match xs.read(key, &mut buf) {
            Ok(n) if &buf[..n] == value => break Ok(()),
            Ok(_) | Err(Error::ENOENT) => {}
            Err(e) => break Err(e),
        }
        if let Err(e) = wait_token(xs, b"await") {
            break Err(e);
        }
    };
    let _ = xs.unwatch(key, b"await");
    r
}

/// How many `XS_READ`s [`read_cost`] makes.
const COST_READS: u64 = 64;

/// A xenstore round trip's cost, counted here: [`COST_READS`] reads of `name`, and the notifications the
/// client sent and the waits it made (each at most one `SCHEDOP_poll`, blocking until xenstored's event;
/// none when the event is already pending) for them, printed as `xs cost: …` for the harness's figures.
fn read_cost<W: FnMut() -> Result<(), Error>, V: FnMut() -> Result<(), Error>>(
    out: &mut Out<'_, W>,
    xs: &mut Xenstore<'_, V>,
    clock: &Clock,
    waits: &Cell<u64>,
) {
    let (n0, w0) = (xs.notifications(), waits.get());
    let t0 = clock.now();
    let mut buf = [0u8; 64];
    let mut good = 0;
    for _ in 0..COST_READS {
        if xs.read(b"name", &mut buf).is_ok() {
            good += 1;
        }
    }
    let us = (clock.now() - t0).as_micros() as u64;
    out.check(
        "xenstore reads for the cost",
        good == COST_READS,
        Line::new().dec(good).s(" of ").dec(COST_READS),
    );
    out.say(
        Line::new()
            .s("xs cost: ")
            .dec(COST_READS)
            .s(" reads, ")
            .dec(xs.notifications() - n0)
            .s(" notifications, ")
            .dec(waits.get() - w0)
            .s(" waits, ")
            .dec(us)
            .s(" us"),
    );
}

fn store_checks<W: FnMut() -> Result<(), Error>, V: FnMut() -> Result<(), Error>>(
    out: &mut Out<'_, V>,
    xs: &mut Xenstore<'_, W>,
    step: &dyn Fn(),
) {
    let mut buf = [0u8; 128];
    match xs.read(b"name", &mut buf) {
        Ok(n) => out.say(Line::new().s("name = ").bytes(&buf[..n])),
        Err(e) => out.check("read name", false, Line::new().err(e)),
    }
    let domid = xenbus::read_u64(xs, b"domid");
    match domid {
        Ok(d) => out.say(Line::new().s("DOMID = ").dec(d)),
        Err(e) => out.check("read domid", false, Line::new().err(e)),
    }

    // Values dom0 reads back, and a node whose permissions dom0 checks.
    let w1 = xs.write(b"data/greeting", b"hello from xl-xenbus");
    let w2 = xenbus::printf(xs, b"data/number", format_args!("{}", 12345));
    let w3 = xs.write(b"data/perm", b"mine");
    // Owner: this domain (which only dom0 may change), no access for others; dom0 may read.
    let perms = xenbus::path(format_args!("n{}\0r0\0", domid.unwrap_or(0)));
    let perms = perms.as_ref().map_or(&b""[..], |p| p.as_bytes());
    let w4 = xs.set_perms(b"data/perm", perms);
    let n = xs.get_perms(b"data/perm", &mut buf);
    let perms_back = matches!(n, Ok(n) if &buf[..n] == perms);
    let good = w1.is_ok() && w2.is_ok() && w3.is_ok() && w4.is_ok();
    out.check(
        "write data/greeting, data/number, data/perm",
        good,
        res(&w1)
            .s(" ")
            .bytes(res(&w2).text())
            .s(" ")
            .bytes(res(&w3).text()),
    );
    out.check(
        "set_perms data/perm n<domid>,r0 read back",
        w4.is_ok() && perms_back,
        res(&n),
    );
    let ready = xs.write(b"data/ready", b"1");
    out.check("write data/ready", ready.is_ok(), res(&ready));

    // A listing of what was written.
    let mut dir = [0u8; 256];
    let names = xs.directory(b"data", &mut dir).map(|entries| {
        let (mut g, mut n, mut p) = (false, false, false);
        for e in entries {
            g |= e == b"greeting";
            n |= e == b"number";
            p |= e == b"perm";
        }
        g && n && p
    });
    out.check(
        "directory data lists greeting, number, perm",
        names == Ok(true),
        res(&names),
    );

    // Errors by name.
    let missing = xs.read(b"data/missing", &mut buf);
    out.check(
        "read data/missing is ENOENT",
        missing == Err(Error::ENOENT),
        res(&missing),
    );
    let theirs = xs.write(b"/local/domain/0/data/probe", b"x");
    out.check(
        "write dom0's /local/domain/0/data/probe is EACCES",
        theirs == Err(Error::EACCES),
        res(&theirs),
    );
    let tool = xs.write(b"/tool/probe", b"x");
    out.check(
        "write /tool/probe is EACCES",
        tool == Err(Error::EACCES),
        res(&tool),
    );

    // A watch whose event comes while requests are in flight.
    step();
    let watched = xs
        .watch(b"data/go", b"go")
        .and_then(|()| wait_token(xs, b"go")) // the event xenstored fires at once
        .and_then(|()| xs.write(b"data/watching", b"1"));
    out.check("watch data/go", watched.is_ok(), res(&watched));
    let mut requests = 0u64;
    let mut failed = None;
    while xs.queued_watch_events() == 0 && failed.is_none() && requests < 1_000_000 {
        if let Err(e) = xs.read(b"domid", &mut buf) {
            failed = Some(e);
        }
        requests += 1;
    }
    let mut ev = [0u8; 128];
    let event = xs.next_watch_event(&mut ev);
    let good = matches!(event, Ok(Some(e)) if e.path.ends_with(b"data/go") && e.token == b"go");
    out.check(
        "watch event during a request",
        good && failed.is_none(),
        match failed {
            Some(e) => Line::new().err(e),
            None => Line::new().s("queued after ").dec(requests).s(" requests"),
        },
    );
    let _ = xs.unwatch(b"data/go", b"go");

    // A transaction that commits.
    let committed = xs.transaction(|tx| {
        let n = xenbus::read_u64(tx, b"data/number")?;
        xenbus::printf(tx, b"data/number2", format_args!("{}", n + 1))
    });
    let back = xenbus::read_u64(xs, b"data/number2");
    out.check(
        "transaction commits data/number2 = 12346",
        committed.is_ok() && back == Ok(12346),
        res(&committed),
    );

    // A transaction dom0 makes conflict: it reads data/conflict, tells dom0 (outside the transaction),
    // waits for dom0's write of data/conflict, then writes it: the commit is refused and run again.
    step();
    let mut attempts = 0u64;
    let setup = xs
        .write(b"data/conflict", b"init")
        .and_then(|()| xs.watch(b"data/conflict", b"cf"))
        .and_then(|()| wait_token(xs, b"cf"));
    let r = setup.and_then(|()| {
        xs.transaction(|tx| {
            attempts += 1;
            let mut v = [0u8; 16];
            tx.read(b"data/conflict", &mut v)?;
            if attempts == 1 {
                tx.outside().write(b"data/tx-signal", b"1")?;
                wait_token(tx.outside(), b"cf")?;
            }
            xenbus::printf(tx, b"data/conflict", format_args!("domU {attempts}"))
        })
    });
    let _ = xs.unwatch(b"data/conflict", b"cf");
    out.check(
        "transaction conflict: EAGAIN, run again",
        r.is_ok() && attempts == 2,
        res(&r).s(", attempts ").dec(attempts),
    );

    // A directory bigger than one reply: dom0 made it.
    step();
    let ready = await_key(xs, b"data/big-ready", b"1");
    let mut big = [0u8; 8192];
    let whole = xs.directory(b"data/big", &mut big).map(|e| e.count());
    out.check(
        "directory data/big (over 4096 bytes) is E2BIG",
        ready.is_ok() && whole == Err(Error::E2BIG),
        res(&ready).s(", ").bytes(res(&whole).text()),
    );
    let parts = xs.directory_part(b"data/big", &mut big).map(|e| e.count());
    out.check(
        "directory_part data/big",
        parts == Ok(BIG_CHILDREN),
        match parts {
            Ok(n) => Line::new().dec(n as u64).s(" names"),
            Err(e) => Line::new().err(e),
        },
    );
}

fn vbd_handshake<W: FnMut() -> Result<(), Error>, V: FnMut() -> Result<(), Error>>(
    out: &mut Out<'_, V>,
    xs: &mut Xenstore<'_, W>,
    step: &dyn Fn(),
) {
    let mut ids = [0u8; 64];
    let id = match xenbus::devices(xs, "vbd", &mut ids).map(|mut e| e.next()) {
        Ok(Some(id)) => id,
        r => {
            out.check("device/vbd has a device", false, res(&r));
            return;
        }
    };
    let mut idbuf = [0u8; 16];
    let idlen = id.len().min(16);
    idbuf[..idlen].copy_from_slice(&id[..idlen]);
    let id = core::str::from_utf8(&idbuf[..idlen]).unwrap_or("");
    let f = match Frontend::new(xs, "vbd", id) {
        Ok(f) => f,
        Err(e) => {
            out.check("Frontend::new", false, Line::new().err(e));
            return;
        }
    };
    out.say(
        Line::new()
            .s("vbd ")
            .s(id)
            .s(": backend ")
            .s(f.backend())
            .s(" in d")
            .dec(f.backend_id().0.into()),
    );
    let r = f
        .watch_backend(xs, b"be")
        .and_then(|()| f.wait_for_backend(xs, &[XenbusState::INIT_WAIT]));
    out.check("backend InitWait", r.is_ok(), res(&r));
    if r.is_err() {
        return;
    }

    // The ring page, granted to the backend, and an event channel for it.
    // SAFETY: GUEST_GNTTAB_BASE is the guest-layout hole Xen reserves for the grant table; nothing else
    // is there, and the MMU maps it to itself (`mmu.rs`), so the frame's address is where the entries are.
    let table = unsafe {
        GrantTable::<4>::map(
            GUEST_GNTTAB_BASE >> 12,
            1,
            GUEST_GNTTAB_BASE as usize as *mut GrantEntryV1,
        )
    };
    let mut table = match table {
        Ok(t) => t,
        Err(e) => {
            out.check("GrantTable::map", false, Line::new().err(e));
            return;
        }
    };
    // SAFETY: the only reference ever made to RING: it is given up to the grant.
    let page: &'static mut Page = unsafe { &mut *core::ptr::addr_of_mut!(RING) };
    let grant = match table.grant(f.backend_id(), page, false) {
        Ok(g) => g,
        Err(r) => {
            out.check("grant the ring page", false, Line::new().err(r.error));
            return;
        }
    };
    let ring = SharedArea::granted(&grant)
        .and_then(FrontRing::<[u8; 112], [u8; 16]>::init)
        .map(|r| r.size());
    out.check(
        "blkif ring of 32 slots",
        ring == Ok(32),
        res(&ring).s(" ").dec(ring.unwrap_or(0).into()),
    );
    let port = match evtchn::alloc_unbound(DomId::SELF, f.backend_id()) {
        Ok(p) => p,
        Err(e) => {
            out.check("evtchn::alloc_unbound", false, Line::new().err(e));
            return;
        }
    };
    let gref = grant.gref();
    let details = xs.transaction(|tx| {
        xenbus::printf(
            tx,
            f.key("ring-ref")?.as_bytes(),
            format_args!("{}", gref.0),
        )?;
        xenbus::printf(
            tx,
            f.key("event-channel")?.as_bytes(),
            format_args!("{}", port.0),
        )?;
        tx.write(f.key("protocol")?.as_bytes(), b"arm-abi")
    });
    let init = details.and_then(|()| f.switch_state(xs, XenbusState::INITIALISED));
    out.check(
        "ring-ref, event-channel, protocol written; Initialised",
        init.is_ok(),
        res(&init)
            .s(": ring-ref ")
            .dec(gref.0.into())
            .s(", event-channel ")
            .dec(port.0.into()),
    );
    step();
    let conn = f.wait_for_backend(xs, &[XenbusState::CONNECTED]);
    out.check("backend Connected", conn.is_ok(), res(&conn));
    if conn.is_err() {
        return;
    }

    // The disk as the backend describes it.
    let mut num = |k: &str| match f.backend_key(k) {
        Ok(p) => xenbus::read_u64(xs, p.as_bytes()),
        Err(e) => Err(e),
    };
    let (sectors, sector_size, info) = (num("sectors"), num("sector-size"), num("info"));
    for (k, v) in [
        ("sectors", sectors),
        ("sector-size", sector_size),
        ("info", info),
    ] {
        out.say(match v {
            Ok(v) => Line::new().s(k).s(" = ").dec(v),
            Err(e) => Line::new().s("FAIL ").s(k).s(": ").err(e),
        });
        if v.is_err() {
            out.failed += 1;
        }
    }
    for k in [
        "feature-flush-cache",
        "feature-barrier",
        "feature-discard",
        "feature-persistent",
    ] {
        let v = match f.backend_key(k) {
            Ok(p) => xenbus::read_flag_or(xs, p.as_bytes(), false),
            Err(e) => Err(e),
        };
        out.say(match v {
            Ok(v) => Line::new().s(k).s(" = ").dec(v.into()),
            Err(e) => Line::new().s("FAIL ").s(k).s(": ").err(e),
        });
    }
    let indirect = match f.backend_key("feature-max-indirect-segments") {
        Ok(p) => xenbus::read_u64_or(xs, p.as_bytes(), 0),
        Err(e) => Err(e),
    };
    out.say(match indirect {
        Ok(v) => Line::new().s("feature-max-indirect-segments = ").dec(v),
        Err(e) => Line::new().s("FAIL feature-max-indirect-segments: ").err(e),
    });
    let connected = f
        .switch_state(xs, XenbusState::CONNECTED)
        .and_then(|()| xs.write(b"data/vbd", b"connected"));
    out.check("Connected", connected.is_ok(), res(&connected));
    // dom0 checks the backend's keys while connected.
    step();
    let checked = await_key(xs, b"data/vbd-checked", b"1");
    out.check(
        "dom0 checked the connected backend",
        checked.is_ok(),
        res(&checked),
    );

    // Teardown.
    step();
    let closed = f.close(xs);
    let backend = f.backend_state(xs);
    out.check(
        "closed: Closing, Closed; the backend Closed",
        closed.is_ok() && backend == Ok(XenbusState::CLOSED),
        res(&closed).s(", backend ").bytes(
            match backend {
                Ok(s) => Line::new().dec(s.0.into()),
                Err(e) => Line::new().err(e),
            }
            .text(),
        ),
    );
    let _ = f.unwatch_backend(xs, b"be");
    // The backend unmapped the ring: the page comes back.
    let back = table.end_access(grant);
    out.check(
        "the ring page's grant ended",
        matches!(back, Ok(Some(_))),
        match &back {
            Ok(_) => Line::new().s("page back"),
            Err(r) => Line::new().err(r.error),
        },
    );
    let _ = evtchn::close(port);
    let told = xs
        .write(b"data/vbd", b"closed")
        .and_then(|()| await_key(xs, b"data/vbd-checked", b"2"));
    out.check("dom0 checked the closed backend", told.is_ok(), res(&told));
}

/// Says `done`, waits (bounded) until xenconsoled has read everything, and stops: powered off when every
/// check passed and the console drained.
fn finish<W: FnMut() -> Result<(), Error>>(out: &mut Out<'_, W>) -> ! {
    let drained = out.done();
    xl::end_with(out.failed == 0 && drained)
}
