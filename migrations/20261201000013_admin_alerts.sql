-- Problems admins were told about by mail, each once: a failed backup run, a backup gone stale, a failed
-- restore drill, a document the integrity check flagged. The key names the problem.
create table admin_alerts (
    key text primary key,
    description text not null,
    mailed_at timestamptz not null default now()
);
