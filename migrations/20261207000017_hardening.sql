-- Objects in the backup bucket that Pawfile refused to believe (unsigned or forged), as background
-- work found them; the Backups page lists them without reading the bucket.
create table backup_refused_objects (
    name text primary key,
    reason text not null,
    found_at timestamptz not null default now()
);

-- The daily re-read of backup objects (ciphertext hashes) goes round the catalogue, oldest read first;
-- what it finds wrong with one (altered, missing) is kept until a backup stores the object again.
alter table backup_objects add column last_read_at timestamptz;
alter table backup_objects add column damage text;

-- However a password changes (the account page, a reset link, an administrator's tool, a later
-- feature), the reset links sent before stop working: one could otherwise set yet another password.
create function spend_reset_links() returns trigger language plpgsql as $$
begin
    update password_resets set used_at = now() where user_id = new.id and used_at is null;
    return new;
end
$$;

create trigger users_password_changed
    after update of password_hash on users
    for each row when (old.password_hash is distinct from new.password_hash)
    execute function spend_reset_links();

-- A complete snapshot whose manifest is gone from the backup bucket cannot be restored: the checks that
-- list the bucket (each backup, `backup list`, `backup verify`, the daily re-read) mark it so.
alter table backup_runs add column manifest_missing_since timestamptz;

-- Uploads of unknown length reserve storage step by step, a step ahead of what has arrived. Counting
-- every other upload's reservation whole, two uploads that each fit alone but not together could each
-- hold a step the other needed, and both were refused. Now an upload must fit beside what is stored,
-- the whole reservations of the uploads that started before it, and only what the younger ones needed
-- (not their step ahead): the oldest always goes on, so at least one is stored, while uploads of
-- declared lengths (which need all they reserve) still never reserve more than the quota together.
-- What a reservation could not see is checked when an upload records its documents (settle_storage).
-- A refused upload gives its reservation back in the same call.
alter table upload_slots add column needed_bytes bigint not null default 0 check (needed_bytes >= 0);

create or replace function reserve_storage(
    slot uuid, lock_key text, payer_user uuid, payer_clinic uuid, quota bigint, needed bigint, wanted bigint
)
returns table (reserved bigint, used bigint, others bigint)
language plpgsql as $$
declare
    counted record;
    held bigint;
    available bigint;
begin
    perform pg_advisory_xact_lock(hashtextextended(lock_key, 0));
    select * into counted from storage_counted(payer_user, payer_clinic, slot);
    select coalesce(sum(case when (s.started_at, s.id) < (mine.started_at, mine.id) then s.reserved_bytes
                             else least(s.needed_bytes, s.reserved_bytes) end), 0)::bigint into held
      from upload_slots s, upload_slots mine
     where mine.id = slot and s.id <> slot and s.lease_until > now()
       and ((payer_user is not null and s.payer_user_id = payer_user)
         or (payer_clinic is not null and s.payer_clinic_id = payer_clinic));
    available := greatest(quota - counted.used - held, 0);
    if needed > available then
        -- The refused upload is over: what it held is given back at once, not when its request has
        -- unwound (an older upload checking meanwhile would count it, and be refused too).
        update upload_slots s set reserved_bytes = 0, needed_bytes = 0 where s.id = slot;
        return query select null::bigint, counted.used, counted.reserved;
        return;
    end if;
    update upload_slots s set reserved_bytes = least(wanted, available), needed_bytes = needed,
           payer_user_id = payer_user, payer_clinic_id = payer_clinic
     where s.id = slot;
    return query select least(wanted, available), counted.used, counted.reserved;
end
$$;

-- Gives slot `slot`'s reservation back inside the transaction that records its upload's documents,
-- after checking (under the payer's lock, held to the commit) that what is stored, those documents
-- included, fits the quota. Returns what is stored then, or null when it does not fit (nothing changes:
-- the caller rolls back).
create function settle_storage(slot uuid, lock_key text, payer_user uuid, payer_clinic uuid, quota bigint)
returns bigint
language plpgsql as $$
declare
    counted record;
begin
    perform pg_advisory_xact_lock(hashtextextended(lock_key, 0));
    select * into counted from storage_counted(payer_user, payer_clinic, slot);
    if counted.used > quota then
        return null;
    end if;
    update upload_slots set reserved_bytes = 0, needed_bytes = 0 where id = slot;
    return counted.used;
end
$$;

-- Whether the position where a photo was taken (EXIF GPS, maker notes, XMP) was removed at upload.
-- Photos stored before are as they came.
alter table documents add column location_removed boolean not null default false;
