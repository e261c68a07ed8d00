-- nightlite schema version 5 (applied by src/store/migrate.rs after version 4): state spans
-- from device statuses (docs/state-spans.md "From device statuses").
--
-- A device status is a sample taken every few minutes, not an event: status_sources holds,
-- per status and category, the state the sample reports (state NULL: reported, and none holds)
-- so that runs of equal samples are found by index lookups without parsing documents again.
--   seq       the devicestatus row; device its `device` ('' when it has none)
--   key       what tells two states apart (Loop's override: its start `timestamp` and name)
--   metadata  the sample's fields that describe the state (JSON), NULL when none holds
-- A run of consecutive samples of one device with the same key is one span in state_spans
-- with origin_kind 'devicestatus' (origin_seq is then a devicestatus seq). A status span that
-- overlaps a span derived from treatments of the same category is kept but hidden
-- (shadowed_by: that span's id): the treatment is the record, the status only fills gaps.
ALTER TABLE state_spans ADD COLUMN origin_kind TEXT NOT NULL DEFAULT 'treatment';
ALTER TABLE state_spans ADD COLUMN device TEXT;
ALTER TABLE state_spans ADD COLUMN shadowed_by TEXT;
-- 1 when the span changes glucose targets or insulin (src/spans/adjust.rs decides, when the
-- span is stored, so /api/v4/adjustments selects and pages in SQL by the one rule).
ALTER TABLE state_spans ADD COLUMN adjusts INTEGER NOT NULL DEFAULT 0;
-- device: NULL for spans from treatments, the status's `device` ('' when none) for runs.
-- The two indexes make the upkeep of one status, and which treatment hides a run, index
-- lookups (docs/state-spans.md "Cost").
CREATE INDEX state_spans_device_start ON state_spans (category, device, start_mills, origin_seq);
CREATE INDEX state_spans_category_end ON state_spans (category, end_mills);

CREATE TABLE status_sources (
    seq INTEGER NOT NULL,
    category TEXT NOT NULL,
    device TEXT NOT NULL,
    mills INTEGER NOT NULL,
    state TEXT,
    key TEXT,
    metadata TEXT CHECK (metadata IS NULL OR json_valid(metadata)),
    PRIMARY KEY (seq, category)
);
CREATE INDEX status_sources_device_mills ON status_sources (category, device, mills, seq);

-- 1 for a treatment that starts a state with no end of its own (a permanent profile switch):
-- profile upkeep re-derives from the newest such switch before a change, not from the first.
ALTER TABLE span_sources ADD COLUMN holds_open INTEGER NOT NULL DEFAULT 0;
CREATE INDEX span_sources_open ON span_sources (category, holds_open, mills);

-- The spans are derived again at the first start (span rebuild): the statuses stored before
-- this version get theirs, the spans stored before get `adjusts` and their sources `holds_open`.
UPDATE span_status SET built = 0
WHERE EXISTS (SELECT 1 FROM devicestatus) OR EXISTS (SELECT 1 FROM state_spans)
   OR EXISTS (SELECT 1 FROM span_sources);
