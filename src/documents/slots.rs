//! How many uploads one person runs at once, counted in PostgreSQL so the bound holds across replicas.
//!
//! An upload takes a slot before it reads its body and gives it back when it ends. The slot carries a
//! lease its server renews while the upload runs; a server that dies stops renewing, and its slots
//! free themselves when their leases end.

use crate::{
    domain::UserId,
    error::{Error, Result},
};
use sqlx::PgPool;
use std::time::Duration;
use uuid::Uuid;

/// How long a slot stays taken without renewal.
pub const LEASE: Duration = Duration::from_secs(60);

/// A running upload's slot; dropping it gives the slot back.
#[derive(Debug)]
pub struct UploadSlot {
    id: Uuid,
    db: PgPool,
    renewal: tokio::task::JoinHandle<()>,
}

impl UploadSlot {
    /// The slot's row.
    pub(crate) fn id(&self) -> Uuid {
        self.id
    }

    /// Takes one of `user`'s `most` slots, or fails with [`Error::RateLimited`] when all are taken.
    pub async fn take(db: &PgPool, user: UserId, most: usize) -> Result<Self> {
        let id = Uuid::new_v4();
        // Counted and taken under a lock per user, in one round trip (see the migration).
        let running = sqlx::query_scalar!(
            r#"select take_upload_slot($1, $2, $3, $4) as "running!""#,
            id,
            user as UserId,
            i64::try_from(most).unwrap_or(i64::MAX),
            LEASE.as_secs_f64()
        )
        .fetch_one(db)
        .await?;
        if usize::try_from(running).unwrap_or(usize::MAX) >= most {
            return Err(Error::RateLimited {
                retry_after: Duration::from_secs(5),
                message: Some(format!(
                    "You already have {running} uploads running. Wait until one has finished."
                )),
            });
        }
        let renewal = tokio::spawn({
            let db = db.clone();
            async move {
                loop {
                    tokio::time::sleep(LEASE / 3).await;
                    let renewed = sqlx::query!(
                        "update upload_slots set lease_until = now() + make_interval(secs => $2::float8)
                         where id = $1",
                        id,
                        LEASE.as_secs_f64()
                    )
                    .execute(&db)
                    .await;
                    if let Err(err) = renewed {
                        tracing::warn!(error = %err, "cannot renew an upload's slot");
                    }
                }
            }
        });
        Ok(Self {
            id,
            db: db.clone(),
            renewal,
        })
    }
}

impl Drop for UploadSlot {
    fn drop(&mut self) {
        self.renewal.abort();
        let (db, id) = (self.db.clone(), self.id);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(err) = sqlx::query!("delete from upload_slots where id = $1", id)
                    .execute(&db)
                    .await
                {
                    tracing::warn!(error = %err, "cannot give an upload's slot back; its lease will end");
                }
            });
        }
    }
}
