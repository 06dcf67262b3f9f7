use super::*;

/// A console as the console scenario's release run printed it (Xen's and Linux's lines shortened).
fn good() -> String {
    let mut s = String::from(
        "(XEN) Xen version 4.17.7 (Debian 4.17.7+13-g2445b30a44-0+deb12u1) (pkg-xen-devel@lists.alioth.debian.org) \
         (aarch64-linux-gnu-gcc (Debian 12.2.0-14+deb12u1) 12.2.0) debug=n Tue Nov  4 16:52:00 UTC 2025\n\
         [    0.000000] Booting Linux on physical CPU 0x0000000000 [0x411fd070]\n",
    );
    for l in [
        "dom0 up: 6.1.0-57-arm64, 1.11 s",
        "ok modules",
        "ok xenfs",
        "ok xenstored",
        "ok xen-init-dom0",
        "ok xenconsoled",
        "toolstack up: 1.54 s",
        "ok create cons: domid 1",
        "xenstore cons name = cons",
        "xenstore cons domid = 1",
        "xenstore cons memory/static-max = 16384",
        "xenstore cons console/ring-ref = 233472",
        "xenstore cons console/port = 2",
        "xenstore cons store/ring-ref = 233473",
        "xenstore cons store/port = 1",
        "ok unpause cons",
        "domUs running: 2.63 s",
        "ok ended cons: 2.87 s",
        "begin console cons",
        "console cons| xl-domu: hello from a domU started by xl",
        "console cons| xl-domu: CONSOLE_PFN = 0x39000",
        "console cons| xl-domu: CONSOLE_EVTCHN = 2",
        "console cons| xl-domu: STORE_PFN = 0x39001",
        "console cons| xl-domu: STORE_EVTCHN = 1",
        "console cons| xl-domu: ok store page given: nonzero frame",
        "console cons| xl-domu: MAX_PAGES = 4352",
        "console cons| xl-domu: ok runstate: registered",
        "console cons| xl-domu: CLOCK = 1174345616 ns at 62500000 Hz",
        "console cons| xl-domu: ok offset: Xen system time - clock >= 2464897992 ns, from the runstate",
        "console cons| xl-domu: ok poll 20 ms: 20.1 ms by the guest's clock, 2 polls, bound before: 2464897992 ns",
        "console cons| xl-domu: ok synchronize: rescheduled in 4.5 ms, bound 2466286920 ns (+1388928)",
        "console cons| xl-domu: ok poll 20 ms synchronized: 24.4 ms by the guest's clock, 1 polls",
        "console cons| xl-domu: ok Events::wait 20 ms: 20.2 ms then ETIMEDOUT",
        "console cons| xl-domu: WALLCLOCK = 1796533461 s (wc 1796533460 s 24758560 ns + clock)",
        "console cons| xl-domu: ok wallclock: after 2024: 1796533461",
        "console cons| xl-domu: ok singleshot timer: refused: error 22",
        "console cons| xl-domu: PAR_RING = 0xff00000039000b80",
        "console cons| xl-domu: PAR_STORE = 0xff00000039001b80",
        "console cons| xl-domu: PAR_STATIC = 0xff00000040002b80",
        "console cons| xl-domu: PAR_STACK = 0xff00000040014b80",
        "console cons| xl-domu: PAR_GIC = 0x400000003001a00",
        "console cons| xl-domu: PAR_UART = 0x400000022000a00",
        "console cons| xl-domu: done",
        "end console cons",
        "begin xl-log cons",
        "xl-log cons| Waiting for domain cons (domid 1) to die [pid 120]",
        "xl-log cons| Domain 1 has shut down, reason code 0 0x0",
        "xl-log cons| Action for shutdown reason code 0 is destroy",
        "xl-log cons| Domain 1 needs to be cleaned up: destroying the domain",
        "xl-log cons| Done. Exiting now",
        "end xl-log cons",
        "done",
    ] {
        s.push_str(MARK);
        s.push_str(l);
        s.push('\n');
    }
    s.push_str("[   13.228445] reboot: Power down\n(XEN) Hardware Dom0 halted: halting machine\n");
    // The burst, as xenconsoled logged it in a real run, before `done`.
    let burst: String = BURST_RUN
        .lines()
        .map(|l| format!("{MARK}console cons| {l}\n"))
        .collect();
    let done = format!("{MARK}console cons| xl-domu: done\n");
    s.replacen(&done, &(burst + &done), 1)
}

/// The console domU's burst lines from xenconsoled's log of a real run (release Xen, A32 domU).
const BURST_RUN: &str = include_str!("burst-release.txt");

