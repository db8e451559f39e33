/// The OpenAPI 3 description of the API, served at `/openapi.yaml`; a test checks that every route is in it.
public enum OpenAPI {
    /// The document as served: `written` with the error answers every operation can give added where they
    /// are not written out (see `withCommonErrors`).
    public static let document = withCommonErrors(written)

    /// Every reason code an error answer may carry (`SystemTests` checks it against the code literals in
    /// the sources, both ways).
    public static let errorCodes = [
        "auth.csrf", "auth.forbidden", "auth.invalid", "auth.missing", "auth.session_expired",
        "backpressure.busy", "batch.unknown", "catalog.copy_source", "catalog.not_empty",
        "catalog.unavailable", "catalog.url_invalid", "dataset.unknown", "decode.corrupt", "decode.truncated",
        "duplicate.exact", "embedding.disabled", "embedding.engine_invalid", "export.backbone_missing",
        "field.invalid", "field.missing", "field.too_long", "format.empty", "format.not_allowed",
        "format.unsupported", "image.exists", "image.no_rendition", "image.not_embedded", "image.pending",
        "image.unknown", "internal.error", "internal.io", "internal.missing_image", "internal.record",
        "internal.vips", "label.exists", "label.too_small", "label.unknown", "labels.invalid_csv",
        "labels.invalid_hierarchy", "labels.missing", "method.not_allowed", "model.backbone_changed",
        "model.unknown", "multipart.malformed", "multipart.missing_file", "predict.undecodable",
        "request.incomplete", "request.invalid", "request.invalid_json", "review.not_quarantined",
        "review.not_relabellable", "route.not_found", "size.too_large", "size.too_small",
        "training.fine_tune_unavailable", "training.not_enough_images", "training.unknown", "tus.bad_checksum_header",
        "tus.bad_content_type", "tus.bad_length", "tus.bad_metadata", "tus.bad_offset", "tus.busy", "tus.checksum_mismatch",
        "tus.complete", "tus.defer_length_unsupported", "tus.exceeds_length", "tus.expired", "tus.incomplete",
        "tus.offset_mismatch", "tus.unknown_upload", "tus.unsupported_checksum", "tus.version",
        "upload.too_large", "webhook.host_not_allowed", "webhook.invalid_url"
    ]

    /// Adds to each operation the error answers that follow from its shape, all with the one error schema:
    /// 401 and 403 (the key and its role) and 503 (`catalog.unavailable`, `backpressure.busy`) unless it is
    /// public; 400 where it takes parameters or a body (a malformed value); 404 where its path names a
    /// resource; 413 and 415 where it takes a body (too large, another media type); 412 where it speaks tus
    /// (`Tus-Resumable` missing or another version). An operation that
    /// writes a code out keeps its own description.
    static func withCommonErrors(_ text: String) -> String {
        let lines = text.components(separatedBy: "\n")
        var out: [String] = []
        var path = ""
        var i = 0
        let method = /^    (get|post|put|patch|delete|head|options):$/
        while i < lines.count {
            let line = lines[i]
            if line.hasPrefix("  /"), line.hasSuffix(":"), !line.hasPrefix("   ") { path = String(line.dropFirst(2).dropLast()) }
            guard line.wholeMatch(of: method) != nil else { out.append(line); i += 1; continue }
            // One operation: its lines up to the next operation or path.
            var end = i + 1
            while end < lines.count, lines[end].hasPrefix("      ") || lines[end].isEmpty { end += 1 }
            var block = Array(lines[i..<end])
            let isPublic = block.contains("      security: []")
            let hasBody = block.contains("      requestBody:")
            let hasParameters = block.contains("      parameters:") || path.contains("{")
            let written = Set(block.compactMap { $0.wholeMatch(of: /^        '([0-9]{3})':.*/).map { String($0.1) } })
            var codes: [String] = []
            if !isPublic { codes += ["401", "403", "503"] }
            if hasBody || hasParameters { codes.append("400") }
            if path.contains("{") { codes.append("404") }
            if hasBody { codes += ["413", "415"] }
            if block.contains(where: { $0.contains("{name: Tus-Resumable,") }) { codes.append("412") }
            if let at = block.firstIndex(of: "      responses:") {
                let added = Set(codes).subtracting(written).sorted().map { "        '\($0)': {$ref: '#/components/responses/Error'}" }
                block.insert(contentsOf: added, at: at + 1)
            }
            out += block
            i = end
        }
        return out.joined(separator: "\n")
    }

