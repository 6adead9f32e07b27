use super::{DocumentId, FileType, InvalidInput, PetId, RecordId, Timestamp, pets::optional_text};
use serde::{Deserialize, Serialize};

/// What a document is, as the uploader files it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DocumentCategory {
    /// Laboratory results.
    LabResult,
    /// X-ray or other imaging.
    XRay,
    /// An invoice.
    Invoice,
    /// A vaccination certificate.
    VaccinationCertificate,
    /// A prescription.
    Prescription,
    /// A report or letter.
    Report,
    /// A photo.
    Photo,
    /// Anything else.
    Other,
}

impl DocumentCategory {
    /// Every category, in form order.
    pub const ALL: [DocumentCategory; 8] = [
        DocumentCategory::LabResult,
        DocumentCategory::XRay,
        DocumentCategory::Invoice,
        DocumentCategory::VaccinationCertificate,
        DocumentCategory::Prescription,
        DocumentCategory::Report,
        DocumentCategory::Photo,
        DocumentCategory::Other,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentCategory::LabResult => "lab_result",
            DocumentCategory::XRay => "x_ray",
            DocumentCategory::Invoice => "invoice",
            DocumentCategory::VaccinationCertificate => "vaccination_certificate",
            DocumentCategory::Prescription => "prescription",
            DocumentCategory::Report => "report",
            DocumentCategory::Photo => "photo",
            DocumentCategory::Other => "other",
        }
    }

    /// How people read it.
    pub fn label(self) -> &'static str {
        match self {
            DocumentCategory::LabResult => "Lab result",
            DocumentCategory::XRay => "X-ray / imaging",
            DocumentCategory::Invoice => "Invoice",
            DocumentCategory::VaccinationCertificate => "Vaccination certificate",
            DocumentCategory::Prescription => "Prescription",
            DocumentCategory::Report => "Report",
            DocumentCategory::Photo => "Photo",
            DocumentCategory::Other => "Other",
        }
    }

    /// Parses a stored name; empty means none.
    pub fn parse(input: &str) -> Result<Option<Self>, InvalidInput> {
        let input = input.trim();
        if input.is_empty() {
            return Ok(None);
        }
        Self::ALL
            .into_iter()
            .find(|category| category.as_str() == input)
            .map(Some)
            .ok_or_else(|| InvalidInput::new("category", "Choose a category from the list."))
    }
}

/// A caption: up to 500 characters, one line.
pub fn parse_caption(input: &str) -> Result<Option<String>, InvalidInput> {
    optional_text(input, "caption", "The caption", 500, false)
}

/// A document as lists and its metadata route show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct DocumentView {
    /// The document.
    pub id: DocumentId,
    /// Its pet.
    pub pet_id: PetId,
    /// The record it is attached to, if any.
    pub record_id: Option<RecordId>,
    /// The name it was uploaded with (sanitised).
    pub filename: String,
    /// Its type, sniffed from the bytes.
    pub content_type: String,
    /// Its size in bytes.
    pub size_bytes: i64,
    /// SHA-256 of its bytes, hex.
    pub sha256: String,
    /// Caption.
    pub caption: Option<String>,
    /// Category.
    pub category: Option<DocumentCategory>,
    /// Who uploaded it.
    pub uploaded_by: String,
    /// When.
    pub uploaded_at: Timestamp,
    /// Whether a thumbnail exists.
    pub has_thumbnail: bool,
    /// When it went to the trash, if it is there.
    pub deleted_at: Option<Timestamp>,
    /// Whether the caller may move it to the trash (and back): its uploader.
    pub can_delete: bool,
    /// Whether the owner chose it as the photo on the pet's card.
    #[serde(default)]
    pub profile_photo: bool,
    /// Whether the position where the photo was taken was removed from it at upload.
    #[serde(default)]
    pub location_removed: bool,
}

impl DocumentView {
    /// Its size for people: `2.4 MiB`.
    pub fn size_label(&self) -> String {
        size_label(u64::try_from(self.size_bytes).unwrap_or(0))
    }

    /// Its type, if Pawfile knows it.
    pub fn file_type(&self) -> Option<FileType> {
        FileType::from_mime(&self.content_type)
    }