fn problems(output: &str) -> Vec<String> {
    judge(&Scenario::console(), output, false, XenBuild::Release)
}

#[test]
fn a_complete_run_passes() {
    assert_eq!(problems(&good()), Vec::<String>::new());
    assert_eq!(
        console_lines(&good(), "cons")[1],
        "xl-domu: CONSOLE_PFN = 0x39000"
    );
    assert_eq!(guest_value(&good(), "cons", "CONSOLE_PFN"), Some(0x39000));
    assert_eq!(guest_value(&good(), "cons", "PFN"), None);
    assert_eq!(
        xenstore_value(&good(), "cons", "store/ring-ref"),
        Some("233473")
    );
    // Xen's text in front of a harness line does not hide it.
    let interleaved = good().replace(
        "xl-harness: ok xenfs",
        "(XEN) d0v0 something xl-harness: ok xenfs",
    );
    assert_eq!(problems(&interleaved), Vec::<String>::new());
}

#[test]
fn each_defect_is_one_problem() {
    let one = |from: &str, to: &str| {
        let out = good().replace(from, to);
        assert_ne!(out, good(), "{from} is not in the output");
        let p = problems(&out);
        assert_eq!(p.len(), 1, "{from} -> {to}: {p:?}");
        p[0].clone()
    };
    assert_eq!(
        one("xl-harness: console cons| xl-domu: done\n", ""),
        "cons: no console line `xl-domu: done…`"
    );
    // What the domU was given and what the toolstack recorded must agree.
    assert_eq!(
        one("console/ring-ref = 233472", "console/ring-ref = 233473"),
        "cons: xenstore console/ring-ref = 233473, the domU's CONSOLE_PFN = 0x39000 (233472)"
    );
    // The page limit: `memory` (16 MiB) and libxl's 1 MiB, as the domU reads it and as xenstore says.
    assert_eq!(
        one("MAX_PAGES = 4352", "MAX_PAGES = 4096"),
        "cons: no console line `xl-domu: MAX_PAGES = 4352…`"
    );
    assert_eq!(
        one("static-max = 16384", "static-max = 32768"),
        "cons: xenstore memory/static-max = 32768, expected 16384"
    );
    assert_eq!(
        one("STORE_EVTCHN = 1", "STORE_EVTCHN = x"),
        "cons: no `STORE_EVTCHN = …` on the domU's console"
    );
    assert_eq!(
        one("xenstore cons name = cons", "xenstore cons name = other"),
        "cons: xenstore name = other, expected cons"
    );
    assert_eq!(
        one("xl-harness: xenstore cons domid = 1\n", ""),
        "cons: xenstore domid: not read"
    );
    // A failed check: its line is missing, and the FAIL line is reported.
    assert_eq!(
        problems(&good().replace("ok store page given", "FAIL store page given")),
        [
            "cons: no console line `xl-domu: ok store page given…`",
            "cons: console: xl-domu: FAIL store page given: nonzero frame"
        ]
    );
    assert_eq!(
        one("reason code 0 0x0", "reason code 3 0x0"),
        "cons: xl's log does not say it shut down with reason Poweroff (code 0): Domain 1 has shut down, \
         reason code 3 0x0"
    );
    assert_eq!(
        one("xl-harness: ok xenstored\n", ""),
        "dom0: no `ok xenstored` line"
    );
    // A domU still there: the step failed, and its `ok` line is missing.
    assert_eq!(
        problems(&good().replace(
            "ok ended cons: 2.87 s",
            "FAIL ended cons: still there after 30 s"
        )),
        [
            "dom0: FAIL ended cons: still there after 30 s",
            "cons: no `ok ended cons` line"
        ]
    );
    assert_eq!(
        one("(XEN) Hardware Dom0 halted: halting machine\n", ""),
        "Xen did not report dom0 halted (dom0's poweroff)"
    );
    assert_eq!(
        one("debug=n", "debug=y"),
        "Xen's banner does not say debug=n"
    );
}

#[test]
fn hangs_and_panics_fail() {
    // A hang: only the start of the boot, and the time-out.
    let start: String = good().lines().take(4).map(|l| format!("{l}\n")).collect();
    let p = judge(&Scenario::console(), &start, true, XenBuild::Release);
    assert!(p[0].starts_with("timed out after 90 s"), "{p:?}");
    assert!(p.iter().any(|p| p == "dom0: no `done` line"), "{p:?}");
    assert!(
        p.iter().any(|p| p == "cons: no `ok create cons` line"),
        "{p:?}"
    );
    // dom0's panic, and Xen's.
    for crash in [
        "[    2.1] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100",
        "(XEN) Panic on CPU 0:",
        "(XEN) Assertion 'x' failed at common/page_alloc.c:1",
    ] {
        let out = format!("{start}{crash}\n");
        assert!(finished(&out));
        let p = judge(&Scenario::console(), &out, false, XenBuild::Release);
        assert_eq!(p[0], format!("crash: {crash}"));
    }
    assert!(!finished(&start));
    assert!(finished(&good()));
}

