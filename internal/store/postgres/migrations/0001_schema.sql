-- The logical schema of the SQLite store (internal/store/sqlite/schema.sql),
-- in PostgreSQL's types: times are TIMESTAMPTZ, the sealed secret is BYTEA.
-- spec, status and the other JSON columns stay TEXT: the store reads whole
-- objects and never queries inside them, so new fields need no migration,
-- and TEXT keeps what was written byte for byte.
--
-- Names use the "C" collation so that "ordered by name" is byte order, as in
-- SQLite, whatever the database's locale; the primary keys then serve it.
--
-- Tables are created unqualified, in the schema the connection's search_path
-- selects, so one database can hold several stores.

CREATE TABLE pipes (
    name       TEXT COLLATE "C" PRIMARY KEY,
    uuid       TEXT        NOT NULL UNIQUE,
    spec       TEXT        NOT NULL,
    status     TEXT        NOT NULL,
    revision   BIGINT      NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

-- handler is the JSON of pipe.Handler for a hosted function, '' for none.
CREATE TABLE functions (
    name       TEXT COLLATE "C" PRIMARY KEY,
    url        TEXT        NOT NULL,
    handler    TEXT        NOT NULL DEFAULT '',
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE clusters (
    name       TEXT COLLATE "C" PRIMARY KEY,
    spec       TEXT        NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

-- sealed is sealed by the process before it reaches the store (package
-- secret); keys and brokers are JSON lists, in the clear so that listing
-- needs no master key.
CREATE TABLE secrets (
    name       TEXT COLLATE "C" PRIMARY KEY,
    type       TEXT        NOT NULL,
    keys       TEXT        NOT NULL,
    sealed     BYTEA       NOT NULL,
    brokers    TEXT        NOT NULL DEFAULT '[]',
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

-- hash is the SHA-256 of the token, never the token.
CREATE TABLE tokens (
    name       TEXT COLLATE "C" PRIMARY KEY,
    hash       TEXT        NOT NULL UNIQUE,
    scope      TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

-- The processes sharing the store, each with its last heartbeat.
CREATE TABLE members (
    name         TEXT COLLATE "C" PRIMARY KEY,
    heartbeat_at TIMESTAMPTZ NOT NULL
);

-- Each member's view of a pipe it runs, keyed by the pipe's UUID so that a
-- re-created pipe of the same name starts clean; partitions is the JSON of
-- topic → partitions.
CREATE TABLE member_statuses (
    pipe_uuid              TEXT        NOT NULL,
    member                 TEXT COLLATE "C" NOT NULL,
    partitions             TEXT        NOT NULL,
    last_processing_result TEXT        NOT NULL,
    updated_at             TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (pipe_uuid, member)
);
