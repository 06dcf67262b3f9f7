//! Links the image at a fixed address in QEMU virt's RAM (the ELF is loaded by `-kernel`).
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.starts_with("aarch64") || target.starts_with("arm") {
        println!("cargo::rustc-link-arg-bins=-T{dir}/link.ld");
    }
    println!("cargo::rerun-if-changed=link.ld");
}
