//! The block benchmark's Linux side (`cargo bench --bench blk`): times a workload the way the library's
//! frontend times its own (`guests/src/bin/xl_blk.rs`'s `bench_run`), in one process, one synchronous
//! transfer after another, so that the two columns measure the same thing.
//!
//! `linux-blkio DEVICE read|write seq|rand SIZE COUNT` opens DEVICE with `O_DIRECT`, moves COUNT
//! transfers of SIZE bytes (`seq`: one after another from offset 0; `rand`: at `x % 1024 × SIZE` for the
//! frontend's xorshift sequence `x`, seeded `0x2545f491`), and prints `ns NANOSECONDS` (the
//! `CLOCK_MONOTONIC` time of the transfers, which on arm64 is the generic timer the frontend reads), or
//! `error STEP ERRNO` and exits 1.
//!
//! Linux/arm64 static executable without libc: `aarch64-unknown-none` code, system calls by `svc #0` (number
//! in x8, arguments in x0–x5, result in x0, a negative errno on failure).

#![no_std]
#![no_main]

#[cfg(not(target_arch = "aarch64"))]
compile_error!("linux-blkio is a Linux/arm64 program: build it for aarch64-unknown-none");

use core::arch::{asm, global_asm};
use core::fmt;

/// The largest transfer: the benchmark's 1 MiB ones.
const MAX_SIZE: usize = 1 << 20;

/// Linux/arm64 system call numbers (`include/uapi/asm-generic/unistd.h`).
mod nr {
    pub const OPENAT: usize = 56;
    pub const CLOSE: usize = 57;
    pub const WRITE: usize = 64;
    pub const PREAD64: usize = 67;
    pub const PWRITE64: usize = 68;
    pub const EXIT_GROUP: usize = 94;
    pub const CLOCK_GETTIME: usize = 113;
}

/// `AT_FDCWD`, and arm64's open flags (`arch/arm64/include/uapi/asm/fcntl.h`: `O_DIRECT` is 0o200000
/// there, not x86's 0o40000).
const AT_FDCWD: isize = -100;
const O_RDWR: usize = 0o2;
const O_DIRECT: usize = 0o200000;
const CLOCK_MONOTONIC: usize = 1;

/// The transfer buffer: `O_DIRECT` wants it aligned to the logical block size; a page is enough.
#[repr(C, align(4096))]
struct Buffer([u8; MAX_SIZE]);

static mut BUFFER: Buffer = Buffer([0; MAX_SIZE]);

// The kernel enters with `sp` at `argc`, then the `argv` pointers.
global_asm!(
    ".globl _start",
    "_start:",
    "mov x0, sp",
    "bl {main}",
    main = sym main,
);

/// One Linux system call.
///
/// # Safety
/// The arguments must be what system call `nr` expects: pointers valid for what it reads or writes.
unsafe fn syscall(nr: usize, a: [usize; 4]) -> isize {
    let ret: isize;
    // SAFETY: `svc #0` enters the kernel, which reads x8 and x0–x3, writes x0 and preserves every other
    // register; the memory it touches is the caller's contract.
    unsafe {
        asm!("svc #0", in("x8") nr, inlateout("x0") a[0] => ret, in("x1") a[1], in("x2") a[2],
             in("x3") a[3], options(nostack));
    }
    ret
}

fn write_out(s: &[u8]) {
    // SAFETY: `write(1, s, len)` reads `s` only.
    unsafe { syscall(nr::WRITE, [1, s.as_ptr() as usize, s.len(), 0]) };
}

fn exit(code: usize) -> ! {
    // SAFETY: `exit_group` takes a number and does not return.
    unsafe { syscall(nr::EXIT_GROUP, [code, 0, 0, 0]) };
    // Not reached: `exit_group` ends every thread.
    loop {
        core::hint::spin_loop();
    }
}

/// One line of output, formatted on the stack.
struct Line {
    buf: [u8; 80],
    len: usize,
}

