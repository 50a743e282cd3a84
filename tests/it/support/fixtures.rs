//! Fixture images for any platform: written as OCI layouts (tiny layer, real config), then pushed
//! with `skopeo copy` — as OCI, as Docker v2 (`--format v2s2`), or as a buildx-style per-arch
//! index carrying a provenance attestation manifest. Manifests no builder would write (an index
//! repeating its entries) are PUT as they are.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;

use serde_json::json;

use super::{sha256, Registry};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// How to push a fixture.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Oci,
    Docker,
    /// An OCI index holding the image and an attestation manifest, as `docker buildx` pushes.
    Buildx,
}

struct Layout<'a> {
    dir: &'a Path,
}

impl<'a> Layout<'a> {
    /// An empty OCI layout in `dir`.
    fn create(dir: &'a Path) -> Layout<'a> {
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        Layout { dir }
    }

    /// Names `top` in the layout and copies it (with `flags`) to `path` in `registry` with
    /// skopeo; returns the digest the registry now holds there.
    fn publish(
        &self,
        mut top: serde_json::Value,
        registry: &Registry,
        path: &str,
        flags: &[&str],
    ) -> String {
        top["annotations"] = json!({"org.opencontainers.image.ref.name": "fixture"});
        std::fs::write(
            self.dir.join("index.json"),
            serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [top]})).unwrap(),
        )
        .unwrap();
        let src = format!("oci:{}:fixture", self.dir.display());
        let dest = format!("docker://{}", registry.repo(path));
        let digest_file = self.dir.join("digest");
        let digest_arg = format!("--digestfile={}", digest_file.display());
        let mut args = vec!["copy", "--retry-times=2", digest_arg.as_str()];
        args.extend(flags);
        args.extend([src.as_str(), dest.as_str()]);
        registry.skopeo(&args);
        std::fs::read_to_string(digest_file)
            .unwrap()
            .trim()
            .to_string()
    }

    fn blob(&self, bytes: &[u8]) -> (String, u64) {
        let digest = sha256(bytes);
        let path = self
            .dir
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
        (digest, bytes.len() as u64)
    }

    fn descriptor(&self, media_type: &str, bytes: &[u8]) -> serde_json::Value {
        let (digest, size) = self.blob(bytes);
        json!({"mediaType": media_type, "digest": digest, "size": size})
    }
}

