//! One operation of the management API, as the route table ([`super::routes`]) writes it: the
//! method, the path and the handler, which build the router, and what the OpenAPI document says
//! of it. The request body, the query and the answer's body are read from the handler's own
//! signature ([`Input`], [`Output`]), so the document describes the types the handler takes and
//! returns; the table adds what a signature cannot say (summary, statuses, problems, If-Match).

use std::future::Future;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::extract::{Path, Query, State};
use axum::handler::Handler;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use super::api_error::ApiError;
use super::{Management, Shared};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Put,
    Post,
    Delete,
}

impl Method {
    fn filter(self) -> MethodFilter {
        match self {
            Method::Get => MethodFilter::GET,
            Method::Put => MethodFilter::PUT,
            Method::Post => MethodFilter::POST,
            Method::Delete => MethodFilter::DELETE,
        }
    }

    /// As an OpenAPI path item names it.
    pub fn key(self) -> &'static str {
        match self {
            Method::Get => "get",
            Method::Put => "put",
            Method::Post => "post",
            Method::Delete => "delete",
        }
    }
}

/// Whether a change needs `If-Match` ([`super::precondition`], [`super::subscriptions::if_match`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfMatch {
    /// Always: the ETag last read.
    Required,
    /// To replace what exists; none (or `*`) to create.
    ToReplace,
}

/// One operation: what builds its route, and what the document says of it.
pub struct Op {
    pub method: Method,
    pub path: &'static str,
    pub route: MethodRouter<Shared>,
    /// The cap on the body, from the config; axum's default (2 MiB) otherwise.
    pub limit: Option<fn(&Management) -> usize>,
    /// Served without the admin token.
    pub open: bool,
    /// The handler's name, for `operationId`.
    pub handler: &'static str,
    /// What the handler's signature says (request body, query, answer).
    pub shape: fn(&mut Shape, &mut SchemaGenerator),
    pub summary: &'static str,
    pub description: Option<&'static str>,
    pub tag: &'static str,
    /// Success statuses, with their descriptions (see [`Op::status`]).
    pub statuses: Vec<(u16, &'static str)>,
    /// Kinds of problem ([`super::api_error::KINDS`]) the handler answers with, besides those
    /// every operation of its kind may get (see [`super::openapi`]).
    pub problems: Vec<&'static str>,
    pub if_match: Option<IfMatch>,
    /// Path parameters' descriptions and, for a closed set, their values.
    pub params: Vec<(&'static str, &'static str, &'static [&'static str])>,
    /// The media type of a body taken as bytes.
    pub media: Option<&'static str>,
}

impl Op {
    fn new<H, T, A>(method: Method, path: &'static str, handler: H, summary: &'static str) -> Op
    where
        H: Handler<T, Shared> + Signature<A>,
        T: 'static,
    {
        let name = std::any::type_name::<H>();
        Op {
            method,
            path,
            route: axum::routing::on(method.filter(), handler),
            limit: None,
            open: false,
            handler: name.strip_prefix("tollgate::management::").unwrap_or(name),
            shape: <H as Signature<A>>::shape,
            summary,
            description: None,
            tag: "",
            statuses: Vec::new(),
            problems: Vec::new(),
            if_match: None,
            params: Vec::new(),
            media: None,
        }
    }

    pub fn get<H: Handler<T, Shared> + Signature<A>, T: 'static, A>(path: &'static str, handler: H, summary: &'static str) -> Op {
        Op::new(Method::Get, path, handler, summary)
    }

    pub fn put<H: Handler<T, Shared> + Signature<A>, T: 'static, A>(path: &'static str, handler: H, summary: &'static str) -> Op {
        Op::new(Method::Put, path, handler, summary)
    }

    pub fn post<H: Handler<T, Shared> + Signature<A>, T: 'static, A>(path: &'static str, handler: H, summary: &'static str) -> Op {
        Op::new(Method::Post, path, handler, summary)
    }

    pub fn delete<H: Handler<T, Shared> + Signature<A>, T: 'static, A>(path: &'static str, handler: H, summary: &'static str) -> Op {
        Op::new(Method::Delete, path, handler, summary)
    }

    pub fn describe(mut self, text: &'static str) -> Op {
        self.description = Some(text);
        self
    }

    /// No admin token needed.
    pub fn open(mut self) -> Op {
        self.open = true;
        self
    }

    /// A success status the handler answers with, whose body is the answer's type. Without
    /// any, the one the answer's type implies: 204 for [`NoContent`], 200 otherwise.
    pub fn status(mut self, code: u16, description: &'static str) -> Op {
        self.statuses.push((code, description));
        self
    }

    pub fn problems(mut self, kinds: &[&'static str]) -> Op {
        self.problems.extend_from_slice(kinds);
        self
    }

    pub fn if_match(mut self, kind: IfMatch) -> Op {
        self.if_match = Some(kind);
        self
    }

    /// A path parameter's description, and the values it takes (empty: any name).
    pub fn param(mut self, name: &'static str, description: &'static str, values: &'static [&'static str]) -> Op {
        self.params.push((name, description, values));
        self
    }

    /// The body is taken as bytes of this media type, capped at `limit` bytes.
    pub fn accepts(mut self, media: &'static str, limit: fn(&Management) -> usize) -> Op {
        self.media = Some(media);
        self.limit = Some(limit);
        self
    }
}

/// Every operation of `ops` under one tag.
pub fn tagged(tag: &'static str, ops: Vec<Op>) -> Vec<Op> {
    ops.into_iter().map(|o| Op { tag, ..o }).collect()
}

