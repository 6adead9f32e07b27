//! What a file really is, from its first bytes (the `infer` crate), whatever its name or declared type.

use crate::domain::FileType;

/// How many leading bytes the sniffer looks at (DICOM's marker sits at byte 128).
pub const SNIFF_BYTES: usize = 8 * 1024;

/// The types accepted when nothing is configured: PDF, JPEG, PNG, WebP, GIF, HEIC/HEIF, TIFF, DICOM.
pub const DEFAULT_ACCEPTED: &[&str] = &FileType::DEFAULT_ACCEPTED;

/// The MIME type the bytes start like, if the sniffer knows it (whether or not Pawfile does).
pub fn sniff(head: &[u8]) -> Option<&'static str> {
    infer::get(head).map(|kind| kind.mime_type())
}

/// The [`FileType`] the bytes start like, if they are of a type Pawfile knows.
pub fn sniff_type(head: &[u8]) -> Option<FileType> {
    sniff(head).and_then(FileType::from_mime)
}

/// A short name people know for `mime`, for messages and the upload form ("PDF", "JPEG"); `mime`
/// itself for a type Pawfile does not know.
pub fn label(mime: &str) -> &str {
    FileType::label_of(mime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_types_are_recognised_by_their_bytes() {
        let mut dicom = vec![0u8; 128];
        dicom.extend_from_slice(b"DICM");
        let cases: [(&[u8], &str); 6] = [
            (b"%PDF-1.7\n", "application/pdf"),
            (
                &[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, b'J', b'F', b'I', b'F'],
                "image/jpeg",
            ),
            (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "image/png"),
            (b"GIF89a\x01\x00", "image/gif"),
            (
                b"II*\x00\x08\x00\x00\x00\x10\x00\x00\x01\x03\x00\x01\x00",
                "image/tiff",
            ),
            (&dicom, "application/dicom"),
        ];
        for (bytes, mime) in cases {
            assert_eq!(sniff(bytes), Some(mime));
            assert!(DEFAULT_ACCEPTED.contains(&mime));
            assert_eq!(sniff_type(bytes).map(FileType::mime), Some(mime));
        }
    }

    #[test]
    fn disguised_files_are_not_mistaken_for_images() {
        assert_eq!(
            sniff(b"<!DOCTYPE html><script>alert(1)</script>"),
            Some("text/html")
        );
        let svg = sniff(b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>");
        assert!(
            svg.is_none_or(|mime| !DEFAULT_ACCEPTED.contains(&mime)),
            "{svg:?}"
        );
        assert_eq!(sniff(b"just some text"), None);
        assert_eq!(sniff_type(b"<!DOCTYPE html><script>alert(1)</script>"), None);
    }
}
