-- The ledger: every change to a seafarer's balance (a call debited, a grant
-- issued or voided, an adjustment), kept for good. quota.PGLedger writes and
-- reads it.
--
-- Filing time. filed_at is the second an entry is filed under: a debit's
-- call time, a grant's or void's write time (and an adjustment's), truncated
-- to the whole second in UTC. Reads order by (filed_at DESC, id DESC), the
-- order the Redis ledger has always had; `at` and call_time keep the exact
-- times. filed_at is derived from the entry, so a redelivered entry carries
-- the same (seafarer_id, filed_at, id) and ON CONFLICT DO NOTHING keeps one
-- copy.
--
-- Partitions. One partition per calendar month of filed_at (UTC),
-- ledger_entries_YYYYMM, plus ledger_entries_default for anything else.
-- Months are created on demand by ledger_ensure_months, which the writer
-- calls with the months of a batch before inserting it, so rows never land
-- in the default partition in the normal course; the migration creates the
-- current and the next month. CREATE TABLE … PARTITION OF fails while the
-- default partition holds rows of the new range (someone inserted without
-- ensuring the month first), so ledger_ensure_months instead creates the
-- month as a table of its own, moves such rows into it and attaches it.
--
-- Paging. The primary key (seafarer_id, filed_at, id) is also the index
-- reads use: "a seafarer's entries newest first, from/to, after a cursor" is
-- a backward range scan of it in each partition, keyset-bounded by
-- (filed_at, id) < (cursor). id is COLLATE "C" so the database orders ids
-- bytewise, as Go compares strings.

-- +goose Up
CREATE TABLE ledger_entries (
    seafarer_id           text COLLATE "C" NOT NULL,
    filed_at              timestamptz NOT NULL,
    id                    text COLLATE "C" NOT NULL,
    kind                  text NOT NULL,
    at                    timestamptz NOT NULL,
    event_source          text,
    event_id              text,
    type                  text,
    msisdn                text,
    call_time             timestamptz,
    duration_seconds      bigint NOT NULL DEFAULT 0,
    billable_seconds      bigint NOT NULL DEFAULT 0,
    covered_seconds       bigint NOT NULL DEFAULT 0,
    overage_seconds       bigint NOT NULL DEFAULT 0,
    overage_amount_minor  bigint NOT NULL DEFAULT 0,
    currency              text,
    welfare_cost_minor    bigint,
    welfare_cost_currency text,
    statement_period      text,
    adjusts_period        text,
    called_number         text,
    visited_country       text,
    grant_id              text,
    programme_id          text,
    seconds               bigint NOT NULL DEFAULT 0,
    draws                 jsonb NOT NULL DEFAULT '[]',
    actor                 text,
    CONSTRAINT ledger_entries_pkey PRIMARY KEY (seafarer_id, filed_at, id),
    CONSTRAINT ledger_entry_ids_not_empty CHECK (seafarer_id <> '' AND id <> ''),
    CONSTRAINT ledger_kind_is_debit_grant_void_or_adjust CHECK (kind IN ('debit', 'grant', 'void', 'adjust')),
    CONSTRAINT ledger_seconds_not_negative CHECK (seconds >= 0),
    CONSTRAINT ledger_covered_seconds_not_negative CHECK (covered_seconds >= 0),
    CONSTRAINT ledger_debit_billable_is_covered_plus_overage
        CHECK (kind <> 'debit' OR billable_seconds = covered_seconds + overage_seconds),
    CONSTRAINT ledger_welfare_cost_has_currency
        CHECK ((welfare_cost_minor IS NULL) = (welfare_cost_currency IS NULL)),
    CONSTRAINT ledger_draws_are_an_array CHECK (jsonb_typeof(draws) = 'array'),
    -- filed_at is the whole second of the filing time, never anything else.
    CONSTRAINT ledger_filed_at_is_the_filing_second CHECK (
        filed_at = date_trunc('second', CASE WHEN kind = 'debit' AND call_time IS NOT NULL THEN call_time ELSE at END))
) PARTITION BY RANGE (filed_at);

CREATE TABLE ledger_entries_default PARTITION OF ledger_entries DEFAULT;

-- ledger_ensure_months makes sure the monthly partition of each given time
-- exists (months in UTC). Safe to call concurrently: creators serialise on
-- an advisory lock and re-check. Rows of a month that sit in the default
-- partition are moved into the new month's table before it is attached.
-- +goose StatementBegin
CREATE FUNCTION ledger_ensure_months(times timestamptz[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    t        timestamptz;
    month    timestamp;
    lo       timestamptz;
    hi       timestamptz;
    part     text;
    locked   boolean := false;
BEGIN
    FOREACH t IN ARRAY times LOOP
        month := date_trunc('month', t AT TIME ZONE 'UTC');
        lo := month AT TIME ZONE 'UTC';
        hi := (month + interval '1 month') AT TIME ZONE 'UTC';
        part := 'ledger_entries_' || to_char(month, 'YYYYMM');
        CONTINUE WHEN to_regclass(part) IS NOT NULL;
        IF NOT locked THEN
            PERFORM pg_advisory_xact_lock(hashtext('wuyou ledger_entries partitions'));
            -- No insert into the default partition while it is inspected.
            LOCK TABLE ledger_entries_default IN EXCLUSIVE MODE;
            locked := true;
        END IF;
        CONTINUE WHEN to_regclass(part) IS NOT NULL; -- another session made it
        -- A table of its own, attached: ATTACH takes a SHARE UPDATE
        -- EXCLUSIVE lock on ledger_entries, so reads and inserts go on,
        -- where CREATE TABLE … PARTITION OF would stop them all.
        EXECUTE format('CREATE TABLE %I (LIKE ledger_entries INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
        EXECUTE format('WITH moved AS (DELETE FROM ledger_entries_default WHERE filed_at >= $1 AND filed_at < $2 RETURNING *) '
                       'INSERT INTO %I SELECT * FROM moved', part) USING lo, hi;
        EXECUTE format('ALTER TABLE ledger_entries ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
    END LOOP;
END
$$;
-- +goose StatementEnd

SELECT ledger_ensure_months(ARRAY[now(), now() + interval '1 month']);

-- +goose Down
DROP TABLE ledger_entries;
DROP FUNCTION ledger_ensure_months(timestamptz[]);
