//! Compiles the peers' stubs and C callers (`c/`) with clang at -Os into a static library bundled into
//! this crate: Linux's shape on A64, A32 and T32 (a Thumb-2 kernel assembles its stubs as Thumb), Unikraft's
//! on A64 and A32 (it has no Thumb-2 build); on x86-64 both peers' inline `asm` through the hypercall page. Emits `cfg(thumb)` for T32 builds, `cfg(peers)` when the C
//! code is built and `cfg(peer_unikraft)` where Unikraft's shape is. `cargo bench` installs clang
//! (`xtask::setup`) before building this.

use std::path::{Path, PathBuf};
use std::process::Command;

fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(1)
}

fn run(cmd: &mut Command) {
    match cmd.status() {
        Ok(s) if s.success() => {}
        Ok(s) => fail(&format!("{cmd:?} failed ({s})")),
        Err(e) => fail(&format!(
            "cannot run {cmd:?}: {e} (clang and binutils are needed: `apt-get install clang`)"
        )),
    }
}

fn main() {
    println!("cargo::rustc-check-cfg=cfg(thumb)");
    println!("cargo::rustc-check-cfg=cfg(peer_unikraft)");
    println!("cargo::rustc-check-cfg=cfg(peers)");
    println!("cargo::rerun-if-changed=c");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    let target = std::env::var("TARGET").unwrap_or_default();
    let clang_target = if target.starts_with("aarch64") {
        "aarch64-none-elf"
    } else if target.starts_with("armv7a") {
        "armv7a-none-eabi"
    } else if target.starts_with("x86_64") && target.ends_with("-none") {
        "x86_64-none-elf"
    } else {
        // Host builds (clippy, docs): no peers.
        return;
    };
    // `thumb-mode` is not reported in CARGO_CFG_TARGET_FEATURE: read the flags the build was given.
    let thumb = target.starts_with("thumb")
        || std::env::var("CARGO_ENCODED_RUSTFLAGS")
            .unwrap_or_default()
            .split('\x1f')
            .any(|f| f.contains("+thumb-mode"));
    if thumb {
        println!("cargo::rustc-cfg=thumb");
    }
    // Without clang (a lint run before `xtask` installed it) the crate builds without the peers; the bench
    // then refuses to run (`xtask::bench_arm::sizes` names the missing functions).
    if Command::new("clang").arg("--version").output().is_err() {
        println!(
            "cargo::warning=clang not found: the C peers are not built (`apt-get install clang`)"
        );
        return;
    }
    println!("cargo::rustc-cfg=peers");
    let mut peers = vec!["linux"];
    if !thumb {
        peers.push("unikraft");
        println!("cargo::rustc-cfg=peer_unikraft");
    }
    let src = Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("c");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let mut flags = vec![
        format!("--target={clang_target}"),
        "-Os".into(),
        "-ffreestanding".into(),
        "-ffunction-sections".into(),
        "-fno-pic".into(),
    ];
    if clang_target.starts_with("armv7a") {
        flags.extend(["-mfloat-abi=soft".into(), "-mno-unaligned-access".into()]);
        if thumb {
            flags.push("-mthumb".into());
        } else {
            flags.push("-marm".into());
        }
    } else if clang_target.starts_with("x86_64") {
        // As Rust's x86_64-unknown-none: no red zone, no SSE; no frame pointer, as rustc's code.
        flags.extend([
            "-mno-red-zone".into(),
            "-mgeneral-regs-only".into(),
            "-fomit-frame-pointer".into(),
        ]);
    } else {
        flags.push("-mstrict-align".into());
    }
    let mut objects = Vec::new();
    for peer in peers {
        let defs = [
            format!("-DPEER={peer}"),
            format!("-DPEER_UNIKRAFT={}", u8::from(peer == "unikraft")),
        ];
        // On x86-64 the peers' hypercalls are inline `asm` calling the page (`c/x86-hypercall.h`).
        let files: &[&str] = if clang_target.starts_with("x86_64") {
            &["callers.c"]
        } else {
            &["stubs.S", "callers.c"]
        };
        for file in files {
            let o = out.join(format!("{peer}-{file}.o"));
            run(Command::new("clang")
                .args(&flags)
                .args(&defs)
                .arg("-c")
                .arg(src.join(file))
                .arg("-o")
                .arg(&o));
            objects.push(o);
        }
    }
    let lib = out.join("libpeers.a");
    let _ = std::fs::remove_file(&lib);
    run(Command::new("ar").arg("crs").arg(&lib).args(&objects));
    println!("cargo::rustc-link-search=native={}", out.display());
    println!("cargo::rustc-link-lib=static=peers");
}
