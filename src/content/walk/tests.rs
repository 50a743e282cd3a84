//! The walk over real (in-memory) layer archives, written by the `tar` crate and compressed by
//! flate2 and ruzstd: what is found, how, and how many layers it took.

use std::io::Write as _;

use super::*;
use crate::content::machine::tests::{elf, pe};
use crate::content::machine::{self, Judgement};
use crate::content::resolve::Step;
use crate::content::tar::tests::Builder;
use crate::platform::Platform;

const AMD64: (bool, bool, u16) = (true, true, 62);
const ARM64: (bool, bool, u16) = (true, true, 183);

fn bin(m: (bool, bool, u16)) -> Vec<u8> {
    elf(m.0, m.1, m.2)
}

fn gzip(bytes: Vec<u8>) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&bytes).unwrap();
    gz.finish().unwrap()
}

/// Walks `layers` (base first, as manifests list them; `None`: a foreign layer) for the
/// program of `config` on `platform`.
fn run_with(
    config: &str,
    platform: &str,
    layers: Vec<Option<Vec<u8>>>,
    limits: Limits,
) -> (Walked, usize) {
    let platform = Platform::parse("test", platform).unwrap();
    let windows = platform.os == "windows";
    let program = crate::content::program::from_config(config.as_bytes(), windows).unwrap();
    let expected = machine::expected(&platform).unwrap();
    let top_first: Vec<Option<Vec<u8>>> = layers.into_iter().rev().collect();
    let skips: Vec<Option<String>> = top_first
        .iter()
        .map(|l| l.is_none().then(|| "foreign".to_string()))
        .collect();
    let mut open = |i: usize| -> io::Result<Box<dyn Read>> {
        Ok(Box::new(io::Cursor::new(top_first[i].clone().unwrap())))
    };
    let report = walk(&program, expected, &skips, limits, &mut open);
    (report.walked, report.opened)
}

fn run(config: &str, platform: &str, layers: Vec<Option<Vec<u8>>>) -> (Walked, usize) {
    run_with(
        config,
        platform,
        layers,
        Limits {
            expanded: u64::MAX,
            entries: usize::MAX,
        },
    )
}

