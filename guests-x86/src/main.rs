//! An example x86-64 Xen dom0: one ELF that boots as a 64-bit PV dom0 and as a PVH dom0 (`entry.rs`),
//! prints over `console_io`, checks Xen's answers to version, event-channel, grant-table and multicall
//! requests, makes the same call twice for each arity 1 to 5 (`pairs.rs`), and powers off.
//!
//! Built with the inline stubs (feature `pv`: `syscall`, feature `amd`: `vmmcall`) it serves the guest type
//! its trap suits; built with `outline` it calls through the hypercall page, which Xen writes for a PV
//! guest (ELF note) and which a PVH guest registers (CPUID + MSR), and serves both.

#![no_std]
#![no_main]

mod entry;
mod pairs;

use core::fmt::Write;

#[cfg(feature = "outline")]
use xen_hypercall::outline::{hypercall2, hypercall3};
#[cfg(not(feature = "outline"))]
use xen_hypercall::{hypercall2, hypercall3};

/// Hypercall numbers (`public/xen.h`).
pub mod nr {
    pub const MULTICALL: usize = 13;
    pub const XEN_VERSION: usize = 17;
    pub const CONSOLE_IO: usize = 18;
    pub const GRANT_TABLE_OP: usize = 20;
    pub const SCHED_OP: usize = 29;
    pub const EVENT_CHANNEL_OP: usize = 32;
    pub const SYSCTL: usize = 35;
    pub const HYPFS_OP: usize = 42;
}

const DOMID_SELF: u16 = 0x7ff0;
const EINVAL: isize = -22;
const ENOSYS: isize = -38;

/// Writes `s` to Xen's console.
pub fn console(s: &[u8]) {
    // SAFETY: console_io(CONSOLEIO_write, len, buf) (arity 3) reads `len` bytes at `buf`, a live slice.
    unsafe { hypercall3(nr::CONSOLE_IO, 0, s.len(), s.as_ptr() as usize) };
}

/// One console line, formatted into a fixed buffer.
pub struct Line {
    buf: [u8; 200],
    len: usize,
}

impl Default for Line {
    fn default() -> Line {
        Line::new()
    }
}

impl Line {
    pub fn new() -> Line {
        Line {
            buf: [0; 200],
            len: 0,
        }
    }

