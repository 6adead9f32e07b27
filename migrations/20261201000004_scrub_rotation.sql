-- When each document's bytes were last read back and hashed by the integrity scrub: the scrub takes
-- the longest-unchecked first, so every document is re-hashed within the scrub period.
alter table documents add column rehashed_at timestamptz;
create index documents_rehashed_idx on documents (rehashed_at nulls first);
