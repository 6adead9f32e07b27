//! Server functions: the data and mutations pages use, each at a stable endpoint under `/api` so scripts
//! can call them too. Each loads the session user and checks access first; the work itself is in the core.

mod account;
mod admin;
mod documents;
mod home;
mod pets;
mod records;

pub use account::*;
pub use admin::*;
pub use documents::*;
pub use home::*;
pub use pets::*;
pub use records::*;
