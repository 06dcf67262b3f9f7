//! A xenstore client: requests and replies over the xenstore byte ring (`io/xs_wire.h`), notified through
//! its event channel.
//!
//! The protocol, in a screenful:
//!
//! - Every message, either way, is an [`XsdSockmsg`] header (`type`, `req_id`, `tx_id`, `len`, four
//!   native-endian `u32`s) followed by `len` bytes of payload, at most [`XENSTORE_PAYLOAD_MAX`]. Requests
//!   go in the ring's `req` half, replies and watch events come in the `rsp` half
//!   ([`ByteRing::xenstore`] with [`End::Front`]); a message may be larger than the ring (1024 bytes), so
//!   both sides write and read it in pieces, notifying the peer through the event channel.
//! - A request's payload is NUL-terminated strings: `path\0` for `XS_READ`, `XS_MKDIR`, `XS_RM`,
//!   `XS_DIRECTORY` and `XS_GET_PERMS`; `path\0value` (no NUL after the value) for `XS_WRITE`;
//!   `path\0perm\0perm\0…` for `XS_SET_PERMS`; `path\0token\0` for `XS_WATCH` and `XS_UNWATCH`; `\0` for
//!   `XS_TRANSACTION_START` (the reply is the id, in decimal); `T\0` (commit) or `F\0` (abort) for
//!   `XS_TRANSACTION_END`, the transaction's id in the header's `tx_id`.
//! - The reply carries the request's `req_id` and type, or `XS_ERROR` with an errno name (`"ENOENT\0"`),
//!   mapped here to [`Error`] by name (an unknown name is [`Error::EIO`]). A commit the daemon refuses
//!   because the transaction conflicted is `EAGAIN`: [`Xenstore::transaction`] retries it.
//! - `XS_WATCH_EVENT` messages (`path\0token\0`, `req_id` 0) come whenever a watched path changes, also
//!   between a request and its reply: the client keeps them in a small queue
//!   ([`Xenstore::next_watch_event`]).
//!
//! Waiting is the caller's, as with the [PV console](super::console): after writing, the client notifies
//! the daemon with [`evtchn::send`](super::evtchn::send) and calls `wait` while the reply is incomplete
//! (or the ring full). After reading it notifies again only when the reply ring was full, the daemon
//! then possibly waiting for room (Linux's `xb_read`): a request whose reply fits costs one
//! notification. It
//! must wait for the daemon's event on the port and must not miss one sent before it was called
//! ([`Events::wait`](super::evtchn::Events::wait) latches it; [`Events::waiter`](super::evtchn::Events::waiter)
//! makes such a closure, each call bounded by a `Duration`, `ETIMEDOUT` past it). A daemon answering garbage (a payload over
//! the maximum, a reply of the wrong type, an id that is no number) is [`Error::EIO`]; nothing panics.

use arrayvec::ArrayVec;

use super::evtchn::{Notifier, Port};
use super::hvm::{self, Param};
use super::ring::{ByteRing, End, SharedArea};
use super::{DomId, Error, Result};

/// `struct xsd_sockmsg`: the header of every xenstore message.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XsdSockmsg {
    /// `XS_*`.
    pub r#type: u32,
    /// The request's id, echoed in its reply.
    pub req_id: u32,
    /// The transaction's id (0: none).
    pub tx_id: u32,
    /// The length of the payload that follows.
    pub len: u32,
}

