-- nightlite schema version 4 (applied by src/store/migrate.rs after version 3): state spans.
--
-- state_spans holds the spans derived from treatments (src/spans/: which treatment starts or
-- ends which state, and how a category's events fold into spans). They are derived, never
-- uploaded: the writer keeps them up to date in every commit that changes a treatment
-- (src/store/spans.rs), and `nightlite spans rebuild` derives them all again.
--   id             UUID v5 of category, originating treatment and piece: stable across rebuilds
--   category       Profile, Override, TemporaryTarget, TempBasal, PumpMode, PumpConnectivity,
--                  Sensor, Exercise, Sleep, Illness
--   start_mills    inclusive, epoch ms
--   end_mills      exclusive, epoch ms; NULL while it holds with no end in sight
--   origin         the originating treatment's identifier (else its _id); origin_seq its seq
--   superseded_by  the span that ended this one by starting (superseded_at: when)
--   ended_by       the treatment that ended it without a span of its own (a cancel, a resume)
--   metadata       the originating treatment's fields that describe the state (JSON)
CREATE TABLE state_spans (
    id TEXT PRIMARY KEY,
    category TEXT NOT NULL,
    state TEXT NOT NULL,
    start_mills INTEGER NOT NULL,
    end_mills INTEGER,
    source TEXT NOT NULL,
    origin TEXT NOT NULL,
    origin_seq INTEGER NOT NULL,
    superseded_by TEXT,
    superseded_at INTEGER,
    ended_by TEXT,
    metadata TEXT NOT NULL CHECK (json_valid(metadata))
);
CREATE INDEX state_spans_category_start ON state_spans (category, start_mills);
CREATE INDEX state_spans_start ON state_spans (start_mills);

-- Every live treatment that feeds a category, with the time it had when it was last derived:
-- what upkeep needs to know about a treatment that changes time, category or goes away.
CREATE TABLE span_sources (
    seq INTEGER PRIMARY KEY,
    category TEXT NOT NULL,
    mills INTEGER NOT NULL
);
CREATE INDEX span_sources_category_mills ON span_sources (category, mills);

-- 0 until the spans of the treatments stored before this version are derived (the first
-- start after the upgrade does it); 1 from the start when there are none (a new database).
CREATE TABLE span_status (
    built INTEGER NOT NULL
);
INSERT INTO span_status (built) SELECT NOT EXISTS (SELECT 1 FROM treatments);