/// A gzip of a one-file tar whose content names the platform, so each image has its own layer.
fn layer(platform: &str) -> (Vec<u8>, String) {
    let content = format!("built for {platform}\n");
    let mut tar = vec![0u8; 512];
    let name = b"platform.txt";
    tar[..name.len()].copy_from_slice(name);
    tar[100..108].copy_from_slice(b"0000644\0");
    tar[108..116].copy_from_slice(b"0000000\0");
    tar[116..124].copy_from_slice(b"0000000\0");
    tar[124..136].copy_from_slice(format!("{:011o}\0", content.len()).as_bytes());
    tar[136..148].copy_from_slice(b"00000000000\0");
    tar[156] = b'0';
    tar[257..263].copy_from_slice(b"ustar\0");
    tar[263..265].copy_from_slice(b"00");
    tar[148..156].copy_from_slice(b"        ");
    let sum: u32 = tar.iter().map(|b| *b as u32).sum();
    tar[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut data = content.into_bytes();
    data.resize(512, 0);
    tar.extend(data);
    tar.extend([0u8; 1024]);
    let diff_id = sha256(&tar);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    (gz.finish().unwrap(), diff_id)
}

/// Writes an image for `platform` (`os/arch[/variant][@os.version]`) into the layout, labelled with
/// `revision` if given; returns its manifest descriptor (without platform). The layer's content
/// names the platform and the revision, so each build has its own digest.
fn write_image(layout: &Layout, platform: &str, revision: Option<&str>) -> serde_json::Value {
    write_image_with(layout, platform, revision, &json!({}))
}

/// The same, with `extra` keys set at the top of the config (`created`, `history`, …).
fn write_image_with(
    layout: &Layout,
    platform: &str,
    revision: Option<&str>,
    extra: &serde_json::Value,
) -> serde_json::Value {
    let (plain, os_version) = match platform.split_once('@') {
        Some((p, v)) => (p, Some(v)),
        None => (platform, None),
    };
    let parts: Vec<&str> = plain.split('/').collect();
    // Each build its own layer: the platform, the revision and what else the config says.
    let note = match extra.as_object() {
        Some(o) if !o.is_empty() => format!(" {extra}"),
        _ => String::new(),
    };
    let (gz, diff_id) = layer(&match revision {
        Some(r) => format!("{platform} at {r}{note}"),
        None => format!("{platform}{note}"),
    });
    let mut config = json!({
        "architecture": parts[1],
        "os": parts[0],
        "config": {"Env": ["PATH=/usr/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "multiarch fixture"}],
    });
    if let Some(r) = revision {
        config["config"]["Labels"] = json!({"org.opencontainers.image.revision": r});
    }
    if let Some(v) = parts.get(2) {
        config["variant"] = json!(v);
    }
    if let Some(v) = os_version {
        config["os.version"] = json!(v);
    }
    for (k, v) in extra.as_object().into_iter().flatten() {
        config[k] = v.clone();
    }
    let config = layout.descriptor(
        "application/vnd.oci.image.config.v1+json",
        &serde_json::to_vec(&config).unwrap(),
    );
    let layer = layout.descriptor("application/vnd.oci.image.layer.v1.tar+gzip", &gz);
    let manifest =
        json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": [layer]});
    layout.descriptor(OCI_MANIFEST, &serde_json::to_vec(&manifest).unwrap())
}

/// A buildx provenance attestation for `subject`.
fn write_attestation(layout: &Layout, subject: &serde_json::Value) -> serde_json::Value {
    let statement = json!({"_type": "https://in-toto.io/Statement/v0.1", "predicateType": "https://slsa.dev/provenance/v0.2", "subject": [], "predicate": {}});
    let layer = layout.descriptor(
        "application/vnd.in-toto+json",
        &serde_json::to_vec(&statement).unwrap(),
    );
    let config = layout.descriptor("application/vnd.oci.image.config.v1+json", br#"{"architecture":"unknown","os":"unknown","config":{},"rootfs":{"type":"layers","diff_ids":[]}}"#);
    let manifest =
        json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": [layer]});
    let mut d = layout.descriptor(OCI_MANIFEST, &serde_json::to_vec(&manifest).unwrap());
    d["platform"] = json!({"architecture": "unknown", "os": "unknown"});
    d["annotations"] = json!({"vnd.docker.reference.digest": subject["digest"], "vnd.docker.reference.type": "attestation-manifest"});
    d
}

/// Pushes a fixture for `platform` to `path` (`app:latest-amd64`) in `registry`; returns the
/// digest of what the registry now holds under that tag.
pub fn push(registry: &Registry, path: &str, platform: &str, kind: Kind) -> String {
    push_built(registry, path, platform, kind, None)
}

/// The same, as built from `revision` (its config carries the `org.opencontainers.image.revision`
/// label, as the build components set it).
pub fn push_built(
    registry: &Registry,
    path: &str,
    platform: &str,
    kind: Kind,
    revision: Option<&str>,
) -> String {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::create(dir.path());
    let image = write_image(&layout, platform, revision);
    let top = match kind {
        Kind::Oci | Kind::Docker => image,
        Kind::Buildx => {
            let parts: Vec<&str> = platform.split('/').collect();
            let mut img = image.clone();
            img["platform"] = json!({"architecture": parts[1], "os": parts[0]});
            if let Some(v) = parts.get(2) {
                img["platform"]["variant"] = json!(v);
            }
            let att = write_attestation(&layout, &image);
            let index =
                json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [img, att]});
            layout.descriptor(OCI_INDEX, &serde_json::to_vec(&index).unwrap())
        }
    };
    let flags: &[&str] = match kind {
        Kind::Docker => &["--format=v2s2"],
        Kind::Buildx => &["--all", "--preserve-digests"],
        Kind::Oci => &["--preserve-digests"],
    };
    layout.publish(top, registry, path, flags)
}

/// Pushes an unlabelled OCI image for `platform` to `path` whose config also has the `extra`
/// keys (`created`, `history`: what a builder writes); returns its digest.
pub fn push_config(
    registry: &Registry,
    path: &str,
    platform: &str,
    extra: serde_json::Value,
) -> String {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::create(dir.path());
    let image = write_image_with(&layout, platform, None, &extra);
    layout.publish(image, registry, path, &["--preserve-digests"])
}

/// Pushes `{repo}:latest-amd64` and `{repo}:latest-arm64`, the names `multiarch push` looks for
/// by default, and returns their digests.
pub fn push_two_arches(registry: &Registry, repo: &str, kind: Kind) -> (String, String) {
    (
        push(
            registry,
            &format!("{repo}:latest-amd64"),
            "linux/amd64",
            kind,
        ),
        push(
            registry,
            &format!("{repo}:latest-arm64"),
            "linux/arm64",
            kind,
        ),
    )
}

/// Pushes a multi-platform OCI index (one image per platform, as upstream base images are) to
/// `path`; returns its digest.
pub fn push_multi(registry: &Registry, path: &str, platforms: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::create(dir.path());
    let manifests: Vec<serde_json::Value> = platforms
        .iter()
        .map(|p| {
            let mut d = write_image(&layout, p, None);
            let parts: Vec<&str> = p.split('/').collect();
            d["platform"] = json!({"architecture": parts[1], "os": parts[0]});
            if let Some(v) = parts.get(2) {
                d["platform"]["variant"] = json!(v);
            }
            d
        })
        .collect();
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
    let top = layout.descriptor(OCI_INDEX, &serde_json::to_vec(&index).unwrap());
    layout.publish(top, registry, path, &["--all", "--preserve-digests"])
}

/// Pushes a `platform` image whose one layer is `size` bytes of incompressible data (a stand-in
/// for a real layer when measuring copies); returns its digest.
#[allow(dead_code)] // examples/bench.rs measures copies with it
pub fn push_big(registry: &Registry, path: &str, platform: &str, size: usize, seed: u64) -> String {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::create(dir.path());
    let mut data = Vec::with_capacity(size);
    let mut x = seed | 1;
    while data.len() < size {
        // xorshift64: fast, deterministic, and no compressor can shrink it.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    data.truncate(size);
    let diff_id = sha256(&data);
    let parts: Vec<&str> = platform.split('/').collect();
    let config = json!({
        "architecture": parts[1],
        "os": parts[0],
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    });
    let config = layout.descriptor(
        "application/vnd.oci.image.config.v1+json",
        &serde_json::to_vec(&config).unwrap(),
    );
    let layer = layout.descriptor("application/vnd.oci.image.layer.v1.tar", &data);
    drop(data);
    let manifest =
        json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": [layer]});
    let top = layout.descriptor(OCI_MANIFEST, &serde_json::to_vec(&manifest).unwrap());
    layout.publish(top, registry, path, &["--preserve-digests"])
}

/// PUTs manifest `bytes` as they are under `path` (`app:tag`) of a plain-HTTP registry without
/// auth (skopeo would rewrite what it copies); returns their digest.
pub fn put_manifest(registry: &Registry, path: &str, media_type: &str, bytes: &[u8]) -> String {
    assert!(registry.ca_file.is_none() && registry.user.is_none());
    put_manifest_at(&registry.host, path, media_type, bytes)
}

/// `put_manifest` to the registry at `host` (from any thread).
pub fn put_manifest_at(host: &str, path: &str, media_type: &str, bytes: &[u8]) -> String {
    let (repo, tag) = path.rsplit_once(':').unwrap();
    let mut stream = TcpStream::connect(host).unwrap();
    write!(
        stream,
        "PUT /v2/{repo}/manifests/{tag} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {media_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        bytes.len()
    )
    .unwrap();
    stream.write_all(bytes).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    sha256(bytes)
}

/// An OCI index of `entries` (`(digest, size, platform)`, platform `os/arch[@os.version]`), each
/// written `copies` times.
pub fn index_of(entries: &[(&str, usize, &str)], copies: usize) -> Vec<u8> {
    let manifests: Vec<serde_json::Value> = entries
        .iter()
        .flat_map(|(digest, size, platform)| {
            let (plain, os_version) = match platform.split_once('@') {
                Some((p, v)) => (p, Some(v)),
                None => (*platform, None),
            };
            let (os, arch) = plain.split_once('/').unwrap();
            let mut d = json!({"mediaType": OCI_MANIFEST, "digest": digest, "size": size,
                "platform": {"os": os, "architecture": arch}});
            if let Some(v) = os_version {
                d["platform"]["os.version"] = json!(v);
            }
            std::iter::repeat_n(d, copies)
        })
        .collect();
    serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}))
        .unwrap()
}

