//! Where a photo was taken, removed as it is uploaded. A phone writes its GPS position into a photo's
//! EXIF (and often into XMP and the maker's own notes); stored byte for byte, the photo of a pet would
//! carry its owner's home to the clinic, into exports and backups.
//!
//! JPEG, PNG and WebP photos pass through a filter on their way to the store, which removes the GPS
//! block of the EXIF (the IFD and its pointer), the maker notes (which repeat positions on some
//! phones) and every GPS property of the XMP, without decoding or re-encoding the picture: everything
//! else, the Orientation tag and the rest of the EXIF included, stays byte for byte where it was. The
//! EXIF is edited in place, so no offset inside it moves (maker notes are full of absolute offsets) and
//! the file keeps its length.
//!
//! That length matters for WebP: its RIFF header, the first bytes of the file, holds the file's size,
//! and its EXIF chunk sits after the image data. Rewriting the chunk to the same length means nothing
//! before it has to be held back. Only a metadata block is ever buffered (a JPEG APP1 segment of at most
//! 64 KiB; a PNG or WebP metadata chunk up to [`METADATA_MAX`]); image data streams through. A metadata
//! block too large to hold, or whose EXIF does not parse, is dropped (JPEG, PNG) or zeroed (WebP)
//! whole: privacy before the rest of the metadata.
//!
//! A JPEG may carry more images after its end (a phone's large preview, an HDR gain map), each with EXIF
//! of its own: each is filtered like the first. Whatever else follows the last image (the video of a
//! motion photo) is stored as it came.
//!
//! HEIC/HEIF photos are stored as they came: their EXIF is an item the file's index points to, often
//! after the image data, and no well-kept Rust library rewrites it without re-encoding.

#[cfg(test)]
mod tests;
mod tiff;
mod xmp;

use bytes::{Bytes, BytesMut};
use tiff::strip_tiff;
use xmp::blank_xmp_gps;

/// The most bytes of one PNG or WebP metadata chunk held to be edited; larger ones are removed whole.
pub const METADATA_MAX: usize = 16 << 20;

/// Removes location metadata from a JPEG, PNG or WebP as it streams. Feed it every chunk in order with
/// [`LocationFilter::push`], then [`LocationFilter::finish`]; store what they return, in order.
#[derive(Debug)]
pub struct LocationFilter {
    format: Format,
    state: State,
    buf: BytesMut,
    removed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Jpeg,
    Png,
    Webp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    JpegStart,
    JpegMarker,
    JpegSegmentHeader,
    JpegApp1,
    /// The two bytes after an image's end: another image (a phone's large preview, a gain map) or not.
    JpegAfterImage,
    PngSignature,
    PngChunkHeader,
    PngMetadata,
    WebpHeader,
    WebpChunkHeader,
    WebpMetadata,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Collect `need` bytes into the buffer, then act on them as `step` says.
    Fill { need: usize, step: Step },
    /// Pass `remaining` bytes through, then read a header of the format's next unit.
    Pass { remaining: u64 },
    /// Swallow `remaining` bytes (a metadata block removed whole).
    Skip { remaining: u64 },
    /// Write `remaining` zero bytes for as many read (a WebP metadata chunk too large to edit).
    Zero { remaining: u64 },
    /// Pass a JPEG start-of-scan header's `remaining` bytes through, then its image data.
    PassScanHeader { remaining: u64 },
    /// Pass JPEG image data through up to the image's end (`FF D9`; `after_ff`: the last byte passed
    /// was `FF`). Image data holds no other `FF D9`: an `FF` in it is followed by `00` or a marker.
    Scan { after_ff: bool },
    /// Pass everything else through.
    Rest,
}

impl LocationFilter {
    /// A filter for files of `mime`, if it is a type the filter edits.
    pub fn for_type(mime: &str) -> Option<Self> {
        let (format, step, need) = match mime {
            "image/jpeg" => (Format::Jpeg, Step::JpegStart, 2),
            "image/png" => (Format::Png, Step::PngSignature, 8),
            "image/webp" => (Format::Webp, Step::WebpHeader, 12),
            _ => return None,
        };
        Some(Self {
            format,
            state: State::Fill { need, step },
            buf: BytesMut::new(),
            removed: false,
        })
    }

    /// Whether anything was removed so far.
    pub fn removed(&self) -> bool {
        self.removed
    }

