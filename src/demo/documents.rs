//! Demo documents, made at seed time so that a newcomer sees the document store at work: a lab report
//! and a vaccination certificate (PDF) and an x-ray (JPEG) of Biscuit, stored through the same upload
//! protocol as any file a person sends.

use super::DEMO_ACCOUNTS;
use crate::{
    access::Actor,
    auth::load_session_user,
    documents::{Policy, UploadBatch, UploadDetails, sniff::DEFAULT_ACCEPTED},
    domain::{DocumentCategory, PetId, RecordId, UserId},
    error::{Error, Result},
    storage::ObjectStore,
};
use bytes::Bytes;
use sqlx::PgPool;
use uuid::Uuid;

/// Adds the demo documents to the demo owner's Biscuit, unless it has documents already. Returns how
/// many were added.
pub async fn seed_documents(pool: &PgPool, store: &ObjectStore) -> Result<usize> {
    let owner = demo_actor(pool, DEMO_ACCOUNTS[0].email).await?;
    let vet = demo_actor(pool, DEMO_ACCOUNTS[1].email).await?;
    let biscuit: Uuid = sqlx::query_scalar("select id from pets where owner_id = $1 and name = 'Biscuit'")
        .bind(owner.user.id.0)
        .fetch_optional(pool)
        .await?
        .ok_or(Error::NotFound)?;
    let biscuit = PetId(biscuit);
    let has_documents: bool = sqlx::query_scalar("select exists(select 1 from documents where pet_id = $1)")
        .bind(biscuit.0)
        .fetch_one(pool)
        .await?;
    if has_documents {
        return Ok(0);
    }
    let vaccination: Option<Uuid> = sqlx::query_scalar(
        "select id from medical_records where pet_id = $1 and title = 'Annual vaccination' order by visit_date limit 1",
    )
    .bind(biscuit.0)
    .fetch_optional(pool)
    .await?;

    let files = [
        (
            &vet,
            "vaccination-certificate-2025-03-14.pdf",
            pdf(VACCINATION_CERTIFICATE),
            UploadDetails {
                record: vaccination.map(RecordId),
                caption: Some("Vaccination certificate, March 2025".to_owned()),
                category: Some(DocumentCategory::VaccinationCertificate),
            },
        ),
        (
            &vet,
            "xray-left-foreleg-lateral.jpg",
            x_ray()?,
            UploadDetails {
                record: None,
                caption: Some("Left foreleg, lateral view: no fracture".to_owned()),
                category: Some(DocumentCategory::XRay),
            },
        ),
        (
            &owner,
            "blood-panel-previous-vet.pdf",
            pdf(LAB_REPORT),
            UploadDetails {
                record: None,
                caption: Some("Blood panel from our previous vet".to_owned()),
                category: Some(DocumentCategory::LabResult),
            },
        ),
    ];
    let policy = Policy {
        max_bytes: 16 << 20,
        accepted: DEFAULT_ACCEPTED.iter().map(|mime| (*mime).to_owned()).collect(),
        strip_location: true,
    };
    let mut added = 0;
    for (actor, name, bytes, details) in files {
        let mut batch = UploadBatch::begin(pool, store, policy.clone(), actor, biscuit).await?;
        let body = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from(bytes))]);
        batch.add_file(name, body).await?;
        added += batch.finish(details).await?.len();
    }
    Ok(added)
}

/// The demo account with address `email`, acting as itself.
async fn demo_actor(pool: &PgPool, email: &str) -> Result<Actor> {
    let (id, generation): (Uuid, i64) =
        sqlx::query_as("select id, session_generation from users where lower(email) = lower($1)")
            .bind(email)
            .fetch_optional(pool)
            .await?
            .ok_or(Error::NotFound)?;
    let user = load_session_user(pool, UserId(id), generation)
        .await?
        .ok_or(Error::NotFound)?;
    Ok(Actor::new(user, None))
}

/// The lines of the demo vaccination certificate (the first is its title).
const VACCINATION_CERTIFICATE: &[&str] = &[
    "Vaccination certificate",
    "Riverside Veterinary Clinic - 12 Mill Lane, Riverside",
    "",
    "Patient: Biscuit    Species: dog (Beagle)    Born: 12 April 2019",
    "Microchip: 276098106512345    Owner: Olivia Owner",
    "",
    "Date          Vaccine                       Batch       Valid until",
    "14 Mar 2025   Nobivac DHPPi                 A417B02     14 Mar 2028",
    "14 Mar 2025   Nobivac L4                    L4-88213    14 Mar 2026",
    "",
    "No reaction observed after vaccination.",
    "",
    "Dr. Victor Vet, veterinary surgeon",
];

/// The lines of the demo lab report.
const LAB_REPORT: &[&str] = &[
    "Haematology and biochemistry",
    "Northgate Animal Hospital laboratory - report 2024-11-05-0193",
    "",
    "Patient: Biscuit (canine, male neutered, 5 years)    Sample: EDTA and serum, fasted",
    "",
    "Test                       Result      Unit        Reference",
    "Haematocrit                48          %           37 - 55",
    "White blood cells          9.1         10^9/L      6.0 - 17.0",
    "Platelets                  312         10^9/L      175 - 500",
    "ALT                        41          U/L         10 - 100",
    "Creatinine                 97          umol/L      44 - 159",
    "Glucose                    5.2         mmol/L      3.9 - 7.9",
    "",
    "All values within reference ranges.",
];

