//! How long a sign-in lasts, and who must sign in with a second factor.

use super::parse_duration;
use clap::Args;
use std::time::Duration;

/// A role that must sign in with a second factor, or `none`.
fn parse_two_factor_role(value: &str) -> Result<Option<crate::domain::Role>, String> {
    use crate::domain::Role;
    match value.trim() {
        "none" | "" => Ok(None),
        "owner" => Ok(Some(Role::Owner)),
        "staff" => Ok(Some(Role::Staff)),
        "admin" => Ok(Some(Role::Admin)),
        other => Err(format!("{other:?}: expected owner, staff, admin or none")),
    }
}

/// Sessions and sign-in.
#[derive(Debug, Clone, Args)]
pub struct SessionSettings {
    /// A session ends after this long without a request (for example 30m, 2h).
    #[arg(long = "session-idle-timeout", env = "PAWFILE_SESSION_IDLE_TIMEOUT", default_value = "30m", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// A session ends this long after sign-in, active or not.
    #[arg(long = "session-absolute-timeout", env = "PAWFILE_SESSION_ABSOLUTE_TIMEOUT", default_value = "12h", value_parser = parse_duration)]
    pub absolute_timeout: Duration,
    /// Roles that must sign in with a second factor (a TOTP app), comma-separated, or `none`. Someone
    /// in such a role without one can only set it up until they have.
    #[arg(
        long = "require-two-factor",
        env = "PAWFILE_REQUIRE_TWO_FACTOR",
        value_delimiter = ',',
        default_value = "staff,admin",
        value_parser = parse_two_factor_role
    )]
    pub require_two_factor: Vec<Option<crate::domain::Role>>,
}

impl Default for SessionSettings {
    fn default() -> Self {
        super::defaults()
    }
}

impl SessionSettings {
    /// Whether one of `user`'s roles must sign in with a second factor.
    pub fn requires_two_factor(&self, user: &crate::domain::SessionUser) -> bool {
        self.require_two_factor
            .iter()
            .flatten()
            .any(|role| user.has_role(*role))
    }

    /// Whether `user` must have a second factor on and has not: then they may only set it up.
    pub fn needs_two_factor_setup(&self, user: &crate::domain::SessionUser) -> bool {
        !user.two_factor && self.requires_two_factor(user)
    }
}
