//! Deletion markers: each account deletion is recorded in the backup bucket (`deletions/<account id>`),
//! signed, so that a restore from a snapshot taken before it deletes the account again. The bucket's
//! layout and the markers' signatures are this module's; what a deletion erases is `deletion`'s.

use super::{
    BackupKeys, refusals,
    signing::{SMALL_OBJECT_MAX_BYTES, read_signed},
};
use crate::{
    domain::UserId,
    error::{Error, Result},
    storage::ObjectStore,
};
use bytes::Bytes;
use sqlx::PgPool;

/// Where each deletion is recorded in the backup bucket (`deletions/<account id>`).
pub const DELETIONS_PREFIX: &str = "deletions/";

/// The marker of `user`'s deletion: its name in the backup bucket and its signed bytes.
pub fn seal_deletion(keys: &BackupKeys, user: UserId) -> Result<(String, Bytes)> {
    let record = serde_json::json!({
        "account": user.0,
        "deleted_at": time::OffsetDateTime::now_utc().unix_timestamp(),
    });
    let name = format!("{DELETIONS_PREFIX}{user}");
    let signed = keys
        .seal(&name, record.to_string().as_bytes())
        .map_err(Error::Conflict)?;
    Ok((name, Bytes::from(signed)))
}

/// What the deletion markers in a backup bucket say of the accounts in a database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Marked {
    /// Accounts deleted since the database's snapshot: marked, but not deleted in the database.
    pub accounts: Vec<UserId>,
    /// Markers not believed because no trusted key signed them for their name, each with why.
    pub refused: Vec<String>,
}

/// The accounts of `pool` that a marker in `backups` says were deleted, though they are not (the
/// database was restored from an older snapshot). A marker no trusted key signed for its name is
/// refused: recorded, named, and never believed.
pub async fn deleted_since(pool: &PgPool, backups: &ObjectStore, keys: &BackupKeys) -> Result<Marked> {
    let mut marked = Marked::default();
    for object in backups.list(DELETIONS_PREFIX).await? {
        let Some(id) = object
            .key
            .strip_prefix(DELETIONS_PREFIX)
            .and_then(|id| id.parse::<uuid::Uuid>().ok())
        else {
            continue;
        };
        let pending = sqlx::query_scalar!(
            r#"select exists (select from users where id = $1 and deleted_at is null) as "pending!""#,
            id
        )
        .fetch_one(pool)
        .await?;
        if !pending {
            continue;
        }
        let marker = read_signed(backups, keys, &object.key, SMALL_OBJECT_MAX_BYTES)
            .await?
            .and_then(|payload| {
                serde_json::from_slice::<serde_json::Value>(&payload)
                    .ok()
                    .filter(|marker| marker["account"].as_str() == Some(&id.to_string()))
                    .ok_or_else(|| "it does not name its account".to_owned())
            });
        if let Err(why) = marker {
            tracing::warn!(marker = %object.key, %why, "a deletion marker in the backup bucket is refused");
            refusals::record(pool, &object.key, &why).await?;
            marked.refused.push(format!("{}: {why}", object.key));
            continue;
        }
        marked.accounts.push(UserId(id));
    }
    Ok(marked)
}
