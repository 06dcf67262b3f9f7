//! The frontend of the multi-domain run: a dom0less domU (domid 1) that offers a backend one page
//! read-write (grant reference 8) and one read-only (9), allocates an unbound event channel for the backend
//! and waits for its events; it also gives a page back to Xen and repopulates it. Only the public typed API
//! is used; every check prints `front: ok …` or `front: FAIL …`.
//!
//! The rendezvous needs no xenstore: the backend is `BACKEND` (dom0 unless built with the `domu-backend`
//! feature, for two domUs), the references are the first two of the grant table's free list (8 and 9), and
//! the backend finds the port by trying `bind_interdomain` on the first few ports until one binds. The
//! grants are in place before the port exists, so a bound port means the grants are ready.
//!
//! The exchange (`ev` = an event on the channel): backend maps, writes, copies, `ev` → frontend checks and
//! tries to end access while mapped, `ev` → backend unmaps, `ev` → frontend ends access, reuses the
//! references, `ev` (done) → backend ends.

#![no_std]
#![no_main]

include!("../modules.rs");

use common::{Checks, Line, Page, gfn_of, pattern, wait_event};
use xen_hypercall::xen::evtchn;
use xen_hypercall::xen::grant_table::{GrantEntryV1, GrantRef, GrantTable};
use xen_hypercall::xen::layout::GUEST_GNTTAB_BASE;
use xen_hypercall::xen::{DomId, Error, memory};

/// The backend's domain.
const BACKEND: DomId = if cfg!(feature = "domu-backend") {
    DomId(2)
} else {
    DomId(0)
};
/// How long to wait for each of the backend's steps.
const WAIT_MS: u64 = 10_000;
/// What the backend writes at the start of the read-write page.
pub const RESPONSE: &[u8] = b"response from the backend";

static mut SHARED: Page = Page::new();
static mut RW: Page = Page::new();
static mut RO: Page = Page::new();
static mut SCRATCH: Page = Page::new();

const ROLE: &str = "front";

