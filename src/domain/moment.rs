use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// A moment, with how it reads in the viewer's time zone. The server renders `local`, so the page it
/// sends and the page the browser hydrates show the same text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct Timestamp {
    /// The moment (RFC 3339 in JSON).
    #[serde(with = "time::serde::rfc3339")]
    pub utc: OffsetDateTime,
    /// The moment in the viewer's time zone, for example `28 Nov 2026, 14:05 (Europe/Berlin)`.
    pub local: String,
}
