use super::*;

const T: Duration = Duration::from_secs(180);

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// A run's console as it comes out of QEMU, written here by hand in the shapes seen on real runs: Xen's
/// lines, dom0's kernel, the script's reports, the relayed lines, then `shutdown CODE` and the log.
fn output(shutdown: &str, console: &[&str]) -> String {
    let mut s = String::from(
        "(XEN) Xen version 4.17.6 (Debian 4.17.6+2-0+deb12u1) debug=n\n\
         (XEN) *** LOADING DOMAIN 0 ***\n\
         [    1.2] Run /init as init process\n\
         xl-run: dom0 up: 6.1.0-41-arm64, 1.05 s\n\
         xl-run: ok modules\nxl-run: ok xenfs\nxl-run: ok xenstored\nxl-run: ok xen-init-dom0\n\
         xl-run: ok xenconsoled\nxl-run: ok create: domid 1, 2.40 s\nxl-run: running: 2.6 s\n",
    );
    for l in console {
        s.push_str(&format!("xl-run: console| {l}\n"));
    }
    s.push_str("xl-run: ok ended: 3.1 s\n");
    s.push_str(&format!("xl-run: shutdown {shutdown}\n"));
    for l in console {
        s.push_str(&format!("xl-run: log| {l}\n"));
    }
    s.push_str(
        "xl-run: xl-log| Waiting for domain t (domid 1) to die [pid 77]\n\
         xl-run: done\n(XEN) Hardware Dom0 halted: halting machine\n",
    );
    s
}

fn failed(o: Outcome) -> String {
    match o {
        Outcome::Failed(why) => why,
        Outcome::Poweroff => panic!("judged a poweroff"),
    }
}

#[test]
fn only_a_poweroff_the_toolstack_logged_succeeds() {
    assert_eq!(judge(&output("0", &["hello"]), false, T), Outcome::Poweroff);
    // Each other reason is named.
    assert_eq!(
        failed(judge(&output("3", &["panic"]), false, T)),
        "the domU shut down with reason crash (code 3, xl's log)"
    );
    assert!(failed(judge(&output("1", &[]), false, T)).contains("reason reboot (code 1"));
    assert!(failed(judge(&output("none", &[]), false, T)).contains("no shutdown reason"));
}

#[test]
fn a_crash_of_xen_or_dom0_comes_first_and_a_domu_may_print_anything() {
    let mut out = output("0", &["hello"]);
    out.push_str("(XEN) Panic on CPU 0:\n");
    assert_eq!(
        failed(judge(&out, false, T)),
        "Xen or dom0 crashed: Panic on CPU 0:"
    );
    let dom0 = output("0", &[]).replace(
        "xl-run: running",
        "[    3.0] Kernel panic - not syncing: Attempted to kill init!\nxl-run: running",
    );
    assert!(
        failed(judge(&dom0, false, T)).starts_with("Xen or dom0 crashed: [    3.0] Kernel panic")
    );
    // The domU's own lines are not Xen's or dom0's.
    let chatty = output(
        "0",
        &[
            "Kernel panic - not syncing: a domU's words",
            "Panic on CPU 0:",
        ],
    );
    assert_eq!(judge(&chatty, false, T), Outcome::Poweroff);
    assert!(!finished(&chatty.replace("(XEN) Hardware Dom0 halted", "")));
    assert!(finished(&chatty));
}

#[test]
fn a_failed_step_is_reported_with_its_output() {
    let out = "xl-run: ok xenconsoled\nxl-run: FAIL xl create\nxl-run:   | Parsing config from /etc/xen/t.cfg\n\
               xl-run:   | libxl: error: libxl_create.c: domain creation failed\nxl-run: done\n\
               (XEN) Hardware Dom0 halted: halting machine\n";
    assert_eq!(
        failed(judge(out, false, T)),
        "xl create; Parsing config from /etc/xen/t.cfg; libxl: error: libxl_create.c: domain creation failed"
    );
    let timeout = output("none", &["test spins ... "]).replace(
        "xl-run: ok ended: 3.1 s",
        "xl-run: FAIL timed out after 8 s: the domU was still running (xl destroy ended it)",
    );
    let why = failed(judge(&timeout, false, T));
    assert!(why.starts_with("timed out after 8 s"), "{why}");
    // With the domU's console, the test that was running is named.
    let explained = failed(run::explain(
        &console_log(&timeout),
        judge(&timeout, false, T),
    ));
    assert!(
        explained.starts_with("while test `spins` was running: timed out after 8 s"),
        "{explained}"
    );
}

