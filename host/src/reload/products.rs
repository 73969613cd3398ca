//! A reload's products: the file's added, changed or removed, but for those the management API
//! created, replaced or deleted. A product whose config is unchanged keeps its place (its
//! chain is reloaded with the others).

use std::sync::Arc;

use crate::config::Config;
use crate::gateway::Gateway;
use crate::policy::Loaded;
use crate::product::Product;

pub fn sync(gw: &Gateway, file: &Config, loaded: &Loaded) {
    let owned = gw.overrides.lock().expect("overrides lock").products.clone();
    let before = gw.catalog.load_full();
    let mut next = crate::product::Catalog { products: before.products.clone() };
    for p in &file.products {
        if owned.contains(&p.name) {
            continue;
        }
        let same = before.products.get(&p.name).is_some_and(|c| serde_json::to_value(&c.config).ok() == serde_json::to_value(p).ok());
        if same {
            continue;
        }
        let product = Product::new(p.clone());
        product.chain.store(loaded.products.get(&p.name).cloned().unwrap_or_default());
        tracing::info!(product = %p.name, "product {} from the file", if before.products.contains_key(&p.name) { "changed" } else { "added" });
        next = next.with(&p.name, Some(Arc::new(product)));
    }
    for name in before.products.keys().filter(|n| !owned.contains(*n) && !file.products.iter().any(|p| &&p.name == n)) {
        tracing::info!(product = %name, "product removed: the file no longer has it");
        next = next.with(name, None);
    }
    gw.catalog.store(Arc::new(next));
}
