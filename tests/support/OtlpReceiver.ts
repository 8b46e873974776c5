import { createServer, type IncomingMessage, type Server } from "node:http"

/** One attribute value of OTLP/JSON (`AnyValue`), reduced to what the exporter sends for scalars. */
type AnyValue = {
  readonly stringValue?: string
  readonly intValue?: string | number
  readonly doubleValue?: number
  readonly boolValue?: boolean
}

interface KeyValue {
  readonly key: string
  readonly value: AnyValue
}

interface OtlpSpan {
  readonly traceId: string
  readonly spanId: string
  readonly parentSpanId?: string
  readonly traceState?: string
  readonly name: string
  readonly kind: number
  readonly attributes?: ReadonlyArray<KeyValue>
  readonly links?: ReadonlyArray<{ readonly traceId: string; readonly spanId: string }>
  readonly status?: { readonly code?: number }
}

interface ExportRequest {
  readonly resourceSpans?: ReadonlyArray<{
    readonly resource?: { readonly attributes?: ReadonlyArray<KeyValue> }
    readonly scopeSpans?: ReadonlyArray<{ readonly spans?: ReadonlyArray<OtlpSpan> }>
  }>
}

/** A received span with ids in lowercase hex and attributes as a plain object. */
export interface ReceivedSpan {
  readonly traceId: string
  readonly spanId: string
  readonly parentSpanId: string | undefined
  /** W3C `tracestate` of the span, empty when none. */
  readonly traceState: string
  readonly name: string
  /** OTLP `SpanKind`: 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  readonly kind: number
  readonly attributes: Readonly<Record<string, unknown>>
  readonly links: ReadonlyArray<{ readonly traceId: string; readonly spanId: string }>
  readonly statusCode: number
  readonly serviceName: unknown
}

/** OTLP `SpanKind` values. */
export const spanKind = { internal: 1, server: 2, client: 3, producer: 4, consumer: 5 } as const

/**
 * Converts an id to hex. OTLP/JSON specifies hex ids, and protobuf-JSON mappings may send
 * base64, so both are accepted.
 */
const toHex = (id: string | undefined): string | undefined => {
  if (id === undefined || id === "") return undefined
  if (/^[0-9a-f]+$/i.test(id) && (id.length === 16 || id.length === 32)) return id.toLowerCase()
  return Buffer.from(id, "base64").toString("hex")
}

const valueOf = (value: AnyValue): unknown => {
  if (value.stringValue !== undefined) return value.stringValue
  if (value.intValue !== undefined) return Number(value.intValue)
  if (value.doubleValue !== undefined) return value.doubleValue
  if (value.boolValue !== undefined) return value.boolValue
  return undefined
}

const attributesOf = (list: ReadonlyArray<KeyValue> | undefined) =>
  Object.fromEntries((list ?? []).map(({ key, value }) => [key, valueOf(value)]))

const readBody = (request: IncomingMessage) =>
  new Promise<string>((resolve, reject) => {
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")))
    request.on("error", reject)
  })

/** A loopback OTLP/HTTP trace receiver that accepts JSON export requests on `POST /v1/traces`. */
export interface OtlpReceiver {
  /** Base endpoint, as for `OTEL_EXPORTER_OTLP_ENDPOINT`. */
  readonly endpoint: string
  readonly spans: () => ReadonlyArray<ReceivedSpan>
  /** Content types of the export requests, to check which encoding the exporter used. */
  readonly contentTypes: () => ReadonlyArray<string>
  readonly close: () => Promise<void>
}

/** Starts the receiver on a free port of 127.0.0.1. */
export const startOtlpReceiver = async (): Promise<OtlpReceiver> => {
  const spans: Array<ReceivedSpan> = []
  const contentTypes: Array<string> = []
  const server: Server = createServer((request, response) => {
    void readBody(request).then((body) => {
      if (request.method !== "POST" || request.url !== "/v1/traces") {
        response.writeHead(404).end()
        return
      }
      contentTypes.push(String(request.headers["content-type"]))
      const parsed = JSON.parse(body) as ExportRequest
      for (const resourceSpans of parsed.resourceSpans ?? []) {
        const serviceName = attributesOf(resourceSpans.resource?.attributes)["service.name"]
        for (const scopeSpans of resourceSpans.scopeSpans ?? []) {
          for (const span of scopeSpans.spans ?? []) {
            spans.push({
              traceId: toHex(span.traceId)!,
              spanId: toHex(span.spanId)!,
              parentSpanId: toHex(span.parentSpanId),
              traceState: span.traceState ?? "",
              name: span.name,
              kind: span.kind,
              attributes: attributesOf(span.attributes),
              links: (span.links ?? []).map((link) => ({ traceId: toHex(link.traceId)!, spanId: toHex(link.spanId)! })),
              statusCode: span.status?.code ?? 0,
              serviceName
            })
          }
        }
      }
      response.writeHead(200, { "content-type": "application/json" }).end("{}")
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const address = server.address()
  const port = typeof address === "object" && address !== null ? address.port : 0
  return {
    endpoint: `http://127.0.0.1:${port}`,
    spans: () => [...spans],
    contentTypes: () => [...contentTypes],
    close: () => new Promise<void>((resolve) => server.close(() => resolve()))
  }
}

/** Returns the spans of `spans` below `root` (children, their children, and so on), by walking parent ids. */
export const descendantsOf = (spans: ReadonlyArray<ReceivedSpan>, root: ReceivedSpan): ReadonlyArray<ReceivedSpan> => {
  const result: Array<ReceivedSpan> = []
  const queue = [root.spanId]
  while (queue.length > 0) {
    const parent = queue.shift()!
    for (const span of spans) {
      if (span.parentSpanId === parent && span.traceId === root.traceId) {
        result.push(span)
        queue.push(span.spanId)
      }
    }
  }
  return result
}
