//! Documents on the pet and record pages: the list with thumbnails and filters, the trash, and the
//! upload form — a plain multipart form without JavaScript, drag and drop with a progress bar per file
//! once the page is interactive.

use super::components::{ErrorNotice, format_bytes, query, show_all};
use crate::{
    api::{get_upload_rules, list_pet_documents},
    error::ApiError,
};
use leptos::prelude::*;
use leptos_router::components::Form;
use pawfile::domain::{DocumentCategory, DocumentView, PetId, RecordId, RecordView, UploadRules};

/// How many documents a list shows before "show all".
const RECENT_DOCUMENTS: usize = 20;

/// What a documents panel lists, and the rules its upload form shows.
///
/// The page makes it where the page starts, outside its `Suspense`. A resource made inside a
/// `Suspense`'s children is made again each time the server walks them (Leptos walks them twice),
/// so the server would fetch it twice and send both answers; the browser makes it once and would
/// hydrate with the first answer over markup rendered from the second.
#[derive(Clone, Copy)]
pub struct DocumentsData {
    /// The category filter (`?category=`), which the filter form also shows.
    category: Memo<String>,
    /// `?trash=1`: the viewer's trash instead of the documents.
    show_trash: Memo<String>,
    documents: Resource<Result<(Vec<DocumentView>, bool), ApiError>>,
    rules: Resource<Result<UploadRules, ApiError>>,
    /// Counts finished uploads: the list is fetched again after each.
    uploaded: RwSignal<u32>,
}

impl DocumentsData {
    /// A pet's documents; `pet` is the page's.
    pub fn of_pet(pet: Memo<Option<PetId>>) -> Self {
        Self::new(
            move || pet.get(),
            |pet| async move { pet.map(|pet| (pet, None)).ok_or_else(ApiError::not_found) },
        )
    }

    /// A record's documents; `record` is the page's, `page` the record it loads (which names its pet).
    pub fn of_record(record: Memo<Option<RecordId>>, page: Resource<Result<RecordView, ApiError>>) -> Self {
        Self::new(
            move || record.get(),
            move |wanted| async move {
                let record = page.await?;
                match wanted {
                    Some(wanted) if wanted == record.id => Ok((record.pet_id, Some(record.id))),
                    _ => Err(ApiError::not_found()),
                }
            },
        )
    }

