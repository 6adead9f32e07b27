-- Backups (NR-8, NR-9): each run, the catalogue of encrypted objects in the backup bucket, and which
-- objects each snapshot references. None of these tables is part of a backup's database dump: a restore
-- rebuilds them from the manifests in the backup bucket.

create table backup_runs (
    -- Also the snapshot id written into the manifest.
    id uuid primary key,
    trigger text not null check (trigger in ('schedule', 'startup', 'admin', 'cli', 'restored')),
    triggered_by uuid references users (id),
    started_at timestamptz not null default now(),
    finished_at timestamptz,
    status text not null check (status in ('running', 'complete', 'failed', 'interrupted', 'cancelled')),
    -- The age recipients the run encrypted to, sorted and joined by spaces; 'none' when unencrypted.
    recipients text not null,
    objects_total integer not null default 0,
    objects_done integer not null default 0,
    bytes_total bigint not null default 0,
    bytes_done bigint not null default 0,
    -- Stored objects written by this run, and catalogued ones it referenced again.
    objects_copied integer not null default 0,
    objects_reused integer not null default 0,
    bytes_copied bigint not null default 0,
    -- Plaintext bytes the snapshot holds (tables and files).
    snapshot_bytes bigint not null default 0,
    -- Named before it is written, so a run that died after writing it can be settled.
    manifest_object text,
    pruned_at timestamptz,
    error text
);
create index backup_runs_started_idx on backup_runs (started_at desc);
create unique index backup_runs_one_running on backup_runs ((true)) where status = 'running';

-- Every object stored in the backup bucket (encrypted table dumps and files).
create table backup_objects (
    name text primary key,
    plaintext_sha256 bytea not null check (length(plaintext_sha256) = 32),
    plaintext_size bigint not null,
    recipients text not null,
    ciphertext_size bigint not null,
    ciphertext_sha256 bytea not null check (length(ciphertext_sha256) = 32),
    created_at timestamptz not null default now(),
    -- Set when the bucket listing did not show the object; the next run that needs it uploads it again.
    missing_since timestamptz
);
create unique index backup_objects_dedup_key on backup_objects (plaintext_sha256, recipients);

create table backup_snapshot_objects (
    run_id uuid not null references backup_runs (id),
    object_name text not null references backup_objects (name),
    primary key (run_id, object_name)
);
create index backup_snapshot_objects_object_idx on backup_snapshot_objects (object_name);

-- Multipart uploads a run has open, so a later run can abort those of a run that died.
create table backup_uploads (
    run_id uuid not null references backup_runs (id),
    object_name text not null,
    upload_id text not null,
    primary key (run_id, object_name)
);

-- Restore drills: the newest snapshot restored into a scratch database and every object hashed.
create table backup_drills (
    id uuid primary key,
    run_id uuid not null,
    at timestamptz not null default now(),
    passed boolean not null,
    detail text not null
);
create index backup_drills_at_idx on backup_drills (at desc);