/// One entry of a fixture layer.
pub enum Item {
    /// Path, mode, content.
    File(&'static str, u32, Vec<u8>),
    Dir(&'static str),
    /// Path, target.
    Symlink(&'static str, &'static str),
    /// Path, target (an earlier path of the same layer).
    Hardlink(&'static str, &'static str),
}

/// How a content fixture's layers are compressed on the way to the registry.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    /// Written uncompressed, compressed by skopeo on push (`--dest-compress-format zstd`).
    Zstd,
}

/// A 64-byte ELF header: the start of a program for a machine (`e_machine`), all a check needs.
pub fn elf(bits64: bool, little: bool, machine: u16) -> Vec<u8> {
    let mut h = vec![0u8; 64];
    h[..4].copy_from_slice(b"\x7fELF");
    h[4] = if bits64 { 2 } else { 1 };
    h[5] = if little { 1 } else { 2 };
    h[6] = 1;
    let two = |n: u16| {
        if little {
            n.to_le_bytes()
        } else {
            n.to_be_bytes()
        }
    };
    h[16..18].copy_from_slice(&two(2));
    h[18..20].copy_from_slice(&two(machine));
    h
}

/// ELF headers of common platforms.
pub fn amd64() -> Vec<u8> {
    elf(true, true, 62)
}
pub fn arm64() -> Vec<u8> {
    elf(true, true, 183)
}

/// A PE header (MZ stub, `PE\0\0` at 0x80, `Machine`): the start of a Windows program.
pub fn pe(machine: u16) -> Vec<u8> {
    let mut h = vec![0u8; 0x80 + 24];
    h[..2].copy_from_slice(b"MZ");
    h[0x3c..0x40].copy_from_slice(&0x80u32.to_le_bytes());
    h[0x80..0x84].copy_from_slice(b"PE\0\0");
    h[0x84..0x86].copy_from_slice(&machine.to_le_bytes());
    h
}

/// A tar archive of `items`, written by the `tar` crate.
pub fn tar_of(items: &[Item]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for item in items {
        let mut h = tar::Header::new_gnu();
        match item {
            Item::File(path, mode, data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, path, &data[..]).unwrap();
            }
            Item::Dir(path) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, path, &[][..]).unwrap();
            }
            Item::Symlink(path, target) | Item::Hardlink(path, target) => {
                let kind = match item {
                    Item::Symlink(..) => tar::EntryType::Symlink,
                    _ => tar::EntryType::Link,
                };
                h.set_entry_type(kind);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, path, target).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

/// Pushes an image for `platform` whose config's `config` object is `run` (Entrypoint, Cmd,
/// Env, WorkingDir) and whose layers (base first) hold `layers`; returns its digest.
pub fn push_content(
    registry: &Registry,
    path: &str,
    platform: &str,
    run: serde_json::Value,
    layers: &[Vec<Item>],
    compression: Compression,
) -> String {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::create(dir.path());
    let parts: Vec<&str> = platform.split('/').collect();
    let mut diff_ids = Vec::new();
    let mut descriptors = Vec::new();
    for items in layers {
        let tar = tar_of(items);
        diff_ids.push(sha256(&tar));
        descriptors.push(match compression {
            Compression::Gzip => {
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                gz.write_all(&tar).unwrap();
                layout.descriptor(
                    "application/vnd.oci.image.layer.v1.tar+gzip",
                    &gz.finish().unwrap(),
                )
            }
            Compression::Zstd => layout.descriptor("application/vnd.oci.image.layer.v1.tar", &tar),
        });
    }
    let mut config = json!({
        "architecture": parts[1],
        "os": parts[0],
        "config": run,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    if let Some(v) = parts.get(2) {
        config["variant"] = json!(v);
    }
    let config = layout.descriptor(
        "application/vnd.oci.image.config.v1+json",
        &serde_json::to_vec(&config).unwrap(),
    );
    let manifest = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": descriptors});
    let top = layout.descriptor(OCI_MANIFEST, &serde_json::to_vec(&manifest).unwrap());
    let flags: &[&str] = match compression {
        Compression::Gzip => &["--preserve-digests"],
        Compression::Zstd => &["--dest-compress-format=zstd"],
    };
    layout.publish(top, registry, path, flags)
}

/// Pushes a `platform` image of two layers: a base of one `size`-byte file of incompressible
/// data (uncompressed, as a real base's size on the wire) and a small top layer holding the
/// entrypoint `/usr/local/bin/app` (`program`); returns its digest. What the content check
/// costs on a big image whose program is on top.
#[allow(dead_code)] // examples/bench.rs measures the content check with it
pub fn push_big_base(
    registry: &Registry,
    path: &str,
    platform: &str,
    size: usize,
    program: Vec<u8>,
) -> String {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::create(dir.path());
    let mut base = tar::Builder::new(Vec::with_capacity(size + 4096));
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(size as u64);
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut data = Vec::with_capacity(size);
    while data.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    data.truncate(size);
    base.append_data(&mut h, "usr/share/big.bin", &data[..])
        .unwrap();
    drop(data);
    let base = base.into_inner().unwrap();
    let top = tar_of(&[Item::File("usr/local/bin/app", 0o755, program)]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&top).unwrap();
    let parts: Vec<&str> = platform.split('/').collect();
    let config = json!({
        "architecture": parts[1],
        "os": parts[0],
        "config": {"Entrypoint": ["/usr/local/bin/app"]},
        "rootfs": {"type": "layers", "diff_ids": [sha256(&base), sha256(&top)]},
    });
    let config = layout.descriptor(
        "application/vnd.oci.image.config.v1+json",
        &serde_json::to_vec(&config).unwrap(),
    );
    let layers = [
        layout.descriptor("application/vnd.oci.image.layer.v1.tar", &base),
        layout.descriptor(
            "application/vnd.oci.image.layer.v1.tar+gzip",
            &gz.finish().unwrap(),
        ),
    ];
    drop(base);
    let manifest =
        json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": layers});
    let top = layout.descriptor(OCI_MANIFEST, &serde_json::to_vec(&manifest).unwrap());
    layout.publish(top, registry, path, &["--preserve-digests"])
}