crate::impl_plain! {
    XsdSockmsg { r#type: u32, req_id: u32, tx_id: u32, len: u32 };
}

const HEADER: usize = core::mem::size_of::<XsdSockmsg>();

impl XsdSockmsg {
    /// The header as it travels on the ring: its four words in native byte order.
    #[inline]
    pub fn to_bytes(&self) -> [u8; HEADER] {
        let mut b = [0u8; HEADER];
        for (dst, v) in b
            .chunks_exact_mut(4)
            .zip([self.r#type, self.req_id, self.tx_id, self.len])
        {
            dst.copy_from_slice(&v.to_ne_bytes());
        }
        b
    }

    /// A header read off the ring, as [`to_bytes`](Self::to_bytes) lays it out.
    #[inline]
    pub fn from_bytes(b: &[u8; HEADER]) -> XsdSockmsg {
        let w = |i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        XsdSockmsg {
            r#type: w(0),
            req_id: w(4),
            tx_id: w(8),
            len: w(12),
        }
    }
}

/// `XS_CONTROL` (`XS_DEBUG`).
pub const XS_CONTROL: u32 = 0;
/// `XS_DIRECTORY`.
pub const XS_DIRECTORY: u32 = 1;
/// `XS_READ`.
pub const XS_READ: u32 = 2;
/// `XS_GET_PERMS`.
pub const XS_GET_PERMS: u32 = 3;
/// `XS_WATCH`.
pub const XS_WATCH: u32 = 4;
/// `XS_UNWATCH`.
pub const XS_UNWATCH: u32 = 5;
/// `XS_TRANSACTION_START`.
pub const XS_TRANSACTION_START: u32 = 6;
/// `XS_TRANSACTION_END`.
pub const XS_TRANSACTION_END: u32 = 7;
/// `XS_INTRODUCE`.
pub const XS_INTRODUCE: u32 = 8;
/// `XS_RELEASE`.
pub const XS_RELEASE: u32 = 9;
/// `XS_GET_DOMAIN_PATH`.
pub const XS_GET_DOMAIN_PATH: u32 = 10;
/// `XS_WRITE`.
pub const XS_WRITE: u32 = 11;
/// `XS_MKDIR`.
pub const XS_MKDIR: u32 = 12;
/// `XS_RM`.
pub const XS_RM: u32 = 13;
/// `XS_SET_PERMS`.
pub const XS_SET_PERMS: u32 = 14;
/// `XS_WATCH_EVENT`.
pub const XS_WATCH_EVENT: u32 = 15;
/// `XS_ERROR`.
pub const XS_ERROR: u32 = 16;
/// `XS_IS_DOMAIN_INTRODUCED`.
pub const XS_IS_DOMAIN_INTRODUCED: u32 = 17;
/// `XS_RESUME`.
pub const XS_RESUME: u32 = 18;
/// `XS_SET_TARGET`.
pub const XS_SET_TARGET: u32 = 19;
/// `XS_RESET_WATCHES`.
pub const XS_RESET_WATCHES: u32 = 21;
/// `XS_DIRECTORY_PART`.
pub const XS_DIRECTORY_PART: u32 = 22;

/// `XENSTORE_PAYLOAD_MAX`: the most bytes a message's payload may hold.
pub const XENSTORE_PAYLOAD_MAX: usize = 4096;

/// How many watch events the client keeps while a request is in flight.
pub const WATCH_QUEUE: usize = 4;

/// The most bytes of a queued watch event (`path\0token\0`); a longer one is dropped as an overflow.
pub const WATCH_EVENT_MAX: usize = 256;

/// How many times [`Xenstore::transaction`] runs its closure before giving up with `EAGAIN`.
pub const TRANSACTION_RETRIES: usize = 8;

/// How many times [`Xenstore::directory_part`] starts over when the directory changes under it.
pub const DIRECTORY_PART_RETRIES: usize = 8;

/// Where the domain's xenstore ring is: its frame and event channel (`HVM_PARAM_STORE_PFN`,
/// `HVM_PARAM_STORE_EVTCHN`). `ENODEV` when the frame parameter is 0 (a domain given no xenstore, such
/// as a dom0less domU without it, or dom0 which runs the daemon); the error of the hypercall when the
/// parameter cannot be read (an x86 PV guest, whose ring is in its `start_info`).
pub fn ring_location() -> Result<(u64, Port)> {
    let pfn = match hvm::get_param(DomId::SELF, Param::STORE_PFN)? {
        0 => return Err(Error::ENODEV),
        pfn => pfn,
    };
    let port = hvm::get_param(DomId::SELF, Param::STORE_EVTCHN)?;
    let port = u32::try_from(port).map_err(|_| Error::EINVAL)?;
    Ok((pfn, Port(port)))
}

/// A transaction's id (`tx_id`); [`TxId::NONE`] outside any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxId(pub u32);

impl TxId {
    /// No transaction (0).
    pub const NONE: TxId = TxId(0);
}

/// A watch event: the path that changed and the watch's token, borrowed from the caller's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatchEvent<'b> {
    /// The path that changed (under the watched one).
    pub path: &'b [u8],
    /// The token given to [`Xenstore::watch`].
    pub token: &'b [u8],
}

/// The names of a directory, NUL-separated in the caller's buffer ([`Xenstore::directory`]).
#[derive(Clone, Debug)]
pub struct Entries<'b> {
    rest: &'b [u8],
}

impl Entries<'_> {
    /// No names.
    pub(crate) fn empty() -> Self {
        Entries { rest: &[] }
    }
}

impl<'b> Iterator for Entries<'b> {
    type Item = &'b [u8];

