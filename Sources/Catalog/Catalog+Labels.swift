import Foundation
import GRDB
import HubCore

/// A label with its image counts by status, and its children.
public struct LabelNode: Codable, Sendable, Equatable {
    public var name: String
    public var displayName: String
    public var mid: String?
    public var counts: [String: Int]
    public var children: [LabelNode]
}

extension Catalog {
    /// Creates a label under an optional parent (by name); names are unique, case-insensitively.
    @discardableResult
    public func createLabel(name: String, displayName: String? = nil, parent: String? = nil, mid: String? = nil) throws -> LabelRecord {
        try write { db in
            if try LabelRecord.filter(Column("name") == name).fetchOne(db) != nil {
                throw HubError(409, "label.exists", "label '\(name)' already exists")
            }
            if let mid, try LabelRecord.filter(Column("mid") == mid).fetchOne(db) != nil {
                throw HubError(409, "label.exists", "a label with MID \(mid) already exists")
            }
            var parentId: Int64?
            if let parent {
                guard let p = try LabelRecord.filter(Column("name") == parent).fetchOne(db) else {
                    throw HubError(404, "label.unknown", "parent label '\(parent)' does not exist")
                }
                parentId = p.id
            }
            var label = LabelRecord(id: nil, name: name, displayName: displayName ?? name, mid: mid, parentId: parentId, createdAt: Date())
            try label.insert(db)
            return label
        }
    }

    /// The label called `name` (case-insensitive), or nil.
    public func label(named name: String) throws -> LabelRecord? {
        try read { db in try LabelRecord.filter(Column("name") == name).fetchOne(db) }
    }

    /// Every label, by id.
    public func labelsById() throws -> [Int64: LabelRecord] {
        try read { db in
            Dictionary(uniqueKeysWithValues: try LabelRecord.fetchAll(db).map { ($0.id!, $0) })
        }
    }

    /// The labels named, plus every label below them when `descendants` is true.
    public func labels(named names: [String], descendants: Bool) throws -> [LabelRecord] {
        try read { db in
            var chosen: [Int64: LabelRecord] = [:]
            for name in names {
                guard let l = try LabelRecord.fetchOne(db, sql: "SELECT * FROM labels WHERE name = ? COLLATE NOCASE", arguments: [name]) else {
                    throw HubError(404, "label.unknown", "label '\(name)' does not exist")
                }
                chosen[l.id!] = l
            }
            if descendants {
                let below = try Set(chosen.keys.flatMap { try Catalog.descendantIds(db, $0) }).subtracting(chosen.keys)
                for l in try LabelRecord.fetchAll(db, keys: Array(below)) { chosen[l.id!] = l }
            }
            return chosen.values.sorted { $0.name < $1.name }
        }
    }

    /// The label forest with image counts by status per label (own images, not descendants').
    public func labelTree() throws -> [LabelNode] {
        let (labels, counts) = try read { db in
            var counts: [Int64: [String: Int]] = [:]
            for r in try Row.fetchAll(db, sql: "SELECT labelId, status, COUNT(*) AS n FROM images GROUP BY labelId, status") {
                counts[r["labelId"], default: [:]][r["status"]] = r["n"]
            }
            return (try LabelRecord.order(Column("name")).fetchAll(db), counts)
        }
        var children: [Int64?: [LabelRecord]] = [:]
        for l in labels { children[l.parentId, default: []].append(l) }
        func node(_ l: LabelRecord) -> LabelNode {
            var c = Dictionary(uniqueKeysWithValues: ImageStatus.allCases.map { ($0.rawValue, 0) })
            c.merge(counts[l.id!] ?? [:]) { $1 }
            return LabelNode(name: l.name, displayName: l.displayName, mid: l.mid, counts: c,
                             children: (children[l.id] ?? []).map(node))
        }
        return (children[nil] ?? []).map(node)
    }

    /// Upserts labels by MID (class descriptions) and then sets parents from `edges` (child MID → parent MID).
    /// Returns how many labels were created and how many parent links were set.
    public func importLabels(classes: [(mid: String, name: String)], edges: [(child: String, parent: String)]) throws -> (created: Int, linked: Int) {
        try write { db in
            var created = 0
            var byMid: [String: LabelRecord] = [:]
            for l in try LabelRecord.filter(Column("mid") != nil).fetchAll(db) { byMid[l.mid!] = l }
            var taken = Set(try String.fetchAll(db, sql: "SELECT lower(name) FROM labels"))
            for (mid, name) in classes where byMid[mid] == nil {
                // Display names repeat across MIDs in Open Images; keep names unique by suffixing the MID.
                let unique = taken.contains(name.lowercased()) ? "\(name) (\(mid))" : name
                var label = LabelRecord(id: nil, name: unique, displayName: name, mid: mid, parentId: nil, createdAt: Date())
                try label.insert(db)
                taken.insert(unique.lowercased())
                byMid[mid] = label
                created += 1
            }
            var linked = 0
            for (child, parent) in edges {
                guard var c = byMid[child], let p = byMid[parent], c.parentId != p.id, c.id != p.id else { continue }
                c.parentId = p.id
                try c.update(db)
                byMid[child] = c
                linked += 1
            }
            return (created, linked)
        }
    }
}

extension Catalog {
    /// The label with `id`, or nil.
    public func label(id: Int64) throws -> LabelRecord? {
        try read { db in try LabelRecord.fetchOne(db, key: id) }
    }

    /// Every label below `id` (children, their children, …).
    static func descendantIds(_ db: Database, _ id: Int64) throws -> [Int64] {
        try Int64.fetchAll(db, sql: """
            WITH RECURSIVE sub(id) AS (SELECT id FROM labels WHERE parentId = ? UNION SELECT l.id FROM labels l JOIN sub ON l.parentId = sub.id)
            SELECT id FROM sub
            """, arguments: [id])
    }

    /// Every label above `id` (parent, its parent, …).
    static func ancestorIds(_ db: Database, _ id: Int64) throws -> [Int64] {
        try Int64.fetchAll(db, sql: """
            WITH RECURSIVE up(id) AS (SELECT parentId FROM labels WHERE id = ? AND parentId IS NOT NULL
                                      UNION SELECT l.parentId FROM labels l JOIN up ON l.id = up.id WHERE l.parentId IS NOT NULL)
            SELECT id FROM up
            """, arguments: [id])
    }
}