#[unsafe(no_mangle)]
pub extern "C" fn guest_main(_dtb: usize) -> ! {
    let mut c = Checks::new(ROLE);
    c.say(
        Line::new()
            .s("a frontend domU, backend d")
            .dec(BACKEND.0.into()),
    );

    // SAFETY: SHARED is a page of this image used for nothing else; from now on it is the shared info page,
    // which only `events` touches.
    let (shared, events) = unsafe { common::map_shared_info(&raw mut SHARED) };
    c.check(
        "memory::map_shared_info",
        shared.is_ok(),
        result(shared.map(|()| 0)),
    );

    reservation(&mut c);

    // SAFETY: GUEST_GNTTAB_BASE is the guest-layout hole Xen reserves for the grant table; nothing else is
    // there, and the MMU maps it to itself (Normal, `mmu.rs`), so the frame's address is where the entries
    // are.
    let table = unsafe {
        GrantTable::<16>::map(
            GUEST_GNTTAB_BASE >> 12,
            1,
            GUEST_GNTTAB_BASE as usize as *mut GrantEntryV1,
        )
    };
    let mut table = match table {
        Ok(t) => {
            c.ok(
                "grant_table::GrantTable::map",
                Line::new().s("frame 0 at ").hex(GUEST_GNTTAB_BASE),
            );
            t
        }
        Err(e) => {
            c.fail("grant_table::GrantTable::map", Line::new().err(e));
            common::finish_domu(&c)
        }
    };

    // The pages: the read-write one empty, the read-only one holding the request.
    // SAFETY: RW and RO are pages of this image that only this code and (through the grants) the backend use.
    unsafe {
        for i in 0..4096 {
            (&raw mut RW.0[i]).write_volatile(0);
            (&raw mut RO.0[i]).write_volatile(pattern(1, i));
        }
    }
    let (rw_page, ro_page) = (&raw mut RW, &raw mut RO);
    // SAFETY: these are the only references ever made to RW and RO: both are given up to the grants.
    let (rw_page, ro_page) = unsafe { (&mut *rw_page, &mut *ro_page) };
    let rw = table.grant(BACKEND, rw_page, false).map_err(|r| r.error);
    let ro = table.grant(BACKEND, ro_page, true).map_err(|r| r.error);
    let refs = (
        rw.as_ref().map(|g| g.gref()).map_err(|e| *e),
        ro.as_ref().map(|g| g.gref()).map_err(|e| *e),
    );
    c.check(
        "grant_table::GrantTable::grant rw 8, ro 9",
        refs == (Ok(GrantRef(8)), Ok(GrantRef(9))),
        gref_line(refs.0, "rw ")
            .s(", ")
            .bytes(gref_line(refs.1, "ro ").text()),
    );
    let (Ok(rw), Ok(ro)) = (rw, ro) else {
        common::finish_domu(&c)
    };
    // The read-write page, shared with the backend from now on: read with volatile loads only.
    let Some(shared) = rw.page() else {
        common::finish_domu(&c)
    };
    let byte = |i: usize| {
        // SAFETY: `shared` is the granted page, alive while the grant is (it is given up for good).
        unsafe { shared.cast::<u8>().add(i).read_volatile() }
    };

    let port = match evtchn::alloc_unbound(DomId::SELF, BACKEND) {
        Ok(p) => {
            c.ok(
                "evtchn::alloc_unbound",
                Line::new().s("port ").dec(p.0.into()),
            );
            p
        }
        Err(e) => {
            c.fail("evtchn::alloc_unbound", Line::new().err(e));
            common::finish_domu(&c)
        }
    };

    // 1: the backend has mapped, written and copied.
    let fired = wait_event(&events, port, WAIT_MS);
    c.check(
        "event 1 (backend mapped and wrote)",
        fired,
        Line::new().s(if fired { "taken" } else { "timed out" }),
    );
    let mut got = [0u8; RESPONSE.len()];
    for (i, b) in got.iter_mut().enumerate() {
        *b = byte(i);
    }
    c.check(
        "response in the read-write page",
        got == RESPONSE,
        Line::new().s("\"").bytes(&got).s("\""),
    );
    let copied = (0..64).all(|i| byte(2048 + i) == pattern(2, i));
    c.check(
        "grant copy into the read-write page",
        copied,
        Line::new().s("64 bytes at offset 2048"),
    );
    let busy = table.end_access(rw);
    let busy_error = busy.as_ref().err().map(|r| r.error);
    c.check(
        "end_access refused while mapped",
        busy_error == Some(Error::EBUSY),
        match busy_error {
            Some(e) => Line::new().err(e),
            None => Line::new().s("ended"),
        }
        .s(" (EBUSY expected)"),
    );
    // The grant comes back with the refusal.
    let rw = match busy {
        Err(r) => Some(r.grant),
        Ok(_) => None,
    };
    let sent = evtchn::send(port);
    c.check("evtchn::send", sent.is_ok(), result(sent.map(|()| 0)));

    // 2: the backend has unmapped.
    let fired = wait_event(&events, port, WAIT_MS);
    c.check(
        "event 2 (backend unmapped)",
        fired,
        Line::new().s(if fired { "taken" } else { "timed out" }),
    );
    let e8 = rw.map(|g| table.end_access(g).map_err(|r| r.error));
    let e9 = table.end_access(ro).map_err(|r| r.error);
    let back =
        |e: &Option<Result<Option<&'static mut Page>, Error>>| matches!(e, Some(Ok(Some(_))));
    c.check(
        "end_access after unmap",
        back(&e8) && matches!(e9, Ok(Some(_))),
        Line::new()
            .s(if back(&e8) { "8 ended" } else { "8 not ended" })
            .s(if matches!(e9, Ok(Some(_))) {
                ", 9 ended, both pages back"
            } else {
                ", 9 not ended"
            }),
    );
    // The page is ours again: grant it once more, under a reference ended above.
    let again = match e8 {
        Some(Ok(Some(page))) => table.grant(BACKEND, page, false).map_err(|r| r.error),
        _ => Err(Error::EINVAL),
    };
    let gref = again.as_ref().map(|g| g.gref()).map_err(|e| *e);
    let reused = matches!(gref, Ok(GrantRef(8 | 9)));
    let ended = again.map(|g| table.end_access(g).is_ok());
    c.check(
        "references reused",
        reused && ended == Ok(true),
        gref_line(gref, "granted again as "),
    );

    c.summary();
    // Done: the backend may end.
    let _ = evtchn::send(port);
    common::shut_down(&c)
}

