//! Xen's real toolstack: a Debian arm64 Linux dom0 running Debian's `xenstored`, `xenconsoled` and `xl`
//! from an initramfs, on Debian's Xen 4.17 (release) and the debug Xen built from Debian's source, under
//! QEMU; `xl create` starts the project's domUs and the console says what happened.
//!
//! - The dom0 is `cargo-xen`'s ([`cargo_xen::linux`], re-exported here): [`fetch`] downloads Debian
//!   bookworm's arm64 packages (the dom0 kernel, the toolstack, its libraries, busybox) with a private apt
//!   state under `target/xl/` and unpacks them there once; [`base_cpio`] puts them in an initramfs,
//!   [`init_prelude`] starts its `/init`, [`command`] boots it under QEMU.
//! - [`initramfs`]: a scenario's gzip'd `newc` cpio, with an `/init` ([`init_script`]) that brings up the
//!   toolstack, creates each domU paused, reads its xenstore values, unpauses it, waits (bounded) for it to
//!   end, prints its console log (xenconsoled's log file) and `xl`'s log between marker lines, and powers
//!   dom0 off. Every line of the harness starts with [`MARK`].
//! - [`Scenario`]: the declaration of a run: its domUs, each a guest binary of `guests/`, extra `xl`
//!   configuration lines, its [`Disk`]s (dom0 RAM disks through blkback) and [`Vif`]s (on dom0's bridge
//!   through netback, dom0 at [`DOM0_IP`] on it), whose modules and hotplug scripts dom0 then loads and
//!   installs, the [`Step`]s dom0 takes while it runs (awaiting, writing and checking xenstore keys,
//!   running shell commands), the console lines it must print and the xenstore values the toolstack must
//!   have given it. One boot per scenario and Xen build; [`judge`] turns the console into one problem
//!   line per missing check, a time-out, a Xen panic or a dom0 panic.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::elf::Isa;
use crate::xen::{self, Boot, XenBuild};
use crate::{par, setup, util, xensrc};

// The Linux dom0 itself (its packages, the initramfs, the QEMU command, reading its console) is the
// `cargo-xen` tool's, which boots users' domUs on it (`cargo xen run --xl`); the scenarios here use it as
// is.
pub use cargo_xen::linux::{
    AMD64, APT, ARM64, Arch, Cpio, DISK_MODULES, DOM0_MEMORY, DOMU_MODULES, DPKG, Dom0, GZIP,
    KERNEL_ADDR, LINUX_DOMU_MODULES, MACHINE_MEMORY, MODULES, NET_MODULES, PACKAGES, PROGRAMS, TAR,
    all_modules, base_cpio, check_libraries, command, crash_line, debian_sources, dom0_off,
    fetch_arch, finished, gzip, init_prelude, initrd_addr, kernel_package, marked_lines, needed,
    quote,
};

/// Downloads and unpacks the dom0's packages under [`dir`] unless they are there
/// ([`cargo_xen::linux::fetch`]).
pub fn fetch() -> Result<Dom0> {
    cargo_xen::linux::fetch(&dir())
}

/// What every line the harness prints from dom0 starts with.
pub const MARK: &str = "xl-harness: ";

/// How long one boot may take before it counts as hung (one takes 3–7 s here; dom0 itself gives up on a
/// domU its [`DomU::seconds`] after unpausing them all).
pub const TIMEOUT: Duration = Duration::from_secs(90);

/// What `XENMEM_maximum_reservation` answers a domU of `memory = 16`: 16 MiB and libxl's 1 MiB slack, in
/// 4 KiB pages. (A `maxmem` above `memory` cannot be created on ARM by Debian's libxl 4.17: it populates
/// `maxmem` while Xen's limit is `memory` + 1 MiB, `Over-allocation`; at 8 TiB its P2M pool alone, 32
/// GiB, is refused first. So the count stays far from 2^31 here.)
pub const MAX_PAGES_LINE: &str = "xl-domu: MAX_PAGES = 4352";

/// How long dom0 waits for a domU to end after `xl unpause`, in seconds, unless its declaration says.
pub const DOMU_SECONDS: u32 = 30;

/// The bridge dom0 makes for [`Vif`]s (no device of the machine is on it: nothing leaves dom0).
pub const BRIDGE: &str = "xenbr0";

/// dom0's link-local address on [`BRIDGE`] (a /16: the domUs' frontends take others of 169.254/16).
pub const DOM0_IP: &str = "169.254.1.1";

/// The hotplug script libxl runs for a [`Vif`] (`script=` in its vif line), a busybox-sh replacement of
/// Xen's bash `vif-bridge`: on `add`/`online` it brings the backend's interface (`$vif`) up on the bridge
/// its backend directory names and writes `hotplug-status = connected`; on `remove`/`offline` it takes it
/// off the bridge.
pub const VIF_SCRIPT: &str = r#"#!/bin/sh
# libxl's hotplug script for a vif (`script=vif-bridge-sh`): vif-bridge-sh ACTION, with XENBUS_PATH and vif set.
bridge=$(xenstore-read "$XENBUS_PATH/bridge") || exit 1
case "$1" in
add|online)
  ip link set "$vif" up || exit 1
  brctl addif "$bridge" "$vif" || exit 1
  xenstore-write "$XENBUS_PATH/hotplug-status" connected
  ;;
*) brctl delif "$bridge" "$vif" 2>/dev/null; exit 0 ;;
esac
"#;

/// Where [`VIF_SCRIPT`] is in dom0, under `/etc/xen/scripts/`.
pub const VIF_SCRIPT_NAME: &str = "vif-bridge-sh";

/// dom0's UDP check (`/bin/udp-check HOST SIZE…`, bash for `/dev/udp`): for each size, a datagram of that
/// many bytes to the domU's port 7 must come back unchanged, and `send SIZE` to its port 5001 must be
/// answered with SIZE bytes of the pattern `'a' + (i * 7 + SIZE + 3) % 26` at byte `i`. Every payload is
/// made (awk) and compared (cmp) here, one line per check; it fails on any difference. `SHIFT=N` in its
/// environment expects the domU's pattern shifted by N: the negative control, which must fail.
pub const UDP_CHECK: &str = r#"#!/bin/bash-static
# udp-check HOST SIZE...: UDP with the domU at HOST, every payload made and compared here.
pat() { awk -v n="$1" -v k="$2" 'BEGIN { for (i = 0; i < n; i++) printf "%c", 97 + (i * 7 + n + k) % 26 }'; }
h=$1; shift
# Files of its own: two checks may run at once (one per network domU).
w=/tmp/u.want.$$ g=/tmp/u.got.$$
exec 3<>"/dev/udp/$h/7" 4<>"/dev/udp/$h/5001" || exit 1
bad=0
for n in "$@"; do
  pat "$n" 0 > $w
  dd if=$w bs=4096 2>/dev/null >&3
  timeout 5 dd bs=4096 count=1 <&3 > $g 2>/dev/null
  if cmp -s $w $g; then echo "echo $n: ok"; else echo "echo $n: WRONG, $(wc -c < $g) bytes back"; bad=1; fi
  printf 'send %d' "$n" >&4
  timeout 5 dd bs=4096 count=1 <&4 > $g 2>/dev/null
  pat "$n" $((3 + ${SHIFT:-0})) > $w
  if cmp -s $w $g; then echo "from domU $n: ok"; else echo "from domU $n: WRONG, $(wc -c < $g) bytes"; bad=1; fi
done
exit $bad
"#;

/// The `bin` of a [`DomU`] that is a Linux domU (dom0's kernel and [`linux_initramfs`]; see [`netbench`]).
pub const LINUX: &str = "linux";

/// How long a boot with a Linux domU ([`netbench`]) may take (a Linux domU boots in 5–50 s under TCG,
/// with the host's load).
pub const LINUX_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(200);

/// The Linux domU's `/init`: its network frontend up at 169.254.1.3, then idle until `xl shutdown` (busybox
/// `poweroff`, run by the kernel as `/sbin/poweroff`, signals init with SIGUSR2) or 300 s; before powering
/// off it prints its vif's interrupts. Meanwhile, for the streaming benchmark ([`netbench`]): whatever
/// comes to TCP port 5002 is discarded, a connection to port 5003 gets [`netbench::TCP_FROM_BYTES`] zero bytes,
/// and a command to TCP port 5004, `udp N SIZE`, sends N datagrams of SIZE zero bytes to dom0's port 9
/// (bash's `/dev/udp`, one `dd` write each); `irqs TAG` prints `linux-domu: vif-irqs TAG N` (its vif's
/// interrupts so far: the backend's notifications) on its console. Each listener's standard input is a FIFO held open (busybox
/// `nc` ends at the end of its input). It sends no ICMP error to a new peer (`icmp_ratelimit` of 28 h): a
/// port unreachable would end dom0's flood (its `/dev/udp` socket is connected).
pub(crate) const LINUX_INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
mkdir -p /sbin && ln -s /bin/busybox /sbin/poweroff
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
insmod /xen-netfront.ko
n=0
while [ ! -e /sys/class/net/eth0 ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
if ip addr add 169.254.1.3/16 dev eth0 && ip link set eth0 up; then echo "linux-domu: ok eth0 up"; else echo "linux-domu: FAIL eth0"; fi
echo 100000000 > /proc/sys/net/ipv4/icmp_ratelimit
mkfifo /tmp/hold; exec 5<>/tmp/hold
(while :; do nc -l -p 5002 <&5 > /dev/null 2>&1 || sleep 1; done) &
(while :; do head -c 8388608 /dev/zero | nc -l -p 5003 > /dev/null 2>&1 || sleep 1; done) &
(while :; do nc -l -p 5004 <&5 > /tmp/cmd 2>/dev/null || sleep 1; set -- $(cat /tmp/cmd)
  [ "$1" = udp ] && bash-static -c "dd if=/dev/zero bs=$3 count=$2 > /dev/udp/169.254.1.1/9" 2>/dev/null
  [ "$1" = irqs ] && echo "linux-domu: vif-irqs $2 $(grep -E 'eth0|vif' /proc/interrupts | awk '{ s += $2 } END { print s + 0 }')"; done) &
bye() { echo "linux-domu: irqs $(grep -E 'eth0|vif' /proc/interrupts | awk '{ s += $2 } END { print s + 0 }')"; echo "linux-domu: done"; poweroff -f; }
trap bye USR2 TERM
sleep 300 &
wait $!
bye
"#;

/// The Linux domU's initramfs (an uncompressed `newc` cpio): busybox, its `/init`, `xen-netfront.ko`.
pub fn linux_initramfs(dom0: &Dom0) -> Result<Vec<u8>> {
    let mut cpio = Cpio::default();
    for d in ["bin", "dev", "proc", "sys", "tmp"] {
        cpio.dir(d);
    }
    let busybox = std::fs::read(dom0.root.join("bin/busybox")).context("dom0's busybox")?;
    cpio.file("bin/busybox", 0o755, &busybox);
    // For `/dev/udp` in the streaming benchmark's floods.
    let bash = std::fs::read(dom0.root.join("bin/bash-static")).context("dom0's bash-static")?;
    cpio.file("bin/bash-static", 0o755, &bash);
    cpio.file("init", 0o755, LINUX_INIT.as_bytes());
    let rel = format!("lib/modules/{}/kernel/{}.ko", dom0.release, DOMU_MODULES[0]);
    let module = std::fs::read(dom0.kernel_tree.join(&rel)).with_context(|| rel.clone())?;
    cpio.file("xen-netfront.ko", 0o644, &module);
    Ok(cpio.finish())
}

/// The size of every RAM disk (`brd` makes them all one size), in MiB: `rd_size` is this in KiB. brd
/// allocates its pages as they are written, so the size costs dom0 nothing up front.
pub const RAM_DISK_MIB: u32 = 4;

/// [`RAM_DISK_MIB`] in 512-byte sectors, as blkback's `sectors` must say.
pub const RAM_DISK_SECTORS: &str = "8192";

/// The hotplug script libxl runs for a [`Disk`] (`script=` in its disk line), a busybox-sh replacement of
/// Xen's bash `block` script (which needs bash, flock and `/dev/fd`): on `add` it writes what blkback
/// waits for in the backend directory `$XENBUS_PATH` (`physical-device` as hexadecimal `major:minor`,
/// `physical-device-path`) and `hotplug-status = connected`, which libxl waits for; on `remove` there is
/// nothing to undo.
pub const BLOCK_SCRIPT: &str = r#"#!/bin/sh
# libxl's hotplug script for a RAM disk (`script=block-ram`): block ACTION, with XENBUS_PATH set.
[ "$1" = add ] || exit 0
dev=$(xenstore-read "$XENBUS_PATH/params") || exit 1
[ -b "$dev" ] || { xenstore-write "$XENBUS_PATH/hotplug-error" "$dev is no block device"; exit 1; }
mm=$(stat -L -c %t:%T "$dev") || exit 1
xenstore-write "$XENBUS_PATH/physical-device" "$mm" "$XENBUS_PATH/physical-device-path" "$dev"
xenstore-write "$XENBUS_PATH/hotplug-status" connected
"#;

/// Where [`BLOCK_SCRIPT`] is in dom0 (libxl takes `script=` relative to `/etc/xen/scripts/`).
pub const BLOCK_SCRIPT_NAME: &str = "block-ram";

/// `blk-pattern SECTORS [START COUNT]…` in dom0: the disk image of the block scenario, on its standard
/// output, built by dom0 itself (the reference the frontend's writes are checked against): 512-byte sector
/// `s` holds the 8-digit decimal of `s` 64 times, or of `s + 10000000` inside a `START COUNT` region
/// (what the domU writes there).
pub const BLK_PATTERN: &str = r#"#!/bin/sh
n=$1; shift
exec awk -v n="$n" -v r="$*" 'BEGIN { k = split(r, a, " ");
  for (i = 0; i < n; i++) { v = i; for (j = 1; j < k; j += 2) if (i >= a[j] + 0 && i < a[j] + a[j + 1]) v = i + 10000000;
    s = sprintf("%08d", v); s = s s; s = s s; s = s s; s = s s; s = s s; s = s s; printf "%s", s } }'
"#;

/// A disk with a write cache: the loop device `/dev/loop0` over a [`RAM_DISK_MIB`] MiB file in dom0's
/// tmpfs, `/run/blkflush.img` (made by [`DISK_SETUP`]). Linux's loop driver gives a device over a file
/// with `fsync` a volatile write cache (so blkback offers `feature-flush-cache`, and a flush reaches
/// `fsync`) and one over a file with `fallocate` discard (blkback offers `feature-discard`; tmpfs punches
/// holes that read as zeros); a RAM disk (`brd`) has neither.
pub const FLUSH_DISK: &str = "/dev/loop0";

