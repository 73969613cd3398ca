//! Changes other replicas make through their management APIs, put in force here: the store
//! shared by replicas (`management.database`) reports each changed record, in the order the
//! changes were made, and each is applied as a restart would apply it.

use std::path::PathBuf;
use std::sync::Arc;

use crate::gateway::Gateway;
use crate::subscription::{Changed, Kind};

/// Starts following, when the store is shared; a no-op otherwise.
pub fn start(gw: Arc<Gateway>, file: PathBuf, base: PathBuf) {
    let Some(registry) = gw.subscriptions.clone() else { return };
    let Some(mut changes) = registry.store().follow() else { return };
    tokio::spawn(async move {
        let places = crate::policy::Places::of(&gw.config, &base);
        while let Some(c) = changes.recv().await {
            let (kind, id, seq) = (c.kind, c.id.clone(), c.seq);
            // As a change through this replica's own API would: one change at a time.
            let _changing = gw.changing.lock().await;
            match apply(&gw, &file, &base, &places, c).await {
                Ok(()) => registry.store().applied(kind, &id, seq),
                Err(e) => tracing::error!(kind = kind.name(), id = %id, error = %e, "a change made through another replica cannot be put in force here"),
            }
        }
    });
}

async fn apply(gw: &Gateway, file: &std::path::Path, base: &std::path::Path, places: &crate::policy::Places, c: Changed) -> anyhow::Result<()> {
    let registry = gw.subscriptions.as_ref().expect("following needs the store");
    tracing::debug!(kind = c.kind.name(), id = %c.id, deleted = c.record.is_none(), "change from another replica");
    match (c.kind, c.record.as_deref()) {
        (Kind::Subscriptions, record) => registry.refresh(&c.id, record, c.seq).await?,
        (Kind::Servers, Some(r)) => super::servers::apply(gw, &c.id, r, base, places).await?,
        (Kind::Products, Some(r)) => super::products::apply(gw, &c.id, r, base).await?,
        (Kind::Routing, Some(r)) => super::versions::apply(gw, &c.id, r)?,
        (Kind::Chains, Some(r)) => super::policies::apply(gw, &c.id, r, places).await?,
        (Kind::Chains, None) => super::policies::released(gw, file, &c.id, places).await?,
        (Kind::Components, Some(bytes)) => super::components::keep_copy(gw, &c.id, bytes.to_vec()).await?,
        // A routing is deleted with its server's replacement, which brings its own; servers,
        // products and components are never deleted as rows (a deletion is a record).
        (Kind::Routing | Kind::Servers | Kind::Products | Kind::Components, None) => {}
    }
    Ok(())
}
