-- The document store: one row per file, committed only after S3 confirmed the whole object.

create table documents (
    id uuid primary key,
    pet_id uuid not null references pets (id),
    record_id uuid references medical_records (id),
    uploaded_by uuid not null references users (id),
    -- The file name as the uploader's device named it, sanitised; never used as a storage key.
    original_filename text not null check (length(original_filename) between 1 and 255),
    -- Sniffed from the bytes, never taken from the request.
    content_type text not null,
    size_bytes bigint not null check (size_bytes > 0),
    sha256 bytea not null check (length(sha256) = 32),
    crc32 bigint not null check (crc32 between 0 and 4294967295),
    bucket text not null,
    object_key text not null unique,
    caption text check (length(caption) <= 500),
    category text check (category in
        ('lab_result', 'x_ray', 'invoice', 'vaccination_certificate', 'prescription', 'report', 'photo', 'other')),
    thumbnail_key text,
    -- pending: waiting for the thumbnail task; done; none: not an image we can thumbnail; failed.
    thumbnail_state text not null default 'none' check (thumbnail_state in ('pending', 'done', 'none', 'failed')),
    created_at timestamptz not null default now(),
    -- In the trash since; purged after the retention period.
    deleted_at timestamptz,
    deleted_by uuid references users (id),
    -- What the integrity check last found wrong (missing object, size or checksum mismatch).
    integrity_problem text,
    integrity_checked_at timestamptz
);
create index documents_pet_idx on documents (pet_id, created_at desc);
create index documents_record_idx on documents (record_id) where record_id is not null;
create index documents_trash_idx on documents (deleted_at) where deleted_at is not null;
create index documents_thumbnail_queue_idx on documents (created_at) where thumbnail_state = 'pending';
create index documents_integrity_idx on documents (id) where integrity_problem is not null;

-- Views and downloads are audited with the document as target.
create index audit_events_target_recent_idx on audit_events (actor_id, action, target_id, at);
