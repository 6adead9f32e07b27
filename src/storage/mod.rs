//! Object storage: the S3 client built from settings, S3 errors mapped once into [`StorageError`], and
//! the embedded S3 endpoint used when no endpoint is configured.

mod embedded;
mod exposure;
mod settings;
mod writer;

pub use crate::error::StorageError;
pub use embedded::EmbeddedS3;
pub use settings::{DEFAULT_S3_TIMEOUT, S3Credentials, S3Settings, separation_problems};
pub use writer::{ObjectWriter, PART_SIZE, WrittenObject};

use aws_sdk_s3::{
    Client,
    config::{
        Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation, http::HttpResponse,
        retry::RetryConfig, timeout::TimeoutConfig,
    },
    error::{ProvideErrorMetadata, SdkError},
    primitives::ByteStream,
};
use aws_smithy_types::body::SdkBody;
use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use bytes::Bytes;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use std::time::Duration;

/// How long to wait for a TCP connection to the S3 endpoint.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Every object path Pawfile writes: keys are made here, never from user input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageKey {
    /// A document's bytes: `documents/<id>`.
    Document(crate::domain::DocumentId),
    /// A document's thumbnail: `thumbnails/<id>`.
    Thumbnail(crate::domain::DocumentId),
}

impl StorageKey {
    /// The prefix of document objects.
    pub const DOCUMENTS: &str = "documents/";
    /// The prefix of thumbnail objects.
    pub const THUMBNAILS: &str = "thumbnails/";

    /// The object key.
    pub fn key(self) -> String {
        match self {
            StorageKey::Document(id) => format!("{}{id}", Self::DOCUMENTS),
            StorageKey::Thumbnail(id) => format!("{}{id}", Self::THUMBNAILS),
        }
    }

    /// The key back to what it names; `None` for keys Pawfile does not make.
    pub fn parse(key: &str) -> Option<Self> {
        if let Some(id) = key.strip_prefix(Self::DOCUMENTS) {
            return id.parse().ok().map(StorageKey::Document);
        }
        key.strip_prefix(Self::THUMBNAILS)
            .and_then(|id| id.parse().ok())
            .map(StorageKey::Thumbnail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::DocumentId;

    #[test]
    fn keys_round_trip_and_foreign_keys_are_ignored() {
        let id = DocumentId::new();
        for key in [StorageKey::Document(id), StorageKey::Thumbnail(id)] {
            assert_eq!(StorageKey::parse(&key.key()), Some(key));
        }
        assert_eq!(StorageKey::parse("documents/../../etc/passwd"), None);
        assert_eq!(StorageKey::parse("backups/x"), None);
    }
}

/// One bucket on one S3 endpoint, with the client configured to reach it.
#[derive(Clone, Debug)]
pub struct ObjectStore {
    client: Client,
    bucket: String,
    endpoint: String,
    /// The longest a download's body may send nothing before it fails.
    idle: Duration,
}

/// An object as listed or inspected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The key.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// When it was written, if the server says.
    pub last_modified: Option<time::OffsetDateTime>,
}

fn timestamp(value: Option<&aws_smithy_types::DateTime>) -> Option<time::OffsetDateTime> {
    value.and_then(|at| time::OffsetDateTime::from_unix_timestamp(at.secs()).ok())
}

/// A streamed object body.
pub struct ObjectBody {
    /// The bytes, as S3 sends them.
    body: ByteStream,
    /// How many bytes the body holds.
    pub length: u64,
    /// The longest the body may send nothing.
    idle: Duration,
}

impl ObjectBody {
    /// The bytes as a reader, read as they arrive from S3.
    pub fn into_reader(self) -> impl tokio::io::AsyncBufRead + Send + Unpin + 'static {
        self.body.into_async_read()
    }

