-- The staff audit trail (CONTRACT §7.5): one row per write a person's token
-- made that succeeded (enrolment, bulk enrolment, a seafarer's update, a
-- company, a programme, an issuance, a void, a period's close, a
-- reconciliation), with who made it, what it did to which resource, the
-- request's id and a short summary of the change. audit.PGLog writes and
-- reads it; api records every successful write of the union, company and
-- seafarer roles.
--
-- Append only. Nothing in Wuyou updates or deletes a record, and the
-- trigger below refuses it to anyone else too (a retention job would have
-- to drop the trigger first, in a migration of its own).
--
-- Ids are "au_" + a ULID stamped with the record's time, COLLATE "C", so
-- ordering by id is ordering by time (to the millisecond) and the last id
-- of a page is the cursor of the next: "newest first" is a backward scan
-- of the primary key, and each filter (actor, resource, the company whose
-- token made the write) has an index ending in id for the same scan.
--
-- Actors elsewhere. A grant's or void's ledger entry names its actor too:
-- ledger_entries.actor (from 00002, unused until now) holds the sub, and
-- the two columns added here its role and company. An issuance keeps the
-- actor who started it, whose grants' entries carry it however late they
-- are written (a background run, a resume after a restart).

-- +goose Up
CREATE TABLE audit_records (
    id               text COLLATE "C" PRIMARY KEY,
    at               timestamptz NOT NULL,
    actor_sub        text COLLATE "C" NOT NULL,
    actor_role       text NOT NULL,
    actor_company_id text COLLATE "C",
    action           text NOT NULL,
    resource         text COLLATE "C" NOT NULL,
    request_id       text NOT NULL DEFAULT '',
    summary          text NOT NULL DEFAULT '',
    CONSTRAINT audit_record_names_actor_action_and_resource
        CHECK (id <> '' AND actor_sub <> '' AND actor_role <> '' AND action <> '' AND resource <> '')
);

CREATE INDEX audit_records_by_actor ON audit_records (actor_sub, id);
CREATE INDEX audit_records_by_resource ON audit_records (resource, id);
CREATE INDEX audit_records_by_company ON audit_records (actor_company_id, id) WHERE actor_company_id IS NOT NULL;

-- +goose StatementBegin
CREATE FUNCTION audit_records_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit records are never changed or deleted' USING ERRCODE = 'insufficient_privilege';
END
$$;
-- +goose StatementEnd

CREATE TRIGGER audit_records_append_only BEFORE UPDATE OR DELETE ON audit_records
    FOR EACH ROW EXECUTE FUNCTION audit_records_append_only();

ALTER TABLE ledger_entries ADD COLUMN actor_role text, ADD COLUMN actor_company_id text;
ALTER TABLE issuances ADD COLUMN actor_sub text, ADD COLUMN actor_role text, ADD COLUMN actor_company_id text;

-- +goose Down
ALTER TABLE issuances DROP COLUMN actor_sub, DROP COLUMN actor_role, DROP COLUMN actor_company_id;
ALTER TABLE ledger_entries DROP COLUMN actor_role, DROP COLUMN actor_company_id;
DROP TABLE audit_records;
DROP FUNCTION audit_records_append_only();
