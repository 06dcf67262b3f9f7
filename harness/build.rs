//! Links the image at the address its architecture's run uses (see the linker scripts).

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let script = match std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() {
        Ok("aarch64") => "link-a64.x",
        Ok("arm") => "link-a32.x",
        // Other targets do not build an image (the crate is empty there).
        _ => return,
    };
    println!("cargo:rustc-link-arg-bins=-T{dir}/{script}");
    println!("cargo:rerun-if-changed={dir}/{script}");
    println!("cargo:rerun-if-changed=build.rs");
}
