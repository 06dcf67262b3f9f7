//! The same hypercall twice in a row, for each arity 1 to 5: checks that pass only if the stubs declare
//! exactly what Xen clobbers. A debug Xen writes `0xdeadbeefdeadf00d` into every argument register of the
//! call's declared arity after each call (`clobber_regs64`); a stub that declared one preserved would make
//! the second call pass a poisoned value, and the two results would differ. The pair functions have fixed
//! symbol names, for the disassembly check of `cargo xtask x86`.
//!
//! Arity 2 and 3 also go through the typed API (`version::extraversion`, `grant_table::query_size`), whose
//! stubs take their arity from x86's table (`xen::nr::arity`). Arity 1, 4 and 5 have no typed wrapper
//! (sysctl and hypfs are not part of the typed API; no call it shares with ARM takes four arguments).

use core::hint::black_box;

#[cfg(feature = "outline")]
use xen_hypercall::outline::{hypercall1, hypercall2, hypercall3, hypercall4, hypercall5};
#[cfg(not(feature = "outline"))]
use xen_hypercall::{hypercall1, hypercall2, hypercall3, hypercall4, hypercall5};

use crate::checks::Checks;

#[path = "../../guests/src/typed_pairs.rs"]
mod typed;
pub use typed::{pair2_typed_extraversion, pair3_typed_query_size};

/// Hypercall numbers (`public/xen.h`) of the raw pairs.
pub mod nr {
    pub const XEN_VERSION: usize = 17;
    #[cfg_attr(not(feature = "underdeclared"), allow(dead_code))] // the control's stub only
    pub const CONSOLE_IO: usize = 18;
    pub const GRANT_TABLE_OP: usize = 20;
    pub const SYSCTL: usize = 35;
    pub const HYPFS_OP: usize = 42;
}

const DOMID_SELF: u16 = 0x7ff0;

/// `struct gnttab_query_size`.
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct QuerySize {
    pub dom: u16,
    pub nr_frames: u32,
    pub max_nr_frames: u32,
    pub status: i16,
}

impl Default for QuerySize {
    fn default() -> QuerySize {
        QuerySize::new()
    }
}

impl QuerySize {
    pub fn new() -> QuerySize {
        QuerySize {
            dom: DOMID_SELF,
            nr_frames: 0,
            max_nr_frames: 0,
            status: 0,
        }
    }
}

/// A zeroed `xen_sysctl`-sized buffer: interface version 0 is not Xen's, so sysctl answers `-EACCES`.
#[repr(C, align(8))]
pub struct SysctlBuf([u8; 256]);

/// Arity 1: `sysctl(&buf)` twice.
#[inline(never)]
#[unsafe(no_mangle)]
pub fn pair1_sysctl(buf: &mut SysctlBuf) -> (isize, isize) {
    let op = black_box(nr::SYSCTL);
    let p = black_box(buf as *mut SysctlBuf as usize);
    // SAFETY: sysctl (arity 1) reads `*buf`, larger than `xen_sysctl`; with a wrong version it writes nothing.
    let a = unsafe { hypercall1(op, p) };
    // SAFETY: as above.
    let b = unsafe { hypercall1(op, p) };
    (a, b)
}

/// Arity 2: `xen_version(XENVER_extraversion, &extra)` twice.
#[inline(never)]
#[unsafe(no_mangle)]
pub fn pair2_xen_version(extra: &mut [u8; 16], first: &mut [u8; 16]) -> (isize, isize) {
    let op = black_box(nr::XEN_VERSION);
    let cmd = black_box(1);
    let p = black_box(extra as *mut [u8; 16] as usize);
    // SAFETY: xen_version (arity 2) writes 16 bytes at `p`.
    let a = unsafe { hypercall2(op, cmd, p) };
    *first = *extra;
    *extra = [0; 16];
    // SAFETY: as above.
    let b = unsafe { hypercall2(op, cmd, p) };
    (a, b)
}

/// Arity 3: `grant_table_op(GNTTABOP_query_size, &q, 1)` twice.
#[inline(never)]
#[unsafe(no_mangle)]
pub fn pair3_grant_table_op(q: &mut QuerySize, first: &mut QuerySize) -> (isize, isize) {
    let op = black_box(nr::GRANT_TABLE_OP);
    let cmd = black_box(6);
    let p = black_box(q as *mut QuerySize as usize);
    let count = black_box(1);
    // SAFETY: grant_table_op (arity 3) reads and writes one `gnttab_query_size` at `p`.
    let a = unsafe { hypercall3(op, cmd, p, count) };
    *first = *q;
    *q = QuerySize::new();
    // SAFETY: as above.
    let b = unsafe { hypercall3(op, cmd, p, count) };
    (a, b)
}

/// Arity 4: the same through the 4-argument stub (it declares more clobbered than Xen's 3, which is safe).
#[inline(never)]
#[unsafe(no_mangle)]
pub fn pair4_grant_table_op(q: &mut QuerySize, first: &mut QuerySize) -> (isize, isize) {
    let op = black_box(nr::GRANT_TABLE_OP);
    let cmd = black_box(6);
    let p = black_box(q as *mut QuerySize as usize);
    let count = black_box(1);
    let unused = black_box(0);
    // SAFETY: as in `pair3_grant_table_op`.
    let a = unsafe { hypercall4(op, cmd, p, count, unused) };
    *first = *q;
    *q = QuerySize::new();
    // SAFETY: as above.
    let b = unsafe { hypercall4(op, cmd, p, count, unused) };
    (a, b)
}

