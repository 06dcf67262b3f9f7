//! `cargo test` inside a Xen unikernel, on stable Rust: a `harness = false` test target that is itself the
//! unikernel, booted as dom0 on Xen by cargo's runner (`cargo xen run --runner`).
//!
//! # The protocol
//!
//! - **Collection.** `#[xen_test::tests]` on an inline module collects its `#[test]` functions (plus
//!   `#[should_panic]`, `#[should_panic(expected = "…")]`, `#[ignore]`, `#[ignore = "reason"]`) into a
//!   static table in source order, and defines the unikernel's `guest_main` (called by the entry code with
//!   the device tree's address) and its `#[panic_handler]`.
//! - **Arguments.** cargo passes the test filter and the arguments after `--` to its runner, which puts them
//!   on the guest's command line after a `--` word; Xen hands that command line to dom0 as the device tree's
//!   `/chosen/bootargs`, which [`start`](__private::start) reads. As libtest: each free word is a filter (a
//!   test runs when its name contains one; all run when there is none), `--exact` makes filters whole
//!   names, `--skip WORD` leaves out matching tests, `--ignored` runs only the ignored tests,
//!   `--include-ignored` runs them too; `--nocapture`, `--show-output`, `--quiet`, `--test-threads N` and
//!   `--color WHEN` are accepted and change nothing (output is never captured; one vCPU runs the tests one
//!   by one). Anything else fails the run.
//! - **Console.** Everything goes to the domain's console ([`console`]): Xen's (`console_io`) for dom0
//!   and dom0less domUs, the PV console ring for a domU that `xl` created (`cargo xen run --xl`), flushed
//!   before the shutdown: `running N tests`,
//!   `test NAME ... ` before a test runs and `ok`, `FAILED` or `ignored` after it, a failing test's panic
//!   (`test NAME panicked at FILE:LINE:COL:` and the message), the names of the failures, and the summary,
//!   `test result: ok. P passed; F failed; I ignored; S filtered out` (or `FAILED.`).
//! - **Panics.** The panic handler knows the test that was running: it reports the panic as that test's
//!   failure (or success, for `#[should_panic]`) and goes on with the next test from inside the handler.
//!   Nothing unwinds, and the stack is never reset: the frames of a test that panicked stay on the stack
//!   until the run ends (memory it handed to Xen, say a buffer on its stack, is never reused), so each
//!   failing test uses up stack — its own frames and the panic's: about 1.7 KiB per failing `assert_eq!` in a
//!   debug build, 0.6 KiB in a release build (24 and 66 failures fit the budget). When more than
//!   [`STACK_BUDGET`] is in use after a failure, the run ends there with an error line. A panic outside any test, or while a panic is reported, ends the run at once.
//! - **Verdict.** At the end the domain shuts down: `poweroff` when no test failed, `crash` otherwise (also
//!   on bad arguments). The runner turns Xen's report of that into its exit status; if the guest never gets
//!   there (a hang, a fault Xen reports as a crash), the runner names the test whose `test NAME ... ` line
//!   came last without a verdict.
//!
//! ```ignore
//! #![no_std]
//! #![no_main]
//!
//! #[path = "../src/entry.rs"]
//! mod entry;
//! #[path = "../src/mmu.rs"]
//! mod mmu;
//!
//! #[xen_test::tests]
//! mod tests {
//!     use xen_hypercall::xen::version;
//!
//!     #[test]
//!     fn xen_is_4() {
//!         assert_eq!(version::version().unwrap().major, 4);
//!     }
//!
//!     #[test]
//!     #[should_panic(expected = "boom")]
//!     fn panics() {
//!         panic!("boom");
//!     }
//! }
//! ```
//!
//! Every access to shared state is a plain load or store (no read-modify-write atomics): the tests run on
//! one vCPU, and they work whether or not the program has turned its MMU on (with it off, data accesses
//! are Device memory, where exclusive accesses are not guaranteed to work).

#![no_std]

use core::fmt::{self, Write as _};
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicUsize, Ordering::Relaxed};

