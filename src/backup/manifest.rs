//! The manifest: what one snapshot holds. Written encrypted, last, into `manifests/<random>`; a restore
//! needs nothing else (with the key) to rebuild the database, the files and the catalogue.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// The manifest format this build writes and reads.
pub const FORMAT: u32 = 1;

/// One snapshot.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: u32,
    /// The snapshot id (the backup run's id).
    pub snapshot: Uuid,
    /// When the run started.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// When the database snapshot was taken.
    #[serde(with = "time::serde::rfc3339")]
    pub taken_at: OffsetDateTime,
    /// The Pawfile version that wrote it.
    pub pawfile_version: String,
    /// The recipient set every object of the snapshot is encrypted to ("none": unencrypted).
    pub recipients: String,
    /// The migrations the database had, in order.
    pub migrations: Vec<MigrationEntry>,
    /// Every table, in the order a restore loads them.
    pub tables: Vec<TableEntry>,
    /// Every file (documents and thumbnails).
    pub objects: Vec<ObjectEntry>,
}

/// One applied migration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MigrationEntry {
    /// Its version.
    pub version: i64,
    /// Its description.
    pub description: String,
    /// Its checksum (SHA-384 of the SQL, as sqlx computes it), hex.
    pub checksum: String,
}

/// One table's dump.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TableEntry {
    /// The table.
    pub name: String,
    /// The columns dumped, in order.
    pub columns: Vec<String>,
    /// How many rows.
    pub rows: u64,
    /// Where the dump (COPY text format) is stored.
    pub stored: Stored,
}

/// One file of the documents bucket.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ObjectEntry {
    /// Its key in the documents bucket.
    pub key: String,
    /// Where it is stored.
    pub stored: Stored,
}

/// A stored backup object.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Stored {
    /// Its name in the backup bucket.
    pub object: String,
    /// Plaintext size.
    pub size: u64,
    /// Plaintext SHA-256, hex.
    pub sha256: String,
    /// Size in the bucket.
    pub ciphertext_size: u64,
    /// SHA-256 of the bytes in the bucket, hex.
    pub ciphertext_sha256: String,
}

impl Manifest {
    /// Every stored object the snapshot references (tables and files), each once.
    pub fn stored(&self) -> Vec<&Stored> {
        let mut seen = std::collections::HashSet::new();
        self.tables
            .iter()
            .map(|table| &table.stored)
            .chain(self.objects.iter().map(|object| &object.stored))
            .filter(|stored| seen.insert(stored.object.as_str()))
            .collect()
    }
}

/// Decodes a hex SHA-256.
pub fn sha256_from_hex(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}