    /// The next chunk of the file; returns what is ready to store.
    pub fn push(&mut self, mut input: Bytes) -> Vec<Bytes> {
        let mut out = Vec::new();
        while !input.is_empty() {
            match self.state {
                State::Rest => {
                    out.push(std::mem::take(&mut input));
                }
                State::Pass { remaining } => {
                    let n = take_len(remaining, input.len());
                    out.push(input.split_to(n));
                    self.after_block(remaining - n as u64);
                }
                State::Skip { remaining } => {
                    let n = take_len(remaining, input.len());
                    let _ = input.split_to(n);
                    self.after_block(remaining - n as u64);
                }
                State::Zero { remaining } => {
                    let n = take_len(remaining, input.len());
                    let _ = input.split_to(n);
                    out.push(Bytes::from(vec![0u8; n]));
                    self.after_block(remaining - n as u64);
                }
                State::PassScanHeader { remaining } => {
                    let n = take_len(remaining, input.len());
                    out.push(input.split_to(n));
                    self.after_block(remaining - n as u64);
                }
                State::Scan { after_ff } => {
                    let end = if after_ff && input[0] == 0xD9 {
                        Some(1)
                    } else {
                        memchr::memmem::find(&input, &[0xFF, 0xD9]).map(|at| at + 2)
                    };
                    match end {
                        Some(end) => {
                            out.push(input.split_to(end));
                            self.state = State::Fill {
                                need: 2,
                                step: Step::JpegAfterImage,
                            };
                        }
                        None => {
                            let after_ff = input.last() == Some(&0xFF);
                            out.push(std::mem::take(&mut input));
                            self.state = State::Scan { after_ff };
                        }
                    }
                }
                State::Fill { need, step } => {
                    let n = (need - self.buf.len()).min(input.len());
                    self.buf.extend_from_slice(&input.split_to(n));
                    if self.buf.len() == need {
                        let filled = self.buf.split().freeze();
                        self.on_filled(step, filled, &mut out);
                    }
                }
            }
        }
        out
    }

    /// The end of the file: whatever is still held (a truncated file ends as it came).
    pub fn finish(mut self) -> Vec<Bytes> {
        if self.buf.is_empty() {
            Vec::new()
        } else {
            vec![self.buf.split().freeze()]
        }
    }

    /// A block of `remaining` bytes is still going; when it is done, read the next unit's header.
    fn after_block(&mut self, remaining: u64) {
        self.state = match (remaining, self.state) {
            (0, State::PassScanHeader { .. }) => State::Scan { after_ff: false },
            (0, _) => self.next_header(),
            (remaining, State::PassScanHeader { .. }) => State::PassScanHeader { remaining },
            (remaining, State::Pass { .. }) => State::Pass { remaining },
            (remaining, State::Skip { .. }) => State::Skip { remaining },
            (remaining, State::Zero { .. }) => State::Zero { remaining },
            (_, state) => state,
        };
    }

    fn next_header(&self) -> State {
        match self.format {
            Format::Jpeg => State::Fill {
                need: 2,
                step: Step::JpegMarker,
            },
            Format::Png => State::Fill {
                need: 8,
                step: Step::PngChunkHeader,
            },
            Format::Webp => State::Fill {
                need: 8,
                step: Step::WebpChunkHeader,
            },
        }
    }

