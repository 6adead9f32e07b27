//! The access rules, enforced here for every operation on a pet and what hangs off it:
//! - an owner reaches their own pets (records read-only);
//! - staff reach a pet while it is shared with their clinic: read everything, write records, edit their
//!   clinic's records; revoking the share ends that at once;
//! - admins manage accounts and clinics but do not read medical content unless also owner or staff.
//!
//! A caller who may not know a pet exists gets [`Error::NotFound`], exactly as for a missing id; one who
//! may see it but not do this gets [`Error::Forbidden`]. Both are audited.

use crate::{
    audit::{self, Action, Event},
    clock,
    domain::{ClinicId, PetId, PetPermissions, Role, SessionUser},
    error::{Error, Result},
};
use serde_json::json;
use sqlx::PgPool;
use std::net::IpAddr;
use time::Date;
use uuid::Uuid;

/// Who is acting, and from where: every core operation takes one, to check access and audit.
#[derive(Debug, Clone)]
pub struct Actor {
    /// The signed-in user.
    pub user: SessionUser,
    /// Their client address.
    pub client_addr: Option<IpAddr>,
    /// An opaque reference to their sign-in (not the session id), when acting through a session.
    pub session_ref: Option<Uuid>,
}

impl Actor {
    /// `user` acting from `client_addr`.
    pub fn new(user: SessionUser, client_addr: Option<IpAddr>) -> Self {
        Self {
            user,
            client_addr,
            session_ref: None,
        }
    }

    /// The actor, acting through the sign-in known as `session_ref` (views are audited once per session).
    pub fn in_session(mut self, session_ref: Uuid) -> Self {
        self.session_ref = Some(session_ref);
        self
    }

    /// The clinic the actor works at, if they are staff.
    pub fn clinic(&self) -> Option<ClinicId> {
        self.user.clinic_id.filter(|_| self.user.has_role(Role::Staff))
    }

    /// Today in the actor's time zone.
    pub fn today(&self) -> Date {
        clock::today(self.user.time_zone.as_deref())
    }

    /// The actor's time zone, if known.
    pub fn zone(&self) -> Option<&str> {
        self.user.time_zone.as_deref()
    }

    /// An audit event by this actor.
    pub fn event(&self, action: Action) -> Event {
        let event = Event::new(action, Some(self.user.id), self.client_addr);
        Event {
            session_ref: self.session_ref,
            ..event
        }
    }

    /// Refuses (and audits) unless the actor holds `role`.
    pub async fn require_role(&self, pool: &PgPool, role: Role) -> Result<()> {
        if self.user.has_role(role) {
            return Ok(());
        }
        audit::record(
            pool,
            self.event(Action::AccessDenied)
                .detail(json!({ "needed_role": role.as_str() })),
        )
        .await?;
        Err(Error::Forbidden(format!(
            "This needs the {} role.",
            role.label().to_lowercase()
        )))
    }
}

/// What an operation on a pet needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// See the pet, its records and documents.
    Read,
    /// Manage the pet: edit, archive, share, read its access history (owners).
    Own,
    /// Write medical records and attach files (staff of a clinic the pet is shared with).
    WriteRecords,
}

impl Need {
    fn as_str(self) -> &'static str {
        match self {
            Need::Read => "read",
            Need::Own => "own",
            Need::WriteRecords => "write_records",
        }
    }
}

/// What `actor` may do with `pet` right now; `None` if nothing (or no such pet).
pub async fn pet_permissions(pool: &PgPool, actor: &Actor, pet: PetId) -> Result<Option<PetPermissions>> {
    let row = sqlx::query!(
        r#"
        select coalesce(p.owner_id = $2, false) as "owner!",
               (select a.clinic_id from pet_clinic_access a
                where a.pet_id = p.id and a.clinic_id = $3 and a.revoked_at is null) as "clinic?: ClinicId"
        from pets p
        where p.id = $1
        "#,
        pet as PetId,
        actor.user.id as crate::domain::UserId,
        actor.clinic() as Option<ClinicId>,
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.and_then(|row| {
        let permissions = PetPermissions {
            owner: row.owner,
            clinic: row.clinic,
        };
        (permissions.owner || permissions.clinic.is_some()).then_some(permissions)
    }))
}

/// The actor's permissions on `pet` if they cover `need`; otherwise audits the attempt and fails with
/// [`Error::NotFound`] (no access at all) or [`Error::Forbidden`] (may see, may not do this).
pub async fn require_pet(pool: &PgPool, actor: &Actor, pet: PetId, need: Need) -> Result<PetPermissions> {
    let permissions = pet_permissions(pool, actor, pet).await?;
    let allowed = match (permissions, need) {
        (Some(_), Need::Read) => true,
        (Some(p), Need::Own) => p.owner,
        (Some(p), Need::WriteRecords) => p.clinic.is_some(),
        (None, _) => false,
    };
    if allowed {
        return Ok(permissions.expect("allowed implies permissions"));
    }
    audit::record(
        pool,
        actor
            .event(Action::AccessDenied)
            .target("pet", pet.0)
            .pet(pet)
            .detail(json!({ "needed": need.as_str() })),
    )
    .await?;
    Err(match (permissions, need) {
        (None, _) => Error::NotFound,
        (Some(_), Need::Own) => Error::Forbidden("Only the pet's owner can do this.".to_owned()),
        (Some(_), _) => {
            Error::Forbidden("Only staff of a clinic the pet is shared with can do this.".to_owned())
        }
    })
}

/// Inside a transaction: whether `pet` is still shared with `clinic`, locking the share so a revocation
/// waits until the transaction ends (so nothing is written on a share revoked a moment ago).
pub async fn lock_live_share(tx: &mut sqlx::PgConnection, pet: PetId, clinic: ClinicId) -> Result<bool> {
    let live = sqlx::query_scalar!(
        r#"select 1 as "one!" from pet_clinic_access
           where pet_id = $1 and clinic_id = $2 and revoked_at is null for share"#,
        pet as PetId,
        clinic as ClinicId,
    )
    .fetch_optional(&mut *tx)
    .await?;
    Ok(live.is_some())
}

/// Inside a transaction: whether `owner` still owns `pet`, locking the pet row.
pub async fn lock_ownership(
    tx: &mut sqlx::PgConnection,
    pet: PetId,
    owner: crate::domain::UserId,
) -> Result<bool> {
    let owns = sqlx::query_scalar!(
        r#"select 1 as "one!" from pets where id = $1 and owner_id = $2 for share"#,
        pet as PetId,
        owner as crate::domain::UserId,
    )
    .fetch_optional(&mut *tx)
    .await?;
    Ok(owns.is_some())
}