/// A disk whose sectors [`FAILING_SECTORS`] fail in dom0: device-mapper's `/dev/mapper/blkerr` (made by
/// [`DISK_SETUP`]), an `error` target there and `linear` over `/dev/loop1` (a [`RAM_DISK_MIB`] MiB file in
/// dom0's tmpfs, `/run/blkerr.img`) at the same sectors elsewhere: blkback answers `BLKIF_RSP_ERROR` for a
/// request that touches them, and the file shows what reached the disk.
pub const FAILING_DISK: &str = "/dev/mapper/blkerr";

/// The failing sectors of [`FAILING_DISK`] (first, count): away from [`BLK_REGIONS`].
pub const FAILING_SECTORS: (u32, u32) = (2048, 64);

/// dom0's commands (in `/init`, before the domUs are created) that make [`FLUSH_DISK`] and
/// [`FAILING_DISK`], when a domU's configuration names one: the loop and device-mapper modules, the
/// two files (sparse, 4 MiB), their loop devices, and the device-mapper table (`dmsetup` without udev makes its
/// `/dev/mapper` node itself). A domU's dom0 steps fill the files before the domU starts its I/O.
pub const DISK_SETUP: &str = "insmod $K/block/loop.ko && insmod $K/dax/dax.ko && insmod $K/md/dm-mod.ko \
  && truncate -s 4M /run/blkflush.img && losetup /dev/loop0 /run/blkflush.img \
  && truncate -s 4M /run/blkerr.img && losetup /dev/loop1 /run/blkerr.img \
  && printf '0 2048 linear /dev/loop1 0\n2048 64 error\n2112 6080 linear /dev/loop1 2112\n' \
  | DM_DISABLE_UDEV=1 dmsetup create blkerr --noudevsync && dmsetup table blkerr && test -b /dev/mapper/blkerr";

/// The disk line of a domU on [`FLUSH_DISK`] (overrides the `disk` of its declared [`Disk`]s).
pub const FLUSH_DISK_LINE: &str =
    "disk = ['format=raw,vdev=xvda,access=rw,script=block-ram,target=/dev/loop0']";

/// The disk line of a domU on [`FAILING_DISK`].
pub const FAILING_DISK_LINE: &str =
    "disk = ['format=raw,vdev=xvda,access=rw,script=block-ram,target=/dev/mapper/blkerr']";

/// Once dom0 has filled the file under [`FAILING_DISK`] with the block scenario's image, it reads the disk
/// around its failing sectors: the sector before and the one after them read, the
/// first and the last of them fail (`O_DIRECT`: no page cache in between).
pub const FAILING_CHECK: &str = "wait_for 120 test -f /tmp/filled \
    && dd if=/dev/mapper/blkerr of=/dev/null bs=512 skip=2047 count=1 iflag=direct \
    && dd if=/dev/mapper/blkerr of=/dev/null bs=512 skip=2112 count=1 iflag=direct \
    && ! dd if=/dev/mapper/blkerr of=/dev/null bs=512 skip=2048 count=1 iflag=direct \
    && ! dd if=/dev/mapper/blkerr of=/dev/null bs=512 skip=2111 count=1 iflag=direct";

/// What Linux's blkback offers with its default parameters (`backend offers:` of `xl_blk.rs`): a ring of
/// up to 16 pages, 256-segment indirect requests (a constant of Linux's, no parameter turns it off) and
/// persistent grants.
pub const BLKBACK_OFFERS_ALL: &str =
    "xl-blk: backend offers: ring order 4, indirect 256, persistent 1";

/// blkback's parameters with the features that have one turned off: a one-page ring and no persistent
/// grants ([`Scenario::blkdev`]'s boot).
pub const BLKBACK_FEATURES_OFF: &str = "max_ring_page_order=0 feature_persistent=0";

/// What blkback offers when loaded with [`BLKBACK_FEATURES_OFF`].
pub const BLKBACK_OFFERS_FEW: &str =
    "xl-blk: backend offers: ring order 0, indirect 256, persistent 0";

/// What the frontend's defaults use on a backend that offers everything: 16 ring pages, 64-segment
/// indirect requests, persistent grants.
pub const BLK_USING_ALL: &str =
    "xl-blk: using: ring order 4 (512 slots), segments/request 64, persistent 1";

/// No flush reached blkback: its count of the flushes (`BLKIF_OP_FLUSH_DISKCACHE`) the domU's `xvda`
/// sent, `statistics/f_req`, is 0.
pub const FLUSHES_ZERO: &str = "f=$(cat /sys/bus/xen-backend/devices/vbd-$D-51712/statistics/f_req); echo \"f_req $f\"; [ \"$f\" = 0 ]";

/// Two flushes reached blkback (`statistics/f_req` is 2: the data run's and the counted one).
pub const FLUSHES_TWO: &str = "f=$(cat /sys/bus/xen-backend/devices/vbd-$D-51712/statistics/f_req); echo \"f_req $f\"; [ \"$f\" = 2 ]";

/// One discard reached blkback (`statistics/ds_req` is 1).
pub const DISCARDS_ONE: &str = "d=$(cat /sys/bus/xen-backend/devices/vbd-$D-51712/statistics/ds_req); echo \"ds_req $d\"; [ \"$d\" = 1 ]";

/// The file under [`FLUSH_DISK`] after `blkflush`: sectors 6000..6064 (the domU's discard) are zeros (no
/// other byte is, in the image); with them put back as dom0's image has them, the file is that image.
pub const DISCARDED_CHECK: &str = "sync; z=$(dd if=/run/blkflush.img bs=512 skip=6000 count=64 2>/dev/null | tr -d '\\000' | wc -c) \
    && echo \"non-zero bytes in the discarded sectors: $z\" && [ \"$z\" = 0 ] \
    && dd if=/tmp/e of=/run/blkflush.img bs=512 skip=6000 seek=6000 count=64 conv=notrunc 2>/dev/null \
    && md5sum /run/blkflush.img && cmp /tmp/e /run/blkflush.img";

/// What blkback offers the domU's `xvda`: `feature-discard`.
pub const VBD_DISCARD: &str = "/local/domain/0/backend/vbd/$D/51712/feature-discard";

/// What blkback offers the domU's `xvda`: `feature-flush-cache`.
pub const VBD_FLUSH: &str = "/local/domain/0/backend/vbd/$D/51712/feature-flush-cache";

/// Where dom0 keeps the Linux domU's kernel (dom0's own `Image`) and initramfs; a domU whose
/// configuration names [`LINUX_KERNEL`] makes [`initramfs`] add both.
pub const LINUX_KERNEL: &str = "/domu/linux.Image";
/// The Linux domU's initramfs in dom0.
pub const LINUX_INITRD: &str = "/domu/linux-initrd.gz";

/// The Linux domU's `/init` (busybox): loads `xen-blkfront`, waits for `/dev/xvda`, then for dom0's `GO`
/// at the start of its last sector (read with `O_DIRECT`), runs the benchmark's workloads in the order and
/// amounts of the library's frontend, three rounds, each one process of [`LINUX_BLKIO`] (`O_DIRECT`, one
/// synchronous transfer after another, timed in nanoseconds) with the count of its `blkif` interrupt (the
/// backend's notifications) around it, prints `linux-blk: done`, stays connected 15 s (dom0 reads
/// blkback's counters) and powers off.
pub const LINUX_DOMU_INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
insmod /xen-blkfront.ko
n=0; while [ ! -b /dev/xvda ] && [ $n -lt 300 ]; do sleep 0.1; n=$((n + 1)); done
echo "linux-blk: xvda $(cat /sys/block/xvda/size) sectors; $(dmesg | grep -m1 'blkfront: xvda')"
n=0; while [ $n -lt 300 ]; do
  [ "$(dd if=/dev/xvda bs=512 skip=8191 count=1 iflag=direct 2>/dev/null | head -c 2)" = GO ] && break
  sleep 1; n=$((n + 1))
done
irq() { grep blkif /proc/interrupts | awk '{ s = 0; for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) s += $i; print s }'; }
run() { name=$1; shift; a=$(irq); o=$(/bin/linux-blkio /dev/xvda "$@" 2>&1); r=$?; b=$(irq)
  [ $r = 0 ] && echo "linux-blk: bench $name: irq $((b - a)) $o" || echo "linux-blk: FAIL $name: rc $r $o"; }
for round in 1 2 3; do
  run seq-read-4k read seq 4096 1024
  run seq-write-4k write seq 4096 1024
  run rand-read-4k read rand 4096 1024
  run rand-write-4k write rand 4096 1024
  run seq-read-1m read seq 1048576 4
  run seq-write-1m write seq 1048576 4
done
grep blkif /proc/interrupts | sed 's/^/linux-blk: interrupts /'
echo "linux-blk: done"
sleep 15
poweroff -f
"#;

/// The block benchmark's program for the Linux domU (`benches/linux-blkio`: a static Linux/arm64 executable
/// without libc).
pub const LINUX_BLKIO: &str = "xen-hypercall-bench-linux-blkio";

/// [`LINUX_BLKIO`] built for the Linux domU.
fn linux_blkio() -> Result<Vec<u8>> {
    let dir = util::target_dir().join("linux-blkio");
    let target = "aarch64-unknown-none";
    util::cross_build(&dir, LINUX_BLKIO, target, "3", "", &[])?;
    let elf = dir.join(target).join("release/linux-blkio");
    std::fs::read(&elf).with_context(|| format!("reading {}", elf.display()))
}

/// The Linux domU's initramfs: busybox (from the unpacked packages), `xen-blkfront.ko`, [`LINUX_BLKIO`]
/// and [`LINUX_DOMU_INIT`], gzip'd.
pub fn linux_domu_initrd(dom0: &Dom0) -> Result<Vec<u8>> {
    let mut cpio = Cpio::default();
    for d in ["dev", "proc", "sys", "bin", "tmp"] {
        cpio.dir(d);
    }
    let busybox = std::fs::read(dom0.root.join("bin/busybox")).context("busybox")?;
    cpio.file("bin/busybox", 0o755, &busybox);
    let rel = format!(
        "lib/modules/{}/kernel/drivers/{}.ko",
        dom0.release, LINUX_DOMU_MODULES[0]
    );
    let ko = std::fs::read(dom0.kernel_tree.join(&rel)).with_context(|| rel.clone())?;
    cpio.file("xen-blkfront.ko", 0o644, &ko);
    cpio.file("bin/linux-blkio", 0o755, &linux_blkio()?);
    cpio.file("init", 0o755, LINUX_DOMU_INIT.as_bytes());
    gzip(&cpio.finish())
}

/// The regions (start sector, sectors) the block domU writes: odd offsets and lengths, requests across
/// the 11-segment limit, the first and the last sector.
pub const BLK_REGIONS: &str = "1 1 3 97 200 89 511 300 4000 177 8191 1";

/// Where everything lives: the private apt state, the packages, their unpacked trees, the initramfs
/// images and the console logs.
pub fn dir() -> PathBuf {
    util::target_dir().join("xl")
}

// ---------------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------------

/// A xenstore value the toolstack must have written for a domU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// Exactly this text.
    Is(&'static str),
    /// The number the domU printed on its console as `NAME = NUMBER` (decimal, or hexadecimal with `0x`):
    /// what the domU was given (an HVM parameter) must be what the toolstack recorded.
    Guest(&'static str),
}

/// How a domU must end: the shutdown reason `xl`'s monitor logs (`Domain N has shut down, reason code C`),
/// Xen's `SHUTDOWN_*` codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shutdown {
    /// `SCHEDOP_shutdown(poweroff)`, code 0.
    Poweroff = 0,
    /// `SCHEDOP_shutdown(reboot)`, code 1.
    Reboot = 1,
    /// `SCHEDOP_shutdown(crash)`, code 3.
    Crash = 3,
    /// No shutdown: the domU runs until dom0's `xl destroy` (a [`Step`] of its own); `xl`'s monitor
    /// logs `Domain N has been destroyed.` and no shutdown reason ([`destroy_problems`]).
    Destroyed = 255,
}

/// One domU of a scenario.
#[derive(Clone, Debug)]
pub struct DomU {
    /// Its `xl` name (also the name of its config and of xenconsoled's log, `guest-NAME.log`).
    pub name: &'static str,
    /// The guest binary of `guests/`.
    pub bin: &'static str,
    /// Its instruction set: AArch64 (a flat arm64 `Image`, position-independent) or 32-bit ARM (a zImage
    /// linked at 0x40008000, where libxl loads a zImage: a 32-bit domain).
    pub isa: Isa,
    /// `xl` configuration lines added to the base ones (`name`, `kernel`, `memory=16`, `vcpus=1`,
    /// `on_poweroff="destroy"`, `on_crash="destroy"`); a later line overrides an earlier one.
    pub config: Vec<&'static str>,
    /// Lines the domU must print on its console (each the start of a line of xenconsoled's log).
    pub console: Vec<&'static str>,
    /// xenstore values read by dom0 while the domU is paused, after `xl create -p`: a path under the
    /// domain's home (`/local/domain/<domid>/`), or absolute when it starts with `/` (where `$D` is the
    /// domU's domid), and the value it must have.
    pub xenstore: Vec<(&'static str, Value)>,
    /// How it must end.
    pub shutdown: Shutdown,
    /// How long dom0 waits for it to be gone after `xl unpause` (then it is destroyed, and the run fails).
    pub seconds: u32,
    /// Its virtual disks, each backed by a RAM disk of dom0 through blkback.
    pub disks: Vec<Disk>,
    /// Its virtual network interfaces, each on dom0's [`BRIDGE`] through netback.
    pub vifs: Vec<Vif>,
    /// What dom0 does while it runs, in order, from its unpause (see [`Step`]).
    pub dom0: Vec<Step>,
}

/// A virtual disk of a domU: dom0's RAM disk `/dev/ram<ram>` ([`RAM_DISK_MIB`] MiB) exported as `vdev`
/// (`xvda`: the frontend's `device/vbd/51712`) by blkback, read-write, attached by [`BLOCK_SCRIPT`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Disk {
    /// The virtual device name (`xvda`).
    pub vdev: &'static str,
    /// The RAM disk's number.
    pub ram: u32,
}

impl Disk {
    /// Its entry in the `disk` list of the `xl` configuration (the script's `target=` must come last).
    pub fn spec(&self) -> String {
        format!(
            "'format=raw,vdev={},access=rw,script={BLOCK_SCRIPT_NAME},target=/dev/ram{}'",
            self.vdev, self.ram
        )
    }
}

