-- A seafarer's lang (CONTRACT §7.4): the language of the texts the carrier
-- reads out and of the notifications, 'zh-CN' or 'en' (wuyou.Langs). Every
-- seafarer enrolled before this migration reads zh-CN, the default. A
-- constant default adds the column without rewriting the table.
--
-- seafarer_profiles was created with s.*, which PostgreSQL expands when
-- the view is made: it is made again to show lang.

-- +goose Up
ALTER TABLE seafarers ADD COLUMN lang text NOT NULL DEFAULT 'zh-CN',
    ADD CONSTRAINT seafarer_lang_known CHECK (lang IN ('zh-CN', 'en'));

DROP VIEW seafarer_profiles;
CREATE VIEW seafarer_profiles AS
SELECT s.*, coalesce(h.msisdn, '') AS msisdn, h.held_from AS msisdn_since
FROM seafarers s
LEFT JOIN msisdn_holdings h ON h.seafarer_id = s.id AND h.held_to IS NULL;

-- +goose Down
DROP VIEW seafarer_profiles;
ALTER TABLE seafarers DROP COLUMN lang;
CREATE VIEW seafarer_profiles AS
SELECT s.*, coalesce(h.msisdn, '') AS msisdn, h.held_from AS msisdn_since
FROM seafarers s
LEFT JOIN msisdn_holdings h ON h.seafarer_id = s.id AND h.held_to IS NULL;
