-- Thresholds of wuyou.quota.low per programme (CONTRACT §7.2 notify_at):
-- a JSON list of 1 to 5 objects, each {"percent":1..99} or
-- {"remaining":N} (N > 0, in the programme's unit). Every programme
-- created before this migration announces at 20 percent, which the default
-- says. The API validates each entry (quota/notify.go); the CHECK keeps the
-- shape. The debit script reads the thresholds from each grant's hot copy,
-- written from this column when a grant reaches Redis and by
-- rebuild-hot-state (a join on grants.programme_id).
--
-- (00009 stays unused.)

-- +goose Up
ALTER TABLE programmes ADD COLUMN notify_at jsonb NOT NULL DEFAULT '[{"percent":20}]',
    ADD CONSTRAINT programme_notify_at_list CHECK (jsonb_typeof(notify_at) = 'array'
        AND jsonb_array_length(notify_at) BETWEEN 1 AND 5);

-- +goose Down
ALTER TABLE programmes DROP COLUMN notify_at;
