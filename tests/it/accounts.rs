//! Accounts against a real Postgres: registration, sign-in, rate limits, session checks, the audit trail.

use pawfile::{
    auth::{
        PasswordHasher, Registration, SignInAttempt, SignInOutcome, disable_user, load_session_user,
        register_owner, sign_in,
    },
    db::{ExclusiveTask, MIGRATOR, run_exclusive},
    domain::{Role, UserId},
    error::Error,
    rate_limit,
    tasks::housekeeping_once,
};
use sqlx::PgPool;
use std::{net::IpAddr, sync::LazyLock};

static HASHER: LazyLock<PasswordHasher> = LazyLock::new(|| PasswordHasher::new(2));
const LIMITS: rate_limit::AccountLimits = rate_limit::AccountLimits::DEFAULT;
const ADDR: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 5));

fn registration<'a>(email: &'a str, name: &'a str, password: &'a str) -> Registration<'a> {
    Registration {
        email,
        display_name: name,
        password,
        claim_code: None,
        client_addr: Some(ADDR),
    }
}

/// Signs up and follows the mailed link.
async fn register(pool: &PgPool, email: &str) -> UserId {
    let queued = register_owner(
        pool,
        &HASHER,
        &LIMITS,
        registration(email, "Olivia Owner", "correct horse battery"),
    )
    .await
    .unwrap();
    assert!(queued);
    crate::fixtures::confirm_sign_up(pool, &email.to_lowercase(), "correct horse battery")
        .await
        .user_id
}

async fn attempt(pool: &PgPool, email: &str, password: &str) -> Result<SignInOutcome, Error> {
    sign_in(
        pool,
        &HASHER,
        &LIMITS,
        SignInAttempt {
            email,
            password,
            code: None,
            client_addr: Some(ADDR),
        },
    )
    .await
}

