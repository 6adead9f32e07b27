//! The document types Pawfile knows, and every fact about each in one place: the MIME type stored in
//! `documents.content_type`, the words people read, the badge a list shows, the file extension, and
//! whether a type may be shown inline or gets a thumbnail. Sniffing the bytes stays on the server
//! (`documents::sniff`); this compiles to wasm.

use std::fmt;

/// A document type Pawfile knows, as sniffed from a file's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileType {
    /// PDF (`application/pdf`).
    Pdf,
    /// JPEG (`image/jpeg`).
    Jpeg,
    /// PNG (`image/png`).
    Png,
    /// WebP (`image/webp`).
    WebP,
    /// GIF (`image/gif`).
    Gif,
    /// HEIC or HEIF (`image/heif`).
    Heif,
    /// TIFF (`image/tiff`).
    Tiff,
    /// DICOM (`application/dicom`).
    Dicom,
}

impl FileType {
    /// Every known type, in the order of the default accepted list.
    pub const ALL: [FileType; 8] = [
        FileType::Pdf,
        FileType::Jpeg,
        FileType::Png,
        FileType::WebP,
        FileType::Gif,
        FileType::Heif,
        FileType::Tiff,
        FileType::Dicom,
    ];

    /// The MIME types accepted when nothing is configured: every known type.
    pub const DEFAULT_ACCEPTED: [&'static str; 8] = {
        let mut mimes = [""; 8];
        let mut index = 0;
        while index < Self::ALL.len() {
            mimes[index] = Self::ALL[index].mime();
            index += 1;
        }
        mimes
    };

    /// The badge a document list shows for a type Pawfile does not know.
    pub const UNKNOWN_BADGE: &'static str = "FILE";

    /// The type a stored (or sniffed) MIME type names; `None` for any other.
    pub fn from_mime(mime: &str) -> Option<FileType> {
        Self::ALL.into_iter().find(|file_type| file_type.mime() == mime)
    }

    /// The MIME type, exactly as stored in `documents.content_type` and as the sniffer names it.
    pub const fn mime(self) -> &'static str {
        match self {
            FileType::Pdf => "application/pdf",
            FileType::Jpeg => "image/jpeg",
            FileType::Png => "image/png",
            FileType::WebP => "image/webp",
            FileType::Gif => "image/gif",
            FileType::Heif => "image/heif",
            FileType::Tiff => "image/tiff",
            FileType::Dicom => "application/dicom",
        }
    }

    /// A short name people know, for messages and the upload form ("PDF", "HEIC/HEIF").
    pub const fn label(self) -> &'static str {
        match self {
            FileType::Pdf => "PDF",
            FileType::Jpeg => "JPEG",
            FileType::Png => "PNG",
            FileType::WebP => "WebP",
            FileType::Gif => "GIF",
            FileType::Heif => "HEIC/HEIF",
            FileType::Tiff => "TIFF",
            FileType::Dicom => "DICOM",
        }
    }

    /// The label for `mime`: the type's [`label`](Self::label), or the MIME type itself when unknown.
    pub fn label_of(mime: &str) -> &str {
        match Self::from_mime(mime) {
            Some(file_type) => file_type.label(),
            None => mime,
        }
    }

    /// The badge a document list shows in place of a thumbnail and in its details ("HEIC").
    pub const fn badge(self) -> &'static str {
        match self {
            FileType::Heif => "HEIC",
            other => other.label(),
        }
    }

    /// The badge for `mime`, or [`UNKNOWN_BADGE`](Self::UNKNOWN_BADGE).
    pub fn badge_of(mime: &str) -> &'static str {
        Self::from_mime(mime).map_or(Self::UNKNOWN_BADGE, FileType::badge)
    }

    /// The usual file extension, without the dot.
    pub const fn extension(self) -> &'static str {
        match self {
            FileType::Pdf => "pdf",
            FileType::Jpeg => "jpg",
            FileType::Png => "png",
            FileType::WebP => "webp",
            FileType::Gif => "gif",
            FileType::Heif => "heic",
            FileType::Tiff => "tif",
            FileType::Dicom => "dcm",
        }
    }

    /// Whether it is a picture format (an `image/*` type).
    pub const fn is_image(self) -> bool {
        matches!(
            self,
            FileType::Jpeg | FileType::Png | FileType::WebP | FileType::Gif | FileType::Heif | FileType::Tiff
        )
    }

    /// Whether browsers may be sent it to show inline (a preview): the images every browser renders,
    /// and PDF. Everything else is only ever downloaded.
    pub const fn inline_safe(self) -> bool {
        matches!(
            self,
            FileType::Pdf | FileType::Jpeg | FileType::Png | FileType::WebP | FileType::Gif
        )
    }

    /// Whether Pawfile makes thumbnails for it (HEIC needs libheif, which is not built in).
    pub const fn thumbnailable(self) -> bool {
        matches!(
            self,
            FileType::Jpeg | FileType::Png | FileType::WebP | FileType::Gif | FileType::Tiff
        )
    }
}

