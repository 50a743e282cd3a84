//! The client of a run and its request loop: every request is authorized (the cached header for
//! its host and scope), sent once, learns the challenge and is authorized afresh once on a 401 —
//! only a 401 of the registry itself: one from a host a redirect or Location led to is its final
//! answer, so no other host can name a realm for the registry's credentials — is retried when
//! transient within the budget, and comes back as the final answer for the caller to read by
//! status.
//!
//! It is also where a cancelled run stops talking (`cancel`): no request starts once the run is
//! stopping, and what is still in flight when the grace ends is cut off, reported as such.

use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;

use reqwest::header::HeaderValue;
use reqwest::{StatusCode, Url};
use tokio::sync::{Semaphore, SemaphorePermit};
use tracing::debug;

use super::classify::{self, Action, Op};
use super::retry::{attempt, retry, Attempt, Budget, Deadline};
use super::token::Auth;
use super::transport::{
    read_ca_file, Answer as _, Limit, Opened, Reply, Request, Take, Transport, Unread, Within,
};
use crate::cancel::{Cancel, Stage};
use crate::credentials::{Chain, Credentials, Found};
use crate::ecr::Ecr;
use crate::error::Error;
use crate::reference::Repository;
use crate::settings::Access;

/// Blobs streamed at once in a run: enough to keep a link busy, few enough that each gets a fair
/// share of it and of the registry's ingest.
pub(super) const STREAMS_AT_ONCE: usize = 4;

/// Registry access for every host of a run: one connection pool per scheme, one credential per
/// host, one Authorization header per host and scope.
pub(crate) struct Client {
    shared: Rc<Shared>,
    budget: Budget,
}

struct Shared {
    transport: Transport,
    auth: Auth,
    credentials: Box<dyn Credentials>,
    ecr: Arc<Ecr>,
    /// Turns to stream a blob (`STREAMS_AT_ONCE`), shared by every copy and read of the run.
    streams: Semaphore,
    cancel: Cancel,
    /// `Access::hosts_from`.
    hosts_from: &'static str,
}

impl Client {
    /// Reads the CA file and the docker config; nothing is sent yet. Requests stop with `cancel`.
    pub(crate) fn connect(access: &Access, cancel: &Cancel) -> Result<Client, Error> {
        let setting = "--ca-file / MULTIARCH_CA_FILE";
        let pems = match &access.ca_file {
            Some(path) => read_ca_file(path, setting)?,
            None => Vec::new(),
        };
        let transport = Transport::new(access.insecure.clone(), &pems).map_err(|e| {
            Error::invalid(
                setting,
                access
                    .ca_file
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                format!("the TLS stack cannot use it ({e})"),
                "give a PEM file of CA certificates",
            )
        })?;
        let ecr = Arc::new(Ecr::new(&access.credentials.aws));
        let credentials = Chain::load(&access.credentials, ecr.clone(), access.request_timeout)?;
        Ok(Client {
            shared: Rc::new(Shared {
                transport,
                auth: Auth::default(),
                credentials: Box::new(credentials),
                ecr,
                streams: Semaphore::new(STREAMS_AT_ONCE),
                cancel: cancel.clone(),
                hosts_from: access.hosts_from,
            }),
            budget: Budget {
                retries: access.retries,
                request_timeout: access.request_timeout,
                deadline: None,
            },
        })
    }

    pub(super) fn url(&self, repo: &Repository, kind: &str, name: &str) -> Url {
        let host = repo.api_host();
        let text = format!(
            "{}://{host}/v2/{}/{kind}/{name}",
            self.shared.transport.scheme(host),
            repo.path()
        );
        Url::parse(&text).expect("references are checked before any request")
    }

