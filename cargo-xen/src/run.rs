//! `cargo xen run`: boots images on Xen 4.17 for arm64 under QEMU, as dom0 or (`--dom0less`) as dom0 plus
//! domUs described in the device tree, streams the console, and says how the run ended.
//!
//! The verdict comes from Xen's console, never from QEMU's exit status: the run succeeds only when Xen
//! reports that dom0 shut down with reason poweroff (`Hardware Dom0 halted`); a crash, a reboot, a Xen
//! panic (Xen panics when it cannot load dom0's image), a domU that Xen reports crashed, QEMU ending without
//! that report, and the time-out are failures. (Xen reports the shutdown of the hardware domain only: a
//! domU's poweroff is silent, so in a dom0less run dom0 decides when the run is over.)

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use object::{Architecture, Object};

use crate::qemu::{self, Boot, Module};
use crate::{setup, xensrc};

/// The guest architecture of an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// AArch64: an arm64 `Image`.
    A64,
    /// 32-bit ARM (A32 or Thumb-2 code): a `zImage`.
    A32,
}

impl Arch {
    /// `a64` or `a32`.
    pub fn name(self) -> &'static str {
        match self {
            Arch::A64 => "a64",
            Arch::A32 => "a32",
        }
    }
}

/// The arm64 `Image` magic (`ARM\x64` at offset 0x38).
const IMAGE_MAGIC: &[u8; 4] = b"ARM\x64";
/// The zImage magic (at offset 0x24).
const ZIMAGE_MAGIC: u32 = 0x016f_2818;

/// What the header of a flat image says it is.
pub fn flat_arch(image: &[u8]) -> Option<Arch> {
    if image.get(0x38..0x3c) == Some(&IMAGE_MAGIC[..]) {
        return Some(Arch::A64);
    }
    let word = image.get(0x24..0x28)?;
    (u32::from_le_bytes([word[0], word[1], word[2], word[3]]) == ZIMAGE_MAGIC).then_some(Arch::A32)
}

/// Turns the file `data` (an ELF executable, an arm64 `Image` or an ARM `zImage`) into the flat image Xen
/// loads, and says its architecture. An ELF is laid out as `objcopy -O binary` would; the result must
/// start with an `Image` or `zImage` header, or Xen could not load it.
pub fn prepare(data: &[u8]) -> Result<(Vec<u8>, Arch)> {
    if data.is_empty() {
        bail!("empty file");
    }
    if data.starts_with(b"\x7fELF") {
        let file = object::File::parse(data).context("malformed or truncated ELF file")?;
        let arch = match file.architecture() {
            Architecture::Aarch64 => Arch::A64,
            Architecture::Arm => Arch::A32,
            other => {
                bail!("an ELF for {other:?}: Xen on arm64 boots AArch64 and 32-bit ARM guests")
            }
        };
        let flat = qemu::flat_image(data)?;
        match flat_arch(&flat) {
            Some(a) if a == arch => Ok((flat, arch)),
            _ => bail!(
                "the ELF's first loaded byte is not an {} header: Xen cannot load it (the template's entry \
                 code and linker script put one there)",
                if arch == Arch::A64 {
                    "arm64 Image"
                } else {
                    "ARM zImage"
                }
            ),
        }
    } else {
        let arch = flat_arch(data).context(
            "neither an ELF file nor an arm64 Image nor an ARM zImage (no header magic)",
        )?;
        Ok((data.to_vec(), arch))
    }
}

/// How a run ended, from Xen's console.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// dom0 shut down with reason poweroff.
    Poweroff,
    /// Anything else, with the line or reason that says so.
    Failed(String),
}

/// The first line of `output` that ends the run, and whether it is a poweroff.
fn ending(output: &str) -> Option<Outcome> {
    for l in output.lines() {
        if l.contains("Hardware Dom0 halted") {
            return Some(Outcome::Poweroff);
        }
        let bad = l.contains("Hardware Dom0 crashed")
            || l.contains("Hardware Dom0 shutdown")
            || l.contains("Hardware domain 0 did unsupported soft reset")
            || l.contains("Panic on CPU")
            || (l.contains("Domain ") && l.contains(") crashed on cpu#"))
            || l.contains("reported crashed by domain");
        if bad {
            // Xen's line may follow the guest's unfinished one (`test NAME ... (XEN) …`).
            let l = l
                .find("(XEN) ")
                .map_or(l, |i| &l[i + "(XEN) ".len()..])
                .trim();
            // Xen puts the reason of a panic on the next line.
            let next = output
                .lines()
                .skip_while(|x| !x.contains(l))
                .nth(1)
                .filter(|_| l.contains("Panic on CPU"))
                .map(|n| format!(": {}", n.trim_start_matches("(XEN) ").trim()))
                .unwrap_or_default();
            return Some(Outcome::Failed(format!("{l}{next}")));
        }
    }
    None
}