    /// The list of the pet and record that `place(key())` names, fetched again when `key()` changes.
    fn new<K, F, P>(key: impl Fn() -> K + Send + Sync + 'static, place: P) -> Self
    where
        K: Clone + PartialEq + Send + Sync + 'static,
        P: Fn(K) -> F + Clone + Send + Sync + 'static,
        F: Future<Output = Result<(PetId, Option<RecordId>), ApiError>> + Send + 'static,
    {
        let category = query("category");
        let show_trash = query("trash");
        let all = query("documents");
        let uploaded = RwSignal::new(0u32);
        let documents = Resource::new(
            move || {
                (
                    key(),
                    category.get(),
                    show_trash.get() == "1",
                    all.get() == "all",
                    uploaded.get(),
                )
            },
            move |(key, category, trashed, all, _)| {
                let place = place(key);
                async move {
                    let (pet, record) = place.await?;
                    let record = record.map(|record| record.to_string()).unwrap_or_default();
                    // One more than shown tells whether there are more.
                    let limit = (!all).then_some(RECENT_DOCUMENTS as u32 + 1);
                    let mut documents = list_pet_documents(pet, category, record, trashed, limit).await?;
                    let more = !all && documents.len() > RECENT_DOCUMENTS;
                    if more {
                        documents.truncate(RECENT_DOCUMENTS);
                    }
                    Ok((documents, more))
                }
            },
        );
        let rules = Resource::new(|| (), |_| get_upload_rules());
        Self {
            category,
            show_trash,
            documents,
            rules,
            uploaded,
        }
    }
}

/// The documents of a pet (or of one of its records), newest first, with the upload form when allowed.
#[component]
pub fn DocumentsPanel(
    /// What the panel shows, made by the page.
    data: DocumentsData,
    /// The pet.
    pet: PetId,
    /// Only this record's documents, and uploads attach to it.
    #[prop(optional)]
    record: Option<RecordId>,
    /// Whether the viewer may upload here.
    can_upload: bool,
    /// Whether the viewer owns the pet (and so picks its photo).
    #[prop(optional)]
    owner: bool,
) -> impl IntoView {
    let DocumentsData {
        category,
        show_trash,
        documents,
        rules,
        uploaded,
    } = data;
    let all_link = show_all("documents");
    let heading = if record.is_some() {
        "Attached files"
    } else {
        "Documents"
    };
    let here = match record {
        Some(record) => format!("/records/{record}"),
        None => format!("/pets/{pet}"),
    };
    view! {
        <section class="card" id="documents">
            <div class="title-row">
                <h2>{heading}</h2>
                {record.is_none().then(|| view! {
                    <a class="button secondary" href=format!("/api/pets/{pet}/export") download>"Download everything (zip)"</a>
                })}
            </div>
            <Form method="GET" action=here attr:class="inline-filter">
                <label for="category-filter">"Category"</label>
                <select id="category-filter" name="category">
                    <option value="">"All"</option>
                    {DocumentCategory::ALL.map(|option| view! {
                        <option value=option.as_str() selected=move || category.get() == option.as_str()>{option.label()}</option>
                    }).collect_view()}
                </select>
                <label class="checkbox"><input type="checkbox" name="trash" value="1" checked=move || show_trash.get() == "1" />" My trash"</label>
                <button type="submit" class="secondary small">"Show"</button>
            </Form>
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match documents.await {
                        Ok((documents, _)) if documents.is_empty() => view! { <p>"No documents here."</p> }.into_any(),
                        Ok((documents, more)) => {
                            view! {
                                <ul class="documents" data-testid="documents">
                                    {documents.into_iter().map(|document| view! { <DocumentItem document pet owner /> }).collect_view()}
                                </ul>
                                {more.then(|| view! {
                                    <p class="more" data-testid="more-documents">
                                        "The " {RECENT_DOCUMENTS} " most recent files. "
                                        <a href=all_link>"Show all files"</a>
                                    </p>
                                })}
                            }.into_any()
                        }
                        Err(error) => view! { <ErrorNotice error /> }.into_any(),
                    }
                })}
            </Transition>
            {can_upload.then(|| view! { <UploadForm pet record rules uploaded /> })}
        </section>
    }
}

#[component]
fn DocumentItem(document: DocumentView, pet: PetId, owner: bool) -> impl IntoView {
    let id = document.id;
    let photo_choice = owner && document.has_thumbnail && document.deleted_at.is_none();
    let previewable = document.previewable();
    let trashed = document.deleted_at.clone();
    let meta = format!(
        "{} · {} · {}, {}",
        document.type_badge(),
        document.size_label(),
        document.uploaded_by,
        document.uploaded_at.local
    );
    view! {
        <li class="document" data-testid="document">
            <div class="thumb">
                {if document.has_thumbnail {
                    view! { <img src=format!("/api/documents/{id}/thumbnail") alt="" width="96" height="96" loading="lazy" data-testid="thumbnail" /> }.into_any()
                } else {
                    view! { <span class="type-icon">{document.type_badge()}</span> }.into_any()
                }}
            </div>
            <div class="details">
                <a href=format!("/api/documents/{id}/content") download=document.filename.clone() class="name">{document.filename.clone()}</a>
                {document.category.map(|category| view! { <span class="badge">{category.label()}</span> })}
                {document.caption.clone().map(|caption| view! { <p class="caption">{caption}</p> })}
                <p class="meta">{meta}</p>
                {document.location_removed.then(|| view! {
                    <p class="hint" data-testid="location-removed">"Where the photo was taken was removed from it at upload."</p>
                })}
                // A div, not a p: forms inside a p make the browser re-parse the markup, and hydration fails.
                <div class="document-actions">
                    {(previewable && trashed.is_none()).then(|| view! {
                        <a href=format!("/api/documents/{id}/content?inline=1") target="_blank" rel="noopener">"Preview"</a>
                    })}
                    {(document.can_delete && trashed.is_none()).then(|| view! {
                        <form method="post" action=format!("/api/documents/{id}/trash") class="inline">
                            <button type="submit" class="secondary small">"Delete"</button>
                        </form>
                    })}
                    {document.profile_photo.then(|| view! {
                        <span class="badge" data-testid="card-photo">"On the pet's card"</span>
                    })}
                    {(photo_choice && !document.profile_photo).then(|| view! {
                        <form method="post" action="/api/pets/photo" class="inline">
                            <input type="hidden" name="pet_id" value=pet.to_string() />
                            <input type="hidden" name="document_id" value=id.to_string() />
                            <button type="submit" class="secondary small">"Use as the pet's photo"</button>
                        </form>
                    })}
                    {trashed.map(|at| view! {
                        <span class="hint">"In the trash since " {at.local} " "</span>
                        <form method="post" action=format!("/api/documents/{id}/restore") class="inline">
                            <button type="submit" class="secondary small">"Restore"</button>
                        </form>
                    })}
                </div>
            </div>
        </li>
    }
}