/// A virtual network interface of a domU (`device/vif/<n>`, in declaration order), on dom0's [`BRIDGE`]
/// through netback, attached by [`VIF_SCRIPT`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vif {
    /// Its MAC address (`00:16:3e:…`, Xen's prefix).
    pub mac: &'static str,
}

impl Vif {
    /// Its entry in the `vif` list of the `xl` configuration.
    pub fn spec(&self) -> String {
        format!(
            "'mac={},bridge={BRIDGE},script={VIF_SCRIPT_NAME}'",
            self.mac
        )
    }
}

/// Something dom0 does while a domU runs (after its unpause, in the background, one step after the
/// other). A key is a path under the domU's home (`/local/domain/<domid>/`), or absolute when it starts
/// with `/` (where `$D` is the domU's domid). The checking steps print `ok NAME: …` or `FAIL NAME: …`, and
/// [`judge`] requires their `ok` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Waits until `key` reads `value`, polling every 0.1 s, at most the domU's [`DomU::seconds`]: the
    /// domU's signal that it is ready for the next step.
    Await(&'static str, &'static str),
    /// Writes `value` at `key`.
    Write(&'static str, &'static str),
    /// `key` must read `value` now.
    Expect(&'static str, &'static str),
    /// Among the children of `dir` listed by `xenstore-ls -p`, `name` must have the permissions `perms`
    /// (as it prints them: `n1,r0`).
    Perms(&'static str, &'static str, &'static str),
    /// Runs the shell command `cmd` (in `/init`'s shell, with `$D` the domU's domid): `ok NAME: label`
    /// when it succeeds, `FAIL NAME: label` otherwise; its output is printed under the line either way.
    Shell(&'static str, &'static str),
    /// Makes `count` children under `dir` (`<dir>/<FILL_NAME><i>`, value `x`) in one `xenstore-write`:
    /// a directory as big as dom0 wants, beyond a domU's node-size quota.
    Fill(&'static str, u32),
    /// Runs the shell command (with `$D` the domU's domid), bounded by the domU's [`DomU::seconds`]: `ok
    /// NAME: run LABEL` when it exits 0; its output is shown under the line.
    Run(&'static str, &'static str),
}

/// The names [`Step::Fill`] gives, before their number (39 bytes): a hundred of them are more than one
/// 4096-byte reply.
pub const FILL_NAME: &str = "a-child-with-a-name-forty-bytes-long-00";

impl Step {
    /// The text of its `ok` line after `NAME: `; `None` for a step that checks nothing.
    pub fn label(&self) -> Option<String> {
        match self {
            Step::Await(k, v) => Some(format!("await {k} = {v}")),
            Step::Expect(k, v) => Some(format!("{k} = {v}")),
            Step::Perms(dir, name, p) => Some(format!("perms {dir}/{name} = ({p})")),
            Step::Shell(label, _) => Some(label.to_string()),
            Step::Write(..) => None,
            Step::Fill(dir, n) => Some(format!("fill {dir} with {n}")),
            Step::Run(label, _) => Some(format!("run {label}")),
        }
    }

    /// Its shell lines for domU `name` (with `$D` its domid), bounded by `seconds`.
    fn script(&self, name: &str, seconds: u32) -> String {
        let path = |k: &str| {
            if k.starts_with('/') {
                format!("\"{k}\"")
            } else {
                format!("\"/local/domain/$D/{k}\"")
            }
        };
        let label = self.label().unwrap_or_default();
        match self {
            Step::Await(k, v) => format!(
                "  if wait_for $(left {seconds}) is_key {p} {v}; then ok {l}\": $(cut -d' ' -f1 /proc/uptime) s\"; else fail {l}\": $(timeout 5 xenstore-read {p} 2>&1)\"; fi\n",
                p = path(k),
                v = quote(v),
                l = quote(&format!("{name}: {label}")),
            ),
            Step::Write(k, v) => format!(
                "  timeout 10 xenstore-write {p} {v} || fail {l}\n",
                p = path(k),
                v = quote(v),
                l = quote(&format!("{name}: write {k}")),
            ),
            Step::Expect(k, v) => format!(
                "  if is_key {p} {v}; then ok {l}; else fail {l}\", got $(timeout 5 xenstore-read {p} 2>&1)\"; fi\n",
                p = path(k),
                v = quote(v),
                l = quote(&format!("{name}: {label}")),
            ),
            Step::Fill(dir, n) => {
                let base = path(dir);
                let base = base.trim_end_matches('"');
                let pairs: Vec<String> = (0..*n)
                    .map(|i| format!("{base}/{FILL_NAME}{i}\" x"))
                    .collect();
                format!(
                    "  if timeout 20 xenstore-write {}; then ok {l}; else fail {l}; fi\n",
                    pairs.join(" "),
                    l = quote(&format!("{name}: {label}")),
                )
            }
            Step::Run(_, cmd) => format!(
                "  if D=$D timeout {seconds} sh -c {c} > /tmp/{name}.run 2>&1; then ok {l}; else fail {l}\": exit $?\"; fi\n  show /tmp/{name}.run\n",
                c = quote(cmd),
                l = quote(&format!("{name}: {label}")),
            ),
            Step::Perms(dir, child, perms) => format!(
                "  timeout 10 xenstore-ls -p {p} > /tmp/{name}.ls 2>&1\n  if grep -q {pat} /tmp/{name}.ls; then ok {l}; else fail {l}; show /tmp/{name}.ls; fi\n",
                p = path(dir),
                pat = quote(&format!("^{child} = .*({perms})$")),
                l = quote(&format!("{name}: {label}")),
            ),
            Step::Shell(_, cmd) => format!(
                "  if {{ {cmd}\n  }} > /tmp/{name}.sh 2>&1; then ok {l}; else fail {l}; fi; show /tmp/{name}.sh\n",
                l = quote(&format!("{name}: {label}")),
            ),
        }
    }
}

impl DomU {
    /// The domU `name` of the guest binary `bin`, before what its scenario declares: AArch64, no
    /// configuration line, console line, xenstore value, disk, vif or dom0 step; it must power off within
    /// [`DOMU_SECONDS`]. A declaration gives the rest (`DomU { console: …, ..DomU::new(name, bin) }`).
    pub fn new(name: &'static str, bin: &'static str) -> DomU {
        DomU {
            name,
            bin,
            isa: Isa::A64,
            config: vec![],
            console: vec![],
            xenstore: vec![],
            shutdown: Shutdown::Poweroff,
            seconds: DOMU_SECONDS,
            disks: vec![],
            vifs: vec![],
            dom0: vec![],
        }
    }

    /// The `xl` configuration file.
    pub fn config_file(&self) -> String {
        let mut s = format!(
            "name = \"{n}\"\nkernel = \"/domu/{n}.bin\"\nmemory = 16\nvcpus = 1\non_poweroff = \"destroy\"\n\
             on_crash = \"destroy\"\n",
            n = self.name
        );
        if !self.disks.is_empty() {
            let specs: Vec<String> = self.disks.iter().map(Disk::spec).collect();
            let _ = writeln!(s, "disk = [{}]", specs.join(", "));
        }
        if !self.vifs.is_empty() {
            let specs: Vec<String> = self.vifs.iter().map(Vif::spec).collect();
            let _ = writeln!(s, "vif = [{}]", specs.join(", "));
        }
        for l in &self.config {
            s.push_str(l);
            s.push('\n');
        }
        s
    }
}

/// A run: domUs started by `xl` in one boot, and what each must show.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// A short name (`cargo xtask xl NAME`).
    pub name: &'static str,
    /// What it shows, for people.
    pub title: &'static str,
    /// blkback's module parameters (`insmod` arguments, e.g. `feature_persistent=0`): empty for Linux's
    /// defaults, which offer every feature.
    pub blkback: &'static str,
    /// netback's module parameters (`insmod` arguments, e.g. `max_queues=2`): empty for Linux's defaults
    /// (as many queues as dom0 has vCPUs: one).
    pub netback: &'static str,
    /// The domUs, created in this order (domids 1, 2, …), unpaused together.
    pub domus: Vec<DomU>,
    /// A negative control: the problems [`judge`] must find (each the start of one problem line), and no
    /// other. Empty for a scenario that must pass.
    pub control: Vec<&'static str>,
}

/// The word on the console domU's command line that makes it wait to be destroyed (`xl_domu.rs`).
pub const WAIT_WORD: &str = "xl-domu-wait";

/// The `xl` configuration line that gives [`WAIT_WORD`] (libxl puts `extra` in the device tree's
/// `/chosen/bootargs`).
pub const WAIT_EXTRA: &str = "extra = \"xl-domu-wait\"";

/// dom0's end of the waiting domU: once xenconsoled has given it a tty, `xl console` on it (which needs
/// `/var/lock`, and a stdin that blocks, or it exits at once)
/// until it is gone; once `xl console` shows it waiting (at most 20 s), `xl destroy`; then what `xl console`
/// printed must hold its first line (xenconsoled keeps what the domU wrote before a client came) and its
/// waiting lines, and is shown.
pub const DESTROY: &str = "mkdir -p /var/lock; rm -f /tmp/xlcons.rc; n=0; \
     until xenstore-read /local/domain/$D/console/tty > /dev/null 2>&1; do \
     n=$((n + 1)); [ $n -gt 100 ] && exit 1; sleep 0.1; done; sleep 60 | (timeout 20 xl console $D > /tmp/xlcons 2>&1; \
     echo \"xl console: exit $?\" > /tmp/xlcons.rc) & n=0; \
     until grep -q 'waiting for xl destroy' /tmp/xlcons; do \
     n=$((n + 1)); [ $n -gt 200 ] && break; sleep 0.1; done; \
     timeout 15 xl destroy $D; echo \"xl destroy: exit $?\"; n=0; \
     until [ -f /tmp/xlcons.rc ]; do n=$((n + 1)); [ $n -gt 100 ] && exit 1; sleep 0.1; done; cat /tmp/xlcons.rc; \
     grep -c '^xl-domu: ' /tmp/xlcons | sed 's/^/xl console lines: /'; head -2 /tmp/xlcons; tail -1 /tmp/xlcons; \
     grep -q '^xl-domu: hello from a domU started by xl' /tmp/xlcons && \
     grep -q '^xl-domu: waiting for xl destroy' /tmp/xlcons";

/// The console domU built for T32 (Thumb-2, `-Ctarget-feature=+thumb-mode`; its zImage entry stays A32,
/// `template/src/entry.rs`), run with the A32 one: domid 2.
pub fn t32_domu() -> DomU {
    let mut d = Scenario::console().domus.remove(0);
    d.name = "cons-t32";
    d.isa = Isa::T32;
    d.xenstore[0] = ("name", Value::Is("cons-t32"));
    d.xenstore[1] = ("domid", Value::Is("2"));
    d
}

/// The state of blkback for the domU's `xvda` (`XenbusState`: 2 InitWait, 4 Connected, 6 Closed).
pub const VBD_BACKEND: &str = "/local/domain/0/backend/vbd/$D/51712/state";

/// The xenstore values the toolstack writes for a domU, in this order: its `name` and `domid`, its
/// `memory/static-max` (KiB), and its console and xenstore rings' pages and event channels, which must be
/// the HVM parameters the domU was given (it prints them).
pub fn toolstack_keys(
    name: &'static str,
    domid: Value,
    static_max: &'static str,
) -> Vec<(&'static str, Value)> {
    vec![
        ("name", Value::Is(name)),
        ("domid", domid),
        ("memory/static-max", Value::Is(static_max)),
        ("console/ring-ref", Value::Guest("CONSOLE_PFN")),
        ("console/port", Value::Guest("CONSOLE_EVTCHN")),
        ("store/ring-ref", Value::Guest("STORE_PFN")),
        ("store/port", Value::Guest("STORE_EVTCHN")),
    ]
}

/// The states of the domU's `xvda` while it is paused after `xl create -p`: its frontend's Initialising
/// (1), blkback's InitWait (2, the hotplug script ran).
pub fn vbd_init_wait() -> [(&'static str, Value); 2] {
    [
        ("device/vbd/51712/state", Value::Is("1")),
        (VBD_BACKEND, Value::Is("2")),
    ]
}

/// dom0's steps for a block domU's run: `setup` (its disk made ready), `data/disk-ready` (the domU
/// starts its I/O), `during` (while it runs), then the domU's `data/blk-done`, blkback Closed (6),
/// `data/blk-ack` (the domU ends), and `check` (what the disk holds now).
pub fn blk_steps(setup: &[Step], during: &[Step], check: Step) -> Vec<Step> {
    let mut steps = setup.to_vec();
    steps.push(Step::Write("data/disk-ready", "1"));
    steps.extend_from_slice(during);
    steps.extend([
        Step::Await("data/blk-done", "1"),
        Step::Await(VBD_BACKEND, "6"),
        Step::Write("data/blk-ack", "1"),
        check,
    ]);
    steps
}

/// Where a 32-bit domU's image must be linked: libxl loads a zImage whose header names a load address
/// there (0x8000 into the domU's RAM, `GUEST_RAM0_BASE`).
pub const A32_DOMU_ENTRY: u64 = 0x4000_8000;

/// The size blkback gives the domU's `xvda`, in sectors.
pub const VBD_SECTORS: &str = "/local/domain/0/backend/vbd/$D/51712/sectors";

/// The sector size blkback gives the domU's `xvda`.
pub const VBD_SECTOR_SIZE: &str = "/local/domain/0/backend/vbd/$D/51712/sector-size";

/// netback's module, loaded with the scenario's [`Scenario::netback`] parameters.
const NETBACK_MODULE: &str = NET_MODULES[NET_MODULES.len() - 1];

/// netback's parameters for two queues per vif (by default it offers as many as dom0 has vCPUs: one).
pub const NETBACK_TWO_QUEUES: &str = "max_queues=2";

/// The state of netback for the domU's first vif.
pub const VIF_BACKEND: &str = "/local/domain/0/backend/vif/$D/0/state";

/// What the hotplug script wrote for the domU's first vif (`connected`).
pub const VIF_HOTPLUG: &str = "/local/domain/0/backend/vif/$D/0/hotplug-status";

/// dom0's `xl network-detach` of the domU's first vif, judged by its outcome: the backend's directory and
/// the interface `vif$D.0` are gone within 5 s (xl's own status is shown).
pub const DETACH: &str = "timeout 30 xl network-detach $D 0; echo \"xl network-detach: exit $?\"; n=0; \
     while xenstore-read /local/domain/0/backend/vif/$D/0/state > /dev/null 2>&1 || ip link show vif$D.0 > /dev/null 2>&1; do \
     n=$((n + 1)); [ $n -gt 50 ] && exit 1; sleep 0.1; done";

/// The TCP/IP stack's address in the network domU (`smoltcp`, beside its own responder at 169.254.1.2).
pub const TCP_IP: &str = "169.254.1.4";

/// Bytes of each TCP transfer of the net scenario, each way.
pub const TCP_BYTES: u32 = 2 * 1024 * 1024;

/// dom0's TCP transfer to the network domU (`tcp-to-domU BYTES`, busybox sh with bash's `/dev/tcp`):
/// BYTES of `/dev/urandom` whose `md5sum` dom0 writes at the domU's `data/tcp-md5` first, sent to its port
/// 5002; the domU must write `ok BYTES` at `data/tcp-rx` (its MD5 of what it received matched) within
/// 30 s. `bench tcp-to BYTES CENTISECONDS` from sending to the domU's answer. `SHORT=N` sends only the
/// first N bytes, the digest still the whole file's: the negative control, the domU must say `bad N`.
pub const TCP_TO_DOMU: &str = r#"tcp_to_domU() {
  cs() { cut -d' ' -f1 /proc/uptime | tr -d .; }
  k=/local/domain/$D/data
  head -c "$1" /dev/urandom > /tmp/t.bin && m=$(md5sum < /tmp/t.bin | cut -c1-32) || return 1
  xenstore-write $k/tcp-md5 "$m" $k/tcp-rx waiting || return 1
  want="ok $1"
  if [ -n "$SHORT" ]; then head -c "$SHORT" /tmp/t.bin > /tmp/t2.bin && mv /tmp/t2.bin /tmp/t.bin; want="bad $SHORT"; fi
  echo "md5 $m, $(wc -c < /tmp/t.bin) bytes sent"
  t0=$(cs)
  bash-static -c "cat /tmp/t.bin > /dev/tcp/$2/5002" || return 1
  n=0
  until [ "$(xenstore-read $k/tcp-rx)" = "$want" ]; do
    n=$((n + 1)); [ $n -gt 300 ] && { echo "the domU says: $(xenstore-read $k/tcp-rx)"; return 1; }; sleep 0.1
  done
  echo "the domU says: $want"; echo "bench tcp-to $1 $(($(cs) - t0))"
}"#;

