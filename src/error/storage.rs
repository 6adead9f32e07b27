//! What can go wrong talking to S3 (`crate::storage` says which SDK failure is which).

/// What can go wrong talking to S3, with "not found" kept distinct.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The object does not exist.
    #[error("object not found")]
    NotFound,
    /// The bucket does not exist.
    #[error("bucket {bucket:?} does not exist at {endpoint}")]
    NoSuchBucket {
        /// The bucket.
        bucket: String,
        /// Where we looked.
        endpoint: String,
    },
    /// The credentials were refused, or do not grant access to the bucket.
    #[error(
        "access to bucket {bucket:?} at {endpoint} was refused ({code}): check the access key and its permissions"
    )]
    AccessDenied {
        /// The bucket.
        bucket: String,
        /// Where we asked.
        endpoint: String,
        /// The S3 error code.
        code: String,
    },
    /// The endpoint could not be reached (connection refused, DNS, timeout).
    #[error("cannot reach the S3 endpoint {endpoint}: {reason}")]
    Unreachable {
        /// Where we tried.
        endpoint: String,
        /// Why it failed.
        reason: String,
    },
    /// The object is larger than the reader allows.
    #[error("{key} is larger than the {most} bytes it may be")]
    TooLarge {
        /// The object.
        key: String,
        /// The most bytes allowed.
        most: u64,
    },
    /// Any other S3 failure.
    #[error("S3 request failed: {0}")]
    Other(String),
}

impl StorageError {
    /// Whether the object (or bucket) does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, StorageError::NotFound)
    }

    /// Whether the store could not be reached at all (as opposed to answering with an error).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, StorageError::Unreachable { .. })
    }
}