/// The control's console: the console domU's run, and a second domU `kept` that dom0 gave up waiting for.
fn control_output() -> String {
    let is_cons = |l: &str| {
        [" cons ", " cons:", " cons|"].iter().any(|w| l.contains(w)) || l.ends_with(" cons")
    };
    let kept: String = good()
        .lines()
        .filter(|l| l.starts_with(MARK) && is_cons(l))
        .map(|l| {
            format!("{l}\n")
                .replace(" cons ", " kept ")
                .replace(" cons:", " kept:")
                .replace(" cons|", " kept|")
                .replace(" cons\n", " kept\n")
                .replace("domid = 1", "domid = 2")
                .replace(
                    "ok ended kept: 2.87 s",
                    "FAIL ended kept: still there after 3 s: kept 2 16 1 --ps-- 0.4",
                )
        })
        .collect();
    assert!(kept.contains("FAIL ended kept"));
    assert!(kept.contains("xl-harness: console kept| xl-domu: done\n"));
    assert!(kept.contains("xl-harness: xenstore kept name = kept\n"));
    // The `wrong-attributes` build: both rings mapped Device-nGnRE.
    good()
        .replace(
            "xl-harness: done\n",
            &format!(
                "{kept}xl-harness: FAIL cons: /local/domain/0/domid = 7, got 0\nxl-harness: done\n"
            ),
        )
        .replace(
            "PAR_RING = 0xff00000039000b80",
            "PAR_RING = 0x400000039000a00",
        )
        .replace(
            "PAR_STORE = 0xff00000039001b80",
            "PAR_STORE = 0x400000039001a00",
        )
}

#[test]
fn the_mmu_attributes_the_domu_reports_are_judged() {
    // The ring uncached, the GIC Normal, the stack not reported, the store page not at its frame.
    let out = good()
        .replace("PAR_RING = 0xff", "PAR_RING = 0x44")
        .replace(
            "PAR_GIC = 0x400000003001a00",
            "PAR_GIC = 0xff00000003001b80",
        )
        .replace(
            "xl-harness: console cons| xl-domu: PAR_STACK = 0xff00000040014b80\n",
            "",
        )
        .replace(
            "PAR_STORE = 0xff00000039001b80",
            "PAR_STORE = 0xff00000039002b80",
        );
    let p = problems(&out);
    assert_eq!(p.len(), 4, "{p:?}");
    assert!(
        p[0].starts_with("cons: PAR_RING: Normal outer NC / inner NC"),
        "{p:?}"
    );
    assert!(
        p[1].starts_with("cons: PAR_STORE: mapped to 0x39002000, not to itself (0x39001000"),
        "{p:?}"
    );
    assert!(p[2].starts_with("cons: PAR_STACK: no `PAR_STACK"), "{p:?}");
    assert!(p[3].starts_with("cons: PAR_GIC: Normal outer WB"), "{p:?}");
}

#[test]
fn the_a32_scenario_is_the_console_one_built_for_a32() {
    let (c, a) = (Scenario::console(), Scenario::a32());
    // The A32 domU, then the T32 one (`the_t32_domu_is_built_apart_from_the_a32_one`).
    assert_eq!((c.domus.len(), a.domus.len()), (1, 2));
    let (c, a) = (&c.domus[0], &a.domus[0]);
    assert_eq!((c.isa, a.isa), (Isa::A64, Isa::A32));
    assert_eq!(a.name, "cons32");
    assert_eq!(a.console, c.console);
    assert!(a.xenstore.contains(&("name", Value::Is("cons32"))));
    assert_eq!(a.xenstore[1..], c.xenstore[1..]);
    // Judged on a console renamed to it, it passes.
    let out = good()
        .replace(" cons ", " cons32 ")
        .replace(" cons|", " cons32|")
        .replace(" cons:", " cons32:")
        .replace(" cons\n", " cons32\n")
        .replace("name = cons\n", "name = cons32\n");
    let mut a32 = Scenario::a32();
    a32.domus.truncate(1);
    assert_eq!(
        judge(&a32, &out, false, XenBuild::Release),
        Vec::<String>::new()
    );
}

