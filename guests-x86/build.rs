//! Links each x86-64 guest at 0x400000 with its own linker script (Xen's ELF notes keep their section):
//! `dom0-x86` (PV and PVH entries) and `xl-pvh` (a PVH domU).

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    if std::env::var("TARGET")
        .unwrap_or_default()
        .starts_with("x86_64")
    {
        for (bin, script) in [("dom0-x86", "link-x86.ld"), ("xl-pvh", "link-xl-pvh.ld")] {
            println!("cargo::rustc-link-arg-bin={bin}=-T{dir}/{script}");
            println!("cargo::rustc-link-arg-bin={bin}=--no-pie");
        }
    }
    println!("cargo::rerun-if-changed=link-x86.ld");
    println!("cargo::rerun-if-changed=link-xl-pvh.ld");
    println!("cargo::rerun-if-changed=build.rs");
}
