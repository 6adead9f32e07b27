//! `reconcile` and `seed-demo`: one-off runs of what the server otherwise does by itself or never.

use super::{CliError, say};
use pawfile::{
    auth::PasswordHasher,
    config::ServeSettings,
    demo::{self, DEMO_ACCOUNTS, SeedOutcome},
};
use std::time::Duration;

/// `reconcile`: the documents bucket against the database, once.
pub async fn reconcile(
    settings: &ServeSettings,
    grace: Duration,
    verify_sample: i64,
) -> Result<(), CliError> {
    use pawfile::documents::reconcile::{Options, reconcile};
    let (state, _embedded) = pawfile_app::startup::build_state(settings).await?;
    let Some(report) = reconcile(
        &state.db,
        &state.documents,
        Options {
            grace,
            verify_sample,
            ..Options::default()
        },
    )
    .await?
    else {
        say("Another Pawfile process is reconciling right now; try again later.");
        return Ok(());
    };
    say(&format!(
        "{} objects, {} documents; {} verified by reading back.",
        report.objects, report.documents, report.verified
    ));
    say(&format!(
        "Removed {} orphan objects: {:?}",
        report.removed_orphans.len(),
        report.removed_orphans
    ));
    say(&format!(
        "Aborted {} abandoned multipart uploads.",
        report.aborted_uploads
    ));
    for (what, ids) in [
        ("missing their object", &report.missing),
        ("with a size mismatch", &report.size_mismatches),
        ("with a checksum mismatch", &report.checksum_mismatches),
    ] {
        let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
        say(&format!("{} documents {what}: {}", ids.len(), ids.join(", ")));
    }
    if report.is_clean() {
        Ok(())
    } else {
        Err(CliError::Invalid(
            "problems were flagged for administrators".to_owned(),
        ))
    }
}

/// `seed-demo`: the demo clinic, accounts and pets, and their documents in the store `serve` uses.
pub async fn seed_demo(settings: &ServeSettings, if_empty: bool) -> Result<(), CliError> {
    let (state, _embedded) = pawfile_app::startup::build_state(settings).await?;
    match demo::seed_demo(&state.db, &PasswordHasher::for_this_machine(), if_empty).await? {
        SeedOutcome::Seeded => {
            let documents = demo::seed_documents(&state.db, &state.documents).await?;
            say(&format!(
                "Demo data created ({documents} documents). Sign in with:"
            ));
            for account in DEMO_ACCOUNTS {
                say(&format!(
                    "  {:<22} {:<16} ({})",
                    account.email, account.password, account.role
                ));
            }
        }
        SeedOutcome::AlreadySeeded => say("Demo data already present; nothing changed."),
        SeedOutcome::NotEmpty => say("The database already has accounts; demo data not added."),
    }
    Ok(())
}
