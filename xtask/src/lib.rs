//! `cargo xtask`: the project's tasks, as a library so that their logic is tested like any other code.
//!
//! - [`setup`]: installs the toolchain targets and Debian packages the tasks need.
//! - [`elf`], [`flow`], [`audit`]: the ELF reader and decoder, the dataflow, the code-size audit: the
//!   `cargo-xen` tool's library, re-exported.
//! - [`fixtures`]: builds the call-site fixtures and checks every stub's machine code.
//! - [`bench`](mod@bench): the strategy benchmark's architecture-neutral core; [`bench_arm`] and
//!   [`bench_x86`] measure its ARM and x86-64 rows; [`blkbench`]: the block frontend against Linux's.
//! - [`el2`]: the EL2 harness runner (every stub executed under a hypervisor of our own, in QEMU).
//! - [`package`]: the published crates build their own tests from their `.crate` files.
//! - [`scenario`]: what the real-Xen scenarios share: Xen builds, the machine a scenario declares and
//!   its one runner (on `cargo-xen`'s QEMU lines), the pieces of a judge.
//! - [`xen`]: the example unikernels on the real Xen hypervisor (release and debug builds), in QEMU.
//! - [`domains`]: several domains on real Xen (dom0less): a frontend and its backend talking.
//! - [`steps`]: `cargo xtask xen` and `cargo xtask demo`, which put the ARM scenarios in order.
//! - [`tool`]: the `cargo-xen` tool installed and used as a unikernel author would, and the template.
//! - [`xensrc`]: Xen's source from Debian: the debug hypervisor, and Xen's hypercall tables.
//! - [`par`]: the MMU attribute checks (a guest's `PAR` after an address translation, decoded by the
//!   Arm ARM's encodings).
//! - [`xl`](mod@xl): Xen's real toolstack (a Linux dom0 with `xenstored`, `xenconsoled`, `xl`) starting the
//!   project's domUs; [`xl_x86`]: the same on x86-64 (a Linux PV dom0, a PVH domU).

pub mod bench;
pub mod bench_arm;
pub mod bench_x86;
pub mod blkbench;
pub mod domains;
pub mod el2;
pub mod fixtures;
pub mod insns;
pub mod package;
pub mod par;
pub mod scenario;
pub mod setup;
pub mod smp;
pub mod steps;
pub mod tool;
pub mod util;
pub mod x86;
pub mod xen;
pub mod xensrc;
pub mod xl;
pub mod xl_x86;

pub use cargo_xen::{audit, elf, flow};
