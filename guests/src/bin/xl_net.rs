//! An `xl` domU with a network interface (`cargo xtask xl net`): the library's network frontend
//! (`xen::netfront`) on Linux's netback, bridged to dom0 (`xenbr0`), answering ARP, ICMP echo and UDP.
//!
//! It connects to its vif (`device/vif/0`), checks that a frame larger than the MTU is refused, writes
//! `data/net-ready`, and serves until the backend goes away (dom0's `xl network-detach`) or its time is up:
//!
//! - ARP requests for its address (`169.254.1.2`, link-local) get a reply;
//! - ICMP echo requests get an echo reply with the same identifier, sequence and data;
//! - UDP to port 7 is echoed back unchanged; UDP to port 5001 saying `send N` is answered with `N` bytes
//!   of a pattern dom0 computes on its own (`b'a' + (i * 7 + N + 3) % 26` for byte `i`).
//!
//! Every IPv4 header checksum, and the UDP and ICMP checksums, of what it receives are verified (the
//! frontend asks for complete checksums); what it sends carries complete checksums it computes. When the
//! backend goes (its xenbus state watched), the frontend must say so and close, handing back every page.
//!
//! Lines: `xl-net: ok …`/`FAIL …` checks, `stats …`, and `done`.

#![no_std]
#![no_main]

#[path = "../common.rs"]
#[allow(dead_code)]
mod common;
#[path = "../entry.rs"]
mod entry;
#[path = "../mmu.rs"]
#[allow(dead_code)]
mod mmu;
#[path = "../xl.rs"]
#[allow(dead_code)]
mod xl;

use core::mem::MaybeUninit;

use common::{Deadline, Line, pause};
use xen_hypercall::xen::console::Console;
use xen_hypercall::xen::evtchn::{Events, Port};
use xen_hypercall::xen::grant_table::GrantTable;
use xen_hypercall::xen::netfront::{NetError, NetFront, Options, Pages, Returned};
use xen_hypercall::xen::sched::{self, ShutdownReason};
use xen_hypercall::xen::xenstore::Xenstore;
use xen_hypercall::xen::{Error, Page};
use xl::{Out, cntpct, ms_since, xen_time_after};

const TAG: &str = "xl-net: ";
/// This domain's address (link-local).
const MY_IP: [u8; 4] = [169, 254, 1, 2];
/// How long the whole run may take, in ms.
const RUN_MS: u64 = 80_000;
/// How long one sleep on the ports lasts at most, in ms.
const POLL_MS: u64 = 50;

static mut SHARED: Page = Page::new();
static mut TX_RING: Page = Page::new();
static mut RX_RING: Page = Page::new();
static mut TX: [Page; 8] = [const { Page::new() }; 8];
static mut RX: [Page; 64] = [const { Page::new() }; 64];
/// The frontend (about 13 KiB), built in place by [`connect`]: a static, not a local of `run`, because
/// `run`'s frame with a copy of it, on top of what `NetFront::connect` needs, would pass the template's
/// 64 KiB stack into the pages below it (the rings, granted to the backend).
static mut NET: MaybeUninit<Result<NetFront, NetError>> = MaybeUninit::uninit();

