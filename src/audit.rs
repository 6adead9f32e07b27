//! The audit trail: who did what to which thing, from where. Append-only (a trigger refuses updates and
//! deletes).

use crate::domain::UserId;
use serde_json::Value;
use sqlx::PgExecutor;
use std::net::IpAddr;
use uuid::Uuid;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A user signed in.
    SignIn,
    /// Someone failed to sign in (wrong password, unknown e-mail, disabled account, rate limited).
    SignInFailed,
    /// A user signed out.
    SignOut,
    /// An owner registered.
    Register,
    /// An admin account was created from the command line.
    CreateAdmin,
    /// A user's account was disabled.
    DisableUser,
}

impl Action {
    /// The name stored in the trail.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::SignIn => "sign_in",
            Action::SignInFailed => "sign_in_failed",
            Action::SignOut => "sign_out",
            Action::Register => "register",
            Action::CreateAdmin => "create_admin",
            Action::DisableUser => "disable_user",
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
    /// The kind of thing acted on (`user`, `pet`, ...).
    pub target_kind: Option<&'static str>,
    /// The thing acted on.
    pub target_id: Option<Uuid>,
    /// Where the request came from.
    pub client_addr: Option<IpAddr>,
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
            client_addr,
            detail: Value::Object(Default::default()),
        }
    }

    /// The event, about `id` of kind `kind`.
    pub fn target(mut self, kind: &'static str, id: Uuid) -> Self {
        self.target_kind = Some(kind);
        self.target_id = Some(id);
        self
    }

    /// The event, with `detail`.
    pub fn detail(mut self, detail: Value) -> Self {
        self.detail = detail;
        self
    }
}

/// Appends `event` to the trail.
pub async fn record(executor: impl PgExecutor<'_>, event: Event) -> sqlx::Result<()> {
    let client_addr = event.client_addr.map(ipnet::IpNet::from);
    sqlx::query!(
        r#"
        insert into audit_events (id, actor_id, action, target_kind, target_id, client_addr, detail)
        values ($1, $2, $3, $4, $5, $6, $7)
        "#,
        Uuid::now_v7(),
        event.actor as Option<UserId>,
        event.action.as_str(),
        event.target_kind,
        event.target_id,
        client_addr,
        event.detail,
    )
    .execute(executor)
    .await?;
    Ok(())
}
