-- Owners delete their own account: the request starts a 30-day grace period (signing in cancels it);
-- then their uploads are purged, their pets detached or removed, and the row pseudonymised (e-mail and
-- name replaced), so audit rows keep pointing at a pseudonym.
alter table users
    add column deletion_requested_at timestamptz,
    add column deleted_at timestamptz;
create index users_deletion_due on users (deletion_requested_at) where deletion_requested_at is not null and deleted_at is null;

-- A pet whose owner deleted their account and that a clinic wrote records for stays, as that clinic's
-- record, detached from the person.
alter table pets add column detached_at timestamptz;
alter table pets drop constraint pets_have_an_owner_or_contact;
alter table pets add constraint pets_have_an_owner_or_contact
    check (owner_id is not null or owner_email is not null or detached_at is not null);
