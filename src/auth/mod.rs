//! Accounts: password hashing, registration, sign-in, and the checks every request makes on its session.

mod attempts;
mod invitations;
mod password;
mod registration;
mod reset;
pub mod two_factor;
mod users;

pub use attempts::Attempts;
pub use invitations::{
    INVITATION_NOT_VALID, INVITATION_VALID_FOR, StaffInvitation, accept_invitation, invitation, invite_staff,
};
pub use password::PasswordHasher;
pub use registration::{
    CHECK_YOUR_MAIL, Confirmation, LINK_NOT_VALID, Registration, VERIFICATION_VALID_FOR, Verified,
    WRONG_SIGN_UP_PASSWORD, register_owner, verify_email,
};
pub use reset::{
    RESET_LINK_NOT_VALID, RESET_REQUESTED, RESET_VALID_FOR, request_password_reset, reset_password,
};
pub use users::{
    Account, NewUser, SignInAttempt, SignInDeletion, SignInOutcome, WRONG_CREDENTIALS, cancel_on_sign_in,
    create_user, disable_user, insert_user, load_session_user, sign_in,
};

/// Deletes expired sign-up, password-reset and invitation links.
pub async fn prune_links(pool: &sqlx::PgPool) -> crate::error::Result<u64> {
    Ok(registration::prune(pool).await? + reset::prune(pool).await? + invitations::prune(pool).await?)
}