fn net_err(l: Line, e: NetError) -> Line {
    match e {
        NetError::Xen(e) => l.s("xen ").err(e),
        NetError::TooLarge { len, max } => l
            .s("frame of ")
            .dec(len as u64)
            .s(" bytes is larger than ")
            .dec(max as u64),
        NetError::TooShort => l.s("too short"),
        NetError::Full => l.s("full"),
        NetError::BufferTooSmall { needed } => l.s("buffer too small for ").dec(needed as u64),
        NetError::BackendGone => l.s("backend gone"),
        NetError::Protocol => l.s("protocol error"),
        NetError::BadPages => l.s("bad pages"),
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn guest_main(_dtb: usize) -> ! {
    let con_deadline = Deadline::in_ms(RUN_MS + 10_000);
    let con = Console::open(
        // SAFETY: the console page is the toolstack's, referenced by nothing in this program but the
        // console.
        |pfn| unsafe { xl::magic_page(pfn) },
        move || {
            if con_deadline.passed() {
                return Err(Error::ETIMEDOUT);
            }
            pause();
            Ok(())
        },
    );
    let con = match con {
        Ok(c @ Console::Ring(_)) => c,
        _ => xl::end(ShutdownReason::Crash),
    };
    let mut out = Out::new(con, TAG);
    let ok = run(&mut out);
    out.done();
    xl::end_with(ok && out.failed == 0)
}

fn run<W: FnMut() -> Result<(), Error>>(out: &mut Out<'_, W>) -> bool {
    let run_deadline = Deadline::in_ms(RUN_MS);
    // The client and the table stay in their `Result`s (each a copy fewer on the stack: see `NET`).
    let mut xs = Xenstore::open(
        // SAFETY: the xenstore page is the toolstack's, referenced by nothing in this program but the
        // client.
        |pfn| unsafe { xl::magic_page(pfn) },
        move || {
            if run_deadline.passed() {
                return Err(Error::ETIMEDOUT);
            }
            pause();
            Ok(())
        },
    );
    let xs = match &mut xs {
        Ok(xs) => xs,
        Err(e) => {
            out.check("Xenstore::open", false, Line::new().err(*e));
            return false;
        }
    };
    // SAFETY: SHARED is a page of this image used for nothing else: it becomes the shared info page,
    // touched only through `events`; the only call.
    let (mapped, events, mut table) = unsafe { xl::shared_info_and_grant_table(&raw mut SHARED) };
    let (Ok(()), Ok(table)) = (mapped, &mut table) else {
        out.check("grant table and shared info", false, Line::new());
        return false;
    };
    let (tx_ring, rx_ring, tx, rx) = (&raw mut TX_RING, &raw mut RX_RING, &raw mut TX, &raw mut RX);
    // SAFETY: the only references ever made to these statics: all are given to the frontend.
    let pages = unsafe {
        Pages {
            tx_ring: &mut *tx_ring,
            rx_ring: &mut *rx_ring,
            tx: &mut *tx,
            rx: &mut *rx,
        }
    };
    let t0 = cntpct();
    let slot = &raw mut NET;
    // SAFETY: the only reference ever made to NET.
    let slot = unsafe { &mut *slot };
    let res = connect(slot, xs, table, pages);
    let net = match &mut *res {
        Ok(n) => n,
        Err(e) => {
            out.check("connected", false, net_err(Line::new(), *e));
            return false;
        }
    };
    let gone = exercise(out, net, xs, &events, t0);
    let Some(back) = close(res, xs, table) else {
        return false;
    };
    out.check(
        "closed",
        back.backend_closed && back.leaked == 0,
        Line::new()
            .s("backend closed ")
            .dec(back.backend_closed.into())
            .s(", pages back: ")
            .dec(back.rings.len() as u64)
            .s(" ring, ")
            .dec(back.tx.len() as u64)
            .s(" tx, ")
            .dec(back.rx.len() as u64)
            .s(" rx, leaked ")
            .dec(back.leaked as u64),
    );
    gone
}

/// Everything between connecting and closing: the first checks, `data/net-ready`, serving dom0 until
/// the backend is gone, the statistics' checks (out of line: its frame is not on the stack while
/// `connect` runs). Whether the backend went away.
#[inline(never)]
fn exercise<W: FnMut() -> Result<(), Error>, X: FnMut() -> Result<(), Error>>(
    out: &mut Out<'_, W>,
    net: &mut NetFront,
    xs: &mut Xenstore<'_, X>,
    events: &Events,
    t0: u64,
) -> bool {
    let i = *net.info();
    let mut mac = Line::new();
    for (k, b) in i.mac.iter().enumerate() {
        if k > 0 {
            mac = mac.s(":");
        }
        mac = mac.s(hex2(*b));
    }
    out.check(
        "connected",
        true,
        mac.s(", mtu ")
            .dec(i.mtu.into())
            .s(if i.split {
                ", split event channels "
            } else {
                ", one event channel "
            })
            .dec(i.tx_port.0.into())
            .s("/")
            .dec(i.rx_port.0.into())
            .s(", ")
            .dec(ms_since(t0))
            .s(" ms"),
    );
    // A frame larger than the MTU and its header: a clear error, nothing sent.
    let big = [0u8; 1515];
    let r = net.send(&big);
    out.check(
        "too large refused",
        matches!(
            r,
            Err(NetError::TooLarge {
                len: 1515,
                max: 1514
            })
        ),
        match r {
            Err(e) => net_err(Line::new(), e),
            Ok(()) => Line::new().s("sent"),
        },
    );
    let _ = xs.write(b"data/net-ready", b"1");
    let xs_port = xs.port();
    let served = serve(out, net, xs, events, xs_port);
    let s = *net.stats();
    out.say(
        Line::new()
            .s("stats tx ")
            .dec(s.tx_frames)
            .s(" frames ")
            .dec(s.tx_bytes)
            .s(" bytes ")
            .dec(s.tx_slots)
            .s(" slots ")
            .dec(s.tx_errors)
            .s(" errors; rx ")
            .dec(s.rx_frames)
            .s(" frames ")
            .dec(s.rx_bytes)
            .s(" bytes ")
            .dec(s.rx_slots)
            .s(" slots ")
            .dec(s.rx_errors)
            .s(" errors; notifications ")
            .dec(s.notifications)
            .s(", refills ")
            .dec(s.rx_refills),
    );
    out.check(
        "frames across a page end",
        s.tx_slots > s.tx_frames,
        Line::new()
            .dec(s.tx_slots)
            .s(" transmit requests for ")
            .dec(s.tx_frames)
            .s(" frames"),
    );
    out.check(
        "no transmit errors",
        s.tx_errors == 0 && s.rx_errors == 0,
        Line::new()
            .dec(s.tx_errors)
            .s(" tx, ")
            .dec(s.rx_errors)
            .s(" rx"),
    );
    if served.gone {
        let r = net.send(&[0u8; 60]);
        out.check(
            "send after detach",
            r == Err(NetError::BackendGone),
            match r {
                Err(e) => net_err(Line::new(), e),
                Ok(()) => Line::new().s("sent"),
            },
        );
    }
    served.gone
}

struct Served {
    gone: bool,
}

/// `NetFront::connect` on `device/vif/0`, its result written into `slot` (out of line, so that it is
/// built there rather than in a frame of the caller).
#[inline(never)]
fn connect<'s, X: FnMut() -> Result<(), Error>, const N: usize>(
    slot: &'s mut MaybeUninit<Result<NetFront, NetError>>,
    xs: &mut Xenstore<'_, X>,
    table: &mut GrantTable<N>,
    pages: Pages,
) -> &'s mut Result<NetFront, NetError> {
    slot.write(NetFront::connect(xs, table, "0", pages, Options::default()))
}

