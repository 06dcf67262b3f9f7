//! A TCP/IP stack (`smoltcp`) on the library's network frontend, and what the guests' TCP transfers
//! need: MD5 (RFC 1321) and a byte stream anyone can regenerate.
//!
//! - [`Dev`] is `smoltcp`'s `phy::Device` over a [`NetFront`]: a receive token is one whole frame
//!   (copied out of the receive pool by `receive_frame`), a transmit token a frame built in a local
//!   buffer and queued with `queue`; the program publishes the queued requests with `flush` after each
//!   `Interface::poll` (one push and at most one notification per poll). A token is handed out only
//!   when a full frame fits the transmit ring and pool (`NetFront::has_room`): a stack that cannot send
//!   does not take frames in either. Frames not for the stack ([`Dev::steer`]: not to its IPv4
//!   address, not ARP about it) go to the program's own handler, so one interface serves both.
//! - The stack checks every checksum it receives but TCP's (those dom0's stack left blank the frontend
//!   has filled in by then) and computes those it sends. TCP's is checked here ([`tcp_sum_ok`]) unless
//!   the backend validated the frame (`NETRXF_data_validated`: dom0's own stack made it, as Linux's
//!   netfront trusts it): a GSO segment of 64 KiB is then summed once, by the frontend, not twice.

use smoltcp::phy::{self, Checksum, ChecksumCapabilities, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use xen_hypercall::xen::netfront::{ETH_HLEN, NetError, NetFront, internet_sum};

#[cfg(doc)]
use xen_hypercall::xen::netfront::MAX_GSO_FRAME;

/// The longest Ethernet frame handled (a 1500-byte MTU and the header).
pub const FRAME: usize = 1500 + ETH_HLEN;

/// `smoltcp`'s device over a [`NetFront`]; frames not for the stack go to `other`.
pub struct Dev<'n, H> {
    /// The frontend.
    pub net: &'n mut NetFront,
    /// The stack's IPv4 address (what [`Dev::steer`] sends to it).
    pub ip: [u8; 4],
    /// Frames not for the stack: `(frontend, frame, csum_blank)`.
    pub other: H,
    /// The first error met in a token (the stack cannot be told): the program looks after each poll.
    pub error: Option<NetError>,
    /// Frames the stack built that could not be queued (none expected: tokens need room).
    pub tx_dropped: u64,
    /// Frames given to the stack.
    pub rx_frames: u64,
    /// Frames for the stack dropped for a wrong TCP checksum.
    pub rx_bad_sum: u64,
    /// Where each frame is received: [`MAX_GSO_FRAME`] bytes take the GSO segments of a frontend with
    /// `Options::gso_tcpv4` (smoltcp takes a TCP segment larger than the MTU as any other).
    buf: &'n mut [u8],
}

impl<'n, H> Dev<'n, H>
where
    H: FnMut(&mut NetFront, &[u8], bool) -> Result<(), NetError>,
{
    /// The device over `net` for the stack at `ip`, receiving into `buf`.
    pub fn new(net: &'n mut NetFront, ip: [u8; 4], buf: &'n mut [u8], other: H) -> Self {
        Dev {
            net,
            ip,
            other,
            error: None,
            tx_dropped: 0,
            rx_frames: 0,
            rx_bad_sum: 0,
            buf,
        }
    }

    /// Whether `frame` is for the stack at `ip`: IPv4 to `ip`, or ARP whose target is `ip`.
    pub fn steer(frame: &[u8], ip: [u8; 4]) -> bool {
        if frame.len() < ETH_HLEN + 20 {
            return false;
        }
        match u16::from_be_bytes([frame[12], frame[13]]) {
            0x0800 => frame[30..34] == ip,
            0x0806 => frame.len() >= 42 && frame[38..42] == ip,
            _ => false,
        }
    }

    fn room(&mut self) -> bool {
        match self.net.has_room(FRAME) {
            Ok(r) => r,
            Err(e) => {
                self.error.get_or_insert(e);
                false
            }
        }
    }
}

/// A received frame.
pub struct Rx<'a>(&'a [u8]);

