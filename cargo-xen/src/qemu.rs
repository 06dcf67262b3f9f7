//! Booting guests on Xen 4.17 for arm64 under QEMU: fetching Debian's hypervisor, turning an ELF into the
//! flat image Xen loads, the dom0 command line, the dom0less device tree (domUs described under `/chosen`,
//! no toolstack) and one runner that streams and collects the console with a time-out.
//!
//! Every boot of this project goes through [`run_qemu`]: `cargo xen run`, and the workspace's own runs
//! (`cargo xtask xen`, `demo`, `domains`, the real-Xen cost bench).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use object::Object;

use crate::cmd;

/// Debian's Xen hypervisor package for arm64.
pub const XEN_PACKAGE: &str = "xen-hypervisor-4.17-arm64";
/// The hypervisor binary inside it.
pub const XEN_BINARY: &str = "boot/xen-4.17-arm64";

/// QEMU's machine: virtualization extensions on (Xen runs at EL2), GICv3.
pub const MACHINE: &str = "virt,virtualization=on,gic-version=3";

/// Xen's command line for every run: dom0's memory, the PL011 console, every log level (`guest_loglvl=all`:
/// a domU's console lines come through Xen only with it), and `noreboot` (a crashed dom0 halts the machine
/// at once instead of rebooting it after 5 s).
pub const XEN_BOOTARGS: &str =
    "dom0_mem=64M console=dtuart dtuart=/pl011@9000000 loglvl=all guest_loglvl=all noreboot";

/// Xen's command line for an x86-64 run: the first serial port, every log level, dom0's memory, `noreboot`.
pub const XEN_X86_BOOTARGS: &str =
    "console=com1 com1=115200 loglvl=all guest_loglvl=all dom0_mem=64M noreboot";

/// Where each dom0less kernel is loaded (RAM starts at 0x40000000; Xen sits near its start, QEMU puts the
/// device tree at 0x48000000; 16 MiB per slot).
pub const SLOTS: [u64; 4] = [0x4900_0000, 0x4a00_0000, 0x4b00_0000, 0x4c00_0000];

/// Downloads and unpacks Debian's Xen for arm64 under `dir` unless it is there; returns the hypervisor's
/// path. Prints a progress line while it fetches.
pub fn fetch_xen(dir: &Path) -> Result<PathBuf> {
    fetch_package("arm64", XEN_PACKAGE, XEN_BINARY, dir)
}

/// Downloads Debian's `package` for `arch` (without changing the system's dpkg architecture: a private apt
/// configuration under `dir`) and unpacks it under `dir/out` unless `binary` is there already; returns
/// `dir/out/binary`.
pub fn fetch_package(arch: &str, package: &str, binary: &str, dir: &Path) -> Result<PathBuf> {
    let xen = dir.join("out").join(binary);
    if xen.is_file() {
        return Ok(xen);
    }
    let lists = dir.join("lists");
    let opts = [
        format!("-oAPT::Architecture={arch}"),
        format!("-oAPT::Architectures={arch}"),
        format!("-oDir::State::Lists={}", lists.display()),
        format!("-oDir::Cache={}", dir.join("cache").display()),
        "-oAPT::Sandbox::User=root".to_string(),
    ];
    if !cmd::is_root() {
        bail!(
            "{package} ({arch}) is missing; as root, run:\n  mkdir -p {l}/partial && cd {d} && apt-get {o} update && \
             apt-get {o} download {package} && dpkg -x {package}_*.deb out",
            l = lists.display(),
            d = dir.display(),
            o = opts.join(" ")
        );
    }
    let start = Instant::now();
    eprintln!(
        "cargo-xen: fetching Debian's {package} ({arch}) into {} (once)",
        dir.display()
    );
    std::fs::create_dir_all(lists.join("partial"))?;
    std::fs::create_dir_all(dir.join("cache/archives/partial"))?;
    cmd::run_logged(
        &format!("apt-get update ({arch})"),
        Command::new("apt-get").args(&opts).args(["-q", "update"]),
    )?;
    cmd::run_logged(
        &format!("downloaded {package} ({arch})"),
        Command::new("apt-get")
            .current_dir(dir)
            .args(&opts)
            .args(["-q", "download", package]),
    )?;
    let deb = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(package))
        })
        .context("apt-get download produced no .deb")?;
    cmd::run_logged(
        &format!("unpacked {package}"),
        Command::new("dpkg")
            .arg("-x")
            .arg(&deb)
            .arg(dir.join("out")),
    )?;
    if !xen.is_file() {
        bail!("{} does not contain {binary}", deb.display());
    }
    eprintln!(
        "cargo-xen: {} ({} s)",
        xen.display(),
        start.elapsed().as_secs()
    );
    Ok(xen)
}

