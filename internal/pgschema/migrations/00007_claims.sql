-- Event identity claims: which seafarer each carrier event (CloudEvents
-- source + id) is charged to, and a fingerprint of what it said, so that
-- one identity is applied once across all seafarers however many MSISDNs
-- it is sent for, and a repeat with other content is refused as a
-- conflicting duplicate. quota.PGClaims writes and reads it; the metering
-- debit (Redis) is the at-most-once guard per seafarer, this table decides
-- whom a repeat belongs to.
--
-- identity is the entry id of the event's debit without "d_"
-- (quota.DebitEntryID), COLLATE "C" as every id. Claims older than the
-- dedupe window are deleted (PGClaims.Forget): an event that old is late
-- and never applied, so nothing asks about it.

-- +goose Up
CREATE TABLE event_claims (
    identity    text COLLATE "C" PRIMARY KEY,
    seafarer_id text COLLATE "C" NOT NULL,
    fingerprint text NOT NULL,
    call_time   timestamptz NOT NULL,
    CONSTRAINT event_claim_not_empty CHECK (identity <> '' AND seafarer_id <> '' AND fingerprint <> '')
);
CREATE INDEX event_claims_by_call_time ON event_claims (call_time);

-- +goose Down
DROP TABLE event_claims;
