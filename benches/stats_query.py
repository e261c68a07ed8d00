#!/usr/bin/env python3
"""The stats query's SQLite cost, before and after schema version 3 (docs/api-stats.md).

    python3 benches/stats_query.py

Builds a scratch database with nightlite's schema (schema.sql and migrations/), 90 days of
1-minute xDrip-shaped sgv entries with the sgv column filled as the server fills it, then times
the query of src/store/stats.rs (read from the source) and the same query reading each value
with json_extract from the document, as before version 3: CPU seconds of this process, two runs
each. It uses Python's own SQLite, which may be older than the server's bundled one.
"""
import math
import os
import re
import sqlite3
import tempfile
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def read(*path):
    with open(os.path.join(ROOT, *path)) as f:
        return f.read()


def main():
    db = os.path.join(tempfile.mkdtemp(), "stats.sqlite3")
    c = sqlite3.connect(db)
    c.executescript(read("schema.sql"))
    for name in sorted(os.listdir(os.path.join(ROOT, "migrations"))):
        c.executescript(read("migrations", name))
    now, minute, day = 1763800000000, 60000, 86400000
    rows = []
    for i in range(90 * 24 * 60):
        m = now - 1000 - i * minute
        v = round(160 + 90 * math.sin((m % day) / day * 2 * math.pi) + (i * 37) % 23)
        doc = (
            '{"device":"xDrip-DexcomG5","date":%d,"dateString":"2025-11-22T08:00:00.000Z",'
            '"sgv":%d,"delta":1.5,"direction":"Flat","type":"sgv","filtered":0,"unfiltered":0,'
            '"rssi":100,"noise":1,"sysTime":"2025-11-22T08:00:00.000Z","utcOffset":60}' % (m, v)
        )
        rows.append(("%024x" % i, doc, m, m, m + i))
    c.executemany(
        "INSERT INTO entries (id, doc, mills, srv_created, srv_modified, sgv) VALUES "
        "(?1, ?2, ?3, ?4, ?5, CASE WHEN json_extract(?2, '$.type') = 'sgv' "
        "THEN CAST(json_extract(?2, '$.sgv') AS REAL) END)",
        rows,
    )
    c.commit()
    new = re.search(r'const SQL: &str = "(.*?)";', read("src", "store", "stats.rs"), re.S).group(1)
    old = new.replace(
        "SELECT sgv AS v, mills,",
        "SELECT CAST(json_extract(doc, '$.sgv') AS REAL) AS v, mills,",
    ).replace("WHERE sgv IS NOT NULL AND", "WHERE type = 'sgv' AND")
    assert old != new, "the query in src/store/stats.rs changed shape; update this script"
    params = (now - 90 * day, now, 0, 15 * minute, 39.0, 54.0, 70.0, 180.0, 250.0)
    print(f"SQLite {sqlite3.sqlite_version}, {len(rows)} readings")
    for name, q in (("json_extract (before)", old), ("sgv column (v3)", new)) * 2:
        t = time.process_time()
        got = c.execute(q, params).fetchall()
        spent = time.process_time() - t
        print(f"{name}: {spent:.3f} s CPU, {len(got)} buckets, {sum(r[1] for r in got)} readings")


if __name__ == "__main__":
    main()
