//! Bounds on the framing of a `multipart/form-data` body, checked as it streams past, before the
//! multipart parser sees it. The parser (multer, under axum's `Multipart`) buffers the preamble and each
//! part's headers until their end with no limit, so one part whose header line never ends would grow the
//! server's memory without bound; here the preamble and each part's headers (all of them together) are
//! cut off at a limit, and so is the number of parts. The framing is read exactly as the parser reads
//! it (a delimiter, optional spaces or tabs, CRLF, then headers up to the first CRLF CRLF after that
//! CRLF), so that no form the parser would buffer looks like content here; and the whole form is
//! capped besides. File bytes pass through untouched and unbuffered: only the bytes of a delimiter that
//! may straddle two chunks are remembered.

use axum::body::Bytes;
use futures::{Stream, StreamExt};
use memchr::memmem::Finder;

/// The most bytes of one part's headers (every header line of the part, together).
pub const PART_HEADERS_MAX: usize = 8 * 1024;
/// The most bytes before the first delimiter.
pub const PREAMBLE_MAX: usize = 8 * 1024;

/// Why a form's framing was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// A part's headers ran past [`PART_HEADERS_MAX`].
    #[error("A part of the upload form has more than {} of headers.", bytesize::ByteSize(PART_HEADERS_MAX as u64))]
    HeadersTooLong,
    /// The bytes before the first part ran past [`PREAMBLE_MAX`].
    #[error("The upload form has more than {} before its first part.", bytesize::ByteSize(PREAMBLE_MAX as u64))]
    PreambleTooLong,
    /// More parts than the form may have.
    #[error("The upload form has more than {0} parts.")]
    TooManyParts(usize),
    /// A delimiter line that does not end in CRLF (after optional spaces or tabs).
    #[error("The upload form is malformed: a part's delimiter line does not end where it should.")]
    BadDelimiterLine,
    /// The whole form ran past its limit (every file at its largest, and the form's overhead).
    #[error("The upload is larger than {}.", bytesize::ByteSize(*.0))]
    TooLarge(u64),
}

/// Finds a pattern in a stream of chunks, remembering only the few bytes of a match that may begin in
/// one chunk and end in the next.
struct Seeker {
    finder: Finder<'static>,
    tail: Vec<u8>,
}

impl Seeker {
    fn new(pattern: Vec<u8>) -> Self {
        Self {
            finder: Finder::new(&pattern).into_owned(),
            tail: Vec::new(),
        }
    }

    fn len(&self) -> usize {
        self.finder.needle().len()
    }

    /// Where in `data` the first match ends (it may have begun in earlier data), if there is one.
    fn find(&mut self, data: &[u8]) -> Option<usize> {
        let len = self.len();
        if !self.tail.is_empty() {
            let mut joined = self.tail.clone();
            joined.extend_from_slice(&data[..data.len().min(len - 1)]);
            if let Some(at) = self.finder.find(&joined) {
                self.tail.clear();
                return Some(at + len - (joined.len() - data.len().min(len - 1)));
            }
        }
        if let Some(at) = self.finder.find(data) {
            self.tail.clear();
            return Some(at + len);
        }
        let keep = len - 1;
        if data.len() >= keep {
            self.tail.clear();
            self.tail.extend_from_slice(&data[data.len() - keep..]);
        } else {
            self.tail.extend_from_slice(data);
            let excess = self.tail.len().saturating_sub(keep);
            self.tail.drain(..excess);
        }
        None
    }

    fn reset(&mut self) {
        self.tail.clear();
    }
}

enum State {
    /// Before the first delimiter: `seen` bytes so far.
    Preamble { seen: usize },
    /// Right after a delimiter: whether it closes the form (`--`) is not known yet; `first` holds the
    /// bytes seen of the two that tell.
    AfterDelimiter { first: Vec<u8> },
    /// The spaces and tabs that may follow a delimiter (`seen` bytes of them so far), then its CRLF, of
    /// which `cr` tells whether the CR has been seen.
    DelimiterLine { seen: usize, cr: bool },
    /// In a part's headers, which begin after the delimiter line's CRLF and end at the first
    /// CRLF CRLF (as the parser reads them: an empty header block is not a CRLF right after the
    /// delimiter line's own): `seen` bytes so far.
    Headers { seen: usize },
    /// In a part's content.
    Content,
    /// After the closing delimiter: whatever comes is ignored by the parser.
    Epilogue,
}

