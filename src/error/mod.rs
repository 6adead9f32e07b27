//! The core's errors: what went wrong, kept apart from how the web face reports it.

mod storage;
mod upload;

pub use storage::StorageError;
pub use upload::UploadError;

use crate::domain::InvalidInput;
use std::time::Duration;

/// What a core operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input a person typed was refused; the message is for them.
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    /// The change conflicts with existing data; the message is for the user.
    #[error("{0}")]
    Conflict(String),
    /// The thing does not exist, or the caller may not know that it does.
    #[error("not found")]
    NotFound,
    /// The caller knows the thing exists but may not do this; the message is for the user.
    #[error("{0}")]
    Forbidden(String),
    /// The caller has done this too often; try again later.
    #[error("too many attempts; try again in {} minutes", retry_after.as_secs().div_ceil(60))]
    RateLimited {
        /// When the caller may try again.
        retry_after: Duration,
        /// What to tell the person, when more than "too many attempts" helps them.
        message: Option<String>,
    },
    /// The upload does not fit in the storage quota; the message says what is used and what to do.
    #[error("{0}")]
    QuotaExceeded(String),
    /// A file of an upload was refused or could not be stored; the message is for the person uploading.
    #[error("{file}: {error}")]
    Upload {
        /// The file's (sanitised) name.
        file: String,
        /// What went wrong with it.
        error: UploadError,
    },
    /// Postgres failed or could not be reached.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The object store (S3) failed or could not be reached.
    #[error("object store error: {0}")]
    Storage(#[from] StorageError),
    /// Anything else: a bug or an unexpected failure.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl Error {
    /// Whether the failure is Postgres or the object store being unreachable or overloaded (rather
    /// than a bug).
    pub fn is_unavailable(&self) -> bool {
        match self {
            Error::Database(err) => matches!(
                err,
                sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::Io(_)
                    | sqlx::Error::Tls(_)
            ),
            Error::Storage(err) => err.is_unreachable(),
            _ => false,
        }
    }
}

impl Error {
    /// Whether PostgreSQL refused text it cannot store: NUL in text (22021) or `\u0000` in jsonb (22P05).
    pub fn is_unstorable_text(&self) -> bool {
        matches!(self, Error::Database(sqlx::Error::Database(db))
            if matches!(db.code().as_deref(), Some("22021" | "22P05")))
    }
}

/// A `Result` with the core's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Bad configuration found at start-up: one line that names the setting.
#[derive(Debug, thiserror::Error)]
#[error("{setting}: {message}")]
pub struct StartupError {
    /// The environment variable (or flag) to fix.
    pub setting: String,
    /// What is wrong with it.
    pub message: String,
}

impl StartupError {
    /// A problem with `setting`.
    pub fn new(setting: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            setting: setting.into(),
            message: message.into(),
        }
    }
}

/// The innermost cause of `err`, which is usually the one line a person needs.
pub fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut current = err;
    let mut message = current.to_string();
    while let Some(source) = current.source() {
        let text = source.to_string();
        if !text.is_empty() {
            message = text;
        }
        current = source;
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_failures_are_not_database_errors() {
        let err = Error::from(StorageError::Other("boom".to_owned()));
        assert!(matches!(err, Error::Storage(_)));
        assert!(!err.to_string().contains("database"), "{err}");
        assert!(!err.is_unavailable());
    }

    #[test]
    fn unreachable_stores_and_databases_are_unavailable() {
        let unreachable = StorageError::Unreachable {
            endpoint: "http://s3".to_owned(),
            reason: "connection refused".to_owned(),
        };
        assert!(Error::from(unreachable).is_unavailable());
        assert!(Error::from(sqlx::Error::PoolTimedOut).is_unavailable());
        assert!(!Error::from(sqlx::Error::RowNotFound).is_unavailable());
        assert!(!Error::NotFound.is_unavailable());
    }
}
