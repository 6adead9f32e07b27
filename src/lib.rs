//! Pawfile's core: everything Pawfile knows about pets, people, records and documents, with no web
//! framework in it.
//!
//! [`domain`] compiles everywhere (the browser validates forms with the same code the server trusts);
//! everything else needs the `server` feature: Postgres, S3, password hashing, background tasks.

pub mod domain;

#[cfg(feature = "server")]
pub mod access;
#[cfg(feature = "server")]
pub mod account;
#[cfg(feature = "server")]
pub mod admin;
#[cfg(feature = "server")]
pub mod alerts;
#[cfg(feature = "server")]
pub mod audit;
#[cfg(feature = "server")]
pub mod auth;
#[cfg(feature = "server")]
pub mod backup;
#[cfg(feature = "server")]
pub mod claim;
#[cfg(feature = "server")]
pub mod clock;
#[cfg(feature = "server")]
pub mod config;
#[cfg(feature = "server")]
pub mod db;
#[cfg(feature = "server")]
pub mod deletion;
#[cfg(feature = "server")]
pub mod demo;
#[cfg(feature = "server")]
pub mod documents;
#[cfg(feature = "server")]
pub mod error;
#[cfg(feature = "server")]
pub mod files;
#[cfg(feature = "server")]
pub mod health;
#[cfg(feature = "server")]
pub mod home;
#[cfg(feature = "server")]
pub mod mail;
#[cfg(feature = "server")]
pub mod metrics;
#[cfg(feature = "server")]
pub mod net;
#[cfg(feature = "server")]
pub mod pets;
#[cfg(feature = "server")]
pub mod rate_limit;
#[cfg(feature = "server")]
pub mod records;
#[cfg(feature = "server")]
pub mod recovery;
#[cfg(feature = "server")]
pub mod storage;
#[cfg(feature = "server")]
pub mod tasks;
#[cfg(feature = "testing")]
pub mod testing;
#[cfg(feature = "server")]
pub mod usage;
