//! Integration tests of the web face: the real application on a loopback port, a fresh Postgres
//! database per test, fresh buckets on a real S3 endpoint, and an HTTP client that keeps cookies.

mod accounts;
mod backups;
mod dashboard;
mod deploy;
mod documents;
mod hardening;
mod health;
mod hostile;
mod mail;
mod metrics;
mod openapi;
mod pages;
mod pets;
mod replicas;
mod security;
mod startup;
mod statements;
mod support;
