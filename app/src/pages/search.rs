//! Searching the text of the medical records the person may read: the best matches first, each with
//! the passage around the words that matched, those words marked.

use super::components::{ErrorNotice, format_date, query};
use crate::api::search_records;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Form;
use pawfile::domain::RecordHit;

/// `/search?q=…`.
#[component]
pub fn SearchPage() -> impl IntoView {
    let q = query("q");
    let hits = Resource::new(move || q.get(), search_records);
    view! {
        <Title text=move || if q.get().trim().is_empty() { "Search · Pawfile".to_owned() } else { format!("{} · Search · Pawfile", q.get().trim()) } />
        <section class="card">
            <h1>"Search medical records"</h1>
            <Form method="GET" action="/search" attr:class="search" attr:role="search">
                <label for="search-q">"Words from a record's title or text"</label>
                <div class="search-row">
                    <input id="search-q" name="q" type="search" maxlength="200" value=move || q.get() aria-describedby="search-hint" />
                    <button type="submit">"Search"</button>
                </div>
                <p class="hint" id="search-hint">"For example: vaccination, \"blood panel\", kidney -cyst. Only records you may read are searched."</p>
            </Form>
        </section>
        <Transition fallback=|| view! { <p>"Searching…"</p> }>
            {move || Suspend::new(async move {
                let asked = !q.get_untracked().trim().is_empty();
                match hits.await {
                    Ok(hits) if hits.is_empty() && asked => view! {
                        <section class="card"><p role="status" data-testid="no-hits">"No record matches."</p></section>
                    }.into_any(),
                    Ok(hits) if hits.is_empty() => ().into_any(),
                    Ok(hits) => view! { <Hits hits /> }.into_any(),
                    Err(error) => view! { <ErrorNotice error /> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn Hits(hits: Vec<RecordHit>) -> impl IntoView {
    let count = match hits.len() {
        1 => "1 record".to_owned(),
        n => format!("{n} records"),
    };
    view! {
        <section class="card" aria-labelledby="hits-heading">
            <h2 id="hits-heading" role="status">{count}</h2>
            <ol class="hits" data-testid="hits">
                {hits.into_iter().map(|hit| view! {
                    <li class="hit" data-testid="hit">
                        <h3><a href=format!("/records/{}", hit.id)>{hit.title}</a></h3>
                        <p class="meta">
                            <a href=format!("/pets/{}", hit.pet_id)>{hit.pet_name}</a>
                            {format!(" · {} · {} · {}", format_date(hit.visit_date), hit.kind.label(), hit.clinic_name)}
                        </p>
                        <p class="passage">
                            {hit.passage.into_iter().map(|part| if part.hit {
                                view! { <mark>{part.text}</mark> }.into_any()
                            } else {
                                part.text.into_any()
                            }).collect_view()}
                        </p>
                    </li>
                }).collect_view()}
            </ol>
        </section>
    }
}
