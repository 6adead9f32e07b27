-- Which sign-in (an opaque random reference, never the session id) an audit event came from, so views
-- are recorded once per session, document and window rather than once per user.
alter table audit_events add column session_ref uuid;
drop index audit_events_target_recent_idx;
create index audit_events_recent_view_idx on audit_events (target_id, action, at);