    /// The bytes as a stream of chunks, read as they arrive from S3. A body that sends nothing for the
    /// store's timeout (`PAWFILE_S3_TIMEOUT`) ends with an error, so a download from a store that stalls
    /// half way ends, and its client's connection with it, instead of hanging.
    pub fn into_stream(self) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
        let idle = self.idle;
        let chunks = tokio_util::io::ReaderStream::new(self.into_reader());
        futures::stream::unfold(Some(chunks), move |chunks| async move {
            let mut chunks = chunks?;
            match tokio::time::timeout(idle, futures::StreamExt::next(&mut chunks)).await {
                Ok(Some(chunk)) => Some((chunk, Some(chunks))),
                Ok(None) => None,
                Err(_) => Some((
                    Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("the store sent nothing for {idle:?}"),
                    )),
                    None,
                )),
            }
        })
    }
}

impl ObjectStore {
    /// Builds a client for `settings`: custom endpoint, path style, static credentials or the default AWS
    /// chain, timeouts, and checksums only where the operation requires them (self-hosted servers such as
    /// Garage reject the SDK's default streaming checksum trailer over plain HTTP).
    pub async fn connect(settings: &S3Settings) -> Self {
        // Bodies Pawfile sends are at most one part (8 MiB) from memory, so one operation may be bounded
        // whole; a download's body is bounded per pause (the read timeout and the SDK's stalled-stream
        // protection), never in total.
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(CONNECT_TIMEOUT.min(settings.timeout))
            .read_timeout(settings.timeout)
            .operation_attempt_timeout(settings.timeout)
            .operation_timeout(settings.timeout)
            .build();
        let mut builder = match &settings.credentials {
            Some(credentials) => aws_sdk_s3::Config::builder()
                .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
                .credentials_provider(Credentials::new(
                    credentials.access_key_id.clone(),
                    credentials.secret_access_key.expose_secret().to_owned(),
                    None,
                    None,
                    "pawfile-settings",
                )),
            None => {
                let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
                    .region(Region::new(settings.region.clone()))
                    .load()
                    .await;
                aws_sdk_s3::config::Builder::from(&shared)
            }
        };
        builder = builder
            .region(Region::new(settings.region.clone()))
            .timeout_config(timeouts)
            .stalled_stream_protection(
                aws_sdk_s3::config::StalledStreamProtectionConfig::enabled()
                    .grace_period(settings.timeout)
                    .build(),
            )
            .retry_config(RetryConfig::standard().with_max_attempts(3))
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        let endpoint = match &settings.endpoint {
            Some(url) => {
                builder = builder
                    .endpoint_url(url.as_str().trim_end_matches('/'))
                    .force_path_style(settings.force_path_style.unwrap_or(true));
                url.as_str().trim_end_matches('/').to_owned()
            }
            None => {
                builder = builder.force_path_style(settings.force_path_style.unwrap_or(false));
                format!("AWS S3 ({})", settings.region)
            }
        };
        Self {
            client: Client::from_conf(builder.build()),
            bucket: settings.bucket.clone(),
            endpoint,
            idle: settings.timeout,
        }
    }

    /// The same store, every call also seen by `observer` (the metrics count and time them:
    /// `Metrics::s3_interceptor`).
    pub fn observed(&self, observer: impl aws_sdk_s3::config::Intercept + 'static) -> Self {
        let config = self.client.config().to_builder().interceptor(observer).build();
        Self {
            client: Client::from_conf(config),
            bucket: self.bucket.clone(),
            endpoint: self.endpoint.clone(),
            idle: self.idle,
        }
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The endpoint, for messages.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The underlying SDK client, for tests that must reach past this type (to plant or inspect what
    /// Pawfile itself never does).
    #[cfg(feature = "testing")]
    pub fn sdk(&self) -> &Client {
        &self.client
    }

    /// Turns an SDK error into a [`StorageError`]: done here once, for every operation.
    fn classify<E>(&self, err: &SdkError<E, HttpResponse>) -> StorageError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let status = err.raw_response().map(|response| response.status().as_u16());
        let code = err.code().map(str::to_owned);
        match (err, status, code.as_deref()) {
            (SdkError::DispatchFailure(_) | SdkError::TimeoutError(_), _, _) => StorageError::Unreachable {
                endpoint: self.endpoint.clone(),
                reason: crate::error::root_cause(err),
            },
            (_, _, Some("NoSuchBucket")) => StorageError::NoSuchBucket {
                bucket: self.bucket.clone(),
                endpoint: self.endpoint.clone(),
            },
            (_, Some(404), _) | (_, _, Some("NoSuchKey" | "NotFound")) => StorageError::NotFound,
            (_, Some(401 | 403), code) => StorageError::AccessDenied {
                bucket: self.bucket.clone(),
                endpoint: self.endpoint.clone(),
                code: code.unwrap_or("Forbidden").to_owned(),
            },
            (_, _, code) => StorageError::Other(match (code, err.message()) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                (Some(code), None) => code.to_owned(),
                _ => crate::error::root_cause(err),
            }),
        }
    }

