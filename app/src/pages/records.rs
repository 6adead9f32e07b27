//! Writing, reading and editing medical records, with every earlier version on show.

use super::{
    components::{
        ErrorNotice, FieldError, FormError, action_error, described_by, format_date, invalid, iso_date, param,
    },
    documents::{DocumentsData, DocumentsPanel},
};
use crate::{
    api::{CreateRecord, UpdateRecord, get_record},
    error::ApiError,
};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{components::A, hooks::use_navigate};
use pawfile::domain::{PetId, RecordDetails, RecordId, RecordKind, RecordView};

const RECORD_FIELDS: &[&str] = &["visit_date", "kind", "title", "body"];

/// The record's fields, filled with `initial` when editing.
#[component]
fn RecordFields(
    #[prop(optional)] initial: Option<RecordDetails>,
    #[prop(into)] error: Signal<Option<ApiError>>,
) -> impl IntoView {
    let visit_date = initial
        .as_ref()
        .map(|record| iso_date(record.visit_date))
        .unwrap_or_default();
    let kind = initial
        .as_ref()
        .map_or(RecordKind::Consultation, |record| record.kind);
    let title = initial
        .as_ref()
        .map(|record| record.title.clone())
        .unwrap_or_default();
    let body = initial
        .as_ref()
        .map(|record| record.body.clone())
        .unwrap_or_default();
    view! {
        <label for="visit_date">"Visit date"</label>
        <input id="visit_date" name="visit_date" aria-describedby=described_by(error, "visit_date") aria-invalid=invalid(error, "visit_date") type="date" value=visit_date required />
        <FieldError error=error field="visit_date" />
        <label for="kind">"Kind"</label>
        <select id="kind" name="kind" aria-describedby=described_by(error, "kind") aria-invalid=invalid(error, "kind")>
            {RecordKind::ALL.map(|option| view! {
                <option value=option.as_str() selected=option == kind>{option.label()}</option>
            }).collect_view()}
        </select>
        <FieldError error=error field="kind" />
        <label for="title">"Title"</label>
        <input id="title" name="title" aria-describedby=described_by(error, "title") aria-invalid=invalid(error, "title") value=title maxlength="200" required />
        <FieldError error=error field="title" />
        <label for="body">"Notes"</label>
        <textarea id="body" name="body" aria-describedby=described_by(error, "body") aria-invalid=invalid(error, "body") rows="10" maxlength="20000">{body}</textarea>
        <FieldError error=error field="body" />
    }
}

/// Sends the browser to the record once `action` succeeded.
fn go_to_record(value: impl Fn() -> Option<RecordId> + Send + Sync + 'static) {
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(record) = value() {
            navigate(&format!("/records/{record}"), Default::default());
        }
    });
}

/// Writing a new record for a pet (clinic staff).
#[component]
pub fn NewRecordPage() -> impl IntoView {
    let pet_id = param::<PetId>("id");
    let create = ServerAction::<CreateRecord>::new();
    let created = create.value();
    go_to_record(move || created.get().and_then(Result::ok));
    let error = action_error(create);
    view! {
        <Title text="New record · Pawfile" />
        <section class="card narrow">
            <h1>"New medical record"</h1>
            {move || pet_id.get().map(|pet| view! {
                <ActionForm action=create>
                    <input type="hidden" name="pet_id" value=pet.to_string() />
                    <FormError error=error fields=RECORD_FIELDS />
                    <RecordFields error=error />
                    <button type="submit" disabled=move || create.pending().get()>"Save record"</button>
                    <p><A href=format!("/pets/{pet}")>"Cancel"</A></p>
                </ActionForm>
            })}
        </section>
    }
}

fn load_record(record_id: Memo<Option<RecordId>>) -> Resource<Result<RecordView, ApiError>> {
    Resource::new(
        move || record_id.get(),
        |record_id| async move {
            match record_id {
                Some(record_id) => get_record(record_id).await,
                None => Err(ApiError::not_found()),
            }
        },
    )
}

