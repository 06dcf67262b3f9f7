//! The backend of the multi-domain run: dom0 (or, with the `domu-backend` feature, a second dom0less domU)
//! that serves the frontend (`frontend.rs`, domid 1). It binds the frontend's unbound port (trying the
//! first ports until one binds: the frontend allocates it after granting its pages), maps grant reference 8
//! read-write and 9 read-only into a `MapArea` (mapping 9 read-write must fail with `GNTST_general_error`,
//! Xen's status for write-pinning a read-only grant), reads the request, writes a response, moves data both
//! ways with `GNTTABOP_copy`, notifies, unmaps when told, notifies, and waits for the frontend to be done.
//! Only the public typed API is used; every check prints `back: ok …` or `back: FAIL …`.
//!
//! Two checks show that safe code cannot make Xen write the program's own memory: a safe `copy` whose
//! destination is the frame of a `static` is refused before the hypercall (the same copy into a scratch
//! page through the `unsafe` `copy_unchecked` then works: the refusal is the library's), and the
//! mappings land in the area's window only, a `static` beside it untouched.
//!
//! With the `wrong-ref` feature (the negative control) it maps reference 7, which the frontend never
//! granted: the run must fail with a clear line, and the frontend, whose response never comes, too.

#![no_std]
#![no_main]

include!("../modules.rs");

