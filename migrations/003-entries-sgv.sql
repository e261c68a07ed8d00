-- nightlite schema version 3 (applied by src/store/migrate.rs after version 2).
--
-- entries gain `sgv`: the reading of an sgv entry as a number, exactly as the reports have
-- always read it (CAST(json_extract(doc, '$.sgv') AS REAL) for type 'sgv'), NULL for every
-- other entry. The statements that write `doc` keep it (src/store/upsert.rs `entry_sgv`).
-- With it the reports (`GET /api/v2/stats`, src/store/stats.rs) read glucose values from the
-- entries_sgv index alone instead of parsing every document's JSON: SQLite cannot answer from
-- an index that holds a generated column (it recomputes the column from `doc`), so this is a
-- plain column, and the existing rows are filled once here.
ALTER TABLE entries ADD COLUMN sgv REAL;
UPDATE entries SET sgv = CAST(json_extract(doc, '$.sgv') AS REAL) WHERE type = 'sgv';
CREATE INDEX entries_sgv ON entries (mills, is_valid, sgv) WHERE sgv IS NOT NULL;
