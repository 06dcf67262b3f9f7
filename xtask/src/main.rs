//! `cargo xtask <task>`: see `cargo xtask help`.

use std::process::{Command, ExitCode};

use anyhow::Result;
use xtask::{el2, fixtures, setup, util, xensrc};

const HELP: &str = "\
usage: cargo xtask <task>

  demo      boot the example unikernels on Xen under QEMU and show what they did, then the code-size table
  test      every test: fmt and clippy, host tests (also under Miri), cross builds, disassembly checks,
            the EL2 harness, the real-Xen runs
  audit <ELF>… [--json] [--diff OLD NEW] [--max-… N]
            `cargo xen audit` (cargo-xen/): every hypercall site of ARM ELF files: per function sites,
            hypercall names, bytes, set-up bytes, stack frame; stubs apart
  fixtures  build the call-site fixtures and check every stub's machine code
  miri      the host tests of the mock, SMCCC and the runstate protocol under Miri (pinned nightly)
  package   package the published crates and build their tests from the .crate files
  el2       run the EL2 harness matrix
  xen       boot the example unikernels on Xen (release and debug builds) and check them
  domains [CONFIG…]
            several domains on Xen (dom0less): a frontend domU and its backend (dom0 or a domU), the
            negative control, SILO and xsm=dummy
  xl [SCENARIO…]
            Xen's real toolstack: a Debian Linux dom0 runs xenstored, xenconsoled and `xl create` of the
            project's domUs (release and debug Xen); checks their consoles and xenstore values; ARM,
            then x86-64 (`pvh`: a Linux PV dom0 and a PVH domU)
  x86       boot the x86-64 guest on Xen (PV and PVH dom0, inline and hypercall page, release and debug)
  smp       a dom0 with two vCPUs on Xen: PSCI, Xen detection, a second vCPU started with cpu_on
  cargo-xen install the cargo-xen tool and check it: audits, bad inputs, the template built from a copy,
            `cargo xen run` on guests that power off, crash and hang, `cargo xen new` then `cargo run` and
            `cargo test` in the new project, also as an xl domU (`cargo xtask cargo-xen new`: only those)
  xen-src   fetch Debian's Xen source and build the debug hypervisor (done by `xen` when missing)