use xen_hypercall::xen::console::Console;
use xen_hypercall::xen::ring::SharedArea;
use xen_hypercall::xen::{Page, sched};

pub use xen_test_macros::tests;

/// One test, as `#[xen_test::tests]` collects it.
#[derive(Clone, Copy, Debug)]
pub struct Test {
    /// The function's name.
    pub name: &'static str,
    /// The function.
    pub func: fn(),
    /// `#[should_panic]`: the test passes only if it panics.
    pub should_panic: bool,
    /// `#[should_panic(expected = "…")]`: the panic message must contain this.
    pub expected: Option<&'static str>,
    /// `#[ignore]`: the test runs only with `--ignored` or `--include-ignored`.
    pub ignore: bool,
    /// `#[ignore = "reason"]`.
    pub ignore_reason: Option<&'static str>,
}

/// The largest flattened device tree read (Linux's and Xen's limit for a boot device tree).
pub const MAX_FDT_SIZE: usize = 2 << 20;

const FDT_MAGIC: u32 = 0xd00d_feed;
const FDT_BEGIN_NODE: u32 = 1;
const FDT_END_NODE: u32 = 2;
const FDT_PROP: u32 = 3;
const FDT_NOP: u32 = 4;
const FDT_END: u32 = 9;

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let w = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
}

fn be32_usize(b: &[u8], at: usize) -> Option<usize> {
    usize::try_from(be32(b, at)?).ok()
}

fn align4(n: usize) -> Option<usize> {
    Some(n.checked_add(3)? & !3)
}

/// The value of `/chosen/bootargs` in the flattened device tree `fdt` (without its terminating NUL), or
/// `None` if there is none or the tree is malformed (every offset is checked against `fdt`).
pub fn chosen_bootargs(fdt: &[u8]) -> Option<&[u8]> {
    if be32(fdt, 0)? != FDT_MAGIC {
        return None;
    }
    let total = be32_usize(fdt, 4)?.min(fdt.len());
    let fdt = &fdt[..total];
    let off_struct = be32_usize(fdt, 8)?;
    let off_strings = be32_usize(fdt, 12)?;
    let size_strings = be32_usize(fdt, 32)?;
    let size_struct = be32_usize(fdt, 36)?;
    let structs = fdt.get(off_struct..off_struct.checked_add(size_struct)?)?;
    let strings = fdt.get(off_strings..off_strings.checked_add(size_strings)?)?;
    let mut pos = 0;
    let mut depth = 0usize;
    let mut in_chosen = false;
    loop {
        match be32(structs, pos)? {
            FDT_BEGIN_NODE => {
                let name_start = pos + 4;
                let len = structs.get(name_start..)?.iter().position(|&b| b == 0)?;
                let name = &structs[name_start..name_start + len];
                depth += 1;
                // The root is at depth 1, its children at depth 2.
                if depth == 2 {
                    in_chosen = name == b"chosen" || name.starts_with(b"chosen@");
                }
                pos = align4(name_start + len + 1)?;
            }
            FDT_END_NODE => {
                if depth == 2 && in_chosen {
                    return None;
                }
                depth = depth.checked_sub(1)?;
                pos += 4;
            }
            FDT_PROP => {
                let len = be32_usize(structs, pos + 4)?;
                let name_off = be32_usize(structs, pos + 8)?;
                let value = structs.get(pos + 12..(pos + 12).checked_add(len)?)?;
                if depth == 2 && in_chosen {
                    let name = strings.get(name_off..)?;
                    let name = &name[..name.iter().position(|&b| b == 0)?];
                    if name == b"bootargs" {
                        return Some(value.strip_suffix(&[0]).unwrap_or(value));
                    }
                }
                pos = align4(pos + 12 + len)?;
            }
            FDT_NOP => pos += 4,
            FDT_END => return None,
            _ => return None,
        }
    }
}

/// The words of `cmdline` after its first `--` word: the arguments cargo gave the runner.
pub fn test_args(cmdline: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut words = cmdline
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty());
    let found = words.by_ref().any(|w| w == b"--");
    words.filter(move |_| found)
}