/// A record: its current text and every earlier version with who wrote it and when.
#[component]
pub fn RecordPage() -> impl IntoView {
    let record_id = param::<RecordId>("id");
    let record = load_record(record_id);
    // Made here, outside the `Suspense` (see `DocumentsData`).
    let documents = DocumentsData::of_record(record_id, record);
    view! {
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match record.await {
                    Ok(record) => view! { <RecordDetailsView record documents /> }.into_any(),
                    Err(error) => view! { <ErrorNotice error /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn RecordDetailsView(record: RecordView, documents: DocumentsData) -> impl IntoView {
    let count = record.revisions.len();
    let edited = count > 0;
    view! {
        <Title text=format!("{} · Pawfile", record.details.title) />
        <section class="card">
            <p><A href=format!("/pets/{}", record.pet_id)>{format!("← {}", record.pet_name)}</A></p>
            <div class="title-row">
                <h1 data-testid="record-title">{record.details.title.clone()}</h1>
                {record.can_edit.then(|| view! { <A href=format!("/records/{}/edit", record.id) attr:class="button secondary">"Edit"</A> })}
            </div>
            <p class="meta">
                {record.details.kind.label()} " · visit on " {format_date(record.details.visit_date)} " · " {record.clinic_name.clone()}
            </p>
            <div class="record-body" data-testid="record-body">{record.details.body.clone()}</div>
            <p class="meta">
                "Written by " {record.author.clone()} " on " {record.created_at.local.clone()}
                {edited.then(|| format!("; last changed by {} on {}", record.updated_by, record.updated_at.local))}
                "."
            </p>
            <p data-testid="revision-count">
                {match count {
                    0 => "No earlier versions.".to_owned(),
                    1 => "1 earlier version.".to_owned(),
                    n => format!("{n} earlier versions."),
                }}
            </p>
        </section>
        <DocumentsPanel data=documents pet=record.pet_id record=record.id can_upload=record.can_edit />
        {edited.then(|| view! {
            <section class="card">
                <h2>"Earlier versions"</h2>
                {record.revisions.into_iter().map(|revision| view! {
                    <details class="revision" data-testid="revision">
                        <summary>
                            {format!("Version {} — by {}, {}", revision.version, revision.edited_by, revision.edited_at.local)}
                        </summary>
                        <p class="meta">
                            {revision.details.kind.label()} " · visit on " {format_date(revision.details.visit_date)}
                        </p>
                        <h3>{revision.details.title}</h3>
                        <div class="record-body">{revision.details.body}</div>
                    </details>
                }).collect_view()}
            </section>
        })}
    }
}

/// Editing a record (staff of its clinic). The form carries the version it was opened at.
#[component]
pub fn EditRecordPage() -> impl IntoView {
    let record_id = param::<RecordId>("id");
    let record = load_record(record_id);
    let update = ServerAction::<UpdateRecord>::new();
    let saved = update.value();
    go_to_record(move || saved.get().and_then(Result::ok).and(record_id.get_untracked()));
    let error = action_error(update);
    view! {
        <Title text="Edit record · Pawfile" />
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match record.await {
                    Ok(record) if record.can_edit => view! {
                        <section class="card narrow">
                            <h1>"Edit record"</h1>
                            <p class="hint">"The current text is kept as an earlier version when you save."</p>
                            <ActionForm action=update>
                                <input type="hidden" name="record_id" value=record.id.to_string() />
                                <input type="hidden" name="version" value=record.version.to_string() />
                                <FormError error=error fields=RECORD_FIELDS />
                                <RecordFields initial=record.details error=error />
                                <button type="submit">"Save"</button>
                                <p><A href=format!("/records/{}", record.id)>"Cancel"</A></p>
                            </ActionForm>
                        </section>
                    }.into_any(),
                    Ok(_) => view! { <ErrorNotice error=ApiError::forbidden() /> }.into_any(),
                    Err(error) => view! { <ErrorNotice error /> }.into_any(),
                }
            })}
        </Suspense>
    }
}
