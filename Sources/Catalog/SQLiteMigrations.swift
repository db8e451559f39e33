import GRDB

/// The embedded catalog's schema, as named, append-only migrations (GRDB's migrator). The PostgreSQL
/// schema follows the same steps under the same names (`PostgresMigrations`).
enum SQLiteMigrations {
    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1_labels_users_batches") { db in
            try db.create(table: "labels") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("name", .text).notNull().unique(onConflict: .abort).collate(.nocase)
                t.column("displayName", .text).notNull()
                t.column("mid", .text).unique()
                t.column("parentId", .integer).references("labels", onDelete: .setNull).indexed()
                t.column("createdAt", .datetime).notNull()
            }
            try db.create(table: "users") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("name", .text).notNull()
                t.column("role", .text).notNull()
                t.column("keyHash", .text).notNull().unique()
                t.column("createdAt", .datetime).notNull()
            }
            try db.create(table: "batches") { t in
                t.primaryKey("id", .text)
                t.column("userId", .integer).notNull().references("users")
                t.column("device", .text)
                t.column("lat", .double)
                t.column("lon", .double)
                t.column("createdAt", .datetime).notNull()
            }
        }
        m.registerMigration("v2_images") { db in
            try db.create(table: "images") { t in
                t.primaryKey("id", .text)
                t.column("sha256", .text).notNull().unique()
                t.column("labelId", .integer).notNull().references("labels").indexed()
                t.column("uploaderId", .integer).notNull().references("users").indexed()
                t.column("batchId", .text).references("batches").indexed()
                t.column("device", .text)
                t.column("status", .text).notNull().indexed()
                t.column("reasons", .text).notNull().defaults(to: "[]")
                t.column("format", .text)
                t.column("width", .integer)
                t.column("height", .integer)
                t.column("sharpness", .double)
                t.column("brightness", .double)
                t.column("contrast", .double)
                t.column("phash", .integer)
                t.column("duplicateOf", .text)
                t.column("lat", .double)
                t.column("lon", .double)
                t.column("capturedAt", .text)
                t.column("canonicalKey", .text)
                t.column("thumbnailKey", .text)
                t.column("bytes", .integer).notNull()
                t.column("createdAt", .datetime).notNull()
                t.column("updatedAt", .datetime).notNull()
            }
            try db.create(index: "images_label_status", on: "images", columns: ["labelId", "status", "id"])
        }
        m.registerMigration("v3_jobs") { db in
            try db.create(table: "jobs") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("imageId", .text).notNull().references("images")
                t.column("kind", .text).notNull()
                t.column("state", .text).notNull()
                t.column("attempts", .integer).notNull().defaults(to: 0)
                t.column("runAfter", .datetime).notNull()
                t.column("leaseUntil", .datetime)
                t.column("leasedBy", .text)
                t.column("lastError", .text)
                t.column("createdAt", .datetime).notNull()
                t.column("updatedAt", .datetime).notNull()
            }
            try db.create(index: "jobs_ready", on: "jobs", columns: ["state", "runAfter"])
        }
        m.registerMigration("v4_embeddings") { db in
            // What the backbone saw: automatic tags and the label check's outcome.
            try db.alter(table: "images") { t in
                t.add(column: "tags", .text)
                t.add(column: "labelCheck", .text)
                t.add(column: "labelScore", .double)
                t.add(column: "suggestedLabelId", .integer).references("labels", onDelete: .setNull)
                t.add(column: "suggestedScore", .double)
                t.add(column: "embeddingModel", .text)
            }
            // One row per embedded image; `seq` grows on every write (REPLACE), so a process's in-memory
            // index catches up by reading rows with seq above what it has seen.
            try db.create(table: "embeddings") { t in
                t.autoIncrementedPrimaryKey("seq")
                t.column("imageId", .text).notNull().unique(onConflict: .replace).references("images", onDelete: .cascade)
                t.column("model", .text).notNull()
                t.column("vector", .blob).notNull()
                t.column("createdAt", .datetime).notNull()
            }
            try db.create(table: "labelClusters") { t in
                t.primaryKey("labelId", .integer).references("labels", onDelete: .cascade)
                t.column("imageCount", .integer).notNull()
                t.column("k", .integer).notNull()
                t.column("silhouette", .double).notNull()
                t.column("clusters", .text).notNull()
                t.column("outliers", .text).notNull()
                t.column("model", .text).notNull()
                t.column("computedAt", .datetime).notNull()
            }
        }
        m.registerMigration("v5_training") { db in
            // An immutable dataset version: the exact images and labels a model was trained on.
            try db.create(table: "datasetVersions") { t in
                t.primaryKey("id", .text)
                t.column("manifestHash", .text).notNull()
                t.column("labels", .text).notNull()
                t.column("imageCount", .integer).notNull()
                t.column("createdAt", .datetime).notNull()
            }
            try db.create(table: "datasetVersionImages") { t in
                t.column("versionId", .text).notNull().references("datasetVersions", onDelete: .cascade)
                t.column("imageId", .text).notNull().references("images")
                t.column("label", .text).notNull()
                t.primaryKey(["versionId", "imageId"])
            }
            try db.create(table: "trainingJobs") { t in
                t.primaryKey("id", .text)
                t.column("requesterId", .integer).notNull().references("users")
                t.column("request", .text).notNull()
                t.column("state", .text).notNull().indexed()
                t.column("epoch", .integer).notNull().defaults(to: 0)
                t.column("progress", .text).notNull().defaults(to: "[]")
                t.column("datasetVersionId", .text).references("datasetVersions")
                t.column("modelId", .text)
                t.column("error", .text)
                t.column("attempts", .integer).notNull().defaults(to: 0)
                t.column("leaseUntil", .datetime)
                t.column("leasedBy", .text)
                t.column("createdAt", .datetime).notNull()
                t.column("updatedAt", .datetime).notNull()
            }
            try db.create(table: "models") { t in
                t.primaryKey("id", .text)
                t.column("trainingJobId", .text).notNull()
                t.column("labels", .text).notNull()
                t.column("datasetVersionId", .text).notNull().references("datasetVersions")
                t.column("backbone", .text).notNull()
                t.column("accuracy", .double).notNull()
                t.column("report", .text).notNull()
                t.column("head", .text).notNull()
                t.column("createdAt", .datetime).notNull()
            }
            try db.create(table: "watches") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("labelId", .integer).notNull().references("labels", onDelete: .cascade)
                t.column("threshold", .integer).notNull()
                t.column("webhookUrl", .text)
                t.column("userId", .integer).notNull().references("users")
                t.column("firedAt", .datetime)
                t.column("createdAt", .datetime).notNull()
            }
            try db.create(table: "deliveries") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("watchId", .integer).notNull().references("watches", onDelete: .cascade).indexed()
                t.column("payload", .text).notNull()
                t.column("state", .text).notNull()
                t.column("attempts", .integer).notNull().defaults(to: 0)
                t.column("responseStatus", .integer)
                t.column("lastError", .text)
                t.column("nextAttemptAt", .datetime).notNull()
                t.column("createdAt", .datetime).notNull()
                t.column("updatedAt", .datetime).notNull()
            }
        }
        m.registerMigration("v6_resumable_uploads") { db in
            // tus uploads in progress: the bytes live in DATA/uploads/ID, the durable offset here.
            try db.create(table: "resumableUploads") { t in
                t.primaryKey("id", .text)
                t.column("userId", .integer).notNull().references("users")
                t.column("length", .integer).notNull()
                t.column("offset", .integer).notNull()
                t.column("metadata", .text).notNull()
                t.column("rawMetadata", .text)
                t.column("imageId", .text)
                t.column("createdAt", .datetime).notNull()
                t.column("expiresAt", .datetime).notNull().indexed()
            }
        }
        m.registerMigration("v7_phash_bands") { db in
            // Each image's perceptual hash cut into its eight bytes, a row each, looked up by (band, value):
            // see `Catalog.nearDuplicate`.
            try db.create(table: "phashBands") { t in
                t.column("imageId", .text).notNull().references("images", onDelete: .cascade)
                t.column("band", .integer).notNull()
                t.column("value", .integer).notNull()
                t.primaryKey(["imageId", "band"])
            }
            try db.create(index: "phashBands_lookup", on: "phashBands", columns: ["band", "value"])
            for band in 0..<Catalog.phashBands {
                try db.execute(sql: """
                    INSERT INTO phashBands (imageId, band, value)
                    SELECT id, ?, (phash >> ?) & 255 FROM images WHERE phash IS NOT NULL
                    """, arguments: [band, 8 * band])
            }
        }
        m.registerMigration("v8_label_names") { db in
            // Names are looked up as lower(name) = lower(?), the one spelling both engines index.
            try db.execute(sql: "CREATE INDEX labels_lower_name ON labels (lower(name))")
        }
        m.registerMigration("v9_passes") { db in
            // Who runs each periodic pass (re-checks, clusters, webhooks, tus expiry) until when.
            try db.execute(sql: "CREATE TABLE passes (name TEXT PRIMARY KEY, holder TEXT NOT NULL, leaseUntil DATETIME NOT NULL)")
        }
        // On PostgreSQL a trigger announces new jobs; SQLite's workers share one process and poll.
        m.registerMigration("v10_job_notifications") { _ in }
        m.registerMigration("v11_job_notification_per_job") { _ in }
        m.registerMigration("v12_sessions") { db in
            // Dashboard sign-ins: the cookie's token is stored hashed, with the form token and an expiry.
            try db.execute(sql: """
                CREATE TABLE sessions (tokenHash TEXT PRIMARY KEY, userId INTEGER NOT NULL REFERENCES users ON DELETE CASCADE,
                                       csrf TEXT NOT NULL, expiresAt DATETIME NOT NULL, createdAt DATETIME NOT NULL)
                """)
            try db.execute(sql: "CREATE INDEX sessions_expiry ON sessions (expiresAt)")
        }
        m.registerMigration("v13_activity") { db in
            // Uploads and verdicts per minute (the dashboard's Overview) without reading every image.
            try db.execute(sql: "CREATE INDEX images_created ON images (createdAt)")
            try db.execute(sql: "CREATE INDEX images_updated ON images (updatedAt)")
        }
        m.registerMigration("v14_dataset_splits") { db in
            // Which side of the training split each image of a dataset version was on (`train`, `validation`).
            try db.execute(sql: "ALTER TABLE datasetVersionImages ADD COLUMN split TEXT")
        }
        m.registerMigration("v15_label_quality") { db in
            // Each label's learnt quality thresholds and why (JSON), rewritten by the maintenance pass.
            try db.execute(sql: """
                CREATE TABLE labelQuality (labelId INTEGER PRIMARY KEY REFERENCES labels ON DELETE CASCADE,
                                           thresholds TEXT NOT NULL, computedAt DATETIME NOT NULL)
                """)
        }
        return m
    }
}
