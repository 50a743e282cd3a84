//! A cancelled job (GitLab's cancel button and job timeout send SIGTERM; Ctrl-C sends SIGINT):
//! the real binary against the real registry, a proxy in front of it holding one request on the
//! wire where a push must be in flight, skopeo to see what the registry holds afterwards.
//!
//! The bounds on time here only prove "not hung"; the figures are printed (`--nocapture`).

use std::collections::BTreeSet;
use std::io::{BufRead as _, BufReader, Read as _};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use crate::support::fixtures::{push as push_fixture, push_two_arches, Kind};
use crate::support::proxy::{Fault, Proxy};
use crate::support::{multiarch_process, sha256, vars, Registry};

/// Far longer than a cancelled run takes (about 1 s): only a hang fails it.
const NOT_HUNG: Duration = Duration::from_secs(10);

/// A running `multiarch`, its stderr read as it comes.
struct Run {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

/// What a run ended with, and how long after the (last) signal.
struct Ended {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    after_signal: Duration,
}

impl Run {
    fn start(env: &std::collections::BTreeMap<String, String>, cwd: &Path) -> Run {
        Run::command(env, cwd, &["push"])
    }

    /// `multiarch` with `args`.
    fn command(env: &std::collections::BTreeMap<String, String>, cwd: &Path, args: &[&str]) -> Run {
        let mut child = multiarch_process(env, cwd)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = channel();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Run {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Reads stderr until a line contains `text`.
    fn wait_for_line(&mut self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.seen.iter().any(|l| l.contains(text)) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => panic!("no line with {text:?}; stderr:\n{}", self.seen.join("\n")),
            }
        }
    }

    /// Sends SIG`name` (the shell's own `kill`: no package needed).
    fn signal(&self, name: &str) -> Instant {
        let sent = std::process::Command::new("sh")
            .args([
                "-c",
                r#"kill -s "$0" "$1""#,
                name,
                &self.child.id().to_string(),
            ])
            .status()
            .unwrap();
        assert!(sent.success());
        Instant::now()
    }