    static let written = """
    openapi: 3.0.3
    info:
      title: Deep Images Hub
      version: 0.1.0
      description: Upload labelled photos from phones; the hub verifies, preprocesses and organizes them.
    servers:
      - url: http://localhost:8080
    security:
      - bearer: []
    components:
      securitySchemes:
        bearer:
          type: http
          scheme: bearer
      schemas:
        Error:
          type: object
          required: [error]
          properties:
            error:
              type: object
              required: [code, message]
              properties:
                code: {type: string, example: label.unknown, description: 'the reason code: \(errorCodes.joined(separator: ", "))'}
                message: {type: string}
              additionalProperties: {type: string}
        TrainingJob:
          type: object
          properties:
            id: {type: string}
            state: {type: string, enum: [queued, running, succeeded, failed]}
            epoch: {type: integer}
            metrics:
              type: array
              items:
                type: object
                properties:
                  epoch: {type: integer}
                  train_loss: {type: number}
                  train_accuracy: {type: number}
                  validation_loss: {type: number, nullable: true}
                  validation_accuracy: {type: number, nullable: true}
            dataset_version: {type: string, nullable: true}
            model_id: {type: string, nullable: true}
            error: {type: string, nullable: true}
            links: {type: object, additionalProperties: {type: string}}
        Model:
          type: object
          properties:
            id: {type: string}
            labels: {type: array, items: {type: string}}
            accuracy: {type: number}
            backbone: {type: string}
            dataset_version: {type: string}
            training_job: {type: string}
            links: {type: object, additionalProperties: {type: string}}
        Watch:
          type: object
          properties:
            id: {type: integer}
            label: {type: string}
            threshold: {type: integer}
            webhook_url: {type: string, nullable: true}
            fired_at: {type: string, format: date-time, nullable: true}
            deliveries:
              type: array
              items:
                type: object
                properties:
                  id: {type: integer}
                  state: {type: string, enum: [pending, delivered, failed]}
                  attempts: {type: integer}
                  response_status: {type: integer, nullable: true}
                  last_error: {type: string, nullable: true}
                  payload: {type: string}
        Ack:
          type: object
          required: [id, status, sha256]
          properties:
            id: {type: string}
            status: {type: string, enum: [pending]}
            sha256: {type: string}
        Image:
          type: object
          required: [id, status, reasons, label, bytes, hashes, links]
          properties:
            id: {type: string}
            status: {type: string, enum: [pending, accepted, quarantined, rejected]}
            reasons: {type: array, items: {type: string}}
            label: {type: string}
            format: {type: string, nullable: true}
            width: {type: integer, nullable: true}
            height: {type: integer, nullable: true}
            bytes: {type: integer}
            quality:
              type: object
              properties:
                sharpness: {type: number, nullable: true}
                brightness: {type: number, nullable: true}
                contrast: {type: number, nullable: true}
            hashes:
              type: object
              properties:
                sha256: {type: string}
                phash: {type: string, nullable: true}
            duplicate_of: {type: string, nullable: true}
            tags:
              type: array
              nullable: true
              description: the backbone's top-5 ImageNet classes
              items: {type: object, properties: {name: {type: string}, probability: {type: number}}}
            label_check:
              type: object
              nullable: true
              description: whether the image looks like its label (unverified while the label has too few accepted images)
              properties:
                state: {type: string, enum: [verified, unverified, mismatch]}
                score: {type: number, nullable: true}
                suggested_label: {type: string, nullable: true}
                suggested_score: {type: number, nullable: true}
            suggested_label: {type: string, nullable: true, description: set when the label check says mismatch}
            embedding_model: {type: string, nullable: true}
            batch: {type: string, nullable: true}
            device: {type: string, nullable: true}
            lat: {type: number, nullable: true}
            lon: {type: number, nullable: true}
            captured_at: {type: string, nullable: true}
            created_at: {type: string, format: date-time}
            updated_at: {type: string, format: date-time}
            links: {type: object, additionalProperties: {type: string}}
        Batch:
          type: object
          properties:
            id: {type: string}
            user_id: {type: integer}
            device: {type: string, nullable: true}
            lat: {type: number, nullable: true}
            lon: {type: number, nullable: true}
            created_at: {type: string, format: date-time}
        BatchSummary:
          type: object
          properties:
            batch: {$ref: '#/components/schemas/Batch'}
            submitted: {type: integer}
            pending: {type: integer}
            accepted: {type: integer}
            quarantined: {type: integer}
            rejected: {type: integer}
            quality_score: {type: number, nullable: true}
        LabelNode:
          type: object
          properties:
            name: {type: string}
            display_name: {type: string}
            mid: {type: string, nullable: true}
            counts: {type: object, additionalProperties: {type: integer}}
            children: {type: array, items: {$ref: '#/components/schemas/LabelNode'}}
      responses:
        Error:
          description: An error with a stable reason code.
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Error'}
      parameters:
        id:
          name: id
          in: path
          required: true
          schema: {type: string}
    paths:
      /healthz:
        get:
          summary: Liveness (no key needed)
          security: []
          responses:
            '200': {description: ok}
      /metrics:
        get:
          summary: Prometheus metrics (uploads, outcomes by reason, backlog, stage latencies)
          responses:
            '200': {description: Prometheus text, content: {text/plain: {schema: {type: string}}}}
            '401': {$ref: '#/components/responses/Error'}
      /openapi.yaml:
        get:
          summary: This document
          responses:
            '200': {description: OpenAPI 3 YAML, content: {application/yaml: {schema: {type: object}}}}
      /v1/images:
        post:
          summary: Upload one labelled image (supplier, admin)
          parameters:
            - {name: Prefer, in: header, required: false, description: 'wait=N (N ≤ 30, RFC 7240): answer with the verdict once the image is final, if that takes at most N seconds (then 200 with Preference-Applied: wait=N); else 202 as without it; other preferences are ignored, as RFC 7240 asks', schema: {type: string}}
          requestBody:
            required: true
            content:
              multipart/form-data:
                schema:
                  type: object
                  required: [file, label]
                  properties:
                    file: {type: string, format: binary, minLength: 1, description: 'JPEG, PNG, WebP or HEIF bytes (verify.formats); other formats are refused 415 format.not_allowed'}
                    label: {type: string, minLength: 1, pattern: '[^\\s]'}
                    batch: {type: string}
                    device: {type: string}
                    lat: {type: number, minimum: -90, maximum: 90, description: with lon (a place is both or neither)}
                    lon: {type: number, minimum: -180, maximum: 180, description: with lat}
                    captured_at: {type: string, format: date-time}
          responses:
            '202':
              description: Stored durably; processing is pending
              content: {application/json: {schema: {$ref: '#/components/schemas/Ack'}}}
              links:
                GetImage: {operationRef: '#/paths/~1v1~1images~1{id}/get', parameters: {id: '$response.body#/id'}}
                GetSimilar: {operationRef: '#/paths/~1v1~1images~1{id}~1similar/get', parameters: {id: '$response.body#/id'}}
                GetThumbnail: {operationRef: '#/paths/~1v1~1images~1{id}~1thumbnail/get', parameters: {id: '$response.body#/id'}}
            '200': {description: 'The image with its verdict: the same bytes under the same label were already uploaded, or Prefer: wait=N was honoured (Preference-Applied: wait=N)', headers: {Preference-Applied: {schema: {type: string}}}, content: {application/json: {schema: {$ref: '#/components/schemas/Image'}}}}
            '400': {$ref: '#/components/responses/Error'}
            '401': {$ref: '#/components/responses/Error'}
            '403': {$ref: '#/components/responses/Error'}
            '409': {$ref: '#/components/responses/Error'}
            '413': {$ref: '#/components/responses/Error'}
            '415': {$ref: '#/components/responses/Error'}
            '422': {$ref: '#/components/responses/Error'}
            '503': {description: 'backpressure.busy: the processing backlog is over its high-water mark; retry after Retry-After seconds', headers: {Retry-After: {schema: {type: integer}}}, content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}}
        get:
          summary: Where several images stand (status, reasons), by id; images the caller may not see are left out
          parameters:
            - {name: ids, in: query, required: true, description: 1–200 comma-separated image ids, schema: {type: string, pattern: '^ *[A-Za-z0-9-]+ *(, *[A-Za-z0-9-]+ *)*$'}}
          responses:
            '200':
              description: the statuses
              content:
                application/json:
                  schema:
                    type: object
                    required: [images]
                    properties:
                      images:
                        type: array
                        items:
                          type: object
                          required: [id, status, reasons, updated_at]
                          properties:
                            id: {type: string}
                            status: {type: string, enum: [pending, accepted, quarantined, rejected]}
                            reasons: {type: array, items: {type: string}}
                            updated_at: {type: string, format: date-time}
            '400': {$ref: '#/components/responses/Error'}
            '401': {$ref: '#/components/responses/Error'}
      /v1/images/{id}:
        get:
          summary: An image's status, reasons, label, size, quality and hashes
          parameters: [{$ref: '#/components/parameters/id'}]
          responses:
            '200':
              description: the image
              content: {application/json: {schema: {$ref: '#/components/schemas/Image'}}}
              links:
                GetSimilar: {operationRef: '#/paths/~1v1~1images~1{id}~1similar/get', parameters: {id: '$response.body#/id'}}
                GetCanonical: {operationRef: '#/paths/~1v1~1images~1{id}~1canonical/get', parameters: {id: '$response.body#/id'}}
            '404': {$ref: '#/components/responses/Error'}
      /v1/images/{id}/canonical:
        get:
          summary: Canonical JPEG (upright, sRGB, long side 1024, no metadata)
          parameters: [{$ref: '#/components/parameters/id'}]
          responses:
            '200': {description: JPEG bytes with an ETag, content: {image/jpeg: {schema: {type: string, format: binary}}}}
            '304': {description: not modified}
            '404': {$ref: '#/components/responses/Error'}
            '409': {$ref: '#/components/responses/Error'}
      /v1/images/{id}/thumbnail:
        get:
          summary: Thumbnail JPEG (long side 256, no metadata)
          parameters: [{$ref: '#/components/parameters/id'}]
          responses:
            '200': {description: JPEG bytes with an ETag, content: {image/jpeg: {schema: {type: string, format: binary}}}}
            '304': {description: not modified}
            '404': {$ref: '#/components/responses/Error'}
            '409': {$ref: '#/components/responses/Error'}
      /v1/images/{id}/original:
        get:
          summary: The uploaded bytes as received (admin only; may carry GPS)
          parameters: [{$ref: '#/components/parameters/id'}]
          responses:
            '200':
              description: the original bytes, with the media type of their format
              content:
                image/jpeg: {schema: {type: string, format: binary}}
                image/png: {schema: {type: string, format: binary}}
                image/webp: {schema: {type: string, format: binary}}
                image/heif: {schema: {type: string, format: binary}}
                application/octet-stream: {schema: {type: string, format: binary}}
            '403': {$ref: '#/components/responses/Error'}
            '404': {$ref: '#/components/responses/Error'}
      /v1/images/{id}/review:
        post:
          summary: Accept or reject a quarantined image, or move a quarantined or accepted image to the label it shows (admin)
          parameters: [{$ref: '#/components/parameters/id'}]
          requestBody:
            required: true
            content:
              application/json:
                schema:
                  oneOf:
                    - type: object
                      required: [decision]
                      properties:
                        decision: {type: string, enum: [accept, reject]}
                        reason: {type: string, description: 'with reject: the reason code recorded (default review.rejected)'}
                    - type: object
                      required: [decision, label]
                      properties:
                        decision: {type: string, enum: [relabel]}
                        label: {type: string, minLength: 1, description: the label the image shows}
          responses:
            '200': {description: the reviewed image, content: {application/json: {schema: {$ref: '#/components/schemas/Image'}}}}
            '400': {$ref: '#/components/responses/Error'}
            '404': {$ref: '#/components/responses/Error'}
            '409': {$ref: '#/components/responses/Error'}
            '422': {$ref: '#/components/responses/Error'}
      /v1/batches:
        post:
          summary: Open a submission session
          requestBody:
            content:
              application/json:
                schema:
                  type: object
                  properties:
                    device: {type: string, nullable: true}
                    lat: {type: number, minimum: -90, maximum: 90, nullable: true}
                    lon: {type: number, minimum: -180, maximum: 180, nullable: true}
          responses:
            '201':
              description: the batch
              content: {application/json: {schema: {$ref: '#/components/schemas/Batch'}}}
              links:
                GetBatch: {operationRef: '#/paths/~1v1~1batches~1{id}/get', parameters: {id: '$response.body#/id'}}
      /v1/batches/{id}:
        get:
          summary: A batch's counts and quality score (accepted share of decided images)
          parameters: [{$ref: '#/components/parameters/id'}]
          responses:
            '200': {description: the batch summary, content: {application/json: {schema: {$ref: '#/components/schemas/BatchSummary'}}}}
            '404': {$ref: '#/components/responses/Error'}
      /v1/labels:
        get:
          summary: The label tree with image counts per status
          responses:
            '200':
              description: labels
              content:
                application/json:
                  schema:
                    type: object
                    properties:
                      labels: {type: array, items: {$ref: '#/components/schemas/LabelNode'}}
        post:
          summary: Create a label (admin)
          requestBody:
            required: true
            content:
              application/json:
                schema:
                  type: object
                  required: [name]
                  properties:
                    name: {type: string, minLength: 1, maxLength: 200, pattern: '^[^,]*[^,\\s][^,]*$', description: no commas}
                    display_name: {type: string, nullable: true}
                    parent: {type: string, nullable: true, description: an existing label's name (404 label.unknown otherwise)}
                    mid: {type: string, nullable: true}
          responses:
            '201': {description: the label}
            '404': {$ref: '#/components/responses/Error'}
            '409': {$ref: '#/components/responses/Error'}
      /v1/labels/import:
        post:
          summary: Import Open Images class descriptions and hierarchy (admin)
          requestBody:
            required: true
            content:
              multipart/form-data:
                schema:
                  type: object
                  required: [classes]
                  properties:
                    classes: {type: string, format: binary, description: 'class-descriptions CSV (MID,DisplayName)'}
                    hierarchy: {type: string, format: binary, description: bbox_labels_600_hierarchy.json}
          responses:
            '200': {description: counts of classes read, labels created and parent links set}
            '400': {$ref: '#/components/responses/Error'}
      /v1/labels/{name}/images:
        get:
          summary: Images of a label, cursor-paged
          parameters:
            - {name: name, in: path, required: true, schema: {type: string}}
            - {name: status, in: query, schema: {type: string, enum: [pending, accepted, quarantined, rejected]}}
            - {name: cursor, in: query, schema: {type: string}}
            - {name: limit, in: query, schema: {type: integer, minimum: 1, maximum: 1000}}
          responses:
            '200':
              description: a page of images
              content:
                application/json:
                  schema:
                    type: object
                    properties:
                      images: {type: array, items: {$ref: '#/components/schemas/Image'}}
                      next_cursor: {type: string, nullable: true}
            '404': {$ref: '#/components/responses/Error'}
      /v1/images/{id}/similar:
        get:
          summary: The accepted images nearest to this one by embedding (cosine similarity)
          parameters:
            - {name: id, in: path, required: true, schema: {type: string}}
            - {name: k, in: query, schema: {type: integer, minimum: 1, maximum: 100}}
          responses:
            '200':
              description: nearest images, most similar first
              content:
                application/json:
                  schema:
                    type: object
                    properties:
                      image: {type: string}
                      model: {type: string}
                      similar:
                        type: array
                        items: {type: object, properties: {id: {type: string}, label: {type: string}, similarity: {type: number}}}
            '404': {$ref: '#/components/responses/Error'}
            '409': {$ref: '#/components/responses/Error'}
      /v1/labels/{name}/clusters:
        get:
          summary: k-means clusters of a label's accepted images (k chosen by silhouette), recomputed when the label changes
          parameters:
            - {name: name, in: path, required: true, schema: {type: string}}
            - {name: members, in: query, schema: {type: boolean}, description: include every member id}
          responses:
            '200':
              description: the clusters, largest first
              content:
                application/json:
                  schema:
                    type: object
                    properties:
                      label: {type: string}
                      k: {type: integer}
                      silhouette: {type: number}
                      image_count: {type: integer}
                      model: {type: string}
                      computed_at: {type: string, format: date-time}
                      clusters:
                        type: array
                        items:
                          type: object
                          properties:
                            size: {type: integer}
                            representatives: {type: array, items: {type: string}}
                            members: {type: array, items: {type: string}}
            '404': {$ref: '#/components/responses/Error'}
            '409': {$ref: '#/components/responses/Error'}
      /v1/labels/{name}/outliers:
        get:
          summary: Members of a label far from every cluster centre (beyond Q3 + 1.5 IQR of cosine distance)
          parameters:
            - {name: name, in: path, required: true, schema: {type: string}}
          responses:
            '200':
              description: outliers, farthest first
              content:
                application/json:
                  schema:
                    type: object
                    properties:
                      label: {type: string}
                      image_count: {type: integer}
                      computed_at: {type: string, format: date-time}
                      outliers:
                        type: array
                        items: {type: object, properties: {id: {type: string}, distance: {type: number}}}
            '404': {$ref: '#/components/responses/Error'}
            '409': {$ref: '#/components/responses/Error'}
      /v1/quests:
        get:
          summary: "Collection quests: what phones should photograph next (classes the newest model finds too rarely or confuses, a label's sparse kinds of photo, labels close to a watch-list threshold), highest priority first"
          responses:
            '200':
              description: the quests
              content:
                application/json:
                  schema:
                    type: object
                    properties:
                      generated_at: {type: string, format: date-time}
                      quests:
                        type: array
                        items:
                          type: object
                          properties:
                            label: {type: string}
                            reason: {type: string, enum: [model.low_recall, model.confused, cluster.sparse, watchlist.near]}
                            want: {type: integer, description: photos asked for}
                            priority: {type: number}
                            message: {type: string}
                            examples: {type: array, items: {type: string}, description: 'image ids (thumbnails at /v1/images/{id}/thumbnail; a supplier gets its own uploads only)'}
                            model_id: {type: string, nullable: true}
                            recall: {type: number, nullable: true}
                            confused_with: {type: string, nullable: true}
      /v1/labels/{name}/quality:
        get:
          summary: "The label's quality thresholds in force and why: learnt from its accepted images and review decisions, within the global thresholds and the floor"
          parameters:
            - {name: name, in: path, required: true, schema: {type: string}}
          responses:
            '200':
              description: the thresholds
              content:
                application/json:
                  schema:
                    type: object
                    properties:
                      label: {type: string}
                      learning: {type: boolean}
                      accepted_images: {type: integer}
                      review_accepted: {type: integer}
                      review_rejected: {type: integer}
                      computed_at: {type: string, format: date-time}
                      in_force:
                        type: object
                        properties: {min_sharpness: {type: number}, min_brightness: {type: number}, max_brightness: {type: number}, min_contrast: {type: number}}
                      thresholds:
                        type: array
                        items:
                          type: object
                          properties:
                            metric: {type: string, enum: [sharpness, brightness, contrast]}
                            bound: {type: string, enum: [min, max]}
                            reason: {type: string}
                            value: {type: number}
                            global: {type: number}
                            floor: {type: number}
                            source: {type: string, enum: [global, learned, review]}
                            why: {type: string}
            '404': {$ref: '#/components/responses/Error'}
      /v1/training-jobs:
        post:
          summary: Train a classifier on the cached embeddings of some labels (trainer, admin)
          requestBody:
            required: true
            content:
              application/json:
                schema:
                  type: object
                  required: [labels]
                  properties:
                    labels: {type: array, items: {type: string, minLength: 1, pattern: '[^\\s]'}, minItems: 2, uniqueItems: true}
                    descendants: {type: boolean, default: true}
                    min_images_per_label: {type: integer, default: 10}
                    validation_fraction: {type: number, default: 0.2, minimum: 0, exclusiveMinimum: true, maximum: 1, exclusiveMaximum: true}
                    seed: {type: integer}
                    max_epochs: {type: integer, default: 200}
                    fine_tune: {type: boolean, default: false, description: "train the backbone's last block and head convolution with the head (reads every image's pixels; slower than the linear head on cached embeddings)"}
                    fine_tune_epochs: {type: integer, minimum: 1, maximum: 100, default: 10}
                    split: {type: string, enum: [grouped, random], default: grouped, description: 'grouped: near duplicates (embedding cosine ≥ duplicates.minCosine or pHash distance ≤ duplicates.maxHamming) and bursts (one device, captured_at within training.burstSeconds) stay on one side of the split and of the cross-validation folds'}
          responses:
            '202':
              description: the queued job
              content: {application/json: {schema: {$ref: '#/components/schemas/TrainingJob'}}}
              links:
                GetTrainingJob: {operationRef: '#/paths/~1v1~1training-jobs~1{id}/get', parameters: {id: '$response.body#/id'}}
            '400': {$ref: '#/components/responses/Error'}
            '404': {$ref: '#/components/responses/Error'}
            '409': {description: 'labels short of images (training.not_enough_images; error.details: label → count; the requester is put on the watch-list), or fine_tune without the set-up''s features.pt (training.fine_tune_unavailable)', content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}}
      /v1/training-jobs/{id}:
        get:
          summary: A training job's state, epoch and learning curves so far
          parameters:
            - {name: id, in: path, required: true, schema: {type: string}}
          responses:
            '200':
              description: the job
              content: {application/json: {schema: {$ref: '#/components/schemas/TrainingJob'}}}
              links:
                GetModel: {operationRef: '#/paths/~1v1~1models~1{id}/get', parameters: {id: '$response.body#/model_id'}}
                GetDatasetVersion: {operationRef: '#/paths/~1v1~1datasets~1versions~1{id}/get', parameters: {id: '$response.body#/dataset_version'}}
            '404': {$ref: '#/components/responses/Error'}
      /v1/models:
        get:
          summary: The model registry
          responses:
            '200': {description: models, content: {application/json: {schema: {type: object, properties: {models: {type: array, items: {$ref: '#/components/schemas/Model'}}}}}}}
      /v1/models/{id}:
        get:
          summary: One model
          parameters:
            - {name: id, in: path, required: true, schema: {type: string}}
          responses:
            '200':
              description: the model
              content: {application/json: {schema: {$ref: '#/components/schemas/Model'}}}
              links:
                GetReport: {operationRef: '#/paths/~1v1~1models~1{id}~1report/get', parameters: {id: '$response.body#/id'}}
                GetReportSVG: {operationRef: '#/paths/~1v1~1models~1{id}~1report.svg/get', parameters: {id: '$response.body#/id'}}
                Download: {operationRef: '#/paths/~1v1~1models~1{id}~1download/get', parameters: {id: '$response.body#/id'}}
                Predict: {operationRef: '#/paths/~1v1~1models~1{id}~1predict/post', parameters: {id: '$response.body#/id'}}
                GetDatasetVersion: {operationRef: '#/paths/~1v1~1datasets~1versions~1{id}/get', parameters: {id: '$response.body#/dataset_version'}}
            '404': {$ref: '#/components/responses/Error'}
      /v1/models/{id}/report:
        get:
          summary: 'The training report: accuracy, per-class precision/recall/F1, confusion matrix, curves, likely label errors'
          parameters:
            - {name: id, in: path, required: true, schema: {type: string}}
          responses:
            '200': {description: the report, content: {application/json: {schema: {type: object}}}}
            '404': {$ref: '#/components/responses/Error'}
      /v1/models/{id}/report.svg:
        get:
          summary: The report drawn as SVG (curves and confusion matrix)
          parameters:
            - {name: id, in: path, required: true, schema: {type: string}}
          responses:
            '200': {description: an SVG image, content: {image/svg+xml: {schema: {type: string}}}}
            '404': {$ref: '#/components/responses/Error'}
      /v1/models/{id}/predict:
        post:
          summary: Class probabilities for an image, best first, through the ingest preprocessing
          parameters:
            - {name: id, in: path, required: true, schema: {type: string}}
          requestBody:
            required: true
            content:
              multipart/form-data:
                schema: {type: object, required: [file], properties: {file: {type: string, format: binary, minLength: 1}}}
          responses:
            '200':
              description: predictions
              content:
                application/json:
                  schema:
                    type: object
                    properties:
                      predictions: {type: array, items: {type: object, properties: {label: {type: string}, probability: {type: number}}}}
            '404': {$ref: '#/components/responses/Error'}
            '409': {$ref: '#/components/responses/Error'}
            '415': {$ref: '#/components/responses/Error'}
            '422': {$ref: '#/components/responses/Error'}
      /v1/models/{id}/download:
        get:
          summary: 'The model as one ONNX file: input `image` float32 N×3×S×S (S: metadata input_size), output `probabilities` N×C, metadata labels/mean/std/input_size'
          parameters:
            - {name: id, in: path, required: true, schema: {type: string}}
            - {name: format, in: query, schema: {type: string, enum: [onnx]}}
          responses:
            '200': {description: ONNX model, content: {application/octet-stream: {schema: {type: string, format: binary}}}}
            '404': {$ref: '#/components/responses/Error'}
            '409': {$ref: '#/components/responses/Error'}
      /v1/datasets/versions/{id}:
        get:
          summary: An immutable dataset version (the exact images and labels a model was trained on)
          parameters:
            - {name: id, in: path, required: true, schema: {type: string}}
          responses:
            '200':
              description: the version
              links:
                Export: {operationRef: '#/paths/~1v1~1datasets~1versions~1{id}~1export/get', parameters: {id: '$response.body#/id'}}
              content:
                application/json:
                  schema:
                    type: object
                    properties:
                      id: {type: string}
                      manifest_hash: {type: string}
                      labels: {type: array, items: {type: string}}
                      image_count: {type: integer}
                      created_at: {type: string, format: date-time}
                      images:
                        type: array
                        items:
                          type: object
                          properties:
                            id: {type: string}
                            label: {type: string}
                            split: {type: string, enum: [train, validation], nullable: true, description: 'the side of the training split (near duplicates and bursts stay on one side)'}
            '404': {$ref: '#/components/responses/Error'}
      /v1/datasets/versions/{id}/export:
        get:
          summary: Download exactly a dataset version's images as a streamed tar (each under the label it was trained as)
          parameters:
            - {name: id, in: path, required: true, schema: {type: string}}
            - {name: format, in: query, schema: {type: string, enum: [imagefolder, openimages]}}
          responses:
            '200': {description: tar archive, content: {application/x-tar: {schema: {type: string, format: binary}}}}
            '404': {$ref: '#/components/responses/Error'}
      /v1/watchlist:
        get:
          summary: Watches with their webhook deliveries
          responses:
            '200': {description: watches, content: {application/json: {schema: {type: object, properties: {watches: {type: array, items: {$ref: '#/components/schemas/Watch'}}}}}}}
        post:
          summary: Be notified (webhook POST) when a label reaches a number of accepted images
          requestBody:
            required: true
            content:
              application/json:
                schema:
                  type: object
                  required: [label, threshold]
                  properties:
                    label: {type: string, minLength: 1}
                    threshold: {type: integer, minimum: 1}
                    webhook_url: {type: string, nullable: true, pattern: '^https?://[^/\\s]+', description: 'http(s) URL to a host allowed by webhooks.allowedHosts'}
          responses:
            '201': {description: the watch, content: {application/json: {schema: {$ref: '#/components/schemas/Watch'}}}}
            '400': {$ref: '#/components/responses/Error'}
            '404': {$ref: '#/components/responses/Error'}
      /v1/uploads:
        options:
          summary: tus 1.0.0 discovery (no key needed) — Tus-Version, Tus-Extension, Tus-Max-Size, Tus-Checksum-Algorithm
          security: []
          responses:
            '204': {description: capabilities in headers}
        post:
          summary: 'tus creation (and creation-with-upload): Upload-Length, Upload-Metadata (label, filename, batch, device, lat, lon, captured_at; base64 values)'
          parameters:
            - {name: Tus-Resumable, in: header, required: true, schema: {type: string, enum: ['1.0.0']}}
            - {name: Upload-Length, in: header, required: true, schema: {type: integer, minimum: 1}}
            - {name: Upload-Metadata, in: header, required: true, description: 'comma-separated `key base64(value)` pairs; `label` is required', schema: {type: string, pattern: '(^|,) *label +[A-Za-z0-9+/]+=*'}}
          responses:
            '201': {description: created; Location and Upload-Offset headers}
            '400': {$ref: '#/components/responses/Error'}
            '412': {$ref: '#/components/responses/Error'}
            '413': {$ref: '#/components/responses/Error'}
            '422': {$ref: '#/components/responses/Error'}
            '503': {description: backpressure (Retry-After), content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}}
      /v1/uploads/{id}:
        head:
          summary: tus offset (Upload-Offset, Upload-Length, Upload-Metadata, Upload-Expires; Upload-Image-Id once complete)
          parameters:
            - {name: id, in: path, required: true, schema: {type: string}}
            - {name: Tus-Resumable, in: header, required: true, schema: {type: string, enum: ['1.0.0']}}
          responses:
            '200': {description: offset in headers}
            '404': {description: unknown upload}
            '410': {description: expired}
        patch:
          summary: tus append at Upload-Offset (application/offset+octet-stream; optional Upload-Checksum sha1|sha256)
          parameters:
            - {name: id, in: path, required: true, schema: {type: string}}
            - {name: Tus-Resumable, in: header, required: true, schema: {type: string, enum: ['1.0.0']}}
            - {name: Upload-Offset, in: header, required: true, schema: {type: integer, format: int64, minimum: 0}}
            - {name: Prefer, in: header, required: false, description: 'wait=N (N ≤ 30): on the request that completes the upload, answer with the verdict once the image is final within N seconds', schema: {type: string}}
          requestBody:
            content:
              application/offset+octet-stream: {schema: {type: string, format: binary}}
          responses:
            '204': {description: new Upload-Offset in headers; the image id in Upload-Image-Id once complete}
            '200': {description: 'the upload is complete and Prefer: wait=N was honoured: the image with its verdict (Preference-Applied: wait=N), with the tus headers', content: {application/json: {schema: {$ref: '#/components/schemas/Image'}}}}
            '404': {$ref: '#/components/responses/Error'}
            '409': {$ref: '#/components/responses/Error'}
            '410': {$ref: '#/components/responses/Error'}
            '413': {$ref: '#/components/responses/Error'}
            '415': {$ref: '#/components/responses/Error'}
            '460': {description: checksum mismatch}
        delete:
          summary: tus termination
          parameters:
            - {name: id, in: path, required: true, schema: {type: string}}
            - {name: Tus-Resumable, in: header, required: true, schema: {type: string, enum: ['1.0.0']}}
          responses:
            '204': {description: terminated}
            '404': {$ref: '#/components/responses/Error'}
      /v1/datasets/export:
        get:
          summary: Download accepted images of labels as a streamed tar (requester, trainer, admin)
          parameters:
            - {name: labels, in: query, required: true, schema: {type: string, minLength: 1, pattern: '[^,\\s]'}, description: comma-separated label names}
            - {name: descendants, in: query, schema: {type: boolean}}
            - {name: format, in: query, schema: {type: string, enum: [imagefolder, openimages]}}
          responses:
            '200': {description: tar archive, content: {application/x-tar: {schema: {type: string, format: binary}}}}
            '403': {$ref: '#/components/responses/Error'}
            '404': {$ref: '#/components/responses/Error'}
    """
}
