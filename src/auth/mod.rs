//! Accounts: password hashing, registration, sign-in, and the checks every request makes on its session.

mod password;
mod users;

pub use password::PasswordHasher;
pub use users::{
    NewUser, Registration, SignInAttempt, SignInOutcome, WRONG_CREDENTIALS, create_user, disable_user,
    insert_user, load_session_user, register_owner, sign_in,
};
