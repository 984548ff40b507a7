//! mlplat-aws: the mlplat commands that need the network, in a crate of their own so that the
//! `mlplat` crate (the compiler: config → backends → secrets → tools → delivery → output) builds
//! and runs without the AWS SDK, an async runtime, an HTTP client or a TLS stack.
//!
//! - [`commands`]: `plan`, `provision`, `destroy` and `images pin`, run by the `mlplat-aws`
//!   binary, which `mlplat` starts with the same arguments.
//! - The AWS backends, RDS PostgreSQL and S3, looked up, created, changed and removed with the
//!   SDK: [`clients`] loads the SDK clients once per command from aws-config's default chain
//!   (`AWS_PROFILE`, `AWS_REGION`, `AWS_ENDPOINT_URL`, …); [`ec2`], [`rds`] and [`s3`] observe
//!   and change one kind of resource each; [`plan`] compares them with what the config asks for
//!   ([`mlplat::backends::aws`], computed without a call); [`provision`] and [`destroy`] run
//!   the steps; [`wait`] polls until an instance is ready, with progress; [`error`] says what
//!   AWS refused, naming the resource.
//! - [`secrets_manager`]: `secrets.mode: external-secrets` stores the Secrets there.
//! - [`registry`]: image digests from OCI registries, for `images pin`.
//!
//! Everything printed goes through mlplat's redacting console: its `println!` and `eprintln!`
//! shadow the standard ones here (`#[macro_use] extern crate mlplat`).
#![warn(clippy::disallowed_macros, clippy::disallowed_methods)]

#[macro_use]
extern crate mlplat;

pub mod clients;
pub mod commands;
pub mod destroy;
pub mod ec2;
pub mod error;
pub mod plan;
pub mod provision;
pub mod rds;
pub mod registry;
pub mod s3;
pub mod secrets_manager;
pub mod wait;

pub use clients::{Clients, runtime};
pub use error::AwsError;
