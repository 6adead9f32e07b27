-- Storage quotas: what owners upload counts against the owner, what clinic staff upload against the
-- clinic. A document counts (in the trash too) until it is purged and its row deleted.
alter table documents add column charged_clinic_id uuid references clinics (id);
-- Existing documents uploaded by staff of a clinic the pet is shared with were uploaded for that clinic.
update documents d set charged_clinic_id = u.clinic_id
  from users u
 where u.id = d.uploaded_by
   and u.clinic_id is not null
   and exists (select 1 from pet_clinic_access a where a.pet_id = d.pet_id and a.clinic_id = u.clinic_id);
create index documents_owner_usage_idx on documents (uploaded_by) include (size_bytes)
  where charged_clinic_id is null;
create index documents_clinic_usage_idx on documents (charged_clinic_id) include (size_bytes)
  where charged_clinic_id is not null;

-- An upload reserves space before its bytes reach the store: the reservation lives on its slot, so a
-- server that dies mid-upload gives the space back when the slot's lease ends.
alter table upload_slots
  add column reserved_bytes bigint not null default 0 check (reserved_bytes >= 0),
  add column payer_user_id uuid,
  add column payer_clinic_id uuid;
create index upload_slots_payer_user_idx on upload_slots (payer_user_id) where payer_user_id is not null;
create index upload_slots_payer_clinic_idx on upload_slots (payer_clinic_id) where payer_clinic_id is not null;
