//! Tells M-profile ARM targets apart: stable Rust does not expose `target_feature = "mclass"` to `cfg`, so
//! the target triple is the reliable signal (`thumbv6m`, `thumbv7m`, `thumbv7em`, `thumbv8m.*`).

fn main() {
    println!("cargo::rustc-check-cfg=cfg(xen_hypercall_m_profile)");
    println!("cargo::rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    let arch = target.split('-').next().unwrap_or("");
    let m_profile = ["thumbv6m", "thumbv7m", "thumbv7em", "thumbv8m"]
        .iter()
        .any(|p| arch.starts_with(p));
    if m_profile {
        println!("cargo::rustc-cfg=xen_hypercall_m_profile");
    }
}
