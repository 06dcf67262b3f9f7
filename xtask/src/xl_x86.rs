//! Xen's real toolstack on x86-64: Debian's amd64 Linux as a 64-bit PV dom0 on Debian's Xen 4.17 for
//! amd64 (release) and the debug Xen built from Debian's source, under `qemu-system-x86_64` (TCG, `-cpu
//! max`), running the ARM scenarios' `/init` ([`xl::init_script`]) and `xl create` of the PVH domU of
//! `guests-x86/` (`xl-pvh`, `type = "pvh"`), judged as the ARM scenarios are ([`xl::judge`]).
//!
//! - The packages: `cargo-xen`'s dom0 ([`cargo_xen::linux`]) for amd64 ([`xl::AMD64`]: also liblzma and
//!   libzstd, which libxenguest needs there), downloaded with a private apt state under `target/xl-x86/`
//!   ([`xl::fetch_arch`]).
//! - The boot ([`command`]): Xen is QEMU's multiboot kernel; QEMU's `-initrd` takes the multiboot
//!   modules, comma-separated: dom0's kernel (the package's bzImage, which Xen unpacks) followed by its
//!   command line, then the initramfs. Xen's command line needs `smap=0`: with SMAP on, dom0 dies about
//!   6 s in at the `iretq` of Linux's `sync_core()` (a 64-bit PV kernel runs in ring 3 on user pages, and
//!   QEMU 7.2's TCG appears to treat the IRET frame's read as a supervisor access). dom0 gets
//!   [`DOM0_MEMORY`] of [`MACHINE_MEMORY`] (less fails: "allocation is too small for kernel image").
//! - The end: dom0's `poweroff -f` goes through ACPI S5 (`(XEN) Entering ACPI S5 state.`), and QEMU
//!   exits ([`xl::dom0_off`]).
//! - The domU is the x86-64 ELF itself (libxl loads a PVH kernel by its `PHYS32_ENTRY` note), built with
//!   `vmmcall` stubs: QEMU's `-cpu max` is an AMD CPU with SVM. A domU of these scenarios is told apart by
//!   its binary ([`BINS`]); its `isa` is not used.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::xen::XenBuild;
use crate::xl::{self, Dom0, DomU, Run, Scenario, Shutdown, Step, Value};
use crate::{setup, util, x86};

/// Where the amd64 packages, their unpacked trees, the initramfs images and the console logs live.
pub fn dir() -> PathBuf {
    util::target_dir().join("xl-x86")
}

/// The domU binaries of `guests-x86/` that these scenarios start.
pub const BINS: [&str; 1] = ["xl-pvh"];

/// Whether `s` is one of these scenarios (its domUs are x86-64 binaries).
pub fn is_x86(s: &Scenario) -> bool {
    s.domus.iter().any(|d| BINS.contains(&d.bin))
}

/// QEMU's memory.
pub const MACHINE_MEMORY: &str = "512M";
/// dom0's memory (`dom0_mem`, its initial and maximum size).
pub const DOM0_MEMORY: &str = "256M,max:256M";
/// How long one boot may take (one took 9–26 s of QEMU time here, depending on the machine's load).
pub const TIMEOUT: Duration = Duration::from_secs(120);

/// dom0's kernel command line: the Xen console (`hvc0`), `/init` from the initramfs, a panic ends the
/// run at once.
pub const DOM0_ARGS: &str = "console=hvc0 earlyprintk=xen rdinit=/init quiet panic=-1";

/// The PVH domU: it finds its console and xenstore rings from its HVM parameters, reads its name and
/// domid from xenstore, writes `data/pvh` and waits for dom0's `data/go`, and waits with PV time.
pub fn pvh() -> Scenario {
    Scenario {
        name: "pvh",
        title: "an x86-64 PVH xl domU under a Linux PV dom0: console ring, xenstore, PV time",
        blkback: "",
        netback: "",
        domus: vec![DomU {
            config: vec!["type = \"pvh\""],
            console: vec![
                "xl-pvh: hello from an x86-64 PVH domU started by xl",
                // `memory = 16` and libxl's 1 MiB of slack (`LIBXL_MAXMEM_CONSTANT`), in 4 KiB pages.
                "xl-pvh: MAX_PAGES = 4352",
                "xl-pvh: ok start info",
                "xl-pvh: name = pvh",
                "xl-pvh: ok xenstore write data/pvh",
                "xl-pvh: ok dom0 answered",
                "xl-pvh: ok clock",
                "xl-pvh: ok poll 20 ms",
                "xl-pvh: ok Events::wait 20 ms",
                "xl-pvh: ok one-shot timer 20 ms",
                "xl-pvh: ok hvm::set_callback_vector",
                "xl-pvh: ok wallclock",
                "xl-pvh: done",
            ],
            xenstore: xl::toolstack_keys("pvh", Value::Guest("DOMID"), "16384"),
            dom0: vec![
                Step::Await("data/pvh", "hello from a PVH domU"),
                Step::Write("data/go", "1"),
            ],
            ..DomU::new("pvh", "xl-pvh")
        }],
        control: vec![],
    }
}

