-- nightlite schema version 6 (applied by src/store/migrate.rs after version 5): sync with
-- another Nightscout-compatible site (docs/sync.md). `remote` is the site's URL without
-- credentials, so a second site (or the same site under a new URL) starts afresh.
--
-- The outbox: the documents themselves. srv_modified is strictly increasing per table and a
-- delete here is soft (isValid false, srv_modified moved on), so the local changes the site
-- has not acknowledged are the rows with srv_modified > uploaded_through, less those that
-- came from the site (sync_known.local_modified = srv_modified). uploaded_through moves only
-- after the site answered for every document up to it, in the same database, so a restart or
-- kill -9 resends at most one page, which the identifiers make an update there, never a copy.
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

-- What both sides held at the last sync, per document: a change on one side is a version
-- other than this; a change on both is a conflict.
--   identity         the document's identifier, else its _id
--   local_modified   srv_modified here of that version
--   remote_modified  srvModified there (NULL when the site shows none: API v1)
--   hash             SHA-256 of its content (src/sync/content.rs)
CREATE TABLE sync_known (
    remote TEXT NOT NULL,
    collection TEXT NOT NULL,
    identity TEXT NOT NULL,
    local_modified INTEGER,
    remote_modified INTEGER,
    hash TEXT NOT NULL,
    PRIMARY KEY (remote, collection, identity)
) WITHOUT ROWID;

-- Every conflict found and how it ended. kept: 'local' | 'remote', NULL while a manual
-- conflict waits for a decision (POST /api/v4/sync/conflicts/{id}); applied 0 while a
-- decision waits for the next sync to carry it out. The losing version stays here.
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
CREATE INDEX sync_conflicts_open ON sync_conflicts (remote, collection, identity)
    WHERE kept IS NULL OR applied = 0;

-- One row per sync run, kept SYNC_HISTORY_DAYS. outcome: 'complete' | 'error' | 'queued';
-- NULL while running. detail: per collection counts and integrity (JSON).
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
CREATE INDEX sync_runs_started ON sync_runs (started_at);
