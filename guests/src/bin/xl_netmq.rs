//! An `xl` domU on a vif with two queues (`cargo xtask xl net`, beside `xl_net.rs`): the library's
//! multi-queue frontend (`netfront::MultiQueue`) on Linux's netback loaded with `max_queues=2`, bridged
//! to dom0, answering ARP, ICMP echo and UDP at `169.254.1.5` (`responder.rs`).
//!
//! It connects with two queues (each its own rings, event channel and pools, its keys under
//! `queue-<i>/`), writes `data/net-ready`, and serves until the backend goes away (dom0's
//! `xl network-detach`) or its time is up: frames are taken from the queues in turn, and each answer
//! goes out on its flow's queue. Then both queues must have carried frames each way (netback spreads
//! dom0's flows over them by their hash, as the frontend does its own), and the close must hand back
//! every page of both.
//!
//! Lines: `xl-netmq: ok …`/`FAIL …` checks, `queue …`, and `done`.

#![no_std]
#![no_main]

include!("../modules.rs");
#[path = "../responder.rs"]
#[allow(dead_code)]
mod responder;
#[path = "../xl.rs"]
#[allow(dead_code)]
mod xl;

use common::{Deadline, Line, pause};
use responder::{Counts, answer, check_backend_gone, check_send_after_detach, net_err, pages_back};
use xen_hypercall::xen::evtchn::Events;
use xen_hypercall::xen::netfront::queues::MultiQueue;
use xen_hypercall::xen::netfront::{NetError, Options, Pages, Tables};
use xen_hypercall::xen::sched;
use xen_hypercall::xen::xenstore::Xenstore;
use xen_hypercall::xen::{Error, Page};
use xl::{Out, xen_time_after};

const TAG: &str = "xl-netmq: ";
/// This domain's address (link-local).
const MY_IP: [u8; 4] = [169, 254, 1, 5];
/// The queues asked for.
const QUEUES: usize = 2;
/// How long the whole run may take, in ms.
const RUN_MS: u64 = 100_000;
/// How long one sleep on the ports lasts at most, in ms.
const POLL_MS: u64 = 50;

static mut SHARED: Page = Page::new();
/// Each queue's transmit and receive ring.
static mut RINGS: [Page; 2 * QUEUES] = [const { Page::new() }; 2 * QUEUES];
static mut TX: [[Page; 4]; QUEUES] = [const { [const { Page::new() }; 4] }; QUEUES];
static mut RX: [[Page; 32]; QUEUES] = [const { [const { Page::new() }; 32] }; QUEUES];
static mut TABLES: [Tables; QUEUES] = [const { Tables::new() }; QUEUES];

#[unsafe(no_mangle)]
pub extern "C" fn guest_main(_dtb: usize) -> ! {
    let mut out = Out::new(xl::console(xl::bounded(RUN_MS + 10_000)), TAG);
    run(&mut out);
    out.done();
    xl::end_with(out.failed == 0)
}

fn run<W: FnMut() -> Result<(), Error>>(out: &mut Out<'_, W>) {
    let mut xs = xl::xenstore(xl::bounded(RUN_MS));
    let xs = match &mut xs {
        Ok(xs) => xs,
        Err(e) => return out.check("Xenstore::open", false, Line::new().err(*e)),
    };
    // SAFETY: SHARED is a page of this image used for nothing else: it becomes the shared info page,
    // touched only through `events`; the only call.
    let (mapped, events, mut table) = unsafe { xl::shared_info_and_grant_table(&raw mut SHARED) };
    let (Ok(()), Ok(table)) = (mapped, &mut table) else {
        return out.check("grant table and shared info", false, Line::new());
    };
    let (rings, tx, rx, tables) = (&raw mut RINGS, &raw mut TX, &raw mut RX, &raw mut TABLES);
    // SAFETY: the only references ever made to these statics: all are given to the frontend.
    let (rings, tx, rx, tables) = unsafe { (&mut *rings, &mut *tx, &mut *rx, &mut *tables) };
    let [r0, r1, r2, r3] = rings.each_mut();
    let [t0, t1] = tx.each_mut();
    let [x0, x1] = rx.each_mut();
    let [b0, b1] = tables.each_mut();
    let pages = [
        Pages {
            tx_ring: r0,
            rx_ring: r1,
            tx: t0,
            rx: x0,
            tables: b0,
        },
        Pages {
            tx_ring: r2,
            rx_ring: r3,
            tx: t1,
            rx: x1,
            tables: b1,
        },
    ];
    let (mut mq, unused) = match MultiQueue::connect(xs, table, "0", pages, Options::default()) {
        Ok(c) => c,
        Err(e) => return out.check("connected", false, net_err(Line::new(), e)),
    };
    let mut ports = Line::new();
    for (k, p) in mq.ports().enumerate() {
        ports = ports.s(["", "/", ", ", "/"][k % 4]).dec(p.0.into());
    }
    out.check(
        "queues",
        mq.len() == QUEUES && unused.is_empty(),
        Line::new()
            .dec(mq.len() as u64)
            .s(" of 2 asked for, event channels ")
            .s(core::str::from_utf8(ports.text()).unwrap_or("?")),
    );
    let _ = xs.write(b"data/net-ready", b"1");
    let gone = serve(out, &mut mq, xs, &events);
    let mut both = true;
    for (i, q) in mq.queues().iter().enumerate() {
        let s = q.stats();
        both &= s.rx_frames > 0 && s.tx_frames > 0;
        out.say(
            Line::new()
                .s("queue ")
                .dec(i as u64)
                .s(": rx ")
                .dec(s.rx_frames)
                .s(" frames, tx ")
                .dec(s.tx_frames)
                .s(" frames, ")
                .dec(s.tx_errors + s.rx_errors)
                .s(" errors, ")
                .dec(s.notifications)
                .s(" notifications"),
        );
    }
    out.check(
        "both queues carried frames each way",
        both,
        Line::new().s("dom0's flows spread by netback, the answers by the frontend"),
    );
    if gone {
        check_send_after_detach(out, mq.send(&[0u8; 60]));
    }
    let back = mq.close(xs, table, || {
        pause();
        true
    });
    let mut l = Line::new();
    let mut good = back.len() == QUEUES;
    for r in &back {
        good &= r.backend_closed && r.leaked == 0 && r.rings.len() == 2;
        l = pages_back(l.s("["), r).s("] ");
    }
    out.check("closed", good, l.s("pages back"));
}