async fn audit_actions(pool: &PgPool) -> Vec<(String, Option<String>)> {
    sqlx::query!(r#"select action, detail->>'reason' as reason from audit_events order by at, id"#)
        .fetch_all(pool)
        .await
        .unwrap()
        .into_iter()
        .map(|row| (row.action, row.reason))
        .collect()
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn registered_owners_can_sign_in_with_their_password(pool: PgPool) {
    let id = register(&pool, "Olivia@Example.org").await;

    let outcome = attempt(&pool, "olivia@example.ORG", "correct horse battery")
        .await
        .unwrap();

    assert_eq!(
        outcome,
        SignInOutcome::SignedIn {
            user_id: id,
            generation: 0,
            deletion_cancelled: false,
        }
    );
    let user = load_session_user(&pool, id, 0).await.unwrap().unwrap();
    assert_eq!(user.email.as_str(), "olivia@example.org");
    assert!(user.has_role(Role::Owner) && !user.has_role(Role::Admin));
    assert_eq!(
        audit_actions(&pool).await,
        vec![("register".to_owned(), None), ("sign_in".to_owned(), None)]
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn signing_up_with_a_taken_address_mails_its_owner_and_creates_nothing(pool: PgPool) {
    register(&pool, "olivia@example.org").await;

    let queued = register_owner(
        &pool,
        &HASHER,
        &LIMITS,
        registration("OLIVIA@example.org", "Other", "another long password"),
    )
    .await
    .unwrap();

    assert!(queued);
    let kinds: Vec<String> =
        sqlx::query_scalar("select kind from mail_outbox where recipient = 'olivia@example.org' order by id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(kinds, ["verify_address", "already_registered"]);
    let (users, pending): (i64, i64) =
        sqlx::query_as("select (select count(*) from users), (select count(*) from pending_registrations)")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((users, pending), (1, 0));
    // A second confirmation of the same address (two sign-ups, two links) cannot make a second account.
    register_owner(
        &pool,
        &HASHER,
        &LIMITS,
        registration("anna@example.org", "Anna", "correct horse battery"),
    )
    .await
    .unwrap();
    register_owner(
        &pool,
        &HASHER,
        &LIMITS,
        registration("anna@example.org", "Anna Again", "correct horse battery"),
    )
    .await
    .unwrap();
    let tokens: Vec<String> = sqlx::query_scalar(
        "select message->>'token' from mail_outbox where recipient = 'anna@example.org' order by id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(tokens.len(), 2);
    let confirm = |token: &str| {
        let token = token.to_owned();
        let pool = pool.clone();
        async move {
            pawfile::auth::verify_email(
                &pool,
                &HASHER,
                &LIMITS,
                pawfile::auth::Confirmation {
                    token: &token,
                    password: "correct horse battery",
                    client_addr: None,
                },
            )
            .await
        }
    };
    confirm(&tokens[1]).await.unwrap();
    let err = confirm(&tokens[0]).await.unwrap_err();
    assert!(
        matches!(&err, Error::Invalid(invalid) if invalid.field == "token"),
        "{err:?}"
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn invalid_registrations_name_the_field(pool: PgPool) {
    for (email, name, password, field) in [
        ("nope", "Olivia", "correct horse battery", "email"),
        ("o@example.org", "  ", "correct horse battery", "display_name"),
        ("o@example.org", "Olivia", "short", "password"),
    ] {
        let err = register_owner(&pool, &HASHER, &LIMITS, registration(email, name, password))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Invalid(invalid) if invalid.field == field),
            "{err:?}"
        );
    }
    let count = sqlx::query_scalar!(r#"select count(*) as "n!" from users"#)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 0);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn wrong_password_and_unknown_email_get_the_same_answer(pool: PgPool) {
    register(&pool, "olivia@example.org").await;

    let wrong_password = attempt(&pool, "olivia@example.org", "wrong password!")
        .await
        .unwrap();
    let unknown_email = attempt(&pool, "nobody@example.org", "wrong password!")
        .await
        .unwrap();

    assert_eq!(wrong_password, unknown_email);
    assert!(matches!(wrong_password, SignInOutcome::Refused(_)));
    let actions = audit_actions(&pool).await;
    assert_eq!(
        actions[1],
        ("sign_in_failed".to_owned(), Some("wrong_password".to_owned()))
    );
    assert_eq!(
        actions[2],
        ("sign_in_failed".to_owned(), Some("unknown_email".to_owned()))
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn repeated_failures_lock_the_account_for_a_while(pool: PgPool) {
    register(&pool, "olivia@example.org").await;
    for _ in 0..rate_limit::AccountLimits::DEFAULT
        .sign_in_failures_per_account_and_address
        .max_hits
    {
        assert!(matches!(
            attempt(&pool, "olivia@example.org", "guess guess guess")
                .await
                .unwrap(),
            SignInOutcome::Refused(_)
        ));
    }

    // Even the right password is refused until the window passes.
    let err = attempt(&pool, "olivia@example.org", "correct horse battery")
        .await
        .unwrap_err();

    assert!(matches!(err, Error::RateLimited { .. }), "{err:?}");
    assert!(err.to_string().contains("minutes"));
    let last = audit_actions(&pool).await.pop().unwrap();
    assert_eq!(
        last,
        ("sign_in_failed".to_owned(), Some("rate_limited".to_owned()))
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_successful_sign_in_resets_the_account_counter(pool: PgPool) {
    register(&pool, "olivia@example.org").await;
    for _ in 0..rate_limit::AccountLimits::DEFAULT
        .sign_in_failures_per_account_and_address
        .max_hits
        - 1
    {
        attempt(&pool, "olivia@example.org", "guess guess guess")
            .await
            .unwrap();
    }
    assert!(matches!(
        attempt(&pool, "olivia@example.org", "correct horse battery")
            .await
            .unwrap(),
        SignInOutcome::SignedIn { .. }
    ));
    // The counter starts again, so one more typo does not lock the owner out.
    assert!(matches!(
        attempt(&pool, "olivia@example.org", "one more typo")
            .await
            .unwrap(),
        SignInOutcome::Refused(_)
    ));
    assert!(matches!(
        attempt(&pool, "olivia@example.org", "correct horse battery")
            .await
            .unwrap(),
        SignInOutcome::SignedIn { .. }
    ));
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn disabling_an_account_ends_its_sessions_and_sign_ins(pool: PgPool) {
    let id = register(&pool, "olivia@example.org").await;
    assert!(load_session_user(&pool, id, 0).await.unwrap().is_some());

    disable_user(&pool, id, None, None).await.unwrap();

    assert!(
        load_session_user(&pool, id, 0).await.unwrap().is_none(),
        "the old generation is void"
    );
    assert!(
        load_session_user(&pool, id, 1).await.unwrap().is_none(),
        "disabled accounts have no sessions"
    );
    let outcome = attempt(&pool, "olivia@example.org", "correct horse battery")
        .await
        .unwrap();
    assert!(matches!(outcome, SignInOutcome::Refused(message) if message.contains("disabled")));
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn disabling_an_unknown_account_is_not_found(pool: PgPool) {
    let err = disable_user(&pool, UserId::new(), None, None).await.unwrap_err();
    assert!(matches!(err, Error::NotFound));
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn the_audit_trail_cannot_be_changed_or_deleted(pool: PgPool) {
    register(&pool, "olivia@example.org").await;

    let update = sqlx::query!("update audit_events set action = 'nothing'")
        .execute(&pool)
        .await;
    let delete = sqlx::query!("delete from audit_events").execute(&pool).await;
    let truncate = sqlx::query!("truncate audit_events").execute(&pool).await;

    for result in [update, delete, truncate] {
        let err = result.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{err}");
    }
    assert_eq!(audit_actions(&pool).await.len(), 1);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn housekeeping_deletes_expired_sessions_and_only_one_replica_runs_it(pool: PgPool) {
    sqlx::query!(
        "insert into tower_sessions.session (id, data, expiry_date) values
           ('old', '\\x00', now() - interval '1 minute'), ('live', '\\x00', now() + interval '1 hour')"
    )
    .execute(&pool)
    .await
    .unwrap();

    // While another replica holds the lock, this one skips the run.
    let mut other = pool.begin().await.unwrap();
    sqlx::query!(
        "select pg_advisory_xact_lock($1)",
        ExclusiveTask::Housekeeping as i64
    )
    .execute(&mut *other)
    .await
    .unwrap();
    assert_eq!(housekeeping_once(&pool).await.unwrap(), None);
    other.rollback().await.unwrap();

    let report = housekeeping_once(&pool)
        .await
        .unwrap()
        .expect("the lock is free now");

    assert_eq!(report.expired_sessions, 1);
    let left: Vec<String> = sqlx::query_scalar!("select id from tower_sessions.session")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(left, vec!["live".to_owned()]);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn exclusive_work_runs_when_the_lock_is_free(pool: PgPool) {
    let ran = run_exclusive(&pool, ExclusiveTask::Housekeeping, || async { Ok(42) })
        .await
        .unwrap();
    assert_eq!(ran, Some(42));
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn parallel_guesses_cannot_slip_under_the_limit(pool: PgPool) {
    register(&pool, "olivia@example.org").await;
    let limit = rate_limit::AccountLimits::DEFAULT
        .sign_in_failures_per_account_and_address
        .max_hits as usize;

    let guesses = (0..limit * 2).map(|i| {
        let pool = pool.clone();
        tokio::spawn(async move { attempt(&pool, "olivia@example.org", &format!("guess number {i}")).await })
    });
    let results = futures::future::join_all(guesses).await;

    let checked = results
        .iter()
        .filter(|result| matches!(result, Ok(Ok(SignInOutcome::Refused(_)))))
        .count();
    let limited = results
        .iter()
        .filter(|result| matches!(result, Ok(Err(Error::RateLimited { .. }))))
        .count();
    assert_eq!(
        (checked, limited),
        (limit, limit),
        "only {limit} passwords are ever checked"
    );
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn a_failed_sign_in_never_stores_the_typed_address(pool: PgPool) {
    let olivia = register(&pool, "olivia@example.org").await;
    attempt(&pool, "nobody@example.org", "whatever it was")
        .await
        .unwrap();
    attempt(&pool, "olivia@example.org", "wrong password!")
        .await
        .unwrap();

    let rows: Vec<(Option<uuid::Uuid>, String)> = sqlx::query_as(
        "select actor_id, coalesce(detail::text, '') from audit_events where action = 'sign_in_failed' order by at",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|(_, detail)| !detail.contains('@')), "{rows:?}");
    assert_eq!(rows[0].0, None);
    assert_eq!(
        rows[1].0,
        Some(olivia.0),
        "a failure against an account names the account"
    );
}

async fn attempt_with_code(
    pool: &PgPool,
    limits: &rate_limit::AccountLimits,
    email: &str,
    code: Option<&str>,
) -> Result<SignInOutcome, Error> {
    sign_in(
        pool,
        &HASHER,
        limits,
        SignInAttempt {
            email,
            password: "correct horse battery",
            code,
            client_addr: Some(ADDR),
        },
    )
    .await
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn two_factor_sign_in_takes_each_code_once_and_each_recovery_code_once(pool: PgPool) {
    use pawfile::auth::two_factor::{self, WRONG_CODE, code_for};
    let nina = crate::fixtures::user(&pool, "nina@example.org", &[Role::Admin], None).await;
    let enrolment = two_factor::start_enrolment(&pool, &nina).await.unwrap();
    assert!(
        enrolment
            .otpauth_url
            .starts_with("otpauth://totp/Pawfile:nina%40example.org?"),
        "{}",
        enrolment.otpauth_url
    );
    assert!(
        enrolment.qr_svg.contains("<svg"),
        "the QR code is an SVG drawn on the server"
    );
    // A wrong first code does not turn it on.
    let wrong = two_factor::confirm_enrolment(&pool, &LIMITS, &nina, "000000").await;
    assert!(
        matches!(&wrong, Err(Error::Invalid(invalid)) if invalid.field == "code"),
        "{wrong:?}"
    );
    let recovery =
        two_factor::confirm_enrolment(&pool, &LIMITS, &nina, &code_for(&enrolment.secret, 0).unwrap())
            .await
            .unwrap();
    assert_eq!(recovery.len(), 10);
    assert_eq!(two_factor::status(&pool, nina.user.id).await.unwrap(), (true, 10));
    let stored: Vec<Vec<u8>> = sqlx::query_scalar("select code_hash from totp_recovery_codes")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert!(
        stored
            .iter()
            .all(|hash| hash.len() == 32 && !recovery.iter().any(|code| code.as_bytes() == hash.as_slice()))
    );

    let limits = LIMITS;
    let email = "nina@example.org";
    assert_eq!(
        attempt_with_code(&pool, &limits, email, None).await.unwrap(),
        SignInOutcome::CodeNeeded
    );
    assert_eq!(
        attempt_with_code(&pool, &limits, email, Some("123456"))
            .await
            .unwrap(),
        SignInOutcome::Refused(WRONG_CODE.to_owned())
    );
    // The code that confirmed enrolment was accepted once already; the next step's code works once.
    let current = code_for(&enrolment.secret, 0).unwrap();
    assert_eq!(
        attempt_with_code(&pool, &limits, email, Some(&current))
            .await
            .unwrap(),
        SignInOutcome::Refused(WRONG_CODE.to_owned()),
        "a code is not accepted twice"
    );
    let next = code_for(&enrolment.secret, 1).unwrap();
    assert!(matches!(
        attempt_with_code(&pool, &limits, email, Some(&next))
            .await
            .unwrap(),
        SignInOutcome::SignedIn { .. }
    ));
    assert_eq!(
        attempt_with_code(&pool, &limits, email, Some(&next))
            .await
            .unwrap(),
        SignInOutcome::Refused(WRONG_CODE.to_owned()),
        "replayed within its window"
    );
    // A recovery code, typed loosely, works once.
    let loose = recovery[3].to_lowercase().replace('-', " ");
    assert!(matches!(
        attempt_with_code(&pool, &limits, email, Some(&loose))
            .await
            .unwrap(),
        SignInOutcome::SignedIn { .. }
    ));
    assert_eq!(
        attempt_with_code(&pool, &limits, email, Some(&recovery[3]))
            .await
            .unwrap(),
        SignInOutcome::Refused(WRONG_CODE.to_owned())
    );
    assert_eq!(two_factor::status(&pool, nina.user.id).await.unwrap(), (true, 9));

    // An admin resets it: the account signs in with its password alone, and enrols again.
    let root = crate::fixtures::user(&pool, "root@example.org", &[Role::Admin], None).await;
    let unknown = two_factor::reset(&pool, Some(&root), UserId::new()).await;
    assert!(matches!(unknown, Err(Error::NotFound)), "{unknown:?}");
    two_factor::reset(&pool, Some(&root), nina.user.id).await.unwrap();
    assert!(matches!(
        attempt_with_code(&pool, &limits, email, None).await.unwrap(),
        SignInOutcome::SignedIn { .. }
    ));
    assert_eq!(two_factor::status(&pool, nina.user.id).await.unwrap(), (false, 0));
    let audited: Vec<String> = sqlx::query_scalar(
        "select action from audit_events where action in ('enable_2fa', 'reset_2fa') order by at",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(audited, ["enable_2fa", "reset_2fa"]);
}

#[sqlx::test(migrator = "MIGRATOR")]
async fn wrong_second_factors_are_throttled_like_wrong_passwords(pool: PgPool) {
    use pawfile::auth::two_factor;
    let nina = crate::fixtures::user(&pool, "vera@example.org", &[Role::Owner], None).await;
    two_factor::set_known_secret(&pool, nina.user.id, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
        .await
        .unwrap();
    let limits = rate_limit::AccountLimits {
        sign_in_failures_per_account_and_address: rate_limit::Limit::new(
            3,
            std::time::Duration::from_secs(900),
        ),
        ..LIMITS
    };
    for _ in 0..3 {
        let outcome = attempt_with_code(&pool, &limits, "vera@example.org", Some("000000")).await;
        assert!(matches!(outcome, Ok(SignInOutcome::Refused(_))), "{outcome:?}");
    }
    // Even the right code is not tried now.
    let right = two_factor::code_for("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", 0).unwrap();
    let outcome = attempt_with_code(&pool, &limits, "vera@example.org", Some(&right)).await;
    assert!(matches!(outcome, Err(Error::RateLimited { .. })), "{outcome:?}");
}