/// One file on its way up.
#[derive(Debug, Clone, PartialEq)]
pub struct Transfer {
    /// A number for the list.
    pub key: u32,
    /// The file's name.
    pub name: String,
    /// Percent sent.
    pub percent: u32,
    /// `None` while sending; the outcome after.
    pub outcome: Option<Result<(), String>>,
}

#[component]
fn UploadForm(
    pet: PetId,
    record: Option<RecordId>,
    rules: Resource<Result<UploadRules, ApiError>>,
    uploaded: RwSignal<u32>,
) -> impl IntoView {
    let transfers = RwSignal::new(Vec::<Transfer>::new());
    let (interactive, set_interactive) = signal(false);
    Effect::new(move |_| set_interactive.set(true));
    let record_value = record.map(|record| record.to_string()).unwrap_or_default();
    view! {
        <Suspense fallback=|| ()>
            {move || {
                let record_value = record_value.clone();
                Suspend::new(async move {
                    let rules: Option<UploadRules> = rules.await.ok();
                    let accept = rules.as_ref().map(|rules| rules.accepted.join(",")).unwrap_or_default();
                    let limit = rules.as_ref().map(|rules| rules.max_bytes).unwrap_or(u64::MAX);
                    let hint = rules.as_ref().map(|rules| format!(
                        "Up to {} per file. Accepted: {}.{}",
                        format_bytes(rules.max_bytes),
                        rules.accepted_labels,
                        if rules.strips_location {
                            " Where a photo was taken (its GPS position) is removed from JPEG, PNG and WebP photos."
                        } else {
                            ""
                        },
                    ));
                    view! {
                        <form
                            class="upload"
                            method="post"
                            enctype="multipart/form-data"
                            action=format!("/api/pets/{pet}/documents")
                            data-testid="upload-form"
                            on:submit=move |event| {
                                if interactive.get_untracked() {
                                    event.prevent_default();
                                    start_uploads(event.target(), pet, limit, transfers, uploaded);
                                }
                            }
                        >
                            <h3>"Add files"</h3>
                            <p class="hint" data-testid="upload-rules">{hint}</p>
                            <input type="hidden" name="record_id" value=record_value.clone() />
                            <label for="upload-category">"Category " <span class="hint">"(optional)"</span></label>
                            <select id="upload-category" name="category">
                                <option value="">"—"</option>
                                {DocumentCategory::ALL.map(|option| view! { <option value=option.as_str()>{option.label()}</option> }).collect_view()}
                            </select>
                            <label for="upload-caption">"Caption " <span class="hint">"(optional)"</span></label>
                            <input id="upload-caption" name="caption" maxlength="500" />
                            <div
                                class="dropzone"
                                on:dragover=move |event| event.prevent_default()
                                on:drop=move |event| {
                                    event.prevent_default();
                                    drop_files(event, pet, limit, transfers, uploaded);
                                }
                            >
                                <label for="upload-files">"Files "<span class="hint">{move || if interactive.get() { "(or drop them here)" } else { "" }}</span></label>
                                <input id="upload-files" name="file" type="file" multiple accept=accept />
                                <label for="upload-camera" class="camera">"Take a photo " <span class="hint">"(phones)"</span></label>
                                <input id="upload-camera" name="file" type="file" accept="image/*" capture="environment" />
                            </div>
                            <button type="submit">"Upload"</button>
                        </form>
                    }
                })
            }}
        </Suspense>
        // What a screen reader announces: uploads starting and ending, not every percent.
        <p class="visually-hidden" role="status" data-testid="upload-status">{move || upload_status(&transfers.get())}</p>
        <ul class="transfers" data-testid="transfers" aria-label="Uploads">
            <For each=move || transfers.get() key=|transfer| (transfer.key, transfer.percent, transfer.outcome.clone()) let:transfer>
                <li class="transfer">
                    <span class="name">{transfer.name.clone()}</span>
                    <progress max="100" value=transfer.percent data-testid="progress" aria-label=format!("{} sent", transfer.name)></progress>
                    {match transfer.outcome.clone() {
                        None => view! { <span class="hint">{format!("{}%", transfer.percent)}</span> }.into_any(),
                        Some(Ok(())) => view! { <span class="ok" data-testid="transfer-done">"Uploaded"</span> }.into_any(),
                        Some(Err(message)) => view! { <span class="form-error" role="alert">{message}</span> }.into_any(),
                    }}
                </li>
            </For>
        </ul>
    }
}

