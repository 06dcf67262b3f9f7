//! The same hypercall twice in a row, for each arity 1 to 5: checks that pass only if the stubs declare
//! exactly what Xen clobbers.
//!
//! Each pair computes its arguments once (through `black_box`, so the compiler cannot re-materialise them
//! as constants), makes the call, then makes it again with the same values. Between the two `hvc`s the
//! compiler is free to reuse any register the stub declares preserved. A debug build of Xen writes
//! `0xdeadbeef` into the number register and into every argument register of the call's declared arity
//! except the first after each call; a stub that declared one of them preserved would make the second call
//! pass a poisoned value, and the two results would differ. Every argument of these calls matters to Xen
//! (a pointer, a count, or arguments Xen requires to be zero), so a poisoned one changes the answer.
//!
//! The pair functions have fixed symbol names: `cargo xtask xen` finds them in the ELF and checks that the
//! second call is set up from registers live across the first `hvc`.
//!
//! Arity 1, 4 and 5 have no typed wrapper (sysctl and hypfs are not part of the typed API, and no ARM
//! hypercall takes four arguments): those pairs go through the raw stubs only.

use core::hint::black_box;

#[cfg(feature = "outline")]
use xen_hypercall::outline::{hypercall1, hypercall2, hypercall3, hypercall4, hypercall5};
use xen_hypercall::xen::{self, DomId, grant_table, nr};
#[cfg(not(feature = "outline"))]
use xen_hypercall::{hypercall1, hypercall2, hypercall3, hypercall4, hypercall5};

use crate::{Checks, Line};

#[path = "typed_pairs.rs"]
mod typed;
pub use typed::{pair2_typed_extraversion, pair3_typed_query_size};

/// `XENVER_extraversion`.
const XENVER_EXTRAVERSION: usize = 1;
/// `GNTTABOP_query_size`.
const GNTTABOP_QUERY_SIZE: usize = 6;
/// `XEN_HYPFS_OP_get_version`.
const XEN_HYPFS_OP_GET_VERSION: usize = 0;
/// `XEN_HYPFS_VERSION` (`public/hypfs.h`), what `get_version` answers.
const XEN_HYPFS_VERSION: isize = 1;

/// A zeroed `struct xen_sysctl`-sized buffer: its `interface_version` 0 is not Xen's, so `sysctl` answers
/// `-EACCES` after reading it, without acting.
#[repr(C, align(8))]
pub struct SysctlBuf([u8; 256]);

/// `struct gnttab_query_size` (`public/grant_table.h`): 16 bytes.
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct QuerySize {
    dom: u16,
    nr_frames: u32,
    max_nr_frames: u32,
    status: i16,
}

/// `xen_version`'s 16-byte `xen_extraversion_t`.
#[repr(C, align(8))]
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Extra([u8; 16]);

/// Arity 1: `sysctl(&buf)` twice.
#[inline(never)]
#[unsafe(no_mangle)]
pub fn pair1_sysctl(buf: &mut SysctlBuf) -> (isize, isize) {
    let op = black_box(nr::SYSCTL);
    let p = black_box(buf as *mut SysctlBuf as usize);
    // SAFETY: sysctl (declared arity 1) reads `*buf`, a live 256-byte buffer (larger than `xen_sysctl`),
    // and with a wrong interface version writes nothing.
    let a = unsafe { hypercall1(op, p) };
    // SAFETY: as above.
    let b = unsafe { hypercall1(op, p) };
    (a, b)
}

/// Arity 2: `xen_version(XENVER_extraversion, &extra)` twice, the first answer copied out in between.
#[inline(never)]
#[unsafe(no_mangle)]
pub fn pair2_xen_version(extra: &mut Extra, first: &mut Extra) -> (isize, isize) {
    let op = black_box(nr::XEN_VERSION);
    let cmd = black_box(XENVER_EXTRAVERSION);
    let p = black_box(extra as *mut Extra as usize);
    // SAFETY: xen_version (declared arity 2) writes 16 bytes at `p`, a live `Extra`.
    let a = unsafe { hypercall2(op, cmd, p) };
    *first = *extra;
    *extra = Extra([0; 16]);
    // SAFETY: as above.
    let b = unsafe { hypercall2(op, cmd, p) };
    (a, b)
}

