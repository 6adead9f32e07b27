use super::{
    tiff::{EXIF_IFD, GPS_IFD, MAKER_NOTE, Tiff},
    *,
};

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
