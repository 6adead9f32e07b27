//! The server side: application state, sessions, request context for server functions, plain HTTP routes
//! and middleware, and the application that ties them to a listener.

mod application;
mod context;
pub mod documents;
mod http;
pub mod security;
pub mod session;
mod state;
pub mod telemetry;

pub use application::{Application, build_state};
pub use context::{RequestContext, respond};
pub use state::{AppState, RuntimeConfig, TaskSignals};