/// The flat image Xen loads: every allocated section with contents, laid out by address from the lowest
/// one (what `objcopy -O binary` makes; the ELF and program headers are not part of it).
pub fn flat_image(elf: &[u8]) -> Result<Vec<u8>> {
    use object::{ObjectSection, SectionFlags, SectionKind};
    let file = object::File::parse(elf).context("not an ELF file")?;
    let loaded: Vec<_> = file
        .sections()
        .filter(|s| matches!(s.flags(), SectionFlags::Elf { sh_flags } if sh_flags & u64::from(object::elf::SHF_ALLOC) != 0))
        .filter(|s| s.kind() != SectionKind::UninitializedData && s.size() > 0)
        .collect();
    let base = loaded
        .iter()
        .map(|s| s.address())
        .min()
        .context("no loadable section")?;
    let mut out = Vec::new();
    for s in &loaded {
        let data = s.data().context("truncated section")?;
        let at = usize::try_from(s.address() - base)?;
        if out.len() < at + data.len() {
            out.resize(at + data.len(), 0);
        }
        out[at..at + data.len()].copy_from_slice(data);
    }
    Ok(out)
}

/// What one boot produced.
#[derive(Debug)]
pub struct Boot {
    /// Everything on the serial console.
    pub output: String,
    /// Whether QEMU had to be killed at the time-out.
    pub timed_out: bool,
    /// How long it ran.
    pub elapsed: Duration,
}

/// The machine's memory for a dom0 run (the 32-bit images are linked inside dom0's bank as Xen lays it
/// out for 1 GiB and `dom0_mem=64M`: 0x78000000-0x7c000000).
pub const DOM0_MEMORY: &str = "1G";

/// The machine's memory for a dom0less run: room for Xen, dom0 (`dom0_mem=64M`) and two 16 MiB domUs, and
/// `bootscrub=on` (scrubbing all free RAM at boot) stays short under emulation.
pub const DOM0LESS_MEMORY: &str = "256M";

fn qemu_base(memory: &str, cpus: u32) -> Command {
    let mut c = crate::setup::qemu("qemu-system-aarch64");
    c.args([
        "-cpu",
        "cortex-a57",
        "-smp",
        &cpus.to_string(),
        "-m",
        memory,
    ])
    .args(["-nographic", "-no-reboot"]);
    c
}

/// Whether a console line shows that Xen itself died: a panic, a `BUG`, a failed assertion (debug Xen)
/// or a fatal trap.
pub fn xen_died(line: &str) -> bool {
    line.contains("Panic on CPU")
        || line.contains("Xen BUG")
        || line.contains("Assertion '")
        || line.contains("FATAL TRAP")
}

/// The QEMU command that boots `image` (an arm64 `Image` or an ARM `zImage`) as dom0 on `xen` (the caller
/// may add options, e.g. `-icount`).
pub fn dom0_command(xen: &Path, image: &Path) -> Command {
    dom0_command_with(xen, image, XEN_BOOTARGS)
}

/// [`dom0_command`] with Xen's command line `bootargs`.
pub fn dom0_command_with(xen: &Path, image: &Path, bootargs: &str) -> Command {
    dom0_command_full(xen, image, bootargs, DOM0_CMDLINE)
}

/// dom0's command line by default (Xen hands it to dom0 as its device tree's `/chosen/bootargs`).
pub const DOM0_CMDLINE: &str = "console=hvc0";