/// A one-page PDF (A4) of `lines` in Courier (so that the tables line up), the first one larger as a
/// title.
fn pdf(lines: &[&str]) -> Vec<u8> {
    let escape = |line: &str| line.replace('\\', "\\\\").replace('(', "\\(").replace(')', "\\)");
    let mut content = String::from("BT\n/F1 18 Tf\n56 780 Td\n");
    for (index, line) in lines.iter().enumerate() {
        content.push_str(&format!("({}) Tj\n", escape(line)));
        if index == 0 {
            content.push_str("/F1 10 Tf\n0 -30 Td\n");
        } else {
            content.push_str("0 -16 Td\n");
        }
    }
    content.push_str("ET\n");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> \
         /Contents 5 0 R >>"
            .to_owned(),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Courier /Encoding /WinAnsiEncoding >>".to_owned(),
        format!("<< /Length {} >>\nstream\n{content}endstream", content.len()),
    ];
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (index, object) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{object}\nendobj\n", index + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
    for offset in offsets {
        out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// A grey picture that reads as an x-ray of a dog's foreleg: the humerus meeting radius and ulna at
/// the elbow, soft tissue around them, film grain.
fn x_ray() -> Result<Vec<u8>> {
    let (width, height) = (720, 540);
    let picture = image::GrayImage::from_fn(width, height, |x, y| {
        let (x, y) = (x as f32, y as f32);
        // How far (x, y) is from the segment a-b, relative to `radius`: 0 on the axis, 1 at the edge.
        let within = |(ax, ay): (f32, f32), (bx, by): (f32, f32), radius: f32| {
            let (dx, dy) = (bx - ax, by - ay);
            let along = (((x - ax) * dx + (y - ay) * dy) / (dx * dx + dy * dy)).clamp(0.0, 1.0);
            let (px, py) = (ax + along * dx - x, ay + along * dy - y);
            (px * px + py * py).sqrt() / radius
        };
        // Bone: marrow inside, a bright cortex at its edge.
        let bone = |distance: f32| {
            if distance > 1.0 {
                0.0
            } else {
                0.5 + 0.45 * distance.powi(6)
            }
        };
        let bones = bone(within((90.0, 50.0), (350.0, 250.0), 36.0))
            .max(bone(within((372.0, 268.0), (650.0, 468.0), 24.0)))
            .max(bone(within((344.0, 286.0), (630.0, 506.0), 15.0)));
        let tissue = (1.0 - within((40.0, 20.0), (700.0, 520.0), 150.0))
            .max(0.0)
            .sqrt();
        let grain = {
            let mut hash = (x as u32).wrapping_mul(374_761_393) ^ (y as u32).wrapping_mul(668_265_263);
            hash = (hash ^ (hash >> 13)).wrapping_mul(1_274_126_177);
            (hash >> 24) as f32 / 255.0
        };
        let value = 0.04 + 0.22 * tissue + 0.68 * bones + 0.05 * grain;
        image::Luma([(value.clamp(0.0, 1.0) * 255.0) as u8])
    });
    let mut out = Vec::new();
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85);
    picture
        .write_with_encoder(encoder)
        .map_err(|err| Error::Internal(anyhow::anyhow!("the demo x-ray: {err}")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_files_are_what_the_upload_accepts() {
        for (bytes, mime) in [
            (pdf(VACCINATION_CERTIFICATE), "application/pdf"),
            (pdf(LAB_REPORT), "application/pdf"),
            (x_ray().unwrap(), "image/jpeg"),
        ] {
            assert_eq!(crate::documents::sniff::sniff(&bytes), Some(mime));
            assert!(DEFAULT_ACCEPTED.contains(&mime));
        }
    }

    #[test]
    fn the_pdf_cross_reference_points_at_each_object() {
        let text = String::from_utf8(pdf(LAB_REPORT)).unwrap();
        let xref: usize = text
            .rsplit("startxref\n")
            .next()
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(text[xref..].starts_with("xref\n0 6\n"));
        for (index, entry) in text[xref..].lines().skip(3).take(5).enumerate() {
            let offset: usize = entry[..10].parse().unwrap();
            assert!(
                text[offset..].starts_with(&format!("{} 0 obj", index + 1)),
                "object {}",
                index + 1
            );
        }
        assert!(text.contains("(Creatinine                 97          umol/L      44 - 159) Tj"));
    }

    #[test]
    fn the_x_ray_decodes_as_a_grey_picture_with_bone_brighter_than_tissue() {
        let picture = image::load_from_memory(&x_ray().unwrap()).unwrap().into_luma8();
        assert_eq!(picture.dimensions(), (720, 540));
        let humerus = picture.get_pixel(220, 150).0[0];
        let background = picture.get_pixel(700, 20).0[0];
        assert!(
            humerus > background + 60,
            "bone {humerus}, background {background}"
        );
    }
}
