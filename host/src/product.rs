//! Products at run time, and the check every MCP request of a server in a product passes:
//! which subscription (if any) the caller presents, and whether it may use this server.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::config::ProductConfig;
use crate::mcp::error::GatewayError;
use crate::mcp::jsonrpc::Message;
use crate::policy::{Attributes, Chain};
use crate::server::Version;
use tollgate_vocabulary::attr;

/// A product's chain, a server's, and the two joined: rebuilt when either is swapped.
type Joined = (Arc<Chain>, Arc<Chain>, Arc<Chain>);

pub struct Product {
    pub config: ProductConfig,
    /// Per server: the tools the product offers, or `None` for all of them.
    tools: HashMap<String, Option<Arc<HashSet<String>>>>,
    /// The product's own chain, swapped whole on reload.
    pub chain: arc_swap::ArcSwap<Chain>,
    /// Product chain then server chain, per server (and version), built once per server chain.
    combined: Mutex<HashMap<String, Joined>>,
}

impl Product {
    pub fn new(config: ProductConfig) -> Product {
        let tools = config.servers.iter().map(|s| (s.server.clone(), s.tools.as_ref().map(|t| Arc::new(t.iter().cloned().collect())))).collect();
        Product { config, tools, chain: Default::default(), combined: Mutex::new(HashMap::new()) }
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub fn includes(&self, server: &str) -> bool {
        self.tools.contains_key(server)
    }

    /// The tools of `server` this product offers; `None` for all.
    pub fn tools(&self, server: &str) -> Option<Arc<HashSet<String>>> {
        self.tools.get(server).cloned().flatten()
    }

    /// The chain a request through this product to `server` runs: the product's, then the server's.
    pub fn chain_for(&self, server: &Version) -> Arc<Chain> {
        let own = self.chain.load_full();
        let theirs = server.chain();
        if own.is_empty() {
            return theirs;
        }
        if theirs.is_empty() {
            return own;
        }
        let mut cache = self.combined.lock().expect("product lock");
        let key = server.key();
        if let Some((o, t, c)) = cache.get(&key)
            && Arc::ptr_eq(o, &own)
            && Arc::ptr_eq(t, &theirs)
        {
            return c.clone();
        }
        let c = Arc::new(own.then(&theirs));
        cache.insert(key, (own, theirs, c.clone()));
        c
    }
}

/// Every product, by name. Swapped whole when products change.
#[derive(Default)]
pub struct Catalog {
    pub products: BTreeMap<String, Arc<Product>>,
}

impl Catalog {
    pub fn new(configs: &[ProductConfig]) -> Catalog {
        Catalog { products: configs.iter().map(|p| (p.name.clone(), Arc::new(Product::new(p.clone())))).collect() }
    }

    /// A copy with `name` replaced by `product` (or removed, with `None`); the other products
    /// are shared, chains and all.
    pub fn with(&self, name: &str, product: Option<Arc<Product>>) -> Catalog {
        let mut products = self.products.clone();
        match product {
            Some(p) => products.insert(name.to_owned(), p),
            None => products.remove(name),
        };
        Catalog { products }
    }

    /// Whether any product bundles `server`: then it is reached through products only.
    pub fn governs(&self, server: &str) -> bool {
        self.products.values().any(|p| p.includes(server))
    }

    /// A product that includes `server` and needs no subscription.
    pub fn open_for(&self, server: &str) -> Option<Arc<Product>> {
        self.products.values().find(|p| p.includes(server) && !p.config.subscription_required).cloned()
    }
}

/// Under which product, and which subscription, a request is served.
#[derive(Clone)]
pub struct Access {
    pub product: Arc<Product>,
    pub subscription: Option<String>,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access").field("product", &self.product.name()).field("subscription", &self.subscription).finish()
    }
}

impl Access {
    pub fn attributes(&self) -> Attributes {
        let mut a = Attributes::new();
        a.insert(attr::PRODUCT.into(), self.product.name().to_owned());
        if let Some(s) = &self.subscription {
            a.insert(attr::SUBSCRIPTION.into(), s.clone());
        }
        a
    }
}

/// Refuses a `tools/call` of a tool the product does not offer (`allowed`; `None`: all).
pub fn check_tool(allowed: Option<&HashSet<String>>, msg: &Message) -> Result<(), GatewayError> {
    if let (Some(allowed), Some("tools/call")) = (allowed, msg.method()) {
        let tool = msg.target().unwrap_or_default();
        if !allowed.contains(tool) {
            return Err(GatewayError::ToolNotInProduct(tool.to_owned()));
        }
    }
    Ok(())
}

/// A `tools/list` answer with only the tools a product offers.
pub fn only_tools(mut msg: Message, allowed: Option<&HashSet<String>>) -> Message {
    let Some(allowed) = allowed else { return msg };
    if let Some(Value::Array(tools)) = msg.body.get_mut("result").and_then(|r| r.get_mut("tools")) {
        tools.retain(|t| t.get("name").and_then(Value::as_str).is_some_and(|n| allowed.contains(n)));
    }
    msg
}
