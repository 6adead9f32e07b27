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

use bytes::{Bytes, BytesMut};

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

/// EXIF tags that point at IFDs, and the one that is removed whole.
const GPS_IFD: u16 = 0x8825;
const EXIF_IFD: u16 = 0x8769;
const MAKER_NOTE: u16 = 0x927C;

/// A TIFF structure (the body of an EXIF block), read with its byte order.
struct Tiff<'a> {
    data: &'a mut [u8],
    little_endian: bool,
}

impl Tiff<'_> {
    fn u16_at(&self, at: usize) -> Result<u16, ()> {
        let bytes: [u8; 2] = self.data.get(at..at + 2).ok_or(())?.try_into().map_err(|_| ())?;
        Ok(if self.little_endian {
            u16::from_le_bytes(bytes)
        } else {
            u16::from_be_bytes(bytes)
        })
    }

    fn u32_at(&self, at: usize) -> Result<u32, ()> {
        let bytes: [u8; 4] = self.data.get(at..at + 4).ok_or(())?.try_into().map_err(|_| ())?;
        Ok(if self.little_endian {
            u32::from_le_bytes(bytes)
        } else {
            u32::from_be_bytes(bytes)
        })
    }

    fn set_u16(&mut self, at: usize, value: u16) -> Result<(), ()> {
        let bytes = if self.little_endian {
            value.to_le_bytes()
        } else {
            value.to_be_bytes()
        };
        self.data.get_mut(at..at + 2).ok_or(())?.copy_from_slice(&bytes);
        Ok(())
    }

    /// Zeroes `len` bytes from `from`, as far as the block goes: a value that runs past its end (a
    /// vendor's truncated maker notes) is zeroed where it is, rather than the whole block dropped.
    fn zero(&mut self, from: usize, len: usize) -> Result<(), ()> {
        let end = from.saturating_add(len).min(self.data.len());
        if from < end {
            self.data[from..end].fill(0);
        }
        Ok(())
    }

    /// The entries of the IFD at `ifd`: (index, tag, where the entry is).
    fn entries(&self, ifd: usize) -> Result<Vec<(usize, u16, usize)>, ()> {
        let count = usize::from(self.u16_at(ifd)?);
        if ifd + 2 + count * 12 + 4 > self.data.len() {
            return Err(());
        }
        (0..count)
            .map(|index| {
                let at = ifd + 2 + index * 12;
                Ok((index, self.u16_at(at)?, at))
            })
            .collect()
    }

    /// The offset an entry's value is stored at when it does not fit in the entry, with its length. A
    /// type this table does not know (EXIF 3.0's UTF-8, 129, say) counts a byte per item.
    fn out_of_line(&self, entry: usize) -> Result<Option<(usize, usize)>, ()> {
        let size = match self.u16_at(entry + 2)? {
            3 | 8 => 2,
            4 | 9 | 11 | 13 => 4,
            5 | 10 | 12 => 8,
            _ => 1,
        };
        let len = (self.u32_at(entry + 4)? as usize).checked_mul(size).ok_or(())?;
        if len <= 4 {
            return Ok(None);
        }
        Ok(Some((self.u32_at(entry + 8)? as usize, len)))
    }

    /// Zeroes an entry's out-of-line value.
    fn zero_value(&mut self, entry: usize) -> Result<(), ()> {
        if let Some((at, len)) = self.out_of_line(entry)? {
            self.zero(at, len)?;
        }
        Ok(())
    }

    /// Empties the IFD at `ifd`: its entries' values, the entries, and its link to a next IFD.
    fn clear_ifd(&mut self, ifd: usize) -> Result<(), ()> {
        for (_, _, entry) in self.entries(ifd)? {
            self.zero_value(entry)?;
        }
        let count = usize::from(self.u16_at(ifd)?);
        self.zero(ifd, 2 + count * 12 + 4)
    }

    /// Removes entry `index` of the IFD at `ifd`: the entries after it move up, and so does the link to
    /// the next IFD; the freed twelve bytes are zeroed.
    fn remove_entry(&mut self, ifd: usize, index: usize) -> Result<(), ()> {
        let count = usize::from(self.u16_at(ifd)?);
        let first = ifd + 2;
        let end = first + count * 12 + 4;
        if index >= count || end > self.data.len() {
            return Err(());
        }
        self.data
            .copy_within(first + (index + 1) * 12..end, first + index * 12);
        self.zero(end - 12, 12)?;
        self.set_u16(ifd, (count - 1) as u16)
    }
}

