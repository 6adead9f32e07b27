-- Full-text search of medical records (title and body). Each row carries the text-search configuration
-- its vector was made with (PAWFILE_SEARCH_LANGUAGE; Pawfile moves every row to the configured one at
-- start-up), and the vector is generated from it: the title weighs more than the body.
alter table medical_records
  add column search_language regconfig not null default 'english',
  add column search tsvector generated always as (
    setweight(to_tsvector(search_language, title), 'A') || setweight(to_tsvector(search_language, body), 'B')
  ) stored;
create index medical_records_search_idx on medical_records using gin (search);