/// Judges a run's console: [`Outcome::Poweroff`] only when Xen reported dom0's poweroff first.
pub fn judge(output: &str, timed_out: bool, timeout: Duration) -> Outcome {
    match ending(output) {
        Some(o) => o,
        None if timed_out => Outcome::Failed(format!(
            "timed out after {} s without Xen reporting dom0's shutdown (the guest hung?)",
            timeout.as_secs()
        )),
        None => Outcome::Failed("QEMU ended without Xen reporting dom0's shutdown".into()),
    }
}

/// Boots the flat image `image` as dom0 on `xen`; ends as soon as Xen reports how dom0 ended, or at the
/// time-out. `cargo xtask xen` boots its guests with this too.
pub fn boot_dom0(xen: &Path, image: &Path, timeout: Duration, stream: bool) -> Result<Boot> {
    boot_dom0_with(xen, image, "", timeout, stream)
}

/// [`boot_dom0`] with `xen_args` added to Xen's command line.
pub fn boot_dom0_with(
    xen: &Path,
    image: &Path,
    xen_args: &str,
    timeout: Duration,
    stream: bool,
) -> Result<Boot> {
    let stream = if stream {
        qemu::Stream::All
    } else {
        qemu::Stream::Off
    };
    boot_dom0_full(xen, image, xen_args, qemu::DOM0_CMDLINE, timeout, stream)
}

/// [`boot_dom0_with`] with dom0's command line `cmdline` (see [`guest_cmdline`]).
pub fn boot_dom0_full(
    xen: &Path,
    image: &Path,
    xen_args: &str,
    cmdline: &str,
    timeout: Duration,
    stream: qemu::Stream,
) -> Result<Boot> {
    let bootargs = format!("{} {xen_args}", qemu::XEN_BOOTARGS);
    let mut cmd = qemu::dom0_command_full(xen, image, bootargs.trim(), cmdline);
    qemu::run_qemu_stream(&mut cmd, timeout, |out| ending(out).is_some(), stream)
}

/// The longest guest command line: Xen keeps at most 1024 bytes of a boot module's command line
/// (`BOOTMOD_MAX_CMDLINE`), the terminating NUL included.
pub const MAX_CMDLINE: usize = 1023;

/// dom0's command line with the program arguments `args` (what cargo gives its runner after the image):
/// `console=hvc0`, then `--` and the arguments, separated by spaces, as Linux passes arguments after `--`
/// to init. An argument that is empty or has a character other than printable ASCII without space cannot
/// be passed and is refused, as is a command line longer than [`MAX_CMDLINE`].
pub fn guest_cmdline(args: &[String]) -> Result<String> {
    let mut line = qemu::DOM0_CMDLINE.to_string();
    if args.is_empty() {
        return Ok(line);
    }
    line.push_str(" --");
    for a in args {
        if a.is_empty() || !a.bytes().all(|b| b.is_ascii_graphic()) {
            bail!(
                "the guest argument {a:?} cannot be passed on Xen's command line (printable ASCII without \
                 spaces only)"
            );
        }
        line.push(' ');
        line.push_str(a);
    }
    if line.len() > MAX_CMDLINE {
        bail!(
            "the guest arguments make a command line of {} bytes; Xen keeps at most {MAX_CMDLINE}",
            line.len()
        );
    }
    Ok(line)
}

/// The test whose `test NAME ... ` line (the protocol of the `xen-test` crate) came last in `output` without
/// its verdict (`ok`, `FAILED`, `ignored`) after it: the test that was running when the run ended.
pub fn running_test(output: &str) -> Option<&str> {
    let mut last = None;
    for (at, _) in output.match_indices("test ") {
        let after = &output[at + "test ".len()..];
        let name_len = after.find(char::is_whitespace).unwrap_or(after.len());
        let (name, rest) = after.split_at(name_len);
        if let Some(rest) = rest.strip_prefix(" ... ")
            && !name.is_empty()
        {
            last = Some((name, rest));
        }
    }
    let (name, rest) = last?;
    // The verdict comes after the test's own output, possibly on a later line.
    let finished = rest.lines().any(|l| {
        let l = l.trim();
        l.ends_with("ok") || l.ends_with("FAILED") || l.starts_with("ignored")
    });
    (!finished).then_some(name)
}

