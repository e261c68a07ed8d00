-- nightlite schema version 2 (applied by src/store/migrate.rs after schema.sql, version 1).
--
-- srv_modified is now written by the INSERT and UPDATE statements themselves
-- (src/store/upsert.rs `next_modified`), no longer by AFTER INSERT/UPDATE triggers: each
-- trigger ran a second UPDATE of the row just written, moving its srv_modified index entry
-- again, which cost 18-48% of raw insert speed (docs/PERFORMANCE.md, "What limits ingest").
-- The rule is the triggers' own: max(now in ms, the table's largest srv_modified + 1), so it
-- stays strictly increasing per table in commit order (every write goes through the one writer
-- connection), and srv_created is still the first srv_modified. Rows are not touched.
DROP TRIGGER IF EXISTS entries_srv_modified_insert;
DROP TRIGGER IF EXISTS entries_srv_modified_update;
DROP TRIGGER IF EXISTS treatments_srv_modified_insert;
DROP TRIGGER IF EXISTS treatments_srv_modified_update;
DROP TRIGGER IF EXISTS devicestatus_srv_modified_insert;
DROP TRIGGER IF EXISTS devicestatus_srv_modified_update;
DROP TRIGGER IF EXISTS profile_srv_modified_insert;
DROP TRIGGER IF EXISTS profile_srv_modified_update;
DROP TRIGGER IF EXISTS food_srv_modified_insert;
DROP TRIGGER IF EXISTS food_srv_modified_update;
DROP TRIGGER IF EXISTS activity_srv_modified_insert;
DROP TRIGGER IF EXISTS activity_srv_modified_update;
DROP TRIGGER IF EXISTS settings_srv_modified_insert;
DROP TRIGGER IF EXISTS settings_srv_modified_update;
