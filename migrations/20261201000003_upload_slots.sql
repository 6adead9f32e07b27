-- Uploads running per user, to bound how many one person runs at once. Each slot has a lease its
-- server renews while the upload runs: a slot whose server died frees itself when the lease ends.
create table upload_slots (
    id uuid primary key,
    user_id uuid not null,
    started_at timestamptz not null default now(),
    lease_until timestamptz not null
);
create index upload_slots_user_idx on upload_slots (user_id);
