-- Two-factor sign-in (TOTP, RFC 6238). `totp_secret` is set when enrolment starts and counts only once
-- `totp_enabled_at` is set (the first code was right). `totp_last_step` is the newest time step a code
-- was accepted for: a code is accepted once, never again within its window.
alter table users
    add column totp_secret bytea,
    add column totp_enabled_at timestamptz,
    add column totp_last_step bigint,
    add constraint users_totp_enabled_has_secret check (totp_enabled_at is null or totp_secret is not null);

-- Ten single-use recovery codes per account, stored as SHA-256 (each has 50 random bits).
create table totp_recovery_codes (
    user_id uuid not null references users (id) on delete cascade,
    code_hash bytea not null,
    used_at timestamptz,
    primary key (user_id, code_hash)
);
