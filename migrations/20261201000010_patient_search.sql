-- A clinic's patient search finds text anywhere in a pet's name or its owner's name or e-mail
-- (`ilike '%…%'`). Trigram indexes find those without reading every pet the clinic sees; the search
-- asks each of them on its own and joins the few pets found to the clinic's shares.
create extension if not exists pg_trgm;
create index pets_name_trgm_idx on pets using gin (name gin_trgm_ops);
create index pets_owner_name_trgm_idx on pets using gin (owner_name gin_trgm_ops) where owner_id is null;
create index pets_owner_email_trgm_idx on pets using gin (owner_email gin_trgm_ops) where owner_id is null;
create index users_display_name_trgm_idx on users using gin (display_name gin_trgm_ops);
create index users_email_trgm_idx on users using gin (email gin_trgm_ops);
