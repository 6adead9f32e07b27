-- The photo an owner picked to show their pet on the home page: one of the pet's own documents. A flag on
-- the document (at most one per pet) rather than a column on pets, so pets never reference documents and a
-- restore loads the tables in their order; a purged document takes its flag with it.
alter table documents add column profile_photo boolean not null default false;
create unique index documents_one_profile_photo_idx on documents (pet_id) where profile_photo;

-- The staff home lists the records a clinic wrote this week.
create index medical_records_clinic_created_idx on medical_records (clinic_id, created_at desc);
