//! `console_io`: the hypervisor's emergency console (`HYPERVISOR_console_io`, declared arity 3).
//!
//! Who may write: Xen's default (dummy) XSM policy allows `CONSOLEIO_write` to a domain that is the
//! console domain (`is_console`: dom0, and the domUs Xen builds itself with dom0less, as seen on Debian's
//! 4.17), and to every domain only in a Xen built with `CONFIG_VERBOSE_DEBUG`; any other domain needs
//! privilege and gets `EPERM`. Xen's `guest_loglvl` option does not grant anything: it only filters which
//! guest lines are printed. A domU's lines appear prefixed with its domain id, `(d1) …`.
//!
//! A domain built by `xl` has no right to `console_io`: its console is a ring page shared with the
//! console daemon (`xencons_interface`) and an event channel, both named by HVM parameters. [`PvConsole`]
//! drives such a ring; [`Console`] is the one way to get "the console" whichever the domain has:
//! [`Console::open`] reads `HVM_PARAM_CONSOLE_PFN` and gives the ring when there is one, the hypervisor's
//! console otherwise (dom0, and dom0less domUs, whose parameter is 0).
//!
//! Waiting is the caller's, as a closure: when the ring is full, the console notifies the daemon and
//! calls it, then tries again. It must wait until the daemon's event on the console's port comes, and
//! must not miss one sent before it was called: [`Events::wait`](super::evtchn::Events::wait) latches the
//! pending bit, so `|| events.wait_forever(port)` does, and
//! [`events.waiter(port, &clock, timeout)`](super::evtchn::Events::waiter) too, bounding each wait in time
//! (`ETIMEDOUT`); a closure that returns an error ends the write with it.

use core::fmt;

use super::call::{Arg, call3};
use super::evtchn::{Notifier, Port};
use super::hvm::{self, Param};
use super::ring::{ByteRing, End, SharedArea};
use super::{DomId, Error, Result, nr, unit};

/// `CONSOLEIO_write`.
pub const CONSOLEIO_WRITE: usize = 0;
/// `CONSOLEIO_read`.
pub const CONSOLEIO_READ: usize = 1;

/// The most bytes [`write()`] hands Xen in one hypercall; longer buffers are split.
///
/// Xen's count is an `unsigned int`, so a `usize` length must be bounded on 64-bit guests anyway; a
/// page-sized bound also keeps each call short (Xen copies the text in small chunks under the console
/// lock).
pub const MAX_WRITE: usize = 4096;

/// Writes `bytes` to Xen's console, in as many `CONSOLEIO_write` calls of at most [`MAX_WRITE`] bytes as
/// needed. An empty buffer makes no call.
///
/// Xen answers a write with 0 (everything written) or, on versions that report it, a positive count of
/// bytes taken: a short count makes the rest be written by further calls.
///
/// ```
/// # #[cfg(feature = "mock")] xen_hypercall::mock::answer_zero();
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))]
/// xen_hypercall::xen::console::write(b"hello\n")?;
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
#[inline]
pub fn write(bytes: &[u8]) -> Result<()> {
    // The common case, one chunk taken whole, is a single inline hypercall; the rest is out of line.
    if bytes.is_empty() || bytes.len() > MAX_WRITE {
        return write_chunks(bytes);
    }
    // Xen 4.17 answers a completed write with 0 (a preempted one is continued by Xen itself); any other
    // answer (an error, or a count from versions that report one) is handled on the rare path.
    let ret = write_chunk(bytes);
    if ret == 0 {
        return Ok(());
    }
    // AArch64: inline, as a call on the rare path would make every caller keep its live values in
    // callee-saved registers, saved and restored in pairs on the common path. A32/T32 (one `push` for
    // all of them) and x86-64: out of line, the smaller code.
    #[cfg(target_arch = "aarch64")]
    return finish(bytes, ret);
    #[cfg(not(target_arch = "aarch64"))]
    write_rest(ret, bytes)
}

/// After a first chunk whose answer was `ret`: the error, or the rest of a short write. The answer comes
/// first, in the register that holds it already (on 32-bit ARM the result register is the first argument
/// register), so the common path moves nothing for the rare one.
#[cfg(not(target_arch = "aarch64"))]
#[cold]
#[inline(never)]
fn write_rest(ret: isize, chunk: &[u8]) -> Result<()> {
    finish(chunk, ret)
}

/// After `bytes` (at most [`MAX_WRITE`]) were written with the answer `ret`: the error, or the rest of
/// a short write, in further calls.
#[inline(always)]
fn finish(bytes: &[u8], mut ret: isize) -> Result<()> {
    let mut rest = bytes;
    loop {
        unit(ret)?;
        let taken = match usize::try_from(ret) {
            Ok(n) if n > 0 && n < rest.len() => n,
            _ => rest.len(),
        };
        rest = rest.get(taken..).unwrap_or_default();
        if rest.is_empty() {
            return Ok(());
        }
        ret = write_chunk(rest);
    }
}

