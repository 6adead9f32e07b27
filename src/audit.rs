//! The audit trail: who did what to which thing, from where. Append-only (a trigger refuses updates and
//! deletes). Owners read their pets' access history from it; admins read and filter all of it.

use crate::{
    clock::localize,
    domain::{AuditEntry, AuditPage, PetId, UserId},
    error::Result,
};
use serde_json::Value;
use sqlx::{PgExecutor, PgPool};
use std::net::IpAddr;
use time::OffsetDateTime;
use uuid::Uuid;

macro_rules! actions {
    ($($(#[$doc:meta])* $variant:ident => $name:literal, $label:literal;)*) => {
        /// What happened.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Action {
            $($(#[$doc])* $variant,)*
        }

        impl Action {
            /// Every action.
            pub const ALL: &[Action] = &[$(Action::$variant,)*];

            /// The name stored in the trail.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Action::$variant => $name,)*
                }
            }

            /// The action in words, after the actor's name.
            pub fn label(self) -> &'static str {
                match self {
                    $(Action::$variant => $label,)*
                }
            }

            /// The stored name back to an action.
            pub fn from_name(name: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|action| action.as_str() == name)
            }
        }
    };
}

actions! {
    /// A user signed in.
    SignIn => "sign_in", "signed in";
    /// Someone failed to sign in (wrong password, unknown e-mail, disabled account, rate limited).
    SignInFailed => "sign_in_failed", "failed to sign in";
    /// A user signed out.
    SignOut => "sign_out", "signed out";
    /// An owner registered.
    Register => "register", "registered";
    /// An admin account was created from the command line.
    CreateAdmin => "create_admin", "was made an administrator";
    /// A user's account was disabled.
    DisableUser => "disable_user", "disabled an account";
    /// A password was changed.
    ChangePassword => "change_password", "changed their password";
    /// Two-factor sign-in was turned on.
    EnableTwoFactor => "enable_2fa", "turned on two-factor sign-in";
    /// Two-factor sign-in was turned off by its owner.
    DisableTwoFactor => "disable_2fa", "turned off two-factor sign-in";
    /// New recovery codes replaced the old ones.
    RenewRecoveryCodes => "renew_recovery_codes", "made new two-factor recovery codes";
    /// Someone's second factor was reset (an admin, or `pawfile reset-2fa`).
    ResetTwoFactor => "reset_2fa", "reset a second factor";
    /// An owner asked for their account to be deleted (after the grace period).
    RequestDeletion => "request_deletion", "asked for their account to be deleted";
    /// Signing in cancelled a pending deletion.
    CancelDeletion => "cancel_deletion", "cancelled their account's deletion by signing in";
    /// An account was deleted: its uploads purged, the person's name and address replaced.
    DeleteAccount => "delete_account", "deleted an account after its grace period";
    /// A password was reset through an e-mailed link.
    ResetPassword => "reset_password", "reset their password with an e-mailed link";
    /// A clinic was created.
    CreateClinic => "create_clinic", "created a clinic";
    /// A staff account was created.
    CreateStaff => "create_staff", "created a staff account";
    /// A member of staff was invited by e-mail.
    InviteStaff => "invite_staff", "invited a member of staff";
    /// A pet was added by its owner.
    CreatePet => "create_pet", "added the pet";
    /// A pet's details were changed.
    UpdatePet => "update_pet", "changed the pet's details";
    /// A pet was archived.
    ArchivePet => "archive_pet", "archived the pet";
    /// A pet was restored from the archive.
    RestorePet => "restore_pet", "restored the pet from the archive";
    /// The owner picked the photo shown for the pet.
    SetProfilePhoto => "set_profile_photo", "chose the pet's photo";
    /// A pet page was opened.
    ViewPet => "view_pet", "viewed the pet";
    /// A pet was shared with a clinic.
    SharePet => "share_pet", "shared the pet with a clinic";
    /// A share was revoked.
    RevokeShare => "revoke_share", "revoked a clinic's access";
    /// A clinic registered a walk-in patient.
    RegisterWalkIn => "register_walk_in", "registered the pet as a walk-in patient";
    /// A claim code was issued.
    IssueClaimCode => "issue_claim_code", "issued a claim code";
    /// An owner claimed a walk-in patient.
    ClaimPet => "claim_pet", "took the pet into their account";
    /// A claim code was refused.
    ClaimFailed => "claim_failed", "tried an invalid claim code";
    /// A medical record was created.
    CreateRecord => "create_record", "wrote a medical record";
    /// A medical record was changed.
    UpdateRecord => "update_record", "edited a medical record";
    /// A medical record was opened.
    ViewRecord => "view_record", "viewed a medical record";
    /// Searched the text of medical records (the count of results is kept, never the words).
    SearchRecords => "search_records", "searched medical records";
    /// A request was refused by the access rules.
    AccessDenied => "access_denied", "was denied access";
    /// Files were uploaded.
    UploadDocument => "upload_document", "uploaded a document";
    /// A document was shown in the browser.
    ViewDocument => "view_document", "viewed a document";
    /// A document was downloaded.
    DownloadDocument => "download_document", "downloaded a document";
    /// A document went to the trash.
    TrashDocument => "trash_document", "moved a document to the trash";
    /// A document came back from the trash.
    RestoreDocument => "restore_document", "restored a document from the trash";
    /// A document was purged from the trash (by the background task).
    PurgeDocument => "purge_document", "purged a document from the trash";
    /// A pet's whole history was exported.
    ExportPet => "export_pet", "exported the pet's history";
    /// A backup run was started (by an admin, the command line, the schedule or start-up).
    StartBackup => "start_backup", "started a backup";
    /// Old backup snapshots were pruned.
    PruneBackups => "prune_backups", "pruned old backups";
    /// The database and files were restored from a backup.
    RestoreBackup => "restore_backup", "restored from a backup";
    /// Documents were brought back from a backup into their pet's trash.
    RestoreFromBackup => "restore_from_backup", "brought a document back from a backup";
    /// A restore drill ran.
    BackupDrill => "backup_drill", "ran a restore drill";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_action_list_matches_the_actions() {
        let names: Vec<&str> = Action::ALL.iter().map(|action| action.as_str()).collect();
        assert_eq!(names, crate::domain::AUDIT_ACTIONS);
        for action in Action::ALL {
            assert_eq!(Action::from_name(action.as_str()), Some(*action));
        }
    }
}

