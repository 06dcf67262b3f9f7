//! `console_io`: the hypervisor's emergency console (`HYPERVISOR_console_io`, declared arity 3).
//!
//! Who may write: Xen's default (dummy) XSM policy allows `CONSOLEIO_write` to a domain that is the
//! console domain (`is_console`: dom0, and the domUs Xen builds itself with dom0less, as seen on Debian's
//! 4.17), and to every domain only in a Xen built with `CONFIG_VERBOSE_DEBUG`; any other domain needs
//! privilege and gets `EPERM`. Xen's `guest_loglvl` option does not grant anything: it only filters which
//! guest lines are printed. A domU's lines appear prefixed with its domain id, `(d1) …`.

use super::call::{Arg, call3};
use super::{Result, nr, unit};

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
    write_rest(bytes, ret)
}

/// After a first chunk whose answer was `ret`: the error, or the rest of a short write.
#[cfg(not(target_arch = "aarch64"))]
#[cold]
#[inline(never)]
fn write_rest(chunk: &[u8], ret: isize) -> Result<()> {
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