Every task installs what it is missing (toolchain targets; Debian packages when run as root).";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // apt-get's and make's output goes to one log; the console gets one line per stage.
    cargo_xen::cmd::log_to(util::root().join("target/setup.log"));
    // What cannot be installed without removing a package (QEMU, on some machines) is unpacked there.
    setup::use_private_root(&util::target_dir());
    let result = match args.first().map(String::as_str) {
        Some("demo") => xtask::steps::demo(),
        Some("test") => test(),
        // The same as `cargo xen audit` (the `cargo-xen` member).
        Some("audit") => match cargo_xen::cli::audit_main(&args[1..]) {
            Ok(true) => Ok(()),
            Ok(false) => Err(anyhow::anyhow!("a --max-… limit is exceeded")),
            Err(e) => Err(e),
        },
        Some("fixtures") => setup::toolchain().and_then(|()| fixtures::run()),
        Some("miri") => miri(),
        Some("package") => xtask::package::run(),
        Some("el2") => setup::toolchain().and_then(|()| el2::run()),
        Some("xen") => setup::toolchain().and_then(|()| xtask::steps::xen()),
        Some("domains") => xtask::domains::test(&args[1..]),
        Some("xl") => xtask::steps::xl(&args[1..]),
        Some("x86") => setup::toolchain().and_then(|()| xtask::x86::test()),
        Some("smp") => xtask::smp::test(),
        Some("cargo-xen") if args.get(1).map(String::as_str) == Some("new") => {
            xtask::tool::test_new()
        }
        Some("cargo-xen") => xtask::tool::test(),
        Some("xen-src") => xensrc::debug_xen().map(|p| println!("{}", p.display())),
        Some("help" | "--help" | "-h") | None => {
            println!("{HELP}");
            Ok(())
        }
        Some(other) => {
            eprintln!("unknown task `{other}`\n\n{HELP}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// One step of `cargo xtask test`.
struct Step {
    name: &'static str,
    run: fn() -> Result<()>,
}

fn test() -> Result<()> {
    setup::toolchain()?;
    let steps = [
        Step {
            name: "rustfmt",
            run: || util::run(util::cargo().args(["fmt", "--all", "--check"])),
        },
        Step {
            name: "clippy (host)",
            run: clippy_host,
        },
        Step {
            name: "clippy (cross)",
            run: clippy_cross,
        },
        Step {
            name: "rustdoc",
            run: rustdoc,
        },
        Step {
            name: "packaged crates",
            run: xtask::package::run,
        },
        Step {
            name: "host tests",
            run: || {
                // The layout test compiles Xen's headers with clang.
                setup::debian(&[setup::CLANG, setup::LIBXEN_DEV])?;
                // The typed API's tests, the layout comparison and the doc examples run on the mock.
                util::run(util::cargo().args([
                    "test",
                    "-p",
                    "xen-hypercall",
                    "--features",
                    "mock",
                ]))?;
                // The test harness's device tree and argument parsing, on the mock.
                util::run(util::cargo().args(["test", "-p", "xen-test", "--features", "mock"]))?;
                // The default members (the bare-metal crates only build for ARM).
                util::run(util::cargo().args(["test"]))
            },
        },
        Step {
            name: "Miri",
            run: miri,
        },
        Step {
            name: "Xen's tables",
            run: xen_tables,
        },
        Step {
            name: "cross builds",
            run: cross_builds,
        },
        Step {
            name: "disassembly checks",
            run: fixtures::run,
        },
        Step {
            name: "EL2 harness",
            run: el2::run,
        },
        Step {
            name: "real Xen",
            run: xtask::steps::xen,
        },
        Step {
            name: "real toolstack (Linux dom0, xl)",
            run: || xtask::steps::xl(&[]),
        },
        Step {
            name: "real Xen (x86-64)",
            run: xtask::x86::test,
        },
        Step {
            name: "cargo-xen and the template",
            run: xtask::tool::test,
        },
    ];
    let mut failed = Vec::new();
    for step in &steps {
        eprintln!("\n==> {}", step.name);
        match (step.run)() {
            Ok(()) => eprintln!("==> {}: ok", step.name),
            Err(e) => {
                eprintln!("==> {}: FAILED: {e:#}", step.name);
                failed.push(step.name);
            }
        }
    }
    println!();
    for step in &steps {
        let verdict = if failed.contains(&step.name) {
            "FAILED"
        } else {
            "ok"
        };
        println!("{verdict:>6}  {}", step.name);
    }
    println!(
        "xtask: {} passed, {} failed",
        steps.len() - failed.len(),
        failed.len()
    );
    if failed.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("failed: {}", failed.join(", "))
    }
}

/// The crate's documentation for every docs.rs target (`[package.metadata.docs.rs]`), warnings denied:
/// a broken intra-doc link in one target's build fails.
fn rustdoc() -> Result<()> {
    for target in [
        "aarch64-unknown-none",
        "armv7a-none-eabi",
        "x86_64-unknown-none",
    ] {
        util::run(util::cargo().env("RUSTDOCFLAGS", "-D warnings").args([
            "doc",
            "-p",
            "xen-hypercall",
            "--no-deps",
            "--target",
            target,
        ]))?;
    }
    Ok(())
}

/// `xen::nr` against Xen's own `hypercall-defs.c` and `public/xen.h`, from Debian's source package.
fn xen_tables() -> Result<()> {
    let src = xensrc::source()?;
    util::run(util::cargo().env("XEN_SRC", &src).args([
        "test",
        "-p",
        "xen-hypercall",
        "--features",
        "mock",
        "--test",
        "xen_tables",
        "--test",
        "smccc_xen",
        "--",
        "--ignored",
        "--nocapture",
    ]))
}

/// The nightly toolchain whose Miri runs the host tests (pinned: a new nightly can change what Miri
/// reports).
const MIRI_TOOLCHAIN: &str = "nightly-2026-10-30";

/// The host tests that run code of the crate (the mock and the typed API on it, SMCCC and PSCI, the
/// runstate protocol with a second thread) under Miri, which checks for undefined behaviour: reads of
/// uninitialised bytes, data races, accesses the borrow rules forbid. The tests that start processes
/// (trybuild, the layout probe's clang) and the doc examples are left to the host tests.
fn miri() -> Result<()> {
    let installed = |c: &str| {
        util::output(
            Command::new("rustup")
                .args(["component", "list", "--installed", "--toolchain"])
                .arg(MIRI_TOOLCHAIN),
        )
        .is_ok_and(|list| list.lines().any(|l| l.trim().starts_with(c)))
    };
    if !installed("miri") || !installed("rust-src") {
        util::run(Command::new("rustup").args([
            "toolchain",
            "install",
            MIRI_TOOLCHAIN,
            "--profile",
            "minimal",
            "--component",
            "miri,rust-src",
        ]))?;
    }
    let miri = |features: &[&str], model: &[&str], filter: &[&str]| {
        let mut c = Command::new("rustup");
        c.current_dir(util::root())
            .args([
                "run",
                MIRI_TOOLCHAIN,
                "cargo",
                "miri",
                "test",
                "-p",
                "xen-hypercall",
            ])
            .args(features)
            .args([
                "--lib",
                "--test",
                "xen_api",
                "--test",
                "smccc",
                "--test",
                "smccc_xen",
                "--",
            ])
            .args(filter)
            // `cargo xtask` runs under the pinned stable toolchain: let rustup pick the nightly.
            .env_remove("CARGO")
            .env_remove("RUSTC")
            .env_remove("RUSTDOC")
            .env_remove("RUSTUP_TOOLCHAIN")
            // The typed API passes addresses as register values (`usize`), as the hardware does: the
            // mock turns them back into pointers, which needs permissive provenance. The grant tests give
            // pages up for good (`Box::leak` makes the `&'static mut Page` a grant takes), as a unikernel
            // gives up its static pages: those are leaks by design.
            .env(
                "MIRIFLAGS",
                ["-Zmiri-permissive-provenance", "-Zmiri-ignore-leaks"]
                    .iter()
                    .chain(model)
                    .copied()
                    .collect::<Vec<_>>()
                    .join(" "),
            );
        util::run(&mut c)
    };
    miri(&[], &[], &[])?;
    // The PVH start-info tests take addresses inside a `Box` that then moves: Stacked Borrows invalidates
    // them (a test fixture's problem, not the library's), Tree Borrows does not.
    miri(&["--features", "mock"], &[], &["--skip", "x86::a_"])?;
    miri(
        &["--features", "mock"],
        &["-Zmiri-tree-borrows"],
        &["x86::a_"],
    )
}

fn clippy_host() -> Result<()> {
    // The default members: the bare-metal crates (fixtures, bench sites, images) only build for ARM.
    util::run(util::cargo().args(["clippy", "--all-targets", "--", "-D", "warnings"]))?;
    // The mock backend's code and tests (and the test harness's on it).
    util::run(util::cargo().args([
        "clippy",
        "-p",
        "xen-hypercall",
        "-p",
        "xen-test",
        "--all-targets",
        "--features",
        "mock",
        "--",
        "-D",
        "warnings",
    ]))
}

fn clippy_cross() -> Result<()> {
    // x86-64: the library (and its typed API) with each trap, inline and through the hypercall page, and
    // the x86 guest (inline and hypercall page, with its control).
    for features in [
        "x86-pv",
        "x86-hvm-amd",
        "outline",
        "x86-pv,outline",
        "x86-hvm-amd,outline",
    ] {
        clippy_x86(&["xen-hypercall"], features)?;
    }
    for features in ["pv,underdeclared", "amd,underdeclared", "outline"] {
        clippy_x86(&["xen-hypercall-guests-x86"], features)?;
    }
    // The x86-64 bench image and real-Xen dom0 (and with them the bench sites), for each trap.
    for trap in ["pv", "amd"] {
        clippy_x86(
            &[
                "xen-hypercall-bench-insns-x86",
                "xen-hypercall-bench-xen-cost-x86",
            ],
            &format!(
                "xen-hypercall-bench-insns-x86/{trap},xen-hypercall-bench-xen-cost-x86/{trap}"
            ),
        )?;
    }
    for t in setup::TARGETS {
        // The inline stubs, then the typed API on the out-of-line ones; the library and every
        // bare-metal member (fixtures, bench sites and image, EL2 harness, example guest).
        for features in [None, Some("xen-hypercall/outline")] {
            let mut cmd = util::cargo();
            cmd.arg("clippy");
            for p in [
                "xen-hypercall",
                "xen-hypercall-fixtures",
                "xen-hypercall-bench-sites",
                "xen-hypercall-bench-insns",
                "xen-hypercall-el2-harness",
                "xen-hypercall-guests",
                "xen-hypercall-bench-xen-cost",
                "xen-test",
            ] {
                cmd.args(["-p", p]);
            }
            cmd.args(["--target", t]);
            if let Some(f) = features {
                cmd.args(["--features", f]);
            }
            util::run(cmd.args(["--", "-D", "warnings"]))?;
        }
    }
    // The block benchmark's program for the Linux domU (a Linux/arm64 executable only).
    util::run(util::cargo().args([
        "clippy",
        "-p",
        "xen-hypercall-bench-linux-blkio",
        "--target",
        "aarch64-unknown-none",
        "--",
        "-D",
        "warnings",
    ]))?;
    Ok(())
}

/// `cargo clippy` of `packages` for x86_64-unknown-none with `features`, warnings denied.
fn clippy_x86(packages: &[&str], features: &str) -> Result<()> {
    let mut cmd = util::cargo();
    cmd.arg("clippy");
    for p in packages {
        cmd.args(["-p", p]);
    }
    util::run(cmd.args([
        "--target",
        "x86_64-unknown-none",
        "--features",
        features,
        "--",
        "-D",
        "warnings",
    ]))
}

/// The library for A32, T32 (the Thumb-mode target feature) and A64.
fn cross_builds() -> Result<()> {
    for t in setup::TARGETS {
        util::run(util::cargo().args([
            "build",
            "-p",
            "xen-hypercall",
            "--target",
            t,
            "--release",
        ]))?;
    }
    let thumb = util::target_dir().join("thumb");
    util::run(
        util::cargo()
            .env("CARGO_TARGET_DIR", &thumb)
            .env("RUSTFLAGS", "-C target-feature=+thumb-mode")
            .args([
                "build",
                "-p",
                "xen-hypercall",
                "--target",
                "armv7a-none-eabi",
                "--release",
            ]),
    )?;
    // x86-64: each trap the inline stubs can be built with (vmcall, vmmcall, syscall).
    for features in [None, Some("x86-hvm-amd"), Some("x86-pv")] {
        let mut cmd = util::cargo();
        cmd.args([
            "build",
            "-p",
            "xen-hypercall",
            "--target",
            "x86_64-unknown-none",
            "--release",
        ]);
        if let Some(f) = features {
            cmd.args(["--features", f]);
        }
        util::run(&mut cmd)?;
    }
    // M-profile has no HVC: the build must fail, with the library's message.
    let out = util::cargo()
        .args(["build", "-p", "xen-hypercall", "--target", setup::M_PROFILE])
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() || !stderr.contains("M-profile ARM") {
        anyhow::bail!(
            "building for {} should fail with the M-profile message; got:\n{stderr}",
            setup::M_PROFILE
        );
    }
    eprintln!(
        "{}: rejected as expected (M-profile has no HVC)",
        setup::M_PROFILE
    );
    Ok(())
}
