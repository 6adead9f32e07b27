-- Rate limits count bytes as well as attempts (uploaded and downloaded bytes per user and hour):
-- a 32-bit counter would overflow at 2 GiB.
alter table rate_limit_hits alter column hits type bigint;
