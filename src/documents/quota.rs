//! Storage quotas: how much an owner's uploads, or a clinic's staff's uploads, may hold.
//!
//! What an owner uploads counts against the owner; what staff upload for their clinic counts against
//! the clinic. A document counts, in the trash too, until it is purged. An upload reserves space before
//! its bytes reach the store, on its [`UploadSlot`] (so a server that dies mid-upload gives the space
//! back when the slot's lease ends): the declared length whole when the request has one, or step by
//! step as bytes arrive. Reservations are counted and made one at a time per payer, under a lock in
//! PostgreSQL. An upload has to fit beside what is stored, the reservations of the uploads that started
//! before it, and what the younger ones need (not the step they reserved ahead), so the oldest always
//! goes on and two uploads that fit alone but not together never block each other; uploads of declared
//! lengths never reserve more than the quota together. Whatever finishes is checked against the quota
//! once more as it records its documents, under the same lock, so uploads running at once cannot store
//! more than the quota together, on one server or several.

use super::slots::UploadSlot;
use crate::{
    access::Actor,
    domain::{ClinicId, Role, StorageUsage, UserId},
    error::{Error, Result},
};
use sqlx::{PgPool, Postgres, Transaction};
use std::sync::atomic::{AtomicU64, Ordering};

/// Who an upload is charged to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payer {
    /// A pet owner, for what they upload to their pets.
    Owner(UserId),
    /// A clinic, for what its staff upload.
    Clinic(ClinicId),
}

impl Payer {
    fn lock_key(self) -> String {
        match self {
            Payer::Owner(user) => format!("storage:user:{user}"),
            Payer::Clinic(clinic) => format!("storage:clinic:{clinic}"),
        }
    }

    fn user(self) -> Option<uuid::Uuid> {
        match self {
            Payer::Owner(user) => Some(user.0),
            Payer::Clinic(_) => None,
        }
    }

    fn clinic(self) -> Option<uuid::Uuid> {
        match self {
            Payer::Owner(_) => None,
            Payer::Clinic(clinic) => Some(clinic.0),
        }
    }
}

/// The quotas (settings `PAWFILE_QUOTA_PER_OWNER` and `PAWFILE_QUOTA_PER_CLINIC`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    /// Bytes one owner's uploads may hold.
    pub per_owner: u64,
    /// Bytes one clinic's staff's uploads may hold.
    pub per_clinic: u64,
}

impl Quotas {
    /// The defaults: 2 GiB per owner, 500 GiB per clinic.
    pub const DEFAULT: Self = Self {
        per_owner: 2 << 30,
        per_clinic: 500 << 30,
    };

    /// The quota of `payer`.
    pub fn of(&self, payer: Payer) -> u64 {
        match payer {
            Payer::Owner(_) => self.per_owner,
            Payer::Clinic(_) => self.per_clinic,
        }
    }
}