/// `NetFront::close` of the frontend in `res` (left `Err(BackendGone)`), pausing between tries (out of
/// line, so that the frontend moved out is in this frame only).
#[inline(never)]
fn close<X: FnMut() -> Result<(), Error>, const N: usize>(
    res: &mut Result<NetFront, NetError>,
    xs: &mut Xenstore<'_, X>,
    table: &mut GrantTable<N>,
) -> Option<Returned> {
    let net = core::mem::replace(res, Err(NetError::BackendGone)).ok()?;
    Some(net.close(Some(xs), table, || {
        pause();
        true
    }))
}

/// What was answered.
#[derive(Default)]
struct Counts {
    arp: u64,
    icmp: u64,
    echo: u64,
    sent: u64,
    bad_sum: u64,
    other: u64,
}

#[inline(never)]
fn serve<W: FnMut() -> Result<(), Error>, X: FnMut() -> Result<(), Error>>(
    out: &mut Out<'_, W>,
    net: &mut NetFront,
    xs: &mut Xenstore<'_, X>,
    events: &Events,
    xs_port: Port,
) -> Served {
    let deadline = Deadline::in_ms(RUN_MS - 10_000);
    let mut c = Counts::default();
    let mut buf = [0u8; 1514];
    let mut reply = [0u8; 1514];
    let mut ev = [0u8; 256];
    let [tx_port, rx_port] = net.ports();
    let ports = [tx_port, rx_port, xs_port];

    let mut gone = false;
    let mut why = Line::new();
    let mut polls = 0u64;
    let sent0 = net.stats().notifications;
    'serve: while !deadline.passed() {
        // The backend's state changed: has it gone?
        let mut changed = xs.watch_overflow();
        while let Ok(Some(_)) = xs.next_watch_event(&mut ev) {
            changed = true;
        }
        if changed {
            match net.check_backend(xs) {
                Ok(true) => {
                    gone = true;
                    why = Line::new().s("backend state Closing/Closed");
                    break;
                }
                Ok(false) => {}
                Err(e) => {
                    out.check("backend state", false, net_err(Line::new(), e));
                    break;
                }
            }
        }
        let mut any = false;
        loop {
            match net.receive_frame(&mut buf) {
                Ok(Some(f)) => {
                    any = true;
                    let n = answer(
                        &buf[..f.len],
                        f.csum_blank,
                        &mut reply,
                        net.info().mac,
                        &mut c,
                    );
                    if n > 0 {
                        // Room comes back as the backend answers earlier frames.
                        let mut tries = 0;
                        loop {
                            match net.queue(&reply[..n]) {
                                Ok(()) => break,
                                Err(NetError::Full) if tries < 1000 => {
                                    let _ = net.flush();
                                    pause();
                                    tries += 1;
                                }
                                Err(NetError::BackendGone) => {
                                    gone = true;
                                    why = Line::new().s("send: backend gone");
                                    break 'serve;
                                }
                                Err(e) => {
                                    out.check("send", false, net_err(Line::new(), e));
                                    break 'serve;
                                }
                            }
                        }
                    }
                }
                Ok(None) => break,
                Err(NetError::BackendGone) => {
                    gone = true;
                    why = Line::new().s("receive: backend gone");
                    break 'serve;
                }
                Err(e) => {
                    out.check("receive", false, net_err(Line::new(), e));
                    break 'serve;
                }
            }
        }
        if let Err(e) = net.flush() {
            if e == NetError::BackendGone {
                gone = true;
                break;
            }
            out.check("flush", false, net_err(Line::new(), e));
            break;
        }
        if !any {
            match net.prepare_wait() {
                Ok(true) => continue,
                Ok(false) => {
                    let _ = sched::poll_until_system_time(&ports, xen_time_after(POLL_MS));
                    polls += 1;
                    for p in ports {
                        events.clear_pending(p);
                    }
                }
                Err(_) => {
                    gone = true;
                    break;
                }
            }
        }
    }
    out.say(
        Line::new()
            .s("answered ")
            .dec(c.arp)
            .s(" ARP, ")
            .dec(c.icmp)
            .s(" ICMP echo, ")
            .dec(c.echo)
            .s(" UDP echo, ")
            .dec(c.sent)
            .s(" UDP send; ")
            .dec(c.other)
            .s(" other frames ignored"),
    );
    let notes = net.stats().notifications - sent0;
    out.say(
        Line::new()
            .s("data path: hypercalls ")
            .dec(polls + notes)
            .s(" (sched_poll ")
            .dec(polls)
            .s(", evtchn send ")
            .dec(notes)
            .s(")"),
    );
    out.check(
        "checksums",
        c.bad_sum == 0,
        Line::new().dec(c.bad_sum).s(" bad checksums received"),
    );
    out.check(
        "answered",
        c.arp > 0 && c.icmp > 0 && c.echo > 0 && c.sent > 0,
        Line::new().s("ARP, ICMP, UDP echo and UDP send each at least once"),
    );
    out.check(
        "backend gone",
        gone,
        if gone {
            why
        } else {
            Line::new().s("still there at the end of the run")
        },
    );
    Served { gone }
}

