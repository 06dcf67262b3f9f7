//! What every real-Xen scenario shares, below the scenarios themselves: the Xen builds, the machine a
//! scenario declares (its images and how they are laid out, Xen's command line, vCPUs, time-out, when the
//! run is over) booted by one runner on `cargo-xen`'s QEMU lines, and the pieces of judging a console
//! (`ok <check>:` lines, Xen's banner, a failure's tail).
//!
//! A scenario module ([`crate::domains`], [`crate::smp`], [`crate::x86`], the benches' real-Xen runs)
//! declares its [`Machine`]s and judges their consoles; it does not build QEMU or Xen command lines of its
//! own. ([`crate::xen`]'s guests boot as `cargo xen run` does, through `cargo_xen::run`.)

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Result, bail};
use cargo_xen::qemu::{self, Module};

pub use cargo_xen::qemu::Boot;

/// Which hypervisor build a guest boots on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XenBuild {
    /// Debian's binary package (`debug=n`).
    Release,
    /// Built from Debian's source with `CONFIG_DEBUG=y` (`debug=y`): poisons clobbered registers.
    Debug,
}

impl XenBuild {
    /// `release` or `debug`.
    pub fn name(self) -> &'static str {
        match self {
            XenBuild::Release => "release",
            XenBuild::Debug => "debug",
        }
    }

    /// What Xen's banner must say.
    pub fn banner_flag(self) -> &'static str {
        match self {
            XenBuild::Release => "debug=n",
            XenBuild::Debug => "debug=y",
        }
    }
}

/// Where a machine's images go.
#[derive(Clone, Debug)]
pub enum Layout {
    /// One image, booted as dom0 (Xen's `guest-loader`).
    Dom0(PathBuf),
    /// x86-64: an ELF booted as dom0 (Xen's first multiboot module) by an x86-64 Xen.
    X86Dom0(PathBuf),
    /// dom0less: the domains are described under `/chosen` in the device tree (written as `dir/name.dts`,
    /// compiled to `.dtb`), dom0 (if any) in the first load slot, the domUs in the next ones, in domid
    /// order.
    Dom0less {
        /// dom0's image, if there is a dom0.
        dom0: Option<PathBuf>,
        /// The domUs' images.
        domus: Vec<PathBuf>,
        /// Where the device tree is written.
        dir: PathBuf,
        /// The device tree's file name.
        name: String,
    },
}

/// One boot of real Xen under QEMU, as a scenario declares it.
pub struct Machine<'a> {
    /// The images and how Xen gets them.
    pub layout: Layout,
    /// Added to Xen's command line ([`qemu::XEN_BOOTARGS`], [`qemu::XEN_X86_BOOTARGS`] for x86-64).
    pub xen_args: &'a str,
    /// The machine's CPUs (dom0's vCPUs need `dom0_max_vcpus` in `xen_args` too).
    pub cpus: u32,
    /// How long the boot may take before it counts as hung.
    pub timeout: Duration,
    /// Whether the console so far shows the run is over (QEMU is ended 0.5 s later).
    pub done: &'a dyn Fn(&str) -> bool,
    /// More QEMU options (`-icount` for the benches).
    pub qemu_args: &'a [&'a str],
}

impl Machine<'_> {
    /// Xen's command line.
    pub fn bootargs(&self) -> String {
        let base = match self.layout {
            Layout::X86Dom0(_) => qemu::XEN_X86_BOOTARGS,
            _ => qemu::XEN_BOOTARGS,
        };
        format!("{base} {}", self.xen_args).trim().to_string()
    }

    /// Boots `xen` (a hypervisor of the layout's architecture) with this machine's images.
    pub fn boot(&self, xen: &Path) -> Result<Boot> {
        let mut cmd = self.command(xen)?;
        qemu::run_qemu(&mut cmd, self.timeout, self.done)
    }

    /// The QEMU command of [`Machine::boot`] (the dom0less device tree written).
    pub fn command(&self, xen: &Path) -> Result<Command> {
        let bootargs = self.bootargs();
        if self.cpus != 1 && !matches!(self.layout, Layout::Dom0(_)) {
            bail!("only an ARM dom0 machine has more than one CPU");
        }
        let mut cmd = match &self.layout {
            Layout::Dom0(image) => {
                qemu::dom0_command_cpus(xen, image, &bootargs, qemu::DOM0_CMDLINE, self.cpus)
            }
            Layout::X86Dom0(image) => qemu::x86_dom0_command(xen, image, &bootargs),
            Layout::Dom0less {
                dom0,
                domus,
                dir,
                name,
            } => {
                let dom0 = dom0.as_ref().map(|p| Module::at_slot(0, p)).transpose()?;
                let domus = domus
                    .iter()
                    .enumerate()
                    .map(|(i, p)| Module::at_slot(i + 1, p))
                    .collect::<Result<Vec<_>>>()?;
                let dtb = qemu::dom0less_dtb(dir, name, &bootargs, dom0.as_ref(), &domus)?;
                let modules: Vec<Module> = dom0.into_iter().chain(domus).collect();
                qemu::dom0less_command(xen, &dtb, &modules)
            }
        };
        cmd.args(self.qemu_args);
        Ok(cmd)
    }
}

/// The checks of `checks` that have no `ok <check>:` line among a console's `lines`.
pub fn missing_checks<'c>(
    lines: &[&str],
    checks: impl IntoIterator<Item = &'c str>,
) -> Vec<&'c str> {
    checks
        .into_iter()
        .filter(|c| !lines.iter().any(|l| l.starts_with(&format!("ok {c}:"))))
        .collect()
}

/// Xen's banner line.
pub fn banner(output: &str) -> Option<&str> {
    output
        .lines()
        .find(|l| l.contains("Xen version "))
        .map(|l| l.trim_start_matches("(XEN) ").trim())
}

/// The items of `all` named in `names` (every one when none is), in the order named; `what` names the kind
/// in the error for an unknown name (`configuration`, `scenario`).
pub fn select_named<T: Clone>(
    all: Vec<T>,
    names: &[String],
    name: impl Fn(&T) -> &str,
    what: &str,
) -> Result<Vec<T>> {
    if names.is_empty() {
        return Ok(all);
    }
    names
        .iter()
        .map(|n| match all.iter().find(|t| name(t) == n.as_str()) {
            Some(t) => Ok(t.clone()),
            None => bail!(
                "unknown {what} `{n}`; known: {}",
                all.iter().map(&name).collect::<Vec<_>>().join(", ")
            ),
        })
        .collect()
}

/// Prints a failed run's problems, one per line, and the last `lines` lines of its console.
pub fn print_failure(problems: &[String], output: &str, lines: usize) {
    for p in problems {
        println!("      problem: {p}");
    }
    println!("      last output:\n{}", tail(output, lines));
}

/// The last `n` lines of a console, for a failed run's report.
pub fn tail(output: &str, n: usize) -> String {
    let lines: Vec<&str> = output.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
