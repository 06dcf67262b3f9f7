//! `console_io`: the hypervisor's emergency console (`HYPERVISOR_console_io`, declared arity 3).
//!
//! A domain other than dom0 only reaches it when Xen allows guest console output (a debug build, or
//! `guest_loglvl`); output then appears on Xen's console prefixed with the domain id.

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
pub fn write(bytes: &[u8]) -> Result<()> {
    let mut rest = bytes;
    while !rest.is_empty() {
        let chunk = &rest[..rest.len().min(MAX_WRITE)];
        // SAFETY: Xen reads `chunk.len()` bytes at `chunk`, which stay borrowed during the call.
        let ret = unsafe {
            call3::<{ nr::CONSOLE_IO }>(
                Arg::val(CONSOLEIO_WRITE),
                Arg::val(chunk.len()),
                Arg::bytes_in(chunk),
            )
        };
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
