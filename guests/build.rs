//! Links the guest with its own linker script. AArch64: a position-independent executable (Xen places
//! dom0's kernel wherever dom0's memory is, 1:1 with host memory), relocated by its entry code. 32-bit ARM:
//! linked at the address its zImage header names (see `link-a32.ld`).

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    let target = std::env::var("TARGET").unwrap_or_default();
    // AArch64: the unikernel template's linker script (with its entry code, `src/entry.rs`).
    let script = if target.starts_with("aarch64") {
        "../template/link-a64.ld"
    } else {
        "link-a32.ld"
    };
    if target.starts_with("aarch64") {
        println!("cargo::rustc-link-arg-bins=-T{dir}/{script}");
        println!("cargo::rustc-link-arg-bins=--pie");
        println!("cargo::rustc-link-arg-bins=--no-dynamic-linker");
    } else if target.starts_with("arm") || target.starts_with("thumb") {
        println!("cargo::rustc-link-arg-bins=-T{dir}/{script}");
    }
    println!("cargo::rerun-if-changed={script}");
    println!("cargo::rerun-if-changed=build.rs");
}
