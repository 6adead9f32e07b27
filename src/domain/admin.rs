use super::{ClinicId, DocumentId, PetId, Roles, Timestamp, UserId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// A clinic, as lists show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct ClinicSummary {
    /// The clinic.
    pub id: ClinicId,
    /// Its name.
    pub name: String,
    /// How many enabled staff accounts it has (admins' view; 0 elsewhere).
    pub staff: i64,
}

/// An account, as the admin's user list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct UserSummary {
    /// The account.
    pub id: UserId,
    /// Sign-in address.
    pub email: String,
    /// Display name.
    pub display_name: String,
    /// Roles.
    pub roles: Roles,
    /// Clinic, for staff.
    pub clinic_name: Option<String>,
    /// Since when.
    pub created_at: Timestamp,
    /// Disabled since, if disabled.
    pub disabled_at: Option<Timestamp>,
}

/// One entry of the audit trail as shown to a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    /// When.
    pub at: Timestamp,
    /// Who (display name), if anyone signed in.
    pub actor: Option<String>,
    /// Their e-mail (admins' view only).
    pub actor_email: Option<String>,
    /// Their clinic, if staff.
    pub actor_clinic: Option<String>,
    /// The action's stored name (`record_viewed`, ...).
    pub action: String,
    /// The action in words (`viewed a record`).
    pub action_label: String,
    /// The kind of thing acted on.
    pub target_kind: Option<String>,
    /// The thing acted on.
    pub target_id: Option<Uuid>,
    /// The pet concerned.
    pub pet_id: Option<PetId>,
    /// The client address (admins' view only).
    pub client_addr: Option<String>,
}

/// A page of the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct AuditPage {
    /// The entries, newest first.
    pub entries: Vec<AuditEntry>,
    /// The page number, from 1.
    pub page: u32,
    /// Whether there is a next page.
    pub has_more: bool,
}

/// The names of every audited action, for filters (the server's `audit::Action` lists the same).
pub const AUDIT_ACTIONS: &[&str] = &[
    "sign_in",
    "sign_in_failed",
    "sign_out",
    "register",
    "create_admin",
    "disable_user",
    "change_password",
    "enable_2fa",
    "disable_2fa",
    "renew_recovery_codes",
    "reset_2fa",
    "request_deletion",
    "cancel_deletion",
    "delete_account",
    "reset_password",
    "create_clinic",
    "create_staff",
    "invite_staff",
    "create_pet",
    "update_pet",
    "archive_pet",
    "restore_pet",
    "set_profile_photo",
    "view_pet",
    "share_pet",
    "revoke_share",
    "register_walk_in",
    "issue_claim_code",
    "claim_pet",
    "claim_failed",
    "create_record",
    "update_record",
    "view_record",
    "search_records",
    "access_denied",
    "upload_document",
    "view_document",
    "download_document",
    "trash_document",
    "restore_document",
    "purge_document",
    "export_pet",
    "start_backup",
    "prune_backups",
    "restore_backup",
    "restore_from_backup",
    "backup_drill",
];

/// The mail queue as the admin page shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct MailStatus {
    /// Messages not sent yet (new, or waiting to be tried again).
    pub waiting: u64,
    /// Messages that failed: still being retried, or given up in the last 30 days. Newest first.
    pub problems: Vec<MailProblem>,
}

/// A message that could not be sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct MailProblem {
    /// To whom.
    pub recipient: String,
    /// Its subject.
    pub subject: String,
    /// Sends tried.
    pub attempts: i32,
    /// What the last try said.
    pub error: String,
    /// Given up (no more tries); otherwise it is tried again at `at`.
    pub given_up: bool,
    /// When it was given up, or when it is tried next (RFC 3339).
    pub at: String,
}

/// A document whose stored object failed the integrity check, as the admin page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct IntegrityIssue {
    /// The flagged document.
    pub document_id: DocumentId,
    /// The pet it belongs to.
    pub pet_id: PetId,
    /// What the check found (object missing, size or checksum differs).
    pub problem: String,
    /// When the check found it, in the viewer's time zone.
    pub checked_at: String,
}

/// Whether one bucket answers, as the admin page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct StoreStatus {
    /// The bucket's name.
    pub bucket: String,
    /// The S3 endpoint it lives at.
    pub endpoint: String,
    /// `None` when reachable; otherwise what is wrong.
    pub problem: Option<String>,
}

/// The state of the documents and backup stores, for admins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct StorageReport {
    /// The documents bucket.
    pub documents: StoreStatus,
    /// The backup bucket (separate credentials, maybe another provider).
    pub backups: StoreStatus,
    /// The backup store is an embedded endpoint on this machine: not a separate backup.
    pub backups_on_this_machine: bool,
}

/// A run's state, as admins see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BackupStatus {
    /// Under way.
    Running,
    /// Its manifest is stored and its row committed: a restorable snapshot.
    Complete,
    /// It stopped with an error.
    Failed,
    /// The process running it died.
    Interrupted,
    /// The server shut down while it ran.
    Cancelled,
}

