//! Logging: human-readable lines or JSON, filtered by `RUST_LOG` (default: info).

use pawfile::config::LogFormat;
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// What is logged unless `RUST_LOG` says otherwise. The embedded S3 endpoint (s3s) logs every refusal it
/// answers as an error, also those Pawfile expects (an operation it does not implement, such as listing
/// multipart uploads; a key that is not there): Pawfile's storage layer judges each answer and logs (and
/// counts) the failures, so the endpoint's own lines are left out. Its file system's errors (`s3s_fs`) stay.
const DEFAULT_FILTER: &str =
    "info,tower_sessions_core=warn,aws_smithy_runtime=warn,s3s::ops=off,s3s::service=off";

/// Installs the global subscriber. Logs go to standard error, leaving standard output for command
/// results.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Text => registry.with(fmt::layer().with_writer(std::io::stderr)).init(),
        LogFormat::Json => registry
            .with(fmt::layer().json().with_writer(std::io::stderr))
            .init(),
    }
}