    fn next(&mut self) -> Option<&'b [u8]> {
        if self.rest.is_empty() {
            return None;
        }
        let end = self
            .rest
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(self.rest.len());
        let name = &self.rest[..end];
        self.rest = self.rest.get(end + 1..).unwrap_or_default();
        Some(name)
    }
}

/// A queued watch event: its payload.
#[derive(Clone)]
struct Queued {
    bytes: [u8; WATCH_EVENT_MAX],
    len: usize,
}

/// The error named by an `XS_ERROR` payload (`"ENOENT\0"`); [`Error::EIO`] for a name Xen does not
/// define.
pub fn error_from_name(payload: &[u8]) -> Error {
    let end = payload
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(payload.len());
    let name = &payload[..end];
    Error::ALL
        .iter()
        .copied()
        .find(|e| e.name().is_some_and(|n| n.as_bytes() == name))
        .unwrap_or(Error::EIO)
}

/// A xenstore client: the guest's end of the xenstore ring and its event channel.
///
/// ```
/// # #[cfg(feature = "mock")] {
/// # xen_hypercall::mock::answer_zero(); // every notification succeeds
/// use xen_hypercall::xen::Page;
/// use xen_hypercall::xen::evtchn::Port;
/// use xen_hypercall::xen::ring::{ByteRing, End, SharedArea};
/// use xen_hypercall::xen::xenstore::Xenstore;
/// let page: *mut Page = Box::into_raw(Box::new(Page::new()));
/// // SAFETY: the leaked page is accessed only through the ring.
/// let area = unsafe { SharedArea::new(page, 1)? };
/// // In a guest: events.waiter(port, &clock, Duration::from_millis(50)); here no daemon answers, so waiting fails.
/// let mut xs = Xenstore::new(ByteRing::xenstore(area, End::Front), Port(1), || {
///     Err(xen_hypercall::xen::Error::ETIMEDOUT)
/// });
/// let mut buf = [0u8; 64];
/// assert_eq!(xs.read(b"name", &mut buf), Err(xen_hypercall::xen::Error::ETIMEDOUT));
/// # }
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
pub struct Xenstore<'a, W> {
    ring: ByteRing<'a>,
    /// The event channel to the daemon, with the notifications sent so far.
    notifier: Notifier,
    wait: W,
    next_id: u32,
    /// The message being received: its header bytes, then its payload.
    hdr: [u8; HEADER],
    hdr_got: usize,
    body: [u8; XENSTORE_PAYLOAD_MAX],
    body_got: usize,
    events: ArrayVec<Queued, WATCH_QUEUE>,
    overflow: bool,
    /// A request was left half-written (an error of `send` or `wait` while the ring was full).
    broken: bool,
    /// The length of the last event [`next_watch_event`](Self::next_watch_event) copied out.
    last_event_len: usize,
}

impl<'a, W: FnMut() -> Result<()>> Xenstore<'a, W> {
    /// The client over `ring` (the [`End::Front`] of [`ByteRing::xenstore`] over a [`SharedArea`]),
    /// notifying `port`, waiting with `wait` (see the [module documentation](self)).
    pub fn new(ring: ByteRing<'a>, port: Port, wait: W) -> Xenstore<'a, W> {
        Xenstore {
            ring,
            notifier: Notifier::new(port),
            wait,
            next_id: 1,
            hdr: [0; HEADER],
            hdr_got: 0,
            body: [0; XENSTORE_PAYLOAD_MAX],
            body_got: 0,
            events: ArrayVec::new(),
            overflow: false,
            broken: false,
            last_event_len: 0,
        }
    }

    /// The domain's xenstore: [`ring_location`] names its frame and event channel, `map` gives the area
    /// of that frame (the program maps it: identity-mapped, or with the MMU off on ARM, it is at `pfn * 4096`, see
    /// [`SharedArea::new`]), and the client waits with `wait` (see the [module documentation](self)).
    /// `ENODEV` when the domain has no xenstore ring.
    ///
    /// ```
    /// # #[cfg(feature = "mock")] {
    /// # xen_hypercall::mock::answer_zero(); // HVM_PARAM_STORE_PFN reads 0
    /// use xen_hypercall::xen::{Error, Page, ring::SharedArea, xenstore::Xenstore};
    /// let xs = Xenstore::open(
    ///     // SAFETY: identity-mapped (or the MMU off, ARM), frame `pfn` is at `pfn * 4096`; the xenstore page is the
    ///     // toolstack's, never referenced by the program.
    ///     |pfn| unsafe { SharedArea::new((pfn * 4096) as usize as *mut Page, 1) },
    ///     || Ok(()), // in a guest: events.waiter(port, &clock, timeout)
    /// );
    /// assert!(matches!(xs, Err(Error::ENODEV))); // on the mock, no ring
    /// # }
    /// ```
    pub fn open(
        map: impl FnOnce(u64) -> Result<SharedArea<'a>>,
        wait: W,
    ) -> Result<Xenstore<'a, W>> {
        let (pfn, port) = ring_location()?;
        let ring = ByteRing::xenstore(map(pfn)?, End::Front);
        Ok(Xenstore::new(ring, port, wait))
    }

