//! A minimal Xen dom0 unikernel that uses only `xen-hypercall`'s public API.
//!
//! It greets, reports Xen's version, exercises event channels, the grant table, an HVM parameter, vCPU
//! registration, a multicall batch and the raw stubs, prints one line per check (`ok <name>` or
//! `FAIL <name>: <detail>`) and a summary, and powers the machine off. It builds for AArch64, A32 and
//! Thumb-2 (the 32-bit ones run as a 32-bit dom0 on Xen for arm64); with the `outline` feature the typed
//! API calls the out-of-line stubs.
//!
//! `cargo xtask xen` builds it and boots it on Xen under QEMU; `cargo xtask demo` shows what it prints.
//! The output is formatted by hand (no `core::fmt`), which keeps the image small and free of absolute
//! addresses in code.

#![no_std]
#![no_main]

#[allow(dead_code)]
mod common;
mod entry;
mod mmu;
mod pairs;

use common::{Checks, Line};

use xen_hypercall::xen::evtchn::{self, State};
use xen_hypercall::xen::multicall::{Batch, Call, CallError};
use xen_hypercall::xen::sched::{self, ShutdownReason};
use xen_hypercall::xen::{self, DomId, console, grant_table, hvm, vcpu, version};

/// A hypercall number Xen does not have (numbers beyond its table return `-ENOSYS`).
const UNKNOWN_HYPERCALL: usize = 63;

/// A page of the guest's own for `register_vcpu_info` (identity-mapped: its address is its guest frame).
#[repr(C, align(4096))]
struct Page(vcpu::VcpuInfo);
// SAFETY: `VcpuInfo` is plain integers, for which all-zero bytes are a valid value.
static mut VCPU_INFO: Page = Page(unsafe { core::mem::zeroed() });

/// The guest's execution state, as observed: on 32-bit ARM the address of a Thumb function has bit 0 set.
fn arch() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "AArch64"
    } else if (guest_main as *const () as usize) & 1 == 1 {
        "Thumb-2"
    } else {
        "A32"
    }
}

fn stubs() -> &'static str {
    if cfg!(feature = "outline") {
        "out-of-line stubs"
    } else {
        "inline stubs"
    }
}

/// The guest: called by the entry code with the device tree's address.
#[unsafe(no_mangle)]
pub extern "C" fn guest_main(dtb: usize) -> ! {
    Line::new()
        .s(if arch().starts_with('A') {
            "Hello from an "
        } else {
            "Hello from a "
        })
        .s(arch())
        .s(" dom0 on Xen, using xen-hypercall (")
        .s(stubs())
        .s(")")
        .print("");
    // dom0's lines are not prefixed: Xen prints them as they are.
    let mut c = Checks::new("");

    match version::version() {
        Ok(v) => {
            let extra = version::extraversion();
            let line = Line::new()
                .s("Xen ")
                .dec(v.major as u64)
                .s(".")
                .dec(v.minor as u64);
            let line = match &extra {
                Ok(e) => line.bytes(e.as_bytes()),
                Err(e) => line.s(" (extraversion: ").err(*e).s(")"),
            };
            c.check("version", v.major >= 4 && extra.is_ok(), line);
        }
        Err(e) => c.fail("version", Line::new().err(e)),
    }

    event_channels(&mut c);

    match grant_table::query_size(DomId::SELF) {
        Ok(q) => c.check(
            "grant_table::query_size",
            q.nr_frames >= 1 && q.max_nr_frames >= q.nr_frames,
            Line::new()
                .dec(q.nr_frames as u64)
                .s(" frame(s) of ")
                .dec(q.max_nr_frames as u64),
        ),
        Err(grant_table::GrantError::Xen(e)) => {
            c.fail("grant_table::query_size", Line::new().err(e))
        }
        Err(grant_table::GrantError::Status(s)) => c.fail(
            "grant_table::query_size",
            Line::new()
                .s("status -")
                .dec(s.code().unsigned_abs().into()),
        ),
    }

    match hvm::get_param(DomId::SELF, hvm::Param::CALLBACK_IRQ) {
        // Bits 63:56 give the callback type; 2 is a PPI on ARM.
        Ok(v) => c.check(
            "hvm::get_param(CALLBACK_IRQ)",
            v >> 56 == 2,
            Line::new().hex(v).s(" (PPI)"),
        ),
        Err(e) => c.fail("hvm::get_param(CALLBACK_IRQ)", Line::new().err(e)),
    }

    // SAFETY: VCPU_INFO is a page-aligned static of this image that nothing else uses; Xen keeps writing
    // it from now on, which is what it is for. The MMU maps it to itself, so its address is its guest
    // frame.
    let first = unsafe { vcpu::register_vcpu_info_at(0, &raw mut VCPU_INFO.0) };
    c.check(
        "vcpu::register_vcpu_info",
        first.is_ok(),
        result_line(first.map(|()| 0)),
    );
    // SAFETY: as above; Xen refuses a second registration.
    let second = unsafe { vcpu::register_vcpu_info_at(0, &raw mut VCPU_INFO.0) };
    c.check(
        "vcpu::register_vcpu_info again",
        second == Err(xen::Error::EINVAL),
        result_line(second.map(|()| 0)).s(" (EINVAL expected)"),
    );

    multicall(&mut c);

    // How the MMU maps a page shared with Xen (VCPU_INFO), the stack, the grant-table region the device
    // tree gives (where Xen put it for dom0), and QEMU virt's GIC distributor and PL011 (dom0 sees the
    // host's devices at the host's addresses); judged by the harness.
    let stack = 0u64;
    let grant_table = mmu::grant_table_region(dtb).map(|a| ("GNTTAB", a as usize));
    for (name, address) in [
        ("STATIC", &raw const VCPU_INFO as usize),
        ("STACK", &raw const stack as usize),
        ("GIC", 0x0800_0000),
        ("UART", 0x0900_0000),
    ]
    .into_iter()
    .chain(grant_table)
    {
        mmu::par_line(name, address).print("");
    }

    // The same call twice, arity 1 to 5: only exact clobbers pass on a debug Xen.
    pairs::run(&mut c);

    // The raw API: a number Xen does not have.
    // SAFETY: an unknown hypercall number touches no memory; Xen answers -ENOSYS.
    #[cfg(not(feature = "outline"))]
    let raw = unsafe { xen_hypercall::hypercall!(UNKNOWN_HYPERCALL, 0, 0) };
    // SAFETY: as above, through the out-of-line stub of the same arity.
    #[cfg(feature = "outline")]
    let raw = unsafe { xen_hypercall::outline::hypercall2(UNKNOWN_HYPERCALL, 0, 0) };
    c.check(
        "raw hypercall 63",
        raw == -(xen::Error::ENOSYS.errno() as isize),
        Line::new()
            .s("returned -")
            .dec(raw.unsigned_abs() as u64)
            .s(" (ENOSYS expected)"),
    );

    c.summary();
    let reason = if c.failed == 0 {
        ShutdownReason::Poweroff
    } else {
        ShutdownReason::Crash
    };
    let _ = sched::shutdown(reason);
    halt()
}