#[test]
fn a_control_passes_only_with_exactly_its_problems() {
    let s = Scenario::control();
    let found = judge(&s, &control_output(), false, XenBuild::Release);
    assert_eq!(found.len(), s.control.len(), "{found:?}");
    assert_eq!(verdict(&s, found), Vec::<String>::new());
    // A problem it does not expect fails it, and so does an expected one that is missing.
    let crash = format!("{}(XEN) Panic on CPU 0:\n", control_output());
    let v = verdict(&s, judge(&s, &crash, false, XenBuild::Release));
    assert_eq!(v, ["crash: (XEN) Panic on CPU 0:"]);
    let v = verdict(
        &s,
        judge(
            &s,
            &control_output().replace("STORE_EVTCHN = 1", "STORE_EVTCHN = 2"),
            false,
            XenBuild::Release,
        ),
    );
    assert_eq!(
        v,
        [
            "control: the judge did not report `cons: xenstore console/port = 2, the domU's STORE_EVTCHN = 0x1 (1)…`"
        ]
    );
    // A scenario that must pass keeps its problems.
    assert_eq!(verdict(&Scenario::console(), vec!["x".into()]), ["x"]);
}

#[test]
fn the_init_script_bounds_every_wait_and_names_each_domu() {
    let two = Scenario::two();
    let init = init_script(&two);
    assert!(init.starts_with("#!/bin/busybox sh\n"));
    // The toolstack's commands that can block run under `timeout`, loops under `wait_for`.
    for l in init.lines().map(str::trim) {
        for cmd in [
            "xl create",
            "xl unpause",
            "xl destroy",
            "xl domid",
            "xl list",
            "xenstore-read -s",
            "xen-init-dom0 ",
            "xenstore-read \"",
        ] {
            if l.contains(cmd) && !l.starts_with("fail") && !l.starts_with('#') {
                assert!(l.contains("timeout "), "unbounded: {l}");
            }
        }
        assert!(
            !l.starts_with("while") && !l.starts_with("until"),
            "a loop outside wait_for: {l}"
        );
    }
    let create_one = init.find("xl create -p /etc/xen/one.cfg").unwrap();
    let create_two = init.find("xl create -p /etc/xen/two.cfg").unwrap();
    let unpause_one = init.find("xl unpause one").unwrap();
    assert!(create_one < create_two && create_two < unpause_one);
    assert!(init.contains("wait_for $(left 30) gone two"));
    // Every wait for a domU ends at one deadline, its `seconds` after the unpause, and that deadline
    // leaves a hung boot a minute to print the console logs before QEMU's time-out.
    let benches = [Scenario::blkbench(), netbench::scenario()];
    for s in Scenario::all().into_iter().chain(benches) {
        let init = init_script(&s);
        for l in init
            .lines()
            .filter(|l| l.contains("gone ") || l.contains("is_key"))
        {
            if l.contains("wait_for") {
                assert!(
                    l.contains("wait_for $(left "),
                    "{}: no deadline: {l}",
                    s.name
                );
            }
        }
        let longest = s.domus.iter().map(|d| d.seconds).max().unwrap_or(0);
        assert!(
            Duration::from_secs(u64::from(longest) + 60) <= s.boot_timeout(),
            "{}: a domU may take {longest} s of a {:?} boot",
            s.name,
            s.boot_timeout()
        );
    }
    assert!(init.contains("\"/local/domain/$D/\"'memory/static-max'"));
    assert!(init.contains("/var/log/xen/console/guest-two.log"));
    assert!(init.trim_end().ends_with("finish"));
    for m in MODULES {
        assert!(init.contains(m));
    }
    assert_eq!(quote("it's"), r"'it'\''s'");
}

#[test]
fn a_domu_config_has_the_base_lines_then_its_own() {
    let d = &Scenario::two().domus[1];
    let c = d.config_file();
    assert!(c.starts_with("name = \"two\"\nkernel = \"/domu/two.bin\"\nmemory = 16\n"));
    assert!(c.ends_with(
        "on_crash = \"destroy\"\ndisk = ['format=raw,vdev=xvda,access=rw,script=block-ram,target=/dev/ram0']\n\
         vif = ['mac=00:16:3e:00:00:02,bridge=xenbr0,script=vif-bridge-sh']\nmemory = 32\n"
    ));
    assert!(!Scenario::two().domus[0].config_file().contains("disk"));
}

