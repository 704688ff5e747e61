CREATE TABLE latest_themes_rowid (
    organisation_id TEXT NOT NULL,
    group_kind TEXT NOT NULL,
    team_id TEXT NOT NULL,
    theme TEXT NOT NULL,
    wave_id TEXT NOT NULL REFERENCES waves (id) ON DELETE CASCADE,
    closed_at TIMESTAMP NOT NULL,
    n INTEGER,
    suppressed TEXT,
    figures TEXT,
    PRIMARY KEY (organisation_id, group_kind, team_id, theme)
);
INSERT INTO latest_themes_rowid
    SELECT organisation_id, group_kind, team_id, theme, wave_id, closed_at, n, suppressed, figures
    FROM latest_themes;
DROP TABLE latest_themes;
ALTER TABLE latest_themes_rowid RENAME TO latest_themes;