/// A failure made clearer by what the guest reported: the `test result: FAILED…` summary of a test run
/// (`xen-test`), an error line it printed, or the test that was running when the guest hung or crashed.
pub fn explain(output: &str, outcome: Outcome) -> Outcome {
    let Outcome::Failed(why) = outcome else {
        return outcome;
    };
    if let Some(summary) = output
        .lines()
        .rev()
        .find(|l| l.starts_with("test result: FAILED"))
    {
        return Outcome::Failed(summary.trim().to_string());
    }
    if let Some(err) = output
        .lines()
        .rev()
        .find(|l| l.starts_with("xen-test: error:"))
    {
        return Outcome::Failed(format!("{} ({why})", err.trim()));
    }
    match running_test(output) {
        Some(name) => Outcome::Failed(format!("while test `{name}` was running: {why}")),
        None => Outcome::Failed(why),
    }
}

/// Options of `cargo xen run`.
#[derive(Clone, Debug)]
pub struct Options {
    /// The images: dom0 first, then the domUs (with `dom0less`).
    pub images: Vec<PathBuf>,
    /// The architecture the images must have.
    pub arch: Option<Arch>,
    /// Boot the second and further images as domUs described in the device tree.
    pub dom0less: bool,
    /// A debug build of Xen (built from Debian's source) instead of Debian's release build.
    pub debug_xen: bool,
    /// How long the run may take.
    pub timeout: Duration,
    /// Added to Xen's command line (e.g. `xsm=dummy`, `scrub-domheap`).
    pub xen_args: String,
    /// Stream the console to stdout.
    pub stream: bool,
    /// Stream only the guest's lines, not Xen's (`(XEN) …`); the verdict still reads them all.
    pub hide_xen: bool,
    /// The program arguments, passed on dom0's command line (see [`guest_cmdline`]); not with `dom0less`.
    pub guest_args: Vec<String>,
    /// `--xl`: boot the image as a domU that `xl` creates from a Linux dom0 ([`crate::xl`]), with these
    /// configuration lines added (`--xl-config`'s, then `--xl-arg`'s).
    pub xl: Option<Vec<String>>,
}

pub use crate::setup::cache_dir;

