//! Machine code: what the first bytes of a file say it is (an ELF or PE header, a `#!` line, or
//! something else), which header each platform's programs carry, and whether one is the other.
//! Pure and table-driven.
//!
//! ELF: `e_ident` class (32/64-bit) and byte order, then `e_machine` at offset 18
//! (<https://refspecs.linuxfoundation.org/elf/gabi4+/ch4.eheader.html>). PE: `MZ`, the offset
//! of the PE header at 0x3c, `PE\0\0`, then `Machine`
//! (<https://learn.microsoft.com/windows/win32/debug/pe-format>).

use crate::platform::Platform;

/// How many bytes of a file are read to know what it is: a `#!` line as the kernel reads it
/// (`BINPRM_BUF_SIZE`); more only for a PE header further in.
pub(crate) const HEAD_BYTES: usize = 256;
/// The furthest a PE header is looked for: linkers put it within the first KiB, the loader
/// anywhere in the file; 64 KiB covers stubs and packers without reading programs whole.
pub(crate) const PE_HEADER_LIMIT: usize = 64 * 1024;

/// What a file's first bytes say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Head {
    Elf(Elf),
    Pe {
        machine: u16,
    },
    /// An `MZ` (DOS) header with no PE header within `PE_HEADER_LIMIT`.
    Dos,
    /// A `#!` line: what follows `#!`, with the blanks (spaces, tabs) around it trimmed as the
    /// kernel trims them: a carriage return stays (a script with Windows line endings names an
    /// interpreter ending in `\r`, which no image holds).
    Script(Box<str>),
    /// Anything else: text without `#!`, a jar, an empty file, a truncated header.
    Other,
}

/// The identity of an ELF file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Elf {
    pub(crate) bits64: bool,
    pub(crate) little: bool,
    pub(crate) machine: u16,
}

/// What a platform's programs are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expected {
    Elf(Elf),
    Pe { machine: u16 },
}

/// (architecture, 64-bit, little-endian, e_machine) of every architecture Linux images are
/// published for.
const ELF: &[(&str, bool, bool, u16)] = &[
    ("amd64", true, true, 62),
    ("arm64", true, true, 183),
    ("arm", false, true, 40),
    ("386", false, true, 3),
    ("ppc64le", true, true, 21),
    ("ppc64", true, false, 21),
    ("s390x", true, false, 22),
    ("riscv64", true, true, 243),
    ("mips64le", true, true, 8),
    ("mips64", true, false, 8),
    ("mipsle", false, true, 8),
    ("mips", false, false, 8),
    ("loong64", true, true, 258),
];

/// (architecture, PE Machine) of Windows images.
const PE: &[(&str, u16)] = &[
    ("amd64", 0x8664),
    ("arm64", 0xaa64),
    ("386", 0x14c),
    ("arm", 0x1c4),
];

/// Names of ELF machines as `file` shows them.
const ELF_NAMES: &[(u16, &str)] = &[
    (3, "Intel 80386"),
    (8, "MIPS"),
    (20, "PowerPC"),
    (21, "64-bit PowerPC"),
    (22, "IBM S/390"),
    (40, "ARM"),
    (62, "x86-64"),
    (183, "ARM aarch64"),
    (243, "RISC-V"),
    (258, "LoongArch"),
];

const PE_NAMES: &[(u16, &str)] = &[
    (0x14c, "Intel 386"),
    (0x1c0, "ARM"),
    (0x1c4, "ARM Thumb-2"),
    (0x8664, "x86-64"),
    (0xaa64, "ARM64"),
];

/// The header `platform`'s programs carry; `None` for a platform whose machine code multiarch
/// does not know (wasm, an unknown architecture).
pub(crate) fn expected(platform: &Platform) -> Option<Expected> {
    let arch = platform.architecture.as_str();
    if platform.os == "windows" {
        return PE
            .iter()
            .find(|(a, _)| *a == arch)
            .map(|(_, machine)| Expected::Pe { machine: *machine });
    }
    ELF.iter()
        .find(|(a, ..)| *a == arch)
        .map(|(_, bits64, little, machine)| {
            Expected::Elf(Elf {
                bits64: *bits64,
                little: *little,
                machine: *machine,
            })
        })
}

