//! What the document store accepts, how much it keeps for whom, and how often it checks itself.

use super::{parse_duration, parse_on_off, parse_trimmed};
use bytesize::ByteSize;
use clap::Args;
use std::time::Duration;

/// The document store's rules.
#[derive(Debug, Clone, Args)]
pub struct DocumentSettings {
    /// Largest file a user may upload (for example 256MiB, 1GiB).
    #[arg(
        long = "max-upload-size",
        env = "PAWFILE_MAX_UPLOAD_SIZE",
        default_value = "256MiB"
    )]
    pub max_upload_size: ByteSize,
    /// Accepted document types, as MIME types sniffed from the bytes (comma-separated).
    #[arg(
        long = "accepted-types",
        env = "PAWFILE_ACCEPTED_TYPES",
        value_delimiter = ',',
        value_parser = parse_trimmed,
        default_value = "application/pdf,image/jpeg,image/png,image/webp,image/gif,image/heif,image/tiff,application/dicom"
    )]
    pub accepted_types: Vec<String>,
    /// Remove where a photo was taken (EXIF GPS, maker notes, XMP GPS) from JPEG, PNG and WebP uploads,
    /// without re-encoding them (`off`: store photos exactly as they came).
    #[arg(long = "strip-photo-location", env = "PAWFILE_STRIP_PHOTO_LOCATION", default_value = "on", value_parser = parse_on_off)]
    pub strip_photo_location: bool,
    /// How long deleted documents stay in the trash before they are purged.
    #[arg(long = "trash-retention", env = "PAWFILE_TRASH_RETENTION", default_value = "30days", value_parser = parse_duration)]
    pub trash_retention: Duration,
    /// An upload that has not finished after this long is abandoned (its server died): the next
    /// reconcile removes its pieces from the bucket. Longer than the slowest upload you expect.
    #[arg(long = "stale-upload-after", env = "PAWFILE_STALE_UPLOAD_AFTER", default_value = "24h", value_parser = parse_duration)]
    pub stale_upload_after: Duration,
    /// How often the bucket is compared with the database.
    #[arg(long = "reconcile-interval", env = "PAWFILE_RECONCILE_INTERVAL", default_value = "6h", value_parser = parse_duration)]
    pub reconcile_interval: Duration,
    /// Every document's bytes are read back and re-hashed at least once per this period (the scrub
    /// shares the work between the reconcile runs).
    #[arg(long = "scrub-period", env = "PAWFILE_SCRUB_PERIOD", default_value = "30days", value_parser = parse_duration)]
    pub scrub_period: Duration,
    /// Storage one owner's uploads may hold (documents in the trash count until purged); an upload
    /// that does not fit is refused before its bytes are stored.
    #[arg(
        long = "quota-per-owner",
        env = "PAWFILE_QUOTA_PER_OWNER",
        default_value = "2GiB"
    )]
    pub quota_per_owner: ByteSize,
    /// Storage one clinic's staff's uploads may hold, together.
    #[arg(
        long = "quota-per-clinic",
        env = "PAWFILE_QUOTA_PER_CLINIC",
        default_value = "500GiB"
    )]
    pub quota_per_clinic: ByteSize,
}

impl Default for DocumentSettings {
    fn default() -> Self {
        super::defaults()
    }
}

impl DocumentSettings {
    /// The storage quotas.
    pub fn quotas(&self) -> crate::documents::quota::Quotas {
        crate::documents::quota::Quotas {
            per_owner: self.quota_per_owner.as_u64(),
            per_clinic: self.quota_per_clinic.as_u64(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_file_type_is_accepted_by_default() {
        assert_eq!(
            DocumentSettings::default().accepted_types.join(","),
            crate::domain::FileType::DEFAULT_ACCEPTED.join(",")
        );
    }

    #[test]
    fn listed_types_are_read_without_their_spaces() {
        use clap::Parser;
        #[derive(Parser)]
        struct Wrap {
            #[command(flatten)]
            documents: DocumentSettings,
        }
        let set = Wrap::try_parse_from([
            "pawfile",
            "--accepted-types=application/pdf, image/png ,image/jpeg",
        ])
        .unwrap()
        .documents;
        assert_eq!(set.accepted_types, ["application/pdf", "image/png", "image/jpeg"]);
    }

    #[test]
    fn quotas_default_to_the_documented_ones() {
        assert_eq!(
            DocumentSettings::default().quotas(),
            crate::documents::quota::Quotas::DEFAULT
        );
    }
}
