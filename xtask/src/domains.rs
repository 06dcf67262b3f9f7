//! Several domains on real Xen: a frontend domU and its backend, booted with dom0less (the domUs are
//! described under `/chosen` in the device tree, no toolstack), on Debian's Xen 4.17 for arm64 under QEMU.
//!
//! The device tree is QEMU's own (`-machine …,dumpdtb=`), decompiled with `dtc`, given the `/chosen` nodes
//! of the configuration (`xen,xen-bootargs`, a `multiboot,kernel` module for dom0, a `xen,domain` node per
//! domU with its kernel module), and compiled back; each kernel is loaded with `-device loader`.
//!
//! The guests (`guests/src/bin/frontend.rs`, `backend.rs`) print one `front: …`/`back: …` line per check;
//! a domU's lines come through Xen prefixed with `(dN)`. A configuration passes only when every domain it
//! expects reported every one of its checks as `ok` and its summary, no line says `FAIL` unless the
//! configuration expects exactly that line, and Xen shows no crash; QEMU is ended once every domain has
//! reported (there may be no dom0 to power the machine off), and a time-out is a failure.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::elf::Isa;
use crate::scenario::{self, Boot, Layout, Machine, XenBuild};
use crate::xen::{self, Guest};
use crate::{setup, util};

/// How long one boot may take before it counts as hung.
const TIMEOUT: Duration = Duration::from_secs(40);

/// The frontend's checks (`front: ok <check>:`), in the order it prints them.
pub const FRONT_CHECKS: [&str; 12] = [
    "memory::map_shared_info",
    "memory::decrease_reservation, populate_physmap, current_reservation",
    "repopulated page no longer holds what it held",
    "grant_table::GrantTable::map",
    "grant_table::GrantTable::grant rw 8, ro 9",
    "evtchn::alloc_unbound",
    "event 1 (backend mapped and wrote)",
    "response in the read-write page",
    "grant copy into the read-write page",
    "end_access refused while mapped",
    "evtchn::send",
    "end_access after unmap",
];

/// The frontend's checks after the second event.
pub const FRONT_LATE_CHECKS: [&str; 2] = ["event 2 (backend unmapped)", "references reused"];

/// The backend's checks (`back: ok <check>:`).
pub const BACK_CHECKS: [&str; 15] = [
    "memory::map_shared_info",
    "evtchn::bind_interdomain",
    "grant_table::MapArea::map_batch rw",
    "map of the read-only grant read-write refused",
    "grant_table::MapArea::map ro",
    "mappings only in the area's window",
    "request read through the read-only mapping",
    "safe copy into a static's frame refused",
    "grant_table::copy_unchecked from the frontend",
    "grant_table::copy to the frontend",
    "evtchn::send",
    "event 1 (frontend checked)",
    "grant_table::MapArea::unmap",
    "evtchn::send after unmap",
    "event 2 (frontend done)",
];

/// A guest role and the checks it must report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Front,
    Back,
}

impl Role {
    /// The tag the guest puts in front of its lines.
    pub fn tag(self) -> &'static str {
        match self {
            Role::Front => "front",
            Role::Back => "back",
        }
    }

    /// Every check the role reports when the exchange works.
    pub fn checks(self) -> Vec<&'static str> {
        match self {
            Role::Front => FRONT_CHECKS
                .iter()
                .chain(FRONT_LATE_CHECKS.iter())
                .copied()
                .collect(),
            Role::Back => BACK_CHECKS.to_vec(),
        }
    }
}

/// What a configuration must show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Every domain reports all its checks `ok`.
    AllOk,
    /// The run fails, and the frontend's and backend's lines name the failure: these `FAIL` line prefixes
    /// (after the role tag) must be there (a negative control, or a policy that refuses the exchange).
    Fails(Vec<(Role, &'static str)>),
}

/// One multi-domain configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// A short name.
    pub name: &'static str,
    /// What it shows, for people.
    pub title: &'static str,
    /// The frontend's instruction set (a 32-bit frontend is a 32-bit domU on arm64 Xen; backends are AArch64).
    pub front: Isa,
    /// The backend is dom0 (else a second domU, domid 2).
    pub dom0_backend: bool,
    /// `xsm=dummy` on Xen's command line (lifts Debian's default SILO policy).
    pub xsm_dummy: bool,
    /// The backend maps a grant reference the frontend never granted (negative control).
    pub wrong_ref: bool,
    /// The outcome required.
    pub expect: Expect,
    /// The roles that must print their summary before QEMU is ended.
    pub reporting: Vec<Role>,
}

