-- Mail to send, sent by a background task with retries. A message that carries a link keeps its token
-- only until it is sent or given up (`message` is cleared then); the subject stays for the admin page.
create table mail_outbox (
    id uuid primary key,
    recipient text not null,
    kind text not null,
    subject text not null,
    message jsonb,
    created_at timestamptz not null default now(),
    attempts integer not null default 0,
    next_attempt_at timestamptz not null default now(),
    last_error text,
    sent_at timestamptz,
    failed_at timestamptz,
    constraint mail_outbox_done check (sent_at is null or failed_at is null),
    constraint mail_outbox_token_kept_while_waiting
        check ((sent_at is null and failed_at is null) or message is null)
);
create index mail_outbox_due on mail_outbox (next_attempt_at) where sent_at is null and failed_at is null;
create index mail_outbox_failed on mail_outbox (failed_at desc) where failed_at is not null;

-- A sign-up waiting for its address to be confirmed. No account exists until the link is followed, so
-- nobody can sign in with an unconfirmed address and a stranger's attempt leaves no account behind.
-- Only the SHA-256 of the token is kept.
create table pending_registrations (
    token_hash bytea primary key,
    email text not null check (email = lower(email)),
    display_name text not null,
    password_hash text not null,
    claim_code text,
    created_at timestamptz not null default now(),
    expires_at timestamptz not null
);
create index pending_registrations_email on pending_registrations (email);
create index pending_registrations_expiry on pending_registrations (expires_at);

-- Password reset links: the SHA-256 of the token, single use, short-lived.
create table password_resets (
    token_hash bytea primary key,
    user_id uuid not null references users (id) on delete cascade,
    created_at timestamptz not null default now(),
    expires_at timestamptz not null,
    used_at timestamptz
);
create index password_resets_user on password_resets (user_id);
create index password_resets_expiry on password_resets (expires_at);
