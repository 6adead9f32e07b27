-- When each background task last finished a run, on any replica (the admin dashboard's "last
-- reconcile", the metrics' integrity timestamp).
create table background_runs (
    task text primary key,
    finished_at timestamptz not null
);

-- What the installation holds, one row per day: the whole installation (clinic_id null) and each clinic
-- (documents attached to its records). Recorded by the server through the day (the last recording of a
-- day stands), so the admin dashboard draws history without scanning the bucket.
create table daily_usage (
    day date not null,
    clinic_id uuid references clinics (id) on delete cascade,
    stored_bytes bigint not null check (stored_bytes >= 0),
    documents bigint not null check (documents >= 0),
    uploads bigint not null check (uploads >= 0),
    recorded_at timestamptz not null default now(),
    unique nulls not distinct (day, clinic_id)
);