fn entrypoint(e: &str) -> String {
    format!(r#"{{"config":{{"Entrypoint":[{e:?}]}}}}"#)
}

/// The file found and the judgement.
fn judged(w: &Walked) -> (String, Judgement) {
    match w {
        Walked::Found(Finding::Judged {
            file, judgement, ..
        }) => (file.path.clone(), judgement.clone()),
        other => panic!("not judged: {other:?}"),
    }
}

fn steps(w: &Walked) -> Vec<Step> {
    match w {
        Walked::Found(Finding::Judged { steps, .. }) => steps.clone(),
        other => panic!("not judged: {other:?}"),
    }
}

fn base() -> Vec<u8> {
    Builder::new()
        .symlink("bin", "usr/bin")
        .dir("usr/bin/")
        .file("usr/bin/dash", 0o755, &bin(ARM64))
        .symlink("usr/bin/sh", "dash")
        .file("usr/bin/python3.11", 0o755, &bin(ARM64))
        .hardlink("usr/bin/python3", "usr/bin/python3.11")
        .file("usr/bin/env", 0o755, &bin(ARM64))
        .finish()
}

#[test]
fn a_program_of_another_machine_in_the_top_layer_is_found_without_reading_below() {
    let top = gzip(
        Builder::new()
            .file("usr/local/bin/app", 0o755, &bin(AMD64))
            .file("usr/local/bin/zzz", 0o644, &[0; 10_000])
            .finish(),
    );
    let (w, opened) = run(
        &entrypoint("/usr/local/bin/app"),
        "linux/arm64",
        vec![Some(base()), Some(top)],
    );
    let (file, judgement) = judged(&w);
    assert_eq!(file, "/usr/local/bin/app");
    assert!(
        matches!(judgement, Judgement::Differs { platform: Some(ref p), .. } if p == "linux/amd64")
    );
    assert_eq!(opened, 1);
}

#[test]
fn through_path_and_a_symlink_into_a_lower_layer() {
    let lower = Builder::new()
        .file("opt/app/bin/app", 0o755, &bin(AMD64))
        .finish();
    let top = Builder::new()
        .symlink("usr/local/bin/app", "/opt/app/bin/app")
        .finish();
    let config = r#"{"config":{"Entrypoint":["app"],"Cmd":["--serve"]}}"#;
    let (w, opened) = run(
        config,
        "linux/arm64",
        vec![Some(base()), Some(lower), Some(top)],
    );
    assert_eq!(judged(&w).0, "/opt/app/bin/app");
    assert_eq!(opened, 2, "the base layer is not read");
    let s = steps(&w);
    assert_eq!(s[0], Step::Start("entrypoint \"app\"".into()));
    assert_eq!(s[1], Step::Path("/usr/local/bin/app".into()));
    assert!(matches!(&s[2], Step::Symlink { to, layer: 0, .. } if to == "/opt/app/bin/app"));
}

#[test]
fn an_upper_layer_overrides_and_whiteouts_hide() {
    let amd = Builder::new()
        .file("usr/local/bin/app", 0o755, &bin(AMD64))
        .file("srv/app", 0o755, &bin(AMD64))
        .finish();
    let fixed = Builder::new()
        .file("usr/local/bin/app", 0o755, &bin(ARM64))
        .finish();
    let (w, opened) = run(
        &entrypoint("app"),
        "linux/arm64",
        vec![Some(amd.clone()), Some(fixed)],
    );
    assert_eq!(
        judged(&w),
        ("/usr/local/bin/app".into(), Judgement::Matches)
    );
    assert_eq!(opened, 1);

    // Whited out above: PATH goes on to /usr/bin, in the base.
    let gone = Builder::new()
        .file("usr/local/bin/.wh.app", 0o644, b"")
        .finish();
    let with_app = Builder::new()
        .file("usr/bin/app", 0o755, &bin(ARM64))
        .finish();
    let (w, _) = run(
        &entrypoint("app"),
        "linux/arm64",
        vec![Some(with_app), Some(amd.clone()), Some(gone)],
    );
    assert_eq!(judged(&w), ("/usr/bin/app".into(), Judgement::Matches));

    // An opaque directory hides the layers below it; a whited-out parent too.
    let opaque = Builder::new().file("srv/.wh..wh..opq", 0o644, b"").finish();
    let (w, _) = run(
        &entrypoint("/srv/app"),
        "linux/arm64",
        vec![Some(amd.clone()), Some(opaque)],
    );
    assert!(matches!(w, Walked::Found(Finding::Missing { .. })), "{w:?}");
    let parent = Builder::new().file(".wh.srv", 0o644, b"").finish();
    let (w, _) = run(
        &entrypoint("/srv/app"),
        "linux/arm64",
        vec![Some(amd), Some(parent)],
    );
    assert!(matches!(w, Walked::Found(Finding::Missing { .. })), "{w:?}");
}

#[test]
fn a_script_is_judged_by_its_interpreter_through_symlinks_read_earlier() {
    let top = Builder::new()
        .file("docker-entrypoint.sh", 0o755, b"#!/bin/sh\nexec app\n")
        .file(
            "usr/local/bin/tool",
            0o755,
            b"#!/usr/bin/env -S python3 -u\n",
        )
        .finish();
    let (w, opened) = run(
        &entrypoint("/docker-entrypoint.sh"),
        "linux/arm64",
        vec![Some(gzip(base())), Some(top.clone())],
    );
    assert_eq!(judged(&w), ("/usr/bin/dash".into(), Judgement::Matches));
    assert_eq!(opened, 2);
    // /bin → usr/bin, then sh → dash, which the layer held before the link.
    assert_eq!(
        steps(&w)
            .iter()
            .filter(|s| matches!(s, Step::Symlink { .. }))
            .count(),
        2
    );
    let (w, _) = run(
        &entrypoint("tool"),
        "linux/arm64",
        vec![Some(base()), Some(top)],
    );
    assert_eq!(
        judged(&w),
        ("/usr/bin/python3.11".into(), Judgement::Matches)
    );
    assert!(steps(&w).iter().any(|s| matches!(s, Step::Hardlink { .. })));
    assert!(steps(&w).contains(&Step::Env("python3".into())));
}

#[test]
fn a_script_with_windows_line_endings_names_an_interpreter_no_image_holds() {
    let top = Builder::new()
        .file("docker-entrypoint.sh", 0o755, b"#!/bin/sh\r\nexec app\r\n")
        .finish();
    let (w, _) = run(
        &entrypoint("/docker-entrypoint.sh"),
        "linux/arm64",
        vec![Some(base()), Some(top)],
    );
    // As the kernel reads the line: the interpreter is `/bin/sh\r`, which is not there, so the
    // container would fail to start, whatever /bin/sh is built for.
    let Walked::Found(Finding::Missing { what, steps: way }) = &w else {
        panic!("{w:?}")
    };
    assert!(what.contains("/bin/sh\r"), "{what}");
    assert!(way
        .iter()
        .any(|s| matches!(s, Step::Script { line, .. } if line == "/bin/sh\r")));

    // With an argument, the carriage return lands in it: /bin/sh is found and judged, and the
    // line is kept as the kernel reads it for the warning.
    let top = Builder::new()
        .file(
            "docker-entrypoint.sh",
            0o755,
            b"#!/bin/sh -e\r\nexec app\r\n",
        )
        .finish();
    let (w, _) = run(
        &entrypoint("/docker-entrypoint.sh"),
        "linux/arm64",
        vec![Some(base()), Some(top)],
    );
    assert_eq!(judged(&w), ("/usr/bin/dash".into(), Judgement::Matches));
    assert!(steps(&w)
        .iter()
        .any(|s| matches!(s, Step::Script { line, .. } if line == "/bin/sh -e\r")));
}

#[test]
fn cmd_alone_names_the_program_and_zstd_layers_are_read() {
    let top = ruzstd::encoding::compress_to_vec(
        &Builder::new()
            .file("bin/server", 0o755, &bin(AMD64))
            .finish()[..],
        ruzstd::encoding::CompressionLevel::Fastest,
    );
    let base = Builder::new().dir("bin/").finish();
    let config = r#"{"config":{"Cmd":["/bin/server","-p","80"],"WorkingDir":"/srv"}}"#;
    let (w, _) = run(config, "linux/amd64", vec![Some(base), Some(top)]);
    assert_eq!(judged(&w), ("/bin/server".into(), Judgement::Matches));
}

#[test]
fn a_big_endian_ppc64_program_is_not_ppc64le_and_arm_v7_is_32_bit() {
    let ppc = Builder::new()
        .file("app", 0o755, &elf(true, false, 21))
        .finish();
    let (w, _) = run(&entrypoint("/app"), "linux/ppc64le", vec![Some(ppc)]);
    assert!(
        matches!(judged(&w).1, Judgement::Differs { platform: Some(ref p), .. } if p == "linux/ppc64")
    );
    let arm = Builder::new()
        .file("app", 0o755, &elf(false, true, 40))
        .finish();
    let (w, _) = run(
        &entrypoint("./app"),
        "linux/arm/v7",
        vec![Some(arm.clone())],
    );
    assert_eq!(judged(&w).1, Judgement::Matches);
    let (w, _) = run(&entrypoint("/app"), "linux/arm64", vec![Some(arm)]);
    assert!(matches!(judged(&w).1, Judgement::Differs { .. }));
}

#[test]
fn windows_programs_are_found_under_files_without_case() {
    let layer = Builder::new()
        .dir("Files/")
        .file("Files/App/Server.EXE", 0o644, &pe(0xaa64, 0x80))
        .file("Hives/Software_Delta", 0o644, b"hive")
        .finish();
    let config = r#"{"config":{"Entrypoint":["C:\\app\\server.exe"]}}"#;
    let (w, _) = run(config, "windows/amd64", vec![None, Some(layer.clone())]);
    assert!(
        matches!(judged(&w).1, Judgement::Differs { platform: Some(ref p), .. } if p == "windows/arm64")
    );
    // A bare name: the working directory first, `.exe` added.
    let config = r#"{"config":{"Cmd":["server"],"WorkingDir":"C:\\App"}}"#;
    let (w, _) = run(config, "windows/arm64", vec![None, Some(layer)]);
    assert_eq!(judged(&w).1, Judgement::Matches);
    // cmd.exe lives in the foreign base layer, which is not read.
    let config = r#"{"config":{"Cmd":["cmd","/S","/C","x"]}}"#;
    let (w, opened) = run(
        config,
        "windows/amd64",
        vec![None, Some(Builder::new().finish())],
    );
    assert!(matches!(w, Walked::Hidden { layer: 1, .. }), "{w:?}");
    assert_eq!(opened, 1);
}

#[test]
fn path_order_holds_within_a_layer_and_the_top_layer_wins_across() {
    let lower = Builder::new()
        .file("usr/local/sbin/app", 0o755, &bin(AMD64))
        .finish();
    let top = Builder::new()
        .file("usr/bin/app", 0o755, &bin(AMD64))
        .file("usr/local/bin/app", 0o755, &bin(ARM64))
        .file("usr/local/bin/notexec", 0o644, &bin(AMD64))
        .file("usr/bin/notexec", 0o755, &bin(ARM64))
        .finish();
    let (w, opened) = run(
        &entrypoint("app"),
        "linux/arm64",
        vec![Some(lower), Some(top.clone())],
    );
    assert_eq!(
        judged(&w),
        ("/usr/local/bin/app".into(), Judgement::Matches)
    );
    assert_eq!(opened, 1);
    let (w, _) = run(&entrypoint("notexec"), "linux/arm64", vec![Some(top)]);
    assert_eq!(judged(&w), ("/usr/bin/notexec".into(), Judgement::Matches));
}

#[test]
fn what_cannot_be_found_or_read_says_so() {
    let top = Builder::new()
        .symlink("a", "b")
        .symlink("b", "/a")
        .file("hard", 0o755, b"")
        .finish();
    let (w, _) = run(&entrypoint("/a"), "linux/amd64", vec![Some(top.clone())]);
    assert!(matches!(w, Walked::Found(Finding::Loop { .. })), "{w:?}");
    let (w, _) = run(
        &entrypoint("/missing"),
        "linux/amd64",
        vec![Some(top.clone())],
    );
    assert!(matches!(w, Walked::Found(Finding::Missing { .. })), "{w:?}");
    let (w, _) = run(
        &entrypoint("nothere"),
        "linux/amd64",
        vec![Some(top.clone())],
    );
    let Walked::Found(Finding::Missing { what, .. }) = w else {
        panic!("{w:?}")
    };
    assert!(what.contains("PATH (/usr/local/sbin:"), "{what}");
    let noise: Vec<u8> = (0..3000u32).map(|i| (i * 31 % 253) as u8).collect();
    let (w, _) = run(&entrypoint("/x"), "linux/amd64", vec![Some(noise)]);
    assert!(matches!(w, Walked::Unreadable { layer: 0, .. }), "{w:?}");
    let (w, _) = run(
        &entrypoint("/x"),
        "linux/amd64",
        vec![Some(top.clone()), None],
    );
    assert!(matches!(w, Walked::Hidden { layer: 0, .. }), "{w:?}");
    let big = Builder::new()
        .file("filler", 0o644, &vec![1u8; 200_000])
        .file("x", 0o755, &bin(AMD64))
        .finish();
    let small = Limits {
        expanded: 100_000,
        entries: usize::MAX,
    };
    let (w, _) = run_with(&entrypoint("/x"), "linux/amd64", vec![Some(big)], small);
    assert_eq!(
        w,
        Walked::OverBudget {
            layer: 0,
            limit: Limit::Expanded,
            waiting: "/x".into()
        }
    );
}

/// The walk's report, with no bounds but the ones `program` sets.
fn report(config: &str, layers: Vec<Vec<u8>>) -> Report {
    let program = crate::content::program::from_config(config.as_bytes(), false).unwrap();
    let expected = machine::expected(&Platform::parse("test", "linux/arm64").unwrap()).unwrap();
    let top_first: Vec<Vec<u8>> = layers.into_iter().rev().collect();
    let mut open = |i: usize| -> io::Result<Box<dyn Read>> {
        Ok(Box::new(io::Cursor::new(top_first[i].clone())))
    };
    let limits = Limits {
        expanded: u64::MAX,
        entries: usize::MAX,
    };
    walk(
        &program,
        expected,
        &vec![None; top_first.len()],
        limits,
        &mut open,
    )
}

/// A top layer where each of `dirs` PATH directories holds a non-executable `app` (the runtime
/// skips it), and `/zz/app` is arm64 code; the config's PATH lists them all, then `/zz`.
fn long_path(dirs: usize) -> (String, Vec<u8>) {
    let mut layer = Builder::new();
    for i in 0..dirs {
        layer = layer
            .dir(&format!("a{i}/"))
            .file(&format!("a{i}/app"), 0o644, b"data");
    }
    let layer = layer.file("zz/app", 0o755, &bin(ARM64)).finish();
    let path: Vec<String> = (0..dirs)
        .map(|i| format!("/a{i}"))
        .chain(["/zz".into()])
        .collect();
    let config = serde_json::json!({"config": {"Entrypoint": ["app"], "Env": [format!("PATH={}", path.join(":"))]}});
    (config.to_string(), layer)
}

#[test]
fn a_long_path_costs_lookups_in_proportion_to_its_length_not_its_square() {
    use crate::content::program::MAX_PATH_DIRS;
    let dirs = MAX_PATH_DIRS - 1;
    let (config, layer) = long_path(dirs);
    let r = report(&config, vec![layer]);
    assert_eq!(judged(&r.walked), ("/zz/app".into(), Judgement::Matches));
    // Asking every directory again as each awaited entry arrives costs ~4 × dirs² lookups
    // (260,000 here); remembering the directories ruled out keeps it to a few per directory.
    assert!(
        r.lookups < 8 * MAX_PATH_DIRS as u64,
        "{} lookups",
        r.lookups
    );

    // Past the limit, the directories beyond it are not looked in: not found, said so, and the
    // work stays bounded however long PATH is.
    let (config, layer) = long_path(4 * MAX_PATH_DIRS);
    let r = report(&config, vec![layer]);
    let Walked::Found(Finding::Missing { what, .. }) = &r.walked else {
        panic!("{:?}", r.walked)
    };
    assert!(what.contains("PATH (/a0:/a1:"), "{what}");
    assert!(
        what.contains("… 1025 directories in all; only the first 256 were looked in"),
        "{what}"
    );
    assert!(
        r.lookups < 8 * MAX_PATH_DIRS as u64,
        "{} lookups",
        r.lookups
    );
}

#[test]
fn a_path_candidate_that_cannot_be_resolved_is_skipped_for_the_next_directory() {
    let amd = Builder::new()
        .symlink("a/app", "/a/app")
        .symlink("c/app", "/nowhere")
        .dir("d/app/")
        .file("b/app", 0o755, &bin(AMD64))
        .finish();
    let config = r#"{"config":{"Entrypoint":["app"],"Env":["PATH=/a:/c:/d:/b"]}}"#;
    let (w, _) = run(config, "linux/arm64", vec![Some(amd)]);
    assert!(
        matches!(judged(&w), (ref f, Judgement::Differs { .. }) if f == "/b/app"),
        "{w:?}"
    );
    assert_eq!(steps(&w)[1], Step::Path("/b/app".into()));
}

#[test]
fn env_in_a_shebang_is_judged_itself_before_the_program_it_runs() {
    let script = |env: Option<(bool, bool, u16)>| {
        let mut b = Builder::new()
            .file("run", 0o755, b"#!/usr/bin/env python3\n")
            .file("usr/bin/python3", 0o755, &bin(ARM64));
        if let Some(m) = env {
            b = b.file("usr/bin/env", 0o755, &bin(m));
        }
        b.finish()
    };
    let (w, _) = run(
        &entrypoint("/run"),
        "linux/arm64",
        vec![Some(script(Some(AMD64)))],
    );
    assert!(
        matches!(judged(&w), (ref f, Judgement::Differs { .. }) if f == "/usr/bin/env"),
        "{w:?}"
    );
    let (w, _) = run(
        &entrypoint("/run"),
        "linux/arm64",
        vec![Some(script(Some(ARM64)))],
    );
    assert_eq!(judged(&w), ("/usr/bin/python3".into(), Judgement::Matches));
    let (w, _) = run(&entrypoint("/run"), "linux/arm64", vec![Some(script(None))]);
    let Walked::Found(Finding::Missing { what, .. }) = &w else {
        panic!("{w:?}")
    };
    assert_eq!(what, "/usr/bin/env does not exist");
}

#[test]
fn a_bound_reached_names_the_layer_the_limit_and_the_path_awaited() {
    // A gzip bomb: a header for a 100 GB file, then zeros that compress to almost nothing.
    let mut header = tar::Header::new_gnu();
    header.set_size(100_000_000_000);
    header.set_path("huge").unwrap();
    header.set_mode(0o644);
    header.set_cksum();
    let mut bomb = header.as_bytes().to_vec();
    bomb.extend(vec![0u8; 4 << 20]);
    let lower = Builder::new().file("app", 0o755, &bin(AMD64)).finish();
    let limits = Limits {
        expanded: 1 << 20,
        entries: usize::MAX,
    };
    let (w, opened) = run_with(
        &entrypoint("/app"),
        "linux/arm64",
        vec![Some(lower), Some(gzip(bomb))],
        limits,
    );
    assert_eq!(
        w,
        Walked::OverBudget {
            layer: 0,
            limit: Limit::Expanded,
            waiting: "/app".into()
        }
    );
    assert_eq!(opened, 1);
    let many = (0..10).fold(Builder::new(), |b, i| b.dir(&format!("d{i}/")));
    let limits = Limits {
        expanded: u64::MAX,
        entries: 5,
    };
    let (w, _) = run_with(
        &entrypoint("/srv/app"),
        "linux/arm64",
        vec![Some(many.finish())],
        limits,
    );
    assert!(
        matches!(&w, Walked::OverBudget { limit: Limit::Entries, waiting, .. } if waiting == "/srv"),
        "{w:?}"
    );
}

#[test]
fn a_link_loop_keeps_the_way_from_the_entrypoint() {
    let chain = (0..50).fold(Builder::new(), |b, i| {
        b.symlink(&format!("l{i}"), &format!("l{}", i + 1))
    });
    let (w, _) = run(
        &entrypoint("/l0"),
        "linux/arm64",
        vec![Some(chain.finish())],
    );
    let Walked::Found(Finding::Loop { path, steps }) = &w else {
        panic!("{w:?}")
    };
    assert_eq!(path, "/l40");
    assert_eq!(steps[0], Step::Start("entrypoint \"/l0\"".into()));
    assert!(matches!(&steps[1], Step::Symlink { from, .. } if from == "/l0"));
}