/// [`dom0_command_with`] with dom0's command line `cmdline` (a QEMU `guest-loader` option: its commas are
/// doubled here).
pub fn dom0_command_full(xen: &Path, image: &Path, bootargs: &str, cmdline: &str) -> Command {
    dom0_command_cpus(xen, image, bootargs, cmdline, 1)
}

/// [`dom0_command_full`] on a machine of `cpus` CPUs (Xen gives dom0 more than one vCPU only with
/// `dom0_max_vcpus` in `bootargs`).
pub fn dom0_command_cpus(
    xen: &Path,
    image: &Path,
    bootargs: &str,
    cmdline: &str,
    cpus: u32,
) -> Command {
    let mut cmd = qemu_base(DOM0_MEMORY, cpus);
    cmd.args(["-machine", MACHINE]).arg("-kernel").arg(xen);
    cmd.args(["-append", bootargs]).arg("-device").arg(format!(
        "guest-loader,addr=0x49000000,kernel={},bootargs={}",
        image.display(),
        cmdline.replace(',', ",,")
    ));
    cmd
}

/// The QEMU command that boots `xen`, an x86-64 hypervisor (multiboot), with `dom0`, an ELF kernel, as its
/// first module, and Xen's command line `bootargs` (for a PVH dom0: `dom0=pvh`).
pub fn x86_dom0_command(xen: &Path, dom0: &Path, bootargs: &str) -> Command {
    let mut cmd = crate::setup::qemu("qemu-system-x86_64");
    cmd.args(["-accel", "tcg", "-cpu", "max", "-m", DOM0_MEMORY])
        .args(["-nographic", "-no-reboot", "-kernel"])
        .arg(xen)
        .args(["-append", bootargs, "-initrd"])
        .arg(dom0);
    cmd
}

/// Runs a QEMU command to its end and collects the console (stdout, then stderr). QEMU is ended when
/// `done` first holds for the console so far plus a grace of 0.5 s (so that Xen can report what follows),
/// or at `timeout` (then `timed_out` is set).
pub fn run_qemu(cmd: &mut Command, timeout: Duration, done: impl Fn(&str) -> bool) -> Result<Boot> {
    run_qemu_streaming(cmd, timeout, done, false)
}

/// What of the console is copied to this process's stdout as it arrives (carriage returns dropped).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Nothing.
    Off,
    /// Everything.
    All,
    /// The lines that do not start with Xen's `(XEN) ` prefix: dom0's own output (a domU's lines, `(d1) …`,
    /// included).
    Guest,
    /// Only the lines that hold this mark, each from just after it, once the line is complete (see
    /// [`MarkedLines`]).
    Marked(&'static str),
}

/// The line filter of [`Stream::Marked`]: fed the console as it arrives, returns the text after the mark
/// of each completed line that holds it (carriage returns dropped), with its newline.
#[derive(Debug)]
pub struct MarkedLines {
    mark: &'static str,
    line: Vec<u8>,
}

impl MarkedLines {
    /// A filter for `mark`.
    pub fn new(mark: &'static str) -> MarkedLines {
        MarkedLines {
            mark,
            line: Vec::new(),
        }
    }

    /// The part of `bytes` to show.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for &b in bytes.iter().filter(|&&b| b != b'\r') {
            if b != b'\n' {
                self.line.push(b);
                continue;
            }
            let mark = self.mark.as_bytes();
            if let Some(at) = self.line.windows(mark.len()).position(|w| w == mark) {
                out.extend_from_slice(&self.line[at + mark.len()..]);
                out.push(b'\n');
            }
            self.line.clear();
        }
        out
    }
}

/// The line filter of [`Stream::Guest`]: fed the console as it arrives, returns what to show. A line is
/// shown as soon as its first bytes cannot be Xen's prefix, so that an unfinished line (a test's name
/// before its verdict) shows at once.
#[derive(Debug, Default)]
pub struct GuestLines {
    /// The first bytes of the current line while they may still be `(XEN)`.
    head: Vec<u8>,
    /// The current line is decided: `Some(true)` shown, `Some(false)` hidden.
    show: Option<bool>,
}

impl GuestLines {
    const PREFIX: &[u8] = b"(XEN)";