impl fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        self.buf
            .get_mut(self.len..end)
            .ok_or(fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Prints `args` and a newline (cut at 79 bytes).
fn say(args: fmt::Arguments<'_>) {
    let mut line = Line {
        buf: [0; 80],
        len: 0,
    };
    let _ = fmt::Write::write_fmt(&mut line, args);
    line.buf[line.len] = b'\n';
    write_out(&line.buf[..=line.len]);
}

/// Prints `error STEP ERRNO` and exits 1.
fn fail(step: &str, ret: isize) -> ! {
    say(format_args!("error {step} {}", ret.unsigned_abs()));
    exit(1)
}

fn monotonic_ns() -> u64 {
    let mut ts = [0i64; 2];
    // SAFETY: `clock_gettime` writes one `struct timespec` (two 64-bit words on arm64) at `ts`.
    let r = unsafe {
        syscall(
            nr::CLOCK_GETTIME,
            [CLOCK_MONOTONIC, ts.as_mut_ptr() as usize, 0, 0],
        )
    };
    if r < 0 {
        fail("clock_gettime", r);
    }
    ts[0] as u64 * 1_000_000_000 + ts[1] as u64
}

/// The NUL-terminated string at `p`.
///
/// # Safety
/// `p` must point at a NUL-terminated string that lives as long as the process (an `argv` entry).
unsafe fn c_str(p: *const u8) -> &'static [u8] {
    let mut n = 0;
    // SAFETY: the string is NUL-terminated: every byte read up to the NUL is inside it.
    while unsafe { *p.add(n) } != 0 {
        n += 1;
    }
    // SAFETY: the `n` bytes before the NUL, valid for the process's life.
    unsafe { core::slice::from_raw_parts(p, n) }
}

fn decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |v, &c| {
        c.is_ascii_digit()
            .then(|| v.checked_mul(10)?.checked_add(u64::from(c - b'0')))?
    })
}

fn usage() -> ! {
    write_out(b"usage: linux-blkio DEVICE read|write seq|rand SIZE COUNT\n");
    exit(2)
}

/// The program, from the process's initial stack.
extern "C" fn main(sp: *const usize) -> ! {
    // SAFETY: the kernel's initial stack: `argc`, then `argc` pointers to NUL-terminated strings.
    let argc = unsafe { *sp };
    if argc != 6 {
        usage();
    }
    // SAFETY: as above, `argv[0..argc]` follow `argc`.
    let arg = |i: usize| unsafe { c_str(*sp.add(1 + i) as *const u8) };
    let (device, op, order) = (arg(1), arg(2), arg(3));
    let write = match op {
        b"read" => false,
        b"write" => true,
        _ => usage(),
    };
    let random = match order {
        b"seq" => false,
        b"rand" => true,
        _ => usage(),
    };
    let (Some(size), Some(count)) = (decimal(arg(4)), decimal(arg(5))) else {
        usage()
    };
    let size = size as usize;
    if size == 0 || size > MAX_SIZE || !size.is_multiple_of(512) {
        usage();
    }
    // SAFETY: `openat` reads the NUL-terminated path (an `argv` entry, so its NUL follows `device`).
    let fd = unsafe {
        syscall(
            nr::OPENAT,
            [
                AT_FDCWD as usize,
                device.as_ptr() as usize,
                O_RDWR | O_DIRECT,
                0,
            ],
        )
    };
    if fd < 0 {
        fail("open", fd);
    }
    let buffer = (&raw mut BUFFER).cast::<u8>() as usize;
    let mut x: u32 = 0x2545_f491;
    let t0 = monotonic_ns();
    for k in 0..count {
        let offset = if random {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            u64::from(x % 1024) * size as u64
        } else {
            k * size as u64
        };
        let call = if write { nr::PWRITE64 } else { nr::PREAD64 };
        // SAFETY: `pread64`/`pwrite64` write or read `size` bytes of BUFFER (1 MiB, `size` at most that),
        // which nothing else in this single-threaded program uses.
        let r = unsafe { syscall(call, [fd as usize, buffer, size, offset as usize]) };
        if r < 0 {
            fail(if write { "pwrite64" } else { "pread64" }, r);
        }
        if r as usize != size {
            fail("short-transfer", r);
        }
    }
    let ns = monotonic_ns() - t0;
    // SAFETY: `close` takes a descriptor.
    unsafe { syscall(nr::CLOSE, [fd as usize, 0, 0, 0]) };
    say(format_args!("ns {ns}"));
    exit(0)
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    write_out(b"error panic 0\n");
    exit(1)
}
