//! multiarch's integration tests: one crate, so the shared support compiles and links once.
//! Each module holds one area's specifications; `support` holds the real services they start
//! (docker-registry, moto_server, gitlab-ci-local) and the fake registries.

mod support;

mod access;
mod anywhere;
mod append;
mod aws_credentials;
mod bearer;
mod build_destination;
mod cancel;
mod components;
mod content;
mod copies;
mod demo;
mod ecr;
mod gitlab;
mod hints;
mod hostile;
mod if_complete;
mod login;
mod order;
mod origin;
mod own_builds;
mod push;
mod push_access;
mod redirects;
mod refused;
mod resilience;
mod revision;
mod zero_stage;
