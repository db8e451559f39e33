import Foundation
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
            if try Catalog.label(db, named: name) != nil {
                throw HubError(409, "label.exists", "label '\(name)' already exists")
            }
            if let mid, try db.find(LabelRecord.self, mid, column: "mid") != nil {
                throw HubError(409, "label.exists", "a label with MID \(mid) already exists")
            }
            var parentId: Int64?
            if let parent {
                guard let p = try Catalog.label(db, named: parent) else {
                    throw HubError(404, "label.unknown", "parent label '\(parent)' does not exist")
                }
                parentId = p.id
            }
            var label = LabelRecord(id: nil, name: name, displayName: displayName ?? name, mid: mid, parentId: parentId, createdAt: Date())
            label.id = try db.insert(label)
            return label
        }
    }

    /// The label called `name` (case-insensitive), or nil.
    public func label(named name: String) throws -> LabelRecord? {
        try read { db in try Catalog.label(db, named: name) }
    }

    /// The id of the label called `name` (case-insensitive), or nil. Ids found are remembered: labels are
    /// never renamed or removed, and every upload names its label.
    public func labelId(named name: String) throws -> Int64? {
        try labelIds.id(name.lowercased()) { try label(named: name)?.id }
    }

    /// Label names are unique and looked up case-insensitively.
    static func label(_ db: Tx, named name: String) throws -> LabelRecord? {
        try db.one(LabelRecord.self, "SELECT * FROM labels WHERE lower(name) = lower(?)", [name])
    }

    /// Every label, by id.
    public func labelsById() throws -> [Int64: LabelRecord] {
        try read { db in
            Dictionary(uniqueKeysWithValues: try db.all(LabelRecord.self, "SELECT * FROM labels").map { ($0.id!, $0) })
        }
    }

    /// The labels named, plus every label below them when `descendants` is true.
    public func labels(named names: [String], descendants: Bool) throws -> [LabelRecord] {
        try read { db in
            var chosen: [Int64: LabelRecord] = [:]
            for name in names {
                guard let l = try Catalog.label(db, named: name) else {
                    throw HubError(404, "label.unknown", "label '\(name)' does not exist")
                }
                chosen[l.id!] = l
            }
            if descendants {
                let below = try Set(chosen.keys.flatMap { try Catalog.descendantIds(db, $0) }).subtracting(chosen.keys)
                for l in try db.find(LabelRecord.self, ids: Array(below)) { chosen[l.id!] = l }
            }
            return chosen.values.sorted { $0.name < $1.name }
        }
    }

    /// The label forest with image counts by status per label (own images, not descendants').
    public func labelTree() throws -> [LabelNode] {
        let (labels, counts) = try read { db in
            var counts: [Int64: [String: Int]] = [:]
            for r in try db.rows("SELECT labelId, status, COUNT(*) AS n FROM images GROUP BY labelId, status") {
                counts[r.int("labelId") ?? 0, default: [:]][r.string("status") ?? ""] = Int(r.int("n") ?? 0)
            }
            return (try db.all(LabelRecord.self, "SELECT * FROM labels ORDER BY lower(name), name"), counts)
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
            for l in try db.all(LabelRecord.self, "SELECT * FROM labels WHERE mid IS NOT NULL") { byMid[l.mid!] = l }
            var taken = Set(try db.rows("SELECT lower(name) AS name FROM labels").compactMap { $0.string("name") })
            for (mid, name) in classes where byMid[mid] == nil {
                // Display names repeat across MIDs in Open Images; keep names unique by suffixing the MID.
                let unique = taken.contains(name.lowercased()) ? "\(name) (\(mid))" : name
                var label = LabelRecord(id: nil, name: unique, displayName: name, mid: mid, parentId: nil, createdAt: Date())
                label.id = try db.insert(label)
                taken.insert(unique.lowercased())
                byMid[mid] = label
                created += 1
            }
            var linked = 0
            for (child, parent) in edges {
                guard var c = byMid[child], let p = byMid[parent], c.parentId != p.id, c.id != p.id else { continue }
                c.parentId = p.id
                try db.update(c)
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
        try read { db in try db.find(LabelRecord.self, id) }
    }

    /// Every label below `id` (children, their children, …).
    static func descendantIds(_ db: Tx, _ id: Int64) throws -> [Int64] {
        try db.rows("""
            WITH RECURSIVE sub(id) AS (SELECT id FROM labels WHERE parentId = ? UNION SELECT l.id FROM labels l JOIN sub ON l.parentId = sub.id)
            SELECT id FROM sub
            """, [id]).compactMap { $0.int("id") }
    }

    /// Every label above `id` (parent, its parent, …).
    static func ancestorIds(_ db: Tx, _ id: Int64) throws -> [Int64] {
        try db.rows("""
            WITH RECURSIVE up(id) AS (SELECT parentId FROM labels WHERE id = ? AND parentId IS NOT NULL
                                      UNION SELECT l.parentId FROM labels l JOIN up ON l.id = up.id WHERE l.parentId IS NOT NULL)
            SELECT id FROM up
            """, [id]).compactMap { $0.int("id") }
    }
}