/// The sentence announced about the uploads: how many are on their way, done and refused.
pub fn upload_status(transfers: &[Transfer]) -> String {
    let sending = transfers.iter().filter(|t| t.outcome.is_none()).count();
    let done = transfers
        .iter()
        .filter(|t| matches!(t.outcome, Some(Ok(()))))
        .count();
    let failed = transfers
        .iter()
        .filter(|t| matches!(t.outcome, Some(Err(_))))
        .count();
    let files = |n: usize| {
        if n == 1 {
            "1 file".to_owned()
        } else {
            format!("{n} files")
        }
    };
    let mut parts = Vec::new();
    if sending > 0 {
        parts.push(format!("Uploading {}.", files(sending)));
    }
    if done > 0 {
        parts.push(format!("{} uploaded.", files(done)));
    }
    if failed > 0 {
        parts.push(format!("{} refused.", files(failed)));
    }
    parts.join(" ")
}

#[cfg(feature = "hydrate")]
fn start_uploads(
    target: Option<web_sys::EventTarget>,
    pet: PetId,
    limit: u64,
    transfers: RwSignal<Vec<Transfer>>,
    uploaded: RwSignal<u32>,
) {
    use wasm_bindgen::JsCast;
    let Some(form) = target.and_then(|target| target.dyn_into::<web_sys::HtmlFormElement>().ok()) else {
        return;
    };
    let mut files = Vec::new();
    for id in ["upload-files", "upload-camera"] {
        let input = form
            .query_selector(&format!("#{id}"))
            .ok()
            .flatten()
            .and_then(|element| element.dyn_into::<web_sys::HtmlInputElement>().ok());
        if let Some(list) = input.as_ref().and_then(web_sys::HtmlInputElement::files) {
            files.extend((0..list.length()).filter_map(|index| list.get(index)));
        }
        if let Some(input) = input {
            input.set_value("");
        }
    }
    for file in files {
        upload::send(&form, file, pet, limit, transfers, uploaded);
    }
}

#[cfg(not(feature = "hydrate"))]
fn start_uploads(
    _: Option<leptos::web_sys::EventTarget>,
    _: PetId,
    _: u64,
    _: RwSignal<Vec<Transfer>>,
    _: RwSignal<u32>,
) {
}

#[cfg(feature = "hydrate")]
fn drop_files(
    event: leptos::ev::DragEvent,
    pet: PetId,
    limit: u64,
    transfers: RwSignal<Vec<Transfer>>,
    uploaded: RwSignal<u32>,
) {
    use wasm_bindgen::JsCast;
    let Some(list) = event.data_transfer().and_then(|transfer| transfer.files()) else {
        return;
    };
    let form = event
        .target()
        .and_then(|target| target.dyn_into::<web_sys::Element>().ok())
        .and_then(|element| element.closest("form").ok().flatten())
        .and_then(|form| form.dyn_into::<web_sys::HtmlFormElement>().ok());
    let Some(form) = form else { return };
    for file in (0..list.length()).filter_map(|index| list.get(index)) {
        upload::send(&form, file, pet, limit, transfers, uploaded);
    }
}

#[cfg(not(feature = "hydrate"))]
fn drop_files(_: leptos::ev::DragEvent, _: PetId, _: u64, _: RwSignal<Vec<Transfer>>, _: RwSignal<u32>) {}

#[cfg(feature = "hydrate")]
mod upload {
    //! One XMLHttpRequest per file, so each gets its own progress bar and its own answer.
    use super::Transfer;
    use leptos::prelude::*;
    use pawfile::domain::PetId;
    use wasm_bindgen::{JsCast, closure::Closure};