/// Gives SCRATCH back to Xen and repopulates it: the reservation drops by one page and comes back, and the
/// page no longer holds what it held but one of the fills Xen gives a free page (the runner, which knows
/// whether Xen is a debug build, checks which: a debug Xen booted with `bootscrub=on` scrubs every page it
/// hands out to its pattern; a release Xen may hand out a zeroed page or its own freed init memory).
fn reservation(c: &mut Checks) {
    let gfn = gfn_of(&raw const SCRATCH);
    // SAFETY: SCRATCH is this image's page, used by this function only.
    unsafe {
        for i in 0..4096 {
            (&raw mut SCRATCH.0[i]).write_volatile(0x5a);
        }
    }
    let before = memory::current_reservation(DomId::SELF);
    // SAFETY: SCRATCH holds no live object; it is not touched until repopulated.
    let gave = unsafe { memory::decrease_reservation(DomId::SELF, &mut [gfn], 0) };
    let during = memory::current_reservation(DomId::SELF);
    // SAFETY: SCRATCH is a hole now; it becomes a fresh page.
    let got = unsafe { memory::populate_physmap(DomId::SELF, &mut [gfn], 0) };
    let after = memory::current_reservation(DomId::SELF);
    let good = match (before, during, after) {
        (Ok(b), Ok(d), Ok(a)) => gave == Ok(1) && got == Ok(1) && d + 1 == b && a == b,
        _ => false,
    };
    c.check(
        "memory::decrease_reservation, populate_physmap, current_reservation",
        good,
        result(before)
            .s(" pages, ")
            .bytes(result(during).text())
            .s(" after giving back (")
            .bytes(result(gave.map(|n| n as u64)).text())
            .s("), ")
            .bytes(result(after).text())
            .s(" after repopulating (")
            .bytes(result(got.map(|n| n as u64)).text())
            .s(")"),
    );
    // What Xen put in the page, word by word (Xen's fills are repeating 32-bit patterns).
    let fill = {
        // SAFETY: SCRATCH is populated again; it is 4096-byte aligned.
        let word =
            |i: usize| unsafe { (&raw const SCRATCH.0).cast::<u32>().add(i).read_volatile() };
        let first = word(0);
        if (1..1024).all(|i| word(i) == first) {
            Some(first)
        } else {
            None
        }
    };
    let (known, what) = match fill {
        // A page scrubbed by a release Xen.
        Some(0) => (true, "zero in every word (scrubbed)"),
        // `SCRUB_PATTERN` of a debug Xen (`common/page_alloc.c`, `#ifndef NDEBUG`).
        Some(0xc2c2_c2c2) => (true, "0xc2 in every byte (a debug Xen's scrub pattern)"),
        // `free_init_memory` (`arch/arm/mm.c`) fills Xen's own init sections with `AARCH64_BREAK_FAULT`
        // before giving them to the heap as clean pages.
        Some(0xd420_0040) => (true, "brk #2 in every word (Xen's freed init memory)"),
        Some(0x5a5a_5a5a) => (false, "0x5a in every byte: the page it gave back"),
        _ => (false, "neither a scrubbed page nor one of Xen's fills"),
    };
    c.check(
        "repopulated page no longer holds what it held",
        known,
        Line::new().s(what).s(", was 0x5a"),
    );
}

fn result(r: Result<u64, Error>) -> Line {
    match r {
        Ok(v) => Line::new().dec(v),
        Err(e) => Line::new().err(e),
    }
}

fn gref_line(r: Result<GrantRef, Error>, what: &str) -> Line {
    match r {
        Ok(g) => Line::new().s(what).dec(g.0.into()),
        Err(e) => Line::new().s(what).err(e),
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    Line::new().s("FAIL panic").print(ROLE);
    common::halt()
}
