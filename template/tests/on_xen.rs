//! Tests that run inside the unikernel on Xen: `cargo test` builds this file as a unikernel of its own
//! (`harness = false` in Cargo.toml), and cargo's runner boots it as dom0 on Xen under QEMU.
//!
//! `#[xen_test::tests]` collects the module's `#[test]` functions (`#[should_panic]` and `#[ignore]` too)
//! and runs them one by one, printing `test NAME ... ok` or `FAILED` (with the panic's message) on Xen's
//! console, then a summary; the guest then powers off, or crashes if a test failed, and `cargo test` exits
//! accordingly. `cargo test NAME` runs the tests whose name contains NAME (the filter reaches the guest on
//! its command line).

#![no_std]
#![no_main]

// The same entry code as the unikernel: the image header, relocation, stack, the MMU on, then
// `guest_main`.
#[path = "../src/entry.rs"]
mod entry;
#[path = "../src/mmu.rs"]
mod mmu;

#[xen_test::tests]
mod tests {
    use xen_hypercall::xen::version;

    #[test]
    fn console_writes() {
        // The domain's console: Xen's as dom0, the PV console ring as a domU `xl` created.
        assert_eq!(xen_test::console().write(b"hello from a test\n"), Ok(()));
    }

    #[test]
    fn xen_is_version_4() {
        let v = version::version().expect("xen_version");
        assert_eq!(v.major, 4);
    }
}
