-- The heatmap reads an organisation's latest theme cells as one range of
-- the primary key. In a rowid table each of those ~6,000 rows (2,000
-- teams) is an index entry and then a lookup in the table, wherever the
-- row was last rewritten; WITHOUT ROWID keeps the rows in key order, so
-- the range is read off consecutive pages.
CREATE TABLE latest_themes_clustered (
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
) WITHOUT ROWID;
INSERT INTO latest_themes_clustered
    SELECT organisation_id, group_kind, team_id, theme, wave_id, closed_at, n, suppressed, figures
    FROM latest_themes;
DROP TABLE latest_themes;
ALTER TABLE latest_themes_clustered RENAME TO latest_themes;