    /// Checks that the bucket exists and the credentials may use it.
    pub async fn check_bucket(&self) -> Result<(), StorageError> {
        match self.client.head_bucket().bucket(&self.bucket).send().await {
            Ok(_) => Ok(()),
            Err(err) => Err(match self.classify(&err) {
                // HEAD has no body, so a missing bucket arrives as a bare 404.
                StorageError::NotFound => StorageError::NoSuchBucket {
                    bucket: self.bucket.clone(),
                    endpoint: self.endpoint.clone(),
                },
                other => other,
            }),
        }
    }

    /// Creates the bucket unless it exists (for the embedded endpoint and tests).
    pub async fn create_bucket_if_missing(&self) -> Result<(), StorageError> {
        match self.check_bucket().await {
            Err(StorageError::NoSuchBucket { .. }) => {}
            other => return other,
        }
        match self.client.create_bucket().bucket(&self.bucket).send().await {
            Ok(_) => Ok(()),
            Err(err)
                if matches!(
                    err.code(),
                    Some("BucketAlreadyOwnedByYou" | "BucketAlreadyExists")
                ) =>
            {
                Ok(())
            }
            Err(err) => Err(self.classify(&err)),
        }
    }

    /// Stores a small object in one request, asking S3 to verify its SHA-256.
    pub async fn put_bytes(&self, key: &str, bytes: Bytes, content_type: &str) -> Result<(), StorageError> {
        let checksum = BASE64.encode(Sha256::digest(&bytes));
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .content_length(bytes.len() as i64)
            .checksum_sha256(checksum)
            .body(ByteStream::new(SdkBody::from(bytes)))
            .send()
            .await
            .map_err(|err| self.classify(&err))?;
        Ok(())
    }

