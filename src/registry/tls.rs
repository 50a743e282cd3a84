//! HTTP clients and trust: a plain-HTTP client without trust roots, a TLS client with the system
//! roots plus `--ca-file`, and the reading of that file.

use crate::error::Error;

use super::{CONNECT_TIMEOUT, USER_AGENT};

/// A reqwest client: our user agent, connect timeout, keep-alive pool. `plain_only` skips the
/// system trust roots (for plain-HTTP hosts); otherwise `extra_roots` join them.
pub(super) fn http_client(
    extra_roots: Vec<reqwest::Certificate>,
    plain_only: bool,
) -> reqwest::Result<reqwest::Client> {
    let builder = reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(CONNECT_TIMEOUT);
    let builder = if plain_only {
        builder.tls_certs_only(Vec::new())
    } else {
        builder.tls_certs_merge(extra_roots)
    };
    builder.build()
}

/// Splits a PEM bundle into one PEM per certificate.
pub(super) fn read_ca_file(path: &std::path::Path) -> Result<Vec<Vec<u8>>, Error> {
    let setting = "--ca-file / MULTIARCH_CA_FILE";
    let text = std::fs::read_to_string(path).map_err(|source| Error::UnreadableFile {
        setting: setting.into(),
        path: path.to_path_buf(),
        source,
    })?;
    let pems: Vec<Vec<u8>> = text
        .split_inclusive("-----END CERTIFICATE-----")
        .filter_map(|block| {
            block
                .find("-----BEGIN CERTIFICATE-----")
                .map(|at| block.as_bytes()[at..].to_vec())
        })
        .collect();
    if pems.is_empty() {
        return Err(Error::invalid(
            setting,
            path.display().to_string(),
            "no PEM certificate in the file",
            "give a file with one or more -----BEGIN CERTIFICATE----- blocks",
        ));
    }
    Ok(pems)
}