/// Runs `cargo xen run`: prepares the images, fetches (or builds) Xen, boots, and returns the outcome.
pub fn run(opts: &Options) -> Result<Outcome> {
    if opts.images.is_empty() {
        bail!("no image to boot");
    }
    if opts.images.len() > 1 && !opts.dom0less {
        bail!("several images need --dom0less (the first is dom0, the others domUs)");
    }
    if opts.dom0less && !opts.guest_args.is_empty() {
        bail!("guest arguments are passed to dom0 alone: not with --dom0less");
    }
    let cmdline = guest_cmdline(&opts.guest_args)?;
    let cache = cache_dir()?;
    let work = cache.join("run");
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let mut flats = Vec::new();
    for (i, path) in opts.images.iter().enumerate() {
        let data = std::fs::read(path).with_context(|| format!("{}", path.display()))?;
        let (flat, arch) = prepare(&data).with_context(|| format!("{}", path.display()))?;
        if let Some(want) = opts.arch
            && want != arch
        {
            bail!(
                "{}: an {} image, but --arch {} was asked for",
                path.display(),
                arch.name(),
                want.name()
            );
        }
        let out = work.join(format!("image{i}-{}.bin", arch.name()));
        std::fs::write(&out, flat)?;
        flats.push(out);
    }
    let mut packages = vec![setup::QEMU];
    if opts.dom0less {
        packages.push(setup::DTC);
    }
    setup::debian(&packages)?;
    let xen = if opts.debug_xen {
        xensrc::debug_xen(&cache.join("xen-src"))?
    } else {
        qemu::fetch_xen(&cache.join("xen"))?
    };
    let stream = match (opts.stream, opts.hide_xen) {
        (false, _) => qemu::Stream::Off,
        (true, false) => qemu::Stream::All,
        (true, true) => qemu::Stream::Guest,
    };
    let boot = if opts.dom0less {
        let modules: Vec<Module> = flats
            .iter()
            .enumerate()
            .map(|(i, p)| Module::at_slot(i, p))
            .collect::<Result<_>>()?;
        let bootargs = format!("{} {}", qemu::XEN_BOOTARGS, opts.xen_args);
        let dtb = qemu::dom0less_dtb(
            &work,
            "dom0less",
            bootargs.trim(),
            Some(&modules[0]),
            &modules[1..],
        )?;
        qemu::run_qemu_stream(
            &mut qemu::dom0less_command(&xen, &dtb, &modules),
            opts.timeout,
            |out| ending(out).is_some(),
            stream,
        )?
    } else {
        boot_dom0_full(
            &xen,
            &flats[0],
            &opts.xen_args,
            &cmdline,
            opts.timeout,
            stream,
        )?
    };
    Ok(explain(
        &boot.output,
        judge(&boot.output, boot.timed_out, opts.timeout),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(60);

    #[test]
    fn only_a_poweroff_succeeds() {
        let halted = "(XEN) Xen version 4.17\nhello\n(XEN) Hardware Dom0 halted: halting machine\n";
        assert_eq!(judge(halted, false, T), Outcome::Poweroff);
        let crashed = "(XEN) Hardware Dom0 crashed: 'noreboot' set - not rebooting.\n";
        assert!(matches!(judge(crashed, false, T), Outcome::Failed(l) if l.contains("crashed")));
        let reboot = "(XEN) Hardware Dom0 shutdown: rebooting machine\n";
        assert!(matches!(judge(reboot, false, T), Outcome::Failed(l) if l.contains("rebooting")));
        let panic =
            "(XEN) ****\n(XEN) Panic on CPU 0:\n(XEN) Could not set up DOM0 guest OS (rc = -22)\n";
        assert!(
            matches!(judge(panic, false, T), Outcome::Failed(l) if l.contains("Could not set up DOM0"))
        );
        let domu = "(XEN) Domain 1 (vcpu#0) crashed on cpu#0:\n(XEN) Hardware Dom0 halted: halting machine\n";
        assert!(matches!(judge(domu, false, T), Outcome::Failed(_)));
        assert!(
            matches!(judge("hello\n", true, T), Outcome::Failed(l) if l.starts_with("timed out after 60 s"))
        );
        assert!(
            matches!(judge("hello\n", false, T), Outcome::Failed(l) if l.contains("QEMU ended"))
        );
    }

    #[test]
    fn the_running_test_is_named() {
        let hung = "\nrunning 2 tests\ntest greets ... ok\ntest spins ... ";
        assert_eq!(running_test(hung), Some("spins"));
        let chatty = "test greets ... hello\nworld\n";
        assert_eq!(running_test(chatty), Some("greets"));
        let done = "test greets ... hello\nok\ntest other ... ignored, slow\n";
        assert_eq!(running_test(done), None);
        let failed = "test fails ... FAILED\ntest fails panicked at t.rs:1:2:\nboom\n";
        assert_eq!(running_test(failed), None);
        assert_eq!(running_test("no tests here\n"), None);
        let crash = "(XEN) Hardware Dom0 crashed: 'noreboot' set - not rebooting.\n";
        let why = |o: Outcome| match o {
            Outcome::Failed(w) => w,
            Outcome::Poweroff => String::new(),
        };
        let out = format!("{hung}{crash}");
        let w = why(explain(&out, judge(&out, false, T)));
        assert_eq!(
            w,
            "while test `spins` was running: Hardware Dom0 crashed: 'noreboot' set - not rebooting."
        );
        let summary = "test result: FAILED. 1 passed; 1 failed; 0 ignored; 0 filtered out\n";
        let w = why(explain(
            &format!("{failed}{summary}{crash}"),
            judge(crash, false, T),
        ));
        assert_eq!(w, summary.trim());
        let w = why(explain(hung, judge(hung, true, T)));
        assert!(
            w.starts_with("while test `spins` was running: timed out after 60 s"),
            "{w}"
        );
    }

    #[test]
    fn guest_arguments_go_after_a_separator() {
        let a = |v: &[&str]| guest_cmdline(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(a(&[]).unwrap(), "console=hvc0");
        assert_eq!(
            a(&["greets", "--exact"]).unwrap(),
            "console=hvc0 -- greets --exact"
        );
        assert!(a(&["two words"]).is_err());
        assert!(a(&[""]).is_err());
        assert!(a(&["caf\u{e9}"]).is_err());
        assert!(a(&[&"x".repeat(MAX_CMDLINE)]).is_err());
    }

    #[test]
    fn images_are_recognised_by_their_headers() {
        let mut image = vec![0u8; 64];
        image[0x38..0x3c].copy_from_slice(b"ARM\x64");
        assert_eq!(prepare(&image).unwrap().1, Arch::A64);
        let mut z = vec![0u8; 64];
        z[0x24..0x28].copy_from_slice(&ZIMAGE_MAGIC.to_le_bytes());
        assert_eq!(prepare(&z).unwrap().1, Arch::A32);
        assert!(prepare(&[]).unwrap_err().to_string().contains("empty"));
        assert!(prepare(&[1u8; 64]).is_err());
        // The host's own executable is an ELF of another architecture.
        let host = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let e = prepare(&host).unwrap_err().to_string();
        assert!(e.contains("Xen on arm64 boots"), "{e}");
        assert!(prepare(b"\x7fELF\x02\x01").is_err());
    }
}
