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
    /// Whether they sign in with a second factor (a TOTP app).
    #[serde(default)]
    pub two_factor: bool,
    /// Whether their role requires a second factor they have not set up yet (then they may only set it
    /// up). Filled in by the server that knows the requirement.
    #[serde(default)]
    pub needs_two_factor_setup: bool,
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

/// What enrolling in two-factor sign-in shows: the QR code for an authenticator app, and the same key to
/// type in by hand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct TwoFactorEnrolment {
    /// The key in base32, as authenticator apps take it typed in.
    pub secret: String,
    /// The `otpauth://` URL the QR code holds.
    pub otpauth_url: String,
    /// The QR code as an SVG document, drawn on the server.
    pub qr_svg: String,
}

/// A person's two-factor sign-in, as their account page shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct TwoFactorStatus {
    /// Whether it is on.
    pub enabled: bool,
    /// Whether their role requires it (then they cannot work until it is on).
    pub required: bool,
    /// Unused recovery codes.
    pub recovery_codes_left: i64,
}
