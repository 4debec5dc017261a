-- Units (CONTRACT §7.2): programmes, grants and ledger entries are each in
-- one unit, 'seconds' (voice), 'bytes' (data) or 'sms'; a usage draws only
-- from grants of its own unit. Every row written before this migration is
-- in seconds, which the default says.
--
-- The amount columns keep their names and hold the amount in the row's
-- unit: programmes.pack_seconds is the pack's amount, grants.seconds the
-- grant's, and ledger_entries' billable_seconds, covered_seconds,
-- overage_seconds and seconds (and the draws' "seconds") the entry's. A
-- query adding up seconds must therefore select unit = 'seconds'
-- (statements, reconciliation and programme figures do); the API shows the
-- amounts of other units as granted/remaining and billable/covered/overage,
-- never as *_seconds. Renaming the columns was judged not worth a rewrite
-- of every partition of the ledger and of every reader at once; the CHECKs
-- below keep the words exact. duration_seconds stays seconds for every
-- unit; a data session's volume as the carrier sent it is volume_bytes.
--
-- (00009 stays unused.)

-- +goose Up
ALTER TABLE programmes ADD COLUMN unit text NOT NULL DEFAULT 'seconds',
    ADD CONSTRAINT programme_unit_known CHECK (unit IN ('seconds', 'bytes', 'sms'));
ALTER TABLE grants ADD COLUMN unit text NOT NULL DEFAULT 'seconds',
    ADD CONSTRAINT grant_unit_known CHECK (unit IN ('seconds', 'bytes', 'sms'));
ALTER TABLE ledger_entries ADD COLUMN unit text NOT NULL DEFAULT 'seconds',
    ADD COLUMN volume_bytes bigint NOT NULL DEFAULT 0,
    ADD CONSTRAINT ledger_unit_known CHECK (unit IN ('seconds', 'bytes', 'sms')),
    ADD CONSTRAINT ledger_volume_bytes_not_negative CHECK (volume_bytes >= 0);

-- +goose Down
ALTER TABLE ledger_entries DROP COLUMN volume_bytes, DROP COLUMN unit;
ALTER TABLE grants DROP COLUMN unit;
ALTER TABLE programmes DROP COLUMN unit;
