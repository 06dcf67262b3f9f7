//! `cargo xen`: tooling for Xen ARM guests (unikernels), as a library and a cargo subcommand; its audit
//! also reads x86-64 guests.
//!
//! - [`audit`]: the code-size audit of the hypercall sites of any ARM ELF file (inline `hvc`, generic and
//!   per-hypercall stubs recognised by their code), its `--diff` and `--max-…` limits; [`names`]: hypercall
//!   and sub-operation names.
//! - [`x86`]: the same audit for x86-64 guests (`syscall`, `vmcall`, `vmmcall`, the hypercall page), decoded
//!   with `iced-x86`.
//! - [`elf`]: reads ARM ELF files and archives and decodes their code with a real decoder (A32, T32, A64);
//!   [`flow`]: straight-line symbolic execution (register values at each trap, stack traffic).
//! - [`run`]: `cargo xen run`, booting images on Xen under QEMU and judging how dom0 ended; [`qemu`]: the
//!   runner, Debian's Xen, flat images, the dom0less device tree; [`xensrc`]: a debug Xen built from
//!   Debian's source.
//! - [`linux`]: a real Linux dom0 with Xen's toolstack (`xl`, `xenstored`, `xenconsoled`) from Debian's
//!   arm64 packages: the packages, the initramfs, the QEMU command.
//! - [`xl`]: `cargo xen run --xl`, an image booted as a domU that `xl` creates from that dom0, its
//!   console shown as it runs and its verdict from `xl`'s log.
//! - [`new`]: `cargo xen new`, a unikernel project from the template built into the tool, whose cargo
//!   runner is `cargo xen run --runner` (`cargo run` and `cargo test` boot it on Xen).
//! - [`setup`], [`cmd`]: the Debian packages the runs need, and running commands.
//! - [`cli`]: the command line.

pub mod audit;
pub mod cli;
pub mod cmd;
pub mod elf;
pub mod flow;
pub mod linux;
pub mod names;
pub mod new;
pub mod qemu;
pub mod run;
pub mod setup;
pub mod x86;
pub mod xensrc;
pub mod xl;
