-- The registry: shipping companies, their seafarers, and which seafarer held
-- which MSISDN when. crew.PGStore writes and reads it.
--
-- Uniqueness is the database's: a registration number names one company, a
-- seafarer's book number one seafarer across every company, and an MSISDN
-- has at most one current holder. crew.PGStore turns the violation of each
-- named constraint below into the conflict the API answers with 409, so the
-- constraint names are part of the code's contract.
--
-- MSISDN history. msisdn_holdings keeps every period [held_from, held_to)
-- during which a seafarer held a number; held_to is NULL while the number is
-- held. A seafarer's current number is its one open period (there is no copy
-- of it on the seafarer's row, so the two cannot disagree; seafarer_profiles
-- joins them). A usage event belongs to whoever held its MSISDN at the
-- call's own time (crew/resolve_at.go states the rule; PGStore.SeafarerIDsAt
-- answers it for a whole batch with one query over msisdn_holdings_by_msisdn).
-- Periods of one number never overlap: the exclusion constraint says so where
-- btree_gist can be installed (a DO block below tries, as the extension is
-- part of PostgreSQL's contrib and not every server has it or lets this role
-- create it); the partial unique index on the open period holds everywhere.
-- A period may be empty (held_from = held_to: a number changed twice in one
-- microsecond), which overlaps nothing.
--
-- Times are microseconds, as PostgreSQL keeps them; PGStore cuts its clock
-- to the microsecond before writing, so what it returns is what it stored.
-- ids and codes are COLLATE "C": ids order bytewise, as Go compares them and
-- as the cursor of a crew list expects (ids are ULIDs, crew/ids.go, so id
-- order is enrolment order).

-- +goose Up
CREATE TABLE companies (
    id              text COLLATE "C" NOT NULL,
    name            text NOT NULL,
    registration_no text COLLATE "C" NOT NULL,
    created_at      timestamptz NOT NULL,
    CONSTRAINT companies_pkey PRIMARY KEY (id),
    CONSTRAINT companies_registration_no_key UNIQUE (registration_no),
    CONSTRAINT company_fields_not_empty CHECK (id <> '' AND name <> '' AND registration_no <> '')
);

CREATE TABLE seafarers (
    id               text COLLATE "C" NOT NULL,
    company_id       text COLLATE "C" NOT NULL,
    seafarer_book_no text COLLATE "C" NOT NULL,
    name             text NOT NULL,
    nationality      text COLLATE "C" NOT NULL DEFAULT '',
    vessel_imo       text COLLATE "C" NOT NULL DEFAULT '',
    vessel_name      text NOT NULL DEFAULT '',
    sign_on          date,
    sign_off         date,
    union_member_no  text NOT NULL DEFAULT '',
    status           text NOT NULL,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    CONSTRAINT seafarers_pkey PRIMARY KEY (id),
    CONSTRAINT seafarers_company_fkey FOREIGN KEY (company_id) REFERENCES companies (id),
    CONSTRAINT seafarers_book_no_key UNIQUE (seafarer_book_no),
    CONSTRAINT seafarer_fields_not_empty CHECK (id <> '' AND seafarer_book_no <> '' AND name <> ''),
    CONSTRAINT seafarer_status_is_known CHECK (status IN ('active', 'signed_off', 'suspended')),
    CONSTRAINT seafarer_signs_off_after_signing_on CHECK (sign_off >= sign_on)
);

-- A company's crew a page at a time (keyset on id); CompanyCrew and
-- issuances to a company walk it whole.
CREATE INDEX seafarers_by_company ON seafarers (company_id, id);
-- A vessel's crew across companies (issuances to a vessel), and a company's
-- crew on one vessel.
CREATE INDEX seafarers_by_vessel ON seafarers (vessel_imo, id) WHERE vessel_imo <> '';

CREATE TABLE msisdn_holdings (
    id          bigint GENERATED ALWAYS AS IDENTITY,
    msisdn      text COLLATE "C" NOT NULL,
    seafarer_id text COLLATE "C" NOT NULL,
    held_from   timestamptz NOT NULL,
    held_to     timestamptz,
    CONSTRAINT msisdn_holdings_pkey PRIMARY KEY (id),
    CONSTRAINT msisdn_holdings_seafarer_fkey FOREIGN KEY (seafarer_id) REFERENCES seafarers (id),
    CONSTRAINT msisdn_holding_is_e164 CHECK (msisdn ~ '^\+[1-9][0-9]{7,14}$'),
    CONSTRAINT msisdn_holding_ends_after_it_begins CHECK (held_to >= held_from)
);

-- An MSISDN has one current holder; a seafarer one current number.
CREATE UNIQUE INDEX msisdn_holdings_one_current_holder ON msisdn_holdings (msisdn) WHERE held_to IS NULL;
CREATE UNIQUE INDEX msisdn_holdings_one_current_number ON msisdn_holdings (seafarer_id) WHERE held_to IS NULL;
-- Who held a number at a time, and a seafarer's history in order.
CREATE INDEX msisdn_holdings_by_msisdn ON msisdn_holdings (msisdn, held_from);
CREATE INDEX msisdn_holdings_by_seafarer ON msisdn_holdings (seafarer_id, held_from);

-- +goose StatementBegin
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS btree_gist;
    ALTER TABLE msisdn_holdings ADD CONSTRAINT msisdn_holdings_periods_do_not_overlap
        EXCLUDE USING gist (msisdn WITH =, tstzrange(held_from, held_to) WITH &&);
EXCEPTION WHEN undefined_file OR insufficient_privilege OR feature_not_supported THEN
    RAISE NOTICE 'btree_gist is not available (%): periods of one MSISDN are kept apart by crew.PGStore alone', SQLERRM;
END
$$;
-- +goose StatementEnd

-- seafarer_profiles is a seafarer as the API shows it: its row and its
-- current MSISDN, with since when it is held.
CREATE VIEW seafarer_profiles AS
SELECT s.*, coalesce(h.msisdn, '') AS msisdn, h.held_from AS msisdn_since
FROM seafarers s
LEFT JOIN msisdn_holdings h ON h.seafarer_id = s.id AND h.held_to IS NULL;

-- +goose Down
DROP VIEW seafarer_profiles;
DROP TABLE msisdn_holdings;
DROP TABLE seafarers;
DROP TABLE companies;