/// dom0's TCP transfer from the network domU (`tcp-from-domU BYTES`): dom0 writes BYTES at the domU's
/// `data/tcp-send`, connects to its port 5003 and keeps what comes until the domU closes; it must be
/// BYTES long and its `md5sum` the digest the domU wrote at `data/tcp-tx-md5` (of the stream it made).
/// `bench tcp-from BYTES CENTISECONDS` from connecting to the end of the stream.
pub const TCP_FROM_DOMU: &str = r#"tcp_from_domU() {
  cs() { cut -d' ' -f1 /proc/uptime | tr -d .; }
  k=/local/domain/$D/data
  xenstore-write $k/tcp-send "$1" || return 1
  t0=$(cs)
  bash-static -c "cat < /dev/tcp/$2/5003 > /tmp/r.bin" || return 1
  t=$(($(cs) - t0)); s=$(wc -c < /tmp/r.bin); m=$(md5sum < /tmp/r.bin | cut -c1-32); w=$(xenstore-read $k/tcp-tx-md5)
  echo "$s bytes, md5 $m, the domU's $w"; echo "bench tcp-from $1 $t"
  [ "$s" = "$1" ] && [ "$m" = "$w" ]
}"#;

/// dom0's ping of the network domU with frames of the MTU (1472 bytes of ICMP payload), every reply
/// required.
pub const PING_1472: Step = Step::Run(
    "ping: 5 echoes of 1472 bytes, all answered",
    "ping -c 5 -A -W 5 -s 1472 169.254.1.2 > /tmp/ping; r=$?; cat /tmp/ping; [ $r = 0 ] && grep -q ' 5 packets received' /tmp/ping",
);

/// dom0's steps for the network domU: once it is ready and netback Connected (4), the `checks`; then
/// `bytes` (whole MiB) of TCP each way, each checked by its MD5 ([`TCP_TO_DOMU`], [`TCP_FROM_DOMU`]),
/// with the negative control between (data that do not match the digest dom0 wrote must be called so);
/// last the detach ([`DETACH`]: libxl may report a failure of its own hotplug step when netback has
/// removed the backend's directory first; what counts is that the vif is gone, and the domU's lines).
pub fn net_steps(checks: &[Step], bytes: u32) -> Vec<Step> {
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let mib = bytes / (1024 * 1024);
    let mut steps = vec![
        Step::Await("data/net-ready", "1"),
        Step::Expect(VIF_BACKEND, "4"),
    ];
    steps.extend_from_slice(checks);
    steps.extend([
        Step::Run(
            leak(format!(
                "tcp: {mib} MiB of urandom to the domU, its md5 of them is dom0's"
            )),
            leak(format!("{TCP_TO_DOMU}\ntcp_to_domU {bytes} {TCP_IP}")),
        ),
        Step::Run(
            "tcp: 64 KiB that do not match dom0's md5 are caught by the domU",
            leak(format!(
                "{TCP_TO_DOMU}\nSHORT=65536 tcp_to_domU {bytes} {TCP_IP}"
            )),
        ),
        Step::Run(
            leak(format!(
                "tcp: {mib} MiB from the domU, dom0's md5 of them is the domU's"
            )),
            leak(format!("{TCP_FROM_DOMU}\ntcp_from_domU {bytes} {TCP_IP}")),
        ),
        Step::Run("network-detach: the vif is gone", DETACH),
    ]);
    steps
}

/// The two-queue network domU (`guests/src/bin/xl_netmq.rs`, beside the net domU, netback loaded with
/// [`NETBACK_TWO_QUEUES`]): dom0 sees both queues on its vif, pings it, runs [`UDP_CHECK`] eight times
/// (each run two new sockets: flows that netback spreads over the queues by their random hash, so that
/// all sixteen land on one queue once in 2^15 boots), then detaches the vif; the domU must have carried
/// frames each way on both queues and hand back both queues' pages.
pub fn netmq_domu() -> DomU {
    DomU {
        console: vec![
            "xl-netmq: ok queues: 2 of 2 asked for",
            "xl-netmq: ok checksums",
            "xl-netmq: ok answered",
            "xl-netmq: ok backend gone",
            "xl-netmq: ok both queues carried frames each way",
            "xl-netmq: ok send after detach: backend gone",
            "xl-netmq: ok closed: [2 ring, 4 tx, 32 rx, leaked 0] [2 ring, 4 tx, 32 rx, leaked 0] pages back",
            "xl-netmq: ok stack",
            "xl-netmq: done",
        ],
        xenstore: vec![
            ("device/vif/0/mac", Value::Is("00:16:3e:00:00:05")),
            (VIF_BACKEND, Value::Is("2")),
        ],
        seconds: 80,
        vifs: vec![Vif {
            mac: "00:16:3e:00:00:05",
        }],
        dom0: vec![
            Step::Await("data/net-ready", "1"),
            Step::Expect(VIF_BACKEND, "4"),
            Step::Expect("device/vif/0/multi-queue-num-queues", "2"),
            Step::Run(
                "netback's vif has two queues",
                "ls -d /sys/class/net/vif$D.0/queues/tx-*; [ $(ls -d /sys/class/net/vif$D.0/queues/tx-* | wc -l) = 2 ]",
            ),
            Step::Run(
                "ping: 10 echoes, all answered",
                "ping -c 10 -A -W 5 169.254.1.5 > /tmp/ping-mq; r=$?; cat /tmp/ping-mq; [ $r = 0 ] && grep -q ' 10 packets received' /tmp/ping-mq",
            ),
            Step::Run(
                "udp: 8 runs of 2 flows, every payload checked",
                "for i in 1 2 3 4 5 6 7 8; do udp-check 169.254.1.5 64 1472 || exit 1; done",
            ),
            Step::Run("network-detach: the vif is gone", DETACH),
        ],
        ..DomU::new("netmq", "xl-netmq")
    }
}

/// What the hotplug script wrote for the domU's `xvda` (`connected`).
pub const VBD_HOTPLUG: &str = "/local/domain/0/backend/vbd/$D/51712/hotplug-status";

impl Scenario {
    /// How long one boot may take: [`TIMEOUT`] (or a minute more than its longest domU's
    /// [`DomU::seconds`]), 4 minutes for a scenario with disks (its domUs move megabytes through blkback
    /// under TCG), 7 with a Linux domU.
    pub fn boot_timeout(&self) -> Duration {
        let linux = self
            .domus
            .iter()
            .any(|d| d.config.iter().any(|l| l.contains(LINUX_KERNEL)));
        if linux {
            Duration::from_secs(420)
        } else if self.ram_disks() > 0 {
            Duration::from_secs(240)
        } else {
            // A minute past the longest domU's deadline: room for dom0 to print what a hung one wrote.
            let longest = self.domus.iter().map(|d| d.seconds).max().unwrap_or(0);
            TIMEOUT.max(Duration::from_secs(u64::from(longest) + 60))
        }
    }

    /// How many RAM disks dom0 needs (`brd`'s `rd_nr`): one past the highest declared.
    pub fn ram_disks(&self) -> u32 {
        self.domus
            .iter()
            .flat_map(|d| &d.disks)
            .map(|d| d.ram + 1)
            .max()
            .unwrap_or(0)
    }

    /// Whether a domU declares a [`Vif`]: dom0 then loads [`NET_MODULES`] and makes [`BRIDGE`].
    pub fn has_vifs(&self) -> bool {
        self.domus.iter().any(|d| !d.vifs.is_empty())
    }

    /// The console domU (`guests/src/bin/xl_domu.rs`): finds its PV console ring and xenstore page from its
    /// HVM parameters, writes its lines into the ring, powers off. Its parameters must be what `xl` wrote
    /// in xenstore.
    pub fn console() -> Scenario {
        Scenario {
            name: "console",
            title: "an xl domU writes its PV console ring; its HVM parameters match xenstore",
            blkback: "",
            netback: "",
            domus: vec![DomU {
                console: vec![
                    "xl-domu: hello from a domU started by xl",
                    "xl-domu: ok store page given",
                    MAX_PAGES_LINE,
                    // `xen::time` (guests/src/timing.rs): 20 ms waits by the domU's own clock, the wall
                    // clock after 2024, the one-shot timer Xen on ARM refuses (EINVAL).
                    "xl-domu: ok poll 20 ms synchronized",
                    "xl-domu: ok Events::wait 20 ms",
                    "xl-domu: ok wallclock",
                    "xl-domu: ok singleshot timer",
                    "xl-domu: done",
                ],
                xenstore: toolstack_keys("cons", Value::Is("1"), "16384"),
                ..DomU::new("cons", "xl-domu")
            }],
            control: vec![],
        }
    }

