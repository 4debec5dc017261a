-- Statements as SQL over the ledger (quota.PGStatements): which periods are
-- closed, and what ledger_entries needs so that a statement is an index
-- range of one period, not a scan of every month.
--
-- Periods. statement_periods has a row for each period that was closed (a
-- period without a row is open). Which statement counts a debit is decided
-- once, when quota.PGLedger.Append stores it: the period of its call time
-- while that is open, else the first open period after it, with
-- adjusts_period naming the call's own period. Append holds a shared
-- transaction-level advisory lock on every period it counts into and reads
-- the closed periods after taking it; a close takes the exclusive lock on its
-- period, inserts its row and commits. So a close waits for every Append
-- counting into the period, and every later Append sees it closed: after the
-- close commits nothing more is counted in it, and nothing in flight is
-- lost. A closed period's statements are therefore simply its rows.
-- seafarers is how many seafarers had figures in it when it closed.
--
-- programme_shares. The share of each programme in a debit, in the order its
-- draws first name the programme: [{"programme_id","seconds","welfare_minor"}]
-- (welfare_minor: the increments of covered time whose start the
-- programme's draws hold, times the wholesale price; the shares add up to
-- the debit's welfare cost). NULL when no grant of a programme covered the
-- debit. It is written with the entry, never changed, and is not part of
-- the entry as read back (draws is).
--
-- Indexes. ledger_debits_by_statement serves a period's statements (a
-- seafarer's, a company's crew, and with ledger_debits_by_programme a
-- programme's); ledger_debits_by_programme also serves a programme's seconds
-- used over all periods. Both are partial on debits, so grants and voids
-- cost them nothing.

-- +goose Up
CREATE TABLE statement_periods (
    period    text COLLATE "C" NOT NULL,
    status    text NOT NULL,
    closed_at timestamptz,
    seafarers bigint,
    CONSTRAINT statement_periods_pkey PRIMARY KEY (period),
    CONSTRAINT statement_period_is_a_month CHECK (period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    CONSTRAINT statement_period_status_is_open_or_closed CHECK (status IN ('open', 'closed')),
    CONSTRAINT statement_period_closed_at_when_closed CHECK ((status = 'closed') = (closed_at IS NOT NULL))
);

ALTER TABLE ledger_entries ADD COLUMN programme_shares jsonb;
ALTER TABLE ledger_entries ADD CONSTRAINT ledger_programme_shares_are_an_array
    CHECK (programme_shares IS NULL OR jsonb_typeof(programme_shares) = 'array');

-- Debits stored before this migration: each programme's seconds from the
-- draws; the welfare cost split by the rule above at the default 60-second
-- increment (the increment a debit was rated with is not in the row; the
-- writer gives exact shares from now on). A remainder the default increment
-- does not explain goes to the first programme.
WITH draw AS (
    SELECT e.seafarer_id, e.filed_at, e.id, e.covered_seconds, coalesce(e.welfare_cost_minor, 0) AS welfare,
           d.value->>'programme_id' AS programme_id, (d.value->>'seconds')::bigint AS seconds, d.ordinality AS o,
           sum((d.value->>'seconds')::bigint) OVER w AS drawn
    FROM ledger_entries e CROSS JOIN LATERAL jsonb_array_elements(e.draws) WITH ORDINALITY d
    WHERE e.kind = 'debit' AND e.draws <> '[]'
    WINDOW w AS (PARTITION BY e.seafarer_id, e.filed_at, e.id ORDER BY d.ordinality)
), priced AS (
    SELECT *, (drawn + 59) / 60 - (drawn - seconds + 59) / 60 AS started,
           CASE WHEN covered_seconds > 0 THEN welfare / ((covered_seconds + 59) / 60) ELSE 0 END AS price,
           CASE WHEN covered_seconds > 0 THEN welfare % ((covered_seconds + 59) / 60) ELSE 0 END AS rest
    FROM draw
), per_programme AS (
    SELECT seafarer_id, filed_at, id, programme_id, min(o) AS first, sum(seconds) AS seconds,
           sum(started * price) AS welfare_minor, max(rest) AS rest
    FROM priced
    WHERE programme_id IS NOT NULL AND programme_id <> '' AND seconds > 0
    GROUP BY seafarer_id, filed_at, id, programme_id
), per_entry AS (
    SELECT seafarer_id, filed_at, id,
           jsonb_agg(jsonb_build_object('programme_id', programme_id, 'seconds', seconds,
               'welfare_minor', welfare_minor + CASE WHEN first = min_first THEN rest ELSE 0 END) ORDER BY first) AS shares
    FROM (SELECT *, min(first) OVER e AS min_first
          FROM per_programme WINDOW e AS (PARTITION BY seafarer_id, filed_at, id)) p
    GROUP BY seafarer_id, filed_at, id
)
UPDATE ledger_entries l SET programme_shares = per_entry.shares
FROM per_entry
WHERE l.seafarer_id = per_entry.seafarer_id AND l.filed_at = per_entry.filed_at AND l.id = per_entry.id;

CREATE INDEX ledger_debits_by_statement ON ledger_entries (statement_period, seafarer_id) WHERE kind = 'debit';
CREATE INDEX ledger_debits_by_programme ON ledger_entries USING gin (programme_shares jsonb_path_ops)
    WHERE kind = 'debit' AND programme_shares IS NOT NULL;

-- +goose Down
DROP INDEX ledger_debits_by_programme;
DROP INDEX ledger_debits_by_statement;
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_programme_shares_are_an_array;
ALTER TABLE ledger_entries DROP COLUMN programme_shares;
DROP TABLE statement_periods;
