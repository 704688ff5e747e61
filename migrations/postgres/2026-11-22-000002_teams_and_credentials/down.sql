DROP TABLE api_keys;
ALTER TABLE accounts DROP COLUMN last_sign_in_at;
ALTER TABLE accounts DROP COLUMN locked_until;
ALTER TABLE accounts DROP COLUMN failed_sign_ins;
ALTER TABLE accounts DROP COLUMN team_id;
DROP TABLE teams;
