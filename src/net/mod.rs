//! What the two users of the network share, below both: `registry` (the distribution API over
//! reqwest) and `ecr` (the AWS API through its SDK) resolve names the same way, so a mistyped
//! region fails like a mistyped registry host, and read the errors their HTTP clients hand back
//! the same way. Each client plugs the resolver in on its side; nothing here sends a request.

mod chain;
mod dns;

pub(crate) use chain::causes;
pub(crate) use dns::{lookup, DnsFailure};