    /// Two console domUs created one after the other and run together: domids 1 and 2, each with its own
    /// console ring and xenconsoled log, and a configuration line overriding a base one (`memory`).
    pub fn two() -> Scenario {
        let domu = |name: &'static str, domid: &'static str, memory: &'static str| DomU {
            config: vec![memory],
            console: vec![
                "xl-domu: hello from a domU started by xl",
                "xl-domu: ok store page given",
                "xl-domu: done",
            ],
            xenstore: toolstack_keys(
                name,
                Value::Is(domid),
                if memory.ends_with("32") {
                    "32768"
                } else {
                    "16384"
                },
            ),
            ..DomU::new(name, "xl-domu")
        };
        // The second has a disk and a vif: blkback and netback wait for their frontends (InitWait) once
        // the hotplug scripts ran, before the domU runs.
        let mut two = domu("two", "2", "memory = 32");
        two.disks = vec![Disk {
            vdev: "xvda",
            ram: 0,
        }];
        two.vifs = vec![Vif {
            mac: "00:16:3e:00:00:02",
        }];
        two.xenstore.extend([
            ("device/vif/0/state", Value::Is("1")),
            ("device/vif/0/mac", Value::Is("00:16:3e:00:00:02")),
            (VIF_BACKEND, Value::Is("2")),
            (VIF_HOTPLUG, Value::Is("connected")),
            ("device/vbd/51712/state", Value::Is("1")),
            ("device/vbd/51712/backend-id", Value::Is("0")),
            (VBD_BACKEND, Value::Is("2")),
            (VBD_HOTPLUG, Value::Is("connected")),
        ]);
        Scenario {
            name: "two",
            title: "two xl domUs at once, each with its own console ring and log; one has a disk and a vif; \
                    a third, waiting, ended by xl destroy and watched with xl console",
            blkback: "",
            netback: "",
            domus: vec![
                domu("one", "1", "memory = 16"),
                two,
                Scenario::waiting_domu(),
            ],
            control: vec![],
        }
    }

    /// The console domU run with [`WAIT_WORD`] on its command line: it prints its lines, then
    /// `waiting for xl destroy N` until dom0, watching it with `xl console`, ends it with `xl destroy`
    /// ([`DESTROY`]); `xl`'s log must say it was destroyed, not shut down.
    pub fn waiting_domu() -> DomU {
        let mut d = Scenario::console().domus.remove(0);
        d.name = "wait";
        d.config = vec![WAIT_EXTRA];
        d.console = vec![
            "xl-domu: hello from a domU started by xl",
            "xl-domu: burst waits = ",
            "xl-domu: waiting for xl destroy 0",
        ];
        d.xenstore = vec![("name", Value::Is("wait")), ("domid", Value::Is("3"))];
        d.shutdown = Shutdown::Destroyed;
        d.dom0 = vec![Step::Run(
            "xl console shows its lines; xl destroy ends it",
            DESTROY,
        )];
        d
    }

    /// The negative control: the console domU judged against wrong expectations (the ports swapped, a line
    /// it never prints, a crash where it powers off), and a second one kept after its poweroff
    /// (`on_poweroff="preserve"`) that dom0 gives up waiting for after 3 s, both built with their rings
    /// mapped Device (`wrong-attributes`): the judge must report exactly these on a real run.
    pub fn control() -> Scenario {
        let mut s = Scenario::console();
        let mut kept = s.domus[0].clone();
        kept.name = "kept";
        kept.config = vec!["on_poweroff = \"preserve\""];
        kept.xenstore = vec![("name", Value::Is("kept")), ("domid", Value::Is("2"))];
        kept.seconds = 3;
        s.domus.push(kept);
        let d = &mut s.domus[0];
        d.console.push("xl-domu: a line never printed");
        d.xenstore = vec![
            ("console/port", Value::Guest("STORE_EVTCHN")),
            ("store/port", Value::Guest("CONSOLE_EVTCHN")),
            ("name", Value::Is("cons")),
        ];
        d.shutdown = Shutdown::Crash;
        d.dom0 = vec![Step::Expect("/local/domain/0/domid", "7")];
        Scenario {
            name: "control",
            title: "negative control: wrong expectations and a domU that stays are each reported",
            blkback: "",
            netback: "",
            control: vec![
                "cons: no console line `xl-domu: a line never printed…`",
                "cons: xenstore console/port = 2, the domU's STORE_EVTCHN = 0x1 (1)",
                "cons: xenstore store/port = 1, the domU's CONSOLE_EVTCHN = 0x2 (2)",
                "cons: xl's log does not say it shut down with reason Crash (code 3)",
                "dom0: FAIL cons: /local/domain/0/domid = 7, got 0",
                "dom0: FAIL ended kept: still there after 3 s",
                "kept: no `ok ended kept` line",
                // The `wrong-attributes` build: the rings mapped Device.
                "cons: PAR_RING: Device-nGnRE, expected Normal Write-Back Inner Shareable",
                "cons: PAR_STORE: Device-nGnRE, expected Normal Write-Back Inner Shareable",
                "kept: PAR_RING: Device-nGnRE, expected Normal Write-Back Inner Shareable",
                "kept: PAR_STORE: Device-nGnRE, expected Normal Write-Back Inner Shareable",
            ],
            ..s
        }
    }

    /// The console domU built for 32-bit ARM (A32): a zImage libxl loads 0x8000 into the domU's RAM,
    /// making a 32-bit domain. Its parameters must be what `xl` wrote in xenstore, its page limit what
    /// `memory` gives.
    pub fn a32() -> Scenario {
        let mut s = Scenario::console();
        let d = &mut s.domus[0];
        d.name = "cons32";
        d.isa = Isa::A32;
        d.xenstore[0] = ("name", Value::Is("cons32"));
        s.domus.push(t32_domu());
        Scenario {
            name: "a32",
            title: "32-bit xl domUs, A32 and T32 (Thumb-2): console ring, parameters, page limit",
            blkback: "",
            netback: "",
            ..s
        }
    }

    /// xenstore against the real `xenstored` and a xenbus handshake with the real blkback
    /// (`guests/src/bin/xl_xenbus.rs`), with dom0 checking and prompting it meanwhile: values written,
    /// permissions set, a watch fired, a transaction made to conflict, a directory over one reply, the
    /// disk's size while connected, and the backend Closed after the teardown.
    pub fn xenbus() -> Scenario {
        Scenario {
            name: "xenbus",
            title: "xenstore against xenstored, and a xenbus handshake with blkback over a RAM disk",
            blkback: "",
            netback: "",
            domus: vec![DomU {
                console: vec![
                    "xl-xenbus: hello",
                    "xl-xenbus: ok shared info mapped",
                    "xl-xenbus: name = xb",
                    "xl-xenbus: ok write data/greeting, data/number, data/perm",
                    "xl-xenbus: ok set_perms data/perm n<domid>,r0 read back",
                    "xl-xenbus: ok directory data lists greeting, number, perm",
                    "xl-xenbus: ok read data/missing is ENOENT",
                    "xl-xenbus: ok write dom0's /local/domain/0/data/probe is EACCES",
                    "xl-xenbus: ok write /tool/probe is EACCES",
                    "xl-xenbus: ok watch data/go",
                    "xl-xenbus: ok watch event during a request",
                    "xl-xenbus: ok transaction commits data/number2 = 12346",
                    "xl-xenbus: ok transaction conflict: EAGAIN, run again: Ok, attempts 2",
                    "xl-xenbus: ok directory data/big (over 4096 bytes) is E2BIG",
                    "xl-xenbus: ok directory_part data/big: 120 names",
                    "xl-xenbus: ok an unanswered wait ends with ETIMEDOUT at its deadline",
                    "xl-xenbus: vbd 51712: backend /local/domain/0/backend/vbd/1/51712 in d0",
                    "xl-xenbus: ok backend InitWait",
                    "xl-xenbus: ok blkif ring of 32 slots",
                    "xl-xenbus: ok ring-ref, event-channel, protocol written; Initialised",
                    "xl-xenbus: ok backend Connected",
                    "xl-xenbus: sectors = 8192",
                    "xl-xenbus: sector-size = 512",
                    "xl-xenbus: info = 0",
                    "xl-xenbus: ok Connected",
                    "xl-xenbus: ok dom0 checked the connected backend",
                    "xl-xenbus: ok closed: Closing, Closed; the backend Closed",
                    "xl-xenbus: ok the ring page's grant ended",
                    "xl-xenbus: ok dom0 checked the closed backend",
                    "xl-xenbus: ok stack",
                    "xl-xenbus: done",
                ],
                xenstore: [
                    [("name", Value::Is("xb")), ("domid", Value::Guest("DOMID"))],
                    vbd_init_wait(),
                ]
                .concat(),
                disks: vec![Disk {
                    vdev: "xvda",
                    ram: 0,
                }],
                dom0: vec![
                    Step::Fill("data/big", 120),
                    Step::Write("data/big-ready", "1"),
                    Step::Await("data/ready", "1"),
                    Step::Expect("data/greeting", "hello from xl-xenbus"),
                    Step::Expect("data/number", "12345"),
                    Step::Perms("data", "perm", "n1,r0"),
                    Step::Await("data/watching", "1"),
                    Step::Write("data/go", "1"),
                    Step::Await("data/tx-signal", "1"),
                    Step::Write("data/conflict", "dom0"),
                    Step::Await("data/conflict", "domU 2"),
                    Step::Await("data/vbd", "connected"),
                    Step::Expect(VBD_BACKEND, "4"),
                    Step::Expect(VBD_SECTORS, RAM_DISK_SECTORS),
                    Step::Expect(VBD_SECTOR_SIZE, "512"),
                    Step::Expect("device/vbd/51712/state", "4"),
                    Step::Write("data/vbd-checked", "1"),
                    Step::Await("data/vbd", "closed"),
                    Step::Expect(VBD_BACKEND, "6"),
                    Step::Expect("device/vbd/51712/state", "6"),
                    Step::Write("data/vbd-checked", "2"),
                ],
                ..DomU::new("xb", "xl-xenbus")
            }],
            control: vec![],
        }
    }

    /// [`xenbus`](Scenario::xenbus) with the domU built for 32-bit ARM (A32).
    pub fn xenbus32() -> Scenario {
        let mut s = Scenario::xenbus();
        let d = &mut s.domus[0];
        d.name = "xb32";
        d.isa = Isa::A32;
        d.xenstore[0] = ("name", Value::Is("xb32"));
        for l in &mut d.console {
            if *l == "xl-xenbus: name = xb" {
                *l = "xl-xenbus: name = xb32";
            }
        }
        Scenario {
            name: "xenbus32",
            title: "the xenbus scenario's domU built for 32-bit ARM (A32)",
            blkback: "",
            netback: "",
            ..s
        }
    }

    /// The network domU (`guests/src/bin/xl_net.rs`): the library's network frontend on netback, its vif
    /// on dom0's bridge. One boot: dom0 pings it (20 echoes, then 5 of 1472 bytes, every reply required),
    /// exchanges UDP datagrams of many sizes with it both ways (every payload made and compared by dom0,
    /// [`UDP_CHECK`]), then detaches its vif with `xl network-detach`: the domU must report the backend
    /// gone, close handing every page back, and power off. The domU refuses a frame larger than the MTU.
    pub fn net() -> Scenario {
        Scenario {
            name: "net",
            title: "network frontend on netback: ARP, ping, UDP of many sizes both ways, TCP, detach; two queues",
            blkback: "",
            netback: NETBACK_TWO_QUEUES,
            domus: vec![
                DomU {
                    console: vec![
                        "xl-net: ok connected: 00:16:3e:00:00:02, mtu 1500",
                        "xl-net: ok md5: RFC 1321's test digests",
                        "xl-net: ok tcp sum check",
                        "xl-net: ok too large refused: frame of 1515 bytes is larger than 1514",
                        "xl-net: ok tcp from dom0: 2097152 bytes, md5 ",
                        "xl-net: ok checksums",
                        "xl-net: ok answered",
                        "xl-net: ok tcp: 2 transfers from dom0 (1 matching its md5), 1 to dom0",
                        "xl-net: ok backend gone",
                        "xl-net: ok frames across a page end",
                        "xl-net: ok no transmit errors",
                        "xl-net: ok blank checksums filled",
                        "xl-net: ok tcp in GSO segments",
                        "xl-net: ok send after detach: backend gone",
                        "xl-net: ok closed: backend closed 1",
                        "xl-net: ok stack",
                        "xl-net: done",
                    ],
                    xenstore: vec![
                        ("device/vif/0/state", Value::Is("1")),
                        ("device/vif/0/mac", Value::Is("00:16:3e:00:00:02")),
                        (VIF_BACKEND, Value::Is("2")),
                        (VIF_HOTPLUG, Value::Is("connected")),
                    ],
                    seconds: 80,
                    vifs: vec![Vif {
                        mac: "00:16:3e:00:00:02",
                    }],
                    dom0: net_steps(
                        &[
                            Step::Run(
                                "ping: 20 echoes, all answered",
                                "ping -c 20 -A -W 5 169.254.1.2 > /tmp/ping; r=$?; cat /tmp/ping; [ $r = 0 ] && grep -q ' 20 packets received' /tmp/ping",
                            ),
                            PING_1472,
                            Step::Run(
                                "udp: 16 sizes both ways, every payload checked",
                                "udp-check 169.254.1.2 1 2 17 18 64 100 333 500 999 1000 1024 1200 1400 1471 1472 1472",
                            ),
                            // Negative controls: a pattern the domU does not send, and an address nobody
                            // has, must each fail the check that passed above.
                            Step::Run(
                                "udp: a payload other than expected is caught",
                                "! SHIFT=1 udp-check 169.254.1.2 100",
                            ),
                            Step::Run(
                                "ping: an address nobody has is not all answered",
                                "! ping -c 2 -W 2 169.254.1.9",
                            ),
                        ],
                        // TCP with the domU's TCP/IP stack: 2 MiB each way.
                        TCP_BYTES,
                    ),
                    ..DomU::new("net", "xl-net")
                },
                netmq_domu(),
            ],
            control: vec![],
        }
    }

    /// The network domU built for 32-bit ARM (A32), in a shorter run of its own: ping, UDP of a few sizes
    /// both ways, 1 MiB of TCP each way (with the mismatch the domU must catch), the detach.
    pub fn net32() -> Scenario {
        let mut s = Scenario::net();
        let d = &mut s.domus[0];
        d.name = "net32";
        d.isa = Isa::A32;
        d.console.retain(|l| !l.starts_with("xl-net: ok tcp"));
        d.console
            .push("xl-net: ok tcp from dom0: 1048576 bytes, md5 ");
        d.console
            .push("xl-net: ok tcp: 2 transfers from dom0 (1 matching its md5), 1 to dom0");
        d.dom0 = net_steps(
            &[
                PING_1472,
                Step::Run(
                    "udp: 4 sizes both ways, every payload checked",
                    "udp-check 169.254.1.2 1 333 1400 1472",
                ),
            ],
            1024 * 1024,
        );
        let mq = &mut s.domus[1];
        mq.name = "netmq32";
        mq.isa = Isa::A32;
        Scenario {
            name: "net32",
            title: "the network domUs built for 32-bit ARM (A32): ping, UDP, TCP each way, detach; two queues",
            ..s
        }
    }

    /// Every scenario.
    pub fn all() -> Vec<Scenario> {
        vec![
            Scenario::console(),
            Scenario::two(),
            Scenario::control(),
            Scenario::a32(),
            Scenario::xenbus(),
            Scenario::xenbus32(),
            Scenario::net(),
            Scenario::net32(),
            Scenario::blk(),
            Scenario::blkdev(),
        ]
    }

    /// The block benchmark's run (`cargo bench --bench blk`, not among [`Scenario::all`]): the frontend's
    /// workloads
    /// (`xl_blk.rs`'s `bench_run`) on a RAM disk, and blkback's interrupt count for the disk (the
    /// notifications it received) read by dom0 before the frontend disconnects; then the same workloads
    /// with `dd` in a Linux domU (dom0's own kernel, `xen-blkfront`) on a second RAM disk of the same size,
    /// started by dom0 once the first is done.
    pub fn blkbench() -> Scenario {
        Scenario {
            name: "blkbench",
            title: "block benchmark: the frontend's workloads and blkback's interrupts",
            blkback: "",
            netback: "",
            domus: vec![
                DomU {
                    console: vec![
                        "xl-blk: ok connected",
                        "xl-blk: bench seq-write-1m",
                        "xl-blk: done",
                    ],
                    seconds: 120,
                    disks: vec![Disk {
                        vdev: "xvda",
                        ram: 0,
                    }],
                    dom0: vec![
                        // The Linux domU boots first, so that it is idle while this one runs.
                        Step::Shell(
                            "the Linux domU is up",
                            "wait_for 150 grep -q 'linux-blk: xvda' /var/log/xen/console/guest-linux.log",
                        ),
                        Step::Write("data/disk-ready", "1"),
                        Step::Await("data/bench-done", "1"),
                        Step::Shell(
                            "blkback interrupts",
                            "grep blkif /proc/interrupts; grep . /sys/bus/xen-backend/devices/vbd-$D-51712/statistics/*",
                        ),
                        Step::Write("data/bench-ack", "1"),
                        Step::Await("data/blk-done", "1"),
                        Step::Write("data/blk-ack", "1"),
                        // Then Linux's turn.
                        Step::Shell(
                            "GO for the Linux domU",
                            "sleep 2; grep blkif /proc/interrupts; printf GO | dd of=/dev/ram1 bs=512 seek=8191 conv=notrunc && sync",
                        ),
                    ],
                    ..DomU::new("blkbench", "xl-blk")
                },
                DomU {
                    config: vec![
                        "kernel = \"/domu/linux.Image\"",
                        "ramdisk = \"/domu/linux-initrd.gz\"",
                        "extra = \"console=hvc0 rdinit=/init quiet\"",
                        "memory = 128",
                    ],
                    console: vec!["linux-blk: bench seq-write-1m", "linux-blk: done"],
                    seconds: 300,
                    disks: vec![Disk {
                        vdev: "xvda",
                        ram: 1,
                    }],
                    dom0: vec![Step::Shell(
                        "blkback interrupts for Linux",
                        "wait_for 290 grep -q 'linux-blk: done' /var/log/xen/console/guest-linux.log; \
                     grep blkif /proc/interrupts; grep . /sys/bus/xen-backend/devices/vbd-$D-51712/statistics/*",
                    )],
                    // Not run: the configuration's `kernel` is Linux's (an image is built all the same).
                    ..DomU::new("linux", "xl-blk")
                },
            ],
            control: vec![],
        }
    }

    /// The block frontend (`guests/src/bin/xl_blk.rs`, `xen::blkfront`) against Linux's blkback, four
    /// domUs on four RAM disks filled by dom0: `blk` (multi-page ring, indirect and persistent grants as
    /// offered), `blk32` (the same, a 32-bit A32 domain) and `blk1` (one ring page, direct requests, no
    /// `feature-persistent`) read everything and
    /// check it, write [`BLK_REGIONS`], flush, read past the end, close; dom0 then compares each disk
    /// with the image it builds itself (`cmp`, `md5sum`). `blkdet` (one ring page, which leaves dom0's memory
    /// room: blkback sets aside about 45 KiB per ring slot) reads until dom0's `xl block-detach`
    /// takes its disk away: a clear error, no hang, and every page handed back or accounted for.
    pub fn blk() -> Scenario {
        // dom0 builds both images once (the disks' first content, and what they must hold after the
        // domUs' writes) and fills both disks; `blk1`'s steps wait for that.
        const FILL: &str = "blk-pattern 8192 > /tmp/p && dd if=/tmp/p of=/dev/ram0 bs=65536 && \
            dd if=/tmp/p of=/dev/ram1 bs=65536 && dd if=/tmp/p of=/dev/ram3 bs=65536 && sync && \
            echo 3 > /proc/sys/vm/drop_caches && \
            blk-pattern 8192 1 1 3 97 200 89 511 300 4000 177 8191 1 > /tmp/e && md5sum /tmp/p /tmp/e && \
            touch /tmp/filled";
        // A domU that reads its disk `/dev/ram<ram>` and writes it, after dom0's `setup`; dom0 then
        // compares the disk with the image it built.
        let checked = |name: &'static str,
                       ram: u32,
                       using: &'static str,
                       setup: &[Step],
                       during: &[Step]| {
            let check = format!(
                "sync; echo 3 > /proc/sys/vm/drop_caches; md5sum /dev/ram{ram} && cmp /tmp/e /dev/ram{ram}"
            );
            DomU {
                console: vec![
                    "xl-blk: ok connected",
                    BLKBACK_OFFERS_ALL,
                    using,
                    "xl-blk: ok read the whole disk",
                    "xl-blk: ok wrote the regions",
                    "xl-blk: ok flush",
                    "xl-blk: ok read back",
                    "xl-blk: ok past the end",
                    "xl-blk: ok closed",
                    "xl-blk: ok stack",
                    "xl-blk: done",
                ],
                xenstore: vbd_init_wait().to_vec(),
                seconds: 120,
                disks: vec![Disk { vdev: "xvda", ram }],
                dom0: blk_steps(
                    setup,
                    during,
                    Step::Shell(
                        "the disk is dom0's expected image",
                        Box::leak(check.into_boxed_str()),
                    ),
                ),
                ..DomU::new(name, "xl-blk")
            }
        };
        let wait_fill = Step::Shell("waited for the fill", "wait_for 120 test -f /tmp/filled");
        let blk = checked(
            "blk",
            0,
            BLK_USING_ALL,
            &[
                Step::Shell(
                    "blkback parameters",
                    "grep . /sys/module/xen_blkback/parameters/*",
                ),
                Step::Shell("filled the disks", FILL),
            ],
            // A RAM disk has no write cache: blkback offered no flush, and none reached it (the negative
            // control of `blkflush`'s count), read while the disk is connected (blkback's counters go
            // with its rings when the frontend closes).
            &[
                Step::Await("data/stats-ready", "1"),
                Step::Shell("no flush reached blkback", FLUSHES_ZERO),
                Step::Write("data/stats-read", "1"),
            ],
        );
        // The same run as `blk` from a 32-bit (A32) domain.
        let blk32 = DomU {
            isa: Isa::A32,
            ..checked("blk32", 3, BLK_USING_ALL, &[wait_fill], &[])
        };
        let det = DomU {
            console: vec![
                "xl-blk: ok connected",
                "xl-blk: ok detached",
                "xl-blk: ok closed",
                "xl-blk: ok stack",
                "xl-blk: done",
            ],
            xenstore: vec![(VBD_BACKEND, Value::Is("2"))],
            seconds: 120,
            disks: vec![Disk {
                vdev: "xvda",
                ram: 2,
            }],
            dom0: vec![
                Step::Write("data/disk-ready", "1"),
                Step::Await("data/blk-reading", "1"),
                Step::Shell("xl block-detach", "timeout 40 xl block-detach blkdet xvda"),
                Step::Write("data/blk-ack", "1"),
            ],
            ..DomU::new("blkdet", "xl-blk")
        };
        Scenario {
            name: "blk",
            title: "the block frontend on blkback: every byte checked by dom0, errors, block-detach",
            blkback: "",
            netback: "",
            domus: vec![
                blk,
                checked(
                    "blk1",
                    1,
                    "xl-blk: using: ring order 0 (32 slots), segments/request 11, persistent 0",
                    &[wait_fill],
                    &[],
                ),
                det,
                blk32,
            ],
            control: vec![],
        }
    }

    /// The block frontend on disks that are not RAM disks, in a boot of their own (with the six disks
    /// in one boot dom0's 192 MiB ran out: blkback sets aside about 45 KiB per ring slot): `blkflush`, the
    /// run of `blk` on [`FLUSH_DISK`] (a loop device over a tmpfs file, with a write cache and discard),
    /// whose flushes blkback must be offered and receive and whose discard must read back as zeros;
    /// `blkerr` on [`FAILING_DISK`], whose failing sectors must give typed I/O errors while everything
    /// around them reads and writes, as dom0 checks in the file beneath. blkback is loaded with
    /// [`BLKBACK_FEATURES_OFF`]: both run the frontend's defaults on a one-page ring without persistent
    /// grants, the backend's choice (`blk1` runs them as the frontend's).
    pub fn blkdev() -> Scenario {
        // The frontend's defaults on a backend loaded with [`BLKBACK_FEATURES_OFF`]: one ring page, no
        // persistent grants, indirect requests all the same.
        const BLK_USING_FEW: &str =
            "xl-blk: using: ring order 0 (32 slots), segments/request 64, persistent 0";
        // dom0 builds both images (as `blk` does) and fills both files; `blkerr`'s steps wait for that.
        const FILL_FILES: &str = "blk-pattern 8192 > /tmp/p \
            && dd if=/tmp/p of=/run/blkflush.img bs=65536 conv=notrunc \
            && dd if=/tmp/p of=/run/blkerr.img bs=65536 conv=notrunc \
            && blk-pattern 8192 1 1 3 97 200 89 511 300 4000 177 8191 1 > /tmp/e && md5sum /tmp/p /tmp/e \
            && touch /tmp/filled";
        // The same run as `blk` on a disk with a write cache: the flush is offered, sent and done, and a
        // discard reads back as zeros. (Its declared RAM disk, unused, makes dom0 load the disk modules:
        // the `disk` line overrides the target.)
        let mut flush = Scenario::blk().domus.remove(0);
        flush.name = "blkflush";
        flush.config = vec![FLUSH_DISK_LINE];
        flush.console[1..3].copy_from_slice(&[BLKBACK_OFFERS_FEW, BLK_USING_FEW]);
        flush.console.insert(6, "xl-blk: ok flush sent");
        flush.console.insert(7, "xl-blk: ok discard");
        flush
            .console
            .insert(8, "xl-blk: ok discarded sectors read as zeros");
        flush.dom0 = blk_steps(
            &[
                Step::Shell("filled the files", FILL_FILES),
                Step::Expect(VBD_FLUSH, "1"),
                Step::Expect(VBD_DISCARD, "1"),
            ],
            &[
                Step::Await("data/stats-ready", "1"),
                Step::Shell("two flushes reached blkback", FLUSHES_TWO),
                Step::Shell("one discard reached blkback", DISCARDS_ONE),
                Step::Write("data/stats-read", "1"),
            ],
            Step::Shell(
                "the file is dom0's expected image, zeros where discarded",
                DISCARDED_CHECK,
            ),
        );
        // A disk that fails in the middle: the error, and nothing lost or changed around it.
        let failing = DomU {
            config: vec![FAILING_DISK_LINE],
            console: vec![
                "xl-blk: ok connected",
                BLKBACK_OFFERS_FEW,
                BLK_USING_FEW,
                "xl-blk: ok read around the failing sectors",
                "xl-blk: ok failing read",
                "xl-blk: ok failing read across its start",
                "xl-blk: ok failing write",
                "xl-blk: ok wrote the regions",
                "xl-blk: ok read back the regions",
                "xl-blk: ok still connected",
                "xl-blk: ok closed",
                "xl-blk: ok stack",
                "xl-blk: done",
            ],
            xenstore: vbd_init_wait().to_vec(),
            seconds: 120,
            disks: flush.disks.clone(),
            dom0: blk_steps(
                &[Step::Shell(
                    "the failing disk fails in dom0 just there",
                    FAILING_CHECK,
                )],
                &[],
                Step::Shell(
                    "the file is dom0's expected image (the failing write did not land)",
                    "sync; md5sum /run/blkerr.img && cmp /tmp/e /run/blkerr.img",
                ),
            ),
            ..DomU::new("blkerr", "xl-blk")
        };
        Scenario {
            name: "blkdev",
            title: "the block frontend on a loop device (flush, discard) and on a disk with failing sectors, \
                    on a blkback that offers one ring page and no persistent grants",
            blkback: BLKBACK_FEATURES_OFF,
            netback: "",
            domus: vec![flush, failing],
            control: vec![],
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// dom0's /init and the initramfs
// ---------------------------------------------------------------------------------------------------

/// The `/init` script of dom0 for `scenario`: mounts, modules, xenfs, xenstored, `xen-init-dom0`,
/// xenconsoled; each domU created paused, its xenstore values read, all unpaused, each waited for (at most
/// its [`DomU::seconds`]), then their console logs and `xl`'s logs printed; dom0 powers off. Every wait is
/// bounded; each step prints `ok STEP` or `FAIL STEP: …` after [`MARK`].
pub fn init_script(scenario: &Scenario) -> String {
    let disk_modules = match scenario.ram_disks() {
        0 => String::new(),
        n => format!(
            "insmod $K/{brd}.ko rd_nr={n} rd_size={kib} && insmod $K/{blkback}.ko {params} && ok \"disk modules: {n} RAM disk(s)\" \
             || {{ fail \"disk modules\"; finish; }}\n",
            brd = DISK_MODULES[0],
            blkback = DISK_MODULES[1],
            params = scenario.blkback,
            kib = RAM_DISK_MIB * 1024,
        ),
    };
    let net_modules = if scenario.has_vifs() {
        let insmods: Vec<String> = NET_MODULES
            .iter()
            .map(|m| match *m {
                NETBACK_MODULE => format!("insmod $KN/{m}.ko {}", scenario.netback)
                    .trim_end()
                    .to_string(),
                _ => format!("insmod $KN/{m}.ko"),
            })
            .collect();
        format!(
            "KN=/lib/modules/$(uname -r)/kernel\n{} && brctl addbr {BRIDGE} && echo 0 > /sys/class/net/{BRIDGE}/bridge/forward_delay \
             && ip addr add {DOM0_IP}/16 dev {BRIDGE} && ip link set {BRIDGE} up && ok \"net modules: bridge {BRIDGE} at {DOM0_IP}\" \
             || {{ fail \"net modules\"; finish; }}\n",
            insmods.join(" && ")
        )
    } else {
        String::new()
    };
    let mut s = init_prelude(
        &format!(
            "dom0's /init for the scenario `{}` (written by `cargo xtask xl`).",
            scenario.name
        ),
        MARK.trim_end(),
        &format!("{disk_modules}{net_modules}"),
    );
    if scenario.domus.iter().any(|d| {
        d.config
            .iter()
            .any(|l| l.contains(FLUSH_DISK) || l.contains(FAILING_DISK))
    }) {
        let _ = writeln!(
            s,
            "if {{ {DISK_SETUP}\n}} > /tmp/disk-setup.log 2>&1; then ok \"disk set-up: {FLUSH_DISK}, {FAILING_DISK}\"; \
             else fail \"disk set-up\"; fi; show /tmp/disk-setup.log"
        );
    }
    for d in &scenario.domus {
        let n = d.name;
        let _ = write!(
            s,
            r#"echo "$M creating {n}: $(cut -d' ' -f1 /proc/uptime) s"
if timeout 30 xl create -p /etc/xen/{n}.cfg > /tmp/{n}.create 2>&1; then
  D=$(timeout 10 xl domid {n})
  ok "create {n}: domid $D, $(cut -d' ' -f1 /proc/uptime) s"
  echo "$M begin xenstore {n}"
"#
        );
        for (path, _) in &d.xenstore {
            let p = quote(path);
            let _ = writeln!(
                s,
                "  v=$(timeout 10 xenstore-read {full} 2>&1) && echo \"$M xenstore {n} \"{p}\" = $v\" || fail \"xenstore-read {n} \"{p}\": $v\"",
                full = if path.starts_with('/') {
                    format!("\"{path}\"")
                } else {
                    format!("\"/local/domain/$D/\"{p}")
                }
            );
        }
        let _ = write!(
            s,
            r#"  echo "$M end xenstore {n}"
else
  fail "create {n}"
  show /tmp/{n}.create
fi
"#
        );
    }
    for d in &scenario.domus {
        let n = d.name;
        let _ = writeln!(
            s,
            "timeout 15 xl unpause {n} > /tmp/{n}.unpause 2>&1 && ok \"unpause {n}\" || {{ fail \"unpause {n}\"; show /tmp/{n}.unpause; }}"
        );
    }
    // Every wait for a domU (its steps' awaits, its end) ends at one deadline, its `seconds` after the
    // unpause: a hung domU leaves room for the console logs within the boot's time-out.
    let _ = writeln!(
        s,
        "echo \"$M domUs running: $(cut -d' ' -f1 /proc/uptime) s\"\n\
         START=$(cut -d. -f1 /proc/uptime)\n\
         # left SECONDS: what is left of SECONDS after the unpause (at least 1).\n\
         left() {{ r=$((START + $1 - $(cut -d. -f1 /proc/uptime))); [ $r -gt 0 ] && echo $r || echo 1; }}"
    );
    // What dom0 does while the domUs run: one background job per domU with steps, waited for at the end
    // (every step is bounded).
    s.push_str("JOBS=\n");
    for d in scenario.domus.iter().filter(|d| !d.dom0.is_empty()) {
        let n = d.name;
        let _ = writeln!(s, "(\n  D=$(timeout 10 xl domid {n})");
        for step in &d.dom0 {
            s.push_str(&step.script(n, d.seconds));
        }
        s.push_str(") &\nJOBS=\"$JOBS $!\"\n");
    }
    for d in &scenario.domus {
        let n = d.name;
        let _ = write!(
            s,
            r#"if wait_for $(left {secs}) gone {n}; then
  ok "ended {n}: $(cut -d' ' -f1 /proc/uptime) s"
else
  fail "ended {n}: still there after {secs} s: $(timeout 10 xl list {n} 2>&1 | tail -1)"
  timeout 15 xl destroy {n}
fi
"#,
            secs = d.seconds
        );
    }
    // The consoles are whole once the domUs are gone: printed before dom0's last steps, which a hung domU
    // can keep busy until their own bounds.
    for d in &scenario.domus {
        let n = d.name;
        let _ = write!(
            s,
            r#"echo "$M begin console {n}"
sed "s/^/$M console {n}| /" /var/log/xen/console/guest-{n}.log || fail "no console log for {n}"
echo "$M end console {n}"
"#
        );
    }
    s.push_str("for j in $JOBS; do wait $j; done\n");
    for d in &scenario.domus {
        let n = d.name;
        let _ = write!(
            s,
            r#"echo "$M begin xl-log {n}"
sed "s/^/$M xl-log {n}| /" /var/log/xen/xl-{n}.log
echo "$M end xl-log {n}"
"#
        );
    }
    s.push_str("finish\n");
    s
}

/// The images of a scenario's domUs, as flat images: each guest binary built for AArch64
/// (position-independent, as an arm64 `Image` it relocates itself wherever `xl` loads it) or for A32 (a
/// zImage linked where libxl loads it, see `guests/build.rs`).
///
/// A negative control's domUs are the `wrong-attributes` build (the regions Xen shares pages through
/// mapped Device): the MMU attribute checks must report their rings.
pub fn build_domus(scenario: &Scenario) -> Result<BTreeMap<&'static str, Vec<u8>>> {
    let (dir, features): (_, &[&str]) = if scenario.control.is_empty() {
        (util::target_dir().join("guests"), &[])
    } else {
        (
            util::target_dir().join("guests-wrong-attributes"),
            &["wrong-attributes"],
        )
    };
    let mut isas: Vec<Isa> = Vec::new();
    for d in scenario.domus.iter().filter(|d| d.bin != LINUX) {
        if !isas.contains(&d.isa) {
            isas.push(d.isa);
        }
    }
    for &isa in &isas {
        let g = guest(isa);
        util::cross_build(
            &isa_dir(&dir, isa),
            "xen-hypercall-guests",
            g.target(),
            "s",
            g.rustflags(),
            features,
        )?;
    }
    let mut images = BTreeMap::new();
    for d in scenario.domus.iter().filter(|d| d.bin != LINUX) {
        let elf = isa_dir(&dir, d.isa)
            .join(guest(d.isa).target())
            .join("release")
            .join(d.bin);
        let data = std::fs::read(&elf).with_context(|| format!("reading {}", elf.display()))?;
        if d.isa != Isa::A64 {
            use object::Object as _;
            let entry = object::File::parse(&*data)
                .with_context(|| format!("reading {}", elf.display()))?
                .entry();
            if entry != A32_DOMU_ENTRY {
                bail!(
                    "{} is linked at {entry:#x}, not {A32_DOMU_ENTRY:#x} where libxl loads a domU's zImage: \
                     give it the domU load base in guests/build.rs",
                    elf.display()
                );
            }
        }
        images.insert(d.name, xen::flat_image(&data)?);
    }
    Ok(images)
}

/// Where the domUs of `isa` are built: T32 (the same Rust target as A32, other code-generation flags) in
/// its own directory, so that an A32 and a T32 build do not overwrite each other.
fn isa_dir(dir: &Path, isa: Isa) -> PathBuf {
    match isa {
        Isa::T32 => {
            let mut name = dir.as_os_str().to_owned();
            name.push("-t32");
            PathBuf::from(name)
        }
        _ => dir.to_path_buf(),
    }
}

/// The guest build of `isa` (inline stubs, no control).
fn guest(isa: Isa) -> xen::Guest {
    xen::Guest {
        isa,
        outline: false,
        underdeclared: false,
    }
}

/// Writes the scenario's gzip'd initramfs (the unpacked packages, the modules, `/init`, each domU's image
/// and config); returns its path.
pub fn initramfs(scenario: &Scenario, dom0: &Dom0) -> Result<PathBuf> {
    let images = build_domus(scenario)?;
    let disks = scenario.ram_disks() > 0;
    let vifs = scenario.has_vifs();
    let wanted: Vec<String> = MODULES
        .iter()
        .chain(DISK_MODULES.iter().filter(|_| disks))
        .map(|m| format!("drivers/{m}"))
        .chain(NET_MODULES.iter().filter(|_| vifs).map(|m| m.to_string()))
        .collect();
    let mut cpio = base_cpio(dom0, wanted.iter().map(String::as_str))?;
    cpio.file("init", 0o755, init_script(scenario).as_bytes());
    cpio.file(
        &format!("etc/xen/scripts/{BLOCK_SCRIPT_NAME}"),
        0o755,
        BLOCK_SCRIPT.as_bytes(),
    );
    cpio.file(
        &format!("etc/xen/scripts/{VIF_SCRIPT_NAME}"),
        0o755,
        VIF_SCRIPT.as_bytes(),
    );
    cpio.file("usr/bin/blk-pattern", 0o755, BLK_PATTERN.as_bytes());
    if scenario
        .domus
        .iter()
        .any(|d| d.config.iter().any(|l| l.contains(LINUX_KERNEL)))
    {
        let image = std::fs::read(&dom0.kernel).context("the Linux domU's kernel")?;
        cpio.file(LINUX_KERNEL, 0o644, &image);
        cpio.file(LINUX_INITRD, 0o644, &linux_domu_initrd(dom0)?);
    }
    cpio.file("bin/udp-check", 0o755, UDP_CHECK.as_bytes());
    for d in &scenario.domus {
        cpio.file(
            &format!("etc/xen/{}.cfg", d.name),
            0o644,
            d.config_file().as_bytes(),
        );
        if d.bin == LINUX {
            // A Linux domU: dom0's own kernel, and an initramfs of its own.
            let image = std::fs::read(&dom0.kernel)
                .with_context(|| format!("{}", dom0.kernel.display()))?;
            cpio.file(&format!("domu/{}.bin", d.name), 0o644, &image);
            cpio.file(
                &format!("domu/{}.initrd", d.name),
                0o644,
                &linux_initramfs(dom0)?,
            );
            continue;
        }
        cpio.file(&format!("domu/{}.bin", d.name), 0o644, &images[d.name]);
    }
    let out = dir().join(format!("initramfs-{}.cpio.gz", scenario.name));
    std::fs::write(&out, gzip(&cpio.finish())?)
        .with_context(|| format!("writing {}", out.display()))?;
    Ok(out)
}

// ---------------------------------------------------------------------------------------------------
// Booting and judging
// ---------------------------------------------------------------------------------------------------

/// The harness's lines (what follows [`MARK`]; anything Xen printed before it on the same line is
/// dropped).
pub fn harness_lines(output: &str) -> Vec<&str> {
    marked_lines(output, MARK)
}

/// The lines of domU `name`'s console log, as dom0 printed them.
pub fn console_lines<'a>(output: &'a str, name: &str) -> Vec<&'a str> {
    let tag = format!("console {name}| ");
    harness_lines(output)
        .into_iter()
        .filter_map(|l| l.strip_prefix(tag.as_str()))
        .collect()
}