impl Default for Quotas {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// What `payer`'s documents hold, and what uploads running now have reserved.
pub async fn usage(db: &PgPool, payer: Payer, quotas: &Quotas) -> Result<StorageUsage> {
    let mut conn = db.acquire().await?;
    let (used, documents, reserved) = counted(&mut conn, payer, None).await?;
    let (kind, name) = match payer {
        Payer::Owner(user) => (
            "owner",
            sqlx::query_scalar!("select display_name from users where id = $1", user as UserId)
                .fetch_optional(&mut *conn)
                .await?,
        ),
        Payer::Clinic(clinic) => (
            "clinic",
            sqlx::query_scalar!("select name from clinics where id = $1", clinic as ClinicId)
                .fetch_optional(&mut *conn)
                .await?,
        ),
    };
    Ok(StorageUsage {
        payer: kind.to_owned(),
        name: name.unwrap_or_default(),
        used,
        reserved,
        quota: quotas.of(payer),
        documents,
    })
}

/// The quotas that concern `actor`: their own as an owner, their clinic's as staff.
pub async fn usage_of(db: &PgPool, actor: &Actor, quotas: &Quotas) -> Result<Vec<StorageUsage>> {
    let mut usages = Vec::new();
    if actor.user.has_role(Role::Owner) {
        usages.push(usage(db, Payer::Owner(actor.user.id), quotas).await?);
    }
    if let Some(clinic) = actor.clinic() {
        usages.push(usage(db, Payer::Clinic(clinic), quotas).await?);
    }
    Ok(usages)
}

/// How many rows the admins' report shows.
pub const REPORT_ROWS: usize = 100;

/// Every clinic, and the owners who store anything, fullest first: the [`REPORT_ROWS`] fullest
/// (admins only).
pub async fn usage_report(db: &PgPool, actor: &Actor, quotas: &Quotas) -> Result<Vec<StorageUsage>> {
    actor.require_role(db, Role::Admin).await?;
    let rows = sqlx::query!(
        r#"
        select 'clinic' as "payer!", c.name as "name!",
               coalesce(sum(d.size_bytes), 0)::bigint as "used!", count(d.id) as "documents!"
          from clinics c left join documents d on d.charged_clinic_id = c.id
         group by c.id, c.name
        union all
        select 'owner', u.display_name || ' <' || u.email || '>',
               sum(d.size_bytes)::bigint, count(d.id)
          from documents d join users u on u.id = d.uploaded_by
         where d.charged_clinic_id is null
         group by u.id, u.display_name, u.email
        "#
    )
    .fetch_all(db)
    .await?;
    let mut usages: Vec<StorageUsage> = rows
        .into_iter()
        .map(|row| StorageUsage {
            quota: if row.payer == "clinic" {
                quotas.per_clinic
            } else {
                quotas.per_owner
            },
            payer: row.payer,
            name: row.name,
            used: u64::try_from(row.used).unwrap_or(0),
            reserved: 0,
            documents: u64::try_from(row.documents).unwrap_or(0),
        })
        .collect();
    usages.sort_by(|a, b| {
        let share =
            |usage: &StorageUsage| u128::from(usage.used) * 1_000_000 / u128::from(usage.quota.max(1));
        share(b).cmp(&share(a)).then_with(|| a.name.cmp(&b.name))
    });
    usages.truncate(REPORT_ROWS);
    Ok(usages)
}

/// Bytes and count of `payer`'s documents, and bytes reserved by live slots other than `except`.
async fn counted(
    conn: &mut sqlx::PgConnection,
    payer: Payer,
    except: Option<uuid::Uuid>,
) -> Result<(u64, u64, u64)> {
    let row = sqlx::query!(
        r#"select used as "used!", documents as "documents!", reserved as "reserved!"
           from storage_counted($1, $2, $3)"#,
        payer.user(),
        payer.clinic(),
        except,
    )
    .fetch_one(&mut *conn)
    .await?;
    let unsigned = |value: i64| u64::try_from(value).unwrap_or(0);
    Ok((
        unsigned(row.used),
        unsigned(row.documents),
        unsigned(row.reserved),
    ))
}

/// Space reserved for one upload, on its slot. Dropping it (with the slot) gives the space back; the
/// documents an upload records take its place in the same transaction ([`Reservation::settle`]).
#[derive(Debug)]
pub struct Reservation {
    slot: UploadSlot,
    payer: Payer,
    quota: u64,
    /// Bytes reserved so far.
    reserved: AtomicU64,
    /// Bytes of the upload that have arrived so far (all its files).
    arrived: AtomicU64,
}

/// How much more an upload of unknown length reserves at a time (fewer round trips to PostgreSQL).
pub const STEP: u64 = 8 << 20;

impl Reservation {
    /// Reserves `bytes` of `payer`'s quota on `slot`, or fails with [`Error::QuotaExceeded`] (nothing
    /// reserved) when they do not fit beside what is stored and what other uploads have reserved.
    pub async fn new(
        db: &PgPool,
        slot: UploadSlot,
        payer: Payer,
        quotas: &Quotas,
        bytes: u64,
    ) -> Result<Self> {
        let reservation = Self {
            slot,
            payer,
            quota: quotas.of(payer),
            reserved: AtomicU64::new(0),
            arrived: AtomicU64::new(0),
        };
        reservation.reserve(db, bytes, bytes).await?;
        Ok(reservation)
    }

    /// Who pays.
    pub fn payer(&self) -> Payer {
        self.payer
    }

    /// Bytes reserved now.
    pub fn reserved(&self) -> u64 {
        self.reserved.load(Ordering::SeqCst)
    }