/// The framing of one form, fed chunk by chunk.
pub struct Framing {
    state: State,
    delimiter: Seeker,
    content_end: Seeker,
    headers_end: Seeker,
    parts: usize,
    max_parts: usize,
    total: u64,
    max_total: u64,
}

impl Framing {
    /// The framing of a form with this `boundary`, allowing at most `max_parts` parts and `max_total`
    /// bytes in all.
    pub fn new(boundary: &str, max_parts: usize, max_total: u64) -> Self {
        Self {
            state: State::Preamble { seen: 0 },
            delimiter: Seeker::new(format!("--{boundary}").into_bytes()),
            content_end: Seeker::new(format!("\r\n--{boundary}").into_bytes()),
            headers_end: Seeker::new(b"\r\n\r\n".to_vec()),
            parts: 0,
            max_parts,
            total: 0,
            max_total,
        }
    }

    /// Checks the next chunk of the body.
    pub fn feed(&mut self, data: &[u8]) -> Result<(), FramingError> {
        self.total = self.total.saturating_add(data.len() as u64);
        if self.total > self.max_total {
            return Err(FramingError::TooLarge(self.max_total));
        }
        self.step(data)
    }

    fn step(&mut self, mut data: &[u8]) -> Result<(), FramingError> {
        while !data.is_empty() {
            match &mut self.state {
                State::Preamble { seen } => match self.delimiter.find(data) {
                    Some(end) => {
                        if *seen + end > PREAMBLE_MAX + self.delimiter.len() {
                            return Err(FramingError::PreambleTooLong);
                        }
                        data = &data[end..];
                        self.state = State::AfterDelimiter { first: Vec::new() };
                    }
                    None => {
                        *seen += data.len();
                        if *seen > PREAMBLE_MAX + self.delimiter.len() {
                            return Err(FramingError::PreambleTooLong);
                        }
                        data = &[];
                    }
                },
                State::AfterDelimiter { first } => {
                    let wanted = 2 - first.len();
                    let taken = wanted.min(data.len());
                    first.extend_from_slice(&data[..taken]);
                    if first.len() < 2 {
                        data = &data[taken..];
                        continue;
                    }
                    if first.as_slice() == b"--" {
                        self.state = State::Epilogue;
                        data = &[];
                        continue;
                    }
                    self.parts += 1;
                    if self.parts > self.max_parts {
                        return Err(FramingError::TooManyParts(self.max_parts));
                    }
                    // The two bytes belong to the rest of the delimiter line (usually its CRLF).
                    let first = std::mem::take(first);
                    self.state = State::DelimiterLine { seen: 0, cr: false };
                    self.step(&first)?;
                    data = &data[taken..];
                }
                State::DelimiterLine { seen, cr } => {
                    let byte = data[0];
                    data = &data[1..];
                    *seen += 1;
                    if *seen > PART_HEADERS_MAX {
                        return Err(FramingError::HeadersTooLong);
                    }
                    match (*cr, byte) {
                        (false, b' ' | b'\t') => {}
                        (false, b'\r') => *cr = true,
                        (true, b'\n') => {
                            self.headers_end.reset();
                            self.state = State::Headers { seen: 0 };
                        }
                        _ => return Err(FramingError::BadDelimiterLine),
                    }
                }
                State::Headers { seen } => match self.headers_end.find(data) {
                    Some(end) => {
                        if *seen + end > PART_HEADERS_MAX {
                            return Err(FramingError::HeadersTooLong);
                        }
                        data = &data[end..];
                        self.content_end.reset();
                        self.state = State::Content;
                    }
                    None => {
                        *seen += data.len();
                        if *seen > PART_HEADERS_MAX {
                            return Err(FramingError::HeadersTooLong);
                        }
                        data = &[];
                    }
                },
                State::Content => match self.content_end.find(data) {
                    Some(end) => {
                        data = &data[end..];
                        self.state = State::AfterDelimiter { first: Vec::new() };
                    }
                    None => data = &[],
                },
                State::Epilogue => data = &[],
            }
        }
        Ok(())
    }
}