fn result_line(r: xen::Result<u64>) -> Line {
    match r {
        Ok(v) => Line::new().s("returned ").dec(v),
        Err(e) => Line::new().err(e),
    }
}

fn event_channels(c: &mut Checks) {
    let port = match evtchn::alloc_unbound(DomId::SELF, DomId::SELF) {
        Ok(p) => {
            c.ok(
                "evtchn::alloc_unbound",
                Line::new().s("port ").dec(p.0 as u64),
            );
            p
        }
        Err(e) => return c.fail("evtchn::alloc_unbound", Line::new().err(e)),
    };
    let sent = evtchn::send(port);
    c.check("evtchn::send", sent.is_ok(), result_line(sent.map(|()| 0)));
    match evtchn::status(port) {
        Ok(s) => c.check(
            "evtchn::status",
            matches!(s.state, State::Unbound { .. }),
            Line::new().s(if matches!(s.state, State::Unbound { .. }) {
                "unbound"
            } else {
                "not unbound"
            }),
        ),
        Err(e) => c.fail("evtchn::status", Line::new().err(e)),
    }
    let closed = evtchn::close(port);
    c.check(
        "evtchn::close",
        closed.is_ok(),
        result_line(closed.map(|()| 0)),
    );
    let again = evtchn::send(port);
    c.check(
        "evtchn::send after close",
        again == Err(xen::Error::EINVAL),
        result_line(again.map(|()| 0)).s(" (EINVAL expected)"),
    );
}

fn multicall(c: &mut Checks) {
    let mut batch: Batch<'_, 4> = Batch::new();
    // SAFETY: an unknown hypercall number with zero arguments touches no memory.
    let unknown = unsafe { Call::raw(UNKNOWN_HYPERCALL, [0; 6]) };
    let pushed = batch.push(Call::xen_version()).is_ok()
        && batch.push(Call::pagesize()).is_ok()
        && batch.push(unknown).is_ok();
    if !pushed {
        return c.fail("multicall", Line::new().s("batch full"));
    }
    let results = batch.submit();
    if let Err(e) = results.status() {
        return c.fail("multicall", Line::new().err(e));
    }
    let (v, p, u) = (results.get(0), results.get(1), results.get(2));
    let good = matches!(v, Some(Ok(x)) if x >> 16 >= 4)
        && p == Some(Ok(4096))
        && u == Some(Err(CallError::Failed(xen::Error::ENOSYS)));
    let show = |l: Line, r: Option<Result<u64, CallError>>| match r {
        Some(Ok(x)) => l.hex(x),
        Some(Err(e)) => l.s("-").dec(xen::Error::from(e).errno() as u64),
        None => l.s("none"),
    };
    let line = show(Line::new().s("[version "), v);
    let line = show(line.s(", pagesize "), p);
    let line = show(line.s(", unknown "), u).s("]");
    c.check("multicall [version, pagesize, unknown]", good, line);
}

fn halt() -> ! {
    loop {
        core::hint::spin_loop();
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    let _ = console::write(b"FAIL panic\n");
    let _ = sched::shutdown(ShutdownReason::Crash);
    halt()
}