/// The lines of `xl`'s log of domU `name` (its monitor's: the shutdown reason, the action taken).
pub fn xl_log_lines<'a>(output: &'a str, name: &str) -> Vec<&'a str> {
    let tag = format!("xl-log {name}| ");
    harness_lines(output)
        .into_iter()
        .filter_map(|l| l.strip_prefix(tag.as_str()))
        .collect()
}

/// The xenstore value dom0 read for `path` of domU `name`.
pub fn xenstore_value<'a>(output: &'a str, name: &str, path: &str) -> Option<&'a str> {
    let tag = format!("xenstore {name} {path} = ");
    harness_lines(output)
        .into_iter()
        .find_map(|l| l.strip_prefix(tag.as_str()))
}

/// A number as the guest prints it (`0x…` hexadecimal, or decimal).
fn number(s: &str) -> Option<u64> {
    let s = s.trim();
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// The number domU `name` printed as `KEY = NUMBER`.
pub fn guest_value(output: &str, name: &str, key: &str) -> Option<u64> {
    let tag = format!("{key} = ");
    console_lines(output, name).into_iter().find_map(|l| {
        let at = l.find(&tag)?;
        // The key must be a whole word.
        let before = l[..at].chars().last();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            return None;
        }
        number(&l[at + tag.len()..])
    })
}