/// Removes the GPS IFD and the maker notes from a TIFF structure in place. `Ok(true)`: something was
/// removed; `Err`: it does not parse.
fn strip_tiff(data: &mut [u8]) -> Result<bool, ()> {
    let little_endian = match data.get(..4) {
        Some(b"II*\0") => true,
        Some(b"MM\0*") => false,
        _ => return Err(()),
    };
    let mut tiff = Tiff { data, little_endian };
    let ifd0 = tiff.u32_at(4)? as usize;
    let mut removed = false;
    let entries = tiff.entries(ifd0)?;
    let exif = entries.iter().find(|(_, tag, _)| *tag == EXIF_IFD).copied();
    let exif_ifd = match exif {
        Some((_, _, entry)) => Some(tiff.u32_at(entry + 8)? as usize),
        None => None,
    };
    if let Some(exif_ifd) = exif_ifd
        && let Some((index, _, entry)) = tiff
            .entries(exif_ifd)?
            .into_iter()
            .find(|(_, tag, _)| *tag == MAKER_NOTE)
    {
        tiff.zero_value(entry)?;
        tiff.remove_entry(exif_ifd, index)?;
        removed = true;
    }
    // (IFD0's entries were read before the maker notes went: that edit did not touch IFD0.)
    if let Some((index, _, entry)) = entries.into_iter().find(|(_, tag, _)| *tag == GPS_IFD) {
        let gps = tiff.u32_at(entry + 8)? as usize;
        if gps != 0 && gps != ifd0 {
            tiff.clear_ifd(gps)?;
        }
        tiff.remove_entry(ifd0, index)?;
        removed = true;
    }
    Ok(removed)
}

/// Blanks every GPS property of an XMP packet (an element or an attribute whose local name starts
/// with `GPS`, in any namespace) with spaces: the packet keeps its length and stays well-formed XML.
fn blank_xmp_gps(xmp: &mut [u8]) -> bool {
    let mut removed = false;
    let mut from = 0;
    while let Some(found) = find_gps(&xmp[from..]) {
        let colon = from + found;
        let mut start = colon;
        while start > 0 && is_name_byte(xmp[start - 1]) {
            start -= 1;
        }
        let mut end = colon + 1;
        while end < xmp.len() && is_name_byte(xmp[end]) {
            end += 1;
        }
        from = end;
        if start == 0 || start == colon {
            continue;
        }
        let before = xmp[start - 1];
        if before == b'<' {
            let name = xmp[start..end].to_vec();
            let Some(tag_end) = tag_end(xmp, end) else {
                continue;
            };
            let blank_to = if xmp[tag_end - 1] == b'/' {
                tag_end
            } else {
                let mut closing = b"</".to_vec();
                closing.extend_from_slice(&name);
                match xmp[tag_end..]
                    .windows(closing.len())
                    .position(|window| window == closing.as_slice())
                {
                    Some(at) => match xmp[tag_end + at..].iter().position(|byte| *byte == b'>') {
                        Some(gt) => tag_end + at + gt,
                        None => continue,
                    },
                    None => continue,
                }
            };
            xmp[start - 1..=blank_to].fill(b' ');
            from = blank_to + 1;
            removed = true;
        } else if before.is_ascii_whitespace() {
            let mut at = end;
            while at < xmp.len() && xmp[at].is_ascii_whitespace() {
                at += 1;
            }
            if xmp.get(at) != Some(&b'=') {
                continue;
            }
            at += 1;
            while at < xmp.len() && xmp[at].is_ascii_whitespace() {
                at += 1;
            }
            let Some(&quote) = xmp.get(at).filter(|byte| matches!(byte, b'"' | b'\'')) else {
                continue;
            };
            let Some(close) = xmp[at + 1..].iter().position(|byte| *byte == quote) else {
                continue;
            };
            let last = at + 1 + close;
            xmp[start..=last].fill(b' ');
            from = last + 1;
            removed = true;
        }
    }
    removed
}