use common::{Checks, Deadline, Line, Page, gfn_of, pattern, wait_event};
use xen_hypercall::xen::evtchn::{self, Port};
use xen_hypercall::xen::grant_table::{
    self, CopyPtr, GnttabCopy, GrantError, GrantPtr, GrantRef, GrantStatus, MapArea, MapRequest,
};
use xen_hypercall::xen::{DomId, Error};

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
/// The `MapArea`'s window: these pages' frames are replaced by the frontend's while mapped, and are holes
/// after the unmap (never touched then).
static mut WINDOW: [Page; 2] = [Page::new(), Page::new()];
/// A `static` the safe API must not let Xen write: a copy aimed at its frame is refused, and no mapping
/// replaces it.
static mut SENTINEL: Page = Page::new();
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

    // SAFETY: SENTINEL is this image's page, used only here and in the checks below.
    unsafe {
        for i in 0..4096 {
            (&raw mut SENTINEL.0[i]).write_volatile(pattern(3, i));
        }
    }
    let sentinel_intact = || {
        // SAFETY: as above.
        (0..4096).all(|i| unsafe { (&raw const SENTINEL.0[i]).read_volatile() } == pattern(3, i))
    };

    // SAFETY: WINDOW is two pages of this image given up to the area: nothing else uses them from now on.
    let mut area = unsafe {
        MapArea::<2>::new(
            gfn_of(&raw const WINDOW) << 12,
            (&raw mut WINDOW).cast::<Page>(),
        )
    };
    // One batch: the read-write grant, and the read-only grant asked for read-write.
    let [rw, refused] = area.map_batch([
        MapRequest {
            dom: FRONTEND,
            gref: RW_REF,
            readonly: false,
        },
        MapRequest {
            dom: FRONTEND,
            gref: RO_REF,
            readonly: false,
        },
    ]);
    c.check(
        "grant_table::MapArea::map_batch rw",
        rw.is_ok(),
        map_line(&rw, RW_REF),
    );
    c.check(
        "map of the read-only grant read-write refused",
        matches!(refused, Err(GrantError::Status(GrantStatus::GENERAL_ERROR))),
        map_line(&refused, RO_REF).s(" (GNTST_general_error expected)"),
    );
    let ro = area.map(FRONTEND, RO_REF, true);
    c.check(
        "grant_table::MapArea::map ro",
        ro.is_ok(),
        map_line(&ro, RO_REF),
    );
    let window = (&raw const WINDOW).cast::<Page>();
    let in_window = matches!(&rw, Ok(m) if m.as_ptr().cast_const() == window)
        && matches!(&ro, Ok(m) if m.as_ptr().cast_const() == window.wrapping_add(1));
    let intact = sentinel_intact();
    c.check(
        "mappings only in the area's window",
        in_window && intact,
        Line::new()
            .s(if in_window {
                "slots 0 and 1"
            } else {
                "elsewhere"
            })
            .s(if intact {
                ", the static beside it intact"
            } else {
                ", the static beside it changed"
            }),
    );

    if let Ok(m) = &ro {
        let mut request = [0u8; 4096];
        let read = m.read(0, &mut request).is_ok();
        let good = read && request.iter().enumerate().all(|(i, &b)| b == pattern(1, i));
        c.check(
            "request read through the read-only mapping",
            good,
            Line::new().s("4096 bytes"),
        );
    }
    if let Ok(m) = &rw {
        let _ = m.write(0, RESPONSE);
    }

    // Copies. Into the frame of a `static`, through the safe `copy`: refused before any hypercall.
    let from_ro = CopyPtr::Gref {
        dom: FRONTEND,
        gref: RO_REF,
        offset: 0,
    };
    let mut to_static = [GnttabCopy::to_frame(
        from_ro,
        gfn_of(&raw const SENTINEL),
        0,
        64,
    )];
    let refused = grant_table::copy(&mut to_static);
    let intact = sentinel_intact();
    c.check(
        "safe copy into a static's frame refused",
        refused == Err(GrantError::Xen(Error::EPERM)) && intact,
        gnt_result(refused).s(if intact {
            ", the static intact"
        } else {
            ", the static changed"
        }),
    );
    // The same copy into a scratch page of ours, which only `copy_unchecked` may do.
    let mut from = [GnttabCopy::to_frame(
        from_ro,
        gfn_of(&raw const MINE_IN),
        0,
        64,
    )];
    // SAFETY: MINE_IN is this image's page, used only here, with no reference to it live.
    let copied = unsafe { grant_table::copy_unchecked(&mut from) };
    let arrived = (0..64).all(|i| {
        // SAFETY: MINE_IN is this image's page, written by Xen's copy.
        unsafe { (&raw const MINE_IN.0[i]).read_volatile() == pattern(1, i) }
    });
    c.check(
        "grant_table::copy_unchecked from the frontend",
        copied.is_ok() && arrived,
        status_line(from[0].status(), "reference ", RO_REF).s(if arrived {
            ", 64 bytes arrived"
        } else {
            ", data wrong"
        }),
    );
    // One of ours into the frontend's read-write page: safe (the destination is a grant).
    // SAFETY: MINE_OUT is this image's page, used only here.
    unsafe {
        for i in 0..64 {
            (&raw mut MINE_OUT.0[i]).write_volatile(pattern(2, i));
        }
    }
    let mut to = [GnttabCopy::new(
        CopyPtr::Frame {
            gmfn: gfn_of(&raw const MINE_OUT),
            offset: 0,
        },
        GrantPtr {
            dom: FRONTEND,
            gref: RW_REF,
            offset: 2048,
        },
        64,
    )];
    let copied = grant_table::copy(&mut to);
    c.check(
        "grant_table::copy to the frontend",
        copied.is_ok(),
        status_line(to[0].status(), "reference ", RW_REF),
    );

    let sent = evtchn::send(port);
    c.check("evtchn::send", sent.is_ok(), Line::new());
    let fired = wait_event(&events, port, WAIT_MS);
    c.check(
        "event 1 (frontend checked)",
        fired,
        Line::new().s(if fired { "taken" } else { "timed out" }),
    );

    let unmapped = [rw, ro].map(|m| match m {
        Ok(m) => area.unmap(m).map_err(|r| r.error),
        Err(e) => Err(e),
    });
    c.check(
        "grant_table::MapArea::unmap",
        unmapped.iter().all(Result::is_ok) && area.free_count() == 2,
        gnt_result(unmapped[0])
            .s(", ")
            .bytes(gnt_result(unmapped[1]).text()),
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

fn map_line(r: &Result<grant_table::Mapping, GrantError>, gref: GrantRef) -> Line {
    let l = Line::new().s("reference ").dec(gref.0.into());
    match r {
        Ok(_) => l.s(": okay"),
        Err(e) => l.s(": ").gnt(*e),
    }
}

fn gnt_result(r: Result<(), GrantError>) -> Line {
    match r {
        Ok(()) => Line::new().s("okay"),
        Err(e) => Line::new().gnt(e),
    }
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
