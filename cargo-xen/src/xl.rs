//! `cargo xen run --xl`: an image booted as an ordinary domU, created by Xen's own toolstack (`xl create`)
//! from a real Linux dom0 ([`linux`]), with its console shown as it runs and a verdict from how it ended.
//!
//! The run: Xen 4.17 for arm64 under QEMU, Debian's arm64 Linux as dom0, whose `/init`
//! ([`init_script`]) brings up `xenstored`, `xen-init-dom0` and `xenconsoled`, then `xl create`s the image
//! paused from a configuration ([`config_file`]: the base lines, then the user's `--xl-config` file and
//! `--xl-arg` lines, a later line overriding an earlier one), unpauses it, relays xenconsoled's log of its
//! console to Xen's console as lines after [`LIVE`] while it runs, waits for it to be gone (at most the
//! run's time-out, then `xl destroy`), reports the shutdown reason `xl` logged, prints the whole console
//! log once more after [`LOG`], and powers dom0 off. Every line dom0 prints for the run starts with
//! [`MARK`].
//!
//! The verdict ([`judge`]), with the rules of `cargo xen run` without `--xl`: success only when `xl`'s log
//! says the domU shut down with reason poweroff (`SCHEDOP_shutdown(poweroff)`, code 0). A crash (code 3),
//! a reboot or any other reason, a domU still running at the time-out, a failed `xl create` or toolstack
//! step, a Xen panic or dom0 panic, and QEMU ending or timing out before dom0 reported are failures, each
//! named. The domU's program arguments reach it as its device tree's `/chosen/bootargs` through `extra`
//! (`console=hvc0 -- ARGS`, as dom0's command line without `--xl`).
//!
//! The packages are downloaded once into `xl/` of the user's target directory ([`dir`]).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::linux::{self, Dom0};
use crate::qemu::{self, Boot, Stream};
use crate::run::{self, Arch, Outcome};
use crate::{setup, xensrc};

/// What every line dom0 prints for the run starts with.
pub const MARK: &str = "xl-run: ";

/// What a line of the domU's console starts with while it runs (relayed from xenconsoled's log).
pub const LIVE: &str = "xl-run: console| ";

/// What a line of the domU's whole console log starts with, printed once more after it ended.
pub const LOG: &str = "xl-run: log| ";

/// What a line of `xl`'s own log of the domU starts with (its monitor's: the shutdown reason).
pub const XL_LOG: &str = "xl-run: xl-log| ";

/// How long dom0 may take to come up and to create the domU, and to report after it ended, on top of the
/// domU's own time-out (a dom0 boots in 5–25 s here under TCG, with the host's load).
pub const BOOT_ALLOWANCE: Duration = Duration::from_secs(120);

/// The domU's memory unless the configuration says (`memory = …`), in MiB.
pub const MEMORY_MIB: u64 = 16;

/// Where a domU's RAM starts on ARM (`GUEST_RAM0_BASE`, Xen's `arch-arm.h`).
pub const GUEST_RAM0_BASE: u64 = 0x4000_0000;

/// Where a 32-bit image must ask to be loaded: libxl loads a zImage at the address in its header,
/// 0x8000 into the domU's RAM for one linked as the template's `link-a32.ld` is with
/// `--defsym=__load_base=0x40008000`.
pub const A32_LOAD: u64 = GUEST_RAM0_BASE + 0x8000;

/// Where the packages, the initramfs and the run's files are kept: `xl/` in `CARGO_TARGET_DIR` when it is
/// set, else in the target directory the image was built in (the nearest directory above it that holds
/// cargo's `CACHEDIR.TAG`, the outermost), else in `./target`.
pub fn dir(image: &Path) -> PathBuf {
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(d).join("xl");
    }
    let absolute = std::path::absolute(image).unwrap_or_else(|_| image.to_path_buf());
    // Cargo tags its target directory and each target's directory in it: the outermost is the one.
    absolute
        .ancestors()
        .skip(1)
        .filter(|d| d.join("CACHEDIR.TAG").is_file())
        .last()
        .map_or_else(|| PathBuf::from("target"), Path::to_path_buf)
        .join("xl")
}

/// The domU's `xl` name: the image's file name up to its first `.`, with every character other than an
/// ASCII letter, digit, `-` or `_` made `_` (`domu` for an empty one).
pub fn domu_name(image: &Path) -> String {
    let stem = image
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = stem.split('.').next().unwrap_or("");
    let name: String = stem
        .chars()
        .take(48)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() { "domu".into() } else { name }
}

/// The key of an `xl` configuration line `KEY = VALUE` (`None` for a comment, a blank line or a
/// continuation of a list).
fn config_key(line: &str) -> Option<&str> {
    let (key, _) = line.split_once('=')?;
    let key = key.trim();
    let ident = key
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    ident.then_some(key)
}

