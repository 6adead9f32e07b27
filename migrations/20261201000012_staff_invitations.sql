-- Staff are invited by e-mail: the invitee chooses their own password from the link, so no admin ever
-- sees or sets it. Only the SHA-256 of the link's token is kept; an invitation works once, for 7 days.
create table staff_invitations (
    token_hash bytea primary key,
    email text not null check (email = lower(email)),
    display_name text not null,
    clinic_id uuid not null references clinics (id) on delete cascade,
    also_admin boolean not null default false,
    invited_by uuid references users (id) on delete set null,
    created_at timestamptz not null default now(),
    expires_at timestamptz not null,
    accepted_at timestamptz,
    accepted_user uuid references users (id) on delete set null
);
create index staff_invitations_email on staff_invitations (email);
create index staff_invitations_expiry on staff_invitations (expires_at);
