-- +goose Up
-- The expiry warner asks which grants expire within the next week
-- (quota.PGGrants.ExpiringGrants); Redis no longer keeps an index of its own.
CREATE INDEX grants_expiring ON grants (expires_at) WHERE voided_at IS NULL;

-- +goose Down
DROP INDEX grants_expiring;