    pub fn send(mut self) {
        let _ = self.write_str("\n");
        console(&self.buf[..self.len]);
    }
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// Counts and prints the checks: `ok <name>: <detail>` or `FAIL <name>: <detail>`.
pub struct Checks {
    pub passed: usize,
    pub failed: usize,
}

impl Checks {
    pub fn check(&mut self, name: &str, ok: bool, detail: core::fmt::Arguments) {
        let mut l = Line::new();
        let _ = write!(l, "{} {name}: {detail}", if ok { "ok" } else { "FAIL" });
        l.send();
        if ok {
            self.passed += 1;
        } else {
            self.failed += 1;
        }
    }
}

/// `struct evtchn_alloc_unbound`.
#[repr(C)]
struct AllocUnbound {
    dom: u16,
    remote_dom: u16,
    port: u32,
}

/// x86-64 `struct multicall_entry`.
#[repr(C)]
#[derive(Clone, Copy)]
struct MulticallEntry {
    op: u64,
    result: u64,
    args: [u64; 6],
}

fn shutdown(reason: u32) -> ! {
    let r = reason;
    loop {
        // SAFETY: sched_op(SCHEDOP_shutdown, &reason) (arity 2) reads a `struct sched_shutdown` (one u32).
        unsafe { hypercall2(nr::SCHED_OP, 2, &r as *const u32 as usize) };
    }
}

#[unsafe(no_mangle)]
extern "C" fn guest_main(pvh: u64) -> ! {
    let pvh = pvh != 0;
    #[cfg(feature = "outline")]
    if pvh {
        // SAFETY: ring 0 of a PVH guest; paging is identity-mapped, so the page's address is its guest
        // physical address; nothing uses the page before this.
        let r = unsafe {
            xen_hypercall::outline::page::register_hvm(
                xen_hypercall::outline::page::page_address() as u64
            )
        };
        if r.is_err() {
            // No console without the page: crash, which Xen reports.
            shutdown(3);
        }
    }
    let stubs = if cfg!(feature = "outline") {
        "the hypercall page"
    } else {
        xen_hypercall::arch::TRAP
    };
    let mut l = Line::new();
    let _ = write!(
        l,
        "hello from an x86-64 {} dom0 (stubs: {stubs})",
        if pvh { "PVH" } else { "PV" }
    );
    l.send();
    let mut c = Checks {
        passed: 0,
        failed: 0,
    };

    // SAFETY: xen_version(XENVER_version, NULL) (arity 2) reads no memory.
    let v = unsafe { hypercall2(nr::XEN_VERSION, 0, 0) };
    c.check(
        "version",
        v == 0x40011,
        format_args!("Xen {}.{}", v >> 16, v & 0xffff),
    );

    let mut a = AllocUnbound {
        dom: DOMID_SELF,
        remote_dom: DOMID_SELF,
        port: 0,
    };
    // SAFETY: event_channel_op(EVTCHNOP_alloc_unbound, &a) (arity 2) reads and writes `a`.
    let r = unsafe { hypercall2(nr::EVENT_CHANNEL_OP, 6, &mut a as *mut _ as usize) };
    c.check(
        "evtchn::alloc_unbound",
        r == 0 && a.port != 0,
        format_args!("result {r}, port {}", a.port),
    );
    let port = a.port;
    // SAFETY: event_channel_op(EVTCHNOP_send, &port) (arity 2) reads one u32.
    let r = unsafe { hypercall2(nr::EVENT_CHANNEL_OP, 4, &port as *const u32 as usize) };
    c.check("evtchn::send", r == 0, format_args!("result {r}"));
    // SAFETY: event_channel_op(EVTCHNOP_close, &port) (arity 2) reads one u32.
    let r = unsafe { hypercall2(nr::EVENT_CHANNEL_OP, 3, &port as *const u32 as usize) };
    c.check("evtchn::close", r == 0, format_args!("result {r}"));
    // SAFETY: as for send.
    let r = unsafe { hypercall2(nr::EVENT_CHANNEL_OP, 4, &port as *const u32 as usize) };
    c.check(
        "evtchn::send after close",
        r == EINVAL,
        format_args!("result {r} (-EINVAL expected)"),
    );

    let mut q = pairs::QuerySize::new();
    // SAFETY: grant_table_op(GNTTABOP_query_size, &q, 1) (arity 3) reads and writes one `q`.
    let r = unsafe { hypercall3(nr::GRANT_TABLE_OP, 6, &mut q as *mut _ as usize, 1) };
    c.check(
        "grant_table::query_size",
        r == 0 && q.status == 0 && q.max_nr_frames > 0,
        format_args!(
            "result {r}, status {}, {} of {} frames",
            q.status, q.nr_frames, q.max_nr_frames
        ),
    );

    let mut calls = [
        MulticallEntry {
            op: nr::XEN_VERSION as u64,
            result: 0,
            args: [0; 6],
        },
        MulticallEntry {
            op: nr::XEN_VERSION as u64,
            result: 0,
            args: [7, 0, 0, 0, 0, 0],
        },
        MulticallEntry {
            op: 63,
            result: 0,
            args: [0; 6],
        },
    ];
    // SAFETY: multicall(list, 3) (arity 2) reads and writes three live entries.
    let r = unsafe { hypercall2(nr::MULTICALL, calls.as_mut_ptr() as usize, calls.len()) };
    let res = [
        calls[0].result as isize,
        calls[1].result as isize,
        calls[2].result as isize,
    ];
    c.check(
        "multicall [version, pagesize, unknown]",
        r == 0 && res == [0x40011, 4096, ENOSYS],
        format_args!("result {r}, entries {:#x} {} {}", res[0], res[1], res[2]),
    );

    pairs::run(&mut c);

    let mut l = Line::new();
    if c.failed == 0 {
        let _ = write!(l, "summary: all {} checks passed", c.passed);
        l.send();
        shutdown(0);
    }
    let _ = write!(
        l,
        "summary: {} of {} checks failed",
        c.failed,
        c.passed + c.failed
    );
    l.send();
    shutdown(3)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    let mut l = Line::new();
    let _ = write!(l, "FAIL panic: {}", info.message());
    l.send();
    shutdown(3)
}
