//! Types shared by the server and the browser: ids, validated values, and the data server functions
//! take and return. Nothing here touches I/O, so it compiles to wasm.

mod admin;
mod documents;
mod email;
mod file_type;
mod flash;
mod home;
mod ids;
mod moment;
mod names;
mod password;
mod pets;
mod records;
mod roles;
mod user;

pub use admin::{
    AUDIT_ACTIONS, AuditEntry, AuditPage, BackupOverview, BackupPoint, BackupRun, BackupStatus,
    ClinicSummary, ClinicUsage, DailyUsage, Dashboard, IntegrityIssue, MailProblem, MailStatus,
    StorageReport, StoreStatus, UsagePoint, UserSummary,
};
pub use documents::{DocumentCategory, DocumentView, StorageUsage, UploadRules, parse_caption, size_label};
pub use email::Email;
pub use file_type::FileType;
pub use flash::Flash;
pub use home::{ClinicRecord, Home, PetCard, RecentPatient, StaffDesk, SystemGlance, age_label};
pub use ids::{ClinicId, DocumentId, PetId, RecordId, UserId};
pub use moment::Timestamp;
pub use names::{ClinicName, DisplayName};
pub use password::NewPassword;

/// Whether PostgreSQL can keep `text` in a text column: anything but U+0000 (NUL).
pub fn storable(text: &str) -> bool {
    !text.contains('\0')
}

/// What a field holding NUL is refused with.
pub const UNSTORABLE: &str =
    "This contains a character that cannot be stored (NUL, U+0000). Remove it and try again.";
pub use pets::{
    IssuedClaimCode, Microchip, OwnerContact, PetDetails, PetForm, PetPermissions, PetSummary, PetView, Sex,
    Share,
};
pub use records::{
    Highlight, RecordDetails, RecordForm, RecordHit, RecordKind, RecordRevision, RecordSummary, RecordView,
};
pub use roles::{Role, Roles};
pub use user::{InvitationView, SessionUser, TwoFactorEnrolment, TwoFactorStatus};

/// Why a value a person typed was refused: the message is meant for that person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidInput {
    /// The form field the message belongs next to.
    pub field: &'static str,
    /// What is wrong, in words a person understands.
    pub message: String,
}

impl InvalidInput {
    /// A refusal of `field` with `message`.
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}
