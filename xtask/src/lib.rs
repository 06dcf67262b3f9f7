//! `cargo xtask`: the project's tasks, as a library so that their logic is tested like any other code.
//!
//! - [`setup`]: installs the toolchain targets and Debian packages the tasks need.
//! - [`elf`]: reads ARM ELF files and decodes their code with a real decoder (A32, T32, A64).
//! - [`flow`]: straight-line symbolic execution: register values at each trap, stack traffic.
//! - [`fixtures`]: builds the call-site fixtures and checks every stub's machine code.
//! - [`audit`], [`bench`]: the code-size audit of ARM ELF files, and the strategy benchmark.
//! - [`el2`]: the EL2 harness runner (every stub executed under a hypervisor of our own, in QEMU).
//! - [`package`]: the published crates build their own tests from their `.crate` files.
//! - [`xen`]: the example unikernels on the real Xen hypervisor (release and debug builds), in QEMU.
//! - [`domains`]: several domains on real Xen (dom0less): a frontend and its backend talking.
//! - [`xensrc`]: Xen's source from Debian: the debug hypervisor, and Xen's hypercall tables.

pub mod audit;
pub mod bench;
pub mod domains;
pub mod el2;
pub mod elf;
pub mod fixtures;
pub mod flow;
pub mod insns;
pub mod package;
pub mod setup;
pub mod smp;
pub mod util;
pub mod x86;
pub mod xen;
pub mod xensrc;