    fn on_filled(&mut self, step: Step, filled: Bytes, out: &mut Vec<Bytes>) {
        match step {
            Step::JpegStart => {
                let is_jpeg = filled[..] == [0xFF, 0xD8];
                out.push(filled);
                self.state = if is_jpeg { self.next_header() } else { State::Rest };
            }
            Step::JpegMarker => self.jpeg_marker(filled, out),
            Step::JpegAfterImage => {
                // Another image follows (each with its own EXIF, and its own GPS): filtered too.
                // Anything else (a motion photo's video) is passed on as it came.
                let another = filled[..] == [0xFF, 0xD8];
                out.push(filled);
                self.state = if another { self.next_header() } else { State::Rest };
            }
            Step::JpegSegmentHeader => {
                let marker = filled[1];
                let length = usize::from(u16::from_be_bytes([filled[2], filled[3]]));
                if length < 2 {
                    out.push(filled);
                    self.state = State::Rest;
                } else if marker == 0xE1 {
                    // APP1: EXIF or XMP, at most 64 KiB; held whole and edited.
                    self.buf.extend_from_slice(&filled);
                    self.state = State::Fill {
                        need: 4 + length - 2,
                        step: Step::JpegApp1,
                    };
                } else if marker == 0xDA {
                    // Start of scan: its header, then image data up to the image's end.
                    out.push(filled);
                    self.state = State::PassScanHeader {
                        remaining: (length - 2) as u64,
                    };
                } else {
                    out.push(filled);
                    self.state = State::Pass {
                        remaining: (length - 2) as u64,
                    };
                }
            }
            Step::JpegApp1 => {
                let mut segment = BytesMut::from(&filled[..]);
                match edit_app1(&mut segment[4..]) {
                    Edit::Unchanged => out.push(filled),
                    Edit::Edited => {
                        self.removed = true;
                        out.push(segment.freeze());
                    }
                    Edit::Drop => self.removed = true,
                }
                self.state = self.next_header();
            }
            Step::PngSignature => {
                let is_png = filled[..] == *b"\x89PNG\r\n\x1a\n";
                out.push(filled);
                self.state = if is_png { self.next_header() } else { State::Rest };
            }
            Step::PngChunkHeader => {
                let length = u32::from_be_bytes([filled[0], filled[1], filled[2], filled[3]]) as usize;
                let kind = [filled[4], filled[5], filled[6], filled[7]];
                let with_crc = length as u64 + 4;
                if matches!(&kind, b"eXIf" | b"iTXt" | b"tEXt" | b"zTXt") {
                    if length <= METADATA_MAX {
                        self.buf.extend_from_slice(&filled);
                        self.state = State::Fill {
                            need: 8 + length + 4,
                            step: Step::PngMetadata,
                        };
                    } else if &kind == b"eXIf" {
                        self.removed = true;
                        self.state = State::Skip { remaining: with_crc };
                    } else {
                        out.push(filled);
                        self.state = State::Pass { remaining: with_crc };
                    }
                } else if &kind == b"IEND" {
                    out.push(filled);
                    self.state = State::Rest;
                } else {
                    out.push(filled);
                    self.state = State::Pass { remaining: with_crc };
                }
            }
            Step::PngMetadata => {
                match edit_png_chunk(&filled) {
                    PngEdit::Unchanged => out.push(filled),
                    PngEdit::Replaced(chunk) => {
                        self.removed = true;
                        out.push(chunk);
                    }
                    PngEdit::Drop => self.removed = true,
                }
                self.state = self.next_header();
            }
            Step::WebpHeader => {
                let is_webp = &filled[..4] == b"RIFF" && &filled[8..12] == b"WEBP";
                out.push(filled);
                self.state = if is_webp { self.next_header() } else { State::Rest };
            }
            Step::WebpChunkHeader => {
                let kind = [filled[0], filled[1], filled[2], filled[3]];
                let size = u32::from_le_bytes([filled[4], filled[5], filled[6], filled[7]]) as usize;
                // Chunks are padded to an even size.
                let padded = size + (size & 1);
                if matches!(&kind, b"EXIF" | b"XMP ") {
                    if padded <= METADATA_MAX {
                        self.buf.extend_from_slice(&filled);
                        self.state = State::Fill {
                            need: 8 + padded,
                            step: Step::WebpMetadata,
                        };
                    } else {
                        self.removed = true;
                        out.push(filled);
                        self.state = State::Zero {
                            remaining: padded as u64,
                        };
                    }
                } else {
                    out.push(filled);
                    self.state = State::Pass {
                        remaining: padded as u64,
                    };
                }
            }
            Step::WebpMetadata => {
                let mut chunk = BytesMut::from(&filled[..]);
                let (header, payload) = chunk.split_at_mut(8);
                let edit = if &header[..4] == b"EXIF" {
                    let tiff = payload.strip_prefix(b"Exif\0\0").map_or(0, |_| 6);
                    match strip_tiff(&mut payload[tiff..]) {
                        Ok(true) => Edit::Edited,
                        Ok(false) => Edit::Unchanged,
                        Err(()) => Edit::Drop,
                    }
                } else if blank_xmp_gps(payload) {
                    Edit::Edited
                } else {
                    Edit::Unchanged
                };
                match edit {
                    Edit::Unchanged => out.push(filled),
                    Edit::Edited => {
                        self.removed = true;
                        out.push(chunk.freeze());
                    }
                    // The file keeps its length: the chunk stays, its content zeroed.
                    Edit::Drop => {
                        self.removed = true;
                        payload.fill(0);
                        out.push(chunk.freeze());
                    }
                }
                self.state = self.next_header();
            }
        }
    }

