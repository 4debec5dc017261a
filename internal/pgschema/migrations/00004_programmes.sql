-- Welfare programmes, the issuances that give their packs to seafarers, and
-- every grant (pack) ever issued. quota.PGProgrammes writes and reads the
-- first three tables, quota.PGGrants reads grants and voids them.
--
-- Budget. programmes.packs_issued counts the grants of the programme and is
-- raised in the same transaction that inserts them, with the programme row
-- locked (SELECT … FOR UPDATE), so concurrent issuances of one programme —
-- in one process or in several replicas — take turns at the budget.
-- programme_within_budget makes over-issue impossible even by a bug: a
-- transaction that would pass the budget fails whole.
--
-- Issuances. (programme_id, idempotency_key) is unique: a second request
-- with the same key finds the first issuance (body_hash tells whether it
-- asked the same thing; another body is a conflict). An issuance's targets
-- are stored with it, in order and once each, in issuance_targets; a
-- target's outcome is set exactly once, in the transaction that decides its
-- batch, so retried or overlapping runs of one issuance never decide a
-- seafarer twice. The failures an issuance shows are its targets whose
-- outcome is a failure reason (budget_exhausted, seafarer_not_found), in
-- target order. next_position is how far the issuance has got: every
-- target before it is decided and its grant is in Redis (the hot state) and
-- announced; a run resumes there.
--
-- Grants. One row per pack given to a seafarer, id deterministic
-- (quota.IssuanceGrantID(issuance, seafarer)), so a retried insert is
-- ON CONFLICT DO NOTHING. Times are whole seconds as the Redis grant keeps
-- them (issued_at to the millisecond, as Redis keeps it). The remaining
-- seconds are hot state and live in Redis only; `wuyoud rebuild-hot-state`
-- rebuilds them from this table and the ledger. voided_at is set once,
-- when the grant is voided.
--
-- Ids are COLLATE "C": the database orders them bytewise, as Go does.

-- +goose Up
CREATE TABLE programmes (
    id           text COLLATE "C" PRIMARY KEY,
    name         text NOT NULL,
    pack_seconds bigint NOT NULL,
    valid_days   integer NOT NULL,
    priority     integer NOT NULL,
    budget_packs bigint NOT NULL,         -- 0 = unlimited
    starts_at    timestamptz NOT NULL,
    ends_at      timestamptz NOT NULL,
    created_at   timestamptz NOT NULL,
    packs_issued bigint NOT NULL DEFAULT 0,
    CONSTRAINT programme_id_not_empty CHECK (id <> ''),
    CONSTRAINT programme_name_not_empty CHECK (name <> ''),
    CONSTRAINT programme_pack_seconds_positive CHECK (pack_seconds > 0),
    CONSTRAINT programme_valid_days_positive CHECK (valid_days > 0),
    CONSTRAINT programme_priority_not_negative CHECK (priority >= 0),
    CONSTRAINT programme_budget_not_negative CHECK (budget_packs >= 0),
    CONSTRAINT programme_ends_after_start CHECK (ends_at > starts_at),
    CONSTRAINT programme_packs_issued_not_negative CHECK (packs_issued >= 0),
    CONSTRAINT programme_within_budget CHECK (budget_packs = 0 OR packs_issued <= budget_packs)
);

CREATE TABLE issuances (
    id              text COLLATE "C" PRIMARY KEY,
    programme_id    text COLLATE "C" NOT NULL,
    idempotency_key text COLLATE "C" NOT NULL,
    body_hash       text NOT NULL,       -- SHA-256 of the normalized request body
    target_kind     text NOT NULL,       -- seafarers | company | vessel
    target_id       text,                -- the company id or vessel IMO
    status          text NOT NULL,
    effective_at    timestamptz NOT NULL,
    total           bigint NOT NULL,
    issued          bigint NOT NULL DEFAULT 0,
    skipped         bigint NOT NULL DEFAULT 0,
    failed          bigint NOT NULL DEFAULT 0,
    next_position   bigint NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    CONSTRAINT issuance_programme_fkey FOREIGN KEY (programme_id) REFERENCES programmes (id),
    CONSTRAINT issuance_key_once_per_programme UNIQUE (programme_id, idempotency_key),
    CONSTRAINT issuance_status_is_running_or_done CHECK (status IN ('running', 'done')),
    CONSTRAINT issuance_target_kind_known CHECK (target_kind IN ('seafarers', 'company', 'vessel')),
    CONSTRAINT issuance_counts_not_negative CHECK (total >= 0 AND issued >= 0 AND skipped >= 0 AND failed >= 0),
    CONSTRAINT issuance_decided_within_total CHECK (issued + skipped + failed <= total),
    CONSTRAINT issuance_done_when_all_decided CHECK (status <> 'done' OR issued + skipped + failed = total),
    CONSTRAINT issuance_next_within_total CHECK (next_position BETWEEN 0 AND total)
);

-- Resume lists the issuances still running.
CREATE INDEX issuances_running ON issuances (id) WHERE status = 'running';

CREATE TABLE issuance_targets (
    issuance_id text COLLATE "C" NOT NULL,
    position    bigint NOT NULL,         -- 0-based, in target order
    seafarer_id text COLLATE "C" NOT NULL,
    outcome     text,                    -- NULL until decided
    CONSTRAINT issuance_targets_pkey PRIMARY KEY (issuance_id, position),
    CONSTRAINT issuance_target_issuance_fkey FOREIGN KEY (issuance_id) REFERENCES issuances (id) ON DELETE CASCADE,
    CONSTRAINT issuance_target_once UNIQUE (issuance_id, seafarer_id),
    CONSTRAINT issuance_target_outcome_known
        CHECK (outcome IN ('issued', 'skipped', 'budget_exhausted', 'seafarer_not_found'))
);

-- An issuance's failures, in target order, without reading its other targets.
CREATE INDEX issuance_target_failures ON issuance_targets (issuance_id, position)
    WHERE outcome IN ('budget_exhausted', 'seafarer_not_found');

CREATE TABLE grants (
    id           text COLLATE "C" PRIMARY KEY,
    seafarer_id  text COLLATE "C" NOT NULL,
    programme_id text COLLATE "C" NOT NULL,
    issuance_id  text COLLATE "C",
    seconds      bigint NOT NULL,
    priority     integer NOT NULL,
    effective_at timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    issued_at    timestamptz NOT NULL,
    voided_at    timestamptz,
    CONSTRAINT grant_ids_not_empty CHECK (id <> '' AND seafarer_id <> '' AND programme_id <> ''),
    CONSTRAINT grant_seconds_positive CHECK (seconds > 0),
    CONSTRAINT grant_priority_not_negative CHECK (priority >= 0),
    CONSTRAINT grant_expires_after_effective CHECK (expires_at > effective_at),
    CONSTRAINT grant_programme_fkey FOREIGN KEY (programme_id) REFERENCES programmes (id),
    CONSTRAINT grant_issuance_fkey FOREIGN KEY (issuance_id) REFERENCES issuances (id)
);

CREATE INDEX grants_seafarer ON grants (seafarer_id);

-- +goose Down
DROP TABLE grants;
DROP TABLE issuance_targets;
DROP TABLE issuances;
DROP TABLE programmes;
