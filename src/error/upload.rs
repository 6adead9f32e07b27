//! Why one file of an upload was refused or could not be stored.

use super::StorageError;

/// Why a file was refused or failed. The messages are for the person uploading.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// Nothing was sent.
    #[error("The file is empty.")]
    Empty,
    /// More than the limit was sent.
    #[error("The file is larger than the limit of {}.", bytesize::ByteSize(*limit))]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The bytes are not of an accepted type, whatever the name says.
    #[error("This file is not one of the accepted types ({accepted}){}.", detected.as_deref().map(|d| format!("; its content looks like {d}")).unwrap_or_default())]
    Refused {
        /// What the bytes look like, if known.
        detected: Option<String>,
        /// The accepted types, for the message.
        accepted: String,
    },
    /// The request carries more files than one upload may.
    #[error("Send at most {most} files at once.")]
    TooManyFiles {
        /// The most files one upload may carry.
        most: usize,
    },
    /// The request body ended early or broke off (the client went away).
    #[error("The upload was interrupted before the file was complete.")]
    Interrupted(String),
    /// The object store failed.
    #[error("The file could not be stored: {0}")]
    Storage(#[from] StorageError),
    /// The database, where the upload is announced before it starts, failed.
    #[error("The upload could not be announced in the database: {0}")]
    Database(#[from] sqlx::Error),
}