    /// Waits (at most `NOT_HUNG` after `signalled`) for the end.
    fn end(mut self, signalled: Instant) -> Ended {
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if signalled.elapsed() > NOT_HUNG {
                let _ = self.child.kill();
                panic!("still running {NOT_HUNG:?} after the signal");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let after_signal = signalled.elapsed();
        let mut stdout = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut stdout)
            .unwrap();
        self.seen.extend(self.lines.iter());
        Ended {
            code: status.code(),
            stdout,
            stderr: self.seen.join("\n"),
            after_signal,
        }
    }
}

/// Cancelled while waiting for a late architecture: nothing was pushed, so nothing is reported
/// and the run ends at once, 143 for SIGTERM and 130 for SIGINT.
#[test]
fn cancelled_while_waiting_ends_at_once_with_nothing_pushed() {
    let reg = Registry::start();
    push_fixture(&reg, "app:latest-amd64", "linux/amd64", Kind::Oci);
    for (signal, code) in [("TERM", 143), ("INT", 130)] {
        let work = tempfile::tempdir().unwrap();
        let env = vars(&[
            ("MULTIARCH_IMAGE", &reg.repo("app")),
            ("MULTIARCH_TAGS", "latest"),
            ("MULTIARCH_INSECURE_REGISTRIES", &reg.host),
            ("MULTIARCH_TIMEOUT", "5m"),
            ("MULTIARCH_DOTENV", "multiarch.env"),
        ]);
        let mut run = Run::start(&env, work.path());
        run.wait_for_line("waiting for sources");
        let sent = run.signal(signal);
        let ended = run.end(sent);
        println!(
            "SIG{signal} during the wait: exit {:?} after {:?}",
            ended.code, ended.after_signal
        );
        assert_eq!(ended.code, Some(code), "{}", ended.stderr);
        assert_eq!(ended.stdout, "");
        assert!(
            ended.stderr.contains(&format!(
                "error: cancelled by SIG{signal} before anything was pushed"
            )),
            "{}",
            ended.stderr
        );
        assert!(!work.path().join("multiarch.env").exists());
        assert_eq!(reg.raw("app:latest"), None);
    }
}

/// The tags `reg` holds the index `digest` under, among `tags` of `app`.
fn holding(reg: &Registry, tags: &[&str], digest: &str) -> BTreeSet<String> {
    tags.iter()
        .filter(|t| {
            reg.raw(&format!("app:{t}"))
                .is_some_and(|b| sha256(&b) == digest)
        })
        .map(|t| t.to_string())
        .collect()
}

/// Cancelled while the tags move, one tag's PUT held on the wire: the PUTs in flight get the
/// grace, the held one is cut off; stdout and the dotenv name exactly the tags that hold the
/// index (skopeo agrees), stderr names the one cut off. A second signal ends a run at once.
#[test]
fn cancelled_while_tags_move_reports_exactly_what_moved() {
    let reg = Registry::start();
    push_two_arches(&reg, "app", Kind::Oci);
    let proxy = Proxy::start(&reg.host, Duration::ZERO, |req, _| {
        if req.method == "PUT" && req.path.ends_with("/manifests/1") {
            Fault::Stall(Duration::from_secs(60))
        } else {
            Fault::Pass
        }
    });
    let image = format!("{}/app", proxy.host);
    let tags = ["latest", "1.0", "1"];
    let env = vars(&[
        ("MULTIARCH_IMAGE", &image),
        ("MULTIARCH_TAGS", &tags.join(",")),
        ("MULTIARCH_INSECURE_REGISTRIES", &proxy.host),
        ("MULTIARCH_DOTENV", "multiarch.env"),
    ]);
    let work = tempfile::tempdir().unwrap();
    let mut run = Run::start(&env, work.path());
    run.wait_for_line("index built");
    let line = run.seen.iter().find(|l| l.contains("index built")).unwrap();
    let digest = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("digest="))
        .unwrap()
        .to_string();
    // The other two tags have landed and `:1` is on the wire.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(proxy
        .log()
        .iter()
        .any(|l| l.starts_with("PUT /v2/app/manifests/1 "))
        && holding(&reg, &tags, &digest).len() == 2)
    {
        assert!(Instant::now() < deadline, "{:?}", proxy.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    let sent = run.signal("TERM");
    let ended = run.end(sent);
    println!(
        "SIGTERM during the push: exit {:?} after {:?}",
        ended.code, ended.after_signal
    );
    assert_eq!(ended.code, Some(143), "{}", ended.stderr);
    let held = holding(&reg, &tags, &digest);
    assert_eq!(
        held,
        BTreeSet::from(["latest".to_string(), "1.0".to_string()])
    );
    let printed: BTreeSet<String> = ended.stdout.lines().map(String::from).collect();
    let expected: BTreeSet<String> = held
        .iter()
        .map(|t| format!("{image}:{t}@{digest}"))
        .collect();
    assert_eq!(
        printed, expected,
        "stdout names exactly the tags that hold the index"
    );
    let dotenv = std::fs::read_to_string(work.path().join("multiarch.env")).unwrap();
    let tagged: BTreeSet<String> = dotenv
        .lines()
        .find_map(|l| l.strip_prefix("MULTIARCH_TAGGED="))
        .unwrap()
        .split(',')
        .map(String::from)
        .collect();
    let expected: BTreeSet<String> = held.iter().map(|t| format!("{image}:{t}")).collect();
    assert_eq!(tagged, expected, "{dotenv}");
    assert!(
        ended.stderr.contains(
            "error: cancelled by SIGTERM while tags were moving: 2 of 3 target tag(s) hold the index"
        ) && ended.stderr.contains(&format!(
            "  - {image}:1: its push was cut off in flight; it may or may not hold the index"
        )),
        "{}",
        ended.stderr
    );
    // Its log line says the same, not that it did not move, naming the tag once.
    let line = ended
        .stderr
        .lines()
        .find(|l| l.contains(" WARN ") && l.contains(&format!("{image}:1:")))
        .unwrap_or_else(|| panic!("a line about {image}:1 in {}", ended.stderr));
    assert!(
        line.contains("WARN it may or may not hold the index"),
        "{line}"
    );
    assert_eq!(line.matches(&format!("{image}:1:")).count(), 1, "{line}");
    assert!(
        !ended.stderr.contains("did not move reference"),
        "{}",
        ended.stderr
    );

    // Again, and a second signal: out at once, without a report.
    let mut run = Run::start(&env, work.path());
    run.wait_for_line("index built");
    while proxy
        .log()
        .iter()
        .filter(|l| l.starts_with("PUT /v2/app/manifests/1 "))
        .count()
        < 2
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    run.signal("TERM");
    run.wait_for_line("SIGTERM: cancelling");
    // Of the other kind: still a second signal, and the job was cancelled by the first.
    let sent = run.signal("INT");
    let ended = run.end(sent);
    println!(
        "SIGINT after SIGTERM: exit {:?} after {:?}",
        ended.code, ended.after_signal
    );
    assert_eq!(ended.code, Some(143), "{}", ended.stderr);
    assert!(
        ended.stderr.contains(
            "error: a second signal (SIGINT after SIGTERM): exiting at once; what moved is not reported"
        ),
        "{}",
        ended.stderr
    );
    assert_eq!(ended.stdout, "");
}

/// Cancelled while a child is copied into the destination (a mount held on the wire): no tag
/// moved, so nothing is reported; only untagged content may be left.
#[test]
fn cancelled_while_copying_children_moves_no_tag() {
    let reg = Registry::start();
    push_fixture(&reg, "app/amd64:1", "linux/amd64", Kind::Oci);
    push_fixture(&reg, "app/arm64:1", "linux/arm64", Kind::Oci);
    let proxy = Proxy::start(&reg.host, Duration::ZERO, |req, _| {
        if req.method == "POST" && req.path.contains("mount=") {
            Fault::Stall(Duration::from_secs(60))
        } else {
            Fault::Pass
        }
    });
    let work = tempfile::tempdir().unwrap();
    let env = vars(&[
        ("MULTIARCH_IMAGE", &format!("{}/app", proxy.host)),
        ("MULTIARCH_TAGS", "1"),
        ("MULTIARCH_SOURCE_TEMPLATE", "{image}/{arch}:{tag}"),
        ("MULTIARCH_INSECURE_REGISTRIES", &proxy.host),
        ("MULTIARCH_DOTENV", "multiarch.env"),
    ]);
    let mut run = Run::start(&env, work.path());
    let deadline = Instant::now() + Duration::from_secs(30);
    while !proxy.log().iter().any(|l| l.contains("mount=")) {
        assert!(Instant::now() < deadline, "{:?}", proxy.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    run.wait_for_line("index built");
    let sent = run.signal("TERM");
    let ended = run.end(sent);
    println!(
        "SIGTERM during the copy: exit {:?} after {:?}",
        ended.code, ended.after_signal
    );
    assert_eq!(ended.code, Some(143), "{}", ended.stderr);
    assert_eq!(ended.stdout, "");
    assert!(
        ended.stderr.contains(
            "error: cancelled by SIGTERM while children were copied into the destinations: no tag moved"
        ),
        "{}",
        ended.stderr
    );
    assert!(!work.path().join("multiarch.env").exists());
    assert_eq!(reg.raw("app:1"), None);
}

/// A `login` cancelled while it waits for another login's lock on the auth file: it says that
/// it wrote nothing (there is nothing "pushed" about a login), and the file is as it was.
#[test]
fn a_login_cancelled_while_waiting_for_the_lock_wrote_nothing() {
    let reg = Registry::start_with(crate::support::Options {
        user: Some(("job".into(), "job-token-77ab".into())),
        ..Default::default()
    });
    let work = tempfile::tempdir().unwrap();
    let auth = work.path().join("auth.json");
    std::fs::write(&auth, "{\"auths\": {}}\n").unwrap();
    // Another login holds the lock.
    let held = std::fs::File::create(work.path().join("auth.json.lock")).unwrap();
    held.lock().unwrap();
    let env = vars(&[
        ("MULTIARCH_USERNAME", "job"),
        ("MULTIARCH_PASSWORD", "job-token-77ab"),
        ("MULTIARCH_INSECURE_REGISTRIES", &reg.host),
    ]);
    let mut run = Run::command(
        &env,
        work.path(),
        &["login", &reg.host, "--auth-file", auth.to_str().unwrap()],
    );
    run.wait_for_line("holds the auth file's lock; waiting for it");
    let sent = run.signal("TERM");
    let ended = run.end(sent);
    assert_eq!(ended.code, Some(143), "{}", ended.stderr);
    assert!(
        ended.stderr.contains(
            "error: cancelled by SIGTERM: the login wrote nothing (the auth file is as it was)"
        ),
        "{}",
        ended.stderr
    );
    assert!(!ended.stderr.contains("pushed"), "{}", ended.stderr);
    assert_eq!(std::fs::read_to_string(&auth).unwrap(), "{\"auths\": {}}\n");
    drop(held);
}
