//! What a check comes to when it cannot answer (a bound reached, the program not found) and when
//! several images are of another machine: warnings that name the path and the layer, one error
//! that names every image.

use super::{good_amd64, job, run};
use crate::support::fixtures::{amd64, arm64, push_content, Compression, Item};
use crate::support::Registry;
use serde_json::json;

#[test]
fn every_image_of_another_machine_is_named_and_the_run_still_counts_them() {
    let reg = Registry::start();
    for (tag, platform, code) in [
        ("amd64", "linux/amd64", arm64()),
        ("arm64", "linux/arm64", amd64()),
    ] {
        push_content(
            &reg,
            &format!("group/app:latest-{tag}"),
            platform,
            json!({"Entrypoint": ["/app"]}),
            &[vec![Item::File("app", 0o755, code)]],
            Compression::Gzip,
        );
    }
    let (code, stdout, stderr) = run(&job(&reg, &[]), &["push"]);
    assert_eq!(code, 4, "{stderr}");
    assert_eq!(stdout, "");
    assert!(
        stderr.contains("entrypoint machine code checked images=2 matched=0"),
        "{stderr}"
    );
    assert!(
        stderr.contains("2 images start a program built for another machine than their platform:"),
        "{stderr}"
    );
    for (tag, platform, found, other) in [
        (
            "amd64",
            "linux/amd64",
            "ELF 64-bit LSB ARM aarch64 (machine code for linux/arm64)",
            "arm64",
        ),
        (
            "arm64",
            "linux/arm64",
            "ELF 64-bit LSB x86-64 (machine code for linux/amd64)",
            "amd64",
        ),
    ] {
        let image = reg.repo(&format!("group/app:latest-{tag}"));
        let said = format!("is {platform}, but the program it starts is not: /app is {found}");
        assert!(
            stderr
                .lines()
                .any(|l| l.contains(&format!("{image}@sha256:")) && l.contains(&said)),
            "{stderr}"
        );
        assert!(
            stderr.contains(&format!("the {platform} build put a program built for another machine into the image: download or copy artifacts for the target platform (…-${{TARGETARCH}}, not …-{other})")),
            "{stderr}"
        );
    }
    assert_eq!(reg.raw("group/app:latest"), None, "nothing was pushed");
}

#[test]
fn a_program_not_found_or_past_the_budget_is_a_warning_not_a_failure() {
    let reg = Registry::start();
    good_amd64(&reg);
    // Incompressible filler ahead of the program: 1 KiB of budget cannot reach it.
    let mut x = 7u64;
    let filler: Vec<u8> = (0..64 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    push_content(
        &reg,
        "group/app:latest-arm64",
        "linux/arm64",
        json!({"Entrypoint": ["/srv/app"]}),
        &[vec![
            Item::File("filler", 0o644, filler),
            Item::File("srv/app", 0o755, amd64()),
        ]],
        Compression::Gzip,
    );
    let (code, _, stderr) = run(
        &job(&reg, &[("MULTIARCH_CONTENT_BUDGET", "1KiB")]),
        &["push"],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("machine code not checked: the program was not found within MULTIARCH_CONTENT_BUDGET (1KiB) of linux/arm64 layers downloaded: it ran out in layer 1/1 (sha256:"),
        "{stderr}"
    );
    assert!(
        stderr.contains("while looking for /srv (entrypoint \"/srv/app\"); raise it"),
        "{stderr}"
    );
    assert!(stderr.contains("warnings=1"), "{stderr}");

    // A layer of zeros that compresses to almost nothing: past 8 × the budget once
    // decompressed, that layer is named, and the bound apart from the download budget.
    push_content(
        &reg,
        "group/app:latest-arm64",
        "linux/arm64",
        json!({"Entrypoint": ["/srv/app"]}),
        &[
            vec![Item::File("srv/app", 0o755, amd64())],
            vec![
                Item::File("zeros", 0o644, vec![0; 1 << 20]),
                Item::File("srv/app", 0o755, amd64()),
            ],
        ],
        Compression::Gzip,
    );
    let (code, _, stderr) = run(
        &job(&reg, &[("MULTIARCH_CONTENT_BUDGET", "64KiB")]),
        &["push"],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("machine code not checked: the program was not found: layer 2/2 (sha256:"),
        "{stderr}"
    );
    assert!(
        stderr.contains("expands past the decompressed limit of 512KiB (8× MULTIARCH_CONTENT_BUDGET 64KiB, a bound apart from the download budget) while looking for /srv (entrypoint \"/srv/app\")"),
        "{stderr}"
    );

    push_content(
        &reg,
        "group/app:latest-arm64",
        "linux/arm64",
        json!({"Entrypoint": ["/usr/local/bin/missing"]}),
        &[vec![Item::File("srv/app", 0o755, amd64())]],
        Compression::Gzip,
    );
    let (code, _, stderr) = run(&job(&reg, &[]), &["push"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("machine code not checked: the program was not found: /usr does not exist"),
        "{stderr}"
    );

    let (code, _, stderr) = run(&job(&reg, &[("MULTIARCH_CONTENT_BUDGET", "0")]), &["push"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("MULTIARCH_CONTENT_BUDGET = \"0\" is invalid"),
        "{stderr}"
    );
    assert!(stderr.contains("256MiB"), "{stderr}");
}
