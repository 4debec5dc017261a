-- Seafarers' sign-in (CONTRACT §7.4): the keys Wuyou signs seafarer tokens
-- with and the secret one-time codes are hashed under.
--
-- signing_keys holds Ed25519 keys (PKCS#8 PEM). A key is published in
-- /.well-known/jwks.json from the moment it is written; it signs from
-- signs_from (written ahead of time, so every replica has read it before any
-- token it signs reaches one) until the next key's signs_from, and stays
-- published until the tokens it signed have expired: retire_after is the
-- latest expiry any replica may have given a token it signed (each replica
-- raises it, with its own token lifetime, while the key signs there).
-- Every replica reads the table; the one that finds rotation due writes
-- the next key under an advisory lock. The private keys are as secret as
-- the database's backups.
--
-- signin_secrets holds named random secrets shared by every replica: the
-- key of the HMAC that one-time codes are stored under in Redis, so that a
-- copy of Redis reveals no live code.
--
-- +goose Up
CREATE TABLE signing_keys (
    kid         text PRIMARY KEY,
    private_pem text NOT NULL,
    created_at  timestamptz NOT NULL,
    signs_from  timestamptz NOT NULL UNIQUE,
    retire_after timestamptz
);

CREATE TABLE signin_secrets (
    name       text PRIMARY KEY,
    secret     bytea NOT NULL CHECK (length(secret) >= 32),
    created_at timestamptz NOT NULL
);

-- +goose Down
DROP TABLE signin_secrets;
DROP TABLE signing_keys;