impl Config {
    /// Run 1: backend dom0 + frontend domU, Debian's default policy (SILO).
    pub fn dom0_backend() -> Config {
        Config {
            name: "dom0-backend",
            title: "backend dom0 + frontend domU (XSM SILO)",
            front: Isa::A64,
            dom0_backend: true,
            xsm_dummy: false,
            wrong_ref: false,
            expect: Expect::AllOk,
            reporting: vec![Role::Front, Role::Back],
        }
    }

    /// The negative control of run 1: the backend maps reference 7 instead of 8.
    pub fn wrong_ref() -> Config {
        Config {
            name: "dom0-backend-wrong-ref",
            title: "negative control: the backend maps grant reference 7, never granted",
            front: Isa::A64,
            dom0_backend: true,
            xsm_dummy: false,
            wrong_ref: true,
            expect: Expect::Fails(vec![
                (
                    Role::Back,
                    "grant_table::MapArea::map_batch rw: reference 7: status -1",
                ),
                (Role::Front, "response in the read-write page"),
            ]),
            reporting: vec![Role::Front, Role::Back],
        }
    }

    /// Run 2 under SILO: two domUs; the frontend's `alloc_unbound` for the other domU gets `-EPERM`.
    pub fn domus_silo() -> Config {
        Config {
            name: "two-domus-silo",
            title: "two domUs, no dom0 (XSM SILO refuses the channel)",
            front: Isa::A64,
            dom0_backend: false,
            xsm_dummy: false,
            wrong_ref: false,
            expect: Expect::Fails(vec![(Role::Front, "evtchn::alloc_unbound: error 1")]),
            reporting: vec![Role::Front],
        }
    }

    /// Run 2 with `xsm=dummy`: two domUs, the same exchange as run 1.
    pub fn domus_dummy() -> Config {
        Config {
            name: "two-domus-xsm-dummy",
            title: "two domUs, no dom0 (xsm=dummy)",
            front: Isa::A64,
            dom0_backend: false,
            xsm_dummy: true,
            wrong_ref: false,
            expect: Expect::AllOk,
            reporting: vec![Role::Front, Role::Back],
        }
    }

    /// Run 1 with a 32-bit frontend domU (A32 or Thumb-2) on arm64 Xen.
    pub fn dom0_backend_32(front: Isa) -> Config {
        let (name, title) = match front {
            Isa::T32 => (
                "dom0-backend-t32",
                "backend dom0 + 32-bit frontend domU, Thumb-2 (XSM SILO)",
            ),
            _ => (
                "dom0-backend-a32",
                "backend dom0 + 32-bit frontend domU, A32 (XSM SILO)",
            ),
        };
        Config {
            name,
            title,
            front,
            ..Config::dom0_backend()
        }
    }

    /// Every configuration.
    pub fn all() -> Vec<Config> {
        vec![
            Config::dom0_backend(),
            Config::dom0_backend_32(Isa::A32),
            Config::dom0_backend_32(Isa::T32),
            Config::wrong_ref(),
            Config::domus_silo(),
            Config::domus_dummy(),
        ]
    }

    fn features(&self) -> Vec<&'static str> {
        let mut f = Vec::new();
        if !self.dom0_backend {
            f.push("domu-backend");
        }
        if self.wrong_ref {
            f.push("wrong-ref");
        }
        f
    }
}