/// One `CONSOLEIO_write` of `chunk` (at most [`MAX_WRITE`] bytes): Xen's raw answer.
#[inline(always)]
fn write_chunk(chunk: &[u8]) -> isize {
    // SAFETY: Xen reads `chunk.len()` bytes at `chunk`, which stay borrowed during the call.
    unsafe {
        call3::<{ nr::CONSOLE_IO }>(
            Arg::val(CONSOLEIO_WRITE),
            Arg::val(chunk.len()),
            Arg::bytes_in(chunk),
        )
    }
}

/// Writes `bytes` in as many calls of at most [`MAX_WRITE`] bytes as needed.
#[inline(never)]
fn write_chunks(bytes: &[u8]) -> Result<()> {
    let mut rest = bytes;
    while !rest.is_empty() {
        let chunk = &rest[..rest.len().min(MAX_WRITE)];
        let ret = write_chunk(chunk);
        unit(ret)?;
        let taken = match usize::try_from(ret) {
            Ok(n) if n > 0 && n < chunk.len() => n,
            _ => chunk.len(),
        };
        rest = &rest[taken..];
    }
    Ok(())
}

/// Reads what is waiting in Xen's console input into `buf` (`CONSOLEIO_read`; dom0 only); returns how many
/// bytes were read (0 when nothing is waiting).
///
/// ```no_run
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))] {
/// let mut buf = [0u8; 64];
/// let n = xen_hypercall::xen::console::read(&mut buf)?;
/// # let _ = n; }
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
#[inline]
pub fn read(buf: &mut [u8]) -> Result<usize> {
    // Xen's count is an `unsigned int` and it returns the count as an `int`.
    let len = buf.len().min(i32::MAX as usize);
    // SAFETY: Xen writes at most `len` bytes into `buf`, which stays mutably borrowed during the call.
    let ret = unsafe {
        call3::<{ nr::CONSOLE_IO }>(
            Arg::val(CONSOLEIO_READ),
            Arg::val(len),
            Arg::slice_inout(buf.as_mut_ptr(), len),
        )
    };
    let n = super::Error::check(ret)?;
    // Never report more than the buffer holds, whatever came back.
    Ok(n.min(len))
}

/// A PV console: the guest's end of a `xencons_interface` ring and its event channel.
///
/// ```
/// # #[cfg(feature = "mock")] {
/// # xen_hypercall::mock::answer_zero(); // every notification succeeds
/// use xen_hypercall::xen::Page;
/// use xen_hypercall::xen::console::PvConsole;
/// use xen_hypercall::xen::evtchn::Port;
/// use xen_hypercall::xen::ring::{ByteRing, End, SharedArea};
/// let page: *mut Page = Box::into_raw(Box::new(Page::new()));
/// // SAFETY: the leaked page is accessed only through the ring.
/// let area = unsafe { SharedArea::new(page, 1)? };
/// let mut waits = 0;
/// let mut con = PvConsole::new(ByteRing::console(area, End::Front), Port(3), || {
///     waits += 1; // in a guest: events.wait(port, &clock, Duration::from_millis(50))
///     Ok(())
/// });
/// con.write(b"hello\n")?; // fits: written, the daemon notified, no wait
/// assert_eq!(con.notifications(), 1);
/// # drop(con); assert_eq!(waits, 0); }
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
pub struct PvConsole<'a, W> {
    ring: ByteRing<'a>,
    /// The event channel to the daemon, with the notifications sent so far.
    notifier: Notifier,
    wait: W,
}

impl<'a, W: FnMut() -> Result<()>> PvConsole<'a, W> {
    /// The console over `ring` (the [`End::Front`] of [`ByteRing::console`]), notifying `port`, waiting
    /// with `wait` for room (see the [module documentation](self)).
    pub fn new(ring: ByteRing<'a>, port: Port, wait: W) -> PvConsole<'a, W> {
        PvConsole {
            ring,
            notifier: Notifier::new(port),
            wait,
        }
    }

    /// The event channel.
    #[inline]
    pub fn port(&self) -> Port {
        self.notifier.port()
    }

    /// How many notifications (`EVTCHNOP_send` on [`port`](Self::port)) the console has sent since it
    /// was made: the bytes written per notification measure its cost.
    #[inline]
    pub fn notifications(&self) -> u64 {
        self.notifier.sent()
    }

    /// Writes all of `bytes`, notifying the daemon after each part written; while the ring is full,
    /// notifies and waits. `EIO` if the ring's indices are impossible; the errors of `send` and `wait`.
    pub fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let mut rest = bytes;
        while !rest.is_empty() {
            let n = self.ring.write(rest)?;
            self.notifier.notify()?;
            if n == 0 {
                (self.wait)()?;
            }
            rest = &rest[n..];
        }
        Ok(())
    }

    /// Waits until the daemon has read everything written (before a shutdown, say): notifies it, then
    /// waits with `wait` while the ring holds output. `EIO` if the ring's indices are impossible; the
    /// errors of `send` and `wait` (a `wait` bounded in time ends a flush the daemon never serves).
    pub fn flush(&mut self) -> Result<()> {
        while !self.ring.is_drained()? {
            self.notifier.notify()?;
            (self.wait)()?;
        }
        Ok(())
    }

