//! Everything HTTP below the pages: the request context server functions read, the session, the
//! middleware and security headers, health checks, and the document routes and API description
//! (`crate::startup::router` puts them together).

mod context;
pub mod documents;
pub mod form_limits;
pub(crate) mod health;
pub(crate) mod middleware;
pub mod openapi;
mod query;
pub mod security;
pub mod session;
pub(crate) mod text_guard;

pub use context::{RequestContext, prefers_html, respond};
pub use query::list_filter;

/// The upload route, whose body (a multipart form of any size) streams past the text guard unread: the
/// route checks its own text fields and file names.
pub const UPLOAD_ROUTE: &str = "/api/pets/{pet_id}/documents";
