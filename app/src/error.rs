//! The error every server function and HTTP route answers with: a message a person understands, the
//! field it belongs to, and (on the server) the fitting HTTP status. Details of internal failures stay in
//! the server's logs.

use leptos::server_fn::{
    codec::JsonEncoding,
    error::{FromServerFnError, ServerFnErrorErr},
};
use serde::{Deserialize, Serialize};

/// What went wrong, as the user and API clients see it. Serialised as JSON: `{"kind": "...", "error":
/// "<message>"}`, plus `field` for invalid input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub enum ApiError {
    /// Bad input (422); `field` names the form field.
    #[error("{error}")]
    Invalid {
        /// The form field the message belongs next to.
        field: Option<String>,
        /// The message.
        error: String,
    },
    /// Sign-in required, or the sign-in failed (401).
    #[error("{error}")]
    Unauthenticated {
        /// The message.
        error: String,
    },
    /// Signed in, but not allowed (403).
    #[error("{error}")]
    Forbidden {
        /// The message.
        error: String,
    },
    /// No such thing, or one the caller may not know exists (404).
    #[error("{error}")]
    NotFound {
        /// The message.
        error: String,
    },
    /// Conflicts with existing data (409).
    #[error("{error}")]
    Conflict {
        /// The message.
        error: String,
    },
    /// Too many attempts (429, with `Retry-After`).
    #[error("{error}")]
    RateLimited {
        /// The message.
        error: String,
        /// Seconds until the caller may try again (also sent as `Retry-After`).
        #[serde(default)]
        retry_after: u64,
    },
    /// Malformed request (400).
    #[error("{error}")]
    BadRequest {
        /// The message.
        error: String,
    },
    /// The upload is larger than allowed (413).
    #[error("{error}")]
    TooLarge {
        /// The message.
        error: String,
    },
    /// The upload does not fit in the owner's or clinic's storage quota (413).
    #[error("{error}")]
    QuotaExceeded {
        /// The message: what is used, what the upload needs.
        error: String,
    },
    /// The file's content is not of an accepted type (415).
    #[error("{error}")]
    UnsupportedType {
        /// The message.
        error: String,
    },
    /// The request did not arrive in time: its body came too slowly (408).
    #[error("{error}")]
    TimedOut {
        /// The message.
        error: String,
    },
    /// A backing service is down; try again later (503).
    #[error("{error}")]
    Unavailable {
        /// The message.
        error: String,
    },
    /// A bug or unexpected failure (500); the details are in the server's log.
    #[error("{error}")]
    Internal {
        /// The message.
        error: String,
    },
}

impl ApiError {
    /// Sign-in required.
    pub fn unauthenticated() -> Self {
        ApiError::Unauthenticated {
            error: "Please sign in first.".to_owned(),
        }
    }

    /// Not allowed.
    pub fn forbidden() -> Self {
        ApiError::Forbidden {
            error: "You are not allowed to do this.".to_owned(),
        }
    }

    /// Not found.
    pub fn not_found() -> Self {
        ApiError::NotFound {
            error: "Not found.".to_owned(),
        }
    }

    /// Bad input in `field`.
    pub fn invalid(field: &str, error: impl Into<String>) -> Self {
        ApiError::Invalid {
            field: Some(field.to_owned()),
            error: error.into(),
        }
    }

    /// The HTTP status that fits.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::Invalid { .. } => 422,
            ApiError::Unauthenticated { .. } => 401,
            ApiError::Forbidden { .. } => 403,
            ApiError::NotFound { .. } => 404,
            ApiError::Conflict { .. } => 409,
            ApiError::RateLimited { .. } => 429,
            ApiError::BadRequest { .. } => 400,
            ApiError::TooLarge { .. } | ApiError::QuotaExceeded { .. } => 413,
            ApiError::UnsupportedType { .. } => 415,
            ApiError::TimedOut { .. } => 408,
            ApiError::Unavailable { .. } => 503,
            ApiError::Internal { .. } => 500,
        }
    }

    /// Seconds to send as `Retry-After`, for a refusal that ends.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::RateLimited { retry_after, .. } if *retry_after > 0 => Some(*retry_after),
            _ => None,
        }
    }

    /// The field the message belongs next to, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            ApiError::Invalid { field, .. } => field.as_deref(),
            _ => None,
        }
    }
}

