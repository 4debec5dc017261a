-- What the carrier does when a real-time session's final grant, one of this
-- programme's, is used up (CONTRACT §7.3 final_action): 'terminate' the
-- call or 'continue_as_overage'. NULL leaves it to the tariff's
-- final_action (continue_as_overage unless the tariff says otherwise), as
-- every programme created before this migration does.
--
-- (00009 stays unused.)

-- +goose Up
ALTER TABLE programmes ADD COLUMN final_action text,
    ADD CONSTRAINT programme_final_action_known CHECK (final_action IN ('continue_as_overage', 'terminate'));

-- +goose Down
ALTER TABLE programmes DROP COLUMN final_action;
