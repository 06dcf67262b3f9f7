//! Links the program as a static Linux executable: `aarch64-unknown-none` code is position-dependent, and
//! Linux maps nothing at 0 (`vm.mmap_min_addr`), so the image starts at 4 MiB.
fn main() {
    if std::env::var("TARGET").unwrap_or_default() == "aarch64-unknown-none" {
        println!("cargo::rustc-link-arg-bins=--image-base=0x400000");
        println!("cargo::rustc-link-arg-bins=-e_start");
    }
    println!("cargo::rerun-if-changed=build.rs");
}