/// The flat images of the frontend (built for `cfg.front`) and the backend (AArch64) for `cfg`.
pub fn build(cfg: &Config) -> Result<(PathBuf, PathBuf)> {
    let dir = util::target_dir().join("guests");
    let out = util::target_dir().join("domains");
    std::fs::create_dir_all(&out)?;
    let mut images = Vec::new();
    for (bin, isa) in [("frontend", cfg.front), ("backend", Isa::A64)] {
        let guest = Guest {
            isa,
            outline: false,
            underdeclared: false,
        };
        util::cross_build(
            &dir,
            "xen-hypercall-guests",
            guest.target(),
            "s",
            guest.rustflags(),
            &cfg.features(),
        )?;
        let elf = dir.join(guest.target()).join("release").join(bin);
        let data = std::fs::read(&elf).with_context(|| format!("reading {}", elf.display()))?;
        let image = out.join(format!("{bin}-{}.bin", cfg.name));
        std::fs::write(&image, xen::flat_image(&data)?)?;
        images.push(image);
    }
    Ok((images[0].clone(), images[1].clone()))
}

pub use cargo_xen::qemu::{Module, chosen_dts};

/// Whether every role in `roles` has printed its summary in `output`.
pub fn all_reported(output: &str, roles: &[Role]) -> bool {
    roles.iter().all(|r| {
        let tag = format!("{}: summary: ", r.tag());
        output.lines().any(|l| l.contains(&tag))
    })
}

/// A sign that Xen crashed or a domain died badly.
pub fn crash_line(output: &str) -> Option<&str> {
    output.lines().find(|l| {
        cargo_xen::qemu::xen_died(l)
            || l.contains("Unexpected Trap")
            || l.contains("Data Abort Trap")
            || l.contains("crashed")
    })
}

/// A role's lines, without what precedes its tag (Xen's `(dN) ` for a domU).
pub fn role_lines(output: &str, role: Role) -> Vec<&str> {
    let tag = format!("{}: ", role.tag());
    output
        .lines()
        .filter_map(|l| {
            let at = l.find(&tag)?;
            let before = &l[..at];
            // Only at the start of a line, or after Xen's domain prefix.
            (before.is_empty() || (before.starts_with("(d") && before.ends_with(") ")))
                .then(|| &l[at + tag.len()..])
        })
        .collect()
}

/// Judges a configuration's boot: the problems found (empty when it shows what it must).
pub fn judge(cfg: &Config, output: &str, timed_out: bool, build: XenBuild) -> Vec<String> {
    let mut problems = Vec::new();
    let banner_flag = build.banner_flag();
    if timed_out {
        problems.push(format!(
            "timed out after {} s before every domain reported",
            TIMEOUT.as_secs()
        ));
    }
    if let Some(l) = crash_line(output) {
        // The negative control's domains may end by crashing themselves (`SHUTDOWN_crash`), on purpose.
        let self_crash = matches!(cfg.expect, Expect::Fails(_)) && l.contains("Dom0 crashed");
        if !self_crash {
            problems.push(format!("Xen reports a crash: {l}"));
        }
    }
    if !output
        .lines()
        .any(|l| l.contains("Xen version") && l.contains(banner_flag))
    {
        problems.push(format!("Xen's banner does not say {banner_flag}"));
    }
    // The repopulated page: a debug Xen booted with `bootscrub=on` (hence `scrub_debug`) scrubs every page
    // it allocates to SCRUB_PATTERN (and BUG()s on a free page that is not); a release Xen hands out a
    // zeroed page or its freed init memory, which it counts as clean.
    let fills: &[&str] = match build {
        XenBuild::Debug => &["0xc2 in every byte"],
        XenBuild::Release => &["zero in every word", "brk #2 in every word"],
    };
    let repopulated = format!("ok {}:", FRONT_CHECKS[2]);
    if let Some(l) = role_lines(output, Role::Front)
        .into_iter()
        .find(|l| l.starts_with(&repopulated))
        && !fills.iter().any(|f| l.contains(f))
    {
        problems.push(format!(
            "front: the repopulated page is not what {} Xen fills a page with: {l}",
            build.name()
        ));
    }
    // A 32-bit frontend is loaded as a zImage where a domU's RAM starts (its link address).
    if cfg.front != Isa::A64
        && !output
            .lines()
            .any(|l| l.contains("Loading zImage from") && l.contains("to 0000000040008000"))
    {
        problems.push("Xen did not load the 32-bit frontend as a zImage at 0x40008000".to_string());
    }
    let roles: &[Role] = if cfg.dom0_backend || cfg.expect == Expect::AllOk {
        &[Role::Front, Role::Back]
    } else {
        &cfg.reporting
    };
    match &cfg.expect {
        Expect::AllOk => {
            for &r in roles {
                let lines = role_lines(output, r);
                let missing = scenario::missing_checks(&lines, r.checks());
                if !missing.is_empty() {
                    problems.push(format!(
                        "{}: no `ok` line for {}",
                        r.tag(),
                        missing.join(", ")
                    ));
                }
                for l in lines.iter().filter(|l| l.starts_with("FAIL")) {
                    problems.push(format!("{}: {l}", r.tag()));
                }
                if !lines.iter().any(|l| l.starts_with("summary: all ")) {
                    problems.push(format!("{}: no `summary: all …` line", r.tag()));
                }
            }
        }
        Expect::Fails(required) => {
            for (r, prefix) in required {
                let want = format!("FAIL {prefix}");
                if !role_lines(output, *r).iter().any(|l| l.starts_with(&want)) {
                    problems.push(format!("{}: no `{want}` line", r.tag()));
                }
            }
            for &r in &cfg.reporting {
                if !role_lines(output, r)
                    .iter()
                    .any(|l| l.starts_with("summary: FAILED"))
                {
                    problems.push(format!("{}: no `summary: FAILED …` line", r.tag()));
                }
            }
        }
    }
    problems
}

