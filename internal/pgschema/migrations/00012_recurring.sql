-- Recurring programmes (CONTRACT §7.2): a programme with a recurrence gives
-- one grant per eligible seafarer per month, issued by quota.RecurringEngine
-- (quota/recurring.go, quota/pgrecurring.go) without an issuance.
--
-- programmes gains the recurrence (every 'month', while 'signed_on',
-- rollover_max, time_zone) and its audience: exactly one of a company (a
-- foreign key, so an unknown company is refused), a vessel IMO or everyone.
-- A programme without a recurrence has none of these, as before; a
-- recurring one has no valid_days (0): its grants run to the month's end.
--
-- One grant per (programme, seafarer, month). grants.recurring_month names
-- the month ("YYYY-MM" in the programme's zone) of a recurring grant, NULL
-- for a grant of an issuance; grant_once_per_programme_month makes a second
-- grant for the same month impossible, whichever replica or re-run tries.
-- The grant id is also a function of the three (quota.RecurringGrantID).
--
-- Budget per month. recurring_months keeps, per programme and month, the
-- budget in force (a copy of budget_packs, 0 = unlimited) and the packs and
-- seconds issued; its row is locked (FOR UPDATE) by the transaction that
-- inserts the month's grants and raises the counters, and
-- recurring_month_within_budget refuses a transaction that would pass the
-- budget. programmes.packs_issued stays 0 for a recurring programme.
--
-- recurring_unannounced lists recurring grants committed here whose hot copy
-- (Redis) and announcement (ledger entry, Kafka) are not yet confirmed; a
-- sweep adds them to Redis (idempotent), announces them and deletes the row.
-- Empty at steady state; after a crash it is the repair list.

-- +goose Up
ALTER TABLE programmes
    ADD COLUMN recurrence_every text,
    ADD COLUMN recurrence_while text,
    ADD COLUMN rollover_max bigint,
    ADD COLUMN time_zone text,
    ADD COLUMN audience_company_id text COLLATE "C",
    ADD COLUMN audience_vessel_imo text COLLATE "C",
    ADD COLUMN audience_all boolean NOT NULL DEFAULT false,
    ADD CONSTRAINT programme_audience_company_fkey FOREIGN KEY (audience_company_id) REFERENCES companies (id),
    ADD CONSTRAINT programme_recurrence_shape CHECK (
        (recurrence_every IS NULL AND recurrence_while IS NULL AND rollover_max IS NULL AND time_zone IS NULL
            AND audience_company_id IS NULL AND audience_vessel_imo IS NULL AND NOT audience_all)
        OR (recurrence_every = 'month' AND recurrence_while = 'signed_on' AND rollover_max >= 0 AND time_zone <> ''
            AND num_nonnulls(audience_company_id, audience_vessel_imo, nullif(audience_all, false)) = 1)),
    DROP CONSTRAINT programme_valid_days_positive,
    ADD CONSTRAINT programme_valid_days_positive
        CHECK (valid_days > 0 OR (valid_days = 0 AND recurrence_every IS NOT NULL));

-- The sweep lists the recurring programmes active now.
CREATE INDEX programmes_recurring ON programmes (id) WHERE recurrence_every IS NOT NULL;

ALTER TABLE grants ADD COLUMN recurring_month text COLLATE "C",
    ADD CONSTRAINT grant_recurring_month_shape CHECK (recurring_month ~ '^[0-9]{4}-(0[1-9]|1[0-2])$');

CREATE UNIQUE INDEX grant_once_per_programme_month ON grants (programme_id, seafarer_id, recurring_month)
    WHERE recurring_month IS NOT NULL;

CREATE TABLE recurring_months (
    programme_id   text COLLATE "C" NOT NULL,
    month          text COLLATE "C" NOT NULL,
    budget_packs   bigint NOT NULL,
    packs_issued   bigint NOT NULL DEFAULT 0,
    seconds_issued bigint NOT NULL DEFAULT 0,
    CONSTRAINT recurring_months_pkey PRIMARY KEY (programme_id, month),
    CONSTRAINT recurring_month_programme_fkey FOREIGN KEY (programme_id) REFERENCES programmes (id),
    CONSTRAINT recurring_month_shape CHECK (month ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    CONSTRAINT recurring_month_counts_not_negative CHECK (budget_packs >= 0 AND packs_issued >= 0 AND seconds_issued >= 0),
    CONSTRAINT recurring_month_within_budget CHECK (budget_packs = 0 OR packs_issued <= budget_packs)
);

CREATE TABLE recurring_unannounced (
    grant_id text COLLATE "C" NOT NULL,
    CONSTRAINT recurring_unannounced_pkey PRIMARY KEY (grant_id),
    CONSTRAINT recurring_unannounced_grant_fkey FOREIGN KEY (grant_id) REFERENCES grants (id)
);

-- +goose Down
DROP TABLE recurring_unannounced;
DROP TABLE recurring_months;
DROP INDEX grant_once_per_programme_month;
ALTER TABLE grants DROP CONSTRAINT grant_recurring_month_shape, DROP COLUMN recurring_month;
DROP INDEX programmes_recurring;
ALTER TABLE programmes
    DROP CONSTRAINT programme_valid_days_positive,
    DROP CONSTRAINT programme_recurrence_shape,
    DROP CONSTRAINT programme_audience_company_fkey,
    DROP COLUMN recurrence_every,
    DROP COLUMN recurrence_while,
    DROP COLUMN rollover_max,
    DROP COLUMN time_zone,
    DROP COLUMN audience_company_id,
    DROP COLUMN audience_vessel_imo,
    DROP COLUMN audience_all;
ALTER TABLE programmes ADD CONSTRAINT programme_valid_days_positive CHECK (valid_days > 0);
