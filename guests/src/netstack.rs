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
//! - The stack checks every checksum it receives (the frontend asked the backend for complete
//!   checksums) and computes those it sends.

use smoltcp::phy::{self, ChecksumCapabilities, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use xen_hypercall::xen::netfront::{ETH_HLEN, NetError, NetFront};

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
    buf: [u8; FRAME],
}

impl<'n, H> Dev<'n, H>
where
    H: FnMut(&mut NetFront, &[u8], bool) -> Result<(), NetError>,
{
    /// The device over `net` for the stack at `ip`.
    pub fn new(net: &'n mut NetFront, ip: [u8; 4], other: H) -> Self {
        Dev {
            net,
            ip,
            other,
            error: None,
            tx_dropped: 0,
            rx_frames: 0,
            buf: [0; FRAME],
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
            match self.net.receive_frame(&mut self.buf) {
                Ok(Some(f)) if Self::steer(&self.buf[..f.len], self.ip) => break f.len,
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
        c.checksum = ChecksumCapabilities::default();
        c
    }
}

// ------------------------------------------------------------------------------------------------ MD5

/// MD5 (RFC 1321), streaming.
pub struct Md5 {
    s: [u32; 4],
    block: [u8; 64],
    fill: usize,
    len: u64,
}

const K: [u32; 64] = {
    // floor(abs(sin(i + 1)) * 2^32), RFC 1321's table T.
    [
        0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613,
        0xfd469501, 0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193,
        0xa679438e, 0x49b40821, 0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d,
        0x02441453, 0xd8a1e681, 0xe7d3fbc8, 0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed,
        0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a, 0xfffa3942, 0x8771f681, 0x6d9d6122,
        0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70, 0x289b7ec6, 0xeaa127fa,
        0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665, 0xf4292244,
        0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
        0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb,
        0xeb86d391,
    ]
};

const R: [u32; 16] = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21];

impl Md5 {
    /// The empty digest's state.
    pub const fn new() -> Md5 {
        Md5 {
            s: [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476],
            block: [0; 64],
            fill: 0,
            len: 0,
        }
    }

    fn compress(s: &mut [u32; 4], block: &[u8; 64]) {
        let mut m = [0u32; 16];
        for (i, w) in m.iter_mut().enumerate() {
            *w = u32::from_le_bytes([
                block[4 * i],
                block[4 * i + 1],
                block[4 * i + 2],
                block[4 * i + 3],
            ]);
        }
        let [mut a, mut b, mut c, mut d] = *s;
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let t = d;
            d = c;
            c = b;
            b = b.wrapping_add(
                a.wrapping_add(f)
                    .wrapping_add(K[i])
                    .wrapping_add(m[g])
                    .rotate_left(R[(i / 16) * 4 + i % 4]),
            );
            a = t;
        }
        s[0] = s[0].wrapping_add(a);
        s[1] = s[1].wrapping_add(b);
        s[2] = s[2].wrapping_add(c);
        s[3] = s[3].wrapping_add(d);
    }

    /// Adds `data`.
    pub fn update(&mut self, mut data: &[u8]) {
        self.len = self.len.wrapping_add(data.len() as u64);
        while !data.is_empty() {
            let n = (64 - self.fill).min(data.len());
            self.block[self.fill..self.fill + n].copy_from_slice(&data[..n]);
            self.fill += n;
            data = &data[n..];
            if self.fill == 64 {
                Self::compress(&mut self.s, &self.block);
                self.fill = 0;
            }
        }
    }

    /// The digest.
    pub fn finish(mut self) -> [u8; 16] {
        let bits = self.len.wrapping_mul(8);
        self.update(&[0x80]);
        while self.fill != 56 {
            self.update(&[0]);
        }
        self.update(&bits.to_le_bytes());
        let mut out = [0u8; 16];
        for (i, w) in self.s.iter().enumerate() {
            out[4 * i..4 * i + 4].copy_from_slice(&w.to_le_bytes());
        }
        out
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
