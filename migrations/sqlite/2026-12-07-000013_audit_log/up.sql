-- The audit log (src/audit): who did what to accounts, API keys, settings,
-- teams, people, pulses, waves, webhooks, imports, exports and erasures,
-- written in the transaction that does it, so an entry exists exactly when
-- its change committed. It never holds answers, secrets or tokens; its
-- details name fields and counts, not personal data.
CREATE TABLE audit_events (
    id TEXT PRIMARY KEY NOT NULL,
    organisation_id TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    occurred_at TIMESTAMP NOT NULL,
    -- An account (by its email at the time), an API key (by its name), or
    -- Peil itself (retention).
    actor_kind TEXT NOT NULL CHECK (actor_kind IN ('account', 'api_key', 'system')),
    actor_id TEXT,
    actor_label TEXT,
    client_address TEXT,
    action TEXT NOT NULL,
    target_kind TEXT,
    target_id TEXT,
    -- A JSON object.
    details TEXT NOT NULL
);
-- Newest first per organisation, the admin's view and its pages.
CREATE INDEX audit_events_recent ON audit_events (organisation_id, occurred_at, id);