    /// The event channel.
    #[inline]
    pub fn port(&self) -> Port {
        self.notifier.port()
    }

    /// How many notifications (`EVTCHNOP_send` on [`port`](Self::port)) the client has sent since it
    /// was made: with the caller's count of its `wait` calls, what a request costs.
    #[inline]
    pub fn notifications(&self) -> u64 {
        self.notifier.sent()
    }

    /// Calls the client's `wait` once (for an event on the port): what a caller waiting for something
    /// the daemon will send, a watch event say, does between two looks.
    pub fn wait(&mut self) -> Result<()> {
        (self.wait)()
    }

    /// The next watch event, waiting for it (with the client's `wait`, whose error, a time-out say, ends
    /// the wait) when none is queued nor in the ring. See [`next_watch_event`](Self::next_watch_event).
    pub fn wait_watch_event<'b>(&mut self, buf: &'b mut [u8]) -> Result<WatchEvent<'b>> {
        loop {
            match self.next_watch_event(&mut *buf) {
                // The borrow checker cannot see that the loop ends here: take the event again.
                Ok(Some(_)) => break,
                Ok(None) => (self.wait)()?,
                Err(e) => return Err(e),
            }
        }
        // The event is in `buf`; read it back in place.
        let n = self.last_event_len;
        split_event(&buf[..n])
    }

    /// How many watch events are queued (taken from the ring while requests were in flight), without
    /// looking at the ring.
    pub fn queued_watch_events(&self) -> usize {
        self.events.len()
    }

    /// Reads the value at `path` into `buf`; returns its length. `ERANGE` if it does not fit (the value
    /// is lost), and the daemon's errors (`ENOENT`, `EACCES`, …).
    pub fn read(&mut self, path: &[u8], buf: &mut [u8]) -> Result<usize> {
        self.read_in(TxId::NONE, path, buf)
    }

    /// Writes `value` at `path` (creating it and its parents).
    pub fn write(&mut self, path: &[u8], value: &[u8]) -> Result<()> {
        self.write_in(TxId::NONE, path, value)
    }

    /// Creates the node `path` (empty) if it does not exist.
    pub fn mkdir(&mut self, path: &[u8]) -> Result<()> {
        self.mkdir_in(TxId::NONE, path)
    }

    /// Removes `path` and everything under it.
    pub fn rm(&mut self, path: &[u8]) -> Result<()> {
        self.rm_in(TxId::NONE, path)
    }

    /// The names under `path`, read into `buf` (`ERANGE` if they do not fit).
    pub fn directory<'b>(&mut self, path: &[u8], buf: &'b mut [u8]) -> Result<Entries<'b>> {
        self.directory_in(TxId::NONE, path, buf)
    }

    /// The names under `path` with `XS_DIRECTORY_PART` (daemons of Xen 4.9 and later), for directories
    /// whose list does not fit one reply (which [`directory`](Self::directory) refuses with `E2BIG`):
    /// each request `path\0offset\0` answers the directory's generation (decimal, NUL-terminated) and
    /// the names from byte `offset` of the list, the last part ending with an empty name. When the
    /// generation changes between parts, it starts over ([`DIRECTORY_PART_RETRIES`] times at most, then
    /// `EAGAIN`). `ERANGE` if the names do not fit `buf`; `EIO` for a reply without its generation.
    pub fn directory_part<'b>(&mut self, path: &[u8], buf: &'b mut [u8]) -> Result<Entries<'b>> {
        'again: for _ in 0..DIRECTORY_PART_RETRIES {
            let mut generation: Option<u64> = None;
            let mut off = 0usize;
            loop {
                let mut digits = [0u8; 20];
                let offset = decimal(off as u64, &mut digits);
                let n =
                    self.request(TxId::NONE, XS_DIRECTORY_PART, &[path, b"\0", offset, b"\0"])?;
                let reply = &self.body[..n];
                let at = reply.iter().position(|&b| b == 0).ok_or(Error::EIO)?;
                let gen_now = parse_decimal(&reply[..at]).ok_or(Error::EIO)?;
                if generation.is_some_and(|g| g != gen_now) {
                    continue 'again;
                }
                generation = Some(gen_now);
                let names = &reply[at + 1..];
                // The list's end: an empty name (a NUL where a name would start).
                let (part, last) = match names.windows(2).position(|w| w == [0, 0]) {
                    _ if names.first() == Some(&0) || names.is_empty() => (&names[..0], true),
                    Some(end) => (&names[..end + 1], true),
                    None => (names, false),
                };
                let dst = buf.get_mut(off..off + part.len()).ok_or(Error::ERANGE)?;
                dst.copy_from_slice(part);
                off += part.len();
                if last {
                    // Without the last name's NUL, as `directory` gives them.
                    let end = off.saturating_sub(1);
                    return Ok(Entries { rest: &buf[..end] });
                }
                if part.is_empty() {
                    return Err(Error::EIO); // no progress: the daemon would loop
                }
            }
        }
        Err(Error::EAGAIN)
    }

    /// The permissions of `path` into `buf`, raw: NUL-terminated entries such as `n0\0r1\0` (owner
    /// first); returns their length.
    pub fn get_perms(&mut self, path: &[u8], buf: &mut [u8]) -> Result<usize> {
        let n = self.request(TxId::NONE, XS_GET_PERMS, &[path, b"\0"])?;
        self.copy_out(n, buf)
    }

    /// Sets the permissions of `path`, raw: `perms` is the NUL-separated entries (`b"n0\0r1\0"`).
    pub fn set_perms(&mut self, path: &[u8], perms: &[u8]) -> Result<()> {
        self.ok(TxId::NONE, XS_SET_PERMS, &[path, b"\0", perms])
    }

    /// Watches `path` (and everything under it): changes come as events with `token`
    /// ([`next_watch_event`](Self::next_watch_event)); the daemon sends one at once.
    pub fn watch(&mut self, path: &[u8], token: &[u8]) -> Result<()> {
        check_str(token)?;
        self.ok(TxId::NONE, XS_WATCH, &[path, b"\0", token, b"\0"])
    }

    /// Removes the watch of `path` with `token`.
    pub fn unwatch(&mut self, path: &[u8], token: &[u8]) -> Result<()> {
        check_str(token)?;
        self.ok(TxId::NONE, XS_UNWATCH, &[path, b"\0", token, b"\0"])
    }

    /// Starts a transaction. `EIO` if the daemon's id is no number.
    pub fn transaction_start(&mut self) -> Result<TxId> {
        let n = self.request(TxId::NONE, XS_TRANSACTION_START, &[b"\0"])?;
        let digits = self.body[..n]
            .strip_suffix(b"\0")
            .unwrap_or(&self.body[..n]);
        if digits.is_empty() || digits.len() > 10 {
            return Err(Error::EIO);
        }
        let mut id: u64 = 0;
        for &d in digits {
            if !d.is_ascii_digit() {
                return Err(Error::EIO);
            }
            id = id * 10 + u64::from(d - b'0');
        }
        u32::try_from(id).map(TxId).map_err(|_| Error::EIO)
    }

    /// Ends `tx`, committing it if `commit`. `EAGAIN` when the daemon refuses the commit (another
    /// change conflicted): the transaction is over, and may be run again.
    pub fn transaction_end(&mut self, tx: TxId, commit: bool) -> Result<()> {
        let arg: &[u8] = if commit { b"T\0" } else { b"F\0" };
        self.ok(tx, XS_TRANSACTION_END, &[arg])
    }

    /// Runs `f` in a transaction and commits it; when the commit is refused (`EAGAIN`), runs it again,
    /// [`TRANSACTION_RETRIES`] times at most (then `EAGAIN`). An error of `f` aborts the transaction
    /// and is returned.
    pub fn transaction<T>(
        &mut self,
        mut f: impl FnMut(&mut Transaction<'_, 'a, W>) -> Result<T>,
    ) -> Result<T> {
        for _ in 0..TRANSACTION_RETRIES {
            let tx = self.transaction_start()?;
            let value = match f(&mut Transaction { xs: self, tx }) {
                Ok(v) => v,
                Err(e) => {
                    // The abort's own failure is not the error that matters.
                    let _ = self.transaction_end(tx, false);
                    return Err(e);
                }
            };
            match self.transaction_end(tx, true) {
                Ok(()) => return Ok(value),
                Err(Error::EAGAIN) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::EAGAIN)
    }

    /// The next watch event, read into `buf` (`ERANGE` if it does not fit; it stays queued): first those
    /// queued while requests were in flight, then any waiting in the ring. `None` when there is none now
    /// (this does not wait).
    pub fn next_watch_event<'b>(&mut self, buf: &'b mut [u8]) -> Result<Option<WatchEvent<'b>>> {
        while self.events.is_empty() {
            match self.poll()? {
                None => return Ok(None),
                Some(h) if h.r#type == XS_WATCH_EVENT => self.queue_event(h.len as usize),
                Some(_) => {} // a reply nobody waits for (a request that failed): dropped
            }
        }
        let q = &self.events[0];
        let n = q.len;
        let dst = buf.get_mut(..n).ok_or(Error::ERANGE)?;
        dst.copy_from_slice(&q.bytes[..n]);
        self.events.remove(0);
        self.last_event_len = n;
        split_event(&buf[..n]).map(Some)
    }

    /// Whether watch events were dropped (the queue was full, or one was too long) since the last call;
    /// clears the flag. After an overflow, re-read what the watches cover.
    pub fn watch_overflow(&mut self) -> bool {
        core::mem::take(&mut self.overflow)
    }

    fn read_in(&mut self, tx: TxId, path: &[u8], buf: &mut [u8]) -> Result<usize> {
        let n = self.request(tx, XS_READ, &[path, b"\0"])?;
        self.copy_out(n, buf)
    }

    fn write_in(&mut self, tx: TxId, path: &[u8], value: &[u8]) -> Result<()> {
        self.ok(tx, XS_WRITE, &[path, b"\0", value])
    }

    fn mkdir_in(&mut self, tx: TxId, path: &[u8]) -> Result<()> {
        self.ok(tx, XS_MKDIR, &[path, b"\0"])
    }

    fn rm_in(&mut self, tx: TxId, path: &[u8]) -> Result<()> {
        self.ok(tx, XS_RM, &[path, b"\0"])
    }

    fn directory_in<'b>(
        &mut self,
        tx: TxId,
        path: &[u8],
        buf: &'b mut [u8],
    ) -> Result<Entries<'b>> {
        let n = self.request(tx, XS_DIRECTORY, &[path, b"\0"])?;
        let n = self.copy_out(n, buf)?;
        Ok(Entries { rest: &buf[..n] })
    }

    /// The reply payload (`n` bytes) into `buf`.
    fn copy_out(&self, n: usize, buf: &mut [u8]) -> Result<usize> {
        let dst = buf.get_mut(..n).ok_or(Error::ERANGE)?;
        dst.copy_from_slice(&self.body[..n]);
        Ok(n)
    }

    /// A request whose reply is `OK\0`; any other is `EIO`.
    fn ok(&mut self, tx: TxId, ty: u32, parts: &[&[u8]]) -> Result<()> {
        let n = self.request(tx, ty, parts)?;
        match &self.body[..n] {
            b"OK\0" | b"OK" => Ok(()),
            _ => Err(Error::EIO),
        }
    }

    /// Sends a request made of `parts` (with two parts or more, the first is a path: `EINVAL` for a NUL in it) and waits for its reply;
    /// returns the reply's payload length (the payload is in `self.body`).
    fn request(&mut self, tx: TxId, ty: u32, parts: &[&[u8]]) -> Result<usize> {
        // A path comes first, followed by its NUL; the single-part requests are fixed strings.
        if let [path, _, ..] = parts {
            check_str(path)?;
        }
        let len = parts.iter().map(|p| p.len()).sum::<usize>();
        if len > XENSTORE_PAYLOAD_MAX {
            return Err(Error::E2BIG);
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        let h = XsdSockmsg {
            r#type: ty,
            req_id: id,
            tx_id: tx.0,
            len: len as u32,
        };
        let hdr = h.to_bytes();
        if self.broken {
            return Err(Error::EIO);
        }
        let sent = self
            .send_all(&hdr)
            .and_then(|()| parts.iter().try_for_each(|p| self.send_all(p)));
        if let Err(e) = sent {
            // Part of the message may be in the ring: the daemon would read what follows as its rest.
            self.broken = true;
            return Err(e);
        }
        self.notifier.notify()?;
        loop {
            let Some(r) = self.poll()? else {
                (self.wait)()?;
                continue;
            };
            if r.r#type == XS_WATCH_EVENT {
                self.queue_event(r.len as usize);
                continue;
            }
            if r.req_id != id {
                continue; // a stale reply (to a request that failed on our side): dropped
            }
            let n = r.len as usize;
            if r.r#type == XS_ERROR {
                return Err(error_from_name(&self.body[..n]));
            }
            if r.r#type != ty {
                return Err(Error::EIO);
            }
            return Ok(n);
        }
    }

    /// Writes all of `bytes` into the ring, notifying and waiting while it is full.
    fn send_all(&mut self, bytes: &[u8]) -> Result<()> {
        let mut rest = bytes;
        while !rest.is_empty() {
            let n = self.ring.write(rest)?;
            if n == 0 {
                self.notifier.notify()?;
                (self.wait)()?;
            }
            rest = &rest[n..];
        }
        Ok(())
    }

    /// Reads what the ring holds of the current message, without waiting; the header once the message
    /// is complete (its payload in `self.body`). `EIO` for a payload over the maximum (the stream is
    /// then out of step: the rest of the ring is dropped).
    fn poll(&mut self) -> Result<Option<XsdSockmsg>> {
        let mut full = false;
        let result = self.receive(&mut full);
        if full {
            // Room was made in a full ring: the daemon may be waiting for it (otherwise it is not,
            // and a notification would only wake it for nothing).
            self.notifier.notify()?;
        }
        result
    }

    /// Reads into `buf` ([`ByteRing::read_and_check_notify`]), noting in `full` that the daemon may wait
    /// for the room made.
    fn take(&mut self, part: Part, full: &mut bool) -> Result<usize> {
        let (ring, buf) = match part {
            Part::Header => (&mut self.ring, &mut self.hdr[self.hdr_got..]),
            Part::Body(len) => (&mut self.ring, &mut self.body[self.body_got..len]),
        };
        let (n, f) = ring.read_and_check_notify(buf)?;
        *full |= f;
        Ok(n)
    }

    /// [`poll`](Self::poll) without the notification; notes in `full` that the daemon may wait for room.
    fn receive(&mut self, full: &mut bool) -> Result<Option<XsdSockmsg>> {
        if self.hdr_got < HEADER {
            let n = self.take(Part::Header, full)?;
            self.hdr_got += n;
            if self.hdr_got < HEADER {
                return Ok(None);
            }
        }
        let h = XsdSockmsg::from_bytes(&self.hdr);
        let len = h.len as usize;
        if len > XENSTORE_PAYLOAD_MAX {
            // Out of step with the daemon: drop what is waiting and start over.
            self.hdr_got = 0;
            self.body_got = 0;
            let mut sink = [0u8; 64];
            loop {
                let (n, f) = self.ring.read_and_check_notify(&mut sink)?;
                *full |= f;
                if n == 0 {
                    break;
                }
            }
            return Err(Error::EIO);
        }
        let n = self.take(Part::Body(len), full)?;
        self.body_got += n;
        if self.body_got < len {
            return Ok(None);
        }
        self.hdr_got = 0;
        self.body_got = 0;
        Ok(Some(h))
    }

    /// Queues the watch event whose payload (`len` bytes) is in `self.body`, or notes an overflow.
    fn queue_event(&mut self, len: usize) {
        if len > WATCH_EVENT_MAX || self.events.is_full() {
            self.overflow = true;
            return;
        }
        let mut q = Queued {
            bytes: [0; WATCH_EVENT_MAX],
            len,
        };
        q.bytes[..len].copy_from_slice(&self.body[..len]);
        self.events.push(q);
    }
}

