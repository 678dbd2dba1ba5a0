//! The journal's SQLite schema and its migrations.
//!
//! The schema version lives in `PRAGMA user_version`. Each migration moves the database one
//! version up inside one transaction, so a crash mid-migration leaves the old version intact.

use rusqlite::{Connection, Transaction};

/// The version this build writes and expects.
pub const SCHEMA_VERSION: i64 = 5;

/// Pragmas every connection gets. `synchronous=FULL` makes each commit durable on return
/// (NORMAL can roll back committed transactions after a power cut, which would break
/// "durable before acknowledged").
pub const CONNECTION_PRAGMAS: &str = "
    PRAGMA journal_mode = WAL;
    PRAGMA synchronous = FULL;
    PRAGMA foreign_keys = ON;
    PRAGMA busy_timeout = 5000;
";

/// Version 1: journals (epochs of one database), records, rejects, upload cursors.
///
/// A database holds one or more *journals*: a restored backup starts a new journal id in the
/// same file, so records that were already uploaded under the old id keep it (DESIGN
/// invariant 3). Records are keyed by (journal, seq); `journal` is a small integer standing
/// for the 16-byte id in `journals`, to keep rows short.
const V1: &str = "
    CREATE TABLE journals (
        id              INTEGER PRIMARY KEY,
        journal_id      BLOB    NOT NULL UNIQUE CHECK (length(journal_id) = 16),
        created_ms      INTEGER NOT NULL,
        origin          TEXT    NOT NULL,
        -- Records up to this sequence were pruned after upload and retention; verify starts
        -- after it, from pruned_hash.
        pruned_through  INTEGER NOT NULL DEFAULT 0,
        pruned_hash     BLOB
    );

    CREATE TABLE records (
        journal     INTEGER NOT NULL REFERENCES journals(id),
        seq         INTEGER NOT NULL CHECK (seq >= 1),
        kind        TEXT    NOT NULL,
        time_ms     INTEGER NOT NULL,
        station     TEXT,
        worker      TEXT,
        trace_code  TEXT,
        order_no    TEXT,
        process     TEXT,
        body        TEXT    NOT NULL,
        prev_hash   BLOB    NOT NULL,
        hash        BLOB    NOT NULL,
        PRIMARY KEY (journal, seq)
    ) WITHOUT ROWID;

    CREATE INDEX records_by_trace ON records (trace_code) WHERE trace_code IS NOT NULL;

    -- Append-only: an accidental UPDATE or DELETE fails loudly. (The hash chain, not this
    -- trigger, is what detects deliberate tampering.) Pruning of uploaded records goes
    -- through prune_allowed, which only the pruning transaction sets.
    CREATE TABLE prune_gate (open INTEGER NOT NULL);
    INSERT INTO prune_gate VALUES (0);
    CREATE TRIGGER records_no_update BEFORE UPDATE ON records
    BEGIN SELECT RAISE(ABORT, 'records are append-only'); END;
    CREATE TRIGGER records_no_delete BEFORE DELETE ON records
    WHEN (SELECT open FROM prune_gate) = 0
    BEGIN SELECT RAISE(ABORT, 'records are append-only'); END;

    CREATE TABLE rejects (
        id        INTEGER PRIMARY KEY,
        time_ms   INTEGER NOT NULL,
        source    TEXT    NOT NULL,
        raw       BLOB    NOT NULL,
        reason    TEXT    NOT NULL
    );

    CREATE TABLE upload_cursors (
        journal   INTEGER PRIMARY KEY REFERENCES journals(id),
        seq       INTEGER NOT NULL
    );
";

/// Version 2: master data (workers, bundles, process routes) and the claims index.
///
/// These are working tables, not the journal: the journal's records are the history; these
/// say what is true now. Worker names live only here (ZH-3.3): records carry worker ids.
const V2: &str = "
    CREATE TABLE workers (
        id      TEXT PRIMARY KEY,
        name    TEXT NOT NULL,
        team    TEXT,
        badge   TEXT UNIQUE          -- the decoded badge key, e.g. badge:E1042
    );

    CREATE TABLE bundles (
        trace_key TEXT PRIMARY KEY,  -- the decoded, normalised key of the bundle ticket
        order_no  TEXT NOT NULL,
        style     TEXT,
        colour    TEXT,
        size      TEXT,
        quantity  INTEGER NOT NULL CHECK (quantity >= 0)
    );

    CREATE TABLE processes (
        order_no  TEXT NOT NULL,
        process   TEXT NOT NULL,
        step      INTEGER NOT NULL,
        PRIMARY KEY (order_no, process)
    );

    -- One row per coupon (bundle trace key + process) claimed on this agent; the primary
    -- key is what makes a second claim impossible (DG-A1, piece-rate pay).
    CREATE TABLE claims (
        trace_key TEXT NOT NULL,
        process   TEXT NOT NULL,
        station   TEXT NOT NULL,
        worker    TEXT NOT NULL,
        time_ms   INTEGER NOT NULL,
        open      INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (trace_key, process)
    ) WITHOUT ROWID;
";

/// Version 3: what the platform said about records it did not simply accept.
///
/// Conflicts (a coupon claimed elsewhere first) and rejects stay here, visible to
/// supervisors, after the cursor has moved past them: never retried forever, never dropped.
const V3: &str = "
    CREATE TABLE upload_outcomes (
        journal   INTEGER NOT NULL REFERENCES journals(id),
        seq       INTEGER NOT NULL,
        status    TEXT    NOT NULL,
        reason    TEXT    NOT NULL,
        message   TEXT    NOT NULL,
        time_ms   INTEGER NOT NULL,
        PRIMARY KEY (journal, seq)
    ) WITHOUT ROWID;
";

/// Every migration, in order: `MIGRATIONS[i]` takes version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    V1,
    V2,
    V3,
    crate::equipment::store::MIGRATION_SQL,
    crate::equipment::store::SESSIONS_MIGRATION_SQL,
];

// A migration without its version bump (or the reverse) must not build.
const _: () = assert!(MIGRATIONS.len() as i64 == SCHEMA_VERSION);

/// Why the schema could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The file was written by a newer Bobbin; opening it could corrupt it.
    #[error("database schema version {found} is newer than this build supports ({SCHEMA_VERSION}); upgrade bobbin")]
    TooNew {
        /// The version found in the file.
        found: i64,
    },
    /// SQLite refused a statement.
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

/// Reads the schema version of an open database.
pub fn version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// Applies every migration the database lacks. Returns the version it started at.
pub fn migrate(conn: &mut Connection) -> Result<i64, SchemaError> {
    let found = version(conn)?;
    if found > SCHEMA_VERSION {
        return Err(SchemaError::TooNew { found });
    }
    for (from, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx: Transaction<'_> = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", from as i64 + 1)?;
        tx.commit()?;
    }
    Ok(found)
}
