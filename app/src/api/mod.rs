//! Server functions: the data and mutations pages use, each at a stable endpoint under `/api` so scripts
//! can call them too. Each loads the session user and checks access first; the work itself is in the core.

mod account;
mod admin;
#[cfg(feature = "ssr")]
pub mod doc;
mod documents;
mod home;
mod pets;
mod records;
mod two_factor;

pub use account::*;
pub use admin::*;
pub use documents::*;
pub use home::*;
pub use pets::*;
pub use records::*;
pub use two_factor::*;

/// Every server function, described (each file's table, `*_DESCRIBED`, see [`doc`]).
#[cfg(feature = "ssr")]
pub fn server_fns() -> impl Iterator<Item = &'static doc::ServerFnDoc> {
    [
        ACCOUNT_DESCRIBED,
        ADMIN_DESCRIBED,
        DOCUMENTS_DESCRIBED,
        HOME_DESCRIBED,
        PETS_DESCRIBED,
        RECORDS_DESCRIBED,
        TWO_FACTOR_DESCRIBED,
    ]
    .into_iter()
    .flatten()
}