    /// Reads the input waiting (up to `buf.len()` bytes) without waiting; returns how many bytes were
    /// read, and notifies the daemon of the room made if any. `EIO` if the ring's indices are impossible.
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        let n = self.ring.read(buf)?;
        if n > 0 {
            self.notifier.notify()?;
        }
        Ok(n)
    }
}

impl<W: FnMut() -> Result<()>> fmt::Write for PvConsole<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.write(s.as_bytes()).map_err(|_| fmt::Error)
    }
}

/// Where the domain's PV console ring is, if it has one: its frame and event channel
/// (`HVM_PARAM_CONSOLE_PFN`, `HVM_PARAM_CONSOLE_EVTCHN`). `None` when the frame parameter is 0 (dom0,
/// dom0less domUs) or cannot be read (an x86 PV guest, whose ring is in its `start_info`).
pub fn ring_location() -> Result<Option<(u64, Port)>> {
    let pfn = match hvm::get_param(DomId::SELF, Param::CONSOLE_PFN) {
        Ok(0) | Err(_) => return Ok(None),
        Ok(pfn) => pfn,
    };
    let port = hvm::get_param(DomId::SELF, Param::CONSOLE_EVTCHN)?;
    let port = u32::try_from(port).map_err(|_| Error::EINVAL)?;
    Ok(Some((pfn, Port(port))))
}

/// The domain's console, whichever it has: the hypervisor's (`console_io`) or a PV console ring.
///
/// ```
/// # #[cfg(feature = "mock")] {
/// # xen_hypercall::mock::answer_zero(); // the parameters read 0, console_io succeeds
/// use core::fmt::Write as _;
/// use xen_hypercall::xen::console::Console;
/// use xen_hypercall::xen::{Page, ring::SharedArea};
/// // On the mock HVM_PARAM_CONSOLE_PFN reads 0, as in dom0: the hypervisor's console, the closures
/// // are not called.
/// let mut con = Console::open(
///     // SAFETY: identity-mapped (or the MMU off, ARM), frame `pfn` is at `pfn * 4096`; the console page is the
///     // toolstack's, never referenced by the program.
///     |pfn| unsafe { SharedArea::new((pfn * 4096) as usize as *mut Page, 1) },
///     || Ok(()), // in a guest: events.waiter(port, &clock, Duration::from_millis(50))
/// )?;
/// assert!(matches!(con, Console::Hypervisor));
/// writeln!(con, "hello, {}", 42).unwrap();
/// # }
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
pub enum Console<'a, W = fn() -> Result<()>> {
    /// Xen's console (`console_io`): dom0, dom0less domUs.
    Hypervisor,
    /// A PV console ring (an `xl` domU).
    Ring(PvConsole<'a, W>),
}

impl<'a, W: FnMut() -> Result<()>> Console<'a, W> {
    /// The domain's console: if [`ring_location`] finds a ring, a [`PvConsole`] over the area `map`
    /// gives for its frame (the program maps it: identity-mapped, or with the MMU off on ARM, it is at `pfn * 4096`, see
    /// [`SharedArea::new`]), waiting with `wait`; otherwise the hypervisor's. `map` and `wait` are not
    /// called for the hypervisor's console.
    pub fn open(
        map: impl FnOnce(u64) -> Result<SharedArea<'a>>,
        wait: W,
    ) -> Result<Console<'a, W>> {
        Ok(match ring_location()? {
            None => Console::Hypervisor,
            Some((pfn, port)) => {
                let ring = ByteRing::console(map(pfn)?, End::Front);
                Console::Ring(PvConsole::new(ring, port, wait))
            }
        })
    }

    /// The notifications a ring console has sent ([`PvConsole::notifications`]); 0 for the
    /// hypervisor's, which has none.
    pub fn notifications(&self) -> u64 {
        match self {
            Console::Hypervisor => 0,
            Console::Ring(c) => c.notifications(),
        }
    }

    /// Writes all of `bytes` ([`write()`] or [`PvConsole::write`]).
    pub fn write(&mut self, bytes: &[u8]) -> Result<()> {
        match self {
            Console::Hypervisor => write(bytes),
            Console::Ring(c) => c.write(bytes),
        }
    }

    /// Waits until everything written has been read ([`PvConsole::flush`]; nothing to wait for with the
    /// hypervisor's console, which writes synchronously).
    pub fn flush(&mut self) -> Result<()> {
        match self {
            Console::Hypervisor => Ok(()),
            Console::Ring(c) => c.flush(),
        }
    }

    /// Reads the input waiting ([`read()`], which only dom0 may, or [`PvConsole::read`]).
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        match self {
            Console::Hypervisor => read(buf),
            Console::Ring(c) => c.read(buf),
        }
    }
}

impl<W: FnMut() -> Result<()>> fmt::Write for Console<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.write(s.as_bytes()).map_err(|_| fmt::Error)
    }
}
