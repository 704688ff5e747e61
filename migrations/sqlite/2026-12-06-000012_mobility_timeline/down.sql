DROP INDEX person_events_recorded;
DROP INDEX person_events_timeline;