/// The requests that work both outside and inside a transaction: what code built on the client (such as
/// [`xenbus`](super::xenbus)) takes to run either way.
pub trait Store {
    /// [`Xenstore::read`].
    fn read(&mut self, path: &[u8], buf: &mut [u8]) -> Result<usize>;
    /// [`Xenstore::write`].
    fn write(&mut self, path: &[u8], value: &[u8]) -> Result<()>;
    /// [`Xenstore::mkdir`].
    fn mkdir(&mut self, path: &[u8]) -> Result<()>;
    /// [`Xenstore::rm`].
    fn rm(&mut self, path: &[u8]) -> Result<()>;
    /// [`Xenstore::directory`].
    fn directory<'b>(&mut self, path: &[u8], buf: &'b mut [u8]) -> Result<Entries<'b>>;
}

impl<W: FnMut() -> Result<()>> Store for Xenstore<'_, W> {
    fn read(&mut self, path: &[u8], buf: &mut [u8]) -> Result<usize> {
        self.read_in(TxId::NONE, path, buf)
    }
    fn write(&mut self, path: &[u8], value: &[u8]) -> Result<()> {
        self.write_in(TxId::NONE, path, value)
    }
    fn mkdir(&mut self, path: &[u8]) -> Result<()> {
        self.mkdir_in(TxId::NONE, path)
    }
    fn rm(&mut self, path: &[u8]) -> Result<()> {
        self.rm_in(TxId::NONE, path)
    }
    fn directory<'b>(&mut self, path: &[u8], buf: &'b mut [u8]) -> Result<Entries<'b>> {
        self.directory_in(TxId::NONE, path, buf)
    }
}

