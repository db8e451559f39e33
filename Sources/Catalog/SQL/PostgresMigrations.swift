import Foundation

/// The PostgreSQL catalog's schema: the same named, append-only steps as `SQLiteMigrations`, in
/// PostgreSQL's types (every integer `BIGINT`, dates `TIMESTAMPTZ`, vectors `BYTEA`). Applied names are
/// kept in `schema_migrations`; the node that holds the advisory lock migrates, the others wait for it.
enum PostgresMigrations {
    static let steps: [(name: String, statements: [String])] = [
        ("v1_labels_users_batches", [
            """
            CREATE TABLE labels (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL, displayName TEXT NOT NULL, mid TEXT UNIQUE,
              parentId BIGINT REFERENCES labels ON DELETE SET NULL, createdAt TIMESTAMPTZ NOT NULL)
            """,
            "CREATE UNIQUE INDEX labels_lower_name ON labels (lower(name))",
            "CREATE INDEX labels_parentId ON labels (parentId)",
            """
            CREATE TABLE users (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, keyHash TEXT NOT NULL UNIQUE,
              createdAt TIMESTAMPTZ NOT NULL)
            """,
            """
            CREATE TABLE batches (id TEXT PRIMARY KEY, userId BIGINT NOT NULL REFERENCES users, device TEXT,
              lat DOUBLE PRECISION, lon DOUBLE PRECISION, createdAt TIMESTAMPTZ NOT NULL)
            """,
        ]),
        ("v2_images", [
            """
            CREATE TABLE images (id TEXT PRIMARY KEY, sha256 TEXT NOT NULL UNIQUE, labelId BIGINT NOT NULL REFERENCES labels,
              uploaderId BIGINT NOT NULL REFERENCES users, batchId TEXT REFERENCES batches, device TEXT, status TEXT NOT NULL,
              reasons TEXT NOT NULL DEFAULT '[]', format TEXT, width BIGINT, height BIGINT, sharpness DOUBLE PRECISION,
              brightness DOUBLE PRECISION, contrast DOUBLE PRECISION, phash BIGINT, duplicateOf TEXT, lat DOUBLE PRECISION,
              lon DOUBLE PRECISION, capturedAt TEXT, canonicalKey TEXT, thumbnailKey TEXT, bytes BIGINT NOT NULL,
              createdAt TIMESTAMPTZ NOT NULL, updatedAt TIMESTAMPTZ NOT NULL)
            """,
            "CREATE INDEX images_labelId ON images (labelId)",
            "CREATE INDEX images_uploaderId ON images (uploaderId)",
            "CREATE INDEX images_batchId ON images (batchId)",
            "CREATE INDEX images_status ON images (status)",
            "CREATE INDEX images_label_status ON images (labelId, status, id)",
            // The number of bits two perceptual hashes differ in (SQLite gets the same function from the catalog).
            """
            CREATE FUNCTION hamming(a BIGINT, b BIGINT) RETURNS INTEGER AS 'SELECT bit_count((a # b)::bit(64))::integer'
              LANGUAGE SQL IMMUTABLE STRICT PARALLEL SAFE
            """,
        ]),
        ("v3_jobs", [
            """
            CREATE TABLE jobs (id BIGSERIAL PRIMARY KEY, imageId TEXT NOT NULL REFERENCES images, kind TEXT NOT NULL,
              state TEXT NOT NULL, attempts BIGINT NOT NULL DEFAULT 0, runAfter TIMESTAMPTZ NOT NULL, leaseUntil TIMESTAMPTZ,
              leasedBy TEXT, lastError TEXT, createdAt TIMESTAMPTZ NOT NULL, updatedAt TIMESTAMPTZ NOT NULL)
            """,
            "CREATE INDEX jobs_ready ON jobs (state, runAfter)",
            "CREATE INDEX jobs_imageId ON jobs (imageId)",
        ]),
        ("v4_embeddings", [
            "ALTER TABLE images ADD COLUMN tags TEXT",
            "ALTER TABLE images ADD COLUMN labelCheck TEXT",
            "ALTER TABLE images ADD COLUMN labelScore DOUBLE PRECISION",
            "ALTER TABLE images ADD COLUMN suggestedLabelId BIGINT REFERENCES labels ON DELETE SET NULL",
            "ALTER TABLE images ADD COLUMN suggestedScore DOUBLE PRECISION",
            "ALTER TABLE images ADD COLUMN embeddingModel TEXT",
            """
            CREATE TABLE embeddings (seq BIGSERIAL PRIMARY KEY, imageId TEXT NOT NULL UNIQUE REFERENCES images ON DELETE CASCADE,
              model TEXT NOT NULL, vector BYTEA NOT NULL, createdAt TIMESTAMPTZ NOT NULL)
            """,
            """
            CREATE TABLE labelClusters (labelId BIGINT PRIMARY KEY REFERENCES labels ON DELETE CASCADE, imageCount BIGINT NOT NULL,
              k BIGINT NOT NULL, silhouette DOUBLE PRECISION NOT NULL, clusters TEXT NOT NULL, outliers TEXT NOT NULL,
              model TEXT NOT NULL, computedAt TIMESTAMPTZ NOT NULL)
            """,
        ]),
        ("v5_training", [
            """
            CREATE TABLE datasetVersions (id TEXT PRIMARY KEY, manifestHash TEXT NOT NULL, labels TEXT NOT NULL,
              imageCount BIGINT NOT NULL, createdAt TIMESTAMPTZ NOT NULL)
            """,
            """
            CREATE TABLE datasetVersionImages (versionId TEXT NOT NULL REFERENCES datasetVersions ON DELETE CASCADE,
              imageId TEXT NOT NULL REFERENCES images, label TEXT NOT NULL, PRIMARY KEY (versionId, imageId))
            """,
            """
            CREATE TABLE trainingJobs (id TEXT PRIMARY KEY, requesterId BIGINT NOT NULL REFERENCES users, request TEXT NOT NULL,
              state TEXT NOT NULL, epoch BIGINT NOT NULL DEFAULT 0, progress TEXT NOT NULL DEFAULT '[]',
              datasetVersionId TEXT REFERENCES datasetVersions, modelId TEXT, error TEXT, attempts BIGINT NOT NULL DEFAULT 0,
              leaseUntil TIMESTAMPTZ, leasedBy TEXT, createdAt TIMESTAMPTZ NOT NULL, updatedAt TIMESTAMPTZ NOT NULL)
            """,
            "CREATE INDEX trainingJobs_state ON trainingJobs (state)",
            """
            CREATE TABLE models (id TEXT PRIMARY KEY, trainingJobId TEXT NOT NULL, labels TEXT NOT NULL,
              datasetVersionId TEXT NOT NULL REFERENCES datasetVersions, backbone TEXT NOT NULL, accuracy DOUBLE PRECISION NOT NULL,
              report TEXT NOT NULL, head TEXT NOT NULL, createdAt TIMESTAMPTZ NOT NULL)
            """,
            """
            CREATE TABLE watches (id BIGSERIAL PRIMARY KEY, labelId BIGINT NOT NULL REFERENCES labels ON DELETE CASCADE,
              threshold BIGINT NOT NULL, webhookUrl TEXT, userId BIGINT NOT NULL REFERENCES users, firedAt TIMESTAMPTZ,
              createdAt TIMESTAMPTZ NOT NULL)
            """,
            """
            CREATE TABLE deliveries (id BIGSERIAL PRIMARY KEY, watchId BIGINT NOT NULL REFERENCES watches ON DELETE CASCADE,
              payload TEXT NOT NULL, state TEXT NOT NULL, attempts BIGINT NOT NULL DEFAULT 0, responseStatus BIGINT,
              lastError TEXT, nextAttemptAt TIMESTAMPTZ NOT NULL, createdAt TIMESTAMPTZ NOT NULL, updatedAt TIMESTAMPTZ NOT NULL)
            """,
            "CREATE INDEX deliveries_watchId ON deliveries (watchId)",
        ]),
        ("v6_resumable_uploads", [
            """
            CREATE TABLE resumableUploads (id TEXT PRIMARY KEY, userId BIGINT NOT NULL REFERENCES users, length BIGINT NOT NULL,
              "offset" BIGINT NOT NULL, metadata TEXT NOT NULL, rawMetadata TEXT, imageId TEXT, createdAt TIMESTAMPTZ NOT NULL,
              expiresAt TIMESTAMPTZ NOT NULL)
            """,
            "CREATE INDEX resumableUploads_expiresAt ON resumableUploads (expiresAt)",
        ]),
        ("v7_phash_bands", [
            """
            CREATE TABLE phashBands (imageId TEXT NOT NULL REFERENCES images ON DELETE CASCADE, band BIGINT NOT NULL,
              value BIGINT NOT NULL, PRIMARY KEY (imageId, band))
            """,
            "CREATE INDEX phashBands_lookup ON phashBands (band, value)",
        ]),
        ("v8_label_names", []),
        ("v9_passes", ["CREATE TABLE passes (name TEXT PRIMARY KEY, holder TEXT NOT NULL, leaseUntil TIMESTAMPTZ NOT NULL)"]),
        // New jobs announce themselves to idle workers on every node (`LISTEN`), whoever inserts them.
        ("v10_job_notifications", [
            """
            CREATE FUNCTION notify_new_job() RETURNS trigger AS $$
            BEGIN
              PERFORM pg_notify(TG_ARGV[0], '');
              RETURN NULL;
            END $$ LANGUAGE plpgsql
            """,
            "CREATE TRIGGER jobs_notify AFTER INSERT ON jobs FOR EACH STATEMENT EXECUTE FUNCTION notify_new_job('imagehub_jobs')",
            "CREATE TRIGGER training_jobs_notify AFTER INSERT ON trainingJobs FOR EACH STATEMENT EXECUTE FUNCTION notify_new_job('imagehub_training')",
        ]),
        // One notification a pipeline job (its id as the payload, so a transaction's notifications are not
        // folded into one): a notification wakes one idle worker, so a batch of jobs must announce each.
        ("v11_job_notification_per_job", [
            """
            CREATE FUNCTION notify_job_id() RETURNS trigger AS $$
            BEGIN
              PERFORM pg_notify(TG_ARGV[0], NEW.id::text);
              RETURN NULL;
            END $$ LANGUAGE plpgsql
            """,
            "DROP TRIGGER jobs_notify ON jobs",
            "CREATE TRIGGER jobs_notify AFTER INSERT ON jobs FOR EACH ROW EXECUTE FUNCTION notify_job_id('imagehub_jobs')",
        ]),
        ("v12_sessions", [
            """
            CREATE TABLE sessions (tokenHash TEXT PRIMARY KEY, userId BIGINT NOT NULL REFERENCES users ON DELETE CASCADE,
                                   csrf TEXT NOT NULL, expiresAt TIMESTAMPTZ NOT NULL, createdAt TIMESTAMPTZ NOT NULL)
            """,
            "CREATE INDEX sessions_expiry ON sessions (expiresAt)",
        ]),
        ("v13_activity", [
            "CREATE INDEX images_created ON images (createdAt)",
            "CREATE INDEX images_updated ON images (updatedAt)",
        ]),
        ("v14_dataset_splits", [
            "ALTER TABLE datasetVersionImages ADD COLUMN split TEXT",
        ]),
        ("v15_label_quality", [
            """
            CREATE TABLE labelQuality (labelId BIGINT PRIMARY KEY REFERENCES labels ON DELETE CASCADE,
                                       thresholds TEXT NOT NULL, computedAt TIMESTAMPTZ NOT NULL)
            """,
        ]),
    ]

    static func migrate(_ database: PostgresDatabase) throws {
        try database.withConnection { connection in
            // Another node's migration may take long on a big catalog (an index over every image): wait for
            // it without the session's lock_timeout.
            try connection.execute("SET lock_timeout = 0", [])
            try connection.execute("SELECT pg_advisory_lock(\(Tx.migrationLock))", [])
            defer {
                try? connection.execute("SELECT pg_advisory_unlock(\(Tx.migrationLock))", [])
                try? connection.execute("RESET lock_timeout", [])
            }
            try connection.execute("CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, appliedAt TIMESTAMPTZ NOT NULL)", [])
            let applied = Set(try connection.query("SELECT name FROM schema_migrations", []).compactMap { $0.string("name") })
            for step in steps where !applied.contains(step.name) {
                try connection.execute("BEGIN", [])
                do {
                    for statement in step.statements { try connection.execute(statement, []) }
                    try connection.execute("INSERT INTO schema_migrations (name, appliedAt) VALUES (?, ?)", [.text(step.name), .date(Date())])
                    try connection.execute("COMMIT", [])
                } catch {
                    try? connection.execute("ROLLBACK", [])
                    throw error
                }
            }
        }
    }
}
