use serde::{Deserialize, Serialize};

/// The outcome of a plain HTML form (no JavaScript), shown once on the page it was sent back to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct Flash {
    /// Whether it reports success (otherwise it explains a refusal or failure).
    pub ok: bool,
    /// The sentence shown on the page.
    pub message: String,
}
