//! The parts of an exchange the shared logic reads, behind a trait so that logic is tested
//! natively with plain values instead of a running gateway.

use tollgate_policy_sdk::Exchange;

/// What is known about one exchange.
pub trait Facts {
    fn method(&self) -> String;
    fn target(&self) -> Option<String>;
    fn server(&self) -> String;
    fn session_id(&self) -> Option<String>;
    /// The client's IP, through the proxies the gateway trusts.
    fn client_ip(&self) -> Option<String>;
    fn header(&self, name: &str) -> Option<String>;
    fn attribute(&self, key: &str) -> Option<String>;
}

impl Facts for Exchange<'_> {
    fn method(&self) -> String {
        Exchange::method(self)
    }
    fn target(&self) -> Option<String> {
        Exchange::target(self)
    }
    fn server(&self) -> String {
        Exchange::server(self)
    }
    fn session_id(&self) -> Option<String> {
        Exchange::session_id(self)
    }
    fn client_ip(&self) -> Option<String> {
        Exchange::client_ip(self)
    }
    fn header(&self, name: &str) -> Option<String> {
        Exchange::header(self, name)
    }
    fn attribute(&self, key: &str) -> Option<String> {
        Exchange::attribute(self, key)
    }
}

/// Plain values, for tests of the logic built on [`Facts`].
#[derive(Debug, Default, Clone)]
pub struct Known {
    pub method: String,
    pub target: Option<String>,
    pub server: String,
    pub session_id: Option<String>,
    pub client_ip: Option<String>,
    pub headers: Vec<(String, String)>,
    pub attributes: Vec<(String, String)>,
}

impl Facts for Known {
    fn method(&self) -> String {
        self.method.clone()
    }
    fn target(&self) -> Option<String> {
        self.target.clone()
    }
    fn server(&self) -> String {
        self.server.clone()
    }
    fn session_id(&self) -> Option<String> {
        self.session_id.clone()
    }
    fn client_ip(&self) -> Option<String> {
        self.client_ip.clone()
    }
    fn header(&self, name: &str) -> Option<String> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone())
    }
    fn attribute(&self, key: &str) -> Option<String> {
        self.attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }
}