/// Room for one frame.
pub struct Tx<'a> {
    net: &'a mut NetFront,
    dropped: &'a mut u64,
}

impl phy::RxToken for Rx<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.0)
    }
}

impl phy::TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut b = [0u8; FRAME];
        let n = len.min(FRAME);
        let r = f(&mut b[..n]);
        if n != len || self.net.queue(&b[..n]).is_err() {
            *self.dropped += 1;
        }
        r
    }
}

impl<H> phy::Device for Dev<'_, H>
where
    H: FnMut(&mut NetFront, &[u8], bool) -> Result<(), NetError>,
{
    type RxToken<'a>
        = Rx<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = Tx<'a>
    where
        Self: 'a;

    fn receive(&mut self, _: Instant) -> Option<(Rx<'_>, Tx<'_>)> {
        if self.error.is_some() || !self.room() {
            return None;
        }
        let len = loop {
            match self.net.receive_frame(self.buf) {
                Ok(Some(f)) if Self::steer(&self.buf[..f.len], self.ip) => {
                    if f.data_validated || tcp_sum_ok(&self.buf[..f.len]) {
                        break f.len;
                    }
                    self.rx_bad_sum += 1;
                }
                Ok(Some(f)) => {
                    if let Err(e) = (self.other)(self.net, &self.buf[..f.len], f.csum_blank) {
                        self.error.get_or_insert(e);
                        return None;
                    }
                }
                Ok(None) => return None,
                Err(e) => {
                    self.error.get_or_insert(e);
                    return None;
                }
            }
        };
        self.rx_frames += 1;
        Some((
            Rx(&self.buf[..len]),
            Tx {
                net: self.net,
                dropped: &mut self.tx_dropped,
            },
        ))
    }

    fn transmit(&mut self, _: Instant) -> Option<Tx<'_>> {
        if self.error.is_some() || !self.room() {
            return None;
        }
        Some(Tx {
            net: self.net,
            dropped: &mut self.tx_dropped,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut c = DeviceCapabilities::default();
        c.medium = Medium::Ethernet;
        // For Ethernet, the whole frame with its header.
        c.max_transmission_unit = self.net.max_frame().min(FRAME);
        // TCP's checksum made by the stack, checked by `receive` ([`tcp_sum_ok`]).
        let mut sums = ChecksumCapabilities::default();
        sums.tcp = Checksum::Tx;
        c.checksum = sums;
        c
    }
}

/// Whether `frame`'s TCP checksum is right (the pseudo-header's sum and the segment's, with the field,
/// are all ones); `true` for a frame that is not TCP over IPv4 (the stack checks the others). A header
/// that does not add up is not right.
pub fn tcp_sum_ok(frame: &[u8]) -> bool {
    let Some(ip) = frame.get(ETH_HLEN..ETH_HLEN + 20) else {
        return true;
    };
    if frame[12..14] != [0x08, 0x00] || ip[9] != 6 {
        return true;
    }
    let header = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let Some(segment) = frame.get(ETH_HLEN + header..ETH_HLEN + total) else {
        return false;
    };
    let mut pseudo = [0u8; 12];
    pseudo[..8].copy_from_slice(&ip[12..20]);
    pseudo[9] = 6;
    pseudo[10..].copy_from_slice(&(segment.len() as u16).to_be_bytes());
    let sum = u32::from(internet_sum(&pseudo)) + u32::from(internet_sum(segment));
    header >= 20 && (sum & 0xffff) + (sum >> 16) == 0xffff
}

/// [`tcp_sum_ok`] on a TCP frame whose checksum Python's RFC 1071 sum made (169.254.1.1:40000 to
/// 169.254.1.2:9, 1007 bytes: `0..=250` four times and `xyz`; the host tests' vector): right with its
/// checksum, wrong with one bit off or a byte of the payload changed.
pub fn tcp_sum_self_test() -> bool {
    const HEADERS: [u8; 54] = [
        0x00, 0x16, 0x3e, 0x00, 0x00, 0x01, 0xfe, 0x12, 0x34, 0x56, 0x78, 0x90, 0x08, 0x00, 0x45,
        0x00, 0x04, 0x17, 0x00, 0x01, 0x40, 0x00, 0x40, 0x06, 0xe0, 0xe0, 0xa9, 0xfe, 0x01, 0x01,
        0xa9, 0xfe, 0x01, 0x02, 0x9c, 0x40, 0x00, 0x09, 0x01, 0x02, 0x03, 0x04, 0x0a, 0x0b, 0x0c,
        0x0d, 0x50, 0x18, 0xff, 0xff, 0x98, 0xe8, 0x00, 0x00,
    ];
    let mut f = [0u8; 54 + 1007];
    f[..54].copy_from_slice(&HEADERS);
    for (i, b) in f[54..54 + 1004].iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    f[54 + 1004..].copy_from_slice(b"xyz");
    let right = tcp_sum_ok(&f);
    f[51] ^= 1;
    let off = !tcp_sum_ok(&f);
    f[51] ^= 1;
    f[600] ^= 0x40;
    right && off && !tcp_sum_ok(&f)
}

// ------------------------------------------------------------------------------------------------ MD5

/// MD5 (RFC 1321), streaming: RustCrypto's `md-5`, with the digest printed as `md5sum` prints it.
pub struct Md5(md5::Md5);

impl Md5 {
    /// The empty digest's state.
    pub fn new() -> Md5 {
        Md5(<md5::Md5 as md5::Digest>::new())
    }

    /// Adds `data`.
    pub fn update(&mut self, data: &[u8]) {
        md5::Digest::update(&mut self.0, data);
    }

    /// The digest.
    pub fn finish(self) -> [u8; 16] {
        md5::Digest::finalize(self.0).into()
    }

    /// The digest as `md5sum` prints it (32 lowercase hexadecimal digits).
    pub fn hex(digest: [u8; 16]) -> [u8; 32] {
        const H: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 32];
        for (i, b) in digest.iter().enumerate() {
            out[2 * i] = H[usize::from(b >> 4)];
            out[2 * i + 1] = H[usize::from(b & 15)];
        }
        out
    }
}

