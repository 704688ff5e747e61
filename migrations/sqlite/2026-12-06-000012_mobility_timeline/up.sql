-- Mobility reads an organisation's whole history, person by person in
-- recording order (src/mobility). This index holds every column it reads,
-- in that order, so the read is one ordered pass over the index instead of
-- a lookup of each row in the table and a sort.
CREATE INDEX person_events_timeline ON person_events (
    organisation_id, person_id, seq,
    id, kind, effective_date, team_id, job_title, level, status, exit_kind, supersedes_id
);
-- The history's version (how many events, the latest recorded): read from
-- the index alone, to know whether timelines kept in memory still hold.
CREATE INDEX person_events_recorded ON person_events (organisation_id, recorded_at);