    fn jpeg_marker(&mut self, filled: Bytes, out: &mut Vec<Bytes>) {
        if filled[0] != 0xFF {
            // Not a marker where one belongs: the rest is passed on as it is.
            out.push(filled);
            self.state = State::Rest;
            return;
        }
        match filled[1] {
            // A fill byte: the marker follows.
            0xFF => {
                out.push(filled.slice(..1));
                self.buf.extend_from_slice(&[0xFF]);
                self.state = State::Fill {
                    need: 2,
                    step: Step::JpegMarker,
                };
            }
            // Markers without a length.
            0x01 | 0xD0..=0xD8 => {
                out.push(filled);
                self.state = self.next_header();
            }
            // End of image (with no scan): what follows may be another image.
            0xD9 => {
                out.push(filled);
                self.state = State::Fill {
                    need: 2,
                    step: Step::JpegAfterImage,
                };
            }
            _ => {
                self.buf.extend_from_slice(&filled);
                self.state = State::Fill {
                    need: 4,
                    step: Step::JpegSegmentHeader,
                };
            }
        }
    }
}

fn take_len(remaining: u64, available: usize) -> usize {
    usize::try_from(remaining).map_or(available, |remaining| remaining.min(available))
}

/// What editing a metadata block did.
enum Edit {
    Unchanged,
    Edited,
    /// It cannot be read: remove it whole.
    Drop,
}

const JPEG_EXIF: &[u8] = b"Exif\0\0";
const JPEG_XMP: &[u8] = b"http://ns.adobe.com/xap/1.0/\0";
const JPEG_XMP_EXTENDED: &[u8] = b"http://ns.adobe.com/xmp/extension/\0";

/// Edits a JPEG APP1 segment's payload in place.
fn edit_app1(payload: &mut [u8]) -> Edit {
    if let Some(tiff) = payload.strip_prefix(JPEG_EXIF).map(|rest| rest.len()) {
        let start = payload.len() - tiff;
        return match strip_tiff(&mut payload[start..]) {
            Ok(true) => Edit::Edited,
            Ok(false) => Edit::Unchanged,
            Err(()) => Edit::Drop,
        };
    }
    if payload.starts_with(JPEG_XMP) || payload.starts_with(JPEG_XMP_EXTENDED) {
        return if blank_xmp_gps(payload) {
            Edit::Edited
        } else {
            Edit::Unchanged
        };
    }
    Edit::Unchanged
}

enum PngEdit {
    Unchanged,
    Replaced(Bytes),
    Drop,
}

/// Edits a whole PNG metadata chunk (length, type, data, CRC).
fn edit_png_chunk(chunk: &[u8]) -> PngEdit {
    let kind = &chunk[4..8];
    let mut data = chunk[8..chunk.len() - 4].to_vec();
    let keyword_end = data.iter().position(|byte| *byte == 0).unwrap_or(data.len());
    let keyword = String::from_utf8_lossy(&data[..keyword_end]).to_ascii_lowercase();
    let edited = match kind {
        b"eXIf" => match strip_tiff(&mut data) {
            Ok(true) => true,
            Ok(false) => false,
            Err(()) => return PngEdit::Drop,
        },
        b"iTXt" if keyword == "xml:com.adobe.xmp" => {
            // A compressed XMP packet cannot be edited in place: removed whole.
            if data.get(keyword_end + 1).copied().unwrap_or(1) != 0 {
                return PngEdit::Drop;
            }
            blank_xmp_gps(&mut data[keyword_end..])
        }
        // ImageMagick's hex-encoded copies of the EXIF or XMP: removed whole.
        b"tEXt" | b"zTXt" | b"iTXt" if keyword.starts_with("raw profile type") => return PngEdit::Drop,
        _ => false,
    };
    if !edited {
        return PngEdit::Unchanged;
    }
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    crc.update(&data);
    let mut replaced = Vec::with_capacity(chunk.len());
    replaced.extend_from_slice(&chunk[..8]);
    replaced.extend_from_slice(&data);
    replaced.extend_from_slice(&crc.finalize().to_be_bytes());
    PngEdit::Replaced(Bytes::from(replaced))
}
