//! The network domUs' own responder (`xl_net.rs`, `xl_netmq.rs`): answers to ARP, ICMP echo and UDP for
//! one IPv4 address, built in the caller's buffer with complete checksums; what it received is checked
//! (every IPv4 header checksum, and the UDP and ICMP ones unless the backend left them blank).
//!
//! - ARP requests for the address get a reply; ICMP echo requests an echo reply with the same identifier,
//!   sequence and data;
//! - UDP to port 7 is echoed back unchanged; UDP to port 5001 saying `send N` is answered with `N` bytes
//!   of a pattern dom0 computes on its own (`b'a' + (i * 7 + N + 3) % 26` for byte `i`);
//! - for the benchmark: UDP to port 9 is counted and dropped; `count` on port 5001 is answered with
//!   `count DATAGRAMS BYTES NOTIFICATIONS SLEEPS` (port 9's, and the caller's [`Counts::notes`] and
//!   [`Counts::wakes`]); `flood N SIZE` makes [`flood`] send N datagrams of SIZE zero bytes to the asker's
//!   port 9.
//!
//! And what both domUs say of their frontend: an error ([`net_err`]), a send after the backend went
//! ([`check_send_after_detach`]), whether the backend went ([`check_backend_gone`]), the pages a close
//! handed back ([`pages_back`]).

use xen_hypercall::xen::netfront::{NetError, NetFront, Returned, internet_sum};

use xen_hypercall::xen::Error;

use crate::common::Line;
use crate::xl::Out;

/// What was answered.
#[derive(Default)]
pub struct Counts {
    pub arp: u64,
    pub icmp: u64,
    pub echo: u64,
    pub sent: u64,
    pub bad_sum: u64,
    pub other: u64,
    /// UDP datagrams to port 9 (discard) and their payload bytes: what dom0's flood delivered.
    pub discard: u64,
    pub discard_bytes: u64,
    /// The frontend's notifications and this domU's sleeps so far (for `count`).
    pub notes: u64,
    pub wakes: u64,
    /// A flood asked for (`flood N SIZE`): the datagrams still to send, and the frame.
    pub flood_left: u64,
    pub flood_len: usize,
    pub flood_frame: Option<[u8; 1514]>,
}

impl Counts {
    /// `answered …`: each kind of answer, and the frames ignored.
    pub fn answered(&self) -> Line {
        Line::new()
            .s("answered ")
            .dec(self.arp)
            .s(" ARP, ")
            .dec(self.icmp)
            .s(" ICMP echo, ")
            .dec(self.echo)
            .s(" UDP echo, ")
            .dec(self.sent)
            .s(" UDP send; ")
            .dec(self.other)
            .s(" other frames ignored")
    }