/// One entry of the trail.
#[derive(Debug, Clone)]
pub struct Event {
    /// Who acted (none for an anonymous attempt).
    pub actor: Option<UserId>,
    /// What they did.
    pub action: Action,
    /// The kind of thing acted on (`user`, `pet`, `record`, ...).
    pub target_kind: Option<&'static str>,
    /// The thing acted on.
    pub target_id: Option<Uuid>,
    /// The pet concerned, if any.
    pub pet_id: Option<PetId>,
    /// Where the request came from.
    pub client_addr: Option<IpAddr>,
    /// The sign-in it came through, if any (an opaque reference, not the session id).
    pub session_ref: Option<Uuid>,
    /// Anything else worth keeping (never secrets, never medical content).
    pub detail: Value,
}

impl Event {
    /// An event with no target and no detail.
    pub fn new(action: Action, actor: Option<UserId>, client_addr: Option<IpAddr>) -> Self {
        Self {
            actor,
            action,
            target_kind: None,
            target_id: None,
            pet_id: None,
            client_addr,
            session_ref: None,
            detail: Value::Object(Default::default()),
        }
    }

    /// The event, about `id` of kind `kind`.
    pub fn target(mut self, kind: &'static str, id: Uuid) -> Self {
        self.target_kind = Some(kind);
        self.target_id = Some(id);
        self
    }

    /// The event, concerning `pet`.
    pub fn pet(mut self, pet: PetId) -> Self {
        self.pet_id = Some(pet);
        self
    }

    /// The event, with `detail`.
    pub fn detail(mut self, detail: Value) -> Self {
        self.detail = detail;
        self
    }
}

/// Appends `event` to the trail.
#[tracing::instrument(
    level = "debug",
    skip_all,
    fields(
        action = event.action.as_str(),
        actor = event.actor.map(tracing::field::display),
        target = event.target_id.map(tracing::field::display),
        pet = event.pet_id.map(tracing::field::display),
    )
)]
pub async fn record(executor: impl PgExecutor<'_>, event: Event) -> Result<()> {
    let client_addr = event.client_addr.map(ipnet::IpNet::from);
    sqlx::query!(
        r#"
        insert into audit_events
            (id, actor_id, action, target_kind, target_id, pet_id, client_addr, session_ref, detail)
        values ($1, $2, $3, $4, $5, $6, $7, $8, $9)
        "#,
        Uuid::now_v7(),
        event.actor as Option<UserId>,
        event.action.as_str(),
        event.target_kind,
        event.target_id,
        event.pet_id as Option<PetId>,
        client_addr,
        event.session_ref,
        event.detail,
    )
    .execute(executor)
    .await?;
    Ok(())
}

/// How long (seconds) a repeated view of the same thing in the same session counts as the same view.
pub const VIEW_WINDOW_SECONDS: f64 = 600.0;