#[test]
fn qemu_ending_early_or_hanging_is_a_failure() {
    let early = "(XEN) Xen version 4.17\nxl-run: ok modules\n";
    assert!(failed(judge(early, false, T)).contains("QEMU ended before dom0 reported"));
    assert!(
        failed(judge(early, true, T)).starts_with("timed out after 180 s before dom0 reported")
    );
}

#[test]
fn the_console_log_is_the_domus_lines() {
    let out = output("0", &["one", "", "test a ... ok"]);
    assert_eq!(console_log(&out), "one\n\ntest a ... ok\n");
}

#[test]
fn the_configuration_has_the_base_lines_then_the_users() {
    let c = config_file(
        "hello",
        "console=hvc0 -- greets --exact",
        &strings(&["memory = 32", "vcpus = 2"]),
    )
    .unwrap();
    assert_eq!(
        c,
        "name = \"hello\"\nkernel = \"/domu/hello.bin\"\nmemory = 16\nvcpus = 1\non_poweroff = \"destroy\"\n\
         on_reboot = \"destroy\"\non_crash = \"destroy\"\nextra = \"console=hvc0 -- greets --exact\"\n\
         memory = 32\nvcpus = 2\n"
    );
    assert!(config_file("t", "console=hvc0 -- a\"b", &[]).is_err());
    assert!(config_file("t", "console=hvc0 -- a\\b", &[]).is_err());
}

#[test]
fn user_lines_are_checked() {
    assert!(
        check_config(
            &strings(&["# a comment", "vif = [ 'bridge=xenbr0',", "  'x' ]"]),
            &strings(&["memory = 64"])
        )
        .is_ok()
    );
    for bad in ["memory", "= 3", "two words = 1", "a = 1\nb = 2"] {
        assert!(check_config(&[], &strings(&[bad])).is_err(), "{bad:?}");
    }
    for reserved in ["name = \"x\"", "kernel=\"/y\"", "  ramdisk = \"/z\""] {
        let e = check_config(&strings(&[reserved]), &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("sets itself"), "{e}");
        assert!(check_config(&[], &strings(&[reserved])).is_err());
    }
    assert_eq!(memory_mib(&[]).unwrap(), 16);
    assert_eq!(
        memory_mib(&strings(&["memory = 64", "vcpus = 1", "memory=32"])).unwrap(),
        32
    );
    assert!(memory_mib(&strings(&["memory = lots"])).is_err());
}

#[test]
fn names_come_from_the_image_file() {
    assert_eq!(
        domu_name(Path::new("t/release/my-unikernel")),
        "my-unikernel"
    );
    assert_eq!(
        domu_name(Path::new("deps/on_xen-3f2a9c1b")),
        "on_xen-3f2a9c1b"
    );
    assert_eq!(domu_name(Path::new("x/image.bin")), "image");
    assert_eq!(domu_name(Path::new("x/a b+c")), "a_b_c");
    assert_eq!(domu_name(Path::new("x/.hidden")), "domu");
    assert_eq!(domu_name(Path::new("/")), "domu");
}

/// A zImage header (magic at 0x24) asking to be loaded at `start`.
fn zimage(start: u32, size: usize) -> Vec<u8> {
    let mut z = vec![0u8; size];
    z[0x24..0x28].copy_from_slice(&0x016f_2818u32.to_le_bytes());
    z[0x28..0x2c].copy_from_slice(&start.to_le_bytes());
    z
}