impl FromServerFnError for ApiError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            // The framework's body limit, met while reading the request.
            ServerFnErrorErr::Deserialization(message) if message.contains("length limit") => {
                ApiError::TooLarge {
                    error: "This request is larger than Pawfile accepts.".to_owned(),
                }
            }
            ServerFnErrorErr::Args(_)
            | ServerFnErrorErr::MissingArg(_)
            | ServerFnErrorErr::Deserialization(_) => ApiError::BadRequest {
                error: "The form was incomplete or malformed.".to_owned(),
            },
            ServerFnErrorErr::UnsupportedRequestMethod(_) => ApiError::BadRequest {
                error: "This function is not called with this method.".to_owned(),
            },
            ServerFnErrorErr::Request(_) => ApiError::Unavailable {
                error: "Cannot reach Pawfile. Check your connection and try again.".to_owned(),
            },
            // Whatever else the framework reports stays in the server's log, not in the answer.
            other => {
                #[cfg(feature = "ssr")]
                tracing::error!(error = %other, "server function failed in the framework");
                #[cfg(not(feature = "ssr"))]
                let _ = other;
                ApiError::Internal {
                    error: "Something went wrong on our side.".to_owned(),
                }
            }
        }
    }
}

impl From<pawfile::domain::InvalidInput> for ApiError {
    fn from(value: pawfile::domain::InvalidInput) -> Self {
        ApiError::invalid(value.field, value.message)
    }
}

#[cfg(feature = "ssr")]
impl From<pawfile::error::Error> for ApiError {
    fn from(err: pawfile::error::Error) -> Self {
        use pawfile::error::Error;
        match err {
            Error::Invalid(invalid) => invalid.into(),
            Error::Conflict(error) => ApiError::Conflict { error },
            Error::NotFound => ApiError::not_found(),
            Error::Forbidden(error) => ApiError::Forbidden { error },
            Error::QuotaExceeded(error) => ApiError::QuotaExceeded { error },
            Error::Upload { file, error } => name_the_file(error.into(), &file),
            Error::Storage(storage) => {
                let missing = storage.is_not_found();
                storage_failed(&storage, missing)
            }
            Error::RateLimited { retry_after, message } => {
                let minutes = retry_after.as_secs().div_ceil(60).max(1);
                let wait = if minutes == 1 {
                    "Try again in a minute.".to_owned()
                } else {
                    format!("Try again in {minutes} minutes.")
                };
                ApiError::RateLimited {
                    error: match message {
                        Some(message) => format!("{message} {wait}"),
                        None => format!("Too many attempts. {wait}"),
                    },
                    retry_after: retry_after.as_secs().max(1),
                }
            }
            err if err.is_unstorable_text() => {
                tracing::warn!(error = %err, "text the database cannot store got past the checks");
                ApiError::BadRequest {
                    error: "This request contains a character that cannot be stored (NUL, U+0000)."
                        .to_owned(),
                }
            }
            err if err.is_unavailable() => {
                tracing::error!(error = %err, "database unavailable");
                ApiError::Unavailable {
                    error: "Pawfile's database is unavailable. Try again in a moment.".to_owned(),
                }
            }
            err => {
                tracing::error!(error = ?err, "internal error");
                ApiError::Internal {
                    error: "Something went wrong on our side. It has been logged; please try again."
                        .to_owned(),
                }
            }
        }
    }
}