#[test]
fn the_xenbus_scenarios_expect_the_ram_disks_size() {
    assert_eq!(
        RAM_DISK_SECTORS.parse::<u64>().unwrap(),
        u64::from(RAM_DISK_MIB) * 1024 * 1024 / 512
    );
    for s in [Scenario::xenbus(), Scenario::xenbus32()] {
        let d = &s.domus[0];
        assert!(
            d.dom0
                .contains(&Step::Expect(VBD_SECTORS, RAM_DISK_SECTORS))
        );
        assert!(d.console.contains(&"xl-xenbus: sectors = 8192"));
        assert_eq!(s.ram_disks(), 1);
        // The domU's console expectations and dom0's steps agree on the size of the big directory.
        assert!(d.dom0.contains(&Step::Fill("data/big", 120)));
        assert!(
            d.console
                .contains(&"xl-xenbus: ok directory_part data/big: 120 names")
        );
    }
    let init = init_script(&Scenario::xenbus());
    let fill = init.lines().find(|l| l.contains("fill data/big")).unwrap();
    assert_eq!(fill.matches(FILL_NAME).count(), 120);
    assert!(
        fill.contains("\"/local/domain/$D/data/big/a-child-with-a-name-forty-bytes-long-00119\" x")
    );
    assert!(
        fill.trim_start()
            .starts_with("if timeout 20 xenstore-write")
    );
    assert_eq!(Scenario::xenbus32().domus[0].isa, Isa::A32);
}

#[test]
fn disks_load_their_modules_and_steps_are_required() {
    let two = Scenario::two();
    assert_eq!(two.ram_disks(), 1);
    assert_eq!(Scenario::console().ram_disks(), 0);
    let init = init_script(&two);
    assert!(init.contains(
        "insmod $K/block/brd.ko rd_nr=1 rd_size=4096 && insmod $K/block/xen-blkback/xen-blkback.ko"
    ));
    assert!(!init_script(&Scenario::console()).contains("brd"));
    assert!(init.contains(
        "insmod $KN/net/llc/llc.ko && insmod $KN/net/802/stp.ko && insmod $KN/net/bridge/bridge.ko && \
         insmod $KN/drivers/net/xen-netback/xen-netback.ko && brctl addbr xenbr0"
    ));
    assert!(!init_script(&Scenario::console()).contains("xenbr0"));
    assert!(Scenario::two().has_vifs() && !Scenario::xenbus().has_vifs());
    assert!(VIF_SCRIPT.contains("brctl addif \"$bridge\" \"$vif\""));
    assert!(VIF_SCRIPT.contains("\"$XENBUS_PATH/hotplug-status\" connected"));
    assert_eq!(all_modules().len(), 15);
    assert!(all_modules().contains(&"drivers/md/dm-mod".to_string()));
    // The loop device and the failing disk are made before any domU is created, only where named.
    let dev = init_script(&Scenario::blkdev());
    let setup = dev.find("dmsetup create blkerr").unwrap();
    assert!(setup < dev.find("xl create").unwrap());
    assert!(dev.contains("losetup /dev/loop0 /run/blkflush.img"));
    assert!(dev.contains("insmod $K/md/dm-mod.ko"));
    assert!(!init_script(&Scenario::blk()).contains("dmsetup"));
    assert!(!init.contains("losetup"));
    let cfg = Scenario::blkdev().domus[0].config_file();
    assert!(cfg.rfind("target=/dev/loop0").unwrap() > cfg.find("target=/dev/ram0").unwrap());
    assert!(all_modules().contains(&"drivers/net/xen-netfront".to_string()));
    assert!(all_modules().contains(&"drivers/block/brd".to_string()));
    assert!(all_modules().contains(&"net/bridge/bridge".to_string()));
    // amd64's kernel has `dax` built in: its package has no dax.ko to unpack (tar fails on a missing one).
    let dax = "drivers/dax/dax".to_string();
    assert!(ARM64.module_files().contains(&dax));
    assert!(!AMD64.module_files().contains(&dax));
    assert_eq!(ARM64.module_files().len(), AMD64.module_files().len() + 1);
    assert!(init.contains("xenstore-read \"/local/domain/0/backend/vbd/$D/51712/state\""));
    // The script libxl runs writes what blkback waits for, and nothing on `remove`.
    assert!(BLOCK_SCRIPT.contains("\"$XENBUS_PATH/physical-device\" \"$mm\""));
    assert!(BLOCK_SCRIPT.contains("[ \"$1\" = add ] || exit 0"));
    // Steps run in a background job, each bounded, waited for before the logs are printed.
    let mut s = Scenario::console();
    s.domus[0].dom0 = vec![
        Step::Await("data/ready", "1"),
        Step::Write("data/go", "1"),
        Step::Expect("/local/domain/0/backend/vbd/$D/51712/sectors", "8192"),
        Step::Perms("data", "perm", "n1,r0"),
    ];
    let init = init_script(&s);
    assert!(init.contains("if wait_for $(left 30) is_key \"/local/domain/$D/data/ready\" '1'; then ok 'cons: await data/ready = 1'"));
    assert!(init.contains("timeout 10 xenstore-write \"/local/domain/$D/data/go\" '1'"));
    assert!(
        init.contains("if is_key \"/local/domain/0/backend/vbd/$D/51712/sectors\" '8192'; then")
    );
    assert!(init.contains("grep -q '^perm = .*(n1,r0)$'"));
    let job = init.find(") &\nJOBS=").unwrap();
    let waited = init.find("for j in $JOBS; do wait $j; done").unwrap();
    assert!(init.find("xl unpause cons").unwrap() < job && job < waited);
    // The consoles come once the domUs are gone, before dom0's last steps end; `xl`'s logs after them.
    let gone = init.find("gone cons").unwrap();
    let console = init.find("begin console cons").unwrap();
    assert!(gone < console && console < waited && waited < init.find("begin xl-log cons").unwrap());
    // A step whose line is missing is a problem; its ok line (or its FAIL line) ends it.
    let p = judge(&s, &good(), false, XenBuild::Release);
    assert_eq!(
        p,
        [
            "cons: dom0 step `await data/ready = 1` did not run",
            "cons: dom0 step `/local/domain/0/backend/vbd/$D/51712/sectors = 8192` did not run",
            "cons: dom0 step `perms data/perm = (n1,r0)` did not run",
        ]
    );
    let out = good().replace(
        "xl-harness: done\n",
        "xl-harness: ok cons: await data/ready = 1\n\
         xl-harness: ok cons: /local/domain/0/backend/vbd/$D/51712/sectors = 8192\n\
         xl-harness: FAIL cons: perms data/perm = (n1,r0)\nxl-harness: done\n",
    );
    assert_eq!(
        judge(&s, &out, false, XenBuild::Release),
        ["dom0: FAIL cons: perms data/perm = (n1,r0)"]
    );
}

