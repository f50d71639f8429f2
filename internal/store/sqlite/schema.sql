-- The schema is plain SQL that SQLite and PostgreSQL both accept, so a
-- PostgreSQL store can run the same statements. spec and status hold the JSON
-- of pipe.Spec and pipe.Status: the engine reads whole pipes, never queries
-- inside them, and new spec fields then need no migration. Times are UTC.
CREATE TABLE IF NOT EXISTS pipes (
    name       TEXT      PRIMARY KEY,
    uuid       TEXT      NOT NULL UNIQUE,
    spec       TEXT      NOT NULL,
    status     TEXT      NOT NULL,
    revision   BIGINT    NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

-- Functions are named HTTP endpoints pipes can target by name.
CREATE TABLE IF NOT EXISTS functions (
    name       TEXT      PRIMARY KEY,
    url        TEXT      NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