/// Arity 3: `grant_table_op(GNTTABOP_query_size, &q, 1)` twice.
#[inline(never)]
#[unsafe(no_mangle)]
pub fn pair3_grant_table_op(q: &mut QuerySize, first: &mut QuerySize) -> (isize, isize) {
    let op = black_box(nr::GRANT_TABLE_OP);
    let cmd = black_box(GNTTABOP_QUERY_SIZE);
    let p = black_box(q as *mut QuerySize as usize);
    let count = black_box(1);
    // SAFETY: grant_table_op (declared arity 3) reads and writes one `gnttab_query_size` at `p`, a live
    // `QuerySize`.
    let a = unsafe { hypercall3(op, cmd, p, count) };
    *first = *q;
    *q = QuerySize {
        dom: DomId::SELF.0,
        ..QuerySize::default()
    };
    // SAFETY: as above.
    let b = unsafe { hypercall3(op, cmd, p, count) };
    (a, b)
}

/// Arity 4: the same `grant_table_op` through the 4-argument stub (Xen ignores the fourth register; the
/// stub declares it clobbered, more than Xen's arity 3 requires, which is safe).
#[inline(never)]
#[unsafe(no_mangle)]
pub fn pair4_grant_table_op(q: &mut QuerySize, first: &mut QuerySize) -> (isize, isize) {
    let op = black_box(nr::GRANT_TABLE_OP);
    let cmd = black_box(GNTTABOP_QUERY_SIZE);
    let p = black_box(q as *mut QuerySize as usize);
    let count = black_box(1);
    let unused = black_box(0);
    // SAFETY: as in `pair3_grant_table_op`; the stub's arity (4) is at least the declared one (3).
    let a = unsafe { hypercall4(op, cmd, p, count, unused) };
    *first = *q;
    *q = QuerySize {
        dom: DomId::SELF.0,
        ..QuerySize::default()
    };
    // SAFETY: as above.
    let b = unsafe { hypercall4(op, cmd, p, count, unused) };
    (a, b)
}

/// Arity 5: `hypfs_op(XEN_HYPFS_OP_get_version, NULL, 0, NULL, 0)` twice; Xen answers `-EINVAL` unless all
/// four arguments after the command are zero.
#[inline(never)]
#[unsafe(no_mangle)]
pub fn pair5_hypfs_op() -> (isize, isize) {
    let op = black_box(nr::HYPFS_OP);
    let cmd = black_box(XEN_HYPFS_OP_GET_VERSION);
    let (a1, a2, a3, a4) = (black_box(0), black_box(0), black_box(0), black_box(0));
    // SAFETY: hypfs_op (declared arity 5) with get_version and null handles touches no memory.
    let a = unsafe { hypercall5(op, cmd, a1, a2, a3, a4) };
    // SAFETY: as above.
    let b = unsafe { hypercall5(op, cmd, a1, a2, a3, a4) };
    (a, b)
}

/// The negative control: `grant_table_op(GNTTABOP_query_size, &q, 1)` twice through a stub of this guest's
/// own that declares the third argument register (the count) preserved, although Xen's declared arity (3)
/// includes it. Release Xen leaves it alone and both calls succeed; debug Xen poisons it, the second call
/// passes a count of `0xdeadbeef`, and Xen refuses it.
#[cfg(feature = "underdeclared")]
#[inline(never)]
#[unsafe(no_mangle)]
pub fn pair3_underdeclared(q: &mut QuerySize, first: &mut QuerySize) -> (isize, isize) {
    /// The wrong stub.
    ///
    /// # Safety
    ///
    /// `p` must point to a live `QuerySize`; the caller must not rely on `count`'s register afterwards
    /// (which the compiler will, and that is the point of this control).
    #[inline(always)]
    unsafe fn wrong3(op: usize, cmd: usize, p: usize, count: usize) -> isize {
        let ret: isize;
        // SAFETY: the caller's contract; the register declaration is deliberately one short of Xen's.
        #[cfg(target_arch = "aarch64")]
        unsafe {
            core::arch::asm!(
                "hvc #0xEA1",
                inout("x16") op => _,
                inout("x0") cmd => ret,
                inout("x1") p => _,
                in("x2") count,
                options(nostack),
            );
        }
        // SAFETY: as above.
        #[cfg(target_arch = "arm")]
        unsafe {
            core::arch::asm!(
                ".arch_extension virt",
                "hvc #0xEA1",
                inout("r12") op => _,
                inout("r0") cmd => ret,
                inout("r1") p => _,
                in("r2") count,
                options(nostack),
            );
        }
        ret
    }
    let op = black_box(nr::GRANT_TABLE_OP);
    let cmd = black_box(GNTTABOP_QUERY_SIZE);
    let p = black_box(q as *mut QuerySize as usize);
    let count = black_box(1);
    // SAFETY: `p` is a live `QuerySize`; the wrong declaration is this control's purpose.
    let a = unsafe { wrong3(op, cmd, p, count) };
    *first = *q;
    *q = QuerySize {
        dom: DomId::SELF.0,
        ..QuerySize::default()
    };
    // SAFETY: as above.
    let b = unsafe { wrong3(op, cmd, p, count) };
    (a, b)
}

