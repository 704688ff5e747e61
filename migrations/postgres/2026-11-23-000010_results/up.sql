-- Results (src/results): what a wave publishes, computed once at its close
-- (and again when its pulse's k is raised). Each computation is a
-- publication; `seq` orders them for the integration feed, and a wave's
-- results are those of its latest publication. `teams` is the team tree
-- the groups were formed on (JSON: team id -> parent id or null), so that
-- a later computation (a raised k) forms the same groups after teams move.
CREATE TABLE publications (
    seq SERIAL PRIMARY KEY,
    wave_id TEXT NOT NULL REFERENCES waves (id) ON DELETE CASCADE,
    organisation_id TEXT NOT NULL,
    min_group_size INTEGER NOT NULL,
    teams TEXT NOT NULL,
    published_at TIMESTAMP NOT NULL
);
CREATE INDEX publications_wave ON publications (wave_id);
CREATE INDEX publications_organisation ON publications (organisation_id, seq);
-- One cell: a group (a team's own members, a team's subtree, or the
-- organisation, `team_id` then holding its id) and a measure (a closed
-- question, a theme, a comment question's texts, or participation, whose
-- `measure` is empty). A suppressed cell
-- keeps only why: no n, no figures (DESIGN.md, invariant 1).
CREATE TABLE results (
    publication INTEGER NOT NULL REFERENCES publications (seq) ON DELETE CASCADE,
    group_kind TEXT NOT NULL CHECK (group_kind IN ('team', 'subtree', 'organisation')),
    team_id TEXT NOT NULL,
    measure_kind TEXT NOT NULL CHECK (measure_kind IN ('question', 'theme', 'comments', 'participation')),
    measure TEXT NOT NULL,
    n INTEGER,
    suppressed TEXT CHECK (suppressed IN ('below_minimum', 'complementary')),
    figures TEXT,
    CHECK ((suppressed IS NULL) = (n IS NOT NULL) AND (suppressed IS NULL) = (figures IS NOT NULL)),
    PRIMARY KEY (publication, group_kind, team_id, measure_kind, measure)
);
CREATE INDEX results_group ON results (team_id, group_kind, measure_kind);
-- For the heatmap: each group's cell of each theme from the latest closed
-- wave that asked it, copied here when a wave publishes, so a heatmap reads
-- one row per team and theme however many waves there are.
CREATE TABLE latest_themes (
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
