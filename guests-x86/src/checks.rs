//! The checks' lines, below every part of the guest: a console line formatted into a fixed buffer
//! ([`Line`], written with `console_io`), and the count of checks, each printed as `ok NAME: DETAIL` or
//! `FAIL NAME: DETAIL` ([`Checks`]).

use core::fmt::Write;

use xen_hypercall::xen::{self, console};

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
        let _ = console::write(&self.buf[..self.len]);
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

/// Fails the check `name` with Xen's error.
pub fn failed(c: &mut Checks, name: &str, e: xen::Error) {
    c.check(name, false, format_args!("error {e:?}"));
}
