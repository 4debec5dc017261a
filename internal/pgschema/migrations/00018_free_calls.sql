-- Free calls (CONTRACT §7.4 free_numbers): a call or SMS to one of the
-- tariff's free numbers (emergency, medical advice, the union's hotline)
-- is recorded as a debit with free = true. It bills nothing, so it draws
-- nothing and is never overage; the flag is what lets statements count
-- free calls apart. Every entry written before this migration is not free.
--
-- On the partitioned parent, so every partition, present and future, has
-- the column. A constant default adds it without rewriting a partition;
-- the constraint is checked once per partition.
--
-- (00017 belongs to the seafarers' languages.)

-- +goose Up
ALTER TABLE ledger_entries ADD COLUMN free boolean NOT NULL DEFAULT false,
    ADD CONSTRAINT ledger_free_call_bills_nothing CHECK (NOT free OR kind <> 'debit'
        OR (billable_seconds = 0 AND covered_seconds = 0 AND overage_seconds = 0 AND overage_amount_minor = 0));

-- +goose Down
ALTER TABLE ledger_entries DROP COLUMN free;
