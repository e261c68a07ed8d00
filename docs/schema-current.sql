-- nightlite schema version 6: the shape a database has after schema.sql and every
-- step in migrations/ (src/store/migrate.rs). Generated, not applied: schema.sql and
-- migrations/ are what runs. A test compares this file with the schema the steps make;
-- after adding a step, regenerate it with
--   NIGHTLITE_WRITE_SCHEMA=1 cargo test --lib schema_dump
-- Column meanings: the header of schema.sql and the migrations' headers.

CREATE TABLE activity (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    doc TEXT NOT NULL CHECK (json_valid(doc)),
    mills INTEGER NOT NULL,
    srv_created INTEGER NOT NULL,
    srv_modified INTEGER NOT NULL DEFAULT 0,
    is_valid INTEGER NOT NULL DEFAULT 1,
    derived_id INTEGER NOT NULL DEFAULT 0,
    identifier TEXT GENERATED ALWAYS AS (json_extract(doc, '$.identifier')) VIRTUAL,
    created_at TEXT GENERATED ALWAYS AS (json_extract(doc, '$.created_at')) VIRTUAL
);

CREATE TABLE auth_roles (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    doc TEXT NOT NULL CHECK (json_valid(doc))
);

CREATE TABLE auth_subjects (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    doc TEXT NOT NULL CHECK (json_valid(doc))
);

CREATE TABLE devicestatus (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    doc TEXT NOT NULL CHECK (json_valid(doc)),
    mills INTEGER NOT NULL,
    srv_created INTEGER NOT NULL,
    srv_modified INTEGER NOT NULL DEFAULT 0,
    is_valid INTEGER NOT NULL DEFAULT 1,
    derived_id INTEGER NOT NULL DEFAULT 0,
    identifier TEXT GENERATED ALWAYS AS (json_extract(doc, '$.identifier')) VIRTUAL,
    created_at TEXT GENERATED ALWAYS AS (json_extract(doc, '$.created_at')) VIRTUAL,
    device TEXT GENERATED ALWAYS AS (json_extract(doc, '$.device')) VIRTUAL
);

CREATE TABLE entries (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    doc TEXT NOT NULL CHECK (json_valid(doc)),
    mills INTEGER NOT NULL,
    srv_created INTEGER NOT NULL,
    srv_modified INTEGER NOT NULL DEFAULT 0,
    is_valid INTEGER NOT NULL DEFAULT 1,
    derived_id INTEGER NOT NULL DEFAULT 0,
    identifier TEXT GENERATED ALWAYS AS (json_extract(doc, '$.identifier')) VIRTUAL,
    date INTEGER GENERATED ALWAYS AS (json_extract(doc, '$.date')) VIRTUAL,
    type TEXT GENERATED ALWAYS AS (json_extract(doc, '$.type')) VIRTUAL,
    device TEXT GENERATED ALWAYS AS (json_extract(doc, '$.device')) VIRTUAL
, sgv REAL);

CREATE TABLE food (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    doc TEXT NOT NULL CHECK (json_valid(doc)),
    mills INTEGER NOT NULL,
    srv_created INTEGER NOT NULL,
    srv_modified INTEGER NOT NULL DEFAULT 0,
    is_valid INTEGER NOT NULL DEFAULT 1,
    derived_id INTEGER NOT NULL DEFAULT 0,
    identifier TEXT GENERATED ALWAYS AS (json_extract(doc, '$.identifier')) VIRTUAL,
    created_at TEXT GENERATED ALWAYS AS (json_extract(doc, '$.created_at')) VIRTUAL,
    type TEXT GENERATED ALWAYS AS (json_extract(doc, '$.type')) VIRTUAL
);