/// One configuration's result.
pub struct Run {
    pub config: Config,
    pub xen: XenBuild,
    pub boot: Boot,
    pub problems: Vec<String>,
}

/// Xen's command line beyond the runner's: Xen scrubs a page a domain gives back only with
/// `scrub-domheap` (or when the domain dies): without it the frontend's repopulated page can be the very
/// page it gave back, contents and all. `bootscrub=on` scrubs free memory at boot instead of in the
/// background and, on a debug Xen, turns on `scrub_debug`: every page allocated is then scrubbed to (or
/// checked to hold) SCRUB_PATTERN. `xsm=dummy` lifts SILO (Xen then prints a warning and counts down three
/// seconds, `common/warning.c`, before starting the domains: most of that configuration's boot time).
fn xen_args(cfg: &Config) -> &'static str {
    if cfg.xsm_dummy {
        "scrub-domheap bootscrub=on xsm=dummy"
    } else {
        "scrub-domheap bootscrub=on"
    }
}

/// Builds and boots `cfg` on `xen`: the backend is dom0 or the second domU; QEMU is ended once every role
/// in `reporting` has printed its summary (after a short grace so that Xen can report dom0's end), or at
/// the time-out.
pub fn run(cfg: &Config, build_kind: XenBuild, xen: &Path) -> Result<Run> {
    let (front, back) = build(cfg)?;
    let dir = util::target_dir().join("domains");
    let (dom0, domus) = if cfg.dom0_backend {
        (Some(back), vec![front])
    } else {
        (None, vec![front, back])
    };
    let done = |out: &str| all_reported(out, &cfg.reporting) || crash_line(out).is_some();
    let machine = Machine {
        layout: Layout::Dom0less {
            dom0,
            domus,
            dir: dir.clone(),
            name: cfg.name.to_string(),
        },
        xen_args: xen_args(cfg),
        cpus: 1,
        timeout: TIMEOUT,
        done: &done,
        qemu_args: &[],
    };
    let boot = machine.boot(xen)?;
    let log = dir.join(format!("{}-{}.log", cfg.name, build_kind.name()));
    std::fs::write(&log, &boot.output).with_context(|| format!("writing {}", log.display()))?;
    let problems = judge(cfg, &boot.output, boot.timed_out, build_kind);
    Ok(Run {
        config: cfg.clone(),
        xen: build_kind,
        boot,
        problems,
    })
}

