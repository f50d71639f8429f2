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

-- Functions are what pipes can target by name: an HTTP endpoint (url), or
-- a handler Sluice hosts (handler, the JSON of pipe.Handler; '' for none).
CREATE TABLE IF NOT EXISTS functions (
    name       TEXT      PRIMARY KEY,
    url        TEXT      NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    handler    TEXT      NOT NULL DEFAULT ''
);

-- Clusters are named Kafka connections; spec is the JSON of cluster.Cluster,
-- which holds secret names, never secret values.
CREATE TABLE IF NOT EXISTS clusters (
    name       TEXT      PRIMARY KEY,
    spec       TEXT      NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

-- Secrets are sealed with AES-256-GCM by the process before they reach the
-- store (see package secret): sealed is the base64 of the sealed blob, and the key
-- names are kept in the clear so listing needs no master key.
CREATE TABLE IF NOT EXISTS secrets (
    name       TEXT      PRIMARY KEY,
    type       TEXT      NOT NULL,
    keys       TEXT      NOT NULL,
    sealed     TEXT      NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    brokers    TEXT      NOT NULL DEFAULT '[]'
);

-- API tokens are stored as the SHA-256 of the token, never the token.
CREATE TABLE IF NOT EXISTS tokens (
    name       TEXT      PRIMARY KEY,
    hash       TEXT      NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL,
    scope      TEXT      NOT NULL DEFAULT 'admin'
);

-- Members are the processes sharing a store, each with its last heartbeat.
-- Times in these two tables are Unix nanoseconds (UTC by definition) so that
-- the "since" comparisons are numeric, whatever text form a driver would
-- give a TIMESTAMP.
CREATE TABLE IF NOT EXISTS members (
    name         TEXT    PRIMARY KEY,
    heartbeat_at INTEGER NOT NULL
);

-- member_statuses is each member's view of a pipe it runs, keyed by the
-- pipe's UUID so a re-created pipe of the same name starts clean;
-- partitions is the JSON of topic → partitions.
CREATE TABLE IF NOT EXISTS member_statuses (
    pipe_uuid              TEXT    NOT NULL,
    member                 TEXT    NOT NULL,
    partitions             TEXT    NOT NULL,
    last_processing_result TEXT    NOT NULL,
    updated_at             INTEGER NOT NULL,
    PRIMARY KEY (pipe_uuid, member)
);
