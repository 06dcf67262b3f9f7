//! An example x86-64 Xen dom0: one ELF that boots as a 64-bit PV dom0 and as a PVH dom0 (`entry.rs`),
//! prints over `console_io`, checks Xen's answers to version, event-channel, grant-table and multicall
//! requests through the typed API (`xen_hypercall::xen`), reads what it was entered with (PVH: the
//! `hvm_start_info`; PV: the `start_info`), asks for events on an interrupt vector, makes the same call
//! twice for each arity 1 to 5 through the raw stubs and for arity 2 and 3 through the typed API
//! (`pairs.rs`), and powers off. It maps the shared info page (PVH: `add_to_physmap`; PV:
//! `update_va_mapping` to the machine frame `start_info` names) and sees an event it sent itself pending
//! there (x86-64's layout of `shared_info`); as a PVH dom0 it also registers its `vcpu_info`, installs an
//! IDT and takes events as interrupts on the callback vector (`events.rs`).
//!
//! Built with the inline stubs (feature `pv`: `syscall`, feature `amd`: `vmmcall`) it serves the guest type
//! its trap suits; built with `outline` it calls through the hypercall page, which Xen writes for a PV
//! guest (ELF note) and which a PVH guest registers (CPUID + MSR), and serves both.

#![no_std]
#![no_main]

mod checks;
mod entry;
mod events;
mod pairs;
mod pvh;
mod timing;

use core::fmt::Write;

use checks::{Checks, Line, failed};
use events::CALLBACK_VECTOR;

use xen_hypercall::xen::evtchn::{self, State};
use xen_hypercall::xen::multicall::{Batch, Call, CallError};
use xen_hypercall::xen::pvh::HvmStartInfo;
use xen_hypercall::xen::sched::{self, ShutdownReason};
use xen_hypercall::xen::{self, DomId, grant_table, hvm, version};

/// A hypercall number Xen does not have.
const UNKNOWN_HYPERCALL: usize = 63;

fn shutdown(reason: ShutdownReason) -> ! {
    loop {
        let _ = sched::shutdown(reason);
    }
}

#[unsafe(no_mangle)]
extern "C" fn guest_main(pvh: u64, start_info: u64) -> ! {
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
            shutdown(ShutdownReason::Crash);
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

    match (version::version(), version::extraversion()) {
        (Ok(v), Ok(e)) => c.check(
            "version",
            v.major == 4 && v.minor == 17 && e.as_bytes().first() == Some(&b'.'),
            format_args!(
                "Xen {v}{}",
                core::str::from_utf8(e.as_bytes()).unwrap_or("?")
            ),
        ),
        (Err(e), _) | (_, Err(e)) => failed(&mut c, "version", e),
    }

    event_channels(&mut c);

    match grant_table::query_size(DomId::SELF) {
        Ok(q) => c.check(
            "grant_table::query_size",
            q.nr_frames >= 1 && q.max_nr_frames >= q.nr_frames,
            format_args!("{} of {} frames", q.nr_frames, q.max_nr_frames),
        ),
        Err(grant_table::GrantError::Xen(e)) => failed(&mut c, "grant_table::query_size", e),
        Err(grant_table::GrantError::Status(s)) => c.check(
            "grant_table::query_size",
            false,
            format_args!("status {}", s.code()),
        ),
    }

    multicall(&mut c);

    if pvh {
        pvh_start_info(&mut c, start_info);
    } else {
        pv_start_info(&mut c, start_info);
    }

    callback_vector(&mut c, pvh);

    events::run(&mut c, pvh, start_info);

    timing::run(&mut c);

    pairs::run(&mut c);

    // Never taken: only its compilation matters (see the `pv-only-call` feature).
    #[cfg(feature = "pv-only-call")]
    if core::hint::black_box(false) {
        use xen_hypercall::xen::{nr, raw};
        // SAFETY: fpu_taskswitch(0) clears CR0.TS for a PV guest; it reads no memory.
        let _ = unsafe { raw::call1::<{ nr::FPU_TASKSWITCH }>(raw::Arg::val(0)) };
    }
    // Never taken either (see the `pv-only-mmu` feature).
    #[cfg(feature = "pv-only-mmu")]
    if core::hint::black_box(false) {
        use xen_hypercall::xen::mmu::{self, Flush, Pte};
        // SAFETY: never run; a PV guest's unmapping of a null address would fail with EINVAL.
        let _ = unsafe { mmu::update_va_mapping(0, Pte(0), Flush::None) };
    }

    let mut l = Line::new();
    if c.failed == 0 {
        let _ = write!(l, "summary: all {} checks passed", c.passed);
        l.send();
        shutdown(ShutdownReason::Poweroff);
    }
    let _ = write!(
        l,
        "summary: {} of {} checks failed",
        c.failed,
        c.passed + c.failed
    );
    l.send();
    shutdown(ShutdownReason::Crash)
}