    fn field(form: &web_sys::HtmlFormElement, name: &str) -> String {
        form.query_selector(&format!("[name={name}]"))
            .ok()
            .flatten()
            .and_then(|element| {
                element
                    .clone()
                    .dyn_into::<web_sys::HtmlInputElement>()
                    .map(|input| input.value())
                    .or_else(|_| {
                        element
                            .dyn_into::<web_sys::HtmlSelectElement>()
                            .map(|select| select.value())
                    })
                    .ok()
            })
            .unwrap_or_default()
    }

    fn update(transfers: RwSignal<Vec<Transfer>>, key: u32, change: impl FnOnce(&mut Transfer)) {
        transfers.update(|list| {
            if let Some(transfer) = list.iter_mut().find(|transfer| transfer.key == key) {
                change(transfer);
            }
        });
    }

    pub fn send(
        form: &web_sys::HtmlFormElement,
        file: web_sys::File,
        pet: PetId,
        limit: u64,
        transfers: RwSignal<Vec<Transfer>>,
        uploaded: RwSignal<u32>,
    ) {
        let key =
            transfers.with_untracked(|list| list.iter().map(|transfer| transfer.key).max().unwrap_or(0) + 1);
        transfers.update(|list| {
            list.push(Transfer {
                key,
                name: file.name(),
                percent: 0,
                outcome: None,
            });
        });
        if file.size() as u64 > limit {
            update(transfers, key, |transfer| {
                transfer.outcome = Some(Err(
                    "This file is larger than the limit; it was not sent.".to_owned()
                ));
            });
            return;
        }
        let Ok(data) = web_sys::FormData::new() else {
            return;
        };
        for name in ["record_id", "category", "caption"] {
            let _ = data.append_with_str(name, &field(form, name));
        }
        let _ = data.append_with_blob_and_filename("file", &file, &file.name());
        let Ok(request) = web_sys::XmlHttpRequest::new() else {
            return;
        };
        let _ = request.open("POST", &format!("/api/pets/{pet}/documents"));
        let _ = request.set_request_header("Accept", "application/json");

        let progress =
            Closure::<dyn FnMut(web_sys::ProgressEvent)>::new(move |event: web_sys::ProgressEvent| {
                if event.length_computable() && event.total() > 0.0 {
                    let percent = (event.loaded() / event.total() * 100.0).round() as u32;
                    update(transfers, key, |transfer| transfer.percent = percent.min(99));
                }
            });
        if let Ok(upload) = request.upload() {
            upload.set_onprogress(Some(progress.as_ref().unchecked_ref()));
        }
        progress.forget();

        let finished = request.clone();
        let done = Closure::<dyn FnMut()>::new(move || {
            let status = finished.status().unwrap_or(0);
            let outcome = if (200..300).contains(&status) {
                uploaded.update(|count| *count += 1);
                Ok(())
            } else {
                let text = finished.response_text().ok().flatten().unwrap_or_default();
                let message = serde_json::from_str::<serde_json::Value>(&text)
                    .ok()
                    .and_then(|body| body["error"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| format!("The upload failed (HTTP {status})."));
                Err(message)
            };
            update(transfers, key, |transfer| {
                transfer.percent = if outcome.is_ok() { 100 } else { transfer.percent };
                transfer.outcome = Some(outcome);
            });
        });
        request.set_onloadend(Some(done.as_ref().unchecked_ref()));
        done.forget();
        let _ = request.send_with_opt_form_data(Some(&data));
    }
}

#[cfg(test)]
mod tests {
    use super::{Transfer, upload_status};

    fn transfer(key: u32, outcome: Option<Result<(), String>>) -> Transfer {
        Transfer {
            key,
            name: format!("file-{key}.pdf"),
            percent: if outcome.is_some() { 100 } else { 40 },
            outcome,
        }
    }

    #[test]
    fn the_upload_status_says_what_is_sent_done_and_refused() {
        assert_eq!(upload_status(&[]), "");
        assert_eq!(
            upload_status(&[transfer(1, None), transfer(2, None)]),
            "Uploading 2 files."
        );
        assert_eq!(
            upload_status(&[transfer(1, None), transfer(2, Some(Ok(())))]),
            "Uploading 1 file. 1 file uploaded."
        );
        assert_eq!(
            upload_status(&[
                transfer(1, Some(Ok(()))),
                transfer(2, Some(Ok(()))),
                transfer(3, Some(Err("too big".into())))
            ]),
            "2 files uploaded. 1 file refused."
        );
    }
}
