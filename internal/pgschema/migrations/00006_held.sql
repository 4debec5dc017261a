-- Held usage events: carrier events for an MSISDN that nobody held at the
-- call's time (CONTRACT §5), kept until the number is enrolled and they are
-- applied (carrier.Consumer.ApplyHeld), or until they are older than the
-- dedupe window and go to the late topic (ExpireHeld). carrier.PGHeld writes
-- and reads it. Nothing else has these events once their batch's offsets are
-- committed, so they live here, not in Redis: they cannot be rebuilt.
--
-- Identity. One row per (msisdn, identity), the identity being the event's
-- CloudEvents source, a NUL byte, then its id (carrier.UsageEvent.Identity).
-- The NUL is why identity is bytea: text cannot hold it. A redelivered event
-- has the same key, so holding it again (ON CONFLICT DO NOTHING) keeps the
-- copy held first.
--
-- The message is kept as read, byte for byte: key and value as bytea (a
-- carrier may send any bytes), headers as two arrays of the same length,
-- keys and values (bytea, not jsonb: jsonb cannot hold a NUL or bytes that
-- are not UTF-8, and a NULL element keeps a null header value apart from an
-- empty one), the topic, partition and offset it was read at (so a dead
-- letter made of it later names its place) and its timestamp.
--
-- Due. "MSISDNs holding an event made before a cutoff, earliest first" walks
-- held_events_due, (call_time, msisdn), from its start: the earliest call an
-- MSISDN holds is always min(call_time) of its rows, so no separate index of
-- MSISDNs by earliest call needs keeping in step (HeldEvents.Reindex does
-- nothing here).

-- +goose Up
CREATE TABLE held_events (
    msisdn          text COLLATE "C" NOT NULL,
    identity        bytea NOT NULL,
    call_time       timestamptz NOT NULL,
    topic           text NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset    bigint NOT NULL,
    message_key     bytea,
    message_value   bytea NOT NULL,
    header_keys     bytea[] NOT NULL DEFAULT '{}',
    header_values   bytea[] NOT NULL DEFAULT '{}',
    message_time    timestamptz,
    held_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT held_events_pkey PRIMARY KEY (msisdn, identity),
    CONSTRAINT held_events_ids_not_empty CHECK (msisdn <> '' AND octet_length(identity) > 0),
    CONSTRAINT held_events_headers_pair_up
        CHECK (cardinality(header_keys) = cardinality(header_values) AND array_position(header_keys, NULL) IS NULL)
);

CREATE INDEX held_events_due ON held_events (call_time, msisdn);

-- +goose Down
DROP TABLE held_events;
