-- Webhooks (src/webhooks): endpoints an organisation registers for events,
-- and a durable queue of deliveries to them. An event is queued in the
-- transaction that makes it happen (a wave opening, closing, results
-- published, an email failing for good), one delivery per endpoint, and a
-- worker posts it with retries; `event_id` is the `webhook-id` header, the
-- same on every attempt and redelivery, so receivers can drop duplicates.
CREATE TABLE webhooks (
    id TEXT PRIMARY KEY NOT NULL,
    organisation_id TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    description TEXT NOT NULL,
    -- The event types it receives, space-separated.
    events TEXT NOT NULL,
    -- The signing secret, encrypted under a key derived from the server
    -- secret (it must be readable to sign): base64 of nonce, ciphertext, tag.
    secret TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    disabled_reason TEXT,
    -- Failed attempts since the last success; the endpoint is tried again
    -- no sooner than `retry_at`, and disabled after a configured number.
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    retry_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX webhooks_organisation ON webhooks (organisation_id);

CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY NOT NULL,
    event_id TEXT NOT NULL,
    -- No foreign key: an event queued while its endpoint is being deleted
    -- must not fail the transaction that caused it (a wave opening); the
    -- worker reads deliveries through their endpoint, and deleting an
    -- endpoint deletes its deliveries.
    webhook_id TEXT NOT NULL,
    organisation_id TEXT NOT NULL,
    -- The wave the event is about: a wave's `delivery.failed` events are
    -- deleted when it closes (who could not be invited is, after the close,
    -- a fact about who could not have answered).
    wave_id TEXT NOT NULL,
    event TEXT NOT NULL,
    -- The body as sent, byte for byte, on every attempt.
    payload TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    claimed_by TEXT,
    claimed_until TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    delivered_at TIMESTAMP,
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at, id);
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (webhook_id, created_at);
CREATE INDEX webhook_deliveries_wave ON webhook_deliveries (wave_id, event);

-- The delivery log: one row per attempt, what the receiver answered.
CREATE TABLE webhook_attempts (
    delivery_id TEXT NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    number INTEGER NOT NULL,
    attempted_at TIMESTAMP NOT NULL,
    status_code INTEGER,
    error TEXT,
    duration_ms INTEGER NOT NULL,
    PRIMARY KEY (delivery_id, number)
);
