use super::{ClinicId, Email, Role, Roles, UserId};
use serde::{Deserialize, Serialize};

/// The signed-in user, as pages and server functions see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct SessionUser {
    /// Their account.
    pub id: UserId,
    /// Their sign-in address.
    pub email: Email,
    /// The name they are shown by.
    pub display_name: String,
    /// What they may do.
    pub roles: Roles,
    /// The clinic they work at, for staff.
    pub clinic_id: Option<ClinicId>,
    /// That clinic's name, for staff.
    pub clinic_name: Option<String>,
    /// Their time zone (IANA name), if they chose one or their browser told us.
    pub time_zone: Option<String>,
}

impl SessionUser {
    /// Whether the user holds `role`.
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.has(role)
    }
}

/// A staff invitation as its page shows it, before the password is chosen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct InvitationView {
    /// The address the account will have.
    pub email: String,
    /// The name the admin gave.
    pub display_name: String,
    /// The clinic.
    pub clinic_name: String,
}
