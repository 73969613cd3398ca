//! An OTLP trace receiver the tests run, over HTTP (protobuf bodies at `/v1/traces`) and over
//! gRPC (the collector's `TraceService/Export`), both decoding with the protocol's own types.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use prost::Message as _;

/// One span as the collector received it, with ids in hex and attributes as text.
#[derive(Debug, Clone)]
pub struct Span {
    pub service: String,
    pub name: String,
    /// OTLP's numbering: 1 internal, 2 server, 3 client.
    pub kind: i32,
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: String,
    pub attributes: BTreeMap<String, String>,
    /// 0 unset, 1 ok, 2 error.
    pub status_code: i32,
    pub status_message: String,
    pub links: Vec<(String, String)>,
}

impl Span {
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

pub const KIND_INTERNAL: i32 = 1;
pub const KIND_SERVER: i32 = 2;
pub const KIND_CLIENT: i32 = 3;

#[derive(Clone, Default)]
pub struct Collector {
    spans: Arc<Mutex<Vec<Span>>>,
}

impl Collector {
    /// Listens for OTLP/HTTP; returns the endpoint to configure (`http://127.0.0.1:PORT`).
    pub async fn http() -> (Collector, String) {
        let c = Collector::default();
        let sink = c.clone();
        let app = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |body: Bytes| {
                let sink = sink.clone();
                async move {
                    match ExportTraceServiceRequest::decode(body) {
                        Ok(req) => {
                            sink.take(req);
                            (axum::http::StatusCode::OK, [("content-type", "application/x-protobuf")], ExportTraceServiceResponse::default().encode_to_vec())
                        }
                        Err(_) => (axum::http::StatusCode::BAD_REQUEST, [("content-type", "text/plain")], b"not an ExportTraceServiceRequest".to_vec()),
                    }
                }
            }),
        );
        let addr = serve(app).await;
        (c, format!("http://{addr}"))
    }

    /// Listens for OTLP/gRPC (HTTP/2 without TLS); returns the endpoint to configure.
    pub async fn grpc() -> (Collector, String) {
        let c = Collector::default();
        let svc = TraceServiceServer::new(Receiver(c.clone()));
        let app = axum::Router::new().route_service("/opentelemetry.proto.collector.trace.v1.TraceService/Export", svc);
        let addr = serve(app).await;
        (c, format!("http://{addr}"))
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<Span> {
        self.spans.lock().expect("collector lock").clone()
    }

    fn take(&self, req: ExportTraceServiceRequest) {
        let mut out = self.spans.lock().expect("collector lock");
        for rs in req.resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| r.attributes.iter())
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref())
                .map(|v| text(&v.value))
                .unwrap_or_default();
            for ss in rs.scope_spans {
                for s in ss.spans {
                    let attributes = s.attributes.iter().map(|kv| (kv.key.clone(), kv.value.as_ref().map(|v| text(&v.value)).unwrap_or_default())).collect();
                    let status = s.status.clone().unwrap_or_default();
                    out.push(Span {
                        service: service.clone(),
                        name: s.name.clone(),
                        kind: s.kind,
                        trace_id: hex(&s.trace_id),
                        span_id: hex(&s.span_id),
                        parent_span_id: hex(&s.parent_span_id),
                        attributes,
                        status_code: status.code,
                        status_message: status.message,
                        links: s.links.iter().map(|l| (hex(&l.trace_id), hex(&l.span_id))).collect(),
                    });
                }
            }
        }
    }
}

struct Receiver(Collector);

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(&self, request: tonic::Request<ExportTraceServiceRequest>) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0.take(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

async fn serve(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the collector");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn text(v: &Option<Any>) -> String {
    match v {
        Some(Any::StringValue(s)) => s.clone(),
        Some(Any::IntValue(i)) => i.to_string(),
        Some(Any::BoolValue(b)) => b.to_string(),
        Some(Any::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