#[test]
fn a_32_bit_image_must_ask_for_the_domus_ram() {
    assert_eq!(run::prepare(&zimage(0x4000_8000, 64)).unwrap().1, Arch::A32);
    assert!(check_a32_load(&zimage(0x4000_8000, 4096), 16).is_ok());
    // Position-independent: libxl chooses.
    assert!(check_a32_load(&zimage(0, 4096), 16).is_ok());
    // The template's dom0 link address, below the domU's RAM, past its end.
    let e = check_a32_load(&zimage(0x7800_8000, 4096), 16)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("0x78008000") && e.contains("__load_base=0x40008000"),
        "{e}"
    );
    assert!(check_a32_load(&zimage(0x3000_0000, 4096), 16).is_err());
    assert!(check_a32_load(&zimage(0x40ff_f000, 8192), 16).is_err());
    assert!(check_a32_load(&zimage(0x40ff_f000, 8192), 17).is_ok());
    assert!(check_a32_load(&[0u8; 0x20], 16).is_err());
}

#[test]
fn the_script_bounds_every_wait_and_reports_the_shutdown() {
    let s = init_script("hello", 8);
    assert!(s.starts_with(
        "#!/bin/busybox sh\n# dom0's /init for `cargo xen run --xl` of the domU `hello`."
    ));
    for want in [
        "timeout 30 xl create -p /etc/xen/hello.cfg",
        "wait_for 10 test -e /var/log/xen/console/guest-hello.log",
        "tail -n +1 -f /var/log/xen/console/guest-hello.log",
        "end=$(($(cut -d. -f1 /proc/uptime) + 8))",
        "fail \"timed out after 8 s",
        "timeout 15 xl destroy hello",
        "has shut down, reason code",
        "/var/log/xen/xl-hello.log",
        "'xl-run: log|'",
        "\nfinish\n",
    ] {
        assert!(s.contains(want), "{want}");
    }
    // Every command that could hang runs under `timeout N` (a mention inside a quoted report is not run).
    for cmd in [
        "xl create",
        "xl unpause",
        "xl destroy",
        "xl domid",
        "xen-init-dom0 >",
        "xenstore-read -s",
    ] {
        let mut seen = 0;
        for (at, _) in s.match_indices(cmd) {
            let before = s[..at].trim_end_matches(|c: char| c.is_ascii_digit() || c == ' ');
            let line_start = s[..at].rfind('\n').map_or(0, |i| i + 1);
            let prefix = &s[line_start..at];
            if prefix.matches('"').count() % 2 == 1 || prefix.starts_with('#') {
                continue; // inside a quoted report, or a comment
            }
            assert!(
                before.ends_with("timeout"),
                "unbounded: {cmd} at {}",
                &s[at.saturating_sub(40)..at + 20]
            );
            seen += 1;
        }
        assert!(seen > 0, "{cmd} is run");
    }
    // The negative control: an unbounded create is seen.
    let bad = s.replace("timeout 30 xl create", "xl create");
    assert!(bad.match_indices("xl create").any(|(at, _)| {
        !bad[..at].ends_with('"')
            && !bad[..at]
                .trim_end_matches(|c: char| c.is_ascii_digit() || c == ' ')
                .ends_with("timeout")
    }));
}

#[test]
fn the_directory_is_the_images_target_directory() {
    let root = std::env::temp_dir().join(format!("cargo-xen-xl-dir-{}", std::process::id()));
    let release = root.join("proj/target/aarch64-unknown-none/release");
    std::fs::create_dir_all(&release).unwrap();
    std::fs::write(root.join("proj/target/CACHEDIR.TAG"), "").unwrap();
    std::fs::write(
        root.join("proj/target/aarch64-unknown-none/CACHEDIR.TAG"),
        "",
    )
    .unwrap();
    let image = release.join("hello");
    // CARGO_TARGET_DIR wins when cargo's runner is given it; the test process may have it set.
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(t) => assert_eq!(dir(&image), PathBuf::from(t).join("xl")),
        None => {
            assert_eq!(dir(&image), root.join("proj/target/xl"));
            assert_eq!(
                dir(&root.join("elsewhere/hello")),
                PathBuf::from("target/xl")
            );
        }
    }
    let _ = std::fs::remove_dir_all(&root);
}
