//! What a file really is, from its first bytes (the `infer` crate), whatever its name or declared type.

/// How many leading bytes the sniffer looks at (DICOM's marker sits at byte 128).
pub const SNIFF_BYTES: usize = 8 * 1024;

/// The types accepted when nothing is configured: PDF, JPEG, PNG, WebP, GIF, HEIC/HEIF, TIFF, DICOM.
pub const DEFAULT_ACCEPTED: &[&str] = &[
    "application/pdf",
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/gif",
    "image/heif",
    "image/tiff",
    "application/dicom",
];

/// The MIME type the bytes start like, if the sniffer knows it.
pub fn sniff(head: &[u8]) -> Option<&'static str> {
    infer::get(head).map(|kind| kind.mime_type())
}

/// A short name people know for `mime`, for messages and the upload form ("PDF", "JPEG").
pub fn label(mime: &str) -> &str {
    match mime {
        "application/pdf" => "PDF",
        "image/jpeg" => "JPEG",
        "image/png" => "PNG",
        "image/webp" => "WebP",
        "image/gif" => "GIF",
        "image/heif" => "HEIC/HEIF",
        "image/tiff" => "TIFF",
        "application/dicom" => "DICOM",
        other => other,
    }
}

/// The file extension that fits `mime`, for names in exports.
pub fn extension(mime: &str) -> &'static str {
    match mime {
        "application/pdf" => "pdf",
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/webp" => "webp",
        "image/gif" => "gif",
        "image/heif" => "heic",
        "image/tiff" => "tif",
        "application/dicom" => "dcm",
        _ => "bin",
    }
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
    }
}
