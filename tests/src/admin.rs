//! The management API, spoken to as an operator's script would: JSON over HTTP with the
//! admin token, ETags read and sent back in `If-Match`.

use std::time::Duration;

use serde_json::{Value, json};

/// An answer of the management API.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub etag: Option<String>,
    pub body: Value,
}

pub struct Admin {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Admin {
    pub fn new(base: &str, token: &str) -> Admin {
        let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(20)).build().expect("http client");
        Admin { http, base: base.to_owned(), token: token.to_owned() }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Answer {
        let resp = crate::within(20, "management API", req.bearer_auth(&self.token).send()).await.expect("the management API answers");
        let status = resp.status().as_u16();
        let etag = resp.headers().get("etag").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let text = resp.text().await.expect("a body");
        let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        Answer { status, etag, body }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(self.http.get(format!("{}{path}", self.base))).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.send(self.http.post(format!("{}{path}", self.base)).json(&body)).await
    }

    /// A POST with `If-Match` (or none, if `etag` is `None`).
    pub async fn post_if(&self, path: &str, etag: Option<&str>, body: Value) -> Answer {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(&body);
        if let Some(e) = etag {
            req = req.header("if-match", e);
        }
        self.send(req).await
    }

    /// A PUT of a JSON body with `If-Match` (or none).
    pub async fn put_if(&self, path: &str, etag: Option<&str>, body: Value) -> Answer {
        let mut req = self.http.put(format!("{}{path}", self.base)).json(&body);
        if let Some(e) = etag {
            req = req.header("if-match", e);
        }
        self.send(req).await
    }

    /// A POST of raw bytes with this content type (a component upload).
    pub async fn post_bytes(&self, path: &str, content_type: &str, body: Vec<u8>) -> Answer {
        self.send(self.http.post(format!("{}{path}", self.base)).header("content-type", content_type).body(body)).await
    }

    pub async fn delete_if(&self, path: &str, etag: Option<&str>) -> Answer {
        let mut req = self.http.delete(format!("{}{path}", self.base));
        if let Some(e) = etag {
            req = req.header("if-match", e);
        }
        self.send(req).await
    }

    /// Subscribes `subscriber` to `product`; the answer holds the keys.
    pub async fn subscribe(&self, product: &str, subscriber: &str) -> Subscribed {
        let a = self.post("/api/subscriptions", json!({ "product": product, "subscriber": subscriber })).await;
        assert_eq!(a.status, 201, "subscribe: {a:?}");
        Subscribed {
            id: a.body["id"].as_str().expect("an id").to_owned(),
            primary: a.body["keys"]["primary"].as_str().expect("a primary key").to_owned(),
            secondary: a.body["keys"]["secondary"].as_str().expect("a secondary key").to_owned(),
            state: a.body["state"].as_str().expect("a state").to_owned(),
        }
    }

    /// Reads the subscription, then runs `action` on it with its ETag.
    pub async fn act(&self, id: &str, action: &str) -> Answer {
        let etag = self.get(&format!("/api/subscriptions/{id}")).await.etag.expect("an ETag");
        let a = self.post_if(&format!("/api/subscriptions/{id}/{action}"), Some(&etag), json!({ "by": "ops@example.com" })).await;
        assert_eq!(a.status, 200, "{action}: {a:?}");
        a
    }

    /// Regenerates a key; the new key.
    pub async fn regenerate(&self, id: &str, slot: &str) -> String {
        let a = self.act(id, &format!("keys/{slot}")).await;
        a.body["key"]["value"].as_str().expect("the new key").to_owned()
    }
}

pub struct Subscribed {
    pub id: String,
    pub primary: String,
    pub secondary: String,
    pub state: String,
}