/// `body`, checked chunk by chunk against the framing limits: the first chunk that breaks one ends the
/// stream with the [`FramingError`] (the parser then fails with it as its source).
pub fn bounded<S, E>(
    body: S,
    boundary: &str,
    max_parts: usize,
    max_total: u64,
) -> impl Stream<Item = Result<Bytes, Box<dyn std::error::Error + Send + Sync>>> + Send + 'static
where
    S: Stream<Item = Result<Bytes, E>> + Send + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut framing = Framing::new(boundary, max_parts, max_total);
    let mut failed: Option<FramingError> = None;
    body.map(move |chunk| {
        if let Some(err) = &failed {
            return Err(Box::new(err.clone()) as Box<dyn std::error::Error + Send + Sync>);
        }
        let chunk = chunk.map_err(Into::into)?;
        if let Err(err) = framing.feed(&chunk) {
            failed = Some(err.clone());
            return Err(Box::new(err) as Box<dyn std::error::Error + Send + Sync>);
        }
        Ok(chunk)
    })
}

/// The framing error behind a multipart parser's error, if that is what ended it.
pub fn framing_error(err: &(dyn std::error::Error + 'static)) -> Option<FramingError> {
    let mut current = Some(err);
    while let Some(err) = current {
        if let Some(framing) = err.downcast_ref::<FramingError>() {
            return Some(framing.clone());
        }
        current = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDARY: &str = "XyZ";

    fn form(parts: &[(&str, &[u8])]) -> Vec<u8> {
        let mut body = b"preamble\r\n".to_vec();
        for (headers, content) in parts {
            body.extend_from_slice(format!("--{BOUNDARY}\r\n{headers}\r\n\r\n").as_bytes());
            body.extend_from_slice(content);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{BOUNDARY}--\r\nepilogue").as_bytes());
        body
    }

    /// Feeds `body` in chunks of `size` bytes.
    fn feed_in_chunks(body: &[u8], size: usize, max_parts: usize) -> Result<(), FramingError> {
        let mut framing = Framing::new(BOUNDARY, max_parts, u64::MAX);
        for chunk in body.chunks(size) {
            framing.feed(chunk)?;
        }
        Ok(())
    }

    #[test]
    fn an_ordinary_form_passes_whatever_the_chunk_sizes() {
        let content: Vec<u8> = (0..50_000u32).map(|n| (n % 251) as u8).collect();
        let body = form(&[
            (
                "Content-Disposition: form-data; name=\"caption\"",
                b"Rex at the vet",
            ),
            (
                "Content-Disposition: form-data; name=\"file\"; filename=\"a.pdf\"\r\nContent-Type: application/pdf",
                &content,
            ),
        ]);
        for size in [1, 2, 3, 7, 64, 4096, body.len()] {
            assert_eq!(feed_in_chunks(&body, size, 4), Ok(()), "chunks of {size}");
        }
    }

    #[test]
    fn content_that_looks_like_headers_or_half_a_delimiter_is_not_counted() {
        let mut content = Vec::new();
        for _ in 0..10_000 {
            content.extend_from_slice(b"X-Header: value\r\n--Xy\r\n");
        }
        let body = form(&[(
            "Content-Disposition: form-data; name=\"file\"; filename=\"a\"",
            &content,
        )]);
        assert_eq!(feed_in_chunks(&body, 13, 2), Ok(()));
    }

    #[test]
    fn a_part_whose_headers_never_end_is_refused_at_the_limit() {
        let mut body = format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"")
            .into_bytes();
        body.extend(std::iter::repeat_n(b'a', PART_HEADERS_MAX));
        assert_eq!(feed_in_chunks(&body, 1000, 20), Err(FramingError::HeadersTooLong));
        // Just under the limit is fine.
        let name = "n".repeat(PART_HEADERS_MAX - 100);
        let body = form(&[(&format!("Content-Disposition: form-data; name=\"{name}\""), b"x")]);
        assert_eq!(feed_in_chunks(&body, 1000, 20), Ok(()));
    }

    #[test]
    fn many_header_lines_count_together() {
        let headers: Vec<String> = (0..1000).map(|n| format!("X-Filler-{n}: yes")).collect();
        let body = form(&[(&headers.join("\r\n"), b"x")]);
        assert_eq!(feed_in_chunks(&body, 512, 20), Err(FramingError::HeadersTooLong));
    }

    #[test]
    fn a_long_preamble_is_refused() {
        let mut body = vec![b'p'; PREAMBLE_MAX * 2];
        body.extend_from_slice(&form(&[("Content-Disposition: form-data; name=\"a\"", b"x")]));
        assert_eq!(
            feed_in_chunks(&body, 4096, 20),
            Err(FramingError::PreambleTooLong)
        );
    }

    #[test]
    fn the_number_of_parts_is_bounded() {
        let parts: Vec<(&str, &[u8])> = (0..5)
            .map(|_| {
                (
                    "Content-Disposition: form-data; name=\"file\"; filename=\"a\"",
                    &b"x"[..],
                )
            })
            .collect();
        assert_eq!(feed_in_chunks(&form(&parts), 7, 5), Ok(()));
        assert_eq!(
            feed_in_chunks(&form(&parts), 7, 4),
            Err(FramingError::TooManyParts(4))
        );
    }

    #[test]
    fn the_epilogue_is_not_counted() {
        let mut body = form(&[("Content-Disposition: form-data; name=\"a\"", b"x")]);
        body.extend(std::iter::repeat_n(b'e', PART_HEADERS_MAX * 4));
        assert_eq!(feed_in_chunks(&body, 100, 2), Ok(()));
    }

    #[test]
    fn a_part_with_an_empty_header_block_cannot_smuggle_unbounded_headers() {
        // The parser reads headers from after the delimiter line's CRLF up to the next CRLF CRLF: for
        // `--B CRLF CRLF content…` that is the content, all of it, buffered.
        for line in ["\r\n\r\n", "  \t\r\n\r\n"] {
            let mut body = format!("--{BOUNDARY}{line}").into_bytes();
            body.extend(std::iter::repeat_n(b'A', PART_HEADERS_MAX * 4));
            assert_eq!(
                feed_in_chunks(&body, 4096, 20),
                Err(FramingError::HeadersTooLong),
                "{line:?}"
            );
        }
    }

    #[test]
    fn spaces_after_a_delimiter_are_allowed_and_anything_else_is_refused() {
        let body = format!(
            "--{BOUNDARY} \t \r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx\r\n--{BOUNDARY}--\r\n"
        );
        assert_eq!(feed_in_chunks(body.as_bytes(), 1, 2), Ok(()));
        let body = format!("--{BOUNDARY}X\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx");
        assert_eq!(
            feed_in_chunks(body.as_bytes(), 5, 2),
            Err(FramingError::BadDelimiterLine)
        );
        let mut body = format!("--{BOUNDARY}").into_bytes();
        body.extend(std::iter::repeat_n(b' ', PART_HEADERS_MAX + 1));
        assert_eq!(feed_in_chunks(&body, 100, 2), Err(FramingError::HeadersTooLong));
    }

    #[test]
    fn the_whole_form_is_capped() {
        let content = vec![b'x'; 10_000];
        let body = form(&[(
            "Content-Disposition: form-data; name=\"file\"; filename=\"a\"",
            &content,
        )]);
        let mut framing = Framing::new(BOUNDARY, 2, body.len() as u64);
        assert_eq!(framing.feed(&body), Ok(()));
        let mut framing = Framing::new(BOUNDARY, 2, body.len() as u64 - 1);
        let result = body.chunks(1000).try_for_each(|chunk| framing.feed(chunk));
        assert_eq!(result, Err(FramingError::TooLarge(body.len() as u64 - 1)));
    }
}
