//! The command line: `cargo xen audit …`, `cargo xen run …` and `cargo xen new …` (also `cargo-xen …`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

use crate::audit::{self, Limits};
use crate::new::{self, NewArch, NewOptions};
use crate::run::{self, Arch, Outcome};
use crate::xl;

/// The help text.
pub const HELP: &str = "\
usage: cargo xen <command> …

  audit <ELF|object|archive>… [--json] [--max-… N]…
  audit --diff OLD NEW [--json] [--max-… N]…
        every hypercall site of 32-bit ARM or AArch64 code: inline `hvc`, calls to generic stubs (the number
        as first argument) and to per-hypercall stubs (`mov x16|r12, #nr; hvc #0xEA1; ret`), by function:
        sites, bytes, set-up bytes, stack frame, hypercall and sub-operation names. x86-64 guests too:
        inline `syscall`/`vmcall`/`vmmcall`, calls into the hypercall page (`page + nr * 32`), per-hypercall
        stubs (`mov eax, nr; syscall; ret`, `jmp page + NR * 32`) and generic stubs (rdi -> rax). --diff: the change per
        function and in total. Limits (exit status 1 when exceeded; with --diff, on NEW):
          --max-setup-per-site N   set-up bytes of the worst site
          --max-setup-bytes N      set-up bytes of all sites
          --max-sites N            hypercall sites
          --max-stub-bytes N       bytes of the stubs
          --max-hypercall-bytes N  set-up bytes plus stub bytes
  run <IMAGE|ELF>… [--arch a64|a32] [--dom0less] [--debug-xen] [--timeout S] [--xen-args ARGS] [-- ARGS…]
  run [OPTIONS…] [--xen-log] --runner <ELF> [ARGS…]
        boot on Xen 4.17 for arm64 under QEMU (Debian's build, fetched once; --debug-xen: a debug build
        from Debian's source). One image boots as dom0; with --dom0less the others boot as domUs.
        --xen-args adds to Xen's command line (e.g. xsm=dummy). ARGS go to dom0's command line after
        `console=hvc0 --` (its device tree's /chosen/bootargs; printable ASCII words). --runner: as cargo's
        runner (`runner = \"cargo xen run --runner\"`): the first argument after the options is the image,
        every later one an ARG, so that `cargo run -- ARGS` and `cargo test FILTER` reach the guest; only
        the guest's console lines are shown, not Xen's `(XEN) …` ones (--xen-log: all of them). Exit
        status 0 only when Xen reports dom0's poweroff; 1 on a crash, reboot, Xen panic, unloadable image
        or time-out (default 60 s), naming the test that was running (the xen-test crate's console lines)
        or the failed tests' summary. Xen and the converted images are kept in $CARGO_XEN_CACHE (default
        ~/.cache/cargo-xen).
  run --xl [--xl-config FILE] [--xl-arg 'KEY = VALUE']… [OPTIONS…] <IMAGE|ELF> [-- ARGS…]
  run --xl [OPTIONS…] --runner <ELF> [ARGS…]
        boot the image as an ordinary domU: Xen with a Linux dom0 (Debian's arm64 kernel, xl, xenstored,
        xenconsoled; about 65 MB of Debian packages downloaded once into xl/ of CARGO_TARGET_DIR or of the
        target directory the image is in, else ./target; apt-get's output goes to the set-up log) that
        `xl create`s it. Its configuration: name, kernel, memory = 16, vcpus = 1, destroyed on poweroff,
        reboot and crash, extra = \"console=hvc0 -- ARGS\" (its /chosen/bootargs), then FILE's lines, then
        each --xl-arg, a later line overriding an earlier one (name and kernel are the run's). A 32-bit
        image must be linked where its zImage header asks libxl to load it, inside the domU's RAM (from
        0x40000000; the template: -C link-arg=--defsym=__load_base=0x40008000). Shows the domU's console
        (xenconsoled's log of it) as it runs, not Xen's or dom0's lines (--xen-log: all of them). Exit
        status 0 only when xl's log says the domU shut down with reason poweroff; 1 on a crash, reboot or
        other reason, a failed xl create, a Xen or dom0 crash, or --timeout seconds of the domU running
        (it is destroyed), naming which.
  new <PATH> [--arch aarch64|arm|thumb] [--path CHECKOUT]
        a unikernel project in the new directory PATH, named after its last component, from the template
        built into cargo-xen: `cd PATH && cargo run --release` boots it on Xen, `cargo test` runs its
        tests/on_xen.rs there. It depends on xen-hypercall and xen-test by version, or with --path on a
        checkout of the xen-hypercall repository. Exit status 2 for an existing PATH or a bad name.";

/// The entry point: `args` without the program name (and without cargo's `xen`). Returns the exit code.
pub fn main(args: &[String]) -> u8 {
    let result = match args.first().map(String::as_str) {
        Some("audit") => audit_main(&args[1..]),
        Some("run") => run_main(&args[1..]),
        Some("new") => new_main(&args[1..]),
        Some("help" | "--help" | "-h") | None => {
            println!("{HELP}");
            Ok(true)
        }
        Some("--version" | "-V") => {
            println!("cargo-xen {}", env!("CARGO_PKG_VERSION"));
            Ok(true)
        }
        Some(other) => Err(anyhow!("unknown command `{other}`; see `cargo xen help`")),
    };
    match result {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(e) => {
            // One line: the causes joined.
            eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
            2
        }
    }
}

fn number(flag: &str, v: Option<&String>) -> Result<u64> {
    let v = v.with_context(|| format!("{flag} needs a number"))?;
    v.parse()
        .map_err(|_| anyhow!("{flag}: `{v}` is not a non-negative integer"))
}

fn read_report(path: &str) -> Result<audit::Report> {
    let meta = std::fs::metadata(path).map_err(|e| anyhow!("{path}: {e}"))?;
    if meta.is_dir() {
        bail!("{path}: is a directory");
    }
    let data = std::fs::read(path).map_err(|e| anyhow!("{path}: {e}"))?;
    if data.is_empty() {
        bail!("{path}: empty file");
    }
    audit::analyze(&data).map_err(|e| anyhow!("{path}: {e:#}"))
}

/// `cargo xen audit`; `Ok(false)` when a limit is exceeded.
pub fn audit_main(args: &[String]) -> Result<bool> {
    let mut json = false;
    let mut diff = false;
    let mut paths = Vec::new();
    let mut limits = Limits::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--json" => json = true,
            "--diff" => diff = true,
            "--max-setup-per-site" => limits.setup_per_site = Some(number(a, it.next())?),
            "--max-setup-bytes" => limits.setup_bytes = Some(number(a, it.next())?),
            "--max-sites" => limits.sites = Some(number(a, it.next())?),
            "--max-stub-bytes" => limits.stub_bytes = Some(number(a, it.next())?),
            "--max-hypercall-bytes" => limits.hypercall_bytes = Some(number(a, it.next())?),
            s if s.starts_with('-') => bail!("unknown option {s}; see `cargo xen help`"),
            s => paths.push(s.to_string()),
        }
    }
    if diff {
        let [old, new] = &paths[..] else {
            bail!("--diff takes two files: OLD NEW");
        };
        let (a, b) = (read_report(old)?, read_report(new)?);
        let deltas = audit::diff(&a, &b);
        let violations = limits.check(&b);
        if json {
            println!(
                "{}",
                audit::render_diff_json(old, new, &deltas, &violations)
            );
        } else {
            print!("{}", audit::render_diff(&deltas));
        }
        for v in &violations {
            eprintln!("limit: {new}: {v}");
        }
        return Ok(violations.is_empty());
    }
    if paths.is_empty() {
        bail!("usage: cargo xen audit <ELF|object|archive>… [--json]");
    }
    let mut files = Vec::new();
    let mut violations = Vec::new();
    for p in &paths {
        let r = read_report(p)?;
        violations.extend(limits.check(&r).into_iter().map(|v| format!("{p}: {v}")));
        files.push((p, r));
    }
    if json {
        let body: Vec<String> = files
            .iter()
            .map(|(p, r)| audit::render_json_file(p, r))
            .collect();
        let v: Vec<String> = violations
            .iter()
            .map(|v| format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
            .collect();
        println!(
            "{{\"version\":{},\"files\":[{}],\"violations\":[{}]}}",
            audit::JSON_VERSION,
            body.join(","),
            v.join(",")
        );
    } else {
        for (i, (p, r)) in files.iter().enumerate() {
            if files.len() > 1 {
                if i > 0 {
                    println!();
                }
                println!("{p}:");
            }
            print!("{}", audit::render_table(r));
        }
    }
    for v in &violations {
        eprintln!("limit: {v}");
    }
    Ok(violations.is_empty())
}

/// `cargo xen new`.
pub fn new_main(args: &[String]) -> Result<bool> {
    let mut dir = None;
    let mut arch = NewArch::Aarch64;
    let mut path = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--arch" => {
                let v = it.next().context("--arch needs aarch64, arm or thumb")?;
                arch = NewArch::parse(v)
                    .with_context(|| format!("--arch aarch64|arm|thumb, not `{v}`"))?;
            }
            "--path" => {
                path = Some(PathBuf::from(
                    it.next().context("--path needs a directory")?,
                ))
            }
            s if s.starts_with('-') => bail!("unknown option {s}; see `cargo xen help`"),
            s if dir.is_none() => dir = Some(PathBuf::from(s)),
            s => bail!("`cargo xen new` takes one PATH, not also `{s}`"),
        }
    }
    let dir =
        dir.context("usage: cargo xen new <PATH> [--arch aarch64|arm|thumb] [--path CHECKOUT]")?;
    let opts = NewOptions { dir, arch, path };
    let name = new::create(&opts)?;
    println!(
        "cargo-xen: created unikernel `{name}` ({}) in {}\n  cd {} && cargo run --release   # boots it on Xen under QEMU\n  cargo test                     # runs tests/on_xen.rs on Xen",
        opts.arch.target(),
        opts.dir.display(),
        opts.dir.display()
    );
    Ok(true)
}

