-- Views are audited once per session (or actor), action and target within a window. Each recorded view
-- leaves a mark here until its window ends, so one statement both claims the window and writes the
-- audit entry (insert ... on conflict), instead of a transaction with a lock, a look-up and an insert.
-- Marks are short-lived: housekeeping deletes ended ones, and backups leave the table out.
create table audit_view_marks (
    key text primary key,
    until timestamptz not null
);
create index audit_view_marks_until_idx on audit_view_marks (until);