    /// Reads a whole object into memory (small objects only: manifests, thumbnails, tests).
    pub async fn get_bytes(&self, key: &str) -> Result<Bytes, StorageError> {
        let output = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|err| self.classify(&err))?;
        let data = output
            .body
            .collect()
            .await
            .map_err(|err| StorageError::Other(format!("reading {key}: {err}")))?;
        Ok(data.into_bytes())
    }

    /// Reads a whole object into memory, refusing one of more than `most` bytes before reading it (or
    /// as soon as more arrive): for objects whose size someone else may choose.
    pub async fn get_bytes_at_most(&self, key: &str, most: u64) -> Result<Bytes, StorageError> {
        let too_large = || StorageError::TooLarge {
            key: key.to_owned(),
            most,
        };
        let mut output = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|err| self.classify(&err))?;
        if output
            .content_length()
            .is_some_and(|length| u64::try_from(length).unwrap_or(0) > most)
        {
            return Err(too_large());
        }
        let mut data = Vec::new();
        while let Some(chunk) = output
            .body
            .try_next()
            .await
            .map_err(|err| StorageError::Other(format!("reading {key}: {err}")))?
        {
            if (data.len() + chunk.len()) as u64 > most {
                return Err(too_large());
            }
            data.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(data))
    }

    /// The object's size, or [`StorageError::NotFound`].
    pub async fn head(&self, key: &str) -> Result<ObjectInfo, StorageError> {
        let output = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|err| self.classify(&err))?;
        Ok(ObjectInfo {
            key: key.to_owned(),
            size: output.content_length().unwrap_or_default().max(0) as u64,
            last_modified: timestamp(output.last_modified()),
        })
    }

    /// Deletes an object; deleting a missing object succeeds (S3 semantics).
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|err| self.classify(&err))?;
        Ok(())
    }

    /// Every object whose key starts with `prefix`, following pagination.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StorageError> {
        let mut objects = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|err| self.classify(&err))?;
            objects.extend(page.contents().iter().filter_map(|object| {
                Some(ObjectInfo {
                    key: object.key()?.to_owned(),
                    size: object.size().unwrap_or_default().max(0) as u64,
                    last_modified: timestamp(object.last_modified()),
                })
            }));
        }
        Ok(objects)
    }

    /// Streams an object, or the inclusive byte range `range` of it.
    pub async fn get_stream(&self, key: &str, range: Option<(u64, u64)>) -> Result<ObjectBody, StorageError> {
        let mut request = self.client.get_object().bucket(&self.bucket).key(key);
        if let Some((start, end)) = range {
            request = request.range(format!("bytes={start}-{end}"));
        }
        let output = request.send().await.map_err(|err| self.classify(&err))?;
        Ok(ObjectBody {
            length: output.content_length().unwrap_or_default().max(0) as u64,
            body: output.body,
            idle: self.idle,
        })
    }

    /// Aborts the multipart upload `upload_id` of `key`; [`StorageError::NotFound`] when S3 does not
    /// know it (completed or aborted already).
    pub async fn abort_upload(&self, key: &str, upload_id: &str) -> Result<(), StorageError> {
        self.client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await
            .map_err(|err| self.classify(&err))?;
        Ok(())
    }

    /// Reads an object in full, without holding it in memory, and returns its SHA-256 and size.
    pub async fn sha256_of(&self, key: &str) -> Result<([u8; 32], u64), StorageError> {
        let mut object = self.get_stream(key, None).await?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = object.body.next().await {
            let chunk = chunk.map_err(|err| StorageError::Other(format!("reading {key}: {err}")))?;
            size += chunk.len() as u64;
            hasher.update(&chunk);
        }
        Ok((hasher.finalize().into(), size))
    }

    /// Aborts multipart uploads started before `cutoff` (left by a crash), following pagination.
    /// Servers that cannot list multipart uploads (s3s-fs) are skipped.
    pub async fn abort_stale_uploads(&self, cutoff: time::OffsetDateTime) -> Result<usize, StorageError> {
        let mut aborted = 0;
        let (mut key_marker, mut upload_marker): (Option<String>, Option<String>) = (None, None);
        loop {
            let listed = match self
                .client
                .list_multipart_uploads()
                .bucket(&self.bucket)
                .set_key_marker(key_marker.clone())
                .set_upload_id_marker(upload_marker.clone())
                .send()
                .await
            {
                Ok(listed) => listed,
                Err(err) if err.code() == Some("NotImplemented") => return Ok(aborted),
                Err(err) => return Err(self.classify(&err)),
            };
            for upload in listed.uploads() {
                let stale = timestamp(upload.initiated()).is_some_and(|started| started < cutoff);
                if let (true, Some(key), Some(upload_id)) = (stale, upload.key(), upload.upload_id()) {
                    match self.abort_upload(key, upload_id).await {
                        Ok(()) => aborted += 1,
                        Err(StorageError::NotFound) => {}
                        Err(err) => return Err(err),
                    }
                }
            }
            if !listed.is_truncated().unwrap_or(false) {
                return Ok(aborted);
            }
            key_marker = listed.next_key_marker().map(str::to_owned);
            upload_marker = listed.next_upload_id_marker().map(str::to_owned);
            if key_marker.is_none() && upload_marker.is_none() {
                return Ok(aborted);
            }
        }
    }
}