/// The options among the test arguments.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// `--exact`.
    pub exact: bool,
    /// `--ignored`.
    pub ignored: bool,
    /// `--include-ignored`.
    pub include_ignored: bool,
}

/// What becomes of one test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selection {
    /// It runs.
    Run,
    /// It is listed as ignored.
    Ignored,
    /// A filter or `--skip` leaves it out (or `--ignored` and it is not ignored).
    FilteredOut,
}

/// The options of the test arguments `args`, or the first word that is not one this harness takes.
pub fn options<'a>(mut args: impl Iterator<Item = &'a [u8]>) -> Result<Options, &'a [u8]> {
    let mut o = Options::default();
    while let Some(w) = args.next() {
        match w {
            b"--exact" => o.exact = true,
            b"--ignored" => o.ignored = true,
            b"--include-ignored" => o.include_ignored = true,
            b"--nocapture" | b"--show-output" | b"--quiet" | b"-q" => {}
            b"--skip" | b"--test-threads" | b"--color" => {
                args.next().ok_or(w)?;
            }
            _ if w.starts_with(b"--test-threads=") || w.starts_with(b"--color=") => {}
            _ if w.starts_with(b"-") => return Err(w),
            _ => {}
        }
    }
    Ok(o)
}

fn matches(name: &str, word: &[u8], exact: bool) -> bool {
    let name = name.as_bytes();
    if exact {
        name == word
    } else {
        word.is_empty() || name.windows(word.len()).any(|w| w == word)
    }
}

/// Whether `test` runs, is ignored or is filtered out under the test arguments of the command line
/// `cmdline` (see [`test_args`]; checked by [`options`]), as libtest decides.
pub fn select(test: &Test, cmdline: &[u8]) -> Selection {
    let o = options(test_args(cmdline)).unwrap_or_default();
    let mut filters = false;
    let mut matched = false;
    let mut it = test_args(cmdline);
    while let Some(w) = it.next() {
        match w {
            b"--skip" => {
                if let Some(s) = it.next()
                    && matches(test.name, s, o.exact)
                {
                    return Selection::FilteredOut;
                }
            }
            b"--test-threads" | b"--color" => {
                it.next();
            }
            _ if w.starts_with(b"-") => {}
            _ => {
                filters = true;
                matched |= matches(test.name, w, o.exact);
            }
        }
    }
    if filters && !matched || o.ignored && !test.ignore {
        return Selection::FilteredOut;
    }
    if test.ignore && !o.ignored && !o.include_ignored {
        Selection::Ignored
    } else {
        Selection::Run
    }
}

/// Whether [`__private::start`] ran: its contract makes the console ring's page reachable at its frame
/// times 4096.
static STARTED: AtomicBool = AtomicBool::new(false);

/// What the console does while the console daemon has not read what it was given: gives the vCPU up.
fn wait() -> xen_hypercall::xen::Result<()> {
    sched::yield_now()
}

/// The domain's console, the one the tests report on ([`Console::open`]): Xen's own (`console_io`) for
/// dom0 and dom0less domUs; the PV console ring for a domU that `xl` created (`cargo xen run --xl`),
/// which Xen refuses `console_io`. Xen's own before the run started.
pub fn console() -> Console<'static> {
    if !STARTED.load(Relaxed) {
        return Console::Hypervisor;
    }
    Console::open(
        |pfn| {
            let addr = pfn
                .checked_mul(4096)
                .and_then(|a| usize::try_from(a).ok())
                .ok_or(xen_hypercall::xen::Error::EINVAL)?;
            // SAFETY: `start` ran, whose contract makes the frames of Xen's guest layout (where the ring
            // is) reachable at `pfn * 4096` (identity-mapped, or the MMU off), Normal shared memory; the
            // page is the toolstack's, shared with the console daemon, and the program holds no reference
            // to it: it is reached only through rings.
            unsafe { SharedArea::new(addr as *mut Page, 1) }
        },
        wait as fn() -> xen_hypercall::xen::Result<()>,
    )
    .unwrap_or(Console::Hypervisor)
}

