-- The team tree results roll up, API keys for integrations, and what accounts
-- need beyond a password: a manager's team, and sign-in throttling.
CREATE TABLE teams (
    id TEXT PRIMARY KEY NOT NULL,
    organisation_id TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    parent_id TEXT REFERENCES teams (id),
    name TEXT NOT NULL,
    external_id TEXT,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (organisation_id, external_id)
);
CREATE INDEX teams_organisation ON teams (organisation_id);
CREATE INDEX teams_parent ON teams (parent_id);

ALTER TABLE accounts ADD COLUMN team_id TEXT REFERENCES teams (id);
ALTER TABLE accounts ADD COLUMN failed_sign_ins INTEGER NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN locked_until TIMESTAMP;
ALTER TABLE accounts ADD COLUMN last_sign_in_at TIMESTAMP;

-- Only an HMAC of each key is stored; `prefix` lets people recognise a key in lists.
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY NOT NULL,
    organisation_id TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP,
    revoked_at TIMESTAMP
);
CREATE INDEX api_keys_organisation ON api_keys (organisation_id);