/// Runs `configs` on the release Xen and, if `debug`, on the debug Xen.
pub fn run_all(configs: &[Config], debug: bool) -> Result<Vec<Run>> {
    setup::toolchain()?;
    setup::debian(&[setup::QEMU, setup::DTC])?;
    let mut xens = vec![(XenBuild::Release, xen::fetch_xen()?)];
    if debug {
        xens.push((XenBuild::Debug, crate::xensrc::debug_xen()?));
    }
    let mut runs = Vec::new();
    for cfg in configs {
        for (kind, path) in &xens {
            runs.push(run(cfg, *kind, path)?);
        }
    }
    Ok(runs)
}

/// A line per run.
pub fn report(runs: &[Run]) -> usize {
    let mut failed = 0;
    for r in runs {
        let good = r.problems.is_empty();
        println!(
            "{:<5} xen {:<7} {:<24} {} ({:.1} s)",
            if good { "ok" } else { "FAIL" },
            r.xen.name(),
            r.config.name,
            r.config.title,
            r.boot.elapsed.as_secs_f64()
        );
        if let Expect::Fails(required) = &r.config.expect {
            for (role, prefix) in required {
                if let Some(l) = role_lines(&r.boot.output, *role)
                    .into_iter()
                    .find(|l| l.starts_with(&format!("FAIL {prefix}")))
                {
                    println!("      {}: {l}", role.tag());
                }
            }
        }
        if !good {
            failed += 1;
            scenario::print_failure(&r.problems, &r.boot.output, 20);
        }
    }
    failed
}

/// `cargo xtask domains [CONFIG…]`: the configurations named (every one when none is) on release and debug
/// Xen.
pub fn test(names: &[String]) -> Result<()> {
    let configs = scenario::select_named(Config::all(), names, |c| c.name, "configuration")?;
    let runs = run_all(&configs, true)?;
    let failed = report(&runs);
    println!(
        "multi-domain runs: {} passed, {failed} failed",
        runs.len() - failed
    );
    if failed > 0 {
        bail!("{failed} multi-domain run(s) failed");
    }
    Ok(())
}

