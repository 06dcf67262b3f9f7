//! Links the guest with the unikernel template's linker scripts (`template/`), whose entry code it reuses
//! (through `guests/src/entry.rs`).

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    let target = std::env::var("TARGET").unwrap_or_default();
    let guests = format!("{dir}/../../template");
    if target.starts_with("aarch64") {
        println!("cargo::rustc-link-arg-bins=-T{guests}/link-a64.ld");
        println!("cargo::rustc-link-arg-bins=--pie");
        println!("cargo::rustc-link-arg-bins=--no-dynamic-linker");
        println!("cargo::rerun-if-changed={guests}/link-a64.ld");
    } else if target.starts_with("arm") || target.starts_with("thumb") {
        println!("cargo::rustc-link-arg-bins=-T{guests}/link-a32.ld");
        println!("cargo::rerun-if-changed={guests}/link-a32.ld");
    }
    println!("cargo::rerun-if-changed=build.rs");
}
