-- An upload announces its object key here before its first byte reaches S3, and the row goes in the
-- same transaction that records the document. Reconcile never removes an object whose upload is still
-- announced (a request with several large files can hold a finished object for a long time before its
-- rows are written); announcements older than the upload grace period are stale and removed.
create table upload_intents (
    object_key text primary key,
    started_at timestamptz not null default now()
);