/// Serves dom0 until the backend goes (or the run's time is up). Whether it went.
fn serve<W: FnMut() -> Result<(), Error>, X: FnMut() -> Result<(), Error>>(
    out: &mut Out<'_, W>,
    mq: &mut MultiQueue<QUEUES>,
    xs: &mut Xenstore<'_, X>,
    events: &Events,
) -> bool {
    let deadline = Deadline::in_ms(RUN_MS - 10_000);
    let mut c = Counts::default();
    let mut ev = [0u8; 256];
    let (mut buf, mut reply) = ([0u8; 1514], [0u8; 1514]);
    let mut ports = [xs.port(); 2 * QUEUES + 1];
    for (slot, p) in ports.iter_mut().zip(mq.ports()) {
        *slot = p;
    }
    let mac = mq.queues()[0].info().mac;
    let mut gone = false;
    let mut failed = None;
    while !deadline.passed() {
        let mut changed = xs.watch_overflow();
        while let Ok(Some(_)) = xs.next_watch_event(&mut ev) {
            changed = true;
        }
        if changed {
            match mq.check_backend(xs) {
                Ok(true) => {
                    gone = true;
                    break;
                }
                Ok(false) => {}
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        match answer_all(mq, &mut c, mac, (&mut buf, &mut reply)) {
            Ok(true) => continue,
            Ok(false) => {}
            Err(NetError::BackendGone) => {
                gone = true;
                break;
            }
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
        match mq.prepare_wait() {
            Ok(true) => continue,
            Ok(false) => {
                let _ = sched::poll_until_system_time(&ports, xen_time_after(POLL_MS));
                for p in &ports {
                    events.clear_pending(*p);
                }
            }
            Err(_) => {
                gone = true;
                break;
            }
        }
    }
    if let Some(e) = failed {
        out.check("receive or send", false, net_err(Line::new(), e));
    }
    out.say(c.answered());
    c.check(out);
    check_backend_gone(out, gone, Line::new().s("backend state Closing/Closed"));
    gone
}

/// Answers every frame waiting, each on its flow's queue, through `buf` and `reply` (the serving loop's,
/// not made again at each wake). Whether there was one.
fn answer_all(
    mq: &mut MultiQueue<QUEUES>,
    c: &mut Counts,
    mac: [u8; 6],
    (buf, reply): (&mut [u8; 1514], &mut [u8; 1514]),
) -> Result<bool, NetError> {
    let mut took = false;
    loop {
        let f = match mq.receive_frame(buf) {
            Ok(Some((_, f))) => f,
            Ok(None) => return Ok(took),
            Err(NetError::BufferTooSmall { .. }) => continue,
            Err(e) => return Err(e),
        };
        took = true;
        let n = answer(&buf[..f.len], f.csum_blank, reply, mac, MY_IP, c);
        // Room comes back as the backend answers earlier frames.
        let mut tries = 0;
        while n > 0
            && let Err(e) = mq.send(&reply[..n])
        {
            if e != NetError::Full || tries == 1000 {
                return Err(e);
            }
            pause();
            tries += 1;
        }
    }
}