CREATE TABLE profile (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    doc TEXT NOT NULL CHECK (json_valid(doc)),
    mills INTEGER NOT NULL,
    srv_created INTEGER NOT NULL,
    srv_modified INTEGER NOT NULL DEFAULT 0,
    is_valid INTEGER NOT NULL DEFAULT 1,
    derived_id INTEGER NOT NULL DEFAULT 0,
    identifier TEXT GENERATED ALWAYS AS (json_extract(doc, '$.identifier')) VIRTUAL,
    created_at TEXT GENERATED ALWAYS AS (json_extract(doc, '$.created_at')) VIRTUAL,
    startDate TEXT GENERATED ALWAYS AS (json_extract(doc, '$.startDate')) VIRTUAL
);

CREATE TABLE settings (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    doc TEXT NOT NULL CHECK (json_valid(doc)),
    mills INTEGER NOT NULL,
    srv_created INTEGER NOT NULL,
    srv_modified INTEGER NOT NULL DEFAULT 0,
    is_valid INTEGER NOT NULL DEFAULT 1,
    derived_id INTEGER NOT NULL DEFAULT 0,
    identifier TEXT GENERATED ALWAYS AS (json_extract(doc, '$.identifier')) VIRTUAL,
    created_at TEXT GENERATED ALWAYS AS (json_extract(doc, '$.created_at')) VIRTUAL
);

CREATE TABLE span_sources (
    seq INTEGER PRIMARY KEY,
    category TEXT NOT NULL,
    mills INTEGER NOT NULL
, holds_open INTEGER NOT NULL DEFAULT 0);

CREATE TABLE span_status (
    built INTEGER NOT NULL
);

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
, origin_kind TEXT NOT NULL DEFAULT 'treatment', device TEXT, shadowed_by TEXT, adjusts INTEGER NOT NULL DEFAULT 0);

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

CREATE TABLE sync_conflicts (
    id INTEGER PRIMARY KEY,
    remote TEXT NOT NULL,
    collection TEXT NOT NULL,
    identity TEXT NOT NULL,
    detected_at INTEGER NOT NULL,
    strategy TEXT NOT NULL,
    reason TEXT NOT NULL,
    kept TEXT,
    local_doc TEXT,
    remote_doc TEXT,
    local_modified INTEGER,
    remote_modified INTEGER,
    resolved_at INTEGER,
    applied INTEGER NOT NULL DEFAULT 1
);

CREATE TABLE sync_cursors (
    remote TEXT NOT NULL,
    collection TEXT NOT NULL,
    -- local srv_modified through which the site has every change
    uploaded_through INTEGER NOT NULL DEFAULT 0,
    -- the site's srvModified read through (API v3 history); NULL before the first read
    remote_since INTEGER,
    -- the site's document time read through by the API v1 pass (documents without srvModified)
    remote_dated INTEGER,
    PRIMARY KEY (remote, collection)
) WITHOUT ROWID;

CREATE TABLE sync_known (
    remote TEXT NOT NULL,
    collection TEXT NOT NULL,
    identity TEXT NOT NULL,
    local_modified INTEGER,
    remote_modified INTEGER,
    hash TEXT NOT NULL,
    PRIMARY KEY (remote, collection, identity)
) WITHOUT ROWID;

CREATE TABLE sync_runs (
    id INTEGER PRIMARY KEY,
    remote TEXT NOT NULL,
    trigger TEXT NOT NULL,
    direction TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    finished_at INTEGER,
    outcome TEXT,
    uploaded INTEGER NOT NULL DEFAULT 0,
    downloaded INTEGER NOT NULL DEFAULT 0,
    conflicts INTEGER NOT NULL DEFAULT 0,
    refused INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    detail TEXT
);