/// The keys the run sets itself: the domU's name and kernel, which dom0's script and the initramfs name.
pub const RESERVED_KEYS: [&str; 3] = ["name", "kernel", "ramdisk"];

/// Checks the user's configuration lines (`--xl-config`'s and `--xl-arg`'s): each `--xl-arg` one
/// `KEY = VALUE`; no line may set [`RESERVED_KEYS`].
pub fn check_config(file_lines: &[String], args: &[String]) -> Result<()> {
    for a in args {
        if a.contains('\n') || config_key(a).is_none() {
            bail!("--xl-arg takes one `KEY = VALUE` line of an xl configuration, not {a:?}");
        }
    }
    for l in file_lines.iter().chain(args) {
        if let Some(k) = config_key(l)
            && RESERVED_KEYS.contains(&k)
        {
            bail!(
                "the xl configuration line `{}` sets `{k}`, which cargo xen run --xl sets itself (the domU's \
                 name and image)",
                l.trim()
            );
        }
    }
    Ok(())
}

/// The domU's memory in MiB by the configuration lines (the last `memory = N`), [`MEMORY_MIB`] without
/// one.
pub fn memory_mib(lines: &[String]) -> Result<u64> {
    let mut mib = MEMORY_MIB;
    for l in lines {
        if config_key(l) == Some("memory") {
            let v = l.split_once('=').map_or("", |(_, v)| v.trim());
            mib = v
                .parse()
                .with_context(|| format!("`{}`: memory is a number of MiB", l.trim()))?;
        }
    }
    Ok(mib)
}

/// The `xl` configuration of the domU `name`: the base lines (its kernel at `/domu/NAME.bin`,
/// [`MEMORY_MIB`], one vCPU, destroyed on poweroff, reboot and crash, `extra` = the command line
/// `cmdline`), then `lines`. The command line must not hold `"` or `\`.
pub fn config_file(name: &str, cmdline: &str, lines: &[String]) -> Result<String> {
    if cmdline.contains(['"', '\\']) {
        bail!(
            "the guest arguments cannot hold `\"` or `\\` with --xl (xl's configuration quotes them)"
        );
    }
    let mut s = format!(
        "name = \"{name}\"\nkernel = \"/domu/{name}.bin\"\nmemory = {MEMORY_MIB}\nvcpus = 1\n\
         on_poweroff = \"destroy\"\non_reboot = \"destroy\"\non_crash = \"destroy\"\nextra = \"{cmdline}\"\n"
    );
    for l in lines {
        s.push_str(l.trim_end());
        s.push('\n');
    }
    Ok(s)
}

/// The load address a zImage's header asks for (0 for a position-independent one).
pub fn zimage_start(image: &[u8]) -> Option<u64> {
    let w = image.get(0x28..0x2c)?;
    Some(u32::from_le_bytes([w[0], w[1], w[2], w[3]]).into())
}

/// Checks that a 32-bit image can be loaded into a domU of `memory` MiB: libxl puts a zImage at the
/// address its header names, which must be inside the domU's RAM.
pub fn check_a32_load(image: &[u8], memory: u64) -> Result<()> {
    let start = zimage_start(image).context("a zImage shorter than its header")?;
    let end = GUEST_RAM0_BASE + memory * 1024 * 1024;
    let size = image.len() as u64;
    if start != 0 && (start < GUEST_RAM0_BASE || start + size > end) {
        bail!(
            "the zImage asks to be loaded at {start:#x}, outside the xl domU's RAM ({GUEST_RAM0_BASE:#x}-{end:#x}): \
             link it for a domU at {A32_LOAD:#x} (the template: `-C link-arg=--defsym=__load_base={A32_LOAD:#x}`)"
        );
    }
    Ok(())
}