/// `cargo xtask demo`'s part: run 1 (backend dom0 + frontend domU) on the release Xen, what each domain
/// printed, then one line per configuration.
pub fn demo() -> Result<()> {
    let runs = run_all(&Config::all(), false)?;
    println!(
        "Two domains talking (guests/src/bin/frontend.rs and backend.rs), booted with dom0less: a frontend"
    );
    println!(
        "domU grants a backend dom0 one page read-write and one read-only and allocates it an event channel;"
    );
    println!(
        "the backend binds, maps, writes, copies both ways, unmaps; both sides notify each other.\n"
    );
    if let Some(r) = runs.iter().find(|r| r.config.name == "dom0-backend") {
        println!("== {} ==", r.config.title);
        for l in r.boot.output.lines() {
            if !role_lines(l, Role::Front).is_empty() || !role_lines(l, Role::Back).is_empty() {
                println!("  {l}");
            }
        }
    }
    println!();
    let failed = report(&runs);
    if failed > 0 {
        bail!("{failed} multi-domain run(s) failed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> String {
        let mut s = String::from("(XEN) Xen version 4.17.7 (Debian) debug=n\n");
        for c in Role::Back.checks() {
            s.push_str(&format!("back: ok {c}: fine\n"));
        }
        for c in Role::Front.checks() {
            let what = if c == FRONT_CHECKS[2] {
                "brk #2 in every word (Xen's freed init memory), was 0x5a"
            } else {
                "fine"
            };
            s.push_str(&format!("(d1) front: ok {c}: {what}\n"));
        }
        s.push_str("back: summary: all 15/15 checks passed\n(d1) front: summary: all 14/14 checks passed\n");
        s
    }

    #[test]
    fn a_complete_exchange_passes_and_each_defect_fails() {
        let cfg = Config::dom0_backend();
        assert_eq!(
            judge(&cfg, &good(), false, XenBuild::Release),
            Vec::<String>::new()
        );
        // Wrong build.
        assert!(judge(&cfg, &good(), false, XenBuild::Debug)[0].contains("debug=y"));
        // A FAIL line, a missing check, a missing summary, a hang, a crash: each is caught.
        let failed = good().replace(
            "(d1) front: ok end_access refused while mapped: fine",
            "(d1) front: FAIL end_access refused while mapped: 0",
        );
        let p = judge(&cfg, &failed, false, XenBuild::Release);
        assert!(
            p.iter().any(|p| p.contains("front: FAIL end_access")),
            "{p:?}"
        );
        assert!(
            p.iter().any(|p| p.contains("no `ok` line for end_access")),
            "{p:?}"
        );
        let quiet = good().replace("back: summary: all 15/15 checks passed\n", "");
        let p = judge(&cfg, &quiet, true, XenBuild::Release);
        assert!(
            p.iter().any(|p| p == "back: no `summary: all …` line"),
            "{p:?}"
        );
        assert!(p.iter().any(|p| p.starts_with("timed out")), "{p:?}");
        let crash = format!(
            "{}(XEN) ****************************************\n(XEN) Panic on CPU 0:\n",
            good()
        );
        let p = judge(&cfg, &crash, false, XenBuild::Release);
        assert!(p.iter().any(|p| p.contains("Panic on CPU")), "{p:?}");
        // A check line of another domain's tag in the middle of a Xen line does not count.
        assert!(role_lines("(XEN) x back: ok y", Role::Back).is_empty());
        assert_eq!(role_lines("(d2) back: ok y", Role::Back), ["ok y"]);
    }

    #[test]
    fn the_repopulated_page_must_hold_the_fill_of_the_build() {
        let cfg = Config::dom0_backend();
        let debug = |fill: &str| {
            good()
                .replace("debug=n", "debug=y")
                .replace("brk #2 in every word (Xen's freed init memory)", fill)
        };
        let scrubbed = debug("0xc2 in every byte (a debug Xen's scrub pattern)");
        assert_eq!(
            judge(&cfg, &scrubbed, false, XenBuild::Debug),
            Vec::<String>::new()
        );
        // A debug Xen that handed out an unscrubbed page, and a release Xen that shows the debug pattern.
        let p = judge(&cfg, &debug("brk #2 in every word"), false, XenBuild::Debug);
        assert!(
            p.iter().any(|p| p.contains("not what debug Xen fills")),
            "{p:?}"
        );
        let p = judge(
            &cfg,
            &scrubbed.replace("debug=y", "debug=n"),
            false,
            XenBuild::Release,
        );
        assert!(
            p.iter().any(|p| p.contains("not what release Xen fills")),
            "{p:?}"
        );
    }

    #[test]
    fn a_32_bit_frontend_must_be_loaded_as_a_zimage() {
        let cfg = Config::dom0_backend_32(Isa::T32);
        let p = judge(&cfg, &good(), false, XenBuild::Release);
        assert_eq!(
            p,
            ["Xen did not load the 32-bit frontend as a zImage at 0x40008000"]
        );
        let loaded = format!(
            "(XEN) Loading zImage from 000000004a000000 to 0000000040008000-0000000040022000\n{}",
            good()
        );
        assert_eq!(
            judge(&cfg, &loaded, false, XenBuild::Release),
            Vec::<String>::new()
        );
    }

    #[test]
    fn an_expected_failure_needs_its_line() {
        let cfg = Config::domus_silo();
        let refused = "(XEN) Xen version 4.17.7 (Debian) debug=n\n(d1) front: FAIL evtchn::alloc_unbound: error 1\n\
                       (d1) front: summary: FAILED, 4/5 checks passed\n";
        assert_eq!(
            judge(&cfg, refused, false, XenBuild::Release),
            Vec::<String>::new()
        );
        // The exchange passing where SILO must refuse it is a failure.
        let p = judge(&cfg, &good(), false, XenBuild::Release);
        assert!(
            p.iter()
                .any(|p| p.contains("no `FAIL evtchn::alloc_unbound: error 1` line")),
            "{p:?}"
        );
        // Another errno is not the refusal asked for.
        let other = refused.replace("error 1\n", "error 22\n");
        assert!(!judge(&cfg, &other, false, XenBuild::Release).is_empty());
    }
}
