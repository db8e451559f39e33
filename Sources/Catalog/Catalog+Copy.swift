import Foundation
import HubCore

extension Catalog {
    /// Every table a hub's state lives in, parents before children (passes are transient and not copied).
    static let copiedTables = ["users", "labels", "batches", "images", "jobs", "embeddings", "phashBands", "labelClusters", "labelQuality",
                               "datasetVersions", "datasetVersionImages", "trainingJobs", "models", "watches", "deliveries",
                               "resumableUploads"]

    /// Copies every row of this (SQLite) catalog, ids included, into `target`, which must be empty, in one
    /// transaction: moving an embedded hub onto PostgreSQL. Jobs still pending stay pending; the data
    /// directory's blobs are used as they are. Returns the rows copied per table.
    public func copy(to target: Catalog, progress: (String, Int) -> Void = { _, _ in }) throws -> [(table: String, rows: Int)] {
        guard engine == .sqlite else { throw HubError(400, "catalog.copy_source", "the source of a copy is an embedded (SQLite) catalog") }
        return try target.write { out in
            for table in ["users", "labels", "images"] where try out.int("SELECT COUNT(*) FROM \(table)") ?? 0 > 0 {
                throw HubError(409, "catalog.not_empty", "the target catalog already has \(table); copy into an empty one")
            }
            let types = try Catalog.columnTypes(out)
            var copied: [(String, Int)] = []
            for table in Catalog.copiedTables {
                var count = 0, after: Int64 = 0
                var parents: [(Int64, Int64)] = []
                while true {
                    // Pages in rowid order: a large hub is never held in memory at once.
                    let page = try read { db in
                        try db.rows("SELECT rowid AS copy_rowid, * FROM \(table) WHERE rowid > ? ORDER BY rowid LIMIT 500", [after])
                    }
                    guard let last = page.last?.int("copy_rowid") else { break }
                    after = last
                    for row in page {
                        var columns = row.columns.filter { $0.0 != "copy_rowid" }
                        // A label may come before its parent: parents are linked once every label is in.
                        if table == "labels", let index = columns.firstIndex(where: { $0.0.lowercased() == "parentid" }),
                           let parent = columns[index].1.int64, let id = row.int("id") {
                            parents.append((id, parent))
                            columns[index].1 = .null
                        }
                        try out.insertRow(into: table, columns.map { ($0.0, Catalog.converted($0.1, to: types["\(table)|\($0.0)".lowercased()])) })
                        count += 1
                    }
                    progress(table, count)
                }
                for (id, parent) in parents { try out.execute("UPDATE labels SET parentId = ? WHERE id = ?", [parent, id]) }
                copied.append((table, count))
            }
            if out.dialect == .postgres {
                for (table, column) in [("labels", "id"), ("users", "id"), ("jobs", "id"), ("embeddings", "seq"), ("watches", "id"), ("deliveries", "id")] {
                    _ = try out.rows("SELECT setval(pg_get_serial_sequence('\(table.lowercased())', '\(column)'), COALESCE((SELECT MAX(\(column)) FROM \(table)), 0) + 1, false)")
                }
            }
            return copied
        }
    }

    /// The target's column types by `table|column` (lower case): SQLite keeps dates as text, PostgreSQL wants them as dates.
    static func columnTypes(_ db: Tx) throws -> [String: String] {
        guard db.dialect == .postgres else { return [:] }
        var types: [String: String] = [:]
        for row in try db.rows("SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = current_schema()") {
            types["\(row.string("table_name") ?? "")|\(row.string("column_name") ?? "")".lowercased()] = row.string("data_type")
        }
        return types
    }

    static func converted(_ value: SQLValue, to type: String?) -> SQLValue {
        switch (type, value) {
        case ("timestamp with time zone", .text): value.date.map(SQLValue.date) ?? value
        case ("double precision", .integer(let v)): .real(Double(v))
        default: value
        }
    }
}