    /// The responder's checks: every checksum received right, each kind of answer given.
    pub fn check<W: FnMut() -> Result<(), Error>>(&self, out: &mut Out<'_, W>) {
        out.check(
            "checksums",
            self.bad_sum == 0,
            Line::new().dec(self.bad_sum).s(" bad checksums received"),
        );
        out.check(
            "answered",
            self.arp > 0 && self.icmp > 0 && self.echo > 0 && self.sent > 0,
            Line::new().s("ARP, ICMP, UDP echo and UDP send each at least once"),
        );
    }
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// The one's complement sum of `data` (RFC 1071, the library's `internet_sum`), folded, starting from
/// `sum`.
fn sum16(data: &[u8], mut sum: u32) -> u32 {
    sum += u32::from(internet_sum(data));
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
pub fn answer(
    f: &[u8],
    csum_blank: bool,
    out: &mut [u8],
    mac: [u8; 6],
    my_ip: [u8; 4],
    c: &mut Counts,
) -> usize {
    if f.len() < 14 {
        c.other += 1;
        return 0;
    }
    let ty = be16(f, 12);
    // Ethernet: to the sender, from us.
    out[..6].copy_from_slice(&f[6..12]);
    out[6..12].copy_from_slice(&mac);
    match ty {
        0x0806 if f.len() >= 42 && be16(f, 20) == 1 && f[38..42] == my_ip => {
            // ARP request for our address: the reply.
            out[12..14].copy_from_slice(&f[12..14]);
            out[14..20].copy_from_slice(&f[14..20]); // htype, ptype, hlen, plen
            put16(out, 20, 2);
            out[22..28].copy_from_slice(&mac);
            out[28..32].copy_from_slice(&my_ip);
            out[32..42].copy_from_slice(&f[22..32]); // the sender's MAC and IP
            out[42..60].fill(0);
            c.arp += 1;
            60
        }
        0x0800 if f.len() >= 34 => ipv4(f, csum_blank, out, my_ip, c),
        _ => {
            c.other += 1;
            0
        }
    }
}

fn ipv4(f: &[u8], csum_blank: bool, out: &mut [u8], my_ip: [u8; 4], c: &mut Counts) -> usize {
    let ihl = usize::from(f[14] & 0xf) * 4;
    let total = usize::from(be16(f, 16));
    if f[14] >> 4 != 4 || ihl < 20 || total < ihl || 14 + total > f.len() || f[30..34] != my_ip {
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
        o[12..16].copy_from_slice(&my_ip);
        o[16..20].copy_from_slice(src);
        let s = checksum(o, 0);
        put16(o, 10, s);
    };
    // Our UDP header and `n` bytes of payload already at 42, from `sport` to `dport` of the sender.
    let udp = |out: &mut [u8], sport: u16, dport: u16, n: usize| {
        hdr(out, 17, 8 + n);
        let o = &mut out[34..42 + n];
        put16(o, 0, sport);
        put16(o, 2, dport);
        put16(o, 4, (8 + n) as u16);
        put16(o, 6, 0);
        let s = match checksum(o, pseudo(&my_ip, src, 17, 8 + n)) {
            0 => 0xffff,
            s => s,
        };
        put16(o, 6, s);
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
                9 => {
                    c.discard += 1;
                    c.discard_bytes += payload.len() as u64;
                    return 0;
                }
                5001 if payload == b"count" => {
                    let l = Line::new()
                        .s("count ")
                        .dec(c.discard)
                        .s(" ")
                        .dec(c.discard_bytes)
                        .s(" ")
                        .dec(c.notes)
                        .s(" ")
                        .dec(c.wakes);
                    let t = l.text();
                    out[42..42 + t.len()].copy_from_slice(t);
                    t.len()
                }
                5001 if payload.starts_with(b"flood ") => {
                    // `flood N SIZE`: N datagrams of SIZE zero bytes to the sender's port 9.
                    let mut w = payload[6..].split(|b| *b == b' ').map(parse_dec);
                    let (Some(Some(n)), Some(Some(size))) = (w.next(), w.next()) else {
                        c.other += 1;
                        return 0;
                    };
                    if n == 0 || size > 1472 {
                        c.other += 1;
                        return 0;
                    }
                    let size = size as usize;
                    out[42..42 + size].fill(0);
                    udp(out, 9, 9, size);
                    let mut frame = [0u8; 1514];
                    frame[..42 + size].copy_from_slice(&out[..42 + size]);
                    c.flood_frame = Some(frame);
                    c.flood_len = 42 + size;
                    c.flood_left = n;
                    return 0;
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
            udp(out, dport, sport, n);
            42 + n
        }
        _ => {
            c.other += 1;
            0
        }
    }
}

/// A decimal number of at most 9 digits.
fn parse_dec(p: &[u8]) -> Option<u64> {
    if p.is_empty() || p.len() > 9 || !p.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(p.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

/// Queues what it can of a flood asked for (`flood N SIZE`), one copy of its frame at a time while
/// the ring and pool have room. Whether datagrams are left to send.
pub fn flood(net: &mut NetFront, c: &mut Counts) -> bool {
    let Some(frame) = c.flood_frame.as_ref() else {
        return false;
    };
    let f = &frame[..c.flood_len];
    while c.flood_left > 0 && net.queue(f).is_ok() {
        c.flood_left -= 1;
    }
    if c.flood_left == 0 {
        c.flood_frame = None;
    }
    c.flood_left > 0
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

/// `l` followed by what `e` says.
pub fn net_err(l: Line, e: NetError) -> Line {
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

/// `l` followed by the pages a close handed back and the grants it left in place.
pub fn pages_back(l: Line, r: &Returned) -> Line {
    l.dec(r.rings.len() as u64)
        .s(" ring, ")
        .dec(r.tx.len() as u64)
        .s(" tx, ")
        .dec(r.rx.len() as u64)
        .s(" rx, leaked ")
        .dec(r.leaked as u64)
}

/// After the backend went: sending (`r`, a frame's outcome) must be `BackendGone`.
pub fn check_send_after_detach<W: FnMut() -> Result<(), Error>>(
    out: &mut Out<'_, W>,
    r: Result<(), NetError>,
) {
    out.check(
        "send after detach",
        r == Err(NetError::BackendGone),
        match r {
            Err(e) => net_err(Line::new(), e),
            Ok(()) => Line::new().s("sent"),
        },
    );
}

/// The backend must have gone by the end of the run (dom0 detached the vif): `why` says how it was seen.
pub fn check_backend_gone<W: FnMut() -> Result<(), Error>>(
    out: &mut Out<'_, W>,
    gone: bool,
    why: Line,
) {
    let detail = if gone {
        why
    } else {
        Line::new().s("still there at the end of the run")
    };
    out.check("backend gone", gone, detail);
}
