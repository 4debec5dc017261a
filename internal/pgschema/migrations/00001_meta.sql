-- The first migration creates nothing of the domain: it proves the migration
-- machinery (embedded files, goose's version table, the advisory lock) on
-- every database Wuyou is pointed at, and gives each database an identity
-- that tools can print to tell one deployment's database from another's.

-- +goose Up
CREATE TABLE wuyou_meta (
    key        text PRIMARY KEY,
    value      text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO wuyou_meta (key, value) VALUES
    ('database_id', gen_random_uuid()::text),
    ('created_at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'));

-- +goose Down
DROP TABLE wuyou_meta;
