//! Core integration tests, against a real Postgres (a fresh database per test) and real S3 servers (a
//! fresh bucket per test, on the embedded endpoint and on Garage).

mod accounts;
mod admin;
mod documents;
mod fixtures;
mod pets;
mod records;
mod storage;
mod writer;