#[test]
fn shell_steps_report_their_command_and_the_blk_scenario_declares_its_checks() {
    let mut s = Scenario::console();
    s.domus[0].dom0 = vec![Step::Shell("disk matches", "cmp /tmp/e /dev/ram0")];
    let init = init_script(&s);
    assert!(init.contains(
        "  if { cmp /tmp/e /dev/ram0\n  } > /tmp/cons.sh 2>&1; then ok 'cons: disk matches'; else fail 'cons: disk matches'; fi; show /tmp/cons.sh\n"
    ));
    // Missing, then failed: each is one problem more than the console scenario has on the same output.
    let base = judge(&Scenario::console(), &good(), false, XenBuild::Release);
    let with = |extra: &str| {
        let mut v = vec![extra.to_string()];
        v.extend(base.iter().cloned());
        v.sort();
        v
    };
    let mut p = judge(&s, &good(), false, XenBuild::Release);
    p.sort();
    assert_eq!(p, with("cons: dom0 step `disk matches` did not run"));
    let out = good().replace(
        "xl-harness: done\n",
        "xl-harness: FAIL cons: disk matches\nxl-harness:   | /tmp/e /dev/ram0 differ: char 513, line 1\nxl-harness: done\n",
    );
    let mut p = judge(&s, &out, false, XenBuild::Release);
    p.sort();
    assert_eq!(p, with("dom0: FAIL cons: disk matches"));
    // The block scenario: four RAM disks, dom0's own image and comparison, the detach, a longer limit.
    let blk = Scenario::blk();
    assert_eq!(blk.ram_disks(), 4);
    assert_eq!(blk.boot_timeout(), Duration::from_secs(240));
    let init = init_script(&blk);
    assert!(init.contains("blk-pattern 8192 1 1 3 97 200 89 511 300 4000 177 8191 1 > /tmp/e"));
    assert!(init.contains("cmp /tmp/e /dev/ram0") && init.contains("cmp /tmp/e /dev/ram3"));
    assert!(init.contains("timeout 40 xl block-detach blkdet xvda"));
    assert_eq!(BLK_REGIONS, "1 1 3 97 200 89 511 300 4000 177 8191 1");
    assert!(blk.domus.iter().any(|d| d.isa == Isa::A32));
    // The benchmark is not among the scenarios `cargo xtask xl` runs; its Linux domU brings the files.
    assert!(Scenario::all().iter().all(|s| s.name != "blkbench"));
    let bench = Scenario::blkbench();
    assert_eq!(bench.boot_timeout(), Duration::from_secs(420));
    let linux = bench.domus.iter().find(|d| d.name == "linux").unwrap();
    assert!(
        linux
            .config_file()
            .contains("kernel = \"/domu/linux.Image\"")
    );
    // Linux runs the frontend's six workloads (`xl_blk.rs`'s `bench_run`), each one `linux-blkio` process.
    for w in [
        "run seq-read-4k read seq 4096 1024",
        "run seq-write-4k write seq 4096 1024",
        "run rand-read-4k read rand 4096 1024",
        "run rand-write-4k write rand 4096 1024",
        "run seq-read-1m read seq 1048576 4",
        "run seq-write-1m write seq 1048576 4",
    ] {
        assert!(LINUX_DOMU_INIT.contains(w), "{w}");
    }
    assert!(LINUX_DOMU_INIT.contains("/bin/linux-blkio /dev/xvda"));
}

