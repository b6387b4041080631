"""The schema, as numbered migrations applied in order once each, under an advisory lock so
hosts starting at once neither race nor apply one twice."""

MIGRATIONS = [
    """
    CREATE TABLE jobs (
        seq BIGSERIAL PRIMARY KEY,  -- creation order: claim order
        id TEXT NOT NULL UNIQUE,
        model TEXT NOT NULL,
        status TEXT NOT NULL,
        request TEXT NOT NULL,
        progress TEXT NOT NULL,
        history TEXT NOT NULL,
        result TEXT,
        error TEXT,
        created_at TEXT NOT NULL,
        started_at TEXT,
        finished_at TEXT,
        worker TEXT,
        heartbeat_at TEXT,
        cancel_requested BOOLEAN NOT NULL DEFAULT false,
        lease TEXT,                      -- a new token at each claim: the fence
        lease_until DOUBLE PRECISION,    -- the database's epoch seconds; renewed by heartbeats
        attempt INTEGER NOT NULL DEFAULT 0,
        kind TEXT NOT NULL DEFAULT 'training',  -- jobs.backend.KINDS
        saving BOOLEAN NOT NULL DEFAULT false,  -- begin_save taken: a cancel is too late
        summary TEXT                            -- records.summary_of(request), for lists
    );
    CREATE INDEX jobs_by_status ON jobs (status, seq);
    CREATE INDEX jobs_by_created ON jobs (created_at, seq);
    CREATE INDEX jobs_by_finished ON jobs (finished_at);
    CREATE TABLE model_versions (
        name TEXT NOT NULL,
        version INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        meta JSONB NOT NULL,
        created TIMESTAMPTZ NOT NULL DEFAULT now(),
        bytes BYTEA NOT NULL,
        UNIQUE (name, version)
    );
    CREATE TABLE model_names (  -- the high-water mark: a version number is never reused
        name TEXT PRIMARY KEY,
        last_version INTEGER NOT NULL
    );
    CREATE TABLE store_generation (one BOOLEAN PRIMARY KEY DEFAULT true CHECK (one),
                                   value BIGINT NOT NULL);
    INSERT INTO store_generation VALUES (true, 0);
    """,
    # 2: the model store (service/store/postgres.py). model_versions was unused until now:
    # made again with a row id (a version's identity in a process's cache, as a number
    # alone is not once a deleted model's numbering restarts) and its meta as JSON text
    # (JSONB would reorder its keys).
    """
    DROP TABLE model_versions;
    CREATE TABLE model_versions (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        name TEXT NOT NULL,
        version BIGINT NOT NULL,
        sha256 TEXT NOT NULL,
        meta JSON NOT NULL,
        created TIMESTAMPTZ NOT NULL DEFAULT now(),
        bytes BYTEA NOT NULL,  -- the .npz, validated in full whenever it is read
        UNIQUE (name, version)
    );
    ALTER TABLE model_names ALTER COLUMN last_version TYPE BIGINT;
    CREATE TABLE model_aliases (
        name TEXT NOT NULL,
        alias TEXT NOT NULL,
        version BIGINT NOT NULL,
        PRIMARY KEY (name, alias),
        FOREIGN KEY (name, version) REFERENCES model_versions (name, version) ON DELETE CASCADE
    );
    CREATE TABLE model_figures (
        version_id BIGINT NOT NULL REFERENCES model_versions (id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        png BYTEA NOT NULL,
        PRIMARY KEY (version_id, key)
    );
    """,
    # 3: the latest report's snapshot of a job's weights (records.snapshot_text), read alone
    "ALTER TABLE jobs ADD COLUMN snapshot TEXT;",
    # 4: when a figure was kept, so a version keeps only its newest (store/base.MAX_FIGURES)
    "ALTER TABLE model_figures ADD COLUMN kept_at TIMESTAMPTZ NOT NULL DEFAULT now();",
]
LOCK_KEY = 0x6E6E_7365_7276_6501  # "nnserve" + 1: the migrations' advisory lock


def migrate(conn):
    """Apply the migrations conn's database lacks (conn in autocommit mode)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        conn.execute("CREATE TABLE IF NOT EXISTS nnserve_schema (version INTEGER NOT NULL)")
        row = conn.execute("SELECT max(version) FROM nnserve_schema").fetchone()
        current = row[0] or 0
        for number, sql in enumerate(MIGRATIONS[current:], start=current + 1):
            conn.execute(sql)
            conn.execute("INSERT INTO nnserve_schema VALUES (%s)", (number,))
