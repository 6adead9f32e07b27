//! What a download answers with, decided without I/O: `Content-Disposition` (RFC 6266 with an ASCII
//! fallback and `filename*`), byte ranges (one range; 206 or 416), ETags, and which types may be shown
//! inline.

use crate::domain::FileType;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Characters kept as they are in `filename*` (RFC 5987 `attr-char`); everything else is %-encoded.
const ATTR_CHAR_COMPLEMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// `filename` reduced to printable ASCII without quotes, backslashes, semicolons or percent signs, for
/// old clients that ignore `filename*`.
pub fn ascii_fallback(filename: &str) -> String {
    let fallback: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && !matches!(c, '"' | '\\' | ';' | '%') || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let trimmed = fallback.trim();
    if trimmed.is_empty() {
        "document".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// The `Content-Disposition` value for serving `filename` as an attachment or inline.
pub fn content_disposition(filename: &str, inline: bool) -> String {
    let disposition = if inline { "inline" } else { "attachment" };
    format!(
        "{disposition}; filename=\"{}\"; filename*=UTF-8''{}",
        ascii_fallback(filename),
        utf8_percent_encode(filename, ATTR_CHAR_COMPLEMENT)
    )
}

/// What to send for a request's `Range` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// The whole object (no `Range`, or several ranges, which we answer in full as RFC 9110 allows).
    Full,
    /// Bytes `start..=end`.
    Partial {
        /// First byte.
        start: u64,
        /// Last byte, inclusive.
        end: u64,
    },
    /// Nothing of the object matches: 416.
    Unsatisfiable,
}

/// Decides the range to serve of an object of `size` bytes.
pub fn byte_range(header: Option<&str>, size: u64) -> ByteRange {
    let Some(header) = header else {
        return ByteRange::Full;
    };
    let Ok(parsed) = http_range_header::parse_range_header(header) else {
        // A Range that does not parse is ignored (RFC 9110 14.2 allows ignoring it or 416; ignoring it
        // gives a client with a broken header the file rather than an error).
        return ByteRange::Full;
    };
    match parsed.validate(size).as_deref() {
        Ok([range]) if range.start() <= range.end() => ByteRange::Partial {
            start: *range.start(),
            end: *range.end(),
        },
        Ok([_, _, ..]) => ByteRange::Full,
        _ => ByteRange::Unsatisfiable,
    }
}

/// The strong ETag of a document: its SHA-256, which never changes (documents are immutable).
pub fn etag(sha256: &[u8]) -> String {
    let hex: String = sha256.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("\"sha256-{hex}\"")
}

/// Whether an `If-None-Match` header matches `etag` (so the answer is 304).
pub fn none_match(header: Option<&str>, etag: &str) -> bool {
    header.is_some_and(|value| {
        value
            .split(',')
            .map(str::trim)
            .any(|tag| tag == "*" || tag == etag || tag.strip_prefix("W/") == Some(etag))
    })
}

/// How a document may be shown in the browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preview {
    /// An image: inline, under a sandboxing CSP.
    Image,
    /// A PDF: inline for Chromium's viewer, which refuses to run under a `sandbox` CSP.
    Pdf,
    /// Anything else is only ever downloaded.
    AttachmentOnly,
}

/// Which preview `content_type` allows: only types [`FileType::inline_safe`] says may be shown inline.
pub fn preview(content_type: &str) -> Preview {
    match FileType::from_mime(content_type) {
        Some(file_type) if file_type.inline_safe() && file_type.is_image() => Preview::Image,
        Some(FileType::Pdf) => Preview::Pdf,
        _ => Preview::AttachmentOnly,
    }
}

