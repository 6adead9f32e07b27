-- A multipart upload's id, recorded beside its announcement as soon as S3 gives it: stores that cannot
-- list multipart uploads (the embedded endpoint) need it to abort an upload that a crash left behind.
alter table upload_intents add column upload_id text;
