//! Links the guest with its own linker script as a position-independent executable: Xen places dom0's
//! kernel wherever dom0's memory is (1:1 with host memory), so the entry code applies the relative
//! relocations itself.

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    let target = std::env::var("TARGET").unwrap_or_default();
    let script = if target.starts_with("aarch64") { "link-a64.ld" } else { "link-a32.ld" };
    if target.starts_with("aarch64") || target.starts_with("arm") || target.starts_with("thumb") {
        println!("cargo::rustc-link-arg-bins=-T{dir}/{script}");
        println!("cargo::rustc-link-arg-bins=--pie");
        println!("cargo::rustc-link-arg-bins=--no-dynamic-linker");
        println!("cargo::rustc-link-arg-bins=-znotext");
    }
    println!("cargo::rerun-if-changed={script}");
    println!("cargo::rerun-if-changed=build.rs");
}