impl<W: FnMut() -> Result<()>> Store for Transaction<'_, '_, W> {
    fn read(&mut self, path: &[u8], buf: &mut [u8]) -> Result<usize> {
        self.xs.read_in(self.tx, path, buf)
    }
    fn write(&mut self, path: &[u8], value: &[u8]) -> Result<()> {
        self.xs.write_in(self.tx, path, value)
    }
    fn mkdir(&mut self, path: &[u8]) -> Result<()> {
        self.xs.mkdir_in(self.tx, path)
    }
    fn rm(&mut self, path: &[u8]) -> Result<()> {
        self.xs.rm_in(self.tx, path)
    }
    fn directory<'b>(&mut self, path: &[u8], buf: &'b mut [u8]) -> Result<Entries<'b>> {
        self.xs.directory_in(self.tx, path, buf)
    }
}

/// Which part of a message [`Xenstore::take`] reads.
#[derive(Clone, Copy)]
enum Part {
    /// The header's missing bytes.
    Header,
    /// The body's missing bytes, up to the payload's length.
    Body(usize),
}

/// A transaction in progress, inside [`Xenstore::transaction`]: the requests it may make.
pub struct Transaction<'x, 'a, W> {
    xs: &'x mut Xenstore<'a, W>,
    tx: TxId,
}