/// How many bytes of a file starting with `first` are needed to classify it (at least those
/// given): more only for a PE header that lies past them.
pub(crate) fn wanted(first: &[u8]) -> usize {
    if first.len() >= 0x40 && first.starts_with(b"MZ") {
        let at = u32::from_le_bytes([first[0x3c], first[0x3d], first[0x3e], first[0x3f]]) as usize;
        if at + 6 <= PE_HEADER_LIMIT {
            return (at + 6).max(first.len());
        }
    }
    first.len()
}

/// Classifies a file by its first bytes (`HEAD_BYTES`, or what `wanted` asked for).
pub(crate) fn classify(bytes: &[u8]) -> Head {
    if bytes.len() >= 20 && bytes.starts_with(b"\x7fELF") {
        let bits64 = match bytes[4] {
            1 => false,
            2 => true,
            _ => return Head::Other,
        };
        let little = match bytes[5] {
            1 => true,
            2 => false,
            _ => return Head::Other,
        };
        let pair = [bytes[18], bytes[19]];
        let machine = if little {
            u16::from_le_bytes(pair)
        } else {
            u16::from_be_bytes(pair)
        };
        return Head::Elf(Elf {
            bits64,
            little,
            machine,
        });
    }
    if bytes.len() >= 0x40 && bytes.starts_with(b"MZ") {
        let at = u32::from_le_bytes([bytes[0x3c], bytes[0x3d], bytes[0x3e], bytes[0x3f]]) as usize;
        return match bytes.get(at..at + 6) {
            Some(pe) if pe.starts_with(b"PE\0\0") => Head::Pe {
                machine: u16::from_le_bytes([pe[4], pe[5]]),
            },
            _ => Head::Dos,
        };
    }
    if let Some(rest) = bytes.strip_prefix(b"#!") {
        let rest = &rest[..rest.len().min(HEAD_BYTES - 2)];
        let line = rest.split(|b| *b == b'\n').next().unwrap_or_default();
        let line = String::from_utf8_lossy(line);
        return Head::Script(line.trim_matches(BLANK).into());
    }
    Head::Other
}

/// What the kernel trims around a `#!` line's words and splits them at.
pub(crate) const BLANK: &[char] = &[' ', '\t'];

/// What judging a file's head against its platform came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Judgement {
    Matches,
    /// Machine code of another machine: what it is (`ELF 64-bit LSB x86-64`) and, when known,
    /// the platform whose code it is.
    Differs {
        found: String,
        platform: Option<String>,
    },
    /// Not machine code multiarch can hold against this platform, and why.
    Unjudged(String),
}

/// Judges `head` against what the platform's programs are (`os` names the platform's OS).
pub(crate) fn judge(head: &Head, expected: Expected, os: &str) -> Judgement {
    match (head, expected) {
        (Head::Elf(elf), Expected::Elf(want)) => {
            if *elf == want {
                Judgement::Matches
            } else {
                Judgement::Differs {
                    found: describe(head),
                    platform: elf_platform(elf).map(|a| format!("{os}/{a}")),
                }
            }
        }
        (Head::Pe { machine }, Expected::Pe { machine: want }) => {
            if *machine == want {
                Judgement::Matches
            } else {
                Judgement::Differs {
                    found: describe(head),
                    platform: PE
                        .iter()
                        .find(|(_, m)| m == machine)
                        .map(|(a, _)| format!("windows/{a}")),
                }
            }
        }
        (Head::Elf(_), Expected::Pe { .. }) => {
            Judgement::Unjudged("an ELF program in a Windows image".into())
        }
        (Head::Pe { .. }, Expected::Elf(_)) => {
            Judgement::Unjudged("a Windows (PE) program in a non-Windows image".into())
        }
        (Head::Script(_), _) => Judgement::Unjudged("a script".into()),
        (Head::Dos, _) => Judgement::Unjudged(format!(
            "an MZ (DOS) program without a PE header in its first {} KiB",
            PE_HEADER_LIMIT / 1024
        )),
        (Head::Other, _) => Judgement::Unjudged(
            "neither an ELF nor a PE program nor a #! script (a jar, or a script without #!)"
                .into(),
        ),
    }
}