/// The negative control (release Xen only): the PVH domU judged against wrong expectations (its ports
/// swapped, a line it never prints, a crash where it powers off); the judge must report exactly these.
pub fn pvh_control() -> Scenario {
    let mut s = pvh();
    let d = &mut s.domus[0];
    d.console.push("xl-pvh: a line never printed");
    d.xenstore[4] = ("console/port", Value::Guest("STORE_EVTCHN"));
    d.xenstore[6] = ("store/port", Value::Guest("CONSOLE_EVTCHN"));
    d.shutdown = Shutdown::Crash;
    Scenario {
        name: "pvh-control",
        title: "negative control: the PVH domU judged against wrong expectations",
        blkback: "",
        netback: "",
        control: vec![
            "pvh: no console line `xl-pvh: a line never printed…`",
            "pvh: xenstore console/port = 2, the domU's STORE_EVTCHN = 0x1 (1)",
            "pvh: xenstore store/port = 1, the domU's CONSOLE_EVTCHN = 0x2 (2)",
            "pvh: xl's log does not say it shut down with reason Crash (code 3)",
        ],
        ..s
    }
}

/// These scenarios, for `cargo xtask xl`.
pub fn scenarios() -> Vec<Scenario> {
    vec![pvh(), pvh_control()]
}

/// Downloads and unpacks the amd64 packages under [`dir`] unless they are there.
pub fn fetch() -> Result<Dom0> {
    xl::fetch_arch(&dir(), xl::AMD64)
}

/// Builds the domU binaries (inline `vmmcall` stubs); returns the ELF of each scenario's domU by name.
fn build_domus(scenario: &Scenario) -> Result<Vec<(&'static str, Vec<u8>)>> {
    let dir = x86::build_guests(&["amd"])?;
    scenario
        .domus
        .iter()
        .map(|d| {
            if !BINS.contains(&d.bin) {
                bail!("{}: {} is not an x86-64 domU of guests-x86", d.name, d.bin);
            }
            let elf = dir.join("x86_64-unknown-none/release").join(d.bin);
            let data = std::fs::read(&elf).with_context(|| format!("reading {}", elf.display()))?;
            Ok((d.name, data))
        })
        .collect()
}

/// Writes the scenario's gzip'd initramfs (the unpacked packages, the Xen modules, `/init`, each domU's
/// ELF and config); returns its path.
pub fn initramfs(scenario: &Scenario, dom0: &Dom0) -> Result<PathBuf> {
    let images = build_domus(scenario)?;
    let modules: Vec<String> = xl::MODULES.iter().map(|m| format!("drivers/{m}")).collect();
    let mut cpio = xl::base_cpio(dom0, modules.iter().map(String::as_str))?;
    cpio.file("init", 0o755, xl::init_script(scenario).as_bytes());
    for (d, (name, image)) in scenario.domus.iter().zip(&images) {
        cpio.file(
            &format!("etc/xen/{name}.cfg"),
            0o644,
            d.config_file().as_bytes(),
        );
        cpio.file(&format!("domu/{name}.bin"), 0o644, image);
    }
    let out = dir().join(format!("initramfs-{}.cpio.gz", scenario.name));
    std::fs::write(&out, xl::gzip(&cpio.finish())?)
        .with_context(|| format!("writing {}", out.display()))?;
    Ok(out)
}

/// Xen's command line: the first serial port, every log level, dom0's memory and one vCPU, no boot-time
/// scrubbing (slow under TCG), SMAP off (see the module documentation), `noreboot`.
pub fn xen_args() -> String {
    format!(
        "console=com1 com1=115200,8n1 loglvl=all guest_loglvl=all dom0_mem={DOM0_MEMORY} dom0_max_vcpus=1 \
         bootscrub=0 smap=0 noreboot"
    )
}