/// The dom0 steps every scenario must report as `ok`.
pub const STEPS: [&str; 5] = [
    "modules",
    "xenfs",
    "xenstored",
    "xen-init-dom0",
    "xenconsoled",
];

/// Judges a scenario's boot on the `build` Xen: one problem per missing or wrong thing.
pub fn judge(scenario: &Scenario, output: &str, timed_out: bool, build: XenBuild) -> Vec<String> {
    let mut problems = Vec::new();
    if timed_out {
        problems.push(format!(
            "timed out after {} s before dom0 powered off",
            TIMEOUT.as_secs()
        ));
    }
    if let Some(l) = crash_line(output) {
        problems.push(format!("crash: {}", l.trim()));
    }
    let flag = build.banner_flag();
    if !output
        .lines()
        .any(|l| l.contains("Xen version") && l.contains(flag))
    {
        problems.push(format!("Xen's banner does not say {flag}"));
    }
    let lines = harness_lines(output);
    let has = |prefix: &str| lines.iter().any(|l| l.starts_with(prefix));
    if lines.is_empty() {
        problems.push("dom0's /init printed nothing".into());
    }
    for step in STEPS {
        if !has(&format!("ok {step}")) {
            problems.push(format!("dom0: no `ok {step}` line"));
        }
    }
    for l in lines.iter().filter(|l| l.starts_with("FAIL")) {
        problems.push(format!("dom0: {l}"));
    }
    if scenario.ram_disks() > 0 && !has("ok disk modules") {
        problems.push("dom0: no `ok disk modules` line".into());
    }
    if scenario.has_vifs() && !has("ok net modules") {
        problems.push("dom0: no `ok net modules` line".into());
    }
    for d in &scenario.domus {
        let n = d.name;
        for label in d.dom0.iter().filter_map(Step::label) {
            if !has(&format!("ok {n}: {label}")) && !has(&format!("FAIL {n}: {label}")) {
                problems.push(format!("{n}: dom0 step `{label}` did not run"));
            }
        }
        for step in ["create", "unpause", "ended"] {
            if !has(&format!("ok {step} {n}")) {
                problems.push(format!("{n}: no `ok {step} {n}` line"));
            }
        }
        let console = console_lines(output, n);
        for want in &d.console {
            if !console.iter().any(|l| l.starts_with(want)) {
                problems.push(format!("{n}: no console line `{want}…`"));
            }
        }
        let reason = format!("has shut down, reason code {} ", d.shutdown as u8);
        let xl_log = xl_log_lines(output, n);
        if d.shutdown == Shutdown::Destroyed {
            problems.extend(
                destroy_problems(&xl_log)
                    .into_iter()
                    .map(|p| format!("{n}: {p}")),
            );
        } else if !xl_log.iter().any(|l| l.contains(&reason)) {
            problems.push(format!(
                "{n}: xl's log does not say it shut down with reason {:?} (code {}): {}",
                d.shutdown,
                d.shutdown as u8,
                xl_log
                    .iter()
                    .find(|l| l.contains("has shut down"))
                    .unwrap_or(&"no shutdown line")
            ));
        }
        for l in console.iter().filter(|l| l.contains("FAIL")) {
            problems.push(format!("{n}: console: {l}"));
        }
        if d.bin == "xl-domu" {
            for p in par::problems(&console, &xl_domu_par(output, n)) {
                problems.push(format!("{n}: {p}"));
            }
            for p in burst_problems(&console) {
                problems.push(format!("{n}: {p}"));
            }
        }
        for (path, want) in &d.xenstore {
            let Some(got) = xenstore_value(output, n, path) else {
                problems.push(format!("{n}: xenstore {path}: not read"));
                continue;
            };
            match want {
                Value::Is(v) if got != *v => {
                    problems.push(format!("{n}: xenstore {path} = {got}, expected {v}"))
                }
                Value::Guest(key) => match (guest_value(output, n, key), number(got)) {
                    (Some(g), Some(x)) if g == x => {}
                    (Some(g), _) => problems.push(format!(
                        "{n}: xenstore {path} = {got}, the domU's {key} = {g:#x} ({g})"
                    )),
                    (None, _) => {
                        problems.push(format!("{n}: no `{key} = …` on the domU's console"))
                    }
                },
                Value::Is(_) => {}
            }
        }
    }
    if !has("done") {
        problems.push("dom0: no `done` line".into());
    }
    if !dom0_off(output) {
        problems.push("Xen did not report dom0 halted (dom0's poweroff)".into());
    }
    problems
}

/// How many lines the console domU's burst has (`BURST_LINES` of `xl_domu.rs`), and the letters of each.
pub const BURST_LINES: usize = 64;
/// The letters after a burst line's number.
pub const BURST_WIDTH: usize = 64;

/// The console domU's burst line `i` as xenconsoled must log it: `xl-domu: burst III ` and the letter
/// `a + (7i + 3j) mod 26` at each place `j` (the pattern `xl_domu.rs` documents).
pub fn burst_line(i: usize) -> String {
    let letters: String = (0..BURST_WIDTH)
        .map(|j| char::from(b'a' + ((i * 7 + j * 3) % 26) as u8))
        .collect();
    format!("xl-domu: burst {i:03} {letters}")
}

/// What is wrong with the console domU's burst in xenconsoled's log of it: every line, exactly, in order,
/// once (more bytes than the ring holds: a lost, repeated or damaged byte is a problem), and its count of
/// waits for room.
pub fn burst_problems(console: &[&str]) -> Vec<String> {
    let got: Vec<&str> = console
        .iter()
        .copied()
        .filter(|l| l.starts_with("xl-domu: burst "))
        .filter(|l| !l.starts_with("xl-domu: burst waits"))
        .collect();
    let mut problems = Vec::new();
    if got.len() != BURST_LINES {
        problems.push(format!(
            "burst: {} lines, expected {BURST_LINES}",
            got.len()
        ));
    }
    let bytes: usize = got.iter().map(|l| l.len() + 1).sum();
    if let Some((i, l)) = (0..BURST_LINES)
        .zip(&got)
        .find(|(i, l)| **l != burst_line(*i))
    {
        problems.push(format!(
            "burst: line {i} is `{l}`, expected `{}`",
            burst_line(i)
        ));
    } else if got.len() == BURST_LINES && bytes <= 2048 {
        problems.push(format!(
            "burst: {bytes} bytes, not more than the ring's 2048"
        ));
    }
    if !console
        .iter()
        .any(|l| l.starts_with("xl-domu: burst waits = "))
    {
        problems.push("burst: no `burst waits = N` line".into());
    }
    problems
}

