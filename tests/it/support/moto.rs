//! `moto_server` (PyPI `moto[server]`) on a free loopback port: the ECR and STS APIs. Its
//! GetAuthorizationToken answers `AWS:<account>-auth-token`, so a registry whose htpasswd has that
//! user plays the ECR registry and the whole token path runs end to end.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, require};

/// moto's default account.
pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";

/// The registry password moto's GetAuthorizationToken hands out.
pub fn ecr_password() -> String {
    format!("{ACCOUNT}-auth-token")
}

pub struct Moto {
    child: Child,
    pub endpoint: String,
}

impl Moto {
    pub fn start() -> Moto {
        Moto::start_enforcing_iam_after(None)
    }

    /// With `Some(n)`, moto enforces IAM (signatures and policies) after its first `n` actions,
    /// which set up repositories, users and policies.
    pub fn start_enforcing_iam_after(free_actions: Option<u32>) -> Moto {
        let binary = require(
            "moto_server",
            "python3-venv, then `pip install 'moto[server]'` (ci/test.sh does both)",
        );
        for _ in 0..5 {
            let port = free_port();
            let mut cmd = Command::new(&binary);
            if let Some(n) = free_actions {
                cmd.env("INITIAL_NO_AUTH_ACTION_COUNT", n.to_string());
            }
            let mut child = cmd
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Moto {
                        child,
                        endpoint: format!("http://127.0.0.1:{port}"),
                    };
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("moto_server did not start");
    }

    /// Calls an ECR API action (JSON 1.1 protocol), unsigned: only for moto's set-up actions.
    pub fn ecr(&self, action: &str, body: &str) -> String {
        self.ecr_in(REGION, action, body)
    }

    /// The same in `region` (moto keeps each region's repositories apart, as ECR does).
    pub fn ecr_in(&self, region: &str, action: &str, body: &str) -> String {
        self.call(
            "application/x-amz-json-1.1",
            Some(&format!("AmazonEC2ContainerRegistry_V20150921.{action}")),
            ("ecr", region),
            body,
        )
    }

    /// Calls an IAM API action (query protocol), unsigned: only for moto's set-up actions.
    pub fn iam(&self, params: &[(&str, &str)]) -> String {
        let body: Vec<String> = params
            .iter()
            .chain(&[("Version", "2010-05-08")])
            .map(|(k, v)| format!("{k}={}", form_encode(v)))
            .collect();
        self.call(
            "application/x-www-form-urlencoded",
            None,
            ("iam", REGION),
            &body.join("&"),
        )
    }

    /// A user allowed exactly `actions` on every resource; returns its access key and secret.
    pub fn user_allowed(&self, name: &str, actions: &[&str]) -> (String, String) {
        let policy = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]
        })
        .to_string();
        self.iam(&[("Action", "CreateUser"), ("UserName", name)]);
        let created = self.iam(&[
            ("Action", "CreatePolicy"),
            ("PolicyName", name),
            ("PolicyDocument", &policy),
        ]);
        let arn = between(&created, "<Arn>", "</Arn>");
        self.iam(&[
            ("Action", "AttachUserPolicy"),
            ("UserName", name),
            ("PolicyArn", &arn),
        ]);
        let key = self.iam(&[("Action", "CreateAccessKey"), ("UserName", name)]);
        (
            between(&key, "<AccessKeyId>", "</AccessKeyId>"),
            between(&key, "<SecretAccessKey>", "</SecretAccessKey>"),
        )
    }

    fn call(
        &self,
        content_type: &str,
        target: Option<&str>,
        (service, region): (&str, &str),
        body: &str,
    ) -> String {
        let host = self.endpoint.trim_start_matches("http://");
        let mut s = TcpStream::connect(host).unwrap();
        let target = target
            .map(|t| format!("X-Amz-Target: {t}\r\n"))
            .unwrap_or_default();
        let request = format!(
            "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n{target}Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/{region}/{service}/aws4_request, SignedHeaders=host, Signature=0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        s.read_to_string(&mut response).unwrap();
        assert!(
            response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200"),
            "{service} {body}: {response}"
        );
        response
    }

    /// Environment of a job whose AWS SDK talks to this moto (and never to instance metadata).
    pub fn env(&self) -> BTreeMap<String, String> {
        [
            ("AWS_ENDPOINT_URL_ECR", self.endpoint.as_str()),
            ("AWS_ENDPOINT_URL_STS", self.endpoint.as_str()),
            ("AWS_REGION", REGION),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// A GitLab job publishing `app:latest` in `reg` with ECR authentication through this moto,
    /// no AWS credentials yet, then `extra`, whose pairs win.
    pub fn job(&self, reg: &super::Registry, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut env = self.env();
        env.extend(reg.access_env());
        let image = reg.repo("app");
        for (k, v) in [
            ("MULTIARCH_IMAGE", image.as_str()),
            ("MULTIARCH_TAGS", "latest"),
            ("MULTIARCH_AUTH", "ecr"),
            ("GITLAB_CI", "true"),
            ("CI_PROJECT_PATH", "group/app"),
            ("CI_JOB_ID", "4242"),
        ]
        .iter()
        .chain(extra)
        {
            env.insert(k.to_string(), v.to_string());
        }
        env
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn between(text: &str, start: &str, end: &str) -> String {
    let from = text
        .find(start)
        .unwrap_or_else(|| panic!("no {start} in {text}"))
        + start.len();
    let to = from + text[from..].find(end).unwrap();
    text[from..to].to_string()
}

fn form_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