/// Where `:gps` (any case) begins in `data`.
fn find_gps(data: &[u8]) -> Option<usize> {
    data.windows(4)
        .position(|window| window[0] == b':' && window[1..].eq_ignore_ascii_case(b"gps"))
}

fn is_name_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-' | b'.')
}

/// The index of the `>` that ends the tag whose name ends at `from` (quoted values skipped).
fn tag_end(xml: &[u8], from: usize) -> Option<usize> {
    let mut quote = None;
    for (offset, byte) in xml[from..].iter().enumerate() {
        match (quote, *byte) {
            (None, b'"' | b'\'') => quote = Some(*byte),
            (Some(open), byte) if byte == open => quote = None,
            (None, b'>') => return Some(from + offset),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A little-endian TIFF with IFD0 {Orientation=6, ExifIFD, GPSIFD}, an Exif IFD {MakerNote (8
    /// bytes), DateTimeOriginal-like short}, and a GPS IFD {latitude ref "N", latitude (3 rationals)}.
    fn tiff() -> Vec<u8> {
        let mut t = vec![0u8; 200];
        t[..8].copy_from_slice(b"II*\0\x08\0\0\0");
        let entry = |t: &mut Vec<u8>, at: usize, tag: u16, typ: u16, count: u32, value: u32| {
            t[at..at + 2].copy_from_slice(&tag.to_le_bytes());
            t[at + 2..at + 4].copy_from_slice(&typ.to_le_bytes());
            t[at + 4..at + 8].copy_from_slice(&count.to_le_bytes());
            t[at + 8..at + 12].copy_from_slice(&value.to_le_bytes());
        };
        // IFD0 at 8: three entries, next IFD 0.
        t[8..10].copy_from_slice(&3u16.to_le_bytes());
        entry(&mut t, 10, 0x0112, 3, 1, 6);
        entry(&mut t, 22, EXIF_IFD, 4, 1, 60);
        entry(&mut t, 34, GPS_IFD, 4, 1, 100);
        // Exif IFD at 60: two entries.
        t[60..62].copy_from_slice(&2u16.to_le_bytes());
        entry(&mut t, 62, 0x9000, 7, 4, u32::from_le_bytes(*b"0232"));
        entry(&mut t, 74, MAKER_NOTE, 7, 8, 150);
        t[150..158].copy_from_slice(b"MAKERPOS");
        // GPS IFD at 100: two entries; the latitude's 24 bytes at 170.
        t[100..102].copy_from_slice(&2u16.to_le_bytes());
        entry(&mut t, 102, 0x0001, 2, 2, u32::from_le_bytes(*b"N\0\0\0"));
        entry(&mut t, 114, 0x0002, 5, 3, 170);
        t[170..194].copy_from_slice(&[7u8; 24]);
        t
    }

    #[test]
    fn the_gps_ifd_and_maker_notes_go_and_orientation_stays() {
        let mut data = tiff();
        let before = data.len();
        assert_eq!(strip_tiff(&mut data), Ok(true));
        assert_eq!(data.len(), before);
        let tiff = Tiff {
            data: &mut data,
            little_endian: true,
        };
        let tags: Vec<u16> = tiff.entries(8).unwrap().iter().map(|(_, tag, _)| *tag).collect();
        assert_eq!(tags, vec![0x0112, EXIF_IFD], "the GPS pointer is gone");
        assert_eq!(tiff.u16_at(10 + 8).unwrap(), 6, "orientation kept");
        let exif_tags: Vec<u16> = tiff.entries(60).unwrap().iter().map(|(_, tag, _)| *tag).collect();
        assert_eq!(exif_tags, vec![0x9000]);
        assert!(!data.windows(8).any(|window| window == b"MAKERPOS"));
        assert!(
            !data.windows(24).any(|window| window == [7u8; 24]),
            "the latitude is zeroed"
        );
        // Stripping again finds nothing.
        assert_eq!(strip_tiff(&mut data), Ok(false));
    }

    #[test]
    fn maker_notes_running_past_the_block_are_zeroed_as_far_as_it_goes_and_the_rest_kept() {
        let mut data = tiff();
        // The maker notes claim 1,000 bytes from 150: past the end of the block.
        data[74 + 4..74 + 8].copy_from_slice(&1000u32.to_le_bytes());
        assert_eq!(strip_tiff(&mut data), Ok(true));
        assert!(!data.windows(8).any(|window| window == b"MAKERPOS"));
        let tiff = Tiff {
            data: &mut data,
            little_endian: true,
        };
        assert_eq!(tiff.u16_at(10 + 8).unwrap(), 6, "orientation kept");
    }

    #[test]
    fn gps_values_of_a_type_the_table_does_not_know_are_zeroed_too() {
        let mut data = tiff();
        // The latitude's entry retyped as EXIF 3.0's UTF-8 (129), 24 bytes at 170.
        data[114 + 2..114 + 4].copy_from_slice(&129u16.to_le_bytes());
        data[114 + 4..114 + 8].copy_from_slice(&24u32.to_le_bytes());
        assert_eq!(strip_tiff(&mut data), Ok(true));
        assert!(
            !data.windows(24).any(|window| window == [7u8; 24]),
            "the value is zeroed, not only unreferenced"
        );
    }

    #[test]
    fn every_image_of_a_jpeg_is_filtered_and_a_trailer_passes_as_it_came() {
        // A primary image, a second one after its end (a phone's large preview or gain map, with its
        // own EXIF), then a motion photo's video.
        let xmp = br#"<rdf:Description exif:GPSLatitude="51N"/>"#;
        let trailer = b"\0\0\0\x18ftypmp42 the video";
        let original = [jpeg_with(&tiff(), xmp), jpeg_with(&tiff(), xmp), trailer.to_vec()].concat();
        let mut expected_exif = tiff();
        strip_tiff(&mut expected_exif).unwrap();
        for chunk in [1, 2, 7, 1000] {
            let mut filter = LocationFilter::for_type("image/jpeg");
            let out = run(&mut filter, &original, chunk);
            assert_eq!(out.len(), original.len(), "chunks of {chunk}");
            let edited = out
                .windows(expected_exif.len())
                .filter(|window| *window == expected_exif)
                .count();
            assert_eq!(edited, 2, "chunks of {chunk}: both images' EXIF edited");
            assert!(!out.windows(3).any(|window| window == b"51N"));
            assert!(out.ends_with(trailer), "the trailer as it came");
        }
    }

    #[test]
    fn a_tiff_that_does_not_parse_is_an_error() {
        assert_eq!(strip_tiff(&mut b"II*\0\xff\xff\0\0".to_vec()), Err(()));
        assert_eq!(strip_tiff(&mut b"not a tiff".to_vec()), Err(()));
        let mut truncated = tiff();
        truncated.truncate(40);
        assert_eq!(strip_tiff(&mut truncated), Err(()));
    }

    #[test]
    fn xmp_gps_properties_are_blanked_and_the_rest_kept() {
        let xmp = br#"<x:xmpmeta><rdf:RDF><rdf:Description exif:GPSLatitude="51,30.5N" tiff:Orientation="6"
 exif:GPSLongitude = '0,7.5W'><exif:GPSAltitude>100/1</exif:GPSAltitude><dc:title>Rex</dc:title>
<exif:GPSTimeStamp/><drone:GpsStatus><rdf:Seq><rdf:li>ok</rdf:li></rdf:Seq></drone:GpsStatus>
</rdf:Description></rdf:RDF></x:xmpmeta>"#;
        let mut edited = xmp.to_vec();
        assert!(blank_xmp_gps(&mut edited));
        assert_eq!(edited.len(), xmp.len());
        let text = String::from_utf8(edited).unwrap();
        assert!(!text.to_ascii_lowercase().contains("gps"), "{text}");
        assert!(!text.contains("51,30.5N") && !text.contains("100/1"), "{text}");
        assert!(text.contains(r#"tiff:Orientation="6""#), "{text}");
        assert!(text.contains("<dc:title>Rex</dc:title>"), "{text}");
        assert!(
            text.contains("</rdf:Description></rdf:RDF></x:xmpmeta>"),
            "{text}"
        );
        let mut clean = b"<x:xmpmeta><dc:title>no position</dc:title></x:xmpmeta>".to_vec();
        assert!(!blank_xmp_gps(&mut clean));
    }

    fn jpeg_with(exif: &[u8], xmp: &[u8]) -> Vec<u8> {
        let mut jpeg = vec![0xFF, 0xD8];
        for payload in [[JPEG_EXIF, exif].concat(), [JPEG_XMP, xmp].concat()] {
            jpeg.extend_from_slice(&[0xFF, 0xE1]);
            jpeg.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
            jpeg.extend_from_slice(&payload);
        }
        // A quantisation table, then the scan with bytes that look like markers.
        jpeg.extend_from_slice(&[0xFF, 0xDB, 0x00, 0x04, 0x01, 0x02]);
        jpeg.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x02, 0xFF, 0x00, 0xFF, 0xE1, 0x12, 0xFF, 0xD9]);
        jpeg
    }

    fn run(filter: &mut Option<LocationFilter>, data: &[u8], chunk: usize) -> Vec<u8> {
        let filter_ref = filter.as_mut().unwrap();
        let mut out = Vec::new();
        for piece in data.chunks(chunk) {
            for bytes in filter_ref.push(Bytes::copy_from_slice(piece)) {
                out.extend_from_slice(&bytes);
            }
        }
        for bytes in filter.take().unwrap().finish() {
            out.extend_from_slice(&bytes);
        }
        out
    }

    #[test]
    fn a_jpeg_loses_its_position_whatever_the_chunk_sizes_and_keeps_its_length() {
        let original = jpeg_with(&tiff(), br#"<rdf:Description exif:GPSLatitude="51N"/>"#);
        let mut expected_exif = tiff();
        strip_tiff(&mut expected_exif).unwrap();
        for chunk in [1, 3, 17, 1000] {
            let mut filter = LocationFilter::for_type("image/jpeg");
            let out = run(&mut filter, &original, chunk);
            assert_eq!(out.len(), original.len(), "chunks of {chunk}");
            assert!(
                out.windows(expected_exif.len())
                    .any(|window| window == expected_exif),
                "the EXIF edited in place"
            );
            assert!(!out.windows(3).any(|window| window == b"51N"));
            assert!(out.ends_with(&[0xFF, 0xDA, 0x00, 0x02, 0xFF, 0x00, 0xFF, 0xE1, 0x12, 0xFF, 0xD9]));
        }
    }

    #[test]
    fn an_exif_block_that_does_not_parse_is_dropped_from_a_jpeg() {
        let original = jpeg_with(b"garbage that is no tiff", b"<x/>");
        let mut filter = LocationFilter::for_type("image/jpeg");
        let out = run(&mut filter, &original, 5);
        assert!(!out.windows(7).any(|window| window == b"garbage"));
        assert!(
            out.windows(JPEG_XMP.len()).any(|window| window == JPEG_XMP),
            "the XMP stays"
        );
    }

    fn png_chunk(kind: &[u8], data: &[u8]) -> Vec<u8> {
        let mut chunk = (data.len() as u32).to_be_bytes().to_vec();
        chunk.extend_from_slice(kind);
        chunk.extend_from_slice(data);
        let mut crc = crc32fast::Hasher::new();
        crc.update(kind);
        crc.update(data);
        chunk.extend_from_slice(&crc.finalize().to_be_bytes());
        chunk
    }

    #[test]
    fn a_png_loses_its_position_and_its_crcs_stay_right() {
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend(png_chunk(b"IHDR", &[0; 13]));
        png.extend(png_chunk(b"eXIf", &tiff()));
        png.extend(png_chunk(b"IDAT", &[9; 300]));
        png.extend(png_chunk(
            b"iTXt",
            b"XML:com.adobe.xmp\0\0\0\0\0<d exif:GPSLatitude='1N'/>",
        ));
        png.extend(png_chunk(b"zTXt", b"Raw profile type exif\0\0xx"));
        png.extend(png_chunk(b"IEND", &[]));
        let mut filter = LocationFilter::for_type("image/png");
        let out = run(&mut filter, &png, 7);
        let mut at = 8;
        let mut kinds = Vec::new();
        while at < out.len() {
            let length = u32::from_be_bytes(out[at..at + 4].try_into().unwrap()) as usize;
            let kind = &out[at + 4..at + 8];
            let data = &out[at + 8..at + 8 + length];
            let mut crc = crc32fast::Hasher::new();
            crc.update(kind);
            crc.update(data);
            assert_eq!(
                out[at + 8 + length..at + 12 + length],
                crc.finalize().to_be_bytes(),
                "the CRC of {}",
                String::from_utf8_lossy(kind)
            );
            kinds.push(String::from_utf8_lossy(kind).into_owned());
            at += 12 + length;
        }
        assert_eq!(
            kinds,
            ["IHDR", "eXIf", "IDAT", "iTXt", "IEND"],
            "the raw profile is dropped"
        );
        assert!(!out.windows(2).any(|window| window == b"1N"));
        assert!(!out.windows(24).any(|window| window == [7u8; 24]));
    }

    #[test]
    fn a_webp_keeps_its_length_and_its_riff_size_holds() {
        let mut body = b"WEBP".to_vec();
        let mut chunk = |kind: &[u8], data: &[u8]| {
            body.extend_from_slice(kind);
            body.extend_from_slice(&(data.len() as u32).to_le_bytes());
            body.extend_from_slice(data);
            if data.len() % 2 == 1 {
                body.push(0);
            }
        };
        chunk(b"VP8X", &[0; 10]);
        chunk(b"VP8L", &[5; 301]);
        chunk(b"EXIF", &tiff());
        chunk(b"XMP ", br#"<d exif:GPSLongitude="2W"/>"#);
        let mut webp = b"RIFF".to_vec();
        webp.extend_from_slice(&(body.len() as u32).to_le_bytes());
        webp.extend_from_slice(&body);
        let mut filter = LocationFilter::for_type("image/webp");
        let out = run(&mut filter, &webp, 11);
        assert_eq!(out.len(), webp.len());
        assert_eq!(out[..8], webp[..8], "the RIFF size is unchanged and still right");
        assert!(!out.windows(2).any(|window| window == b"2W"));
        assert!(!out.windows(24).any(|window| window == [7u8; 24]));
        assert!(
            out.windows(301).any(|window| window == [5u8; 301]),
            "image data untouched"
        );
    }

    #[test]
    fn other_types_pass_and_files_that_are_not_what_they_seem_pass_unchanged() {
        assert!(LocationFilter::for_type("application/pdf").is_none());
        let not_a_jpeg = b"\xFF\xD9not really".to_vec();
        let mut filter = LocationFilter::for_type("image/jpeg");
        assert_eq!(run(&mut filter, &not_a_jpeg, 3), not_a_jpeg);
        let whole = jpeg_with(&tiff(), b"<x/>");
        let truncated = &whole[..30];
        let mut filter = LocationFilter::for_type("image/jpeg");
        assert_eq!(
            run(&mut filter, truncated, 4),
            truncated,
            "a truncated file ends as it came"
        );
    }
}