/// The harness's lines of a real release run of the xenbus scenario (with Xen's banner and its last line).
const XENBUS_RUN: &str = include_str!("xenbus-release.txt");

#[test]
fn a_real_xenbus_run_passes_and_each_missing_piece_fails_it() {
    let s = Scenario::xenbus();
    let judge_it = |out: &str| judge(&s, out, false, XenBuild::Release);
    assert_eq!(judge_it(XENBUS_RUN), Vec::<String>::new());
    // dom0's step that checks the permissions never ran.
    let out = XENBUS_RUN.replace("xl-harness: ok xb: perms data/perm = (n1,r0)\n", "");
    assert_eq!(
        judge_it(&out),
        ["xb: dom0 step `perms data/perm = (n1,r0)` did not run"]
    );
    // blkback reporting another size.
    let out = XENBUS_RUN
        .replace(
            "ok xb: /local/domain/0/backend/vbd/$D/51712/sectors = 8192",
            "FAIL xb: /local/domain/0/backend/vbd/$D/51712/sectors = 8192, got 4096",
        )
        .replace("xl-xenbus: sectors = 8192", "xl-xenbus: sectors = 4096");
    assert_eq!(
        judge_it(&out),
        [
            "dom0: FAIL xb: /local/domain/0/backend/vbd/$D/51712/sectors = 8192, got 4096",
            "xb: no console line `xl-xenbus: sectors = 8192…`",
        ]
    );
    // The transaction committed on its first attempt (no conflict provoked): a console failure.
    let out = XENBUS_RUN.replace(
        "ok transaction conflict: EAGAIN, run again: Ok, attempts 2",
        "FAIL transaction conflict: EAGAIN, run again: Ok, attempts 1",
    );
    let p = judge_it(&out);
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(p[0].starts_with("xb: no console line `xl-xenbus: ok transaction conflict"));
    assert!(p[1].starts_with("xb: console: xl-xenbus: FAIL transaction conflict"));
    // No disk modules: reported.
    let out = XENBUS_RUN.replace("xl-harness: ok disk modules", "xl-harness: disk modules");
    assert_eq!(judge_it(&out), ["dom0: no `ok disk modules` line"]);
}

#[test]
fn a_real_burst_passes_and_a_lost_repeated_or_damaged_byte_fails_it() {
    let real: Vec<&str> = BURST_RUN.lines().collect();
    assert_eq!(real.len(), 65);
    assert_eq!(burst_problems(&real), Vec::<String>::new());
    // One byte damaged.
    let damaged = real[17].replacen("burst 017 p", "burst 017 q", 1);
    assert_ne!(damaged, real[17]);
    let mut v = real.clone();
    v[17] = &damaged;
    let p = burst_problems(&v);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("burst: line 17 is `xl-domu: burst 017 q"),
        "{p:?}"
    );
    // A line lost (the ring overwritten): the count and the next line are wrong.
    let mut v = real.clone();
    v.remove(40);
    let p = burst_problems(&v);
    assert_eq!(p[0], "burst: 63 lines, expected 64");
    assert!(
        p[1].starts_with("burst: line 40 is `xl-domu: burst 041 "),
        "{p:?}"
    );
    // A line repeated.
    let mut v = real.clone();
    v.insert(5, real[4]);
    assert_eq!(burst_problems(&v)[0], "burst: 65 lines, expected 64");
    // No count of waits.
    let p = burst_problems(&real[..64]);
    assert_eq!(p, ["burst: no `burst waits = N` line"]);
    // The console scenario's judge reports it.
    let out = good().replace("xl-domu: burst 003 ", "xl-domu: burst 003 x");
    let p = problems(&out);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].starts_with("cons: burst: line 3 is "), "{p:?}");
}

