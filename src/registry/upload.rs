//! Upload sessions: opening one (`POST …/blobs/uploads/`), reading where the registry put it (its
//! `Location`, joined onto the URL that answered; `origin`'s rule then judges every request sent
//! there like a redirect), giving one back, and the push-access check that opens one and gives it
//! back at the start of a run, as go-containerregistry's `CheckPushPermission` does.
//! Spec: <https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pushing-blobs>.

use reqwest::header::{CONTENT_LENGTH, LOCATION};
use reqwest::{Method, StatusCode, Url};
use tracing::{debug, warn};

use super::classify::{clean, Action};
use super::client::Client;
use super::retry::first_line;
use super::transport::{Limit, Reply, Request, Within};
use crate::error::Error;
use crate::reference::Repository;

impl Client {
    /// Push access to `to`, asked the way a push asks it: an upload session opened (POST
    /// `…/blobs/uploads/`) and given back (DELETE, best effort: registries that cannot cancel
    /// one let it expire). A refusal — 401, 403, a `DENIED` code, a token without `push` — fails
    /// here, at the start, and so does a repository the registry says it does not have and will
    /// not create (404 `NAME_UNKNOWN`, exit 2); an answer that says nothing about access (a bare
    /// 404, a registry that does not take uploads this way) is left for the push itself to meet.
    ///
    /// Amazon ECR does not create repositories on push: there DescribeRepositories is asked
    /// first whether `to` exists (where the host names the account). ECR authorizes uploading
    /// layers (`ecr:InitiateLayerUpload`) apart from pushing manifests (`ecr:PutImage`): a role
    /// that publishes an index of children already in its repository needs no upload, so there
    /// no session is opened unless the run `uploads` into `to`.
    pub(super) async fn check_push(&self, to: &Repository, uploads: bool) -> Result<(), Error> {
        self.check_exists(to, "checking push access to").await?;
        if self.ecr().applies_to(to.registry()) && !uploads {
            debug!(repository = %to, "ECR: nothing to upload here, so no upload session is opened to check push access");
            return Ok(());
        }
        let shown = to.to_string();
        let op = self.op(Action::CheckTarget, &shown, to, true);
        let url = self.url(to, "blobs", "uploads/");
        let reply = self
            .call(&op, Limit::ANSWER, || {
                Request::new(Method::POST, url.clone()).header(CONTENT_LENGTH, "0")
            })
            .await?;
        if reply.status.is_success() {
            debug!(repository = %to, status = reply.status.as_u16(), "push access: an upload session opens");
            if let Ok(session) = session_of(&reply, &url, &shown) {
                self.cancel(to, session).await;
            }
            return Ok(());
        }
        match self.refusal(&reply, &op).await {
            other @ Error::Registry { .. } => {
                warn!(repository = %to, error = %first_line(&other), "push access could not be checked by opening an upload session; the push will tell");
                Ok(())
            }
            e => Err(e),
        }
    }

    /// Whether `to` exists, where the registry says so without a push (ECR's DescribeRepositories,
    /// for hosts that name their account): a missing one is an error naming how to create it.
    /// `action` opens the error (a push checking access, a dry run looking).
    pub(super) async fn check_exists(
        &self,
        to: &Repository,
        action: &'static str,
    ) -> Result<(), Error> {
        match self.ecr().applies_to(to.registry()) {
            true => {
                self.ecr()
                    .check_repository(action, to.registry(), to.path())
                    .await
            }
            false => Ok(()),
        }
    }

    /// Gives back an upload session we will not use: one DELETE with the push credentials,
    /// whatever it answers (sessions expire anyway; distribution behind a token service wants a
    /// `delete` grant that a push token lacks, and is not asked for one).
    pub(super) async fn cancel(&self, to: &Repository, session: Url) {
        let shown = format!("{to} (upload session)");
        let op = self.op(Action::UploadBlob, &shown, to, true);
        let registry = self.url(to, "blobs", "uploads/");
        let request = Request::new(Method::DELETE, session).located(&registry);
        let bound = Within::Whole(self.budget().request_timeout);
        // Refused once the run is being cancelled: the session expires.
        match self.send_once(&op, request, bound, Limit::ANSWER).await {
            Ok(reply) => debug!(status = reply.status.as_u16(), "upload session given back"),
            Err(e) => debug!(error = %first_line(&e), "upload session not given back"),
        }
    }

    /// Opens an upload session in `to`.
    pub(super) async fn session(&self, to: &Repository, shown: &str) -> Result<Url, Error> {
        let op = self.op(Action::UploadBlob, shown, to, true);
        let url = self.url(to, "blobs", "uploads/");
        let reply = self
            .call(&op, Limit::ANSWER, || {
                Request::new(Method::POST, url.clone()).header(CONTENT_LENGTH, "0")
            })
            .await?;
        match reply.status {
            StatusCode::ACCEPTED => session_of(&reply, &url, shown),
            _ => Err(self.refusal(&reply, &op).await),
        }
    }
}

/// The upload session a 202 names: its `Location` joined onto `url`, which answered.
pub(super) fn session_of(reply: &Reply, url: &Url, shown: &str) -> Result<Url, Error> {
    let unusable = |reason: String| Error::Registry {
        action: "uploading blob to",
        reference: shown.to_string(),
        reason,
    };
    let Some(value) = reply.headers.get(LOCATION) else {
        return Err(unusable(format!(
            "the registry opened an upload session (HTTP {}) without a Location",
            reply.status
        )));
    };
    super::origin::locate(url, value).map_err(|location| {
        unusable(format!(
            "the registry opened an upload session at an unusable Location \"{}\"",
            clean(&location)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    #[test]
    fn an_upload_answer_without_a_usable_location_is_said_once() {
        let url = Url::parse("http://r.example/v2/app/blobs/uploads/").unwrap();
        let mut reply = Reply {
            status: StatusCode::ACCEPTED,
            headers: HeaderMap::new(),
            body: Vec::new(),
            plain: true,
            known: true,
            via: None,
        };
        let text = |reply: &Reply| {
            session_of(reply, &url, "r.example/app@sha256:ab")
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            text(&reply),
            "uploading blob to r.example/app@sha256:ab: the registry opened an upload session (HTTP 202 Accepted) without a Location"
        );
        reply
            .headers
            .insert(LOCATION, HeaderValue::from_static("ftp://elsewhere/u1"));
        assert_eq!(
            text(&reply),
            "uploading blob to r.example/app@sha256:ab: the registry opened an upload session at an unusable Location \"ftp://elsewhere/u1\""
        );
        reply.headers.insert(
            LOCATION,
            HeaderValue::from_static("//up.example/u1?_state=a%2Bb"),
        );
        assert_eq!(
            session_of(&reply, &url, "x").unwrap().as_str(),
            "http://up.example/u1?_state=a%2Bb"
        );
    }
}
