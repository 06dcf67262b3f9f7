use super::*;

/// Reads a `newc` archive back: (name, mode, body) per entry, the trailer excluded.
fn read_cpio(mut data: &[u8]) -> Vec<(String, u32, Vec<u8>)> {
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        assert_eq!(&data[..6], b"070701", "entry at {offset}");
        let field = |i: usize| {
            u32::from_str_radix(
                std::str::from_utf8(&data[6 + 8 * i..14 + 8 * i]).unwrap(),
                16,
            )
            .unwrap()
        };
        let (mode, size, namesize) = (field(1), field(6) as usize, field(11) as usize);
        let name = std::str::from_utf8(&data[110..110 + namesize - 1])
            .unwrap()
            .to_string();
        assert_eq!(data[110 + namesize - 1], 0);
        let body_at = (110 + namesize).div_ceil(4) * 4;
        let body = data[body_at..body_at + size].to_vec();
        let next = (body_at + size).div_ceil(4) * 4;
        offset += next;
        data = &data[next..];
        if name == "TRAILER!!!" {
            assert!(data.is_empty());
            return out;
        }
        out.push((name, mode, body));
    }
}

#[test]
fn the_cpio_archive_reads_back_with_parents_first() {
    let mut c = Cpio::default();
    c.file("usr/lib/xen-4.17/bin/xl", 0o755, b"ELF");
    c.symlink("usr/sbin/xl", "../lib/xen-4.17/bin/xl");
    c.dir("usr/lib");
    c.file("/init", 0o100755, b"#!/bin/busybox sh\n");
    let entries = read_cpio(&c.finish());
    let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "usr",
            "usr/lib",
            "usr/lib/xen-4.17",
            "usr/lib/xen-4.17/bin",
            "usr/lib/xen-4.17/bin/xl",
            "usr/sbin",
            "usr/sbin/xl",
            "init"
        ]
    );
    assert_eq!(entries[0].1, 0o040755);
    assert_eq!(
        (entries[4].1, entries[4].2.as_slice()),
        (0o100755, &b"ELF"[..])
    );
    assert_eq!(
        (entries[6].1, entries[6].2.as_slice()),
        (0o120777, &b"../lib/xen-4.17/bin/xl"[..])
    );
    assert_eq!(entries[7].1, 0o100755);
}

#[test]
fn only_debian_archive_entries_are_kept() {
    let deb822 = "Types: deb\n# a comment\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\n\
                  Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n\
                  Types: deb\nURIs: https://deb.nodesource.com/node_20.x\nSuites: nodistro\nComponents: main\n\
                  Architectures: amd64\n\n\
                  Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: main\n\n\
                  Types: deb\nURIs: http://security.debian.org/debian-security\nSuites: bookworm-security\n\
                  Components: main\nArchitectures: amd64\n";
    let one_line = "deb https://packages.cloud.google.com/apt cloud-sdk-bookworm main\n\
                    deb http://deb.debian.org/debian bookworm main\n# deb http://deb.debian.org/debian sid main\n\
                    deb [arch=amd64] http://deb.debian.org/debian bookworm contrib\n";
    let (stanzas, list) = debian_sources(&[deb822.to_string()], &[one_line.to_string()]);
    assert_eq!(
        stanzas,
        "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\
         Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n\
         Types: deb\nURIs: http://security.debian.org/debian-security\nSuites: bookworm-security\n\
         Components: main\n\n"
    );
    assert_eq!(list, "deb http://deb.debian.org/debian bookworm main\n");
}

#[test]
fn the_kernel_is_the_one_the_metapackage_names() {
    let depends = "linux-image-arm64\n  Depends: linux-image-6.1.0-57-arm64\n";
    assert_eq!(
        kernel_package(depends).as_deref(),
        Some("linux-image-6.1.0-57-arm64")
    );
    assert_eq!(
        kernel_package("linux-image-arm64\n  Depends: <none>\n"),
        None
    );
    assert_eq!(
        kernel_package("linux-image-arm64\n  Depends: linux-base\n"),
        None
    );
}

#[test]
fn the_initrd_follows_the_kernel_on_a_2_mib_boundary() {
    assert_eq!(initrd_addr(32_956_352), 0x4a20_0000);
    assert_eq!(initrd_addr(0x20_0000), 0x4840_0000);
    assert_eq!(initrd_addr(0x20_0001), 0x4860_0000);
}

#[test]
fn needed_libraries_are_read_from_the_dynamic_section() {
    // A host program: dynamically linked against the C library.
    let ls = std::fs::read("/bin/ls").expect("/bin/ls");
    let libs = needed(&ls).unwrap();
    assert!(libs.iter().any(|l| l == "libc.so.6"), "{libs:?}");
    assert!(needed(b"not an ELF file").is_err());
}
