-- Survey templates added by an organisation (the shipped ones live in the
-- binary), pulses (recurring survey programs), their waves, the invitations
-- each wave snapshots, and the outbox their emails wait in.

-- Each version is kept: a wave pins the version it asked.
CREATE TABLE survey_templates (
    organisation_id TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    template_key TEXT NOT NULL,
    version INTEGER NOT NULL CHECK (version >= 1),
    body TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (organisation_id, template_key, version)
);

-- Lists (templates, audience, excluded teams, reminders) are JSON arrays as text.
CREATE TABLE pulses (
    id TEXT PRIMARY KEY NOT NULL,
    organisation_id TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    templates TEXT NOT NULL,
    audience TEXT NOT NULL,
    excluded_teams TEXT NOT NULL,
    cron TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    open_hours INTEGER NOT NULL CHECK (open_hours >= 1),
    reminder_hours TEXT NOT NULL,
    start_date DATE,
    end_date DATE,
    status TEXT NOT NULL CHECK (status IN ('active', 'paused')),
    min_group_size INTEGER NOT NULL CHECK (min_group_size >= 3),
    -- Waves opened so far: picks the next template of the rotation, and the
    -- UPDATE that bumps it serialises concurrent openers of one pulse.
    waves_opened INTEGER NOT NULL DEFAULT 0,
    -- Cron occurrences at or before this instant never open a wave: set at
    -- creation, on resume and when the cadence changes (edits affect the future only).
    schedule_from TIMESTAMP NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX pulses_organisation ON pulses (organisation_id);

-- One row per cron occurrence that was handled (opened or skipped), unique per
-- (pulse, occurrence), so no two schedulers can open the same wave. Waves opened
-- by hand have no occurrence.
CREATE TABLE waves (
    id TEXT PRIMARY KEY NOT NULL,
    organisation_id TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    pulse_id TEXT NOT NULL REFERENCES pulses (id) ON DELETE CASCADE,
    scheduled_at TIMESTAMP,
    opened_by TEXT NOT NULL CHECK (opened_by IN ('schedule', 'manual')),
    status TEXT NOT NULL CHECK (status IN ('open', 'closed', 'skipped')),
    number INTEGER,
    template_key TEXT,
    template_version INTEGER,
    template TEXT,
    min_group_size INTEGER NOT NULL CHECK (min_group_size >= 3),
    opened_at TIMESTAMP,
    closes_at TIMESTAMP,
    closed_at TIMESTAMP,
    reminders TEXT NOT NULL,
    reminders_queued INTEGER NOT NULL DEFAULT 0,
    invited INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (pulse_id, scheduled_at)
);
CREATE INDEX waves_organisation ON waves (organisation_id, created_at);
CREATE INDEX waves_status ON waves (status, closes_at);

-- Invited counts per team, frozen when the wave opens.
CREATE TABLE wave_teams (
    wave_id TEXT NOT NULL REFERENCES waves (id) ON DELETE CASCADE,
    team_id TEXT NOT NULL,
    invited INTEGER NOT NULL,
    PRIMARY KEY (wave_id, team_id)
);

-- One person invited to one wave; `team_id` is the team they count for,
-- as it was when the wave opened. No token is stored: links are derived.
-- `organisation_id` has no foreign key of its own here or in the outbox:
-- the wave's (and the invitation's) already ties the row to its organisation
-- and cascades, and a check per row costs a wave of 100,000 people seconds.
CREATE TABLE invitations (
    id TEXT PRIMARY KEY NOT NULL,
    organisation_id TEXT NOT NULL,
    wave_id TEXT NOT NULL REFERENCES waves (id) ON DELETE CASCADE,
    person_id TEXT NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    team_id TEXT NOT NULL,
    language TEXT NOT NULL CHECK (language IN ('nl', 'en')),
    answered BOOLEAN NOT NULL DEFAULT FALSE,
    UNIQUE (wave_id, person_id)
);

-- Emails waiting to be sent, written in the same transaction as what they
-- announce. `reminder` is 0 for the invitation itself, then 1 and 2.
CREATE TABLE outbox (
    id TEXT PRIMARY KEY NOT NULL,
    organisation_id TEXT NOT NULL,
    -- No foreign key: the outbox is a queue, emptied for a wave when it
    -- closes (and by whatever deletes invitations), and a check per row of a
    -- 100,000-person wave costs more than the queue is worth.
    invitation_id TEXT NOT NULL,
    reminder INTEGER NOT NULL CHECK (reminder BETWEEN 0 AND 2),
    status TEXT NOT NULL CHECK (status IN ('queued', 'sent', 'failed', 'cancelled')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    sent_at TIMESTAMP,
    UNIQUE (invitation_id, reminder)
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