/// dom0's `/init` for a run of the domU `name`: [`linux::init_prelude`], then the domU created paused,
/// its console relayed while it runs, at most `seconds` for it to be gone, its shutdown reason and whole
/// console log reported, dom0 powered off. Every wait is bounded.
pub fn init_script(name: &str, seconds: u64) -> String {
    let mut s = linux::init_prelude(
        &format!("dom0's /init for `cargo xen run --xl` of the domU `{name}`."),
        MARK.trim_end(),
        "",
    );
    let log = format!("/var/log/xen/console/guest-{name}.log");
    let live = LIVE.trim_end();
    let whole = LOG.trim_end();
    let xl_log = XL_LOG.trim_end();
    s.push_str(&format!(
        r#"timeout 30 xl create -p /etc/xen/{name}.cfg > /tmp/create 2>&1 || {{ fail "xl create"; show /tmp/create; finish; }}
ok "create: domid $(timeout 10 xl domid {name}), $(cut -d' ' -f1 /proc/uptime) s"
wait_for 10 test -e {log} || {{ fail "xenconsoled made no log for {name}"; timeout 15 xl destroy {name}; finish; }}
# The console as it comes (busybox tail polls once a second), a line at a time after the mark.
tail -n +1 -f {log} | while IFS= read -r l || [ -n "$l" ]; do printf '%s %s\n' '{live}' "$l"; done &
RELAY=$!
timeout 15 xl unpause {name} > /tmp/unpause 2>&1 || {{ fail "xl unpause"; show /tmp/unpause; }}
echo "$M running: $(cut -d' ' -f1 /proc/uptime) s"
# At most {seconds} s by dom0's clock from now (each `xl domid` takes a while when the domU is busy).
end=$(($(cut -d. -f1 /proc/uptime) + {seconds}))
while ! gone {name} && [ "$(cut -d. -f1 /proc/uptime)" -lt $end ]; do sleep 0.2; done
if gone {name}; then
  ok "ended: $(cut -d' ' -f1 /proc/uptime) s"
else
  fail "timed out after {seconds} s: the domU was still running (xl destroy ended it)"
  timeout 15 xl destroy {name}
fi
sleep 1.2
kill $(pidof tail) 2>/dev/null
wait $RELAY 2>/dev/null
code=$(sed -n 's/.*has shut down, reason code \([0-9]*\).*/\1/p' /var/log/xen/xl-{name}.log | head -1)
echo "$M shutdown ${{code:-none}}"
while IFS= read -r l || [ -n "$l" ]; do printf '%s %s\n' '{whole}' "$l"; done < {log}
while IFS= read -r l || [ -n "$l" ]; do printf '%s %s\n' '{xl_log}' "$l"; done < /var/log/xen/xl-{name}.log
finish
"#
    ));
    s
}

/// The console without the domU's own lines ([`LIVE`], [`LOG`]): what Xen, dom0's kernel and dom0's
/// script printed, where a crash is looked for (a domU may print anything).
pub fn system_lines(output: &str) -> String {
    let mut s = String::new();
    for l in output
        .lines()
        .filter(|l| !l.contains(LIVE) && !l.contains(LOG))
    {
        s.push_str(l);
        s.push('\n');
    }
    s
}

/// Whether the run is over: dom0 halted the machine, or Xen or dom0 died.
pub fn finished(output: &str) -> bool {
    linux::finished(&system_lines(output))
}

/// The name of Xen's shutdown reason `code` (`SHUTDOWN_*`, `sched.h`).
pub fn reason_name(code: u32) -> &'static str {
    match code {
        0 => "poweroff",
        1 => "reboot",
        2 => "suspend",
        3 => "crash",
        4 => "watchdog",
        5 => "soft_reset",
        _ => "unknown",
    }
}

/// The domU's whole console log as dom0 printed it after the run ([`LOG`]).
pub fn console_log(output: &str) -> String {
    let mut text = String::new();
    for l in linux::marked_lines(output, LOG) {
        text.push_str(l);
        text.push('\n');
    }
    text
}

/// How the run ended, from its console: [`Outcome::Poweroff`] only when dom0 reported the domU's
/// shutdown with reason poweroff and nothing crashed; otherwise what went wrong, first the crash of Xen or
/// dom0, then a failed dom0 step (with its output), then the domU's shutdown reason, then QEMU's end.
/// `timed_out` and `timeout` are QEMU's.
pub fn judge(output: &str, timed_out: bool, timeout: Duration) -> Outcome {
    if let Some(l) = linux::crash_line(&system_lines(output)) {
        let l = l.find("(XEN) ").map_or(l, |i| &l[i + "(XEN) ".len()..]);
        return Outcome::Failed(format!("Xen or dom0 crashed: {}", l.trim()));
    }
    let lines = linux::marked_lines(output, MARK);
    if let Some(at) = lines.iter().position(|l| l.starts_with("FAIL ")) {
        let mut why = lines[at]["FAIL ".len()..].to_string();
        for detail in lines[at + 1..]
            .iter()
            .map_while(|l| l.strip_prefix("  | "))
            .take(12)
        {
            why.push_str("; ");
            why.push_str(detail.trim());
        }
        return Outcome::Failed(why);
    }
    match lines.iter().find_map(|l| l.strip_prefix("shutdown ")) {
        Some(code) => match code.trim().parse::<u32>() {
            Ok(0) => Outcome::Poweroff,
            Ok(c) => Outcome::Failed(format!(
                "the domU shut down with reason {} (code {c}, xl's log)",
                reason_name(c)
            )),
            Err(_) => Outcome::Failed("xl's log says no shutdown reason for the domU".into()),
        },
        None if timed_out => Outcome::Failed(format!(
            "timed out after {} s before dom0 reported how the domU ended (dom0 or Xen hung?)",
            timeout.as_secs()
        )),
        None => Outcome::Failed("QEMU ended before dom0 reported how the domU ended".into()),
    }
}