fn event_channels(c: &mut Checks) {
    let port = match evtchn::alloc_unbound(DomId::SELF, DomId::SELF) {
        Ok(p) => {
            c.check(
                "evtchn::alloc_unbound",
                p.0 != 0,
                format_args!("port {}", p.0),
            );
            p
        }
        Err(e) => return failed(c, "evtchn::alloc_unbound", e),
    };
    let r = evtchn::send(port);
    c.check("evtchn::send", r.is_ok(), format_args!("{r:?}"));
    match evtchn::status(port) {
        Ok(s) => c.check(
            "evtchn::status",
            // Xen names the remote by its id: this guest is dom0.
            matches!(s.state, State::Unbound { remote } if remote == DomId::DOM0),
            format_args!("{:?}", s.state),
        ),
        Err(e) => failed(c, "evtchn::status", e),
    }
    let r = evtchn::close(port);
    c.check("evtchn::close", r.is_ok(), format_args!("{r:?}"));
    let r = evtchn::send(port);
    c.check(
        "evtchn::send after close",
        r == Err(xen::Error::EINVAL),
        format_args!("{r:?} (EINVAL expected)"),
    );
}

fn multicall(c: &mut Checks) {
    let name = "multicall [version, pagesize, unknown]";
    let mut batch: Batch<'_, 4> = Batch::new();
    // SAFETY: an unknown hypercall number with zero arguments touches no memory.
    let unknown = unsafe { Call::raw(UNKNOWN_HYPERCALL, [0; 6]) };
    let pushed = batch.push(Call::xen_version()).is_ok()
        && batch.push(Call::pagesize()).is_ok()
        && batch.push(unknown).is_ok();
    if !pushed {
        return c.check(name, false, format_args!("batch full"));
    }
    let r = batch.submit();
    match r.status() {
        Ok(()) => {
            let (v, p, u) = (r.get(0), r.get(1), r.get(2));
            c.check(
                name,
                v == Some(Ok(0x40011))
                    && p == Some(Ok(4096))
                    && u == Some(Err(CallError::Failed(xen::Error::ENOSYS))),
                format_args!("{v:x?} {p:?} {u:?}"),
            )
        }
        Err(e) => failed(c, name, e),
    }
}

/// PVH: the `hvm_start_info` at `paddr` (`ebx` at entry), through the typed read.
fn pvh_start_info(c: &mut Checks, paddr: u64) {
    if paddr.saturating_add(size_of::<HvmStartInfo>() as u64) > pvh::MAPPED_FRAMES << 12 {
        return c.check(
            "start info",
            false,
            format_args!("hvm_start_info at {paddr:#x}, beyond the identity map"),
        );
    }
    // SAFETY: Xen put the structure at `paddr`, inside the identity map of `pvh.rs` (checked above).
    match unsafe { HvmStartInfo::read(paddr as *const HvmStartInfo) } {
        Ok(info) => c.check(
            "start info",
            info.is_initial_domain() && info.is_privileged() && info.rsdp_paddr != 0,
            format_args!(
                "hvm_start_info at {paddr:#x}: magic {:#x}, version {}, flags {:#x}, {} module(s), \
                 RSDP at {:#x}",
                info.magic, info.version, info.flags, info.nr_modules, info.rsdp_paddr
            ),
        ),
        Err(bad) => c.check(
            "start info",
            false,
            format_args!("no hvm_start_info magic at {paddr:#x}: {:#x}", bad.0),
        ),
    }
}

/// PV: the `start_info` page Xen mapped at `vaddr` (`rsi` at entry) begins with its magic string.
fn pv_start_info(c: &mut Checks, vaddr: u64) {
    const MAGIC: &[u8] = b"xen-3.0-x86_64";
    // SAFETY: Xen maps the `start_info` page at `vaddr` before entering a PV guest; `magic` is its first
    // field, 32 bytes.
    let magic = unsafe { core::slice::from_raw_parts(vaddr as *const u8, 32) };
    c.check(
        "start info",
        magic.starts_with(MAGIC),
        format_args!(
            "start_info at {vaddr:#x}: magic {}",
            core::str::from_utf8(&magic[..MAGIC.len()]).unwrap_or("?")
        ),
    );
}

/// Events on an interrupt vector: granted to a PVH guest (read back with `get_param`), refused to a PV one.
fn callback_vector(c: &mut Checks, pvh: bool) {
    let name = "hvm::set_callback_vector";
    let set = hvm::set_callback_vector(CALLBACK_VECTOR);
    if !pvh {
        return c.check(
            name,
            set == Err(xen::Error::EINVAL),
            format_args!("{set:?} (EINVAL expected: not an HVM domain)"),
        );
    }
    match (set, hvm::get_param(DomId::SELF, hvm::Param::CALLBACK_IRQ)) {
        (Ok(()), Ok(v)) => c.check(
            name,
            hvm::vector_of(v) == Some(CALLBACK_VECTOR),
            format_args!("CALLBACK_IRQ now {v:#x}"),
        ),
        (Err(e), _) | (_, Err(e)) => failed(c, name, e),
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    let mut l = Line::new();
    let _ = write!(l, "FAIL panic: {}", info.message());
    l.send();
    shutdown(ShutdownReason::Crash)
}
