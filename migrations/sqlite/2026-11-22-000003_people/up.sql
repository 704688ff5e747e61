-- The people who get invited, and the dated history of what happened to them.
CREATE TABLE people (
    id TEXT PRIMARY KEY NOT NULL,
    organisation_id TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    name TEXT NOT NULL,
    team_id TEXT NOT NULL REFERENCES teams (id),
    language TEXT NOT NULL CHECK (language IN ('nl', 'en')),
    job_title TEXT,
    level INTEGER,
    external_id TEXT,
    status TEXT NOT NULL CHECK (status IN ('active', 'left')),
    exit_kind TEXT CHECK (exit_kind IN ('voluntary', 'involuntary', 'other')),
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (organisation_id, email),
    UNIQUE (organisation_id, external_id)
);
CREATE INDEX people_team ON people (team_id);

-- Each event holds the person's state after it. A correction is a new event
-- that supersedes an older one; both stay, so the history shows what was
-- recorded and what was corrected.
CREATE TABLE person_events (
    id TEXT PRIMARY KEY NOT NULL,
    organisation_id TEXT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    person_id TEXT NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('joined', 'rejoined', 'moved', 'title_changed', 'level_changed', 'left')),
    effective_date DATE NOT NULL,
    team_id TEXT NOT NULL,
    job_title TEXT,
    level INTEGER,
    status TEXT NOT NULL CHECK (status IN ('active', 'left')),
    exit_kind TEXT CHECK (exit_kind IN ('voluntary', 'involuntary', 'other')),
    supersedes_id TEXT REFERENCES person_events (id),
    recorded_at TIMESTAMP NOT NULL,
    UNIQUE (person_id, seq)
);
CREATE INDEX person_events_organisation_date ON person_events (organisation_id, effective_date);
