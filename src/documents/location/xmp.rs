//! An XMP packet's GPS properties, blanked in place.

/// Blanks every GPS property of an XMP packet (an element or an attribute whose local name starts
/// with `GPS`, in any namespace) with spaces: the packet keeps its length and stays well-formed XML.
pub(super) fn blank_xmp_gps(xmp: &mut [u8]) -> bool {
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