/// `cargo xen run`; `Ok(false)` unless dom0 powered off.
pub fn run_main(args: &[String]) -> Result<bool> {
    let opts = run_options(args)?;
    if opts.xl.is_some() {
        let r = xl::run(&opts)?;
        return Ok(match r.outcome {
            Outcome::Poweroff => {
                eprintln!(
                    "cargo-xen: the domU powered off ({:.1} s preparing, {:.1} s in QEMU)",
                    r.prepare_seconds,
                    r.boot.elapsed.as_secs_f64()
                );
                true
            }
            Outcome::Failed(why) => {
                eprintln!("cargo-xen: FAILED: {why}");
                eprintln!(
                    "cargo-xen: the whole console (Xen, dom0, the domU) is in {}",
                    r.log.display()
                );
                false
            }
        });
    }
    match run::run(&opts)? {
        Outcome::Poweroff => {
            eprintln!("cargo-xen: dom0 powered off");
            Ok(true)
        }
        Outcome::Failed(why) => {
            eprintln!("cargo-xen: FAILED: {why}");
            // A failed test run says all in its summary; anything else may be in Xen's lines.
            if opts.hide_xen && !why.starts_with("test result:") {
                eprintln!(
                    "cargo-xen: Xen's own console lines were not shown (--xen-log shows them)"
                );
            }
            Ok(false)
        }
    }
}

