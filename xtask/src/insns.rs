//! Executed guest instructions per bench call site, counted under QEMU with `-icount shift=0` (where the
//! PMU cycle counter advances once per instruction) by the image in `benches/insns/`.
//!
//! The image prints raw counter deltas per call; this module turns them into instructions of the site:
//! `delta(site) − delta(site_empty) + instructions(site_empty) − 1`, where `site_empty` (an empty function
//! of the same signature, counted in the ELF) cancels the calling sequence and the counter reads, and the
//! 1 is the `eret` of the image's trap handler (the trap's own fixed cost). A control keeps the method
//! honest: every straight-line inline site must measure exactly its instruction count in the ELF.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::elf::{self, Function, Isa};
use crate::{setup, util};

/// The opt-level the images are built at (that of the size tables' per-site figures).
pub const OPT: &str = "s";

/// One measurement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Count {
    /// Instruction set.
    pub isa: Isa,
    /// The site function (`site_inline_2`, `work_outline`, …).
    pub site: String,
    /// Guest instructions executed by one call of it, the `hvc` included, the trap handler excluded.
    pub instructions: u64,
}

fn configs() -> [(Isa, &'static str, &'static str, &'static str); 3] {
    [
        (Isa::A64, "aarch64-unknown-none", "", "qemu-system-aarch64"),
        (Isa::A32, "armv7a-none-eabi", "", "qemu-system-arm"),
        (
            Isa::T32,
            "armv7a-none-eabi",
            "-Ctarget-feature=+thumb-mode",
            "qemu-system-arm",
        ),
    ]
}

fn build(isa: Isa, target: &str, flags: &str) -> Result<PathBuf> {
    let dir = util::target_dir().join("insns").join(isa.name());
    util::cross_build(&dir, "xen-hypercall-bench-insns", target, OPT, flags, &[])?;
    Ok(dir.join(target).join("release/insns"))
}

fn run_qemu(qemu: &str, image: &PathBuf) -> Result<String> {
    let cpu = if qemu.ends_with("aarch64") {
        "cortex-a57"
    } else {
        "cortex-a15"
    };
    let mut child = Command::new(qemu)
        .args([
            "-M",
            "virt,virtualization=on",
            "-cpu",
            cpu,
            "-nographic",
            "-semihosting",
        ])
        .args(["-icount", "shift=0", "-kernel"])
        .arg(image)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {qemu}"))?;
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{qemu} timed out running {}", image.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // Semihosting output reaches stdout or stderr depending on QEMU's console set-up: read both.
    let mut out = String::new();
    if let Some(mut o) = child.stdout.take() {
        o.read_to_string(&mut out)?;
    }
    if let Some(mut e) = child.stderr.take() {
        e.read_to_string(&mut out)?;
    }
    if !status.success() {
        bail!("{} exited with {status}:\n{out}", image.display());
    }
    Ok(out)
}

/// Parses the image's `<site> <delta>` lines; fails unless it ends with `done`.
pub fn parse(out: &str) -> Result<BTreeMap<String, u64>> {
    let mut m = BTreeMap::new();
    let mut done = false;
    for line in out.lines() {
        if line.trim() == "done" {
            done = true;
            continue;
        }
        let (name, v) = line
            .split_once(' ')
            .with_context(|| format!("unexpected line {line:?}"))?;
        let v: u64 = v
            .trim()
            .parse()
            .with_context(|| format!("{name}: not a count: {v:?}"))?;
        m.insert(name.to_string(), v);
    }
    if !done {
        bail!("the bench image did not finish:\n{out}");
    }
    Ok(m)
}

/// Whether a function has no branch but its return.
fn straight_line(f: &Function) -> bool {
    f.insns.iter().all(|i| {
        let m = i.mnemonic.as_str();
        !(m == "b" || m.starts_with("bcc") || m.starts_with("cb") || m.starts_with("tb"))
    })
}

/// Turns raw deltas into instruction counts and applies the control.
pub fn counts(isa: Isa, deltas: &BTreeMap<String, u64>, funcs: &[Function]) -> Result<Vec<Count>> {
    let find = |name: &str| funcs.iter().find(|f| f.name == name);
    let empty = find("site_empty").context("site_empty is missing from the image")?;
    let empty_delta = *deltas
        .get("site_empty")
        .context("no site_empty measurement")?;
    let mut v = Vec::new();
    for (site, &d) in deltas.iter().filter(|(s, _)| s.as_str() != "site_empty") {
        let n = (d + empty.insns.len() as u64)
            .checked_sub(empty_delta + 1)
            .with_context(|| format!("{site}: delta {d} below the empty site's {empty_delta}"))?;
        if site.starts_with("site_inline_") {
            let f = find(site).with_context(|| format!("{site} is missing from the image"))?;
            if straight_line(f) && n != f.insns.len() as u64 {
                bail!(
                    "{} {site}: measured {n} instructions, but the function is {} straight-line instructions",
                    isa.name(),
                    f.insns.len()
                );
            }
        }
        v.push(Count {
            isa,
            site: site.clone(),
            instructions: n,
        });
    }
    Ok(v)
}

/// Builds and runs the image for A64, A32 and T32; returns every site's count.
pub fn measure() -> Result<Vec<Count>> {
    setup::toolchain()?;
    setup::debian(&[setup::QEMU])?;
    let mut all = Vec::new();
    for (isa, target, flags, qemu) in configs() {
        let image = build(isa, target, flags)?;
        let out = run_qemu(qemu, &image)?;
        let deltas = parse(&out).with_context(|| format!("{} bench image", isa.name()))?;
        let funcs = elf::read_functions(&std::fs::read(&image)?)?;
        all.extend(counts(isa, &deltas, &funcs)?);
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn func(name: &str, n: usize) -> Function {
        // `n` A64 `nop`s.
        let code: Vec<u8> = (0..n).flat_map(|_| 0xD503_201Fu32.to_le_bytes()).collect();
        Function {
            name: name.into(),
            isa: Isa::A64,
            addr: 0,
            size: code.len() as u64,
            insns: elf::decode(Isa::A64, &code, 0),
            origin: String::new(),
            relocs: Vec::new(),
        }
    }

    #[test]
    fn parses_and_subtracts_the_calling_sequence_and_the_handler() {
        let d = parse("site_empty 12\nsite_inline_0 36\nwork_inline 88\ndone\n").unwrap();
        let funcs = [func("site_empty", 6), func("site_inline_0", 29)];
        let c = counts(Isa::A64, &d, &funcs).unwrap();
        assert_eq!(
            c.iter()
                .find(|c| c.site == "site_inline_0")
                .unwrap()
                .instructions,
            29
        );
        assert_eq!(
            c.iter()
                .find(|c| c.site == "work_inline")
                .unwrap()
                .instructions,
            88 - 12 + 6 - 1
        );
    }

    #[test]
    fn the_control_catches_a_wrong_count() {
        let d = parse("site_empty 12\nsite_inline_0 37\ndone\n").unwrap();
        let funcs = [func("site_empty", 6), func("site_inline_0", 29)];
        let e = counts(Isa::A64, &d, &funcs).unwrap_err().to_string();
        assert!(e.contains("measured 30"), "{e}");
    }

    #[test]
    fn an_unfinished_run_is_an_error() {
        assert!(parse("site_empty 12\n").is_err());
        assert!(parse("site_empty x\ndone\n").is_err());
    }
}
