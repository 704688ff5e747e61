DROP TABLE latest_themes;
DROP TABLE results;
DROP TABLE publications;
