-- An upload takes a slot and reserves storage before it reads its body. Each was a transaction of
-- five or six statements (lock, count, write); as functions each is one round trip, with the same lock
-- and the same counts.

-- What a payer's storage holds: its documents (bytes and count), and what running uploads other than
-- `except_slot` have reserved for it. The one definition the quota checks and the usage pages share.
create function storage_counted(payer_user uuid, payer_clinic uuid, except_slot uuid)
returns table (used bigint, documents bigint, reserved bigint)
language sql stable as $$
    select stored.used, stored.documents,
      (select coalesce(sum(s.reserved_bytes), 0)::bigint from upload_slots s
        where s.lease_until > now() and s.id is distinct from except_slot
          and ((payer_user is not null and s.payer_user_id = payer_user)
            or (payer_clinic is not null and s.payer_clinic_id = payer_clinic)))
    from (select coalesce(sum(d.size_bytes), 0)::bigint as used, count(*) as documents from documents d
           where (payer_user is not null and d.uploaded_by = payer_user and d.charged_clinic_id is null)
              or (payer_clinic is not null and d.charged_clinic_id = payer_clinic)) as stored
$$;

-- Takes one of a user's upload slots unless `most` are taken (the count and the insert under a lock per
-- user). Returns how many were running: the slot was taken when that is below `most`.
create function take_upload_slot(slot uuid, owner uuid, most bigint, lease_seconds float8)
returns bigint
language plpgsql as $$
declare
    running bigint;
begin
    perform pg_advisory_xact_lock(hashtextextended('upload_slots:' || owner::text, 0));
    select count(*) into running from upload_slots s where s.user_id = owner and s.lease_until > now();
    if running < most then
        delete from upload_slots s where s.user_id = owner and s.lease_until <= now();
        insert into upload_slots (id, user_id, lease_until)
        values (slot, owner, now() + make_interval(secs => lease_seconds));
    end if;
    return running;
end
$$;

-- Sets slot `slot`'s reservation for a payer to between `needed` and `wanted` bytes, as much as its
-- quota leaves beside what is stored and what other uploads reserved (under the payer's lock,
-- `lock_key`). Returns the bytes reserved, or null when `needed` does not fit (nothing changes), with
-- the counts the refusal names.
create function reserve_storage(
    slot uuid, lock_key text, payer_user uuid, payer_clinic uuid, quota bigint, needed bigint, wanted bigint
)
returns table (reserved bigint, used bigint, others bigint)
language plpgsql as $$
declare
    counted record;
    available bigint;
begin
    perform pg_advisory_xact_lock(hashtextextended(lock_key, 0));
    select * into counted from storage_counted(payer_user, payer_clinic, slot);
    available := greatest(quota - counted.used - counted.reserved, 0);
    if needed > available then
        return query select null::bigint, counted.used, counted.reserved;
        return;
    end if;
    update upload_slots s set reserved_bytes = least(wanted, available), payer_user_id = payer_user,
           payer_clinic_id = payer_clinic
     where s.id = slot;
    return query select least(wanted, available), counted.used, counted.reserved;
end
$$;
