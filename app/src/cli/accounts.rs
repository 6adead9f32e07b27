//! `create-admin`, `create-user`, `reset-2fa`: accounts made or mended by an operator, each audited.

use super::{CliError, NewUserRole, say};
use pawfile::{
    auth::{self, NewUser, PasswordHasher},
    config::DatabaseSettings,
    db,
    domain::{DisplayName, Email, NewPassword, Role, Roles},
};
use secrecy::{ExposeSecret, SecretString};
use std::io::BufRead;

/// `create-admin`: an administrator account (the first one, or another).
pub async fn create_admin(
    database: DatabaseSettings,
    email: String,
    name: String,
    password_stdin: bool,
) -> Result<(), CliError> {
    let user = NewUser {
        email: Email::parse(&email).map_err(|err| CliError::Invalid(format!("--email: {err}")))?,
        display_name: DisplayName::parse(&name).map_err(|err| CliError::Invalid(format!("--name: {err}")))?,
        password: read_new_password(password_stdin, &[&email, &name])?,
        roles: Roles::new([Role::Admin]),
        clinic_id: None,
    };
    let pool = database.connect().await?;
    db::migrate(&pool).await?;
    let id = auth::create_user(&pool, &PasswordHasher::for_this_machine(), user).await?;
    pawfile::audit::record(
        &pool,
        pawfile::audit::Event::new(pawfile::audit::Action::CreateAdmin, None, None).target("user", id.0),
    )
    .await?;
    say(&format!("Created administrator {email} ({id})."));
    Ok(())
}

/// `create-user`: an owner or staff account whose address counts as confirmed.
pub async fn create_user(
    database: DatabaseSettings,
    email: String,
    name: Option<String>,
    role: NewUserRole,
    clinic: Option<String>,
    password_stdin: bool,
) -> Result<(), CliError> {
    let name = name.unwrap_or_else(|| email.split('@').next().unwrap_or_default().to_owned());
    let email_address = Email::parse(&email).map_err(|err| CliError::Invalid(format!("--email: {err}")))?;
    let display_name =
        DisplayName::parse(&name).map_err(|err| CliError::Invalid(format!("--name: {err}")))?;
    let pool = database.connect().await?;
    db::migrate(&pool).await?;
    let clinic_id = match (role, clinic) {
        (NewUserRole::Staff, Some(clinic)) => Some(find_clinic(&pool, &clinic).await?),
        (NewUserRole::Owner, Some(_)) => {
            return Err(CliError::Invalid(
                "--clinic is only for staff accounts".to_owned(),
            ));
        }
        (_, None) => None,
    };
    let user = NewUser {
        email: email_address,
        display_name,
        password: read_new_password(password_stdin, &[&email, &name])?,
        roles: Roles::new([match role {
            NewUserRole::Owner => Role::Owner,
            NewUserRole::Staff => Role::Staff,
        }]),
        clinic_id,
    };
    let id = auth::create_user(&pool, &PasswordHasher::for_this_machine(), user).await?;
    let action = match role {
        NewUserRole::Owner => pawfile::audit::Action::Register,
        NewUserRole::Staff => pawfile::audit::Action::CreateStaff,
    };
    pawfile::audit::record(
        &pool,
        pawfile::audit::Event::new(action, None, None).target("user", id.0),
    )
    .await?;
    say(&format!(
        "Created {} account {email} ({id}).",
        match role {
            NewUserRole::Owner => "owner",
            NewUserRole::Staff => "staff",
        }
    ));
    Ok(())
}

/// `reset-2fa`: someone's second factor off, to be set up again at their next sign-in.
pub async fn reset_two_factor(database: DatabaseSettings, email: String) -> Result<(), CliError> {
    let email = Email::parse(&email).map_err(|err| CliError::Invalid(format!("--email: {err}")))?;
    let pool = database.connect().await?;
    db::migrate(&pool).await?;
    match auth::two_factor::reset_by_email(&pool, &email).await {
        Ok(id) => {
            say(&format!(
                "Two-factor sign-in of {email} ({id}) is off; it is set up again at the next sign-in."
            ));
            Ok(())
        }
        Err(pawfile::error::Error::NotFound) => {
            Err(CliError::Invalid(format!("--email: no account uses {email}")))
        }
        Err(err) => Err(err.into()),
    }
}

fn read_new_password(from_stdin: bool, context: &[&str]) -> Result<NewPassword, CliError> {
    let password: SecretString = if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        SecretString::from(line.trim_end_matches(['\r', '\n']).to_owned())
    } else {
        let first = rpassword::prompt_password("Password for the new administrator: ")?;
        let second = rpassword::prompt_password("Repeat the password: ")?;
        if first != second {
            return Err(CliError::Invalid("the passwords differ".to_owned()));
        }
        SecretString::from(first)
    };
    NewPassword::parse_for(password.expose_secret(), context)
        .map_err(|err| CliError::Invalid(err.to_string()))
}

/// The clinic named `clinic` (case-insensitive) or with that id.
async fn find_clinic(pool: &sqlx::PgPool, clinic: &str) -> Result<pawfile::domain::ClinicId, CliError> {
    let by_id = clinic.trim().parse::<uuid::Uuid>().ok();
    let found: Vec<uuid::Uuid> = sqlx::query_scalar(
        "select id from clinics where id = $1 or lower(name) = lower($2) order by name limit 2",
    )
    .bind(by_id)
    .bind(clinic.trim())
    .fetch_all(pool)
    .await
    .map_err(|err| CliError::Invalid(format!("--clinic: {err}")))?;
    match found.as_slice() {
        [id] => Ok(pawfile::domain::ClinicId(*id)),
        [] => Err(CliError::Invalid(format!(
            "--clinic: no clinic is named {clinic:?}"
        ))),
        _ => Err(CliError::Invalid(format!(
            "--clinic: more than one clinic is named {clinic:?}; give its id"
        ))),
    }
}
