//! The EXIF block's TIFF structure, edited in place: its GPS IFD and maker notes removed, nothing else
//! moved.

/// EXIF tags that point at IFDs, and the one that is removed whole.
pub(super) const GPS_IFD: u16 = 0x8825;
pub(super) const EXIF_IFD: u16 = 0x8769;
pub(super) const MAKER_NOTE: u16 = 0x927C;

/// A TIFF structure (the body of an EXIF block), read with its byte order.
pub(super) struct Tiff<'a> {
    pub(super) data: &'a mut [u8],
    pub(super) little_endian: bool,
}

impl Tiff<'_> {
    pub(super) fn u16_at(&self, at: usize) -> Result<u16, ()> {
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
    pub(super) fn entries(&self, ifd: usize) -> Result<Vec<(usize, u16, usize)>, ()> {
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
pub(super) fn strip_tiff(data: &mut [u8]) -> Result<bool, ()> {
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