/// The Content-Security-Policy for an inline preview.
pub fn preview_csp(preview: Preview) -> &'static str {
    match preview {
        Preview::Image => "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'",
        // No `sandbox`: Chromium's PDF viewer will not open under it. Nothing else may load or run.
        Preview::Pdf => {
            "default-src 'none'; object-src 'self'; plugin-types application/pdf; frame-ancestors 'self'"
        }
        Preview::AttachmentOnly => "sandbox; default-src 'none'",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_make_one_quoted_parameter() {
        let value = content_disposition("x\"; filename=evil.html;\r\n%0d 🐶.pdf", false);
        assert!(value.starts_with("attachment; filename=\""));
        let fallback = value
            .split("filename=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert_eq!(fallback, "x__ filename=evil.html____0d _.pdf");
        assert!(!value.contains('\r') && !value.contains('\n'));
        assert!(
            value.ends_with(
                "filename*=UTF-8''x%22%3B%20filename%3Devil.html%3B%0D%0A%250d%20%F0%9F%90%B6.pdf"
            )
        );
        assert_eq!(value.matches(';').count(), 2, "exactly three parts: {value}");
    }

    #[test]
    fn plain_names_stay_readable() {
        assert_eq!(
            content_disposition("Lab result 2025-03.pdf", true),
            "inline; filename=\"Lab result 2025-03.pdf\"; filename*=UTF-8''Lab%20result%202025-03.pdf"
        );
        assert_eq!(ascii_fallback("📄"), "_");
        assert_eq!(ascii_fallback("   "), "document");
    }

    #[test]
    fn single_ranges_are_served_partially() {
        assert_eq!(byte_range(None, 100), ByteRange::Full);
        assert_eq!(
            byte_range(Some("bytes=0-9"), 100),
            ByteRange::Partial { start: 0, end: 9 }
        );
        assert_eq!(
            byte_range(Some("bytes=90-"), 100),
            ByteRange::Partial { start: 90, end: 99 }
        );
        assert_eq!(
            byte_range(Some("bytes=-10"), 100),
            ByteRange::Partial { start: 90, end: 99 }
        );
        assert_eq!(
            byte_range(Some("bytes=50-500"), 100),
            ByteRange::Partial { start: 50, end: 99 }
        );
    }

    #[test]
    fn ranges_beyond_the_end_are_unsatisfiable() {
        assert_eq!(byte_range(Some("bytes=100-"), 100), ByteRange::Unsatisfiable);
        assert_eq!(byte_range(Some("bytes=200-300"), 100), ByteRange::Unsatisfiable);
    }

    #[test]
    fn a_range_that_does_not_parse_is_ignored() {
        for malformed in ["bytes=nonsense", "bytes=", "bytes=--1", "bytes=1-2-3", "bytes"] {
            assert_eq!(byte_range(Some(malformed), 100), ByteRange::Full, "{malformed}");
        }
    }

    #[test]
    fn several_ranges_or_other_units_get_the_whole_object() {
        assert_eq!(byte_range(Some("bytes=0-1, 5-6"), 100), ByteRange::Full);
        assert_eq!(byte_range(Some("items=0-1"), 100), ByteRange::Full);
    }

    #[test]
    fn etags_match_if_none_match() {
        let tag = etag(&[0xab; 32]);
        assert!(tag.starts_with("\"sha256-abab"));
        assert!(none_match(Some(&tag), &tag));
        assert!(none_match(Some(&format!("\"other\", W/{tag}")), &tag));
        assert!(none_match(Some("*"), &tag));
        assert!(!none_match(Some("\"other\""), &tag));
        assert!(!none_match(None, &tag));
    }

    #[test]
    fn only_safe_types_preview() {
        assert_eq!(preview("image/png"), Preview::Image);
        assert_eq!(preview("application/pdf"), Preview::Pdf);
        assert_eq!(preview("image/tiff"), Preview::AttachmentOnly);
        assert_eq!(preview("application/dicom"), Preview::AttachmentOnly);
        assert_eq!(preview("image/heif"), Preview::AttachmentOnly);
        assert_eq!(preview("text/html"), Preview::AttachmentOnly);
        for file_type in FileType::ALL {
            assert_eq!(
                preview(file_type.mime()) != Preview::AttachmentOnly,
                file_type.inline_safe(),
                "{file_type:?}"
            );
        }
        assert!(preview_csp(Preview::Image).starts_with("sandbox"));
        assert!(!preview_csp(Preview::Pdf).contains("sandbox"));
    }
}