/// The architecture whose programs have this ELF identity.
fn elf_platform(elf: &Elf) -> Option<&'static str> {
    ELF.iter()
        .find(|(_, bits64, little, machine)| {
            *bits64 == elf.bits64 && *little == elf.little && *machine == elf.machine
        })
        .map(|(a, ..)| *a)
}

/// `ELF 64-bit LSB x86-64`, `PE x86-64`, as `file` would say it.
pub(crate) fn describe(head: &Head) -> String {
    match head {
        Head::Elf(elf) => {
            let name = ELF_NAMES
                .iter()
                .find(|(m, _)| *m == elf.machine)
                .map_or_else(
                    || format!("machine {}", elf.machine),
                    |(_, n)| n.to_string(),
                );
            format!(
                "ELF {}-bit {} {name}",
                if elf.bits64 { 64 } else { 32 },
                if elf.little { "LSB" } else { "MSB" }
            )
        }
        Head::Pe { machine } => {
            let name = PE_NAMES
                .iter()
                .find(|(m, _)| m == machine)
                .map_or_else(|| format!("machine {machine:#x}"), |(_, n)| n.to_string());
            format!("PE {name}")
        }
        Head::Script(line) => format!("script (#!{line})"),
        Head::Dos => "MZ (DOS) program".into(),
        Head::Other => "not machine code".into(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A 64-byte ELF header (the rest of a program does not matter here).
    pub(crate) fn elf(bits64: bool, little: bool, machine: u16) -> Vec<u8> {
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = if bits64 { 2 } else { 1 };
        h[5] = if little { 1 } else { 2 };
        h[6] = 1;
        let (e_type, e_machine) = if little {
            (2u16.to_le_bytes(), machine.to_le_bytes())
        } else {
            (2u16.to_be_bytes(), machine.to_be_bytes())
        };
        h[16..18].copy_from_slice(&e_type);
        h[18..20].copy_from_slice(&e_machine);
        h
    }

    /// An MZ stub whose PE header sits at `at`.
    pub(crate) fn pe(machine: u16, at: usize) -> Vec<u8> {
        let mut h = vec![0u8; at + 24];
        h[..2].copy_from_slice(b"MZ");
        h[0x3c..0x40].copy_from_slice(&(at as u32).to_le_bytes());
        h[at..at + 4].copy_from_slice(b"PE\0\0");
        h[at + 4..at + 6].copy_from_slice(&machine.to_le_bytes());
        h
    }

    fn platform(text: &str) -> Platform {
        Platform::parse("test", text).unwrap()
    }

    #[test]
    fn each_platform_expects_its_own_machine_and_no_other() {
        let headers: Vec<(&str, Vec<u8>)> = vec![
            ("linux/amd64", elf(true, true, 62)),
            ("linux/arm64", elf(true, true, 183)),
            ("linux/arm/v7", elf(false, true, 40)),
            ("linux/arm/v6", elf(false, true, 40)),
            ("linux/386", elf(false, true, 3)),
            ("linux/ppc64le", elf(true, true, 21)),
            ("linux/ppc64", elf(true, false, 21)),
            ("linux/s390x", elf(true, false, 22)),
            ("linux/riscv64", elf(true, true, 243)),
            ("linux/mips64le", elf(true, true, 8)),
            ("linux/mips64", elf(true, false, 8)),
            ("linux/loong64", elf(true, true, 258)),
            ("windows/amd64", pe(0x8664, 0x80)),
            ("windows/arm64", pe(0xaa64, 0x100)),
        ];
        for (p, bytes) in &headers {
            let p = platform(p);
            let want = expected(&p).unwrap_or_else(|| panic!("{p}"));
            let head = classify(&bytes[..wanted(&bytes[..HEAD_BYTES.min(bytes.len())])]);
            assert_eq!(judge(&head, want, &p.os), Judgement::Matches, "{p}");
            for (q, other) in &headers {
                let q = platform(q);
                let same_code = expected(&q) == Some(want);
                if q == p || same_code {
                    continue;
                }
                let verdict = judge(&classify(other), want, &p.os);
                assert!(
                    !matches!(verdict, Judgement::Matches),
                    "{q} code passed as {p}"
                );
            }
        }
    }

    #[test]
    fn a_mismatch_says_what_was_found_and_whose_it_is() {
        let arm64 = expected(&platform("linux/arm64")).unwrap();
        assert_eq!(
            judge(&classify(&elf(true, true, 62)), arm64, "linux"),
            Judgement::Differs {
                found: "ELF 64-bit LSB x86-64".into(),
                platform: Some("linux/amd64".into())
            }
        );
        let ppc64le = expected(&platform("linux/ppc64le")).unwrap();
        assert_eq!(
            judge(&classify(&elf(true, false, 21)), ppc64le, "linux"),
            Judgement::Differs {
                found: "ELF 64-bit MSB 64-bit PowerPC".into(),
                platform: Some("linux/ppc64".into())
            }
        );
        let win = expected(&platform("windows/amd64")).unwrap();
        assert_eq!(
            judge(&classify(&pe(0xaa64, 0xf8)), win, "windows"),
            Judgement::Differs {
                found: "PE ARM64".into(),
                platform: Some("windows/arm64".into())
            }
        );
        // 32-bit x86 code in an amd64 image is not amd64 code.
        let amd64 = expected(&platform("linux/amd64")).unwrap();
        assert!(matches!(
            judge(&classify(&elf(false, true, 3)), amd64, "linux"),
            Judgement::Differs { .. }
        ));
    }

    #[test]
    fn what_is_not_machine_code_is_not_judged() {
        let amd64 = expected(&platform("linux/amd64")).unwrap();
        for bytes in [
            &b"#!/bin/sh\nexec app\n"[..],
            b"PK\x03\x04 a jar",
            b"echo no shebang",
            b"",
            b"\x7fELF",
            b"MZ but far too short",
        ] {
            assert!(
                matches!(
                    judge(&classify(bytes), amd64, "linux"),
                    Judgement::Unjudged(_)
                ),
                "{bytes:?}"
            );
        }
        assert_eq!(
            classify(b"#! /usr/bin/env -S python3 -u \nprint()"),
            Head::Script("/usr/bin/env -S python3 -u".into())
        );
        // As the kernel reads it: the carriage return is part of the line's last word.
        assert_eq!(
            classify(b"#!/bin/sh\r\necho"),
            Head::Script("/bin/sh\r".into())
        );
        assert_eq!(expected(&platform("wasip1/wasm")), None);
    }

    #[test]
    fn a_pe_header_past_the_first_bytes_is_asked_for() {
        let bytes = pe(0x8664, 0x400);
        assert_eq!(wanted(&bytes[..HEAD_BYTES]), 0x406);
        assert_eq!(classify(&bytes[..HEAD_BYTES]), Head::Dos);
        assert_eq!(classify(&bytes[..0x406]), Head::Pe { machine: 0x8664 });
        assert_eq!(wanted(&pe(0x8664, 0x3000)[..HEAD_BYTES]), 0x3006);
        let far = pe(0x8664, 0x10000);
        assert_eq!(wanted(&far[..HEAD_BYTES]), HEAD_BYTES);
        assert_eq!(classify(&far[..HEAD_BYTES]), Head::Dos);
        assert!(matches!(
            judge(&Head::Dos, expected(&platform("windows/amd64")).unwrap(), "windows"),
            Judgement::Unjudged(why) if why == "an MZ (DOS) program without a PE header in its first 64 KiB"
        ));
    }
}