/// Writes to the domain's console ([`console`]), dropping what is refused (there is nowhere else to report
/// it).
struct Out;

impl fmt::Write for Out {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let _ = console().write(s.as_bytes());
        Ok(())
    }
}

/// A fixed buffer that keeps the first bytes written to it (for matching a panic message).
struct Buf {
    bytes: [u8; 512],
    len: usize,
}

impl fmt::Write for Buf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let n = s.len().min(self.bytes.len() - self.len);
        self.bytes[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// No test is running.
const NONE: usize = usize::MAX;

static CMDLINE_PTR: AtomicPtr<u8> = AtomicPtr::new(core::ptr::null_mut());
static CMDLINE_LEN: AtomicUsize = AtomicUsize::new(0);
static CURRENT: AtomicUsize = AtomicUsize::new(NONE);
static PASSED: AtomicUsize = AtomicUsize::new(0);
static FAILED: AtomicUsize = AtomicUsize::new(0);
static IGNORED: AtomicUsize = AtomicUsize::new(0);
static FILTERED: AtomicUsize = AtomicUsize::new(0);
static IN_PANIC: AtomicBool = AtomicBool::new(false);
/// Which tests failed (the first 256 of the table), for the list at the end.
static FAILURES: [AtomicU32; 8] = [const { AtomicU32::new(0) }; 8];

/// One vCPU and no interrupts: a load and a store, not a read-modify-write (see the crate docs).
fn bump(a: &AtomicUsize) {
    a.store(a.load(Relaxed) + 1, Relaxed);
}

fn record_failure(index: usize) {
    bump(&FAILED);
    if let Some(w) = FAILURES.get(index / 32) {
        w.store(w.load(Relaxed) | 1 << (index % 32), Relaxed);
    }
}

/// The guest's command line, as [`__private::start`] found it.
fn cmdline() -> &'static [u8] {
    let ptr = CMDLINE_PTR.load(Relaxed);
    if ptr.is_null() {
        return &[];
    }
    // SAFETY: `start` stored the pointer and length of a `&'static [u8]` (the device tree's bootargs, which
    // stay valid and unchanged for the rest of the program by `start`'s contract) and nothing else stores
    // them.
    unsafe { core::slice::from_raw_parts(ptr, CMDLINE_LEN.load(Relaxed)) }
}

fn end(ok: bool) -> ! {
    // A ring console: everything read by the daemon before the domain goes away.
    let _ = console().flush();
    let reason = if ok {
        sched::ShutdownReason::Poweroff
    } else {
        sched::ShutdownReason::Crash
    };
    let _ = sched::shutdown(reason);
    loop {
        core::hint::spin_loop();
    }
}

/// Runs the tests from `first` on, then reports and ends the run.
fn run_from(first: usize, tests: &'static [Test]) -> ! {
    let mut out = Out;
    for (i, t) in tests.iter().enumerate().skip(first) {
        match select(t, cmdline()) {
            Selection::FilteredOut => bump(&FILTERED),
            Selection::Ignored => {
                bump(&IGNORED);
                let _ = match t.ignore_reason {
                    Some(r) => writeln!(out, "test {} ... ignored, {r}", t.name),
                    None => writeln!(out, "test {} ... ignored", t.name),
                };
            }
            Selection::Run => {
                let _ = write!(out, "test {} ... ", t.name);
                CURRENT.store(i, Relaxed);
                (t.func)();
                CURRENT.store(NONE, Relaxed);
                if t.should_panic {
                    let _ = writeln!(out, "FAILED\nnote: test did not panic as expected");
                    record_failure(i);
                } else {
                    let _ = writeln!(out, "ok");
                    bump(&PASSED);
                }
            }
        }
    }
    let failed = FAILED.load(Relaxed);
    if failed > 0 {
        let _ = writeln!(out, "\nfailures:");
        for (i, t) in tests.iter().enumerate().take(FAILURES.len() * 32) {
            if FAILURES[i / 32].load(Relaxed) & 1 << (i % 32) != 0 {
                let _ = writeln!(out, "    {}", t.name);
            }
        }
    }
    let _ = writeln!(
        out,
        "\ntest result: {}. {} passed; {failed} failed; {} ignored; {} filtered out\n",
        if failed == 0 { "ok" } else { "FAILED" },
        PASSED.load(Relaxed),
        IGNORED.load(Relaxed),
        FILTERED.load(Relaxed),
    );
    end(failed == 0)
}