    /// The part of `bytes` to show.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for &b in bytes.iter().filter(|&&b| b != b'\r') {
            match self.show {
                Some(show) => {
                    if show {
                        out.push(b);
                    }
                    if b == b'\n' {
                        self.show = None;
                    }
                }
                None => {
                    self.head.push(b);
                    if b == b'\n' {
                        out.append(&mut self.head);
                    } else if self.head == Self::PREFIX {
                        self.head.clear();
                        self.show = Some(false);
                    } else if !Self::PREFIX.starts_with(&self.head) {
                        out.append(&mut self.head);
                        self.show = Some(true);
                    }
                }
            }
        }
        out
    }
}

/// [`run_qemu`], also copying the console to this process's stdout as it arrives when `stream` is set.
pub fn run_qemu_streaming(
    cmd: &mut Command,
    timeout: Duration,
    done: impl Fn(&str) -> bool,
    stream: bool,
) -> Result<Boot> {
    let stream = if stream { Stream::All } else { Stream::Off };
    run_qemu_stream(cmd, timeout, done, stream)
}

/// [`run_qemu`], also copying what `stream` says of the console to this process's stdout as it arrives.
pub fn run_qemu_stream(
    cmd: &mut Command,
    timeout: Duration,
    done: impl Fn(&str) -> bool,
    stream: Stream,
) -> Result<Boot> {
    use std::sync::{Arc, Mutex};
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {}", cmd.get_program().to_string_lossy()))?;
    let mut stdout = child.stdout.take().context("no stdout")?;
    let seen = Arc::new(Mutex::new(Vec::<u8>::new()));
    let sink = Arc::clone(&seen);
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let mut guest = GuestLines::default();
        let mut marked = match stream {
            Stream::Marked(mark) => Some(MarkedLines::new(mark)),
            _ => None,
        };
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            let shown = match stream {
                Stream::Off => Vec::new(),
                Stream::All => buf[..n].iter().copied().filter(|&b| b != b'\r').collect(),
                Stream::Guest => guest.feed(&buf[..n]),
                Stream::Marked(_) => marked
                    .as_mut()
                    .map(|m| m.feed(&buf[..n]))
                    .unwrap_or_default(),
            };
            if !shown.is_empty() {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(&shown);
                let _ = out.flush();
            }
            if let Ok(mut s) = sink.lock() {
                s.extend_from_slice(&buf[..n]);
            }
        }
    });
    let text = |seen: &Arc<Mutex<Vec<u8>>>| {
        seen.lock()
            .map(|s| String::from_utf8_lossy(&s).replace('\r', ""))
            .unwrap_or_default()
    };
    let mut timed_out = false;
    let mut done_at: Option<Instant> = None;
    loop {
        if child.try_wait()?.is_some() {
            break;
        }
        if done_at.is_none() && done(&text(&seen)) {
            done_at = Some(Instant::now());
        }
        let finished = done_at.is_some_and(|t| t.elapsed() > Duration::from_millis(500));
        timed_out = !finished && start.elapsed() > timeout;
        if finished || timed_out {
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = reader.join();
    let mut output = text(&seen);
    if let Some(mut e) = child.stderr.take() {
        let mut err = String::new();
        let _ = e.read_to_string(&mut err);
        if stream != Stream::Off {
            eprint!("{err}");
        }
        output.push_str(&err);
    }
    Ok(Boot {
        output,
        timed_out,
        elapsed: start.elapsed(),
    })
}

/// QEMU's device tree for the dom0less machine, as source (dumped once into `dir` with the options it is
/// booted with, decompiled with `dtc`).
pub fn base_dts(dir: &Path) -> Result<String> {
    std::fs::create_dir_all(dir)?;
    let dtb = dir.join(format!("virt-{DOM0LESS_MEMORY}.dtb"));
    if !dtb.is_file() {
        cmd::run(
            qemu_base(DOM0LESS_MEMORY, 1)
                .arg("-machine")
                .arg(format!("{MACHINE},dumpdtb={}", dtb.display())),
        )?;
    }
    cmd::output(
        Command::new("dtc")
            .args(["-q", "-I", "dtb", "-O", "dts"])
            .arg(&dtb),
    )
}

/// A kernel to load: where, and its file.
#[derive(Clone, Debug)]
pub struct Module {
    /// The load address.
    pub addr: u64,
    /// The flat image.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
}

impl Module {
    /// The image at `path`, loaded at slot `slot` of [`SLOTS`].
    pub fn at_slot(slot: usize, path: &Path) -> Result<Module> {
        Ok(Module {
            addr: *SLOTS
                .get(slot)
                .with_context(|| format!("at most {} images", SLOTS.len()))?,
            size: std::fs::metadata(path)
                .with_context(|| format!("{}", path.display()))?
                .len(),
            path: path.to_path_buf(),
        })
    }
}

/// Adds the configuration's nodes to `/chosen` of `dts`: Xen's command line, dom0's kernel module if any,
/// and a `xen,domain` node per domU (in domid order), each with its kernel module. Properties go before
/// the existing ones' subnodes: `dtc` refuses a property after a subnode.
pub fn chosen_dts(
    dts: &str,
    bootargs: &str,
    dom0: Option<&Module>,
    domus: &[Module],
) -> Result<String> {
    let open = dts
        .find("\tchosen {\n")
        .context("QEMU's device tree has no /chosen node")?;
    let body = open + "\tchosen {\n".len();
    let close = body
        + dts[body..]
            .find("\n\t};\n")
            .context("/chosen is not closed")?;
    let mut props = format!("\t\txen,xen-bootargs = \"{bootargs}\";\n");
    let chosen = &dts[body..close];
    if !chosen.contains("#address-cells") {
        props.push_str("\t\t#address-cells = <0x02>;\n\t\t#size-cells = <0x02>;\n");
    }
    let module = |m: &Module, indent: &str| {
        format!(
            "{indent}module@{a:x} {{\n{indent}\tcompatible = \"multiboot,kernel\", \"multiboot,module\";\n\
             {indent}\treg = <0x0 0x{a:x} 0x0 0x{s:x}>;\n{indent}\tbootargs = \"console=hvc0\";\n{indent}}};\n",
            a = m.addr,
            s = m.size
        )
    };
    let mut nodes = String::new();
    if let Some(m) = dom0 {
        nodes.push_str(&module(m, "\t\t"));
    }
    for (i, m) in domus.iter().enumerate() {
        nodes.push_str(&format!(
            "\t\tdomU{n} {{\n\t\t\tcompatible = \"xen,domain\";\n\t\t\t#address-cells = <0x02>;\n\
             \t\t\t#size-cells = <0x02>;\n\t\t\tmemory = <0x0 0x4000>;\n\t\t\tcpus = <0x01>;\n{m}\t\t}};\n",
            n = i + 1,
            m = module(m, "\t\t\t")
        ));
    }
    Ok(format!(
        "{}{props}{}\n{nodes}{}",
        &dts[..body],
        &dts[body..close],
        &dts[close + 1..]
    ))
}

/// Writes the dom0less device tree for `bootargs`, `dom0` and `domus` as `dir/name.dts` and compiles it
/// into `dir/name.dtb` with `dtc`; returns the `.dtb`.
pub fn dom0less_dtb(
    dir: &Path,
    name: &str,
    bootargs: &str,
    dom0: Option<&Module>,
    domus: &[Module],
) -> Result<PathBuf> {
    let dts = chosen_dts(&base_dts(dir)?, bootargs, dom0, domus)?;
    let src = dir.join(format!("{name}.dts"));
    let dtb = dir.join(format!("{name}.dtb"));
    std::fs::write(&src, dts)?;
    cmd::run(
        Command::new("dtc")
            .args(["-q", "-I", "dts", "-O", "dtb", "-o"])
            .arg(&dtb)
            .arg(&src),
    )?;
    Ok(dtb)
}

/// The QEMU command that boots `xen` with the device tree `dtb` and loads each module at its address.
pub fn dom0less_command(xen: &Path, dtb: &Path, modules: &[Module]) -> Command {
    let mut cmd = qemu_base(DOM0LESS_MEMORY, 1);
    cmd.arg("-machine").arg(MACHINE).arg("-kernel").arg(xen);
    cmd.arg("-dtb").arg(dtb);
    for m in modules {
        cmd.arg("-device").arg(format!(
            "loader,file={},addr=0x{:x},force-raw=on",
            m.path.display(),
            m.addr
        ));
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::GuestLines;

    #[test]
    fn guest_lines_hide_xen_and_show_an_unfinished_line_at_once() {
        let mut g = GuestLines::default();
        assert_eq!(g.feed(b"(XEN) Xen version 4.17\r\n(XE"), b"");
        assert_eq!(g.feed(b"N) more\r\nhello\r\n(X"), b"hello\n");
        assert_eq!(g.feed(b"ok\n\ntest a ... "), b"(Xok\n\ntest a ... ");
        assert_eq!(
            g.feed(b"(XEN) Hardware Dom0 crashed\n"),
            b"(XEN) Hardware Dom0 crashed\n"
        );
        assert_eq!(g.feed(b"(d1) domU line\n"), b"(d1) domU line\n");
    }

    use super::*;

    #[test]
    fn marked_lines_show_what_follows_the_mark_once_complete() {
        let mut m = MarkedLines::new("xl-run: console| ");
        // (what arrives, what is shown): a line shows once complete; the mark may follow what Xen printed
        // on the same line; a line without it is dropped.
        let steps: [(&[u8], &[u8]); 4] = [
            (b"(XEN) Xen version\r\nxl-run: console| hel", b""),
            (b"lo\r\n[  1.0] kernel\n", b"hello\n"),
            (
                b"(XEN) d1v0 xl-run: console| test a ... ok\nxl-run: log| x\n",
                b"test a ... ok\n",
            ),
            (b"xl-run: console| \n", b"\n"),
        ];
        for (fed, shown) in steps {
            assert_eq!(m.feed(fed), shown, "{}", String::from_utf8_lossy(fed));
        }
    }

    #[test]
    fn a_run_ends_at_its_time_out_or_soon_after_it_is_done() {
        let hung = run_qemu(
            Command::new("sleep").arg("10"),
            Duration::from_millis(200),
            |_| false,
        )
        .unwrap();
        assert!(hung.timed_out && hung.elapsed < Duration::from_secs(5));
        let done = run_qemu(
            Command::new("sh").args(["-c", "echo ready; exec sleep 10"]),
            Duration::from_secs(8),
            |out| out.contains("ready"),
        )
        .unwrap();
        assert!(!done.timed_out && done.elapsed < Duration::from_secs(5));
        assert_eq!(done.output, "ready\n");
        let ended = run_qemu(
            Command::new("echo").arg("hi"),
            Duration::from_secs(8),
            |_| false,
        )
        .unwrap();
        assert_eq!((ended.output.as_str(), ended.timed_out), ("hi\n", false));
    }

    #[test]
    fn the_chosen_nodes_go_in_order() {
        let dts = "/dts-v1/;\n\n/ {\n\tchosen {\n\t\tstdout-path = \"/pl011@9000000\";\n\t};\n\n\tpsci {\n\t};\n};\n";
        let m = |a| Module {
            addr: a,
            path: PathBuf::from("x"),
            size: 0x1000,
        };
        let out = chosen_dts(dts, "xsm=dummy", Some(&m(0x4900_0000)), &[m(0x4a00_0000)]).unwrap();
        let boot = out.find("xen,xen-bootargs = \"xsm=dummy\"").unwrap();
        let stdout = out.find("stdout-path").unwrap();
        let dom0 = out.find("module@49000000").unwrap();
        let domu = out.find("domU1 {").unwrap();
        let domu_module = out.find("module@4a000000").unwrap();
        assert!(
            boot < stdout && stdout < dom0 && dom0 < domu && domu < domu_module,
            "{out}"
        );
        assert!(out.contains("reg = <0x0 0x4a000000 0x0 0x1000>;"));
        assert!(out.contains("memory = <0x0 0x4000>;"));
        assert!(out.ends_with("\tpsci {\n\t};\n};\n"), "{out}");
        assert!(chosen_dts("/ {\n};\n", "", None, &[]).is_err());
    }
}
