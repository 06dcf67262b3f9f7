//! What the guests (the example dom0 `src/main.rs`, and the multi-domain `src/bin/frontend.rs` and
//! `src/bin/backend.rs`) share: lines built without
//! `core::fmt`, tagged with the guest's role so that the runner can tell the domains apart on Xen's console
//! (a domU's lines come prefixed by Xen with `(dN)`, dom0's do not), check results, a deadline from the
//! generic timer, and the pages the guests use.

use xen_hypercall::xen::sched::{self, ShutdownReason};
use xen_hypercall::xen::{self, console};

/// A line of text, built without `core::fmt`.
pub struct Line {
    buf: [u8; 160],
    len: usize,
}

impl Line {
    pub fn new() -> Line {
        Line {
            buf: [0; 160],
            len: 0,
        }
    }

    pub fn s(self, text: &str) -> Line {
        self.bytes(text.as_bytes())
    }

    /// Appends `b` up to its first NUL.
    pub fn bytes(mut self, b: &[u8]) -> Line {
        for &c in b.iter().take_while(|&&c| c != 0) {
            if self.len < self.buf.len() {
                self.buf[self.len] = c;
                self.len += 1;
            }
        }
        self
    }

    /// Ends the line with a newline, in the last byte when it is full (the text is cut, the lines stay
    /// apart).
    pub fn end_line(mut self) -> Line {
        self.len = self.len.min(self.buf.len() - 1);
        self.buf[self.len] = b'\n';
        self.len += 1;
        self
    }

    pub fn dec(self, v: u64) -> Line {
        let mut digits = [0u8; 20];
        let (mut i, mut v) = (digits.len(), v);
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.bytes(&digits[i..])
    }

    /// A signed number.
    pub fn int(self, v: i64) -> Line {
        if v < 0 {
            self.s("-").dec(v.unsigned_abs())
        } else {
            self.dec(v as u64)
        }
    }

    pub fn hex(self, v: u64) -> Line {
        let mut digits = [0u8; 16];
        let (mut i, mut v) = (digits.len(), v);
        loop {
            i -= 1;
            digits[i] = b"0123456789abcdef"[(v & 0xf) as usize];
            v >>= 4;
            if v == 0 {
                break;
            }
        }
        self.s("0x").bytes(&digits[i..])
    }

    pub fn err(self, e: xen::Error) -> Line {
        self.s("error ").dec(e.errno() as u64)
    }

    /// A grant-table failure: the errno of the hypercall, or the operation's `GNTST_*` status by name.
    pub fn gnt(self, e: xen::grant_table::GrantError) -> Line {
        match e {
            xen::grant_table::GrantError::Xen(e) => self.err(e),
            xen::grant_table::GrantError::Status(s) => self
                .s("status ")
                .int(s.code().into())
                .s(" (")
                .s(s.c_name())
                .s(")"),
        }
    }

    /// The text so far.
    pub fn text(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Prints the line, prefixed with `role: ` (nothing for the empty role).
    pub fn print(self, role: &str) {
        // One write with the newline, so that Xen's own messages cannot land inside the line.
        let mut out = if role.is_empty() {
            Line::new()
        } else {
            Line::new().s(role).s(": ")
        };
        out = out.bytes(&self.buf[..self.len]);
        let n = out.len.min(out.buf.len() - 1);
        out.buf[n] = b'\n';
        let _ = console::write(&out.buf[..=n]);
    }
}

/// Check results of one guest.
pub struct Checks {
    pub role: &'static str,
    pub passed: u32,
    pub failed: u32,
}

impl Checks {
    pub fn new(role: &'static str) -> Checks {
        Checks {
            role,
            passed: 0,
            failed: 0,
        }
    }

    pub fn say(&self, l: Line) {
        l.print(self.role)
    }

    pub fn check(&mut self, name: &str, good: bool, detail: Line) {
        if good {
            self.passed += 1;
        } else {
            self.failed += 1;
        }
        Line::new()
            .s(if good { "ok " } else { "FAIL " })
            .s(name)
            .s(": ")
            .bytes(&detail.buf[..detail.len])
            .print(self.role);
    }

    pub fn ok(&mut self, name: &str, detail: Line) {
        self.check(name, true, detail)
    }

    pub fn fail(&mut self, name: &str, detail: Line) {
        self.check(name, false, detail)
    }

