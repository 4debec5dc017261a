-- Name search (?q= on GET /v1/companies and GET /v1/programmes): names
-- containing a text, whatever its case (crew.PGStore.Companies,
-- quota.PGProgrammes.Programmes: name ILIKE '%text%').
--
-- A substring search cannot use a btree. A trigram index (pg_trgm, part of
-- PostgreSQL's contrib) serves ILIKE with three characters or more; the DO
-- block below creates it where the extension can be installed, as
-- 00003_registry.sql does with btree_gist. Where it cannot, the search reads
-- the table: companies holds one row per shipping company (thousands) and
-- programmes one per welfare programme (dozens), so that is still a few
-- milliseconds, and the answer is the same.

-- +goose Up
-- +goose StatementBegin
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
    CREATE INDEX companies_name_trgm ON companies USING gin (name gin_trgm_ops);
    CREATE INDEX programmes_name_trgm ON programmes USING gin (name gin_trgm_ops);
EXCEPTION WHEN undefined_file OR insufficient_privilege OR feature_not_supported THEN
    RAISE NOTICE 'pg_trgm is not available (%): name searches read the table', SQLERRM;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP INDEX IF EXISTS programmes_name_trgm;
DROP INDEX IF EXISTS companies_name_trgm;
