//! One module per page family.

pub mod auth;
pub mod components;
pub mod home;
