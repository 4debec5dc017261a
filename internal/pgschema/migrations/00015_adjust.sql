-- Adjust entries (CONTRACT §7.3): when the carrier's record of a call (a
-- CDR) arrives for a real-time session that was already terminated and
-- charged, the difference between the CDR's billable amount and the
-- session's charge is one ledger entry of kind 'adjust', id "a_" + the
-- CDR's identity. Its amounts are signed differences: billable_seconds,
-- covered_seconds, overage_seconds, overage_amount_minor,
-- welfare_cost_minor, and the "seconds" of its draws and programme_shares
-- (a negative adjust gives covered time back to the grants the session
-- drew). An adjust of no difference (all zero, no draws) records that a
-- CDR settled its session. It is filed under the second it was applied
-- (at), as ledger_filed_at_is_the_filing_second already says, and is
-- counted in statements like a debit (statement_period, adjusts_period,
-- decided by quota.PGLedger.Append under the period locks of 00005): its
-- amounts are added to the figures, and it is never counted as a call.
--
-- Constraints. covered_seconds may be negative on an adjust only; an
-- adjust keeps billable = covered + overage, as a debit does. One ALTER
-- TABLE, so each partition is scanned once to check both.
--
-- Indexes, partial on adjusts so they hold only the few adjust rows:
-- ledger_adjusts_by_statement serves a period's statements beside
-- ledger_debits_by_statement; ledger_adjusts_by_programme a programme's
-- figures beside ledger_debits_by_programme; ledger_adjusts_by_call_time
-- the calls made in a period (reconciliation with the carrier), which for
-- an adjust is not its filing month.
--
-- (00009 stays unused.)

-- +goose Up
ALTER TABLE ledger_entries
    DROP CONSTRAINT ledger_covered_seconds_not_negative,
    ADD CONSTRAINT ledger_covered_seconds_not_negative CHECK (covered_seconds >= 0 OR kind = 'adjust'),
    ADD CONSTRAINT ledger_adjust_billable_is_covered_plus_overage
        CHECK (kind <> 'adjust' OR billable_seconds = covered_seconds + overage_seconds);

CREATE INDEX ledger_adjusts_by_statement ON ledger_entries (statement_period, seafarer_id) WHERE kind = 'adjust';
CREATE INDEX ledger_adjusts_by_programme ON ledger_entries USING gin (programme_shares jsonb_path_ops)
    WHERE kind = 'adjust' AND programme_shares IS NOT NULL;
CREATE INDEX ledger_adjusts_by_call_time ON ledger_entries (call_time) WHERE kind = 'adjust';

-- +goose Down
DROP INDEX ledger_adjusts_by_call_time;
DROP INDEX ledger_adjusts_by_programme;
DROP INDEX ledger_adjusts_by_statement;
ALTER TABLE ledger_entries
    DROP CONSTRAINT ledger_adjust_billable_is_covered_plus_overage,
    DROP CONSTRAINT ledger_covered_seconds_not_negative,
    ADD CONSTRAINT ledger_covered_seconds_not_negative CHECK (covered_seconds >= 0);
