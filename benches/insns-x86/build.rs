//! Links the x86-64 image at 0x400000 (QEMU's `-kernel` loads the ELF and enters its PVH entry point).
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    if std::env::var("TARGET")
        .unwrap_or_default()
        .starts_with("x86_64")
    {
        println!("cargo::rustc-link-arg-bins=-T{dir}/link.ld");
        println!("cargo::rustc-link-arg-bins=--no-pie");
    }
    println!("cargo::rerun-if-changed=link.ld");
    println!("cargo::rerun-if-changed=build.rs");
}