#[cfg(feature = "ssr")]
impl axum::response::IntoResponse for ApiError {
    fn into_response(self) -> axum::response::Response {
        let status = axum::http::StatusCode::from_u16(self.status())
            .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
        let retry_after = self.retry_after();
        let mut response = (status, axum::Json(self)).into_response();
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(seconds),
            );
        }
        response
    }
}

#[cfg(feature = "ssr")]
impl From<pawfile::documents::UploadError> for ApiError {
    fn from(err: pawfile::documents::UploadError) -> Self {
        use pawfile::documents::UploadError;
        let error = err.to_string();
        match err {
            UploadError::Empty => ApiError::Invalid {
                field: Some("file".to_owned()),
                error,
            },
            UploadError::TooLarge { .. } => ApiError::TooLarge { error },
            UploadError::Refused { .. } => ApiError::UnsupportedType { error },
            UploadError::Interrupted(_) | UploadError::TooManyFiles { .. } => ApiError::BadRequest { error },
            UploadError::Database(database) => {
                tracing::error!(error = %database, "cannot announce an upload");
                ApiError::Unavailable {
                    error:
                        "Pawfile cannot reach its database; the file was not saved. Try again in a moment."
                            .to_owned(),
                }
            }
            UploadError::Storage(storage) => {
                tracing::error!(error = %storage, "upload failed in the object store");
                ApiError::Unavailable {
                    error: "The file store is unavailable; the file was not saved. Try again in a moment."
                        .to_owned(),
                }
            }
        }
    }
}

#[cfg(feature = "ssr")]
fn storage_failed(err: &dyn std::fmt::Display, missing: bool) -> ApiError {
    tracing::error!(error = %err, "object store request failed");
    ApiError::Unavailable {
        error: if missing {
            "This file is missing from the store. Administrators have been told.".to_owned()
        } else {
            "The file store is unavailable. Try again in a moment.".to_owned()
        },
    }
}

/// `file: message` for refusals that belong to one file of an upload.
#[cfg(feature = "ssr")]
fn name_the_file(err: ApiError, name: &str) -> ApiError {
    match err {
        ApiError::TooLarge { error } => ApiError::TooLarge {
            error: format!("{name}: {error}"),
        },
        ApiError::UnsupportedType { error } => ApiError::UnsupportedType {
            error: format!("{name}: {error}"),
        },
        ApiError::Invalid { field, error } => ApiError::Invalid {
            field,
            error: format!("{name}: {error}"),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_serialise_with_a_readable_message() {
        let json = serde_json::to_value(ApiError::invalid("email", "Enter your e-mail address.")).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind": "invalid", "field": "email", "error": "Enter your e-mail address."})
        );
        let back: ApiError = serde_json::from_value(json).unwrap();
        assert_eq!(back.status(), 422);
        assert_eq!(back.field(), Some("email"));
    }

    #[cfg(feature = "ssr")]
    #[test]
    fn object_store_failures_are_unavailable_and_not_called_database_errors() {
        use pawfile::{error::Error, storage::StorageError};
        let missing = ApiError::from(Error::from(StorageError::NotFound));
        assert_eq!(
            missing,
            ApiError::Unavailable {
                error: "This file is missing from the store. Administrators have been told.".to_owned()
            }
        );
        let unreachable = StorageError::Unreachable {
            endpoint: "http://s3".to_owned(),
            reason: "connection refused".to_owned(),
        };
        for err in [
            ApiError::from(Error::from(unreachable)),
            ApiError::from(Error::from(StorageError::Other("boom".to_owned()))),
        ] {
            assert_eq!(err.status(), 503);
            assert_eq!(
                err.to_string(),
                "The file store is unavailable. Try again in a moment."
            );
        }
    }

    #[test]
    fn statuses_fit_the_kind() {
        assert_eq!(ApiError::unauthenticated().status(), 401);
        assert_eq!(ApiError::forbidden().status(), 403);
        assert_eq!(ApiError::not_found().status(), 404);
    }
}