    pub(super) fn op<'a>(
        &self,
        action: Action,
        at: &'a str,
        repo: &'a Repository,
        push: bool,
    ) -> Op<'a> {
        let actions = if push { "pull,push" } else { "pull" };
        Op {
            action,
            at,
            host: repo.api_host(),
            registry: repo.registry(),
            scope: format!("repository:{}:{actions}", repo.path()),
            hosts_from: self.shared.hosts_from,
            path: Some(repo.path()),
            ecr: self.ecr().applies_to(repo.registry()),
        }
    }

    /// Where the user named the registry hosts, for the hint of one that does not resolve.
    pub(super) fn hosts_from(&self) -> &'static str {
        self.shared.hosts_from
    }

    /// One request, authorized, with retries, its answer read (a success's body within
    /// `limit`) whatever its status.
    pub(super) async fn call(
        &self,
        op: &Op<'_>,
        limit: Limit,
        build: impl Fn() -> Request,
    ) -> Result<Reply, Error> {
        let bound = Within::Whole(self.budget.request_timeout);
        self.exchange(op, bound, limit, build).await
    }

    /// The same `within` its time, a successful answer handed back unread: a blob to stream
    /// (with `Within::Head`, its body is the caller's to bound).
    pub(super) async fn open(
        &self,
        op: &Op<'_>,
        bound: Within,
        build: impl Fn() -> Request,
    ) -> Result<Opened, Error> {
        self.exchange(op, bound, Unread, build).await
    }

    /// The request loop (see the module's doc), the answer taken as `take` says.
    async fn exchange<T: Take>(
        &self,
        op: &Op<'_>,
        bound: Within,
        take: T,
        build: impl Fn() -> Request,
    ) -> Result<T::Answer, Error> {
        let shared = &*self.shared;
        let in_flight = Cell::new(false);
        let requests = retry(&self.budget, || async {
            let mut refused = None;
            loop {
                if let Err(e) = self.admit(op, None) {
                    return Attempt::Done(Err(e));
                }
                let header = match self
                    .authorization(op, refused.as_ref().map(Option::as_ref))
                    .await
                {
                    Ok(h) => h,
                    Err(e) => return Attempt::Done(Err(e)),
                };
                let request = build();
                if let Err(e) = self.admit(op, Some(&request)) {
                    return Attempt::Done(Err(e));
                }
                let asked = request
                    .origin
                    .clone()
                    .unwrap_or_else(|| request.url.clone());
                in_flight.set(true);
                let sent = shared
                    .transport
                    .exchange(request, header.as_ref(), bound, take)
                    .await;
                in_flight.set(false);
                if let Ok(answer) = &sent {
                    let own = answer.reply().is_none_or(|reply| reply.via.is_none());
                    if answer.status() == StatusCode::UNAUTHORIZED && refused.is_none() && own {
                        // The registry's challenge (anonymous), or an expired token or ECR login.
                        if let Err(e) =
                            shared
                                .auth
                                .learn(op, &asked, answer.headers(), &shared.transport)
                        {
                            return Attempt::Done(Err(e));
                        }
                        debug!(
                            reference = op.at,
                            anonymous = header.is_none(),
                            "401: authorizing afresh"
                        );
                        refused = Some(header);
                        continue;
                    }
                }
                return attempt(sent, op);
            }
        });
        self.bounded(op, &in_flight, requests).await
    }

    /// Refuses to start a request once the run is being cancelled; notes one that changes what
    /// a registry holds (`Request::writes`: an upload session opened or given back does not).
    pub(super) fn admit(&self, op: &Op<'_>, request: Option<&Request>) -> Result<(), Error> {
        let cancel = &self.shared.cancel;
        cancel.gate().map_err(|signal| Error::RequestCancelled {
            signal,
            action: op.action.doing(),
            reference: op.at.to_string(),
            in_flight: false,
        })?;
        if request.is_some_and(Request::writes) {
            cancel.wrote();
        }
        Ok(())
    }

    /// `work` (the requests of one operation, retries and their sleeps included), cut off when
    /// a cancellation's grace ends; `in_flight` says whether a request was on the wire then.
    pub(super) async fn bounded<T>(
        &self,
        op: &Op<'_>,
        in_flight: &Cell<bool>,
        work: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        tokio::select! {
            biased;
            done = work => done,
            signal = self.shared.cancel.reached(Stage::Aborted) => Err(Error::RequestCancelled {
                signal,
                action: op.action.doing(),
                reference: op.at.to_string(),
                in_flight: in_flight.get(),
            }),
        }
    }

    /// A request that can be sent only once (a streamed upload, whose body cannot be replayed;
    /// an upload session given back): authorized with the header `op` carries now, refused once
    /// the run is being cancelled, sent without retries or a fresh authorization, a failure
    /// judged by `classify`.
    pub(super) async fn send_once<T: Take>(
        &self,
        op: &Op<'_>,
        request: Request,
        bound: Within,
        take: T,
    ) -> Result<T::Answer, Error> {
        let header = self.authorization(op, None).await?;
        self.admit(op, Some(&request))?;
        self.shared
            .transport
            .exchange(request, header.as_ref(), bound, take)
            .await
            .map_err(|f| classify::failure(f, op).error())
    }

    /// The Authorization header for `op` (cached for its host and scope); `stale` is the one a
    /// 401 just refused.
    async fn authorization(
        &self,
        op: &Op<'_>,
        stale: Option<Option<&HeaderValue>>,
    ) -> Result<Option<HeaderValue>, Error> {
        let shared = &*self.shared;
        shared
            .auth
            .header(
                op,
                stale,
                &shared.transport,
                shared.credentials.as_ref(),
                &self.budget,
            )
            .await
    }

    pub(super) fn transport(&self) -> &Transport {
        &self.shared.transport
    }

    /// Waits for a turn to stream a blob; the turn ends when the permit drops.
    pub(super) async fn stream_turn(&self) -> SemaphorePermit<'_> {
        self.shared
            .streams
            .acquire()
            .await
            .expect("the semaphore is never closed")
    }

    pub(super) fn budget(&self) -> &Budget {
        &self.budget
    }

    /// The same access without retries of its own: for the steps of an operation that is
    /// retried as a whole (a blob copy restarts from the upload's start).
    pub(super) fn once(&self) -> Client {
        Client {
            shared: self.shared.clone(),
            budget: Budget {
                retries: 0,
                ..self.budget
            },
        }
    }

    /// A non-success answer as an error, naming the credential that was presented.
    pub(super) async fn refusal(&self, reply: &Reply, op: &Op<'_>) -> Error {
        let origin = match classify::about_credentials(reply) {
            true => self
                .shared
                .credentials
                .get(op.registry, false)
                .await
                .ok()
                .map(|f| f.origin),
            false => None,
        };
        classify::reply(reply, op, origin.as_ref())
    }

    /// The same access whose retries never sleep past `deadline`.
    pub(super) fn with_deadline(&self, deadline: Option<Deadline>) -> Client {
        Client {
            shared: self.shared.clone(),
            budget: Budget {
                deadline,
                ..self.budget
            },
        }
    }

    /// The credential the chain has for `host` (found once, kept).
    pub(super) async fn credential(&self, host: &str) -> Result<Found, Error> {
        self.shared.credentials.get(host, false).await
    }

    pub(super) fn ecr(&self) -> &Ecr {
        &self.shared.ecr
    }
}