    /// Counts `bytes` more of the upload as arrived, reserving more first when they would go beyond
    /// the reservation (a step ahead, as far as the quota allows). Fails with
    /// [`Error::QuotaExceeded`] when they do not fit: the caller stops before they reach the store.
    pub async fn arrive(&self, db: &PgPool, bytes: u64) -> Result<()> {
        let arrived = self.arrived.load(Ordering::SeqCst).saturating_add(bytes);
        if arrived > self.reserved() {
            self.reserve(db, arrived, arrived.saturating_add(STEP)).await?;
        }
        self.arrived.store(arrived, Ordering::SeqCst);
        Ok(())
    }

    /// Sets the reservation to between `needed` and `wanted` bytes, as much as fits.
    async fn reserve(&self, db: &PgPool, needed: u64, wanted: u64) -> Result<()> {
        let signed = |bytes: u64| i64::try_from(bytes).unwrap_or(i64::MAX);
        // Counted and set under the payer's lock, in one round trip (see the migration).
        let row = sqlx::query!(
            r#"select reserved, used as "used!", others as "others!"
               from reserve_storage($1, $2, $3, $4, $5, $6, $7)"#,
            self.slot.id(),
            self.payer.lock_key(),
            self.payer.user(),
            self.payer.clinic(),
            signed(self.quota),
            signed(needed),
            signed(wanted),
        )
        .fetch_one(db)
        .await?;
        let unsigned = |value: i64| u64::try_from(value).unwrap_or(0);
        let Some(reserved) = row.reserved else {
            return Err(Error::QuotaExceeded(refusal(
                self.payer,
                self.quota,
                unsigned(row.used),
                unsigned(row.others),
                needed,
            )));
        };
        self.reserved.store(unsigned(reserved), Ordering::SeqCst);
        Ok(())
    }

    /// Gives the reservation back inside the transaction that records the upload's documents (which
    /// count from then on): at no moment is the space counted neither way. Fails with
    /// [`Error::QuotaExceeded`] when what is stored, these documents included, is over the quota: an
    /// upload that started earlier finished first (see the migration on precedence).
    pub async fn settle(&self, tx: &mut Transaction<'_, Postgres>) -> Result<()> {
        let signed = |bytes: u64| i64::try_from(bytes).unwrap_or(i64::MAX);
        let stored = sqlx::query_scalar!(
            "select settle_storage($1, $2, $3, $4, $5)",
            self.slot.id(),
            self.payer.lock_key(),
            self.payer.user(),
            self.payer.clinic(),
            signed(self.quota),
        )
        .fetch_one(&mut **tx)
        .await?;
        if stored.is_none() {
            let arrived = self.arrived.load(Ordering::SeqCst);
            let used = counted(tx, self.payer, Some(self.slot.id())).await?.0;
            return Err(Error::QuotaExceeded(refusal(
                self.payer,
                self.quota,
                used.saturating_sub(arrived),
                0,
                arrived,
            )));
        }
        Ok(())
    }
}

/// The message of a refused upload: what is used, what the upload needs, what to do.
fn refusal(payer: Payer, quota: u64, used: u64, others: u64, needed: u64) -> String {
    let size = crate::domain::size_label;
    let whose = match payer {
        Payer::Owner(_) => "your documents",
        Payer::Clinic(_) => "your clinic's documents",
    };
    let running = if others > 0 {
        format!(" and uploads running now reserve {}", size(others))
    } else {
        String::new()
    };
    format!(
        "Not enough storage left: {whose} use {} of {}{running}; this upload needs {}. Documents in \
         the trash count until they are purged.",
        size(used),
        size(quota),
        size(needed),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_says_what_is_used_and_what_is_needed() {
        let message = refusal(Payer::Owner(UserId::new()), 2 << 30, 3 << 29, 0, 600 << 20);
        assert_eq!(
            message,
            "Not enough storage left: your documents use 1.5 GiB of 2.0 GiB; this upload needs 600.0 MiB. \
             Documents in the trash count until they are purged."
        );
        let clinic = refusal(
            Payer::Clinic(ClinicId::new()),
            10 << 20,
            1 << 20,
            2 << 20,
            8 << 20,
        );
        assert!(
            clinic.contains(
                "your clinic's documents use 1.0 MiB of 10.0 MiB and uploads running now reserve 2.0 MiB"
            ),
            "{clinic}"
        );
    }
}
