//! People and places for core tests: clinics, owners, staff and admins, each as an [`Actor`].

use pawfile::{
    access::Actor,
    auth::{NewUser, PasswordHasher, create_user, load_session_user},
    domain::{
        ClinicId, ClinicName, DisplayName, Email, NewPassword, PetDetails, PetForm, PetId, Role, Roles,
    },
};
use sqlx::PgPool;
use std::sync::LazyLock;

pub static HASHER: LazyLock<PasswordHasher> = LazyLock::new(|| PasswordHasher::new(2));

pub async fn clinic(pool: &PgPool, name: &str) -> ClinicId {
    let id = ClinicId::new();
    sqlx::query("insert into clinics (id, name) values ($1, $2)")
        .bind(id.0)
        .bind(ClinicName::parse(name).unwrap().as_str())
        .execute(pool)
        .await
        .unwrap();
    id
}

pub async fn user(pool: &PgPool, email: &str, roles: &[Role], clinic: Option<ClinicId>) -> Actor {
    let id = create_user(
        pool,
        &HASHER,
        NewUser {
            email: Email::parse(email).unwrap(),
            display_name: DisplayName::parse(email.split('@').next().unwrap()).unwrap(),
            password: NewPassword::parse("correct horse battery").unwrap(),
            roles: Roles::new(roles.iter().copied()),
            clinic_id: clinic,
        },
    )
    .await
    .unwrap();
    Actor::new(load_session_user(pool, id, 0).await.unwrap().unwrap(), None)
}

pub async fn owner(pool: &PgPool, email: &str) -> Actor {
    user(pool, email, &[Role::Owner], None).await
}

pub async fn staff(pool: &PgPool, email: &str, clinic: ClinicId) -> Actor {
    user(pool, email, &[Role::Staff], Some(clinic)).await
}

pub fn pet_details(name: &str) -> PetDetails {
    PetDetails::parse(
        &PetForm {
            name: name.into(),
            species: "dog".into(),
            microchip: "276098106512345".into(),
            ..PetForm::default()
        },
        time::OffsetDateTime::now_utc().date(),
    )
    .unwrap()
}

pub async fn pet(pool: &PgPool, owner: &Actor, name: &str) -> PetId {
    pawfile::pets::create_pet(pool, owner, &pet_details(name))
        .await
        .unwrap()
}

/// How many audit events with `action` exist.
pub async fn audited(pool: &PgPool, action: &str) -> i64 {
    sqlx::query_scalar("select count(*) from audit_events where action = $1")
        .bind(action)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Follows the link of the newest sign-up mail queued for `email` with the password chosen at sign-up
/// (no sender runs in these tests, so the queued message still holds its token).
pub async fn confirm_sign_up(pool: &PgPool, email: &str, password: &str) -> pawfile::auth::Verified {
    let token: String = sqlx::query_scalar(
        "select message->>'token' from mail_outbox
         where recipient = $1 and kind = 'verify_address' order by created_at desc, id desc limit 1",
    )
    .bind(email)
    .fetch_one(pool)
    .await
    .expect("a queued sign-up mail");
    pawfile::auth::verify_email(
        pool,
        &PasswordHasher::new(1),
        &pawfile::rate_limit::AccountLimits::DEFAULT,
        pawfile::auth::Confirmation {
            token: &token,
            password,
            client_addr: None,
        },
    )
    .await
    .unwrap()
}

/// `id` as an [`Actor`] at its current session generation.
pub async fn actor_of(pool: &PgPool, id: pawfile::domain::UserId) -> Actor {
    let generation: i64 = sqlx::query_scalar("select session_generation from users where id = $1")
        .bind(id.0)
        .fetch_one(pool)
        .await
        .unwrap();
    Actor::new(
        load_session_user(pool, id, generation).await.unwrap().unwrap(),
        None,
    )
}