/// What `#[xen_test::tests]` generates calls; not an API.
#[doc(hidden)]
pub mod __private {
    use super::*;

    /// Reads the test arguments from the device tree and runs `tests`.
    ///
    /// # Safety
    ///
    /// `device_tree` is 0 or the address of the flattened device tree Xen handed the guest at entry,
    /// readable at that address (the MMU off, or the tree identity-mapped), and neither written nor
    /// reused for the rest of the program. Every frame of Xen's guest layout for the domain, the console
    /// ring's page (`HVM_PARAM_CONSOLE_PFN`) among them, is readable and writable at its frame number
    /// times 4096 (the MMU off, or identity-mapped: the template's entry code does it), mapped Normal
    /// shared memory, and the program holds no Rust reference to the console ring's page.
    pub unsafe fn start(device_tree: usize, tests: &'static [Test]) -> ! {
        STACK_BASE.store(stack_position(), Relaxed);
        STARTED.store(true, Relaxed);
        let mut out = Out;
        let mut bootargs: &'static [u8] = &[];
        if device_tree != 0 && device_tree.is_multiple_of(8) {
            // SAFETY: by the contract, a device tree starts at `device_tree` (its 40-byte header at least)
            // and stays unchanged.
            let header = unsafe { core::slice::from_raw_parts(device_tree as *const u8, 40) };
            if be32(header, 0) == Some(FDT_MAGIC)
                && let Some(size) =
                    be32_usize(header, 4).filter(|s| (40..=MAX_FDT_SIZE).contains(s))
            {
                // SAFETY: the header says the tree is `size` bytes long; by the contract they are the
                // tree's, unchanged for the rest of the program.
                let fdt = unsafe { core::slice::from_raw_parts(device_tree as *const u8, size) };
                bootargs = chosen_bootargs(fdt).unwrap_or_default();
            }
        }
        CMDLINE_PTR.store(bootargs.as_ptr().cast_mut(), Relaxed);
        CMDLINE_LEN.store(bootargs.len(), Relaxed);
        if let Err(bad) = options(test_args(bootargs)) {
            let _ = writeln!(
                out,
                "xen-test: error: unsupported argument `{}` (takes filters, --exact, --skip NAME, --ignored, \
                 --include-ignored)",
                core::str::from_utf8(bad).unwrap_or("(not UTF-8)")
            );
            end(false)
        }
        let n = tests
            .iter()
            .filter(|t| select(t, bootargs) != Selection::FilteredOut)
            .count();
        let _ = writeln!(out, "\nrunning {n} test{}", if n == 1 { "" } else { "s" });
        run_from(0, tests)
    }

    /// The panic handler: reports the panic as the result of the test that was running and goes on with
    /// the next one (unless the stack left is below [`STACK_BUDGET`]).
    pub fn panicked(info: &core::panic::PanicInfo<'_>, tests: &'static [Test]) -> ! {
        // The report's frame is gone before the next test starts: only the panicking test's frames and
        // the panic's own stay on the stack.
        let current = report(info, tests);
        let used = STACK_BASE.load(Relaxed).wrapping_sub(stack_position());
        if used > STACK_BUDGET {
            let _ = writeln!(
                Out,
                "xen-test: error: {} bytes of stack in use after {} failing tests (each failing test's frames \
                 stay on the stack): the tests after `{}` did not run",
                used,
                FAILED.load(Relaxed),
                tests[current].name
            );
            end(false)
        }
        IN_PANIC.store(false, Relaxed);
        run_from(current + 1, tests)
    }
}