/// What a handler's signature says of an operation.
#[derive(Default)]
pub struct Shape {
    /// The request body: its schema (none for bytes) and whether it is required.
    pub body: Option<(Option<Schema>, bool)>,
    /// The query's schema (an object; each property is a parameter).
    pub query: Option<Schema>,
    /// The answer: its status when the type fixes it, media type and schema.
    pub answer: Answer,
}

#[derive(Default)]
pub struct Answer {
    pub status: Option<u16>,
    pub body: Option<(&'static str, Schema)>,
    /// The answer carries an ETag header.
    pub etag: bool,
    /// The answer carries a Location header: where what it created is.
    pub location: bool,
}

/// An extractor, as the document sees it.
pub trait Input {
    fn shape(_: &mut Shape, _: &mut SchemaGenerator) {}
}

impl<S> Input for State<S> {}
impl<T> Input for Path<T> {}
impl Input for HeaderMap {}

impl<T: JsonSchema> Input for Result<Json<T>, JsonRejection> {
    fn shape(s: &mut Shape, g: &mut SchemaGenerator) {
        s.body = Some((Some(g.subschema_for::<T>()), true));
    }
}

impl<T: JsonSchema> Input for Result<Option<Json<T>>, JsonRejection> {
    fn shape(s: &mut Shape, g: &mut SchemaGenerator) {
        s.body = Some((Some(g.subschema_for::<T>()), false));
    }
}

impl Input for Result<Bytes, BytesRejection> {
    fn shape(s: &mut Shape, _: &mut SchemaGenerator) {
        s.body = Some((None, true));
    }
}

impl<T: JsonSchema> Input for Query<T> {
    fn shape(s: &mut Shape, g: &mut SchemaGenerator) {
        // Inlined: each of its properties is a parameter.
        s.query = Some(T::json_schema(g));
    }
}

/// What a handler returns, as the document sees it.
pub trait Output {
    fn shape(a: &mut Answer, g: &mut SchemaGenerator);
}

impl<T: JsonSchema> Output for Json<T> {
    fn shape(a: &mut Answer, g: &mut SchemaGenerator) {
        a.body = Some(("application/json", g.subschema_for::<T>()));
    }
}

/// A JSON answer whose status the handler chooses (listed in the table).
impl<T: JsonSchema> Output for (StatusCode, Json<T>) {
    fn shape(a: &mut Answer, g: &mut SchemaGenerator) {
        Json::<T>::shape(a, g)
    }
}

impl<T: Output> Output for Result<T, ApiError> {
    fn shape(a: &mut Answer, g: &mut SchemaGenerator) {
        T::shape(a, g)
    }
}

/// Plain text.
impl Output for &'static str {
    fn shape(a: &mut Answer, g: &mut SchemaGenerator) {
        a.body = Some(("text/plain", g.subschema_for::<String>()));
    }
}

/// Plain text, with the status the handler chooses.
impl Output for (StatusCode, String) {
    fn shape(a: &mut Answer, g: &mut SchemaGenerator) {
        a.body = Some(("text/plain; charset=utf-8", g.subschema_for::<String>()));
    }
}

/// A JSON answer with the ETag a later change sends back as If-Match.
pub struct Tagged<T> {
    pub status: StatusCode,
    pub etag: String,
    pub body: T,
}

impl<T: serde::Serialize> Tagged<T> {
    /// An answer whose ETag is taken from its own body.
    pub fn of(status: StatusCode, body: T) -> Tagged<T> {
        Tagged { status, etag: super::etag(&body), body }
    }
}

impl<T: serde::Serialize> IntoResponse for Tagged<T> {
    fn into_response(self) -> Response {
        let mut r = (self.status, Json(self.body)).into_response();
        if let Ok(v) = HeaderValue::from_str(&self.etag) {
            r.headers_mut().insert(header::ETAG, v);
        }
        r
    }
}

impl<T: JsonSchema> Output for Tagged<T> {
    fn shape(a: &mut Answer, g: &mut SchemaGenerator) {
        Json::<T>::shape(a, g);
        a.etag = true;
    }
}

/// 204, no body.
pub struct NoContent;

impl IntoResponse for NoContent {
    fn into_response(self) -> Response {
        StatusCode::NO_CONTENT.into_response()
    }
}

impl Output for NoContent {
    fn shape(a: &mut Answer, _: &mut SchemaGenerator) {
        a.status = Some(204);
    }
}

/// The metrics, in the OpenMetrics text format.
pub struct Metrics(pub String);

impl IntoResponse for Metrics {
    fn into_response(self) -> Response {
        ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], self.0).into_response()
    }
}

impl Output for Metrics {
    fn shape(a: &mut Answer, _: &mut SchemaGenerator) {
        a.body = Some(("application/openmetrics-text", json_schema!({ "type": "string" })));
    }
}

/// A handler's signature: its extractors and what it returns.
pub trait Signature<Args> {
    fn shape(s: &mut Shape, g: &mut SchemaGenerator);
}

macro_rules! signature {
    ($($arg:ident),*) => {
        impl<F, Fut, $($arg,)*> Signature<($($arg,)*)> for F
        where
            F: FnOnce($($arg),*) -> Fut,
            Fut: Future,
            Fut::Output: Output,
            $($arg: Input,)*
        {
            fn shape(_s: &mut Shape, _g: &mut SchemaGenerator) {
                $($arg::shape(_s, _g);)*
                <Fut::Output as Output>::shape(&mut _s.answer, _g);
            }
        }
    };
}

signature!();
signature!(A1);
signature!(A1, A2);
signature!(A1, A2, A3);
signature!(A1, A2, A3, A4);