    /// Whether it is an image the browser can show.
    pub fn is_image(&self) -> bool {
        self.file_type()
            .is_some_and(|file_type| file_type.is_image() && file_type.inline_safe())
    }

    /// Whether the browser may show it inline (an image it can show, or a PDF).
    pub fn previewable(&self) -> bool {
        self.file_type().is_some_and(FileType::inline_safe)
    }

    /// The badge its type gets in lists ("PDF", "HEIC"; "FILE" for a type Pawfile does not know).
    pub fn type_badge(&self) -> &'static str {
        FileType::badge_of(&self.content_type)
    }
}

/// What the upload form tells people before they choose files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct UploadRules {
    /// Largest file, in bytes.
    pub max_bytes: u64,
    /// Accepted types (MIME).
    pub accepted: Vec<String>,
    /// Accepted types, in words ("PDF, JPEG, ...").
    pub accepted_labels: String,
    /// Whether location metadata is removed from photos at upload.
    #[serde(default)]
    pub strips_location: bool,
}

/// A size as people read it: `512 bytes`, `12 KiB`, `3.4 MiB`, `1.2 GiB`.
pub fn size_label(bytes: u64) -> String {
    let size = bytes as f64;
    match size {
        s if s >= 1024.0 * 1024.0 * 1024.0 => format!("{:.1} GiB", s / (1024.0 * 1024.0 * 1024.0)),
        s if s >= 1024.0 * 1024.0 => format!("{:.1} MiB", s / (1024.0 * 1024.0)),
        s if s >= 1024.0 => format!("{:.0} KiB", s / 1024.0),
        s => format!("{s} bytes"),
    }
}

/// How much of a storage quota is used: an owner's (for what they upload) or a clinic's (for what its
/// staff upload). Documents in the trash count until they are purged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct StorageUsage {
    /// Whose: `"owner"` or `"clinic"`.
    pub payer: String,
    /// The owner's or the clinic's name.
    pub name: String,
    /// Bytes held by documents (the trash included).
    pub used: u64,
    /// Bytes reserved by uploads running now.
    pub reserved: u64,
    /// The quota.
    pub quota: u64,
    /// How many documents (the trash included).
    pub documents: u64,
}

impl StorageUsage {
    /// `12.3 MiB of 2.0 GiB`.
    pub fn label(&self) -> String {
        format!("{} of {}", size_label(self.used), size_label(self.quota))
    }

    /// The share of the quota used, 0 to 100.
    pub fn percent(&self) -> u8 {
        if self.quota == 0 {
            return 100;
        }
        let share = (u128::from(self.used) * 100).div_ceil(u128::from(self.quota));
        u8::try_from(share.min(100)).unwrap_or(100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_round_trip_and_empty_is_none() {
        for category in DocumentCategory::ALL {
            assert_eq!(
                DocumentCategory::parse(category.as_str()).unwrap(),
                Some(category)
            );
        }
        assert_eq!(DocumentCategory::parse(" ").unwrap(), None);
        assert_eq!(DocumentCategory::parse("selfie").unwrap_err().field, "category");
    }

    #[test]
    fn captions_are_one_line_and_bounded() {
        assert_eq!(
            parse_caption("  Blood panel ").unwrap().as_deref(),
            Some("Blood panel")
        );
        assert!(parse_caption(&"x".repeat(501)).is_err());
        assert!(parse_caption("two\nlines").is_err());
    }

    #[test]
    fn storage_usage_reads_as_a_share_of_the_quota() {
        let usage = |used: u64, quota: u64| StorageUsage {
            payer: "owner".to_owned(),
            name: "Olivia".to_owned(),
            used,
            reserved: 0,
            quota,
            documents: 1,
        };
        assert_eq!(usage(3 << 29, 2 << 30).label(), "1.5 GiB of 2.0 GiB");
        assert_eq!(usage(3 << 29, 2 << 30).percent(), 75);
        assert_eq!(usage(1, 2 << 30).percent(), 1, "anything stored shows");
        assert_eq!(usage(0, 2 << 30).percent(), 0);
        assert_eq!(usage(5 << 30, 2 << 30).percent(), 100);
        assert_eq!(usage(0, 0).percent(), 100);
        assert_eq!(size_label(512), "512 bytes");
    }
}