impl fmt::Display for FileType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_round_trips_through_its_mime() {
        for file_type in FileType::ALL {
            assert_eq!(FileType::from_mime(file_type.mime()), Some(file_type));
        }
        assert_eq!(FileType::DEFAULT_ACCEPTED.len(), FileType::ALL.len());
        for (file_type, mime) in FileType::ALL.into_iter().zip(FileType::DEFAULT_ACCEPTED) {
            assert_eq!(file_type.mime(), mime);
        }
    }

    #[test]
    fn unknown_or_differently_spelled_mimes_are_no_type() {
        for mime in [
            "",
            "text/html",
            "image/svg+xml",
            "image/heic",
            "IMAGE/PNG",
            "image/png ",
            "image/jpg",
        ] {
            assert_eq!(FileType::from_mime(mime), None, "{mime}");
        }
        assert_eq!(FileType::label_of("text/html"), "text/html");
        assert_eq!(FileType::badge_of("text/html"), "FILE");
    }

    #[test]
    fn the_stored_mimes_are_the_ones_accepted_by_default() {
        assert_eq!(
            FileType::DEFAULT_ACCEPTED,
            [
                "application/pdf",
                "image/jpeg",
                "image/png",
                "image/webp",
                "image/gif",
                "image/heif",
                "image/tiff",
                "application/dicom",
            ]
        );
    }

    #[test]
    fn facts_per_type() {
        // (type, label, badge, extension, is_image, inline_safe, thumbnailable)
        let facts = [
            (FileType::Pdf, "PDF", "PDF", "pdf", false, true, false),
            (FileType::Jpeg, "JPEG", "JPEG", "jpg", true, true, true),
            (FileType::Png, "PNG", "PNG", "png", true, true, true),
            (FileType::WebP, "WebP", "WebP", "webp", true, true, true),
            (FileType::Gif, "GIF", "GIF", "gif", true, true, true),
            (FileType::Heif, "HEIC/HEIF", "HEIC", "heic", true, false, false),
            (FileType::Tiff, "TIFF", "TIFF", "tif", true, false, true),
            (FileType::Dicom, "DICOM", "DICOM", "dcm", false, false, false),
        ];
        assert_eq!(facts.len(), FileType::ALL.len());
        for (file_type, label, badge, extension, image, inline, thumbnail) in facts {
            assert_eq!(file_type.label(), label);
            assert_eq!(file_type.to_string(), label);
            assert_eq!(FileType::label_of(file_type.mime()), label);
            assert_eq!(file_type.badge(), badge);
            assert_eq!(FileType::badge_of(file_type.mime()), badge);
            assert_eq!(file_type.extension(), extension);
            assert_eq!(file_type.is_image(), image, "{file_type:?}");
            assert_eq!(file_type.inline_safe(), inline, "{file_type:?}");
            assert_eq!(file_type.thumbnailable(), thumbnail, "{file_type:?}");
        }
    }
}