impl BackupStatus {
    /// Reads the stored name (unknown names read as failed).
    pub fn parse(text: &str) -> Self {
        match text {
            "running" => Self::Running,
            "complete" => Self::Complete,
            "interrupted" => Self::Interrupted,
            "cancelled" => Self::Cancelled,
            _ => Self::Failed,
        }
    }
}

/// One backup run, for the admin page, the API and `backup list`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct BackupRun {
    /// The run's id (the snapshot id).
    pub id: Uuid,
    /// `running`, `complete`, `failed`, `interrupted` or `cancelled`.
    pub status: BackupStatus,
    /// What started it: `schedule`, `startup`, `admin`, `cli` or `restored` (read from a manifest).
    pub trigger: String,
    /// Who, for a run an admin started.
    pub triggered_by: Option<String>,
    /// When it started.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// When it ended.
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    /// Objects (files) done and to do.
    pub objects_done: i32,
    /// Objects in all.
    pub objects_total: i32,
    /// File bytes done.
    pub bytes_done: i64,
    /// File bytes in all.
    pub bytes_total: i64,
    /// Objects written by this run.
    pub objects_copied: i32,
    /// Catalogued objects referenced again.
    pub objects_reused: i32,
    /// Bytes written by this run (ciphertext).
    pub bytes_copied: i64,
    /// Plaintext size of the snapshot (tables and files).
    pub snapshot_bytes: i64,
    /// The recipients it was encrypted to ("none": unencrypted).
    pub recipients: String,
    /// Whether prune removed it.
    pub pruned: bool,
    /// Whether its manifest was found gone from the backup bucket (it cannot be restored then).
    #[serde(default)]
    pub manifest_missing: bool,
    /// What went wrong.
    pub error: Option<String>,
}

impl BackupStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Complete => "complete",
            Self::Failed => "failed",
            Self::Interrupted => "interrupted",
            Self::Cancelled => "cancelled",
        }
    }
}

/// The backup section of the admin page: the runs, the schedule, and what an admin must hear about.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct BackupOverview {
    /// Runs, newest first.
    pub runs: Vec<BackupRun>,
    /// The next scheduled run, if backups are scheduled.
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_run: Option<OffsetDateTime>,
    /// When the newest complete snapshot was taken.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_complete: Option<OffsetDateTime>,
    /// The newest drill, if any: when and whether it passed.
    pub last_drill: Option<(String, bool)>,
    /// A red banner: the last complete backup is older than 26 hours, or the last run failed.
    pub alarm: Option<String>,
    /// Warnings about the set-up (unencrypted, key beside the data, backups on this machine).
    pub warnings: Vec<String>,
    /// Objects in the backup bucket Pawfile refused to believe (unsigned or forged), as the background
    /// checks found them: `(name, why)`.
    #[serde(default)]
    pub refused: Vec<(String, String)>,
    /// Backup objects the daily re-read found altered or missing, until a backup stores them again:
    /// `(name, what is wrong)`.
    #[serde(default)]
    pub damaged: Vec<(String, String)>,
    /// The public key backup objects are signed with (a restore elsewhere needs it).
    #[serde(default)]
    pub signing_key: Option<String>,
}

/// One day of the installation's storage (the admin dashboard).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct DailyUsage {
    /// The day (UTC).
    pub day: time::Date,
    /// Bytes stored at the day's last recording (the trash included).
    pub stored_bytes: i64,
    /// Documents stored.
    pub documents: i64,
    /// Documents uploaded that day.
    pub uploads: i64,
}

/// A clinic's storage, day by day.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct ClinicUsage {
    /// The clinic's name.
    pub clinic: String,
    /// Its days, oldest first.
    pub days: Vec<UsagePoint>,
}

/// Bytes stored on a day.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct UsagePoint {
    /// The day (UTC).
    pub day: time::Date,
    /// Bytes stored.
    pub stored_bytes: i64,
}

/// A complete backup's size and duration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct BackupPoint {
    /// When it started.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// The snapshot's size in bytes.
    pub bytes: i64,
    /// How long it took, in seconds.
    pub seconds: f64,
}

/// The admin dashboard's figures, from the rows the server records (never a scan of the bucket).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct Dashboard {
    /// The installation's days, oldest first.
    pub total: Vec<DailyUsage>,
    /// Each clinic's days.
    pub per_clinic: Vec<ClinicUsage>,
    /// Complete backups, oldest first.
    pub backups: Vec<BackupPoint>,
    /// When the bucket was last compared with the database.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_reconcile: Option<OffsetDateTime>,
    /// Documents the integrity check flagged.
    pub flagged: i64,
    /// Documents re-hashed within the scrub period.
    pub scrubbed: i64,
    /// All documents.
    pub documents: i64,
    /// The backup banner, when the last run failed or the newest complete backup is too old.
    pub backup_alarm: Option<String>,
}
