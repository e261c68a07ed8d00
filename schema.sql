-- nightlite schema, version 1: the first step src/store/migrate.rs applies (recorded in PRAGMA
-- user_version); the steps in migrations/ follow. The schema a database has today, after every
-- step, is docs/schema-current.sql (generated and checked by a test). Since version 2 the
-- srv_modified triggers below are gone: every write statement sets srv_modified itself
-- (migrations/002-srv-modified-in-writes.sql, src/store/upsert.rs next_modified).
--
-- One table per Nightscout collection, all of the same shape:
--   seq           rowid, insertion order
--   id            the `_id` clients see: 24 lowercase hex characters, never changes
--   doc           the document as accepted (JSON text), without the server-owned fields
--                 (_id, srvCreated, srvModified, isValid), which live in columns
--   mills         the document's own time in epoch ms (entries: date; treatments, devicestatus,
--                 food, activity, settings: created_at; profile: startDate), for ranges and sorting
--   srv_created   when the server first stored it: the first srv_modified (epoch ms)
--   srv_modified  strictly increasing within the table (version 1: set by the triggers below),
--                 so a history reader paging with srvModified > last can never skip a document
--   is_valid      0 once deleted (soft delete: the row stays for sync history)
--   derived_id    1 when nightlite derived the identifier of a v1 upload that had none: API v3's
--                 fallback deduplication may match only such documents (Nightscout's matches
--                 documents without an identifier)
-- Generated columns expose the identity and query keys of the JSON for indexing.

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
);
CREATE UNIQUE INDEX entries_identifier ON entries (identifier);
CREATE INDEX entries_srv_modified ON entries (srv_modified);
CREATE INDEX entries_mills ON entries (mills);
CREATE INDEX entries_date_type ON entries (date, type);
CREATE INDEX entries_type_mills ON entries (type, mills);
CREATE INDEX entries_device_mills ON entries (device, mills);
CREATE TRIGGER entries_srv_modified_insert AFTER INSERT ON entries
BEGIN
    UPDATE entries SET srv_modified = max(CAST(unixepoch('subsec') * 1000 AS INTEGER),
        (SELECT coalesce(max(srv_modified), 0) FROM entries) + 1)
    WHERE seq = NEW.seq;
    UPDATE entries SET srv_created = srv_modified WHERE seq = NEW.seq;
END;
CREATE TRIGGER entries_srv_modified_update AFTER UPDATE OF doc, is_valid ON entries
BEGIN
    UPDATE entries SET srv_modified = max(CAST(unixepoch('subsec') * 1000 AS INTEGER),
        (SELECT coalesce(max(srv_modified), 0) FROM entries) + 1)
    WHERE seq = NEW.seq;
END;

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
CREATE UNIQUE INDEX treatments_identifier ON treatments (identifier);
CREATE INDEX treatments_srv_modified ON treatments (srv_modified);
CREATE INDEX treatments_mills ON treatments (mills);
CREATE INDEX treatments_created_at_eventType ON treatments (created_at, eventType);
CREATE INDEX treatments_eventType_mills ON treatments (eventType, mills);
CREATE INDEX treatments_enteredBy ON treatments (enteredBy);
CREATE TRIGGER treatments_srv_modified_insert AFTER INSERT ON treatments
BEGIN
    UPDATE treatments SET srv_modified = max(CAST(unixepoch('subsec') * 1000 AS INTEGER),
        (SELECT coalesce(max(srv_modified), 0) FROM treatments) + 1)
    WHERE seq = NEW.seq;
    UPDATE treatments SET srv_created = srv_modified WHERE seq = NEW.seq;
END;
CREATE TRIGGER treatments_srv_modified_update AFTER UPDATE OF doc, is_valid ON treatments
BEGIN
    UPDATE treatments SET srv_modified = max(CAST(unixepoch('subsec') * 1000 AS INTEGER),
        (SELECT coalesce(max(srv_modified), 0) FROM treatments) + 1)
    WHERE seq = NEW.seq;
END;

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
CREATE UNIQUE INDEX devicestatus_identifier ON devicestatus (identifier);
CREATE INDEX devicestatus_srv_modified ON devicestatus (srv_modified);
CREATE INDEX devicestatus_mills ON devicestatus (mills);
CREATE INDEX devicestatus_created_at_device ON devicestatus (created_at, device);
CREATE TRIGGER devicestatus_srv_modified_insert AFTER INSERT ON devicestatus
BEGIN
    UPDATE devicestatus SET srv_modified = max(CAST(unixepoch('subsec') * 1000 AS INTEGER),
        (SELECT coalesce(max(srv_modified), 0) FROM devicestatus) + 1)
    WHERE seq = NEW.seq;
    UPDATE devicestatus SET srv_created = srv_modified WHERE seq = NEW.seq;
END;
CREATE TRIGGER devicestatus_srv_modified_update AFTER UPDATE OF doc, is_valid ON devicestatus
BEGIN
    UPDATE devicestatus SET srv_modified = max(CAST(unixepoch('subsec') * 1000 AS INTEGER),
        (SELECT coalesce(max(srv_modified), 0) FROM devicestatus) + 1)
    WHERE seq = NEW.seq;
