//! Administration: clinics and staff accounts, disabling accounts, the audit trail.

use super::components::{ErrorNotice, FieldError, FormError, action_error, described_by, invalid, query};
use crate::api::{
    CreateClinic, DisableUser, InviteStaff, ResetTwoFactor, admin_clinics, admin_users, audit_trail,
    integrity_issues, mail_status, scrub_coverage, storage_usage,
};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::{A, Form};
use pawfile::domain::AUDIT_ACTIONS;

/// Clinics and staff accounts.
#[component]
pub fn AdminPage() -> impl IntoView {
    let create_clinic = ServerAction::<CreateClinic>::new();
    let invite_staff = ServerAction::<InviteStaff>::new();
    let clinics = Resource::new(move || create_clinic.version().get(), |_| admin_clinics());
    let clinic_error = action_error(create_clinic);
    let staff_error = action_error(invite_staff);
    let staff_invited = move || matches!(invite_staff.value().get(), Some(Ok(_)));
    view! {
        <Title text="Administration · Pawfile" />
        <section class="card">
            <h1>"Administration"</h1>
            <p>
                <A href="/admin/dashboard">"Dashboard"</A> " · " <A href="/admin/users">"Accounts"</A> " · "
                <A href="/admin/audit">"Audit trail"</A> " · " <A href="/admin/backups">"Backups"</A>
            </p>
        </section>
        <IntegrityPanel />
        <MailPanel />
        <StoragePanel />
        <section class="card">
            <h2>"Clinics"</h2>
            <Suspense fallback=|| view! { <p>"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match clinics.await {
                        Ok(clinics) => view! {
                            <table data-testid="clinics">
                                <thead><tr><th>"Clinic"</th><th>"Staff accounts"</th></tr></thead>
                                <tbody>
                                    {clinics.into_iter().map(|clinic| view! {
                                        <tr><td>{clinic.name}</td><td>{clinic.staff}</td></tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any(),
                        Err(error) => view! { <ErrorNotice error /> }.into_any(),
                    }
                })}
            </Suspense>
            <ActionForm action=create_clinic>
                <FormError error=clinic_error fields=&["name"] />
                <label for="clinic_name">"New clinic"</label>
                <input id="clinic_name" name="name" aria-describedby=described_by(clinic_error, "name") aria-invalid=invalid(clinic_error, "name") maxlength="200" required />
                <FieldError error=clinic_error field="name" />
                <button type="submit">"Create clinic"</button>
            </ActionForm>
        </section>
        <section class="card">
            <h2>"Invite staff"</h2>
            <p class="hint">"The person gets a link by e-mail (it works once, for 7 days) and chooses their own password."</p>
            {move || staff_invited().then(|| view! { <p class="ok" role="status" data-testid="invited">"Invitation sent."</p> })}
            <ActionForm action=invite_staff>
                <FormError error=staff_error fields=&["clinic_id", "email", "display_name"] />
                <label for="clinic_id">"Clinic"</label>
                <Suspense fallback=|| ()>
                    {move || Suspend::new(async move {
                        let clinics = clinics.await.unwrap_or_default();
                        view! {
                            <select id="clinic_id" name="clinic_id" aria-describedby=described_by(staff_error, "clinic_id") aria-invalid=invalid(staff_error, "clinic_id") required>
                                <option value="">"Choose a clinic…"</option>
                                {clinics.into_iter().map(|clinic| view! {
                                    <option value=clinic.id.to_string()>{clinic.name}</option>
                                }).collect_view()}
                            </select>
                        }
                    })}
                </Suspense>
                <FieldError error=staff_error field="clinic_id" />
                <label for="staff_name">"Name"</label>
                <input id="staff_name" name="display_name" aria-describedby=described_by(staff_error, "display_name") aria-invalid=invalid(staff_error, "display_name") maxlength="100" required />
                <FieldError error=staff_error field="display_name" />
                <label for="staff_email">"E-mail address"</label>
                <input id="staff_email" name="email" aria-describedby=described_by(staff_error, "email") aria-invalid=invalid(staff_error, "email") type="email" required />
                <FieldError error=staff_error field="email" />
                <label class="checkbox"><input type="checkbox" name="also_admin" value="true" />" Also an administrator"</label>
                <button type="submit">"Send the invitation"</button>
            </ActionForm>
        </section>
    }
}

/// Storage used per clinic and per owner, fullest first.
#[component]
fn StoragePanel() -> impl IntoView {
    let usages = Resource::new(|| (), |_| storage_usage());
    view! {
        <section class="card">
            <h2>"Storage"</h2>
            <p class="hint">"Per clinic (what its staff upload) and per owner (what they upload), fullest first; the trash counts until it is purged."</p>
            <Suspense fallback=|| view! { <p>"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match usages.await {
                        Ok(usages) if usages.is_empty() => view! { <p>"Nothing stored yet."</p> }.into_any(),
                        Ok(usages) => view! {
                            <div class="table-scroll" tabindex="0" role="region" aria-label="Storage per account">
                            <table data-testid="storage-usage">
                                <thead><tr><th>"Whose"</th><th>"Used"</th></tr></thead>
                                <tbody>
                                    {usages.into_iter().map(|usage| view! {
                                        <tr>
                                            <td>{usage.name.clone()} {(usage.payer == "clinic").then_some(" (clinic)")}</td>
                                            <td>{format!(
                                                "{} ({}%) · {} document{}",
                                                usage.label(),
                                                usage.percent(),
                                                usage.documents,
                                                if usage.documents == 1 { "" } else { "s" },
                                            )}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                            </div>
                        }.into_any(),
                        Err(error) => view! { <ErrorNotice error /> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

/// Documents the integrity check flagged (missing objects, size or checksum mismatches).
#[component]
fn MailPanel() -> impl IntoView {
    let status = Resource::new(|| (), |_| mail_status());
    view! {
        <section class="card">
            <h2>"Mail"</h2>
            <Suspense fallback=|| view! { <p>"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match status.await {
                        Ok(status) => {
                            let waiting = match status.waiting {
                                0 => "Nothing waiting to be sent.".to_owned(),
                                1 => "1 message waiting to be sent.".to_owned(),
                                n => format!("{n} messages waiting to be sent."),
                            };
                            let problems = (!status.problems.is_empty()).then(|| view! {
                                <div class="table-scroll">
                                    <table data-testid="mail-problems">
                                        <thead><tr><th>"To"</th><th>"Subject"</th><th>"Tries"</th><th>"Status"</th><th>"Error"</th></tr></thead>
                                        <tbody>
                                            {status.problems.into_iter().map(|problem| view! {
                                                <tr>
                                                    <td>{problem.recipient}</td>
                                                    <td>{problem.subject}</td>
                                                    <td>{problem.attempts}</td>
                                                    <td class=if problem.given_up { "problem" } else { "" }>{
                                                        if problem.given_up {
                                                            format!("Given up {}", problem.at)
                                                        } else {
                                                            format!("Next try {}", problem.at)
                                                        }
                                                    }</td>
                                                    <td>{problem.error}</td>
                                                </tr>
                                            }).collect_view()}
                                        </tbody>
                                    </table>
                                </div>
                            });
                            view! { <p data-testid="mail-waiting">{waiting}</p> {problems} }.into_any()
                        }
                        Err(error) => view! { <ErrorNotice error /> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

#[component]
fn IntegrityPanel() -> impl IntoView {
    let issues = Resource::new(|| (), |_| integrity_issues());
    let coverage = Resource::new(|| (), |_| scrub_coverage());
    view! {
        <section class="card">
            <h2>"Document integrity"</h2>
            <p class="hint">"The bucket is compared with the database every few hours (and by `pawfile reconcile`)."</p>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    coverage.await.ok().map(|coverage| view! {
                        <p data-testid="scrub-coverage">{format!(
                            "Re-hashed in the last {} days: {} of {} documents.",
                            coverage.period_days,
                            coverage.rehashed,
                            coverage.documents,
                        )}</p>
                    })
                })}
            </Suspense>
            <Suspense fallback=|| view! { <p>"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match issues.await {
                        Ok(issues) if issues.is_empty() => view! { <p class="ok" data-testid="integrity">"No problems found."</p> }.into_any(),
                        Ok(issues) => view! {
                            <table data-testid="integrity">
                                <thead><tr><th>"Document"</th><th>"Pet"</th><th>"Problem"</th><th>"Found"</th></tr></thead>
                                <tbody>
                                    {issues.into_iter().map(|issue| view! {
                                        <tr>
                                            <td class="id">{issue.document_id.to_string()}</td>
                                            <td class="id">{issue.pet_id.to_string()}</td>
                                            <td class="problem">{issue.problem}</td>
                                            <td>{issue.checked_at}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any(),
                        Err(error) => view! { <ErrorNotice error /> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

/// Accounts, searchable, with a button to disable each.
#[component]
pub fn AdminUsersPage() -> impl IntoView {
    let q = query("q");
    let disable = ServerAction::<DisableUser>::new();
    let reset_2fa = ServerAction::<ResetTwoFactor>::new();
    let users = Resource::new(
        move || (q.get(), disable.version().get()),
        |(q, _)| admin_users(q),
    );
    let disable_error = action_error(disable);
    view! {
        <Title text="Accounts · Pawfile" />
        <section class="card">
            <h1>"Accounts"</h1>
            <p><A href="/admin">"← Administration"</A></p>
            <Form method="GET" action="/admin/users" attr:class="search">
                <label for="q">"Search by e-mail or name"</label>
                <div class="search-row">
                    <input id="q" name="q" type="search" value=move || q.get() />
                    <button type="submit">"Search"</button>
                </div>
            </Form>
            <FormError error=disable_error />
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match users.await {
                        Ok(users) => view! {
                            <table data-testid="users">
                                <thead><tr><th>"Name"</th><th>"E-mail"</th><th>"Roles"</th><th>"Clinic"</th><th>"State"</th></tr></thead>
                                <tbody>
                                    {users.into_iter().map(|user| {
                                        let roles = user.roles.iter().map(|role| role.label()).collect::<Vec<_>>().join(", ");
                                        view! {
                                            <tr>
                                                <td>{user.display_name}</td>
                                                <td>{user.email}</td>
                                                <td>{roles}</td>
                                                <td>{user.clinic_name.unwrap_or_default()}</td>
                                                <td>
                                                    {match user.disabled_at {
                                                        Some(at) => view! { <span>"disabled " {at.local}</span> }.into_any(),
                                                        None => view! {
                                                            <ActionForm action=disable attr:class="inline">
                                                                <input type="hidden" name="user_id" value=user.id.to_string() />
                                                                <button type="submit" class="secondary small">"Disable"</button>
                                                            </ActionForm>
                                                            <ActionForm action=reset_2fa attr:class="inline">
                                                                <input type="hidden" name="user_id" value=user.id.to_string() />
                                                                <button type="submit" class="secondary small" title="For a lost phone: they set up two-factor sign-in again">"Reset two-factor"</button>
                                                            </ActionForm>
                                                        }.into_any(),
                                                    }}
                                                </td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any(),
                        Err(error) => view! { <ErrorNotice error /> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

/// The audit trail, filtered and paginated.
#[component]
pub fn AuditPage() -> impl IntoView {
    let actor = query("actor");
    let action = query("action");
    let pet_id = query("pet_id");
    let from = query("from");
    let until = query("until");
    let page = query("page");
    let filters = move || {
        (
            actor.get(),
            action.get(),
            pet_id.get(),
            from.get(),
            until.get(),
            page.get().parse::<u32>().unwrap_or(1),
        )
    };
    let entries = Resource::new(filters, |(actor, action, pet_id, from, until, page)| {
        audit_trail(actor, action, pet_id, from, until, page)
    });
    let page_link = move |page: u32| {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("actor", &actor.get())
            .append_pair("action", &action.get())
            .append_pair("pet_id", &pet_id.get())
            .append_pair("from", &from.get())
            .append_pair("until", &until.get())
            .append_pair("page", &page.to_string())
            .finish();
        format!("/admin/audit?{query}")
    };
    view! {
        <Title text="Audit trail · Pawfile" />
        <section class="card">
            <h1>"Audit trail"</h1>
            <p><A href="/admin">"← Administration"</A></p>
            <Form method="GET" action="/admin/audit" attr:class="filters">
                <label>"Actor e-mail" <input name="actor" value=move || actor.get() /></label>
                <label>"Action"
                    <select name="action">
                        <option value="">"any"</option>
                        {AUDIT_ACTIONS.iter().map(|name| view! {
                            <option value=*name selected=move || action.get() == *name>{*name}</option>
                        }).collect_view()}
                    </select>
                </label>
                <label>"Pet id" <input name="pet_id" value=move || pet_id.get() /></label>
                <label>"From" <input name="from" type="date" value=move || from.get() /></label>
                <label>"Until" <input name="until" type="date" value=move || until.get() /></label>
                <button type="submit">"Filter"</button>
            </Form>
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match entries.await {
                        Ok(page) => {
                            let number = page.page;
                            view! {
                                <table class="stack" data-testid="audit">
                                    <thead><tr><th>"When"</th><th>"Who"</th><th>"Action"</th><th>"Target"</th><th>"Pet"</th><th>"Address"</th></tr></thead>
                                    <tbody>
                                        {page.entries.into_iter().map(|entry| {
                                            let who = entry.actor_email.clone().or(entry.actor.clone()).unwrap_or_else(|| "—".to_owned());
                                            let target = match (entry.target_kind, entry.target_id) {
                                                (Some(kind), Some(id)) => format!("{kind} {id}"),
                                                _ => String::new(),
                                            };
                                            view! {
                                                <tr>
                                                    <td data-label="When">{entry.at.local}</td>
                                                    <td data-label="Who">{who}</td>
                                                    <td data-label="Action">{entry.action}</td>
                                                    <td data-label="Target" class="id">{target}</td>
                                                    <td data-label="Pet" class="id">{entry.pet_id.map(|id| id.to_string()).unwrap_or_default()}</td>
                                                    <td data-label="Address">{entry.client_addr.unwrap_or_default()}</td>
                                                </tr>
                                            }
                                        }).collect_view()}
                                    </tbody>
                                </table>
                                <p class="pagination">
                                    {(number > 1).then(|| view! { <A href=page_link(number - 1)>"← Newer"</A> })}
                                    " Page " {number} " "
                                    {page.has_more.then(|| view! { <A href=page_link(number + 1)>"Older →"</A> })}
                                </p>
                            }.into_any()
                        }
                        Err(error) => view! { <ErrorNotice error /> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}
