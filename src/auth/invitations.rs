//! Staff invitations: an admin names the person, their address and their clinic; the person gets a
//! link (single use, 7 days) and chooses their own password. No admin ever sees or sets it.

use super::{Account, PasswordHasher, insert_user};
use crate::{
    access::Actor,
    audit::{self, Action, Event},
    domain::{ClinicId, DisplayName, Email, InvalidInput, InvitationView, Role, Roles, UserId},
    error::{Error, Result},
    mail::{self, Mail, tokens},
};
use sqlx::PgPool;
use std::net::IpAddr;

/// How long an invitation works.
pub const INVITATION_VALID_FOR: time::Duration = time::Duration::days(7);

/// What an admin fills in to invite a member of staff.
#[derive(Debug, Clone)]
pub struct StaffInvitation {
    /// Their address (the invitation goes there; it becomes their sign-in).
    pub email: Email,
    /// Their name.
    pub display_name: DisplayName,
    /// Their clinic.
    pub clinic_id: ClinicId,
    /// Whether they also administer Pawfile.
    pub also_admin: bool,
}

/// What a used, expired or unknown invitation link answers.
pub const INVITATION_NOT_VALID: &str = "This invitation does not work any more: it was used already, replaced by a \
     newer one, or is older than 7 days. Ask your administrator to invite you again.";

/// Invites a member of staff (admins): mails them a link to choose their password. A newer invitation
/// to the same address replaces any earlier one.
#[tracing::instrument(skip_all, fields(actor = %actor.user.id))]
pub async fn invite_staff(pool: &PgPool, actor: &Actor, invitation: StaffInvitation) -> Result<()> {
    actor.require_role(pool, Role::Admin).await?;
    let clinic = sqlx::query_scalar!(
        "select name from clinics where id = $1",
        invitation.clinic_id as ClinicId
    )
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| InvalidInput::new("clinic_id", "Choose a clinic from the list."))?;
    let taken = sqlx::query_scalar!(
        r#"select exists (select from users where email = $1) as "taken!""#,
        invitation.email.as_str()
    )
    .fetch_one(pool)
    .await?;
    if taken {
        return Err(InvalidInput::new("email", "An account with this address exists already.").into());
    }
    let token = tokens::new_token();
    let mut tx = pool.begin().await?;
    sqlx::query!(
        "delete from staff_invitations where email = $1 and accepted_at is null",
        invitation.email.as_str()
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        r#"
        insert into staff_invitations (token_hash, email, display_name, clinic_id, also_admin, invited_by, expires_at)
        values ($1, $2, $3, $4, $5, $6, now() + $7::float8 * interval '1 second')
        "#,
        tokens::hash(&token),
        invitation.email.as_str(),
        invitation.display_name.as_str(),
        invitation.clinic_id as ClinicId,
        invitation.also_admin,
        actor.user.id as UserId,
        INVITATION_VALID_FOR.as_seconds_f64(),
    )
    .execute(&mut *tx)
    .await?;
    let mail = Mail::StaffInvitation {
        name: invitation.display_name.as_str().to_owned(),
        clinic,
        invited_by: actor.user.display_name.clone(),
        token,
    };
    mail::enqueue(&mut *tx, &invitation.email, &mail).await?;
    audit::record(
        &mut *tx,
        actor
            .event(Action::InviteStaff)
            .target("clinic", invitation.clinic_id.0),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The invitation a link carries, if it still works.
pub async fn invitation(pool: &PgPool, token: &str) -> Result<InvitationView> {
    sqlx::query_as!(
        InvitationView,
        r#"
        select i.email, i.display_name, c.name as clinic_name
        from staff_invitations i join clinics c on c.id = i.clinic_id
        where i.token_hash = $1 and i.accepted_at is null and i.expires_at > now()
        "#,
        tokens::hash(token),
    )
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| InvalidInput::new("token", INVITATION_NOT_VALID).into())
}

/// Accepts an invitation: creates the staff account with the password its owner chose. Works once.
#[tracing::instrument(skip_all)]
pub async fn accept_invitation(
    pool: &PgPool,
    hasher: &PasswordHasher,
    token: &str,
    password: &str,
    client_addr: Option<IpAddr>,
) -> Result<UserId> {
    let view = invitation(pool, token).await?;
    let password = hasher
        .check_new(password, &[&view.email, &view.display_name])
        .await?;
    let password_hash = hasher.hash(password.expose()).await;
    let mut tx = pool.begin().await?;
    let accepted = sqlx::query!(
        r#"
        update staff_invitations set accepted_at = now()
        where token_hash = $1 and accepted_at is null and expires_at > now()
        returning email, display_name, clinic_id as "clinic_id: ClinicId", also_admin, invited_by as "invited_by: UserId"
        "#,
        tokens::hash(token),
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| InvalidInput::new("token", INVITATION_NOT_VALID))?;
    let (email, display_name) = (
        Email::parse(&accepted.email)?,
        DisplayName::parse(&accepted.display_name)?,
    );
    let mut roles = vec![Role::Staff];
    if accepted.also_admin {
        roles.push(Role::Admin);
    }
    let roles = Roles::new(roles);
    let account = Account {
        email: &email,
        display_name: &display_name,
        roles: &roles,
        clinic_id: Some(accepted.clinic_id),
    };
    let id = match insert_user(&mut tx, &password_hash, account).await {
        Ok(id) => id,
        Err(Error::Conflict(_)) => {
            return Err(
                InvalidInput::new("token", "An account with this address exists already: sign in.").into(),
            );
        }
        Err(err) => return Err(err),
    };
    sqlx::query!(
        "update staff_invitations set accepted_user = $2 where token_hash = $1",
        tokens::hash(token),
        id as UserId,
    )
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        Event::new(Action::CreateStaff, accepted.invited_by, client_addr).target("user", id.0),
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// Deletes invitations that expired unaccepted, and accepted ones after their week.
pub async fn prune(pool: &PgPool) -> Result<u64> {
    Ok(
        sqlx::query!("delete from staff_invitations where expires_at < now()")
            .execute(pool)
            .await?
            .rows_affected(),
    )
}