#[test]
fn a_destroyed_domain_is_told_from_one_that_shut_down() {
    // xl's log of the waiting domU in a real run of `two`.
    let real = [
        "Waiting for domain wait (domid 3) to die [pid 232]",
        "Domain 3 has been destroyed.",
    ];
    assert_eq!(destroy_problems(&real), Vec::<String>::new());
    let powered_off = [
        "Waiting for domain wait (domid 3) to die [pid 232]",
        "Domain 3 has shut down, reason code 0 0x0",
        "Action for shutdown reason code 0 is destroy",
        "Domain 3 needs to be cleaned up: destroying the domain",
        "Done. Exiting now",
    ];
    assert_eq!(
        destroy_problems(&powered_off),
        [
            "xl's log does not say it was destroyed",
            "xl's log says it shut down itself: Domain 3 has shut down, reason code 0 0x0"
        ]
    );
    assert_eq!(
        destroy_problems(&real[..1]),
        ["xl's log does not say it was destroyed"]
    );
    let d = Scenario::two().domus.remove(2);
    assert_eq!(d.shutdown, Shutdown::Destroyed);
    assert!(d.config_file().contains("extra = \"xl-domu-wait\""));
}

#[test]
fn figures_come_from_the_runs_log() {
    let out = format!(
        "{MARK}creating xb: 2.50 s\n{MARK}ok xb: await data/vbd = connected: 4.75 s\n\
         {MARK}console xb| xl-xenbus: xs cost: 64 reads, 128 notifications, 64 waits, 32000 us\n\
         {MARK}console cons| xl-domu: burst waits = 2, notifications 68, bytes 5376\n"
    );
    let mut s = Scenario::xenbus();
    s.domus.push(Scenario::console().domus.remove(0));
    assert_eq!(
        figures(&s, &out),
        [
            "xb: xl create to Connected: 2.25 s (dom0's clock, 0.1 s polls)",
            "xb: xenstore read: 2.00 notifications, 1.00 waits, 500 us per request (64 reads, 128 notifications, 64 waits, 32000 us)",
            "cons: console burst: 79.1 bytes per notification, 2 waits for room (2, notifications 68, bytes 5376)",
        ]
    );
}

#[test]
fn the_t32_domu_is_built_apart_from_the_a32_one() {
    let s = Scenario::a32();
    let isas: Vec<Isa> = s.domus.iter().map(|d| d.isa).collect();
    assert_eq!(isas, [Isa::A32, Isa::T32]);
    let dir = Path::new("/t/guests");
    assert_eq!(isa_dir(dir, Isa::T32), Path::new("/t/guests-t32"));
    assert_eq!(isa_dir(dir, Isa::A32), dir);
}

#[test]
fn the_net_scenarios_stream_tcp_both_ways_with_a_mismatch_the_domu_must_catch() {
    for (s, bytes) in [(Scenario::net(), TCP_BYTES), (Scenario::net32(), 1 << 20)] {
        let d = &s.domus[0];
        let init = init_script(&s);
        // Each way, with the domU's verdict and dom0's md5 compared; the negative control expects `bad`.
        for want in [
            format!("tcp_to_domU {bytes} {TCP_IP}"),
            format!("SHORT=65536 tcp_to_domU {bytes} {TCP_IP}"),
            format!("tcp_from_domU {bytes} {TCP_IP}"),
            "want=\"bad $SHORT\"".to_string(),
            "[ \"$m\" = \"$w\" ]".to_string(),
        ] {
            assert!(init.contains(&want), "{}: {want} missing", s.name);
        }
        let line = format!("xl-net: ok tcp from dom0: {bytes} bytes, md5 ");
        assert!(d.console.iter().any(|l| *l == line), "{}: {line}", s.name);
        assert!(
            d.console
                .contains(&"xl-net: ok tcp: 2 transfers from dom0 (1 matching its md5), 1 to dom0")
        );
        assert!(
            d.console
                .contains(&"xl-net: ok md5: RFC 1321's test digests")
        );
    }
    assert_eq!(Scenario::net32().domus[0].isa, Isa::A32);
    assert!(Scenario::all().iter().any(|s| s.name == "net32"));
}

#[test]
fn the_net_scenarios_give_a_domu_two_queues_and_check_each_carried_frames() {
    for s in [Scenario::net(), Scenario::net32()] {
        let init = init_script(&s);
        assert!(
            init.contains("xen-netback.ko max_queues=2 && brctl addbr"),
            "{}: netback's parameter",
            s.name
        );
        let mq = &s.domus[1];
        assert_eq!(mq.bin, "xl-netmq");
        assert!(
            mq.console
                .contains(&"xl-netmq: ok both queues carried frames each way")
        );
        assert!(
            mq.dom0
                .contains(&Step::Expect("device/vif/0/multi-queue-num-queues", "2"))
        );
    }
    assert_eq!(Scenario::net32().domus[1].isa, Isa::A32);
    // Elsewhere netback keeps its default (one queue: dom0 has one vCPU).
    assert!(!init_script(&Scenario::blk()).contains("max_queues"));
}
