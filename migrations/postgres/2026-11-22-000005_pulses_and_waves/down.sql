DROP TABLE outbox;
DROP TABLE invitations;
DROP TABLE wave_teams;
DROP TABLE waves;
DROP TABLE pulses;
DROP TABLE survey_templates;