fn hex2(b: u8) -> &'static str {
    const H: &[u8; 512] = b"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\
202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f\
404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f\
606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f\
808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f\
a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf\
c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf\
e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";
    let i = usize::from(b) * 2;
    core::str::from_utf8(&H[i..i + 2]).unwrap_or("??")
}

// ---------------------------------------------------------------------------------------- the responder

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// The one's complement sum of `data` (RFC 1071), folded, starting from `sum`.
fn sum16(data: &[u8], mut sum: u32) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in chunks.by_ref() {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [b] = chunks.remainder() {
        sum += u32::from(*b) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum
}

fn checksum(data: &[u8], sum: u32) -> u16 {
    !(sum16(data, sum) as u16)
}

/// The pseudo header's sum for an L4 segment of `len` bytes of protocol `proto`.
fn pseudo(src: &[u8], dst: &[u8], proto: u8, len: usize) -> u32 {
    let mut p = [0u8; 12];
    p[..4].copy_from_slice(src);
    p[4..8].copy_from_slice(dst);
    p[9] = proto;
    p[10..12].copy_from_slice(&(len as u16).to_be_bytes());
    sum16(&p, 0)
}

/// Writes into `out` the answer to the frame `f` (none: 0), returns its length.
fn answer(f: &[u8], csum_blank: bool, out: &mut [u8], mac: [u8; 6], c: &mut Counts) -> usize {
    if f.len() < 14 {
        c.other += 1;
        return 0;
    }
    let ty = be16(f, 12);
    // Ethernet: to the sender, from us.
    out[..6].copy_from_slice(&f[6..12]);
    out[6..12].copy_from_slice(&mac);
    match ty {
        0x0806 if f.len() >= 42 && be16(f, 20) == 1 && f[38..42] == MY_IP => {
            // ARP request for our address: the reply.
            out[12..14].copy_from_slice(&f[12..14]);
            out[14..20].copy_from_slice(&f[14..20]); // htype, ptype, hlen, plen
            put16(out, 20, 2);
            out[22..28].copy_from_slice(&mac);
            out[28..32].copy_from_slice(&MY_IP);
            out[32..42].copy_from_slice(&f[22..32]); // the sender's MAC and IP
            out[42..60].fill(0);
            c.arp += 1;
            60
        }
        0x0800 if f.len() >= 34 => ipv4(f, csum_blank, out, c),
        _ => {
            c.other += 1;
            0
        }
    }
}

fn ipv4(f: &[u8], csum_blank: bool, out: &mut [u8], c: &mut Counts) -> usize {
    let ihl = usize::from(f[14] & 0xf) * 4;
    let total = usize::from(be16(f, 16));
    if f[14] >> 4 != 4 || ihl < 20 || total < ihl || 14 + total > f.len() || f[30..34] != MY_IP {
        c.other += 1;
        return 0;
    }
    let ip = &f[14..14 + total];
    if checksum(&ip[..ihl], 0) != 0 {
        c.bad_sum += 1;
        return 0;
    }
    let l4 = &ip[ihl..];
    let (src, dst) = (&ip[12..16], &ip[16..20]);
    // Our IPv4 header: no options, the same TTL as we choose, addresses swapped.
    let hdr = |out: &mut [u8], proto: u8, len: usize| {
        out[12..14].copy_from_slice(&[0x08, 0x00]);
        let o = &mut out[14..34];
        o.copy_from_slice(&[
            0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, proto, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ]);
        put16(o, 2, (20 + len) as u16);
        o[12..16].copy_from_slice(&MY_IP);
        o[16..20].copy_from_slice(src);
        let s = checksum(o, 0);
        put16(o, 10, s);
    };
    match ip[9] {
        1 if l4.len() >= 8 && l4[0] == 8 => {
            if checksum(l4, 0) != 0 {
                c.bad_sum += 1;
                return 0;
            }
            hdr(out, 1, l4.len());
            let o = &mut out[34..34 + l4.len()];
            o.copy_from_slice(l4);
            o[0] = 0; // echo reply
            put16(o, 2, 0);
            let s = checksum(o, 0);
            put16(o, 2, s);
            c.icmp += 1;
            34 + l4.len()
        }
        17 if l4.len() >= 8 => {
            let ulen = usize::from(be16(l4, 4));
            if ulen < 8 || ulen > l4.len() {
                c.other += 1;
                return 0;
            }
            let u = &l4[..ulen];
            if !csum_blank && be16(u, 6) != 0 && checksum(u, pseudo(src, dst, 17, ulen)) != 0 {
                c.bad_sum += 1;
                return 0;
            }
            let (sport, dport) = (be16(u, 0), be16(u, 2));
            let payload = &u[8..];
            let n = match dport {
                7 => {
                    out[42..42 + payload.len()].copy_from_slice(payload);
                    c.echo += 1;
                    payload.len()
                }
                5001 => {
                    let Some(n) = parse_send(payload) else {
                        c.other += 1;
                        return 0;
                    };
                    for (i, b) in out[42..42 + n].iter_mut().enumerate() {
                        *b = b'a' + ((i * 7 + n + 3) % 26) as u8;
                    }
                    c.sent += 1;
                    n
                }
                _ => {
                    c.other += 1;
                    return 0;
                }
            };
            hdr(out, 17, 8 + n);
            let o = &mut out[34..42 + n];
            put16(o, 0, dport);
            put16(o, 2, sport);
            put16(o, 4, (8 + n) as u16);
            put16(o, 6, 0);
            let s = match checksum(o, pseudo(&MY_IP, src, 17, 8 + n)) {
                0 => 0xffff,
                s => s,
            };
            put16(o, 6, s);
            42 + n
        }
        _ => {
            c.other += 1;
            0
        }
    }
}

/// `send N` with `N` at most 1472 (what fits one frame).
fn parse_send(p: &[u8]) -> Option<usize> {
    let digits = p.strip_prefix(b"send ")?;
    if digits.is_empty() || digits.len() > 4 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = digits
        .iter()
        .fold(0usize, |n, d| n * 10 + usize::from(d - b'0'));
    (n <= 1472).then_some(n)
}
