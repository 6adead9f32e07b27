-- Clinics, accounts, sessions, the audit trail and rate-limit counters.

create table clinics (
    id uuid primary key,
    name text not null check (length(name) between 1 and 200),
    created_at timestamptz not null default now()
);
create unique index clinics_name_key on clinics (lower(name));

create table users (
    id uuid primary key,
    -- Stored lower-cased by the application, so plain equality is case-insensitive.
    email text not null check (length(email) between 3 and 254 and email = lower(email)),
    display_name text not null check (length(display_name) between 1 and 100),
    password_hash text not null,
    roles text[] not null default '{}'
        check (roles <@ array['owner', 'staff', 'admin']::text[]),
    clinic_id uuid references clinics (id),
    -- Bumped to end every session of the user at once (password change, disabled account).
    session_generation bigint not null default 0,
    time_zone text,
    created_at timestamptz not null default now(),
    disabled_at timestamptz,
    constraint staff_work_at_a_clinic check (('staff' = any (roles)) = (clinic_id is not null))
);
create unique index users_email_key on users (email);
create index users_clinic_idx on users (clinic_id) where clinic_id is not null;

create table pets (
    id uuid primary key,
    -- Empty until a walk-in patient registered by a clinic is claimed by its owner.
    owner_id uuid references users (id),
    name text not null check (length(name) between 1 and 100),
    species text not null check (length(species) between 1 and 60),
    breed text check (length(breed) <= 100),
    sex text check (sex in ('female', 'male', 'female_neutered', 'male_neutered', 'unknown')),
    birth_date date,
    microchip text check (microchip ~ '^[0-9]{15}$'),
    notes text check (length(notes) <= 5000),
    archived_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index pets_owner_idx on pets (owner_id);

create table pet_clinic_access (
    pet_id uuid not null references pets (id),
    clinic_id uuid not null references clinics (id),
    granted_by uuid references users (id),
    granted_at timestamptz not null default now(),
    revoked_at timestamptz,
    revoked_by uuid references users (id)
);
-- At most one live share per pet and clinic; revoked shares stay as history.
create unique index pet_clinic_access_live_key on pet_clinic_access (pet_id, clinic_id)
    where revoked_at is null;
create index pet_clinic_access_clinic_idx on pet_clinic_access (clinic_id) where revoked_at is null;

-- tower-sessions' Postgres store, created here so the schema has one owner: the migrations.
create schema if not exists tower_sessions;
create table tower_sessions.session (
    id text primary key not null,
    data bytea not null,
    expiry_date timestamptz not null
);
create index session_expiry_idx on tower_sessions.session (expiry_date);

create table audit_events (
    id uuid primary key,
    at timestamptz not null default now(),
    actor_id uuid references users (id),
    action text not null,
    target_kind text,
    target_id uuid,
    client_addr inet,
    detail jsonb not null default '{}'
);
create index audit_events_at_idx on audit_events (at);
create index audit_events_actor_idx on audit_events (actor_id, at);
create index audit_events_target_idx on audit_events (target_kind, target_id, at);

-- The audit trail is append-only for the application: no update or delete path, enforced here.
create function audit_events_are_append_only() returns trigger
language plpgsql as $$
begin
    raise exception 'audit_events is append-only';
end;
$$;
create trigger audit_events_append_only
    before update or delete on audit_events
    for each row execute function audit_events_are_append_only();
create trigger audit_events_no_truncate
    before truncate on audit_events
    for each statement execute function audit_events_are_append_only();

-- Fixed-window counters (sign-in attempts per address and per account), shared by every replica.
create table rate_limit_hits (
    key text not null,
    window_start timestamptz not null,
    hits integer not null,
    primary key (key, window_start)
);
create index rate_limit_hits_window_idx on rate_limit_hits (window_start);
