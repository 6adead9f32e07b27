-- Walk-in patients, claim codes, medical records with their revisions.

-- A pet a clinic registered before its owner had an account: who the clinic was told the owner is.
alter table pets
    add column owner_name text check (length(owner_name) between 1 and 100),
    add column owner_email text check (length(owner_email) between 3 and 254 and owner_email = lower(owner_email)),
    add column registered_by_clinic uuid references clinics (id),
    add column updated_by uuid references users (id),
    add constraint pets_have_an_owner_or_contact check (owner_id is not null or owner_email is not null);
create index pets_microchip_idx on pets (microchip) where microchip is not null;
create index pets_owner_email_idx on pets (owner_email) where owner_id is null;

-- One-time codes with which an owner takes a walk-in patient into their account. Only a hash is kept.
create table pet_claim_codes (
    code_hash bytea primary key,
    pet_id uuid not null references pets (id),
    created_by uuid not null references users (id),
    created_at timestamptz not null default now(),
    expires_at timestamptz not null,
    used_at timestamptz,
    used_by uuid references users (id),
    -- A newer code for the same pet replaces this one.
    replaced_at timestamptz
);
create index pet_claim_codes_pet_idx on pet_claim_codes (pet_id);

create table medical_records (
    id uuid primary key,
    pet_id uuid not null references pets (id),
    clinic_id uuid not null references clinics (id),
    author_id uuid not null references users (id),
    visit_date date not null,
    kind text not null check (kind in
        ('consultation', 'vaccination', 'lab_result', 'surgery', 'prescription', 'imaging', 'other')),
    title text not null check (length(title) between 1 and 200),
    body text not null check (length(body) <= 20000),
    -- Bumped by every edit; an edit names the version it started from (optimistic concurrency).
    version integer not null default 1 check (version >= 1),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    updated_by uuid not null references users (id)
);
create index medical_records_pet_idx on medical_records (pet_id, visit_date desc);

-- Every earlier version of a record: nothing is ever silently overwritten.
create table medical_record_revisions (
    record_id uuid not null references medical_records (id),
    version integer not null,
    visit_date date not null,
    kind text not null,
    title text not null,
    body text not null,
    -- Who wrote this version, and when.
    edited_by uuid not null references users (id),
    edited_at timestamptz not null,
    primary key (record_id, version)
);

create function medical_history_is_kept() returns trigger
language plpgsql as $$
begin
    raise exception '% rows are never deleted', tg_table_name;
end;
$$;
create trigger medical_records_are_kept before delete on medical_records
    for each row execute function medical_history_is_kept();
create trigger medical_record_revisions_are_kept before update or delete on medical_record_revisions
    for each row execute function medical_history_is_kept();
create trigger pets_are_kept before delete on pets
    for each row execute function medical_history_is_kept();

-- Faster audit queries per pet (the owner's access history) and per action.
create index audit_events_action_idx on audit_events (action, at);

-- The pet an audited event concerns, so owners see their pet's access history and admins filter by pet.
alter table audit_events add column pet_id uuid;
create index audit_events_pet_idx on audit_events (pet_id, at) where pet_id is not null;