/// The address of a local of the caller's frame (the stack grows down on ARM).
#[inline(always)]
fn stack_position() -> usize {
    let here = 0u8;
    core::hint::black_box(core::ptr::addr_of!(here)) as usize
}

/// The stack a run may use before a failing test ends it: 40 KiB, for a stack of 64 KiB (the template's),
/// so that the next test and its panic still fit.
pub const STACK_BUDGET: usize = 40 << 10;

/// The stack position when the run started.
static STACK_BASE: AtomicUsize = AtomicUsize::new(0);

/// Reports a panic as the running test's result; returns that test's index. Ends the run on a panic
/// outside any test or while a panic is reported.
#[inline(never)]
fn report(info: &core::panic::PanicInfo<'_>, tests: &'static [Test]) -> usize {
    let mut out = Out;
    if IN_PANIC.load(Relaxed) {
        let _ = writeln!(
            out,
            "\nxen-test: error: panicked while reporting a panic: {info}"
        );
        end(false)
    }
    IN_PANIC.store(true, Relaxed);
    let current = CURRENT.load(Relaxed);
    CURRENT.store(NONE, Relaxed);
    let Some(t) = tests.get(current) else {
        let _ = writeln!(out, "\nxen-test: error: panicked outside a test: {info}");
        end(false)
    };
    let mut msg = Buf {
        bytes: [0; 512],
        len: 0,
    };
    let _ = write!(msg, "{}", info.message());
    let msg = &msg.bytes[..msg.len];
    let expected_ok = t
        .expected
        .is_none_or(|e| matches(core::str::from_utf8(msg).unwrap_or(""), e.as_bytes(), false));
    if t.should_panic && expected_ok {
        let _ = writeln!(out, "ok");
        bump(&PASSED);
    } else {
        let _ = writeln!(out, "FAILED");
        match info.location() {
            Some(l) => {
                let _ = writeln!(
                    out,
                    "test {} panicked at {}:{}:{}:",
                    t.name,
                    l.file(),
                    l.line(),
                    l.column()
                );
            }
            None => {
                let _ = writeln!(out, "test {} panicked:", t.name);
            }
        }
        let _ = writeln!(out, "{}", info.message());
        if let (true, Some(e)) = (t.should_panic, t.expected) {
            let _ = writeln!(
                out,
                "note: the panic message does not contain the expected `{e}`"
            );
        }
        record_failure(current);
    }
    current
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    /// A flattened device tree built by hand from the specification's layout (header, structure block,
    /// strings block), independent of the parser.
    fn fdt(chosen: &[(&str, &[u8])], extra_node: bool) -> Vec<u8> {
        let mut strings = Vec::new();
        let mut structs = Vec::new();
        let word = |v: &mut Vec<u8>, w: u32| v.extend_from_slice(&w.to_be_bytes());
        let node = |v: &mut Vec<u8>, name: &str| {
            v.extend_from_slice(&1u32.to_be_bytes());
            v.extend_from_slice(name.as_bytes());
            v.push(0);
            while !v.len().is_multiple_of(4) {
                v.push(0);
            }
        };
        let prop = |v: &mut Vec<u8>, strings: &mut Vec<u8>, name: &str, value: &[u8]| {
            let off = strings.len() as u32;
            strings.extend_from_slice(name.as_bytes());
            strings.push(0);
            word(v, 3);
            word(v, value.len() as u32);
            word(v, off);
            v.extend_from_slice(value);
            while !v.len().is_multiple_of(4) {
                v.push(0);
            }
        };
        node(&mut structs, "");
        prop(&mut structs, &mut strings, "bootargs", b"at the root\0");
        if extra_node {
            node(&mut structs, "memory@40000000");
            prop(&mut structs, &mut strings, "bootargs", b"in another node\0");
            structs.extend_from_slice(&2u32.to_be_bytes());
        }
        node(&mut structs, "chosen");
        node(&mut structs, "module@49000000");
        prop(
            &mut structs,
            &mut strings,
            "bootargs",
            b"in a child of chosen\0",
        );
        structs.extend_from_slice(&2u32.to_be_bytes());
        for (n, v) in chosen {
            prop(&mut structs, &mut strings, n, v);
        }
        structs.extend_from_slice(&2u32.to_be_bytes());
        structs.extend_from_slice(&2u32.to_be_bytes());
        structs.extend_from_slice(&9u32.to_be_bytes());
        let off_struct = 40 + 16; // header, then one empty memory reservation entry
        let off_strings = off_struct + structs.len();
        let total = off_strings + strings.len();
        let mut out = Vec::new();
        for w in [
            0xd00d_feed,
            total as u32,
            off_struct as u32,
            off_strings as u32,
            40,
            17,
            16,
            0,
            strings.len() as u32,
            structs.len() as u32,
        ] {
            out.extend_from_slice(&u32::to_be_bytes(w));
        }
        out.extend_from_slice(&[0; 16]);
        out.extend_from_slice(&structs);
        out.extend_from_slice(&strings);
        out
    }

    #[test]
    fn bootargs_of_chosen_only() {
        let t = fdt(
            &[
                ("stdout-path", b"hvc0\0"),
                ("bootargs", b"console=hvc0 -- one --exact\0"),
            ],
            true,
        );
        assert_eq!(
            chosen_bootargs(&t),
            Some(&b"console=hvc0 -- one --exact"[..])
        );
        let none = fdt(&[("stdout-path", b"hvc0\0")], false);
        assert_eq!(chosen_bootargs(&none), None);
        // Every truncation is refused or parsed within bounds, never read past the slice.
        for n in 0..t.len() {
            let _ = chosen_bootargs(&t[..n]);
        }
        let mut bad = t.clone();
        bad[0] = 0;
        assert_eq!(chosen_bootargs(&bad), None);
    }

    #[test]
    fn args_after_the_separator() {
        let words: Vec<&[u8]> = test_args(b"console=hvc0  --  a --exact").collect();
        assert_eq!(words, [&b"a"[..], b"--exact"]);
        assert_eq!(test_args(b"console=hvc0 a").count(), 0);
        assert_eq!(options(test_args(b"-- --bogus")), Err(&b"--bogus"[..]));
        assert_eq!(options(test_args(b"-- --skip")), Err(&b"--skip"[..]));
    }

    fn f() {}

    fn test(name: &'static str, ignore: bool) -> Test {
        Test {
            name,
            func: f,
            should_panic: false,
            expected: None,
            ignore,
            ignore_reason: None,
        }
    }

    #[test]
    fn selection_as_libtest() {
        let sel = |t: &Test, cmd: &'static [u8]| select(t, cmd);
        let greets = test("greets", false);
        let slow = test("slow_greets", true);
        assert_eq!(sel(&greets, b""), Selection::Run);
        assert_eq!(sel(&slow, b""), Selection::Ignored);
        assert_eq!(sel(&greets, b"-- reet"), Selection::Run);
        assert_eq!(sel(&greets, b"-- other"), Selection::FilteredOut);
        assert_eq!(sel(&greets, b"-- other reet"), Selection::Run);
        assert_eq!(sel(&greets, b"-- reet --exact"), Selection::FilteredOut);
        assert_eq!(sel(&greets, b"-- --exact greets"), Selection::Run);
        assert_eq!(sel(&greets, b"-- --skip gree"), Selection::FilteredOut);
        assert_eq!(sel(&greets, b"-- --ignored"), Selection::FilteredOut);
        assert_eq!(sel(&slow, b"-- --ignored"), Selection::Run);
        assert_eq!(sel(&slow, b"-- --include-ignored"), Selection::Run);
        assert_eq!(sel(&greets, b"-- --test-threads 1 greets"), Selection::Run);
        assert_eq!(
            sel(&greets, b"-- --test-threads 1 x"),
            Selection::FilteredOut
        );
    }
}