/// What [`run()`] did: how it ended, the boot, where its console was written.
pub struct XlRun {
    /// The verdict, made clearer by the domU's console ([`run::explain`]).
    pub outcome: Outcome,
    /// The boot (QEMU's whole console).
    pub boot: Boot,
    /// Seconds spent preparing (packages, initramfs) before QEMU started.
    pub prepare_seconds: f64,
    /// Where the whole console (Xen's, dom0's and the domU's lines) was written.
    pub log: PathBuf,
}

/// Runs `cargo xen run --xl`: `opts.images[0]` as an `xl` domU with `opts.xl`'s configuration lines.
pub fn run(opts: &run::Options) -> Result<XlRun> {
    let start = Instant::now();
    let [image] = &opts.images[..] else {
        bail!(
            "--xl boots one image, as a domU (not {})",
            opts.images.len()
        );
    };
    if opts.dom0less {
        bail!("--xl and --dom0less are two ways to start a domU: choose one");
    }
    let lines = opts.xl.clone().unwrap_or_default();
    let data = std::fs::read(image).with_context(|| format!("{}", image.display()))?;
    let (flat, arch) = run::prepare(&data).with_context(|| format!("{}", image.display()))?;
    if let Some(want) = opts.arch
        && want != arch
    {
        bail!(
            "{}: an {} image, but --arch {} was asked for",
            image.display(),
            arch.name(),
            want.name()
        );
    }
    if arch == Arch::A32 {
        check_a32_load(&flat, memory_mib(&lines)?)
            .with_context(|| format!("{}", image.display()))?;
    }
    let name = domu_name(image);
    let cmdline = run::guest_cmdline(&opts.guest_args)?;
    let config = config_file(&name, &cmdline, &lines)?;
    setup::debian(&[setup::QEMU])?;
    let d = dir(image);
    let dom0 = linux::fetch(&d)?;
    let cache = run::cache_dir()?;
    let xen = if opts.debug_xen {
        xensrc::debug_xen(&cache.join("xen-src"))?
    } else {
        qemu::fetch_xen(&cache.join("xen"))?
    };
    let seconds = opts.timeout.as_secs().max(1);
    let initrd = initramfs(&d, &dom0, &name, &flat, &config, seconds)?;
    let prepare_seconds = start.elapsed().as_secs_f64();
    let stream = match (opts.stream, opts.hide_xen) {
        (false, _) => Stream::Off,
        (true, false) => Stream::All,
        (true, true) => Stream::Marked(LIVE),
    };
    let timeout = opts.timeout + BOOT_ALLOWANCE;
    let mut cmd = linux::command(&xen, &dom0.kernel, &initrd)?;
    let boot = qemu::run_qemu_stream(&mut cmd, timeout, finished, stream)?;
    let log = d.join(format!("run-{name}.log"));
    std::fs::write(&log, &boot.output).with_context(|| format!("writing {}", log.display()))?;
    let console = console_log(&boot.output);
    if stream == Stream::Marked(LIVE) {
        // What the relay had not shown when dom0 stopped it (the last lines, an unfinished one).
        let shown = linux::marked_lines(&boot.output, LIVE).len();
        for l in console.lines().skip(shown) {
            println!("{l}");
        }
    }
    let outcome = run::explain(&console, judge(&boot.output, boot.timed_out, timeout));
    Ok(XlRun {
        outcome,
        boot,
        prepare_seconds,
        log,
    })
}

/// Writes the run's gzip'd initramfs into `d`: the dom0's tree and its [`linux::MODULES`], its `/init`
/// ([`init_script`]), the domU's flat image and configuration; returns its path.
fn initramfs(
    d: &Path,
    dom0: &Dom0,
    name: &str,
    image: &[u8],
    config: &str,
    seconds: u64,
) -> Result<PathBuf> {
    let modules: Vec<String> = linux::MODULES
        .iter()
        .map(|m| format!("drivers/{m}"))
        .collect();
    let mut cpio = linux::base_cpio(dom0, modules.iter().map(String::as_str))?;
    cpio.file("init", 0o755, init_script(name, seconds).as_bytes());
    cpio.file(&format!("etc/xen/{name}.cfg"), 0o644, config.as_bytes());
    cpio.file(&format!("domu/{name}.bin"), 0o644, image);
    let out = d.join(format!("initramfs-run-{name}.cpio.gz"));
    std::fs::write(&out, linux::gzip(&cpio.finish())?)
        .with_context(|| format!("writing {}", out.display()))?;
    Ok(out)
}

#[cfg(test)]
mod tests;
