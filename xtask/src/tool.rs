//! `cargo xtask cargo-xen` (a step of `cargo xtask test`): the `cargo-xen` tool as a user gets it.
//!
//! - `cargo install --path cargo-xen` into `target/cargo-xen-install/`, then every check runs that binary
//!   (one through `cargo xen …`, as cargo runs a subcommand);
//! - its unit tests, including the comparison of its hypercall names with Xen's public headers;
//! - the audit of C compiled by clang -Os against Linux's and Unikraft's stub shapes and of this crate's
//!   inline, per-arity and per-hypercall call sites (the bench's sites, whose work loop makes nine known
//!   hypercalls), and of the example guests; `--diff`, a `--max-…` limit at and below the measured value,
//!   `--json` read by a JSON parser; bad inputs (each one line on stderr, exit status 2, no panic);
//! - the x86-64 audit: the x86 guest built with inline `syscall`, inline `vmmcall` and through the hypercall
//!   page (its register-reuse pairs named, each site of the expected kind and trap; the page found through
//!   the ELF note once its symbol is stripped, and nothing found once the note is gone too), C compiled by
//!   clang -Os against Linux-shaped `call hypercall_page+32*nr` wrappers (`cargo-xen/tests/data/linux-x86.c`,
//!   whose header lists the expected sites), `--diff` and a `--max-…` limit, bad x86 inputs;
//! - a host `cargo check` of code using the typed API says what to build with;
//! - the template copied outside the repository builds with plain `cargo build --release` (AArch64, and
//!   `--target armv7a-none-eabi`), and `cargo xen run` boots it (exit 0 on poweroff), a copy that crashes
//!   and one that hangs (exit 1, with Xen's line or the time-out), and the example guest;
//! - `cargo xen new` outside the repository (this checkout's crates by path): bad names refused, then
//!   `cargo run --release` boots the project (cargo's runner is `cargo xen run --runner`) and `cargo test`
//!   runs its tests on Xen with a deliberately broken one added (exit non-zero, every verdict, the panic
//!   message), a filter, a hanging test named at the time-out, and the tests on 32-bit ARM (Thumb-2);
//!   with the runner `cargo xen run --xl --runner` the project boots as an `xl` domU of a Linux dom0
//!   (`cargo run` greets, exit 0; `cargo test broken` panics in the domU: exit non-zero, the reason).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::elf::Isa;
use crate::x86::{self, Build, PAIR_FUNCTIONS, Stubs, TYPED_PAIR_FUNCTIONS};
use crate::{bench_arm, setup, util, xen};

/// The work loop of the bench's sites (`benches/sites/src/lib.rs`, `benches/sites/c/callers.c`): its
/// hypercalls and first arguments, as written there, named as Xen's headers name them.
pub const WORK_LOOP: [&str; 9] = [
    "console_io/write",
    "xen_version/version",
    "event_channel_op/alloc_unbound",
    "event_channel_op/send",
    "grant_table_op/query_size",
    "hvm_op/get_param",
    "vcpu_op/register_vcpu_info",
    "event_channel_op/close",
    "sched_op/yield",
];

/// What one command did.
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn exec(cmd: &mut Command) -> Result<Out> {
    let o = cmd
        .output()
        .with_context(|| format!("cannot start {}", util::show(cmd)))?;
    Ok(Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    })
}

/// Collects failed checks instead of stopping at the first.
#[derive(Default)]
struct Checks {
    passed: usize,
    failed: Vec<String>,
}

impl Checks {
    fn check(&mut self, ok: bool, what: impl Into<String>) {
        let what = what.into();
        if ok {
            self.passed += 1;
            eprintln!("ok    {what}");
        } else {
            eprintln!("FAIL  {what}");
            self.failed.push(what);
        }
    }
}

/// `cargo install --path cargo-xen --root target/cargo-xen-install`; returns the installed binary.
fn install() -> Result<PathBuf> {
    let root = util::target_dir().join("cargo-xen-install");
    util::run(
        util::cargo()
            .env("CARGO_TARGET_DIR", root.join("build"))
            .args([
                "install",
                "--quiet",
                "--force",
                "--path",
                "cargo-xen",
                "--root",
            ])
            .arg(&root),
    )?;
    let bin = root.join("bin/cargo-xen");
    if !bin.is_file() {
        bail!("cargo install made no {}", bin.display());
    }
    Ok(bin)
}

/// The site names of function `name` in the audit JSON, with their kinds.
fn sites_of(json: &Value, name: &str) -> Option<(Vec<String>, Vec<String>)> {
    let f = json["files"]
        .as_array()?
        .iter()
        .flat_map(|f| f["functions"].as_array().into_iter().flatten())
        .find(|f| f["name"] == name)?;
    let sites = f["sites"].as_array()?;
    Some((
        sites
            .iter()
            .map(|s| s["name"].as_str().unwrap_or("").to_string())
            .collect(),
        sites
            .iter()
            .map(|s| s["kind"].as_str().unwrap_or("").to_string())
            .collect(),
    ))
}

fn audit_json(bin: &Path, files: &[&Path]) -> Result<Value> {
    let out = exec(Command::new(bin).arg("audit").arg("--json").args(files))?;
    if out.code != 0 {
        bail!("cargo-xen audit --json failed: {}", out.stderr);
    }
    serde_json::from_str(&out.stdout).context("cargo-xen audit --json printed invalid JSON")
}

/// The totals of the first file of an audit's JSON: its sites, and its bytes with the stubs'.
fn totals(j: &Value) -> (u64, u64) {
    let t = &j["files"][0]["totals"];
    (
        t["sites"].as_u64().unwrap_or(0),
        t["bytes"].as_u64().unwrap_or(0) + t["stub_bytes"].as_u64().unwrap_or(0),
    )
}