/// What is wrong with the end of a domU that dom0 destroys while it runs, by `xl`'s log of it: the
/// monitor must log the destruction, and no shutdown (the domU did not end itself).
pub fn destroy_problems(xl_log: &[&str]) -> Vec<String> {
    let mut problems = Vec::new();
    if !xl_log.iter().any(|l| l.contains("has been destroyed")) {
        problems.push("xl's log does not say it was destroyed".to_string());
    }
    if let Some(l) = xl_log.iter().find(|l| l.contains("has shut down")) {
        problems.push(format!("xl's log says it shut down itself: {l}"));
    }
    problems
}

/// How the MMU of the console domU (`xl_domu.rs`) must map what it reports as `PAR_<NAME>`: its console
/// and xenstore rings (shared with dom0; identity-mapped, at the frames it printed), a static and its
/// stack Normal Write-Back Inner Shareable; the GIC distributor and the PL011 of Xen's guest layout
/// Device.
fn xl_domu_par(output: &str, name: &str) -> Vec<(&'static str, par::Expect, Option<u64>)> {
    let frame = |key| guest_value(output, name, key).map(|pfn| pfn << 12);
    vec![
        ("RING", par::Expect::Shared, frame("CONSOLE_PFN")),
        ("STORE", par::Expect::Shared, frame("STORE_PFN")),
        ("STATIC", par::Expect::Shared, None),
        ("STACK", par::Expect::Shared, None),
        ("GIC", par::Expect::Device, Some(0x0300_1000)),
        ("UART", par::Expect::Device, Some(0x2200_0000)),
    ]
}

/// What is wrong with a run whose [`judge`]ment is `problems`: the problems themselves for a scenario that
/// must pass; for a negative control, each expected problem that is missing and each problem not expected.
pub fn verdict(scenario: &Scenario, problems: Vec<String>) -> Vec<String> {
    if scenario.control.is_empty() {
        return problems;
    }
    let mut wrong = Vec::new();
    for want in &scenario.control {
        if !problems.iter().any(|p| p.starts_with(want)) {
            wrong.push(format!("control: the judge did not report `{want}…`"));
        }
    }
    for p in &problems {
        if !scenario.control.iter().any(|w| p.starts_with(w)) {
            wrong.push(p.clone());
        }
    }
    wrong
}

/// One scenario's result.
pub struct Run {
    pub scenario: Scenario,
    pub xen: XenBuild,
    pub boot: Boot,
    pub problems: Vec<String>,
    /// Seconds building the initramfs (and the domU images).
    pub build_seconds: f64,
    /// Bytes of the gzip'd initramfs.
    pub initramfs_bytes: u64,
}

/// QEMU's deterministic clock for the benchmarks: one nanosecond of the guests' time per instruction
/// executed, idle time skipped (`sleep=off`). Their timers then measure instructions (every domain's, and
/// Xen's), the same in every boot, and nothing of the host's load.
pub const ICOUNT: [&str; 2] = ["-icount", "shift=0,sleep=off"];

/// Builds the initramfs of `scenario` and boots it on each of `xens`.
pub fn run(scenario: &Scenario, dom0: &Dom0, xens: &[(XenBuild, PathBuf)]) -> Result<Vec<Run>> {
    run_with(scenario, dom0, xens, &[])
}

/// [`run`] with `qemu_args` added to QEMU's command line ([`ICOUNT`]).
pub fn run_with(
    scenario: &Scenario,
    dom0: &Dom0,
    xens: &[(XenBuild, PathBuf)],
    qemu_args: &[&str],
) -> Result<Vec<Run>> {
    let start = Instant::now();
    let initrd = initramfs(scenario, dom0)?;
    let timeout = if scenario.domus.iter().any(|d| d.bin == LINUX) {
        LINUX_TIMEOUT.max(scenario.boot_timeout())
    } else {
        scenario.boot_timeout()
    };
    let boots = Boots {
        scenario,
        initrd: &initrd,
        build_seconds: start.elapsed().as_secs_f64(),
        logs: &dir(),
        timeout,
    };
    boots.each(
        xens,
        |xen| {
            let mut c = command(xen, &dom0.kernel, &initrd)?;
            c.args(qemu_args);
            Ok(c)
        },
        finished,
    )
}

/// One scenario's built initramfs, to boot on each Xen (the ARM and the x86-64 runners share this).
pub struct Boots<'a> {
    pub scenario: &'a Scenario,
    pub initrd: &'a Path,
    /// Seconds building the initramfs (and the domU images).
    pub build_seconds: f64,
    /// Where each boot's log goes (`SCENARIO-BUILD.log`).
    pub logs: &'a Path,
    pub timeout: Duration,
}

impl Boots<'_> {
    /// Boots it on each of `xens` (`command` makes QEMU's command line for a Xen; `finished` tells a console
    /// that is done), writes each log and judges each run.
    pub fn each(
        &self,
        xens: &[(XenBuild, PathBuf)],
        command: impl Fn(&Path) -> Result<std::process::Command>,
        finished: impl Fn(&str) -> bool + Copy,
    ) -> Result<Vec<Run>> {
        let initramfs_bytes = std::fs::metadata(self.initrd)?.len();
        let mut runs = Vec::new();
        for (build, xen) in xens {
            let boot = xen::run_qemu(&mut command(xen)?, self.timeout, finished)?;
            let log = self
                .logs
                .join(format!("{}-{}.log", self.scenario.name, build.name()));
            std::fs::write(&log, &boot.output)
                .with_context(|| format!("writing {}", log.display()))?;
            let problems = verdict(
                self.scenario,
                judge(self.scenario, &boot.output, boot.timed_out, *build),
            );
            runs.push(Run {
                scenario: self.scenario.clone(),
                xen: *build,
                boot,
                problems,
                build_seconds: self.build_seconds,
                initramfs_bytes,
            });
        }
        Ok(runs)
    }
}

/// The hypervisors: Debian's release build, and the debug build from Debian's source.
pub fn hypervisors() -> Result<Vec<(XenBuild, PathBuf)>> {
    Ok(vec![
        (XenBuild::Release, xen::fetch_xen()?),
        (XenBuild::Debug, xensrc::debug_xen()?),
    ])
}

/// Runs `scenarios` on release and debug Xen.
pub fn run_all(scenarios: &[Scenario]) -> Result<Vec<Run>> {
    setup::toolchain()?;
    setup::debian(&[setup::QEMU])?;
    let dom0 = fetch()?;
    let xens = hypervisors()?;
    let mut runs = Vec::new();
    for s in scenarios {
        runs.extend(run(s, &dom0, &xens)?);
    }
    Ok(runs)
}

/// The timestamps dom0 printed (seconds since its kernel started), for the report.
fn stages(output: &str) -> String {
    let mut v = Vec::new();
    for l in harness_lines(output) {
        for (prefix, name) in [
            ("dom0 up: ", "/init"),
            ("toolstack up: ", "toolstack"),
            ("domUs running: ", "domUs"),
        ] {
            if let Some(rest) = l.strip_prefix(prefix) {
                let t = rest.rsplit(", ").next().unwrap_or(rest);
                v.push(format!("{name} {}", t.trim_end_matches(" s")));
            }
        }
    }
    v.join(", ")
}

/// A number of dom0's clock in a harness line `PREFIX… T s` (the last `, ` or `: ` part).
fn dom0_seconds(lines: &[&str], prefix: &str) -> Option<f64> {
    let l = lines.iter().find(|l| l.starts_with(prefix))?;
    let t = l.rsplit([',', ':']).next()?.trim().strip_suffix(" s")?;
    t.parse().ok()
}

/// The figures a run's own log gives, one line each: for a xenbus domU, the time from `xl create` to
/// its `Connected` (dom0's clock; dom0 polls every 0.1 s) and a xenstore read's cost (the domU's counts:
/// notifications and waits per request); for a console domU, the bytes its burst wrote per notification.
pub fn figures(scenario: &Scenario, output: &str) -> Vec<String> {
    let lines = harness_lines(output);
    let mut v = Vec::new();
    for d in &scenario.domus {
        let n = d.name;
        let created = dom0_seconds(&lines, &format!("creating {n}: "));
        let connected = dom0_seconds(&lines, &format!("ok {n}: await data/vbd = connected: "));
        if let (Some(a), Some(b)) = (created, connected) {
            v.push(format!(
                "{n}: xl create to Connected: {:.2} s (dom0's clock, 0.1 s polls)",
                b - a
            ));
        }
        for l in console_lines(output, n) {
            let nums: Vec<f64> = l
                .split(|c: char| !c.is_ascii_digit())
                .filter_map(|w| w.parse().ok())
                .collect();
            if let (Some(rest), [reads, notes, waits, us]) =
                (l.strip_prefix("xl-xenbus: xs cost: "), nums.as_slice())
                && *reads > 0.0
            {
                v.push(format!(
                    "{n}: xenstore read: {:.2} notifications, {:.2} waits, {:.0} us per request ({rest})",
                    notes / reads,
                    waits / reads,
                    us / reads
                ));
            }
            if let (Some(rest), [waits, notes, bytes]) =
                (l.strip_prefix("xl-domu: burst waits = "), nums.as_slice())
                && *notes > 0.0
            {
                v.push(format!(
                    "{n}: console burst: {:.1} bytes per notification, {waits} waits for room ({rest})",
                    bytes / notes
                ));
            }
        }
    }
    v
}

/// A line per run (and its problems and last lines when it failed); returns how many failed.
pub fn report(runs: &[Run]) -> usize {
    let mut failed = 0;
    for r in runs {
        let good = r.problems.is_empty();
        println!(
            "{:<5} xen {:<7} {:<10} {} ({:.1} s; dom0 clock: {})",
            if good { "ok" } else { "FAIL" },
            r.xen.name(),
            r.scenario.name,
            r.scenario.title,
            r.boot.elapsed.as_secs_f64(),
            stages(&r.boot.output)
        );
        for f in figures(&r.scenario, &r.boot.output) {
            println!("      figure: {f}");
        }
        if r.xen == XenBuild::Release && r.scenario.control.is_empty() || !good {
            for d in &r.scenario.domus {
                for l in console_lines(&r.boot.output, d.name) {
                    println!("      {} | {l}", d.name);
                }
            }
        }
        if good && !r.scenario.control.is_empty() {
            for p in judge(&r.scenario, &r.boot.output, r.boot.timed_out, r.xen) {
                println!("      caught: {p}");
            }
        }
        if !good {
            failed += 1;
            xen::print_failure(&r.problems, &r.boot.output, 25);
        }
    }
    failed
}

/// The key lines [`demo`] shows of the xenbus domU's console.
const DEMO_LINES: [&str; 6] = [
    "xl-xenbus: name = ",
    "xl-xenbus: ok watch data/go",
    "xl-xenbus: ok transaction conflict",
    "xl-xenbus: ok backend Connected",
    "xl-xenbus: sectors = ",
    "xl-xenbus: ok closed",
];

/// `cargo xtask demo`'s real-toolstack part: one boot of the [`xenbus`](Scenario::xenbus) scenario on
/// release Xen (a Linux dom0, `xl create`, xenstored and blkback), its key lines and figures. Returns
/// whether it passed.
pub fn demo() -> Result<bool> {
    setup::debian(&[setup::QEMU])?;
    let dom0 = fetch()?;
    let xens = vec![(XenBuild::Release, xen::fetch_xen()?)];
    let s = Scenario::xenbus();
    let runs = run(&s, &dom0, &xens)?;
    let mut good = true;
    for r in &runs {
        let ok = r.problems.is_empty();
        good &= ok;
        println!(
            "{} xl create of the xenbus domU from a Linux dom0 ({}; {:.1} s)",
            if ok { "ok  " } else { "FAIL" },
            stages(&r.boot.output),
            r.boot.elapsed.as_secs_f64()
        );
        for d in &s.domus {
            for l in console_lines(&r.boot.output, d.name)
                .into_iter()
                .filter(|l| DEMO_LINES.iter().any(|k| l.starts_with(k)))
            {
                println!("      {} | {l}", d.name);
            }
        }
        for f in figures(&s, &r.boot.output) {
            println!("      figure: {f}");
        }
        if !ok {
            xen::print_failure(&r.problems, &r.boot.output, 25);
        }
    }
    Ok(good)
}

/// `cargo xtask xl [SCENARIO…]`: the scenarios named (every one when none is) on release and debug Xen,
/// with the figures (downloads, initramfs, time per boot).
pub fn test(names: &[String]) -> Result<()> {
    let scenarios = xen::select_named(Scenario::all(), names, |c| c.name, "scenario")?;
    let start = Instant::now();
    let runs = run_all(&scenarios)?;
    summary("", &runs, &fetch()?, &dir(), start)
}

/// Reports `runs` ([`report`]) with the figures (downloads, initramfs, time per boot) and the count line
/// `real toolstack runs{on}: N passed, N failed` (`on`: "" on ARM, " on x86-64"); fails unless all passed.
pub fn summary(on: &str, runs: &[Run], dom0: &Dom0, dir: &Path, start: Instant) -> Result<()> {
    let failed = report(runs);
    let qemu: f64 = runs.iter().map(|r| r.boot.elapsed.as_secs_f64()).sum();
    let tag = if on.is_empty() { "xl" } else { "xl x86-64" };
    println!(
        "{tag}: packages {:.1} MB (cached in {}), initramfs {:.1} MB gzip'd (built in {:.1} s), QEMU \
         {qemu:.1} s for {} boot(s), {:.1} s in all",
        dom0.download_bytes as f64 / 1e6,
        dir.display(),
        runs.first().map_or(0.0, |r| r.initramfs_bytes as f64 / 1e6),
        runs.first().map_or(0.0, |r| r.build_seconds),
        runs.len(),
        start.elapsed().as_secs_f64()
    );
    println!(
        "real toolstack runs{on}: {} passed, {failed} failed",
        runs.len() - failed
    );
    if failed > 0 {
        bail!("{failed} real-toolstack run(s){on} failed");
    }
    Ok(())
}

pub mod netbench;

#[cfg(test)]
mod tests;