/// Records a view, once per session (or, without one, per actor), action and target within
/// [`VIEW_WINDOW_SECONDS`], so reloads and a PDF viewer's many (concurrent) range requests make one
/// entry, while another sign-in of the same user makes its own.
#[tracing::instrument(
    level = "debug",
    skip_all,
    fields(
        action = event.action.as_str(),
        actor = event.actor.map(tracing::field::display),
        target = event.target_id.map(tracing::field::display),
        pet = event.pet_id.map(tracing::field::display),
    )
)]
pub async fn record_view(pool: &PgPool, event: Event) -> Result<()> {
    let key = format!(
        "view:{}:{}:{}:{}",
        event.session_ref.map(|id| id.to_string()).unwrap_or_default(),
        event.actor.map(|id| id.0.to_string()).unwrap_or_default(),
        event.action.as_str(),
        event.target_id.map(|id| id.to_string()).unwrap_or_default(),
    );
    let client_addr = event.client_addr.map(ipnet::IpNet::from);
    // One statement: claim the window (a new mark, or one whose window has ended) and, only if this
    // request claimed it, write the entry. Concurrent requests for the same view wait on the mark's key
    // until the first commits, then find its window open and write nothing.
    sqlx::query!(
        r#"
        with claimed as (
            insert into audit_view_marks (key, until)
            values ($1, clock_timestamp() + make_interval(secs => $2::float8))
            on conflict (key) do update set until = excluded.until
                where audit_view_marks.until <= clock_timestamp()
            returning 1
        )
        insert into audit_events
            (id, actor_id, action, target_kind, target_id, pet_id, client_addr, session_ref, detail)
        select $3, $4, $5, $6, $7, $8, $9, $10, $11
        where exists (select 1 from claimed)
        "#,
        key,
        VIEW_WINDOW_SECONDS,
        Uuid::now_v7(),
        event.actor as Option<UserId>,
        event.action.as_str(),
        event.target_kind,
        event.target_id,
        event.pet_id as Option<PetId>,
        client_addr,
        event.session_ref,
        event.detail,
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Deletes the marks of view windows that have ended (see [`record_view`]); returns how many.
pub async fn prune_view_marks(pool: &PgPool) -> Result<u64> {
    Ok(sqlx::query!("delete from audit_view_marks where until <= now()")
        .execute(pool)
        .await?
        .rows_affected())
}

/// What to look for in the trail.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only this actor (by e-mail, case-insensitive substring).
    pub actor: Option<String>,
    /// Only this action.
    pub action: Option<Action>,
    /// Only events concerning this pet.
    pub pet: Option<PetId>,
    /// From this moment.
    pub from: Option<OffsetDateTime>,
    /// Before this moment.
    pub until: Option<OffsetDateTime>,
}

/// Entries per page of the admin's audit view.
pub const PAGE_SIZE: i64 = 50;

/// One page (from 1) of the trail matching `filter`, newest first, times in `zone`. With
/// `with_private` the actor's e-mail and client address are included (admins only).
#[tracing::instrument(
    level = "debug",
    skip_all,
    fields(page = page, action = filter.action.map(Action::as_str), pet = filter.pet.map(tracing::field::display))
)]
pub async fn search(
    pool: &PgPool,
    filter: &Filter,
    page: u32,
    zone: Option<&str>,
    with_private: bool,
) -> Result<AuditPage> {
    let page = page.max(1);
    // A substring of the e-mail, with LIKE's wildcards taken literally.
    let actor_pattern = filter
        .actor
        .as_deref()
        .map(str::trim)
        .filter(|actor| !actor.is_empty())
        .map(|actor| crate::db::contains_pattern(&actor.to_lowercase()));
    let rows = sqlx::query!(
        r#"
        select e.at, e.action, e.target_kind, e.target_id, e.pet_id as "pet_id: PetId",
               host(e.client_addr) as client_addr, u.display_name as "actor?", u.email as "actor_email?",
               c.name as "actor_clinic?"
        from audit_events e
        left join users u on u.id = e.actor_id
        left join clinics c on c.id = u.clinic_id
        where ($1::text is null or u.email like $1)
          and ($2::text is null or e.action = $2)
          and ($3::uuid is null or e.pet_id = $3)
          and ($4::timestamptz is null or e.at >= $4)
          and ($5::timestamptz is null or e.at < $5)
        order by e.at desc, e.id desc
        limit $6 offset $7
        "#,
        actor_pattern.as_deref(),
        filter.action.map(Action::as_str),
        filter.pet as Option<PetId>,
        filter.from,
        filter.until,
        PAGE_SIZE + 1,
        (i64::from(page) - 1) * PAGE_SIZE,
    )
    .fetch_all(pool)
    .await?;
    let has_more = rows.len() as i64 > PAGE_SIZE;
    let entries = rows
        .into_iter()
        .take(PAGE_SIZE as usize)
        .map(|row| AuditEntry {
            at: localize(row.at, zone),
            actor: row.actor,
            actor_email: row.actor_email.filter(|_| with_private),
            actor_clinic: row.actor_clinic,
            action_label: Action::from_name(&row.action)
                .map_or_else(|| row.action.clone(), |a| a.label().to_owned()),
            action: row.action,
            target_kind: row.target_kind,
            target_id: row.target_id,
            pet_id: row.pet_id,
            client_addr: row.client_addr.filter(|_| with_private),
        })
        .collect();
    Ok(AuditPage {
        entries,
        page,
        has_more,
    })
}