/// The QEMU command that boots `xen` (x86-64, multiboot) with the dom0 `kernel` and `initrd` as its
/// modules. A path with a comma is refused: QEMU's `-initrd` separates modules with commas.
pub fn command(xen: &Path, kernel: &Path, initrd: &Path) -> Result<std::process::Command> {
    let path = |p: &Path| -> Result<String> {
        let s = p.to_str().context("non-UTF-8 path")?;
        if s.contains(',') || s.contains(' ') {
            bail!("{s}: QEMU's multiboot modules cannot have a path with a comma or a space");
        }
        Ok(s.to_string())
    };
    let mut c = crate::setup::qemu("qemu-system-x86_64");
    c.args([
        "-accel",
        "tcg",
        "-cpu",
        "max",
        "-smp",
        "1",
        "-m",
        MACHINE_MEMORY,
    ])
    .args(["-nographic", "-no-reboot", "-nic", "none"])
    .arg("-kernel")
    .arg(xen)
    .arg("-append")
    .arg(xen_args())
    .arg("-initrd")
    .arg(format!("{} {DOM0_ARGS},{}", path(kernel)?, path(initrd)?));
    Ok(c)
}

/// The hypervisors: Debian's release build, and the debug build from Debian's source.
pub fn hypervisors() -> Result<Vec<(XenBuild, PathBuf)>> {
    Ok(vec![
        (XenBuild::Release, x86::release_xen()?),
        (XenBuild::Debug, x86::debug_xen()?),
    ])
}

/// Builds the initramfs of `scenario` and boots it on each of `xens`.
pub fn run(scenario: &Scenario, dom0: &Dom0, xens: &[(XenBuild, PathBuf)]) -> Result<Vec<Run>> {
    let start = Instant::now();
    let initrd = initramfs(scenario, dom0)?;
    let boots = xl::Boots {
        scenario,
        initrd: &initrd,
        build_seconds: start.elapsed().as_secs_f64(),
        logs: &dir(),
        timeout: TIMEOUT,
    };
    boots.each(
        xens,
        |xen| command(xen, &dom0.kernel, &initrd),
        |o| xl::dom0_off(o) || xl::crash_line(o).is_some(),
    )
}

/// Runs `scenarios` on release and debug Xen (a negative control on release Xen only).
pub fn run_all(scenarios: &[Scenario]) -> Result<Vec<Run>> {
    setup::toolchain()?;
    setup::debian(&[setup::QEMU_X86])?;
    let dom0 = fetch()?;
    let xens = hypervisors()?;
    let mut runs = Vec::new();
    for s in scenarios {
        let xens = if s.control.is_empty() {
            &xens[..]
        } else {
            &xens[..1]
        };
        runs.extend(run(s, &dom0, xens)?);
    }
    Ok(runs)
}

/// Runs `scenarios` ([`run_all`]) and reports them as `cargo xtask xl` does; fails unless all pass.
pub fn test(scenarios: &[Scenario]) -> Result<()> {
    let start = Instant::now();
    let runs = run_all(scenarios)?;
    xl::summary(" on x86-64", &runs, &fetch()?, &dir(), start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_machine_boots_xen_with_dom0_and_its_initramfs_as_modules() {
        let c = command(
            Path::new("/t/xen"),
            Path::new("/t/vmlinuz"),
            Path::new("/t/i.gz"),
        )
        .unwrap();
        let args: Vec<String> = c
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let after = |flag: &str| {
            let i = args.iter().position(|a| a == flag).unwrap();
            args[i + 1].clone()
        };
        assert!(std::path::Path::new(c.get_program()).ends_with("qemu-system-x86_64"));
        assert_eq!(after("-kernel"), "/t/xen");
        assert_eq!(
            after("-initrd"),
            "/t/vmlinuz console=hvc0 earlyprintk=xen rdinit=/init quiet panic=-1,/t/i.gz"
        );
        let xen = after("-append");
        for want in [
            "smap=0",
            "dom0_mem=256M,max:256M",
            "console=com1",
            "noreboot",
        ] {
            assert!(xen.split(' ').any(|w| w == want), "{want} not in {xen}");
        }
        // A comma in a module's path would split it into two modules.
        assert!(command(Path::new("/t/xen"), Path::new("/t/a,b"), Path::new("/t/i")).is_err());
    }

    #[test]
    fn the_scenarios_are_told_apart_by_their_domus() {
        assert!(scenarios().iter().all(is_x86));
        assert!(!Scenario::all().iter().any(is_x86));
        // The names do not clash with the ARM scenarios' (`cargo xtask xl NAME` picks one).
        for s in scenarios() {
            assert!(!Scenario::all().iter().any(|a| a.name == s.name));
        }
    }
}
