//! The backend of the multi-domain run: dom0 (or, with the `domu-backend` feature, a second dom0less domU)
//! that serves the frontend (`frontend.rs`, domid 1). It binds the frontend's unbound port (trying the
//! first ports until one binds: the frontend allocates it after granting its pages), maps grant reference 8
//! read-write and 9 read-only (mapping 9 read-write must fail with `GNTST_general_error`, Xen's status for
//! write-pinning a read-only grant), reads the request, writes a response, moves data both ways with
//! `GNTTABOP_copy`, notifies, unmaps when told, notifies, and waits for the frontend to be done. Only the
//! public typed API is used; every check prints `back: ok …` or `back: FAIL …`.
//!
//! With the `wrong-ref` feature (the negative control) it maps reference 7, which the frontend never
//! granted: the run must fail with a clear line, and the frontend, whose response never comes, too.

#![no_std]
#![no_main]

#[path = "../common.rs"]
#[allow(dead_code)]
mod common;
#[path = "../entry.rs"]
mod entry;

use common::{Checks, Deadline, Line, Page, gfn_of, pattern, wait_event};
use xen_hypercall::xen::DomId;
use xen_hypercall::xen::evtchn::{self, Port};
use xen_hypercall::xen::grant_table::{
    self, CopyPtr, GntMap, GnttabCopy, GnttabMapGrantRef, GnttabUnmapGrantRef, GrantHandle,
    GrantRef, GrantStatus,
};

/// The frontend's domain.
const FRONTEND: DomId = DomId(1);
/// The read-write grant (the negative control uses a reference the frontend never granted).
const RW_REF: GrantRef = if cfg!(feature = "wrong-ref") {
    GrantRef(7)
} else {
    GrantRef(8)
};
/// The read-only grant.
const RO_REF: GrantRef = GrantRef(9);
const WAIT_MS: u64 = 10_000;
const RESPONSE: &[u8] = b"response from the backend";

static mut SHARED: Page = Page::new();
/// Where the grants are mapped: these pages' frames are replaced by the frontend's while mapped, and are
/// holes after the unmap (never touched then).
static mut MAP_RW: Page = Page::new();
static mut MAP_RO: Page = Page::new();
/// Copy source and destination of the backend's own.
static mut MINE_IN: Page = Page::new();
static mut MINE_OUT: Page = Page::new();

const ROLE: &str = "back";