impl<'a, W: FnMut() -> Result<()>> Transaction<'_, 'a, W> {
    /// Its id.
    pub fn id(&self) -> TxId {
        self.tx
    }

    /// The client, for requests made outside the transaction while it is open (they are not part of
    /// it, and are not undone if it is refused): telling another domain something mid-transaction,
    /// waiting for a watch event.
    pub fn outside(&mut self) -> &mut Xenstore<'a, W> {
        self.xs
    }

    /// [`Xenstore::read`] in the transaction.
    pub fn read(&mut self, path: &[u8], buf: &mut [u8]) -> Result<usize> {
        self.xs.read_in(self.tx, path, buf)
    }

    /// [`Xenstore::write`] in the transaction.
    pub fn write(&mut self, path: &[u8], value: &[u8]) -> Result<()> {
        self.xs.write_in(self.tx, path, value)
    }

    /// [`Xenstore::mkdir`] in the transaction.
    pub fn mkdir(&mut self, path: &[u8]) -> Result<()> {
        self.xs.mkdir_in(self.tx, path)
    }

    /// [`Xenstore::rm`] in the transaction.
    pub fn rm(&mut self, path: &[u8]) -> Result<()> {
        self.xs.rm_in(self.tx, path)
    }

    /// [`Xenstore::directory`] in the transaction.
    pub fn directory<'b>(&mut self, path: &[u8], buf: &'b mut [u8]) -> Result<Entries<'b>> {
        self.xs.directory_in(self.tx, path, buf)
    }
}

/// `v` in decimal, in `digits`.
fn decimal(mut v: u64, digits: &mut [u8; 20]) -> &[u8] {
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            return &digits[i..];
        }
    }
}

/// A decimal number (ASCII digits only, no sign, at most `u64::MAX`).
pub(crate) fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |v, &d| {
        if !d.is_ascii_digit() {
            return None;
        }
        v.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// `EINVAL` for a string with a NUL in it (a path or token).
fn check_str(s: &[u8]) -> Result<()> {
    if s.contains(&0) {
        Err(Error::EINVAL)
    } else {
        Ok(())
    }
}

/// A watch event's payload `path\0token\0` split; `EIO` without the NUL after the path.
fn split_event(bytes: &[u8]) -> Result<WatchEvent<'_>> {
    let at = bytes.iter().position(|&b| b == 0).ok_or(Error::EIO)?;
    let path = &bytes[..at];
    let rest = &bytes[at + 1..];
    let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
    Ok(WatchEvent {
        path,
        token: &rest[..end],
    })
}