CREATE TABLE treatments (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    doc TEXT NOT NULL CHECK (json_valid(doc)),
    mills INTEGER NOT NULL,
    srv_created INTEGER NOT NULL,
    srv_modified INTEGER NOT NULL DEFAULT 0,
    is_valid INTEGER NOT NULL DEFAULT 1,
    derived_id INTEGER NOT NULL DEFAULT 0,
    identifier TEXT GENERATED ALWAYS AS (json_extract(doc, '$.identifier')) VIRTUAL,
    created_at TEXT GENERATED ALWAYS AS (json_extract(doc, '$.created_at')) VIRTUAL,
    eventType TEXT GENERATED ALWAYS AS (json_extract(doc, '$.eventType')) VIRTUAL,
    enteredBy TEXT GENERATED ALWAYS AS (json_extract(doc, '$.enteredBy')) VIRTUAL,
    device TEXT GENERATED ALWAYS AS (json_extract(doc, '$.device')) VIRTUAL
);

CREATE INDEX activity_created_at ON activity (created_at);

CREATE UNIQUE INDEX activity_identifier ON activity (identifier);

CREATE INDEX activity_mills ON activity (mills);

CREATE INDEX activity_srv_modified ON activity (srv_modified);

CREATE INDEX auth_roles_name ON auth_roles (name);

CREATE INDEX auth_subjects_name ON auth_subjects (name);

CREATE INDEX devicestatus_created_at_device ON devicestatus (created_at, device);

CREATE UNIQUE INDEX devicestatus_identifier ON devicestatus (identifier);

CREATE INDEX devicestatus_mills ON devicestatus (mills);

CREATE INDEX devicestatus_srv_modified ON devicestatus (srv_modified);

CREATE INDEX entries_date_type ON entries (date, type);

CREATE INDEX entries_device_mills ON entries (device, mills);

CREATE UNIQUE INDEX entries_identifier ON entries (identifier);

CREATE INDEX entries_mills ON entries (mills);

CREATE INDEX entries_sgv ON entries (mills, is_valid, sgv) WHERE sgv IS NOT NULL;

CREATE INDEX entries_srv_modified ON entries (srv_modified);

CREATE INDEX entries_type_mills ON entries (type, mills);

CREATE INDEX food_created_at ON food (created_at);

CREATE UNIQUE INDEX food_identifier ON food (identifier);

CREATE INDEX food_mills ON food (mills);

CREATE INDEX food_srv_modified ON food (srv_modified);

CREATE INDEX food_type ON food (type);

CREATE INDEX profile_created_at ON profile (created_at);

CREATE UNIQUE INDEX profile_identifier ON profile (identifier);

CREATE INDEX profile_mills ON profile (mills);

CREATE INDEX profile_srv_modified ON profile (srv_modified);

CREATE INDEX settings_created_at ON settings (created_at);

CREATE UNIQUE INDEX settings_identifier ON settings (identifier);

CREATE INDEX settings_mills ON settings (mills);

CREATE INDEX settings_srv_modified ON settings (srv_modified);

CREATE INDEX span_sources_category_mills ON span_sources (category, mills);

CREATE INDEX span_sources_open ON span_sources (category, holds_open, mills);

CREATE INDEX state_spans_category_end ON state_spans (category, end_mills);

CREATE INDEX state_spans_category_start ON state_spans (category, start_mills);

CREATE INDEX state_spans_device_start ON state_spans (category, device, start_mills, origin_seq);

CREATE INDEX state_spans_start ON state_spans (start_mills);

CREATE INDEX status_sources_device_mills ON status_sources (category, device, mills, seq);

CREATE INDEX sync_conflicts_open ON sync_conflicts (remote, collection, identity)
    WHERE kept IS NULL OR applied = 0;

CREATE INDEX sync_runs_started ON sync_runs (started_at);

CREATE INDEX treatments_created_at_eventType ON treatments (created_at, eventType);

CREATE INDEX treatments_enteredBy ON treatments (enteredBy);

CREATE INDEX treatments_eventType_mills ON treatments (eventType, mills);

CREATE UNIQUE INDEX treatments_identifier ON treatments (identifier);

CREATE INDEX treatments_mills ON treatments (mills);

CREATE INDEX treatments_srv_modified ON treatments (srv_modified);