#[unsafe(no_mangle)]
pub extern "C" fn guest_main(_dtb: usize) -> ! {
    let mut c = Checks::new(ROLE);
    c.say(
        Line::new()
            .s("a backend, frontend d")
            .dec(FRONTEND.0.into()),
    );
    // SAFETY: SHARED is a page of this image used for nothing else; from now on it is the shared info page,
    // which only `events` touches.
    let (shared, events) = unsafe { common::map_shared_info(&raw mut SHARED) };
    c.check(
        "memory::map_shared_info",
        shared.is_ok(),
        Line::new().s(if shared.is_ok() { "mapped" } else { "refused" }),
    );

    // The rendezvous: the frontend's port, once it exists.
    let deadline = Deadline::in_ms(WAIT_MS);
    let (port, remote) = loop {
        let bound = (1..8).find_map(|p| {
            evtchn::bind_interdomain(FRONTEND, Port(p))
                .ok()
                .map(|l| (l, p))
        });
        if let Some(b) = bound {
            break b;
        }
        if deadline.passed() {
            c.fail(
                "evtchn::bind_interdomain",
                Line::new()
                    .s("no unbound port of d")
                    .dec(FRONTEND.0.into())
                    .s(" among 1..7 within 10 s"),
            );
            common::finish_dom0(&c)
        }
        common::pause();
    };
    // Xen flags the new local port pending at once (`evtchn_bind_interdomain`: "we may have lost
    // notifications on the remote unbound port"); that is not the frontend speaking: drop it.
    events.clear_pending(port);
    c.ok(
        "evtchn::bind_interdomain",
        Line::new()
            .s("remote port ")
            .dec(remote.into())
            .s(", local port ")
            .dec(port.0.into()),
    );

    let rw_addr = gfn_of(&raw const MAP_RW) << 12;
    let ro_addr = gfn_of(&raw const MAP_RO) << 12;
    // One batch: the read-write grant, and the read-only grant asked for read-write.
    let mut ops = [
        GnttabMapGrantRef::new(rw_addr, GntMap::HOST_MAP, RW_REF, FRONTEND),
        GnttabMapGrantRef::new(ro_addr, GntMap::HOST_MAP, RO_REF, FRONTEND),
    ];
    let call = grant_table::map_grant_ref(&mut ops);
    let rw = ops[0].result();
    c.check(
        "grant_table::map_grant_ref rw",
        rw.is_ok(),
        status_line(rw.map(|_| ()), "reference ", RW_REF),
    );
    let refused = ops[1].result();
    c.check(
        "map_grant_ref of the read-only grant read-write refused",
        refused == Err(GrantStatus::GENERAL_ERROR) && call.is_err(),
        status_line(refused.map(|_| ()), "reference ", RO_REF).s(" (GNTST_general_error expected)"),
    );
    let mut ro_op = [GnttabMapGrantRef::new(
        ro_addr,
        GntMap::HOST_MAP | GntMap::READONLY,
        RO_REF,
        FRONTEND,
    )];
    let mapped = grant_table::map_grant_ref(&mut ro_op);
    let ro = ro_op[0].result();
    c.check(
        "grant_table::map_grant_ref ro",
        mapped.is_ok() && ro.is_ok(),
        status_line(ro.map(|_| ()), "reference ", RO_REF),
    );

    if ro.is_ok() {
        let request = (0..4096).all(|i| {
            // SAFETY: MAP_RO's frame is the frontend's read-only page now; reading it is what the grant allows.
            unsafe { (&raw const MAP_RO.0[i]).read_volatile() == pattern(1, i) }
        });
        c.check(
            "request read through the read-only mapping",
            request,
            Line::new().s("4096 bytes"),
        );
    }
    if rw.is_ok() {
        for (i, &b) in RESPONSE.iter().enumerate() {
            // SAFETY: MAP_RW's frame is the frontend's read-write page now.
            unsafe { (&raw mut MAP_RW.0[i]).write_volatile(b) };
        }
    }

    // Copies: the frontend's read-only page into one of ours, and one of ours into its read-write page.
    // SAFETY: MINE_OUT is this image's page, used only here.
    unsafe {
        for i in 0..64 {
            (&raw mut MINE_OUT.0[i]).write_volatile(pattern(2, i));
        }
    }
    let mut copies = [
        GnttabCopy::new(
            CopyPtr::Gref {
                dom: FRONTEND,
                gref: RO_REF,
                offset: 0,
            },
            CopyPtr::Frame {
                gmfn: gfn_of(&raw const MINE_IN),
                offset: 0,
            },
            64,
        ),
        GnttabCopy::new(
            CopyPtr::Frame {
                gmfn: gfn_of(&raw const MINE_OUT),
                offset: 0,
            },
            CopyPtr::Gref {
                dom: FRONTEND,
                gref: RW_REF,
                offset: 2048,
            },
            64,
        ),
    ];
    let copied = grant_table::copy(&mut copies);
    let (from, to) = (copies[0].status(), copies[1].status());
    let arrived = (0..64).all(|i| {
        // SAFETY: MINE_IN is this image's page, written by Xen's copy.
        unsafe { (&raw const MINE_IN.0[i]).read_volatile() == pattern(1, i) }
    });
    c.check(
        "grant_table::copy from the frontend",
        copied.is_ok() && from.is_ok() && arrived,
        status_line(from, "reference ", RO_REF).s(if arrived {
            ", 64 bytes arrived"
        } else {
            ", data wrong"
        }),
    );
    c.check(
        "grant_table::copy to the frontend",
        to.is_ok(),
        status_line(to, "reference ", RW_REF),
    );

    let sent = evtchn::send(port);
    c.check("evtchn::send", sent.is_ok(), Line::new());
    let fired = wait_event(&events, port, WAIT_MS);
    c.check(
        "event 1 (frontend checked)",
        fired,
        Line::new().s(if fired { "taken" } else { "timed out" }),
    );

    let mut unmaps = [
        GnttabUnmapGrantRef::new(rw_addr, rw.unwrap_or(GrantHandle(u32::MAX))),
        GnttabUnmapGrantRef::new(ro_addr, ro.unwrap_or(GrantHandle(u32::MAX))),
    ];
    let unmapped = grant_table::unmap_grant_ref(&mut unmaps);
    c.check(
        "grant_table::unmap_grant_ref",
        unmapped.is_ok() && unmaps[0].status().is_ok() && unmaps[1].status().is_ok(),
        status_line(unmaps[0].status(), "reference ", RW_REF)
            .s(", ")
            .bytes(status_line(unmaps[1].status(), "reference ", RO_REF).text()),
    );
    let sent = evtchn::send(port);
    c.check("evtchn::send after unmap", sent.is_ok(), Line::new());
    let done = wait_event(&events, port, WAIT_MS);
    c.check(
        "event 2 (frontend done)",
        done,
        Line::new().s(if done { "taken" } else { "timed out" }),
    );
    common::finish_dom0(&c)
}

fn status_line(r: Result<(), GrantStatus>, what: &str, gref: GrantRef) -> Line {
    let l = Line::new().s(what).dec(gref.0.into());
    match r {
        Ok(()) => l.s(": okay"),
        Err(s) => l.s(": ").gnt(grant_table::GrantError::Status(s)),
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    Line::new().s("FAIL panic").print(ROLE);
    common::halt()
}
