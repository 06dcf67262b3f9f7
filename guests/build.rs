//! Links the guest with its own linker script. AArch64: a position-independent executable (Xen places
//! dom0's kernel wherever dom0's memory is, 1:1 with host memory), relocated by its entry code. 32-bit ARM:
//! linked at the address its zImage header names (see `template/link-a32.ld`): in dom0's bank, or where a
//! domU's RAM starts for the bins that run as dom0less domUs. The scripts and the entry code are the
//! unikernel template's.

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    let target = std::env::var("TARGET").unwrap_or_default();
    // The unikernel template's linker scripts (with its entry code, `src/entry.rs`).
    let script = if target.starts_with("aarch64") {
        "../template/link-a64.ld"
    } else {
        "../template/link-a32.ld"
    };
    if target.starts_with("aarch64") {
        println!("cargo::rustc-link-arg-bins=-T{dir}/{script}");
        println!("cargo::rustc-link-arg-bins=--pie");
        println!("cargo::rustc-link-arg-bins=--no-dynamic-linker");
        // `xl-net` links `smoltcp`, whose address checks format an `Ipv4Addr` in a panic message: code
        // of the prebuilt (not position-independent) `core`, with absolute addresses in its read-only
        // data. They become relative relocations there too, applied by the entry code like the others.
        println!("cargo::rustc-link-arg-bin=xl-net=-znotext");
    } else if target.starts_with("arm") || target.starts_with("thumb") {
        println!("cargo::rustc-link-arg-bins=-T{dir}/{script}");
        // The frontend is always a dom0less domU, the backend one with `domu-backend`; `xl-domu`,
        // `xl-xenbus`, `xl-blk`, `xl-net` and `xl-netmq` are ones `xl` creates (libxl loads a zImage 0x8000 into
        // the domU's RAM): linked where a domU's RAM starts (GUEST_RAM0_BASE) instead of inside dom0's
        // bank.
        let domu = "--defsym=__load_base=0x40008000";
        println!("cargo::rustc-link-arg-bin=frontend={domu}");
        println!("cargo::rustc-link-arg-bin=xl-domu={domu}");
        println!("cargo::rustc-link-arg-bin=xl-xenbus={domu}");
        println!("cargo::rustc-link-arg-bin=xl-blk={domu}");
        println!("cargo::rustc-link-arg-bin=xl-net={domu}");
        println!("cargo::rustc-link-arg-bin=xl-netmq={domu}");
        if std::env::var_os("CARGO_FEATURE_DOMU_BACKEND").is_some() {
            println!("cargo::rustc-link-arg-bin=backend={domu}");
        }
    }
    // The negative control `wrong-attributes`: the template's identity map with the shared regions
    // mapped Device (`src/mmu.rs`). The one line must be there, or the control would test nothing.
    let mmu = format!("{dir}/../template/src/mmu.rs");
    if std::env::var_os("CARGO_FEATURE_WRONG_ATTRIBUTES").is_some() {
        let text = std::fs::read_to_string(&mmu).expect("template/src/mmu.rs");
        let line = "const SHARED: u64 = NORMAL;";
        assert_eq!(
            text.matches(line).count(),
            1,
            "{mmu} must have `{line}` once"
        );
        let wrong = text.replace(line, "const SHARED: u64 = DEVICE;");
        let out = std::env::var("OUT_DIR").unwrap();
        std::fs::write(format!("{out}/mmu-wrong-attributes.rs"), wrong).unwrap();
    }
    println!("cargo::rerun-if-changed={mmu}");
    println!("cargo::rerun-if-changed={script}");
    println!("cargo::rerun-if-changed=build.rs");
}
