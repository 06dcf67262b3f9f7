//! Links the dom0 at 0x400000 with the example x86 guest's linker script (Xen's ELF notes keep their
//! section).

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    if std::env::var("TARGET")
        .unwrap_or_default()
        .starts_with("x86_64")
    {
        println!("cargo::rustc-link-arg-bins=-T{dir}/../../guests-x86/link-x86.ld");
        println!("cargo::rustc-link-arg-bins=--no-pie");
    }
    println!("cargo::rerun-if-changed=../../guests-x86/link-x86.ld");
    println!("cargo::rerun-if-changed=build.rs");
}
