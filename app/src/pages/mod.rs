//! One module per page family.

pub mod account;
pub mod admin;
pub mod auth;
pub mod backups;
pub mod charts;
pub mod clinic;
pub mod components;
pub mod dashboard;
pub mod documents;
pub mod home;
pub mod pet_form;
pub mod pets;
pub mod records;
pub mod search;