END;

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
CREATE UNIQUE INDEX profile_identifier ON profile (identifier);
CREATE INDEX profile_srv_modified ON profile (srv_modified);
CREATE INDEX profile_mills ON profile (mills);
CREATE INDEX profile_created_at ON profile (created_at);
CREATE TRIGGER profile_srv_modified_insert AFTER INSERT ON profile
BEGIN
    UPDATE profile SET srv_modified = max(CAST(unixepoch('subsec') * 1000 AS INTEGER),
        (SELECT coalesce(max(srv_modified), 0) FROM profile) + 1)
    WHERE seq = NEW.seq;
    UPDATE profile SET srv_created = srv_modified WHERE seq = NEW.seq;
END;
CREATE TRIGGER profile_srv_modified_update AFTER UPDATE OF doc, is_valid ON profile
BEGIN
    UPDATE profile SET srv_modified = max(CAST(unixepoch('subsec') * 1000 AS INTEGER),
        (SELECT coalesce(max(srv_modified), 0) FROM profile) + 1)
    WHERE seq = NEW.seq;
END;

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
CREATE UNIQUE INDEX food_identifier ON food (identifier);
CREATE INDEX food_srv_modified ON food (srv_modified);
CREATE INDEX food_mills ON food (mills);
CREATE INDEX food_created_at ON food (created_at);
CREATE INDEX food_type ON food (type);
CREATE TRIGGER food_srv_modified_insert AFTER INSERT ON food
BEGIN
    UPDATE food SET srv_modified = max(CAST(unixepoch('subsec') * 1000 AS INTEGER),
        (SELECT coalesce(max(srv_modified), 0) FROM food) + 1)
    WHERE seq = NEW.seq;
    UPDATE food SET srv_created = srv_modified WHERE seq = NEW.seq;
END;
CREATE TRIGGER food_srv_modified_update AFTER UPDATE OF doc, is_valid ON food
BEGIN
    UPDATE food SET srv_modified = max(CAST(unixepoch('subsec') * 1000 AS INTEGER),
        (SELECT coalesce(max(srv_modified), 0) FROM food) + 1)
    WHERE seq = NEW.seq;
END;

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
CREATE UNIQUE INDEX activity_identifier ON activity (identifier);
CREATE INDEX activity_srv_modified ON activity (srv_modified);
CREATE INDEX activity_mills ON activity (mills);
CREATE INDEX activity_created_at ON activity (created_at);
CREATE TRIGGER activity_srv_modified_insert AFTER INSERT ON activity
BEGIN
    UPDATE activity SET srv_modified = max(CAST(unixepoch('subsec') * 1000 AS INTEGER),
        (SELECT coalesce(max(srv_modified), 0) FROM activity) + 1)
    WHERE seq = NEW.seq;
    UPDATE activity SET srv_created = srv_modified WHERE seq = NEW.seq;
END;
CREATE TRIGGER activity_srv_modified_update AFTER UPDATE OF doc, is_valid ON activity
BEGIN
    UPDATE activity SET srv_modified = max(CAST(unixepoch('subsec') * 1000 AS INTEGER),
        (SELECT coalesce(max(srv_modified), 0) FROM activity) + 1)
    WHERE seq = NEW.seq;
END;

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
CREATE UNIQUE INDEX settings_identifier ON settings (identifier);
CREATE INDEX settings_srv_modified ON settings (srv_modified);
CREATE INDEX settings_mills ON settings (mills);
CREATE INDEX settings_created_at ON settings (created_at);
CREATE TRIGGER settings_srv_modified_insert AFTER INSERT ON settings
BEGIN
    UPDATE settings SET srv_modified = max(CAST(unixepoch('subsec') * 1000 AS INTEGER),
        (SELECT coalesce(max(srv_modified), 0) FROM settings) + 1)
    WHERE seq = NEW.seq;
    UPDATE settings SET srv_created = srv_modified WHERE seq = NEW.seq;
END;
CREATE TRIGGER settings_srv_modified_update AFTER UPDATE OF doc, is_valid ON settings
BEGIN
    UPDATE settings SET srv_modified = max(CAST(unixepoch('subsec') * 1000 AS INTEGER),
        (SELECT coalesce(max(srv_modified), 0) FROM settings) + 1)
    WHERE seq = NEW.seq;
END;
-- Authorization (Nightscout's auth_subjects / auth_roles collections). Access tokens are not
-- stored: they are derived from the API secret and the subject id (see src/auth/tokens.rs).
CREATE TABLE auth_subjects (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    doc TEXT NOT NULL CHECK (json_valid(doc))
);
CREATE INDEX auth_subjects_name ON auth_subjects (name);

CREATE TABLE auth_roles (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    doc TEXT NOT NULL CHECK (json_valid(doc))
);
CREATE INDEX auth_roles_name ON auth_roles (name);