impl Default for Md5 {
    fn default() -> Self {
        Self::new()
    }
}

/// RFC 1321's test suite (appendix A.5), and a message over several blocks: whether every digest is
/// the RFC's (and `md5sum`'s).
pub fn md5_self_test() -> bool {
    const CASES: [(&[u8], &[u8; 32]); 4] = [
        (b"", b"d41d8cd98f00b204e9800998ecf8427e"),
        (b"abc", b"900150983cd24fb0d6963f7d28e17f72"),
        (b"message digest", b"f96b697d7cb7938d525a2f31aaf161d0"),
        (
            b"12345678901234567890123456789012345678901234567890123456789012345678901234567890",
            b"57edf4a22be3c955ac49da2e2107b67a",
        ),
    ];
    CASES.iter().all(|(m, want)| {
        // Byte by byte too: the block boundary handling.
        let mut one = Md5::new();
        for b in *m {
            one.update(core::slice::from_ref(b));
        }
        let mut all = Md5::new();
        all.update(m);
        Md5::hex(all.finish()) == **want && Md5::hex(one.finish()) == **want
    })
}

// -------------------------------------------------------------------------------------- the stream

/// Byte `i` of the stream the guest sends: byte `i % 8` (little endian) of SplitMix64's output for
/// `i / 8` (its state after `i / 8 + 1` steps from 0).
pub fn stream_word(w: u64) -> u64 {
    let mut z = w.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Fills `buf` with the stream's bytes from `at` on.
pub fn stream_fill(at: u64, buf: &mut [u8]) {
    let (mut i, mut k) = (at, 0);
    while k < buf.len() {
        let w = stream_word(i / 8).to_le_bytes();
        let off = (i % 8) as usize;
        let n = (8 - off).min(buf.len() - k);
        buf[k..k + n].copy_from_slice(&w[off..off + n]);
        k += n;
        i += n as u64;
    }
}