    /// Prints the summary line (`summary: all N/N checks passed` or `summary: FAILED, …`).
    pub fn summary(&self) {
        Line::new()
            .s(if self.failed == 0 {
                "summary: all "
            } else {
                "summary: FAILED, "
            })
            .dec(self.passed as u64)
            .s("/")
            .dec((self.passed + self.failed) as u64)
            .s(" checks passed")
            .print(self.role);
    }
}

/// A page of the guest's own (the identity map: its address is its guest frame's).
pub use xen_hypercall::xen::Page;

/// The guest frame number of a page of the guest's (the MMU maps addresses to themselves: they are guest
/// physical).
pub fn gfn_of<T>(p: *const T) -> u64 {
    (p as usize as u64) >> 12
}

/// Maps the domain's shared info page over `page` (`memory::map_shared_info`) and returns what Xen answered
/// and the event delivery over the page for vCPU 0 (its `vcpu_info` slot there).
///
/// # Safety
///
/// `page` is a page of this image used for nothing else from now on: it becomes the shared info page, which
/// only the returned `Events` (atomics) touches for the rest of the run.
pub unsafe fn map_shared_info(page: *mut Page) -> (Result<(), xen::Error>, xen::evtchn::Events) {
    // SAFETY: the caller's contract: the frame is this guest's and used for nothing else.
    let mapped = unsafe { xen::memory::map_shared_info(gfn_of(page)) };
    // SAFETY: the shared info page is at `page` for the rest of the run, accessed through `Events` only.
    let events = unsafe { xen::evtchn::Events::new(page.cast()) };
    (mapped, events)
}

/// The generic timer's virtual count (`CNTVCT`), readable at EL1 without Xen.
#[cfg(target_arch = "aarch64")]
fn ticks() -> u64 {
    let t: u64;
    // SAFETY: reading the virtual counter has no side effect; EL1 may always read it.
    unsafe { core::arch::asm!("isb", "mrs {}, cntvct_el0", out(reg) t, options(nomem, nostack)) };
    t
}

/// The generic timer's virtual count (`CNTVCT`, a 64-bit coprocessor register on 32-bit ARM).
#[cfg(target_arch = "arm")]
fn ticks() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: reading the virtual counter has no side effect; PL1 may always read it.
    unsafe {
        core::arch::asm!("isb", "mrrc p15, 1, {}, {}, c14", out(reg) lo, out(reg) hi, options(nomem, nostack))
    };
    (u64::from(hi) << 32) | u64::from(lo)
}

/// The generic timer's frequency (`CNTFRQ`).
#[cfg(target_arch = "aarch64")]
fn frequency() -> u64 {
    let f: u64;
    // SAFETY: reading the frequency register has no side effect.
    unsafe { core::arch::asm!("mrs {}, cntfrq_el0", out(reg) f, options(nomem, nostack)) };
    f
}

/// The generic timer's frequency (`CNTFRQ`).
#[cfg(target_arch = "arm")]
fn frequency() -> u64 {
    let f: u32;
    // SAFETY: reading the frequency register has no side effect.
    unsafe { core::arch::asm!("mrc p15, 0, {}, c14, c0, 0", out(reg) f, options(nomem, nostack)) };
    u64::from(f)
}

/// A point in time `ms` milliseconds from now, by the generic timer.
#[derive(Clone, Copy)]
pub struct Deadline(u64);

impl Deadline {
    pub fn in_ms(ms: u64) -> Deadline {
        Deadline(ticks() + frequency() / 1000 * ms)
    }

    pub fn passed(&self) -> bool {
        ticks() >= self.0
    }
}

/// Gives the CPU to the other domains (one physical CPU is shared).
pub fn pause() {
    let _ = sched::yield_now();
}

/// Prints the summary and powers off (or crashes, when a check failed): used by dom0, whose end ends Xen.
pub fn finish_dom0(c: &Checks) -> ! {
    c.summary();
    let _ = sched::shutdown(if c.failed == 0 {
        ShutdownReason::Poweroff
    } else {
        ShutdownReason::Crash
    });
    halt()
}

/// Prints the summary and stops the domain.
pub fn finish_domu(c: &Checks) -> ! {
    c.summary();
    shut_down(c)
}

/// Stops the domain: powered off when every check passed, crashed otherwise.
pub fn shut_down(c: &Checks) -> ! {
    let _ = sched::shutdown(if c.failed == 0 {
        ShutdownReason::Poweroff
    } else {
        ShutdownReason::Crash
    });
    halt()
}

pub fn halt() -> ! {
    loop {
        core::hint::spin_loop();
    }
}

/// The byte at `i` of the test pattern `seed` (what one side writes and the other checks).
pub fn pattern(seed: u8, i: usize) -> u8 {
    (i as u8).wrapping_mul(7).wrapping_add(seed)
}

/// Waits up to `ms` milliseconds for an event on `port`, taking every pending event through the shared info
/// page (`Events::for_each_pending`) and yielding the CPU between looks. Says whether `port` fired.
pub fn wait_event(
    events: &xen_hypercall::xen::evtchn::Events,
    port: xen_hypercall::xen::evtchn::Port,
    ms: u64,
) -> bool {
    let deadline = Deadline::in_ms(ms);
    let mut fired = false;
    loop {
        events.for_each_pending(|p| fired |= p == port);
        if fired || deadline.passed() {
            return fired;
        }
        pause();
    }
}