/// `cargo xen audit --json --diff old new`: what it did, and its JSON (null when it printed none).
fn diff_json(bin: &Path, old: &Path, new: &Path) -> Result<(Out, Value)> {
    let out = exec(
        Command::new(bin)
            .args(["audit", "--json", "--diff"])
            .arg(old)
            .arg(new),
    )?;
    let diff = serde_json::from_str(&out.stdout).unwrap_or(Value::Null);
    Ok((out, diff))
}

/// `--max-setup-per-site` at the worst call site of `elf` (whose audit is `j`) passes, one byte below fails
/// with exit status 1 and the limit named; `what` starts the check's name.
fn setup_limit(bin: &Path, elf: &Path, j: &Value, what: &str, c: &mut Checks) -> Result<()> {
    let worst = j["files"][0]["functions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["stub"].is_null())
        .flat_map(|f| f["sites"].as_array().into_iter().flatten())
        .filter_map(|s| s["setup_bytes"].as_u64())
        .max()
        .unwrap_or(0);
    let limit = |n: u64| {
        exec(
            Command::new(bin)
                .arg("audit")
                .arg(elf)
                .args(["--max-setup-per-site", &n.to_string()]),
        )
    };
    let (at, below) = (limit(worst)?, limit(worst.saturating_sub(1))?);
    c.check(
        worst > 0
            && at.code == 0
            && below.code == 1
            && below.stderr.contains("--max-setup-per-site"),
        format!(
            "{what}--max-setup-per-site {worst} passes, {} fails with exit status 1 (got {}, {}: {})",
            worst.saturating_sub(1),
            at.code,
            below.code,
            below.stderr.trim()
        ),
    );
    Ok(())
}

/// The bench's sites and C peers, per instruction set: the work loop in every shape.
fn audit_sites(bin: &Path, c: &mut Checks) -> Result<()> {
    for (isa, target, flags) in [
        (Isa::A64, "aarch64-unknown-none", ""),
        (Isa::A32, "armv7a-none-eabi", ""),
        (Isa::T32, "armv7a-none-eabi", "-Ctarget-feature=+thumb-mode"),
    ] {
        let (sites, lib) = bench_arm::build(target, flags, "s", isa)?;
        // The sites alone (this crate's per-arity stubs are then known by name), and with the library.
        let json = audit_json(bin, &[&sites])?;
        c.check(
            json["version"] == 1,
            format!("{}: --json has \"version\": 1", isa.name()),
        );
        let mut shapes = vec![
            ("work_inline", "inline"),
            ("work_outline", "generic_stub"),
            ("work_percall", "per_call_stub"),
            ("work_linux", "per_call_stub"),
        ];
        if isa != Isa::T32 {
            shapes.push(("work_unikraft", "per_call_stub"));
        }
        for (func, kind) in shapes {
            let got = sites_of(&json, func);
            let ok = got.as_ref().is_some_and(|(names, kinds)| {
                names == &WORK_LOOP && kinds.iter().all(|k| k == kind)
            });
            c.check(
                ok,
                format!(
                    "{}: {func}: the nine hypercalls of the work loop, named, each a {kind} site (got {got:?})",
                    isa.name()
                ),
            );
        }
        // Linux's stubs recognised by their code, with their numbers.
        let stub = json["files"][0]["functions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|f| f["name"] == "linux_HYPERVISOR_event_channel_op");
        c.check(
            stub.is_some_and(|s| s["stub"]["kind"] == "per_call" && s["stub"]["number"] == 32),
            format!(
                "{}: linux_HYPERVISOR_event_channel_op is a per-hypercall stub of number 32",
                isa.name()
            ),
        );
        // Per arity: site_outline_N calls the generic stub of arity N.
        let arities: Vec<Option<u64>> = (0..=5)
            .map(|n| {
                json["files"][0]["functions"]
                    .as_array()?
                    .iter()
                    .find(|f| f["name"] == format!("site_outline_{n}").as_str())?["sites"][0]
                    ["arity"]
                    .as_u64()
            })
            .collect();
        c.check(
            arities == (0..=5).map(Some).collect::<Vec<_>>(),
            format!(
                "{}: site_outline_0..5 call generic stubs of arity 0..5 (got {arities:?})",
                isa.name()
            ),
        );
        // With the library: the per-arity stubs are then defined, recognised by their code too.
        let both = audit_json(bin, &[&sites, &lib])?;
        c.check(
            both["files"].as_array().map(Vec::len) == Some(2),
            format!("{}: two files, two reports", isa.name()),
        );
    }
    Ok(())
}

/// The example guests: inline and per-hypercall out-of-line, AArch64; `--diff` and `--max-…`.
fn audit_guests(bin: &Path, c: &mut Checks) -> Result<(PathBuf, PathBuf)> {
    let guest = |outline| xen::Guest {
        isa: Isa::A64,
        outline,
        underdeclared: false,
    };
    let inline = xen::build(&guest(false))?;
    let outline = xen::build(&guest(true))?;
    // The outline guest calls the per-arity stubs in its raw pairs and the per-hypercall stubs through
    // the typed API (`guests/src/pairs.rs`).
    for (elf, raw, typed) in [
        (&inline, "inline", "inline"),
        (&outline, "generic_stub", "per_call_stub"),
    ] {
        let json = audit_json(bin, &[elf])?;
        for (func, kind, want) in [
            ("pair1_sysctl", raw, ["sysctl", "sysctl"]),
            (
                "pair2_xen_version",
                raw,
                ["xen_version/extraversion", "xen_version/extraversion"],
            ),
            (
                "pair3_grant_table_op",
                raw,
                ["grant_table_op/query_size", "grant_table_op/query_size"],
            ),
            (
                "pair2_typed_extraversion",
                typed,
                ["xen_version/extraversion", "xen_version/extraversion"],
            ),
            (
                "pair3_typed_query_size",
                typed,
                ["grant_table_op/query_size", "grant_table_op/query_size"],
            ),
        ] {
            let got = sites_of(&json, func);
            c.check(
                got.as_ref()
                    .is_some_and(|(n, k)| n == &want && k.iter().all(|k| k == kind)),
                format!("a64 guest ({raw}): {func}: {want:?}, {kind} sites (got {got:?})"),
            );
        }
    }
    // --diff: the totals of each side, as the audit of each file reports them.
    let ji = audit_json(bin, &[&inline])?;
    let (a, b) = (totals(&ji), totals(&audit_json(bin, &[&outline])?));
    let (out, diff) = diff_json(bin, &inline, &outline)?;
    let total = &diff["diff"]["total"];
    c.check(
        out.code == 0
            && total["sites"] == serde_json::json!([a.0, b.0])
            && total["bytes"] == serde_json::json!([a.1, b.1])
            && diff["diff"]["functions"]
                .as_array()
                .is_some_and(|f| f.iter().any(|f| f["name"] == "stubs")),
        format!("--diff inline outline: total sites {a:?}→{b:?}, the stubs line (got {total})"),
    );
    let table = exec(
        Command::new(bin)
            .args(["audit", "--diff"])
            .arg(&inline)
            .arg(&outline),
    )?;
    c.check(
        table.code == 0 && table.stdout.lines().any(|l| l.starts_with("total ")),
        "--diff prints a table with a total line",
    );
    // A limit at the measured value passes, one byte below fails (exit status 1, the limit named).
    setup_limit(bin, &inline, &ji, "", c)?;
    Ok((inline, outline))
}

/// Bad inputs: one line on stderr, exit status 2, no panic.
fn bad_inputs(bin: &Path, guest: &Path, c: &mut Checks) -> Result<()> {
    let dir = util::target_dir().join("cargo-xen-bad");
    std::fs::create_dir_all(&dir)?;
    let data = std::fs::read(guest)?;
    let empty = dir.join("empty");
    std::fs::write(&empty, b"")?;
    let text = dir.join("text");
    std::fs::write(&text, b"not an ELF file\n")?;
    let truncated = dir.join("truncated");
    std::fs::write(&truncated, &data[..data.len().min(200)])?;
    let stripped = dir.join("stripped");
    let objcopy = Path::new(
        &util::output(Command::new("rustc").args(["--print", "sysroot"]))?
            .trim()
            .to_string(),
    )
    .join("lib/rustlib")
    .join(host_triple()?)
    .join("bin/rust-objcopy");
    util::run(
        Command::new(&objcopy)
            .arg("--strip-all")
            .arg(guest)
            .arg(&stripped),
    )?;
    // A host ELF: this program, copied through `/proc/self/exe`, which stays readable even when a later
    // build has replaced the file it was started from.
    let host = dir.join("host-elf");
    std::fs::copy("/proc/self/exe", &host).context("copying this program's ELF")?;
    for (what, path, want) in [
        ("not an ELF", text.as_path(), "not an ELF"),
        ("an empty file", &empty, "empty"),
        ("a truncated ELF", &truncated, "truncated"),
        ("a stripped ELF", &stripped, "no function symbols"),
        ("a directory", &dir, "directory"),
        ("another architecture", &host, "unsupported architecture"),
        ("a missing file", &dir.join("missing"), "No such file"),
    ] {
        let out = exec(Command::new(bin).arg("audit").arg(path))?;
        let lines = out.stderr.lines().count();
        c.check(
            out.code == 2
                && lines == 1
                && out.stderr.contains(want)
                && !out.stderr.contains("panicked"),
            format!(
                "audit of {what}: one line naming the problem, exit status 2 (got {}: {})",
                out.code,
                out.stderr.trim()
            ),
        );
    }
    Ok(())
}

/// What the x86 guest's register-reuse pairs call, twice each (`guests-x86/src/pairs.rs`).
fn x86_pair_calls(func: &str) -> &'static str {
    match func {
        "pair1_sysctl" => "sysctl",
        "pair2_xen_version" | "pair2_typed_extraversion" => "xen_version/extraversion",
        "pair5_hypfs_op" => "hypfs_op/get_version",
        _ => "grant_table_op/query_size",
    }
}

/// The kinds and traps of every site in callers (not stubs) of an audit's first file.
fn caller_sites(json: &Value) -> Vec<(String, String)> {
    json["files"][0]["functions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["stub"].is_null())
        .flat_map(|f| f["sites"].as_array().into_iter().flatten())
        .map(|s| {
            (
                s["kind"].as_str().unwrap_or("").to_string(),
                s["trap"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// The x86-64 guest's pairs in one build: named, each of `kind` (and `trap` for inline sites).
fn x86_pairs(json: &Value, what: &str, raw: &str, typed: &str, c: &mut Checks) {
    let pairs = PAIR_FUNCTIONS
        .iter()
        .map(|(f, _)| (*f, raw))
        .chain(TYPED_PAIR_FUNCTIONS.iter().map(|(f, _)| (*f, typed)));
    for (func, kind) in pairs {
        let want = x86_pair_calls(func);
        let got = sites_of(json, func);
        c.check(
            got.as_ref().is_some_and(|(n, k)| {
                n.len() == 2 && n.iter().all(|n| n == want) && k.iter().all(|k| k == kind)
            }),
            format!("x86 guest ({what}): {func}: {want} twice, {kind} sites (got {got:?})"),
        );
    }
}

/// The x86-64 audit: the guest's three builds, the page found by its note, Linux-shaped C, `--diff`,
/// `--max-…`, bad inputs.
fn audit_x86(bin: &Path, c: &mut Checks) -> Result<()> {
    let build = |stubs| {
        x86::build(Build {
            stubs,
            underdeclared: false,
        })
    };
    let (syscall, vmmcall, page) = (
        build(Stubs::Syscall)?,
        build(Stubs::Vmmcall)?,
        build(Stubs::Page)?,
    );
    // Inline traps: every site of the syscall build is a `syscall`, of the vmmcall build a `vmmcall`; each
    // predicate fails on the other build (it is not vacuous).
    let (js, jv) = (audit_json(bin, &[&syscall])?, audit_json(bin, &[&vmmcall])?);
    let all = |j: &Value, trap: &str| {
        let s = caller_sites(j);
        !s.is_empty() && s.iter().all(|(k, t)| k == "inline" && t == trap)
    };
    c.check(
        all(&js, "syscall") && all(&jv, "vmmcall") && !all(&js, "vmmcall") && !all(&jv, "syscall"),
        format!(
            "x86: the syscall guest's {} sites are all inline syscalls, the vmmcall guest's {} all vmmcalls",
            caller_sites(&js).len(),
            caller_sites(&jv).len()
        ),
    );
    x86_pairs(&js, "syscall", "inline", "inline", c);
    x86_pairs(&jv, "vmmcall", "inline", "inline", c);
    // The page build: the raw pairs call the per-arity stubs, which enter the page; the typed API calls
    // the page entries from the call site (`outline::per_call` is inline on x86-64: no stub of its own).
    let jp = audit_json(bin, &[&page])?;
    x86_pairs(&jp, "page", "generic_stub", "hypercall_page", c);
    let stubs: Vec<&Value> = jp["files"][0]["functions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| !f["stub"].is_null())
        .collect();
    c.check(
        stubs.len() >= 5
            && stubs.iter().all(|f| {
                f["stub"]["kind"] == "generic"
                    && f["sites"]
                        .as_array()
                        .is_some_and(|s| s.len() == 1 && s[0]["kind"] == "hypercall_page")
            })
            && caller_sites(&jp).iter().all(|(k, _)| k != "inline"),
        format!(
            "x86 page guest: {} stubs, all per-arity, each entering the hypercall page once (the typed \
             API calls the page itself); no inline trap",
            stubs.len()
        ),
    );
    // Without the page's symbol the ELF note still names it; without the note too, nothing does.
    let objcopy = objcopy()?;
    let dir = util::target_dir().join("cargo-xen-x86");
    std::fs::create_dir_all(&dir)?;
    let no_symbol = dir.join("page-no-symbol.elf");
    let neither = dir.join("page-no-symbol-no-note.elf");
    util::run(
        Command::new(&objcopy)
            .arg("--strip-symbol=xen_hypercall_page")
            .arg(&page)
            .arg(&no_symbol),
    )?;
    util::run(
        Command::new(&objcopy)
            .arg("--remove-section=.note.Xen")
            .arg(&no_symbol)
            .arg(&neither),
    )?;
    let typed = |j: &Value| sites_of(j, "pair3_typed_query_size").map(|(n, _)| n);
    let (a, b) = (
        audit_json(bin, &[&no_symbol])?,
        audit_json(bin, &[&neither])?,
    );
    c.check(
        typed(&a) == typed(&jp) && typed(&jp).is_some() && typed(&b).is_none(),
        format!(
            "x86: with xen_hypercall_page stripped the HYPERCALL_PAGE note still names the page (got {:?}); \
             with the note removed too the typed calls into the page are not found (got {:?})",
            typed(&a),
            typed(&b)
        ),
    );
    // Linux-shaped C, compiled here.
    let src = util::root().join("cargo-xen/tests/data/linux-x86.c");
    let obj = dir.join("linux-x86-Os.o");
    util::run(
        Command::new("clang")
            .args([
                "--target=x86_64-unknown-none-elf",
                "-Os",
                "-ffreestanding",
                "-fno-pic",
                "-c",
            ])
            .arg(&src)
            .arg("-o")
            .arg(&obj),
    )?;
    let jc = audit_json(bin, &[&obj])?;
    for (func, names, kind) in [
        (
            "xh_evtchn_send",
            &["event_channel_op/send"][..],
            "hypercall_page",
        ),
        ("xh_yield", &["sched_op/yield"][..], "hypercall_page"),
        (
            "xh_console_write",
            &["console_io/write"][..],
            "hypercall_page",
        ),
        (
            "xh_work",
            &[
                "xen_version/version",
                "event_channel_op/close",
                "sched_op/yield",
            ][..],
            "hypercall_page",
        ),
        ("xh_vmmcall_send", &["event_channel_op/send"][..], "inline"),
        ("xh_syscall_yield", &["sched_op/yield"][..], "inline"),
        (
            "xh_stub_send",
            &["event_channel_op/send"][..],
            "per_call_stub",
        ),
        (
            "xh_generic_query",
            &["grant_table_op/query_size"][..],
            "generic_stub",
        ),
    ] {
        let got = sites_of(&jc, func);
        c.check(
            got.as_ref()
                .is_some_and(|(n, k)| n == names && k.iter().all(|k| k == kind)),
            format!("x86 C (clang -Os, Linux-shaped): {func}: {names:?}, {kind} (got {got:?})"),
        );
    }
    // --diff: inline syscall vs the page, totals as each file's audit reports them.
    let (a, b) = (totals(&js), totals(&jp));
    let (out, diff) = diff_json(bin, &syscall, &page)?;
    let total = &diff["diff"]["total"];
    c.check(
        out.code == 0
            && total["sites"] == serde_json::json!([a.0, b.0])
            && total["bytes"] == serde_json::json!([a.1, b.1]),
        format!("x86 --diff syscall page: total sites and bytes {a:?}→{b:?} (got {total})"),
    );
    // A limit at the worst site passes, one byte below fails.
    setup_limit(bin, &syscall, &js, "x86 ", c)?;
    // Bad x86 inputs, and code of an architecture the audit does not read.
    let data = std::fs::read(&syscall)?;
    let truncated = dir.join("truncated");
    std::fs::write(&truncated, &data[..data.len().min(300)])?;
    let riscv = dir.join("riscv.o");
    util::run(
        Command::new("clang")
            .args([
                "--target=riscv64-unknown-elf",
                "-c",
                "-x",
                "c",
                "/dev/null",
                "-o",
            ])
            .arg(&riscv),
    )?;
    for (what, path, want) in [
        ("a truncated x86-64 ELF", truncated.as_path(), "truncated"),
        ("a RISC-V object", &riscv, "unsupported architecture"),
    ] {
        let out = exec(Command::new(bin).arg("audit").arg(path))?;
        c.check(
            out.code == 2
                && out.stderr.lines().count() == 1
                && out.stderr.contains(want)
                && !out.stderr.contains("panicked"),
            format!(
                "audit of {what}: one line naming the problem, exit status 2 (got {}: {})",
                out.code,
                out.stderr.trim()
            ),
        );
    }
    Ok(())
}

/// The toolchain's `rust-objcopy` (LLVM's, which reads every target).
fn objcopy() -> Result<PathBuf> {
    Ok(Path::new(
        &util::output(Command::new("rustc").args(["--print", "sysroot"]))?
            .trim()
            .to_string(),
    )
    .join("lib/rustlib")
    .join(host_triple()?)
    .join("bin/rust-objcopy"))
}

/// The demo's x86-64 code-size table: the audit of the x86 guest built with inline `syscall`, inline
/// `vmmcall` and through the hypercall page.
pub fn x86_code_size() -> Result<String> {
    let mut o = String::from(
        "Code size of the x86-64 example guest (cargo xen audit on each ELF), inline vs hypercall page:\n",
    );
    let _ = writeln!(
        o,
        "{:<8} {:>8} {:>12} {:>8} {:>12} {:>12} {:>12}",
        "guest", "stubs", "code bytes", "sites", "set-up B", "frames B", "stub bytes"
    );
    for (stubs, name) in [
        (Stubs::Syscall, "syscall"),
        (Stubs::Vmmcall, "vmmcall"),
        (Stubs::Page, "page"),
    ] {
        let elf = x86::build(Build {
            stubs,
            underdeclared: false,
        })?;
        let data = std::fs::read(&elf)?;
        let r = crate::audit::analyze(&data)?;
        let t = r.totals();
        let _ = writeln!(
            o,
            "{:<8} {:>8} {:>12} {:>8} {:>12} {:>12} {:>12}",
            "x64",
            name,
            xen::elf_text_bytes(&data)?,
            t.sites,
            t.setup_bytes,
            t.frame,
            r.stub_bytes()
        );
    }
    Ok(o)
}

fn host_triple() -> Result<String> {
    let v = util::output(Command::new("rustc").arg("-vV"))?;
    v.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_string)
        .context("rustc -vV names no host")
}

/// A host `cargo check` of code that uses the typed API says what to build with.
fn host_check(c: &mut Checks) -> Result<()> {
    let dir = std::env::temp_dir().join("xen-hypercall-host-check");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("src"))?;
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"host-check\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\n[dependencies]\n\
             xen-hypercall = {{ path = {:?} }}\n\n[workspace]\n",
            util::root().display().to_string()
        ),
    )?;
    std::fs::write(
        dir.join("src/main.rs"),
        "use xen_hypercall::xen::console;\nfn main() {\n    let _ = console::write(b\"hi\");\n}\n",
    )?;
    let out = exec(
        util::cargo()
            .current_dir(&dir)
            .env("CARGO_TARGET_DIR", util::target_dir().join("host-check"))
            .args(["check", "--quiet"]),
    )?;
    c.check(
        out.code != 0
            && out.stderr.contains("--target aarch64-unknown-none")
            && out.stderr.contains("features = [\"mock\"]"),
        format!(
            "host cargo check of typed-API code fails saying what to build with (exit {})",
            out.code
        ),
    );
    Ok(())
}

/// The template, copied outside the repository with `xen-hypercall` taken from this checkout; `edit`
/// changes its `src/main.rs`. Returns the copy.
fn template_copy(name: &str, edit: impl Fn(&str) -> String) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("xen-unikernel-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    util::run(
        Command::new("cp")
            .arg("-r")
            .arg(util::root().join("template"))
            .arg(&dir),
    )?;
    let main = dir.join("src/main.rs");
    let text = std::fs::read_to_string(&main)?;
    let edited = edit(&text);
    if name != "plain" && edited == text {
        bail!("the {name} variant of the template changed nothing");
    }
    std::fs::write(&main, edited)?;
    Ok(dir)
}

/// The target directory of a copy of the template (one per copy: copies share the binary's name).
fn template_target(dir: &Path) -> PathBuf {
    util::target_dir()
        .join("template")
        .join(dir.file_name().unwrap_or_default())
}

/// Plain `cargo build --release` in a copy (and `extra` arguments).
fn template_build(dir: &Path, extra: &[&str]) -> Result<Out> {
    exec(
        util::cargo()
            .current_dir(dir)
            .env("CARGO_TARGET_DIR", template_target(dir))
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("RUSTFLAGS")
            .args(["build", "--release"])
            .args(extra)
            .args(patch_args()),
    )
}

/// `--config` arguments that take `xen-hypercall` and `xen-test` from this checkout instead of crates.io.
fn patch_args() -> [String; 4] {
    let root = util::root();
    [
        "--config".into(),
        format!(
            "patch.crates-io.xen-hypercall.path={:?}",
            root.display().to_string()
        ),
        "--config".into(),
        format!(
            "patch.crates-io.xen-test.path={:?}",
            root.join("xen-test").display().to_string()
        ),
    ]
}

fn run_image(bin: &Path, args: &[&str], image: &Path) -> Result<Out> {
    exec(
        Command::new(bin)
            .env("CARGO_XEN_CACHE", util::target_dir())
            .arg("run")
            .arg(image)
            .args(args),
    )
}

fn template(bin: &Path, guest: &Path, c: &mut Checks) -> Result<()> {
    let plain = template_copy("plain", str::to_string)?;
    let out_dir = template_target(&plain);
    for (target, extra, arch) in [
        ("aarch64-unknown-none", &[][..], "a64"),
        (
            "armv7a-none-eabi",
            &["--target", "armv7a-none-eabi"][..],
            "a32",
        ),
    ] {
        let b = template_build(&plain, extra)?;
        c.check(
            b.code == 0,
            format!(
                "template: plain `cargo build --release {}` in a copy outside the repository{}",
                extra.join(" "),
                if b.code == 0 {
                    String::new()
                } else {
                    format!(":\n{}", b.stderr)
                }
            ),
        );
        let elf = out_dir.join(target).join("release/my-unikernel");
        let r = run_image(bin, &["--arch", arch, "--timeout", "30"], &elf)?;
        c.check(
            r.code == 0
                && r.stdout.contains("Hello from a unikernel on Xen")
                && r.stdout.contains("Xen 4.17"),
            format!("cargo xen run: the {arch} template greets, prints Xen's version, powers off (exit {})", r.code),
        );
    }
    // A copy that crashes, and one that hangs.
    let crash = template_copy("crash", |t| {
        t.replacen(
            "sched::shutdown(sched::ShutdownReason::Poweroff)",
            "sched::shutdown(sched::ShutdownReason::Crash)",
            1,
        )
    })?;
    let elf = |copy: &Path| template_target(copy).join("aarch64-unknown-none/release/my-unikernel");
    let b = template_build(&crash, &[])?;
    let r = run_image(bin, &["--timeout", "30"], &elf(&crash))?;
    c.check(
        b.code == 0 && r.code == 1 && r.stderr.contains("Hardware Dom0 crashed"),
        format!(
            "cargo xen run: a guest that crashes exits 1 naming Xen's line (exit {}: {})",
            r.code,
            r.stderr.trim()
        ),
    );
    let hang = template_copy("hang", |t| {
        t.replacen(
            "let _ = sched::shutdown(sched::ShutdownReason::Poweroff);",
            "",
            1,
        )
    })?;
    let b = template_build(&hang, &[])?;
    let start = std::time::Instant::now();
    let r = run_image(bin, &["--timeout", "5"], &elf(&hang))?;
    let secs = start.elapsed().as_secs();
    c.check(
        b.code == 0 && r.code == 1 && r.stderr.contains("timed out after 5 s") && secs < 30,
        format!("cargo xen run --timeout 5: a guest that hangs exits 1 after the time-out ({secs} s, exit {})", r.code),
    );
    // The plain template again, on the debug Xen built from Debian's source.
    let r = run_image(bin, &["--debug-xen", "--timeout", "30"], &elf(&plain))?;
    c.check(
        r.code == 0 && r.stdout.contains("debug=y") && r.stdout.contains("Xen 4.17"),
        format!(
            "cargo xen run --debug-xen: the template powers off on a debug=y Xen (exit {})",
            r.code
        ),
    );
    // dom0less: the multi-domain run's backend as dom0 and its frontend as a domU, both reporting.
    let (front, back) = crate::domains::build(&crate::domains::Config::dom0_backend())?;
    let r = exec(
        Command::new(bin)
            .env("CARGO_XEN_CACHE", util::target_dir())
            .arg("run")
            .arg(&back)
            .arg(&front)
            .args([
                "--dom0less",
                "--xen-args",
                "scrub-domheap bootscrub=on",
                "--timeout",
                "40",
            ]),
    )?;
    c.check(
        r.code == 0
            && r.stdout.contains("(d1) front: summary: all")
            && r.stdout.contains("back: summary: all"),
        format!("cargo xen run --dom0less: a backend dom0 and a frontend domU both pass, dom0 powers off (exit {})", r.code),
    );
    // The example guest, through `cargo xen …` as cargo runs a subcommand.
    let path = std::env::join_paths(
        std::iter::once(bin.parent().context("no bin dir")?.to_path_buf()).chain(
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
        ),
    )?;
    let image = guest.with_extension("bin");
    std::fs::write(&image, xen::flat_image(&std::fs::read(guest)?)?)?;
    let r = exec(
        util::cargo()
            .env("PATH", path)
            .env("CARGO_XEN_CACHE", util::target_dir())
            .args(["xen", "run", "--timeout", "30"])
            .arg(&image),
    )?;
    c.check(
        r.code == 0 && r.stdout.contains("summary: all"),
        format!(
            "`cargo xen run` boots the example guest's flat image to its poweroff (exit {})",
            r.code
        ),
    );
    Ok(())
}

/// A directory of this checkout's own under the system's temporary directory (outside the repository, so
/// that cargo sees no workspace or configuration of it; named after the target directory, so that two
/// checkouts never share it).
fn outside_dir(name: &str) -> PathBuf {
    let tag: String = util::target_dir()
        .to_string_lossy()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    std::env::temp_dir().join(format!("{name}{tag}"))
}

/// `PATH` with the directory of the installed `cargo-xen` first, so that `cargo xen …` (and cargo's runner
/// `cargo xen run`) find it.
fn path_with(bin: &Path) -> Result<std::ffi::OsString> {
    Ok(std::env::join_paths(
        std::iter::once(bin.parent().context("no bin dir")?.to_path_buf()).chain(
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
        ),
    )?)
}

/// The test added to a new project's `tests/on_xen.rs`: the deliberately broken case.
const BROKEN_TEST: &str = "    #[test]
    fn broken_on_purpose() {
        assert_eq!(1 + 1, 3, \"the deliberately broken case\");
    }

    #[test]
    #[should_panic(expected = \"as expected\")]
    fn panics_as_expected() {
        panic!(\"as expected\");
    }

    #[test]
    #[ignore]
    fn spins() {
        loop {
            core::hint::spin_loop();
        }
    }

    #[test]
    #[ignore]
    fn crashes() {
        let _ = xen_hypercall::xen::sched::shutdown(xen_hypercall::xen::sched::ShutdownReason::Crash);
    }
";

/// `cargo xen new` as a user runs it, outside the repository with this checkout's crates by path: bad
/// names and an existing directory refused (one line, exit 2); then in the project `cargo run --release`
/// (the greeting, exit 0) and `cargo test` with the template's passing tests plus a failing one (exit
/// non-zero, every name and verdict, the panic message), a filter reaching the guest (only the matching
/// test runs, exit 0), and a hanging test named at the runner's time-out.
fn new_project(bin: &Path, c: &mut Checks) -> Result<()> {
    let dir = outside_dir("xen-unikernel-new");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let project = dir.join("hello");
    let new = |args: &[&str]| {
        exec(
            Command::new(bin)
                .current_dir(&dir)
                .arg("new")
                .args(args)
                .args(["--path".as_ref(), util::root().as_os_str()]),
        )
    };
    let r = new(&["hello"])?;
    c.check(
        r.code == 0 && project.join("tests/on_xen.rs").is_file(),
        format!(
            "cargo xen new hello --path CHECKOUT (exit {}: {})",
            r.code,
            r.stderr.trim()
        ),
    );
    for (args, what, says) in [
        (&["hello"][..], "an existing directory", "already exists"),
        (
            &["9lives"][..],
            "a name starting with a digit",
            "starts with an ASCII letter",
        ),
        (&["fn"][..], "a keyword", "keyword"),
        (
            &["x", "--arch", "mips"][..],
            "an unknown --arch",
            "--arch aarch64|arm|thumb",
        ),
    ] {
        let r = new(args)?;
        c.check(
            r.code == 2
                && r.stderr.lines().count() == 1
                && r.stderr.contains(says)
                && !r.stderr.contains("panicked"),
            format!(
                "cargo xen new: {what} is one line, exit 2 (exit {}: {})",
                r.code,
                r.stderr.trim()
            ),
        );
    }
    let tests = project.join("tests/on_xen.rs");
    let text = std::fs::read_to_string(&tests)?;
    let at = text
        .rfind('}')
        .context("tests/on_xen.rs has no closing brace")?;
    let with_broken = format!("{}\n{BROKEN_TEST}{}", &text[..at], &text[at..]);
    std::fs::write(&tests, with_broken)?;
    let path = path_with(bin)?;
    let target = util::target_dir().join("template/new-hello");
    let cargo = |args: &[&str], runner: Option<&str>| {
        let mut cmd = util::cargo();
        cmd.current_dir(&project)
            .env("PATH", &path)
            .env("CARGO_TARGET_DIR", &target)
            .env("CARGO_XEN_CACHE", util::target_dir())
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("RUSTFLAGS")
            .args(args);
        if let Some(r) = runner {
            cmd.env("CARGO_TARGET_AARCH64_UNKNOWN_NONE_RUNNER", r);
        }
        exec(&mut cmd)
    };
    let start = std::time::Instant::now();
    let r = cargo(&["run", "--release"], None)?;
    c.check(
        r.code == 0
            && r.stdout.contains("Hello from a unikernel on Xen\nXen 4.17\n")
            && !r.stdout.contains("(XEN)")
            && r.stderr.contains("dom0 powered off"),
        format!(
            "cargo run --release in the new project boots it on Xen: the greeting, not Xen's own lines, exit 0 \
             ({} s, exit {})",
            start.elapsed().as_secs(),
            r.code
        ),
    );
    let start = std::time::Instant::now();
    let r = cargo(&["test"], None)?;
    // Xen's serial console ends lines with CR LF.
    let out = r.stdout.replace("\r\n", "\n");
    let line = |name: &str, verdict: &str| out.contains(&format!("test {name} ... {verdict}\n"));
    c.check(
        r.code != 0
            && out.contains("test console_writes ... hello from a test\nok\n")
            && line("xen_is_version_4", "ok")
            && line("broken_on_purpose", "FAILED")
            && line("panics_as_expected", "ok")
            && line("spins", "ignored")
            && out.contains("test broken_on_purpose panicked at tests/on_xen.rs:")
            && out.contains("the deliberately broken case\n  left: 2\n right: 3\n")
            && r.stderr.contains("FAILED: test result: FAILED. 3 passed; 1 failed; 2 ignored; 0 filtered out"),
        format!(
            "cargo test: three tests pass on Xen (one #[should_panic]), the deliberately broken one fails with its \
             panic message, exit non-zero ({} s, exit {})",
            start.elapsed().as_secs(),
            r.code
        ),
    );
    let r = cargo(&["test", "version"], None)?;
    let out = r.stdout.replace("\r\n", "\n");
    let line = |name: &str, verdict: &str| out.contains(&format!("test {name} ... {verdict}\n"));
    c.check(
        r.code == 0
            && line("xen_is_version_4", "ok")
            && !out.contains("broken_on_purpose")
            && out.contains("test result: ok. 1 passed; 0 failed; 0 ignored; 5 filtered out"),
        format!(
            "cargo test version: the filter reaches the guest, only the matching test runs (exit {})",
            r.code
        ),
    );
    // As cargo's runner, bad images keep their one-line errors.
    for (image, what, says) in [
        (
            project.join("Cargo.toml"),
            "a file that is not an ELF",
            "neither an ELF file",
        ),
        (
            bin.to_path_buf(),
            "an ELF of another architecture",
            "Xen on arm64 boots",
        ),
    ] {
        let r = exec(
            Command::new(bin)
                .args(["run", "--runner"])
                .arg(&image)
                .arg("some_test"),
        )?;
        c.check(
            r.code == 2 && r.stderr.lines().count() == 1 && r.stderr.contains(says),
            format!(
                "cargo xen run --runner: {what} is one line, exit 2 (exit {}: {})",
                r.code,
                r.stderr.trim()
            ),
        );
    }
    let start = std::time::Instant::now();
    let r = cargo(
        &["test", "spins", "--", "--ignored"],
        Some("cargo xen run --timeout 8 --runner"),
    )?;
    c.check(
        r.code != 0 && r.stderr.contains("timed out after 8 s") && r.stderr.contains("while test `spins` was running"),
        format!(
            "cargo test spins -- --ignored: a hanging test is named at the runner's time-out ({} s, exit {}: {})",
            start.elapsed().as_secs(),
            r.code,
            r.stderr.lines().find(|l| l.contains("cargo-xen: FAILED")).unwrap_or("")
        ),
    );
    let r = cargo(&["test", "crashes", "--", "--ignored"], None)?;
    c.check(
        r.code != 0
            && r.stderr.contains("Hardware Dom0 crashed")
            && r.stderr.contains("while test `crashes` was running"),
        format!(
            "cargo test crashes -- --ignored: a test that crashes the domain is named (exit {}: {})",
            r.code,
            r.stderr.lines().find(|l| l.contains("cargo-xen: FAILED")).unwrap_or("")
        ),
    );
    xl_runner(&cargo, c)?;
    // 32-bit ARM with Thumb-2 code: the template's tests pass there too.
    let r = new(&["hello-t32", "--arch", "thumb"])?;
    let t32 = dir.join("hello-t32");
    let test = exec(
        util::cargo()
            .current_dir(&t32)
            .env("PATH", &path)
            .env(
                "CARGO_TARGET_DIR",
                util::target_dir().join("template/new-hello-t32"),
            )
            .env("CARGO_XEN_CACHE", util::target_dir())
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("RUSTFLAGS")
            .arg("test"),
    )?;
    c.check(
        r.code == 0
            && test.code == 0
            && test.stderr.contains("armv7a-none-eabi/debug/deps/on_xen-")
            && test
                .stdout
                .contains("test result: ok. 2 passed; 0 failed; 0 ignored; 0 filtered out"),
        format!(
            "cargo xen new --arch thumb, then cargo test: the tests pass on 32-bit ARM (exit {}, {})",
            r.code, test.code
        ),
    );
    Ok(())
}

/// `cargo ARGS…` in a project, with cargo's runner for AArch64 replaced when one is given.
type ProjectCargo<'a> = dyn Fn(&[&str], Option<&str>) -> Result<Out> + 'a;

/// The runner `cargo xen run --xl --runner` (the template's commented alternative) in the new project: the
/// image as an ordinary domU that `xl` creates from a Linux dom0 (the packages downloaded into the project's
/// target directory on first use). `cargo run --release` shows the greeting (the PV console ring, relayed
/// from xenconsoled's log) and exits 0 on the domU's poweroff; `cargo test broken` (the filter reaches the
/// domU through xl's `extra`: only the deliberately broken test runs) panics in the domU, which crashes:
/// exit non-zero, the panic message and the failed summary printed. One boot each.
fn xl_runner(cargo: &ProjectCargo<'_>, c: &mut Checks) -> Result<()> {
    const XL: &str = "cargo xen run --xl --runner";
    let start = std::time::Instant::now();
    let r = cargo(&["run", "--release"], Some(XL))?;
    c.check(
        r.code == 0
            && r.stdout.contains("Hello from a unikernel on Xen\nXen 4.17\n")
            && !r.stdout.contains("(XEN)")
            && !r.stdout.contains("xl-run:")
            && r.stderr.contains("cargo-xen: the domU powered off"),
        format!(
            "cargo run --release with `{XL}`: the new project as an xl domU of a Linux dom0 greets on its PV \
             console and powers off, exit 0 ({} s, exit {}{})",
            start.elapsed().as_secs(),
            r.code,
            if r.code == 0 {
                String::new()
            } else {
                format!(": {}", r.stderr.trim())
            }
        ),
    );
    let start = std::time::Instant::now();
    let r = cargo(&["test", "broken"], Some(XL))?;
    let out = r.stdout.replace("\r\n", "\n");
    let summary = "test result: FAILED. 0 passed; 1 failed; 0 ignored; 5 filtered out";
    c.check(
        r.code != 0
            && out.contains("test broken_on_purpose ... FAILED\n")
            && out.contains("the deliberately broken case\n  left: 2\n right: 3\n")
            && !out.contains("console_writes")
            && r.stderr.contains(&format!("cargo-xen: FAILED: {summary}"))
            && r.stderr.contains("the whole console (Xen, dom0, the domU) is in"),
        format!(
            "cargo test broken with `{XL}`: the filter reaches the domU, its test panics, the domU crashes: exit \
             non-zero, the panic message and `{summary}` ({} s, exit {}: {})",
            start.elapsed().as_secs(),
            r.code,
            r.stderr
                .lines()
                .find(|l| l.contains("cargo-xen: FAILED"))
                .unwrap_or("")
        ),
    );
    Ok(())
}

/// Only the `cargo xen new` checks of the step (`cargo xtask cargo-xen new`).
pub fn test_new() -> Result<()> {
    setup::toolchain()?;
    setup::debian(&[setup::QEMU])?;
    let bin = install()?;
    let mut c = Checks::default();
    new_project(&bin, &mut c)?;
    eprintln!(
        "cargo xen new: {} passed, {} failed",
        c.passed,
        c.failed.len()
    );
    if !c.failed.is_empty() {
        bail!("cargo xen new: {} check(s) failed", c.failed.len());
    }
    Ok(())
}

/// The step: everything above.
pub fn test() -> Result<()> {
    setup::toolchain()?;
    setup::debian(&[setup::QEMU, setup::DTC, setup::CLANG, setup::LIBXEN_DEV])?;
    // The unit tests, with the comparison of the name tables against Xen's headers.
    util::run(util::cargo().args(["test", "-q", "-p", "cargo-xen", "--", "--include-ignored"]))?;
    let bin = install()?;
    let mut c = Checks::default();
    audit_sites(&bin, &mut c)?;
    let (inline, _) = audit_guests(&bin, &mut c)?;
    bad_inputs(&bin, &inline, &mut c)?;
    audit_x86(&bin, &mut c)?;
    host_check(&mut c)?;
    template(&bin, &inline, &mut c)?;
    new_project(&bin, &mut c)?;
    eprintln!("cargo-xen: {} passed, {} failed", c.passed, c.failed.len());
    if !c.failed.is_empty() {
        bail!("cargo-xen: {} check(s) failed", c.failed.len());
    }
    Ok(())
}
