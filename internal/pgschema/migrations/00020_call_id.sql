-- The carrier's call id (data.call_id) of a debit or an adjust that has
-- one: a session's terminate carries its session id, the carrier's record
-- of a call its call_id. A rebuild of Redis's hot state reads it to tell a
-- terminated session the carrier's record has settled since (done) from
-- one still waiting for it (term), as Redis knew before it was lost.
--
-- On the partitioned parent, so every partition has it; nullable without
-- a default, so adding it rewrites nothing. Entries written before have
-- none, and a rebuild then takes their sessions as waiting, as it did.

-- +goose Up
ALTER TABLE ledger_entries ADD COLUMN call_id text;

-- +goose Down
ALTER TABLE ledger_entries DROP COLUMN call_id;