/// The options of `cargo xen run`: with `--runner`, the first argument after the options is the image and
/// every later one (options included) a guest argument; otherwise the guest arguments follow `--`.
pub fn run_options(args: &[String]) -> Result<run::Options> {
    let mut opts = run::Options {
        images: Vec::new(),
        arch: None,
        dom0less: false,
        debug_xen: false,
        timeout: Duration::from_secs(60),
        xen_args: String::new(),
        stream: true,
        hide_xen: false,
        guest_args: Vec::new(),
        xl: None,
    };
    let mut runner = false;
    let mut xen_log = false;
    let mut xl = false;
    let mut xl_file = Vec::new();
    let mut xl_args = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        // As cargo's runner, everything after the image is the program's.
        if runner && !opts.images.is_empty() {
            opts.guest_args.push(a.clone());
            continue;
        }
        match a.as_str() {
            "--runner" => runner = true,
            "--xen-log" => xen_log = true,
            "--" => {
                opts.guest_args.extend(it.by_ref().cloned());
            }
            "--arch" => {
                opts.arch = Some(match it.next().map(String::as_str) {
                    Some("a64" | "aarch64") => Arch::A64,
                    Some("a32" | "arm" | "t32") => Arch::A32,
                    other => bail!("--arch a64|a32, not {other:?}"),
                })
            }
            "--dom0less" => opts.dom0less = true,
            "--xl" => xl = true,
            "--xl-config" => {
                let f = it.next().context("--xl-config needs a file")?;
                let text =
                    std::fs::read_to_string(f).map_err(|e| anyhow!("--xl-config {f}: {e}"))?;
                xl_file.extend(text.lines().map(str::to_string));
            }
            "--xl-arg" => xl_args.push(
                it.next()
                    .context("--xl-arg needs a `KEY = VALUE` line")?
                    .clone(),
            ),
            "--debug-xen" => opts.debug_xen = true,
            "--timeout" => opts.timeout = Duration::from_secs(number(a, it.next())?),
            "--xen-args" => {
                let v = it.next().context("--xen-args needs a value")?;
                opts.xen_args.push(' ');
                opts.xen_args.push_str(v);
            }
            s if s.starts_with('-') => bail!("unknown option {s}; see `cargo xen help`"),
            s => opts.images.push(PathBuf::from(s)),
        }
    }
    opts.hide_xen = runner && !xen_log;
    if xl {
        xl::check_config(&xl_file, &xl_args)?;
        // The domU's console alone unless --xen-log, as a runner or not: dom0's boot is not the program's.
        opts.hide_xen = !xen_log;
        opts.xl = Some(xl_file.into_iter().chain(xl_args).collect());
    } else if !xl_file.is_empty() || !xl_args.is_empty() {
        bail!("--xl-config and --xl-arg need --xl");
    }
    Ok(opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_runner_passes_everything_after_the_image() {
        let o = run_options(&strings(&[
            "--timeout",
            "9",
            "--runner",
            "ELF",
            "name",
            "--exact",
            "--timeout",
            "3",
        ]))
        .unwrap();
        assert_eq!(o.images, [PathBuf::from("ELF")]);
        assert_eq!(
            o.guest_args,
            strings(&["name", "--exact", "--timeout", "3"])
        );
        assert_eq!(o.timeout, Duration::from_secs(9));
        assert!(o.hide_xen);
        let o = run_options(&strings(&["--xen-log", "--runner", "ELF"])).unwrap();
        assert!(!o.hide_xen && o.guest_args.is_empty());
        // Without --runner, options after the image are cargo-xen's, and guest arguments follow `--`.
        let o = run_options(&strings(&["ELF", "--timeout", "5", "--", "a", "--b"])).unwrap();
        assert_eq!(o.images, [PathBuf::from("ELF")]);
        assert_eq!(o.timeout, Duration::from_secs(5));
        assert_eq!(o.guest_args, strings(&["a", "--b"]));
        assert!(!o.hide_xen);
        assert!(run_options(&strings(&["ELF", "--exact"])).is_err());
    }

    #[test]
    fn xl_options_gather_the_configuration_lines() {
        let cfg = std::env::temp_dir().join(format!("cargo-xen-cli-{}.cfg", std::process::id()));
        std::fs::write(&cfg, "memory = 32\n# a comment\n").unwrap();
        let cfg_arg = cfg.display().to_string();
        let o = run_options(&strings(&[
            "--xl",
            "--xl-arg",
            "vcpus = 1",
            "--xl-config",
            &cfg_arg,
            "--runner",
            "ELF",
            "greets",
        ]))
        .unwrap();
        // The file's lines first, then the --xl-arg ones, whatever their order on the command line.
        assert_eq!(
            o.xl.as_deref(),
            Some(&strings(&["memory = 32", "# a comment", "vcpus = 1"])[..])
        );
        assert_eq!(o.guest_args, strings(&["greets"]));
        assert!(o.hide_xen);
        // Without --runner too, only the domU's console is shown unless --xen-log.
        assert!(run_options(&strings(&["--xl", "ELF"])).unwrap().hide_xen);
        assert!(
            !run_options(&strings(&["--xl", "--xen-log", "ELF"]))
                .unwrap()
                .hide_xen
        );
        assert!(run_options(&strings(&["ELF"])).unwrap().xl.is_none());
        for bad in [
            &["--xl-arg", "memory = 32", "ELF"][..],
            &["--xl", "--xl-arg", "memory", "ELF"][..],
            &["--xl", "--xl-arg", "name = \"x\"", "ELF"][..],
            &["--xl", "--xl-config", "/nonexistent/xl.cfg", "ELF"][..],
            &["--xl", "--xl-config"][..],
        ] {
            assert!(run_options(&strings(bad)).is_err(), "{bad:?}");
        }
        let _ = std::fs::remove_file(&cfg);
    }
}