fn signed(l: Line, v: isize) -> Line {
    if v < 0 {
        l.s("-").dec(v.unsigned_abs() as u64)
    } else {
        l.dec(v as u64)
    }
}

/// `first R, second R` and a verdict: both equal and as expected.
fn report(c: &mut Checks, name: &str, (a, b): (isize, isize), expected: isize, same_data: bool) {
    let line = signed(Line::new().s("first "), a);
    let line = signed(line.s(", second "), b);
    let line = signed(line.s(" (expected "), expected).s(")");
    let line = if same_data {
        line
    } else {
        line.s(", the data written differ")
    };
    c.check(name, a == expected && b == expected && same_data, line);
}

fn query_size_pair(
    c: &mut Checks,
    name: &str,
    f: fn(&mut QuerySize, &mut QuerySize) -> (isize, isize),
) {
    let new = || QuerySize {
        dom: DomId::SELF.0,
        ..QuerySize::default()
    };
    let (mut q, mut first) = (new(), new());
    let r = f(&mut q, &mut first);
    let same = q == first && q.status == 0 && q.nr_frames >= 1;
    report(c, name, r, 0, same);
}

/// Runs every pair and reports one check per pair.
pub fn run(c: &mut Checks) {
    let mut buf = SysctlBuf([0; 256]);
    report(
        c,
        "pair1 sysctl (raw)",
        pair1_sysctl(&mut buf),
        -(xen::Error::EACCES.errno() as isize),
        true,
    );

    let (mut extra, mut first) = (Extra([0; 16]), Extra([0xff; 16]));
    let r = pair2_xen_version(&mut extra, &mut first);
    report(
        c,
        "pair2 xen_version extraversion (raw)",
        r,
        0,
        extra == first,
    );

    let (a, b) = pair2_typed_extraversion();
    let name = "pair2 version::extraversion (typed)";
    match (a, b) {
        (Ok(x), Ok(y)) => c.check(
            name,
            x.as_bytes() == y.as_bytes(),
            Line::new()
                .s("first ")
                .bytes(x.as_bytes())
                .s(", second ")
                .bytes(y.as_bytes()),
        ),
        (Err(e), _) | (_, Err(e)) => c.fail(name, Line::new().err(e)),
    }

    query_size_pair(
        c,
        "pair3 grant_table_op query_size (raw)",
        pair3_grant_table_op,
    );

    let (a, b) = pair3_typed_query_size();
    let name = "pair3 grant_table::query_size (typed)";
    match (a, b) {
        (Ok(x), Ok(y)) => c.check(
            name,
            x == y,
            Line::new()
                .s("first ")
                .dec(x.nr_frames as u64)
                .s("/")
                .dec(x.max_nr_frames as u64)
                .s(", second ")
                .dec(y.nr_frames as u64)
                .s("/")
                .dec(y.max_nr_frames as u64),
        ),
        (Err(e), _) | (_, Err(e)) => match e {
            grant_table::GrantError::Xen(e) => c.fail(name, Line::new().err(e)),
            _ => c.fail(name, Line::new().s("grant status error")),
        },
    }

    query_size_pair(
        c,
        "pair4 grant_table_op query_size, 4-argument stub (raw)",
        pair4_grant_table_op,
    );

    report(
        c,
        "pair5 hypfs_op get_version (raw)",
        pair5_hypfs_op(),
        XEN_HYPFS_VERSION,
        true,
    );

    #[cfg(feature = "underdeclared")]
    query_size_pair(
        c,
        "pair3 under-declared stub (control)",
        pair3_underdeclared,
    );
}
