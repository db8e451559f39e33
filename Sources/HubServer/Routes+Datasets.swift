import Foundation
import HubCore
import Hummingbird
import NIOCore
import Organize

extension HubRoutes {
    func addDatasetRoutes(to router: RouteRecorder) {
        router.get("/v1/datasets/export") { request, context in
            _ = try context.require(.requester, .trainer)
            let q = request.uri.queryParameters
            let names = (q.get("labels") ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            let descendants = (q.get("descendants") ?? "false") == "true"
            guard let format = ExportFormat(rawValue: q.get("format") ?? "imagefolder") else {
                throw HubError(400, "field.invalid", "`format` must be one of \(ExportFormat.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            let exporter = hub.exporter
            let labels = try await offload { try exporter.labels(names, descendants: descendants) }
            let body = ResponseBody { writer in
                try await exporter.export(labels: labels, format: format) { data in
                    try await writer.write(ByteBuffer(bytes: data))
                }
                try await writer.finish(nil)
            }
            let filename = "dataset-\(format.rawValue).tar"
            return Response(status: .ok, headers: [.contentType: "application/x-tar",
                                                   .contentDisposition: "attachment; filename=\"\(filename)\""], body: body)
        }
        router.get("/v1/datasets/versions/:id/export") { request, context in
            _ = try context.require(.requester, .trainer)
            let id = try context.parameters.require("id")
            guard let format = ExportFormat(rawValue: request.uri.queryParameters.get("format") ?? "imagefolder") else {
                throw HubError(400, "field.invalid", "`format` must be one of \(ExportFormat.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard try await offload({ try hub.catalog.datasetVersion(id: id) }) != nil else {
                throw HubError(404, "dataset.unknown", "no dataset version \(id)")
            }
            let exporter = hub.exporter
            let body = ResponseBody { writer in
                try await exporter.export(version: id, format: format) { data in try await writer.write(ByteBuffer(bytes: data)) }
                try await writer.finish(nil)
            }
            return Response(status: .ok, headers: [.contentType: "application/x-tar",
                                                   .contentDisposition: "attachment; filename=\"dataset-\(id).tar\""], body: body)
        }
    }
}
