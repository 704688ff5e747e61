DROP TABLE person_events;
DROP TABLE people;