/// Arity 5: `hypfs_op(XEN_HYPFS_OP_get_version, NULL, 0, NULL, 0)` twice (Xen wants the others zero).
#[inline(never)]
#[unsafe(no_mangle)]
pub fn pair5_hypfs_op() -> (isize, isize) {
    let op = black_box(nr::HYPFS_OP);
    let z = black_box(0);
    // SAFETY: hypfs_op (arity 5) get_version reads no memory.
    let a = unsafe { hypercall5(op, z, z, z, z, z) };
    // SAFETY: as above.
    let b = unsafe { hypercall5(op, z, z, z, z, z) };
    (a, b)
}

/// The trap of the control's own stub: the one the build's inline stubs use.
#[cfg(all(feature = "underdeclared", feature = "pv"))]
macro_rules! trap {
    () => {
        "syscall"
    };
}
#[cfg(all(feature = "underdeclared", not(feature = "pv")))]
macro_rules! trap {
    () => {
        "vmmcall"
    };
}

/// The negative control: `console_io(CONSOLEIO_write, len, buf)` twice through a stub that declares `rdx`
/// (the buffer, the third of Xen's three) preserved. Release Xen leaves it: both calls print and answer 0.
/// Debug Xen poisons it: the second call reads from `0xdeadbeefdeadf00d` and answers `-EFAULT`.
#[cfg(feature = "underdeclared")]
#[inline(never)]
#[unsafe(no_mangle)]
pub fn pair3_underdeclared(text: &[u8]) -> (isize, isize) {
    let cmd = black_box(0usize);
    let len = black_box(text.len());
    let p = black_box(text.as_ptr() as usize);
    let (a, b): (isize, isize);
    macro_rules! under {
        ($out:ident) => {
            // SAFETY: console_io (arity 3) reads `len` bytes at `p`; the declaration of `rdx` as preserved
            // is the deliberate error this control exists for.
            unsafe {
                core::arch::asm!(
                    trap!(),
                    inlateout("rax") nr::CONSOLE_IO => $out,
                    inlateout("rdi") cmd => _,
                    inlateout("rsi") len => _,
                    in("rdx") p,
                    lateout("rcx") _,
                    lateout("r11") _,
                    options(nostack)
                )
            }
        };
    }
    under!(a);
    under!(b);
    (a, b)
}

pub fn run(c: &mut Checks) {
    let mut buf = SysctlBuf([0; 256]);
    let (a, b) = pair1_sysctl(&mut buf);
    c.check(
        "pair1 sysctl (raw)",
        a == b && a < 0,
        format_args!("{a}, {b}"),
    );

    let (mut extra, mut first) = ([0u8; 16], [0u8; 16]);
    let (a, b) = pair2_xen_version(&mut extra, &mut first);
    c.check(
        "pair2 xen_version extraversion (raw)",
        a == 0 && b == 0 && extra == first && first[0] == b'.',
        format_args!("{a}, {b}"),
    );

    let name = "pair2 version::extraversion (typed)";
    match pair2_typed_extraversion() {
        (Ok(x), Ok(y)) => c.check(
            name,
            x.as_bytes() == y.as_bytes() && x.as_bytes().first() == Some(&b'.'),
            format_args!(
                "{}, {}",
                core::str::from_utf8(x.as_bytes()).unwrap_or("?"),
                core::str::from_utf8(y.as_bytes()).unwrap_or("?")
            ),
        ),
        (Err(e), _) | (_, Err(e)) => c.check(name, false, format_args!("error {e:?}")),
    }

    let (mut q, mut q1) = (QuerySize::new(), QuerySize::new());
    let (a, b) = pair3_grant_table_op(&mut q, &mut q1);
    c.check(
        "pair3 grant_table_op query_size (raw)",
        a == 0 && b == 0 && q == q1 && q.status == 0 && q.max_nr_frames > 0,
        format_args!("{a}, {b}, max {} / {}", q1.max_nr_frames, q.max_nr_frames),
    );

    let name = "pair3 grant_table::query_size (typed)";
    match pair3_typed_query_size() {
        (Ok(x), Ok(y)) => c.check(
            name,
            x == y && x.nr_frames >= 1 && x.max_nr_frames >= x.nr_frames,
            format_args!(
                "{}/{}, {}/{}",
                x.nr_frames, x.max_nr_frames, y.nr_frames, y.max_nr_frames
            ),
        ),
        (Err(e), _) | (_, Err(e)) => c.check(name, false, format_args!("{e:?}")),
    }

    let (mut q, mut q1) = (QuerySize::new(), QuerySize::new());
    let (a, b) = pair4_grant_table_op(&mut q, &mut q1);
    c.check(
        "pair4 grant_table_op query_size, 4-argument stub (raw)",
        a == 0 && b == 0 && q == q1 && q.status == 0 && q.max_nr_frames > 0,
        format_args!("{a}, {b}"),
    );

    let (a, b) = pair5_hypfs_op();
    c.check(
        "pair5 hypfs_op get_version (raw)",
        a == 1 && b == 1,
        format_args!("{a}, {b}"),
    );

    #[cfg(feature = "underdeclared")]
    {
        let (a, b) = pair3_underdeclared(b"(control)\n");
        c.check(
            "pair3 under-declared stub (control)",
            a == 0 && b == 0,
            format_args!("{a}, {b}"),
        );
    }
}
