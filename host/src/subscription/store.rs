//! Where subscriptions (and whatever else the management API creates) are kept.
//!
//! The default is redb, an embedded database: pure Rust (no C library to build or ship),
//! ACID, copy-on-write B-trees, and a commit that returns only once the data is fsynced, so a
//! `kill -9` or a power cut loses nothing that was acknowledged. It serves one gateway
//! process; several replicas share PostgreSQL instead ([`super::postgres`]).

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

/// A kind of record: one table each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Subscriptions,
    /// Products created or changed through the management API.
    Products,
    /// Which version of a server serves whom, as the management API last set it.
    Routing,
    /// Policy chains set through the management API, by server or version (`docs@v2`).
    Chains,
    /// Servers created, replaced or deleted through the management API.
    Servers,
    /// Uploaded components, by digest: kept in the database only when replicas share one,
    /// so each can write the file it is asked to load.
    Components,
}

impl Kind {
    fn table(self) -> TableDefinition<'static, &'static str, &'static [u8]> {
        TableDefinition::new(self.name())
    }

    /// The name of the kind's table, in redb and in a shared database.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Subscriptions => "subscriptions",
            Kind::Products => "products",
            Kind::Routing => "routing",
            Kind::Chains => "chains",
            Kind::Servers => "servers",
            Kind::Components => "components",
        }
    }

    pub fn from_name(name: &str) -> Option<Kind> {
        [Kind::Subscriptions, Kind::Products, Kind::Routing, Kind::Chains, Kind::Servers, Kind::Components].into_iter().find(|k| k.name() == name)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage: {0}")]
    Failed(String),
    /// Another replica changed the record since this one read it: the change is refused, as
    /// a stale ETag is on one replica.
    #[error("{0} changed through another replica since it was read; read it again")]
    Stale(String),
}

pub(super) fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Failed(e.to_string())
}

/// A record another replica changed: `record` is `None` when it was deleted.
#[derive(Debug, Clone)]
pub struct Changed {
    pub kind: Kind,
    pub id: String,
    pub record: Option<Vec<u8>>,
    /// Where the change stands in the store's order: passed back to [`Store::applied`].
    pub seq: i64,
}

/// One change of a [`Store::write`].
#[derive(Debug, Clone)]
pub enum Write {
    Put(Kind, String, Vec<u8>),
    Delete(Kind, String),
}

/// Records by kind and id. A write returns only once it is durable.
pub trait Store: Send + Sync {
    /// Several changes that land together or not at all.
    fn write(&self, batch: &[Write]) -> Result<(), StoreError>;
    fn all(&self, kind: Kind) -> Result<Vec<(String, Vec<u8>)>, StoreError>;

    fn put(&self, kind: Kind, id: &str, record: &[u8]) -> Result<(), StoreError> {
        self.write(&[Write::Put(kind, id.to_owned(), record.to_vec())])
    }

    fn delete(&self, kind: Kind, id: &str) -> Result<(), StoreError> {
        self.write(&[Write::Delete(kind, id.to_owned())])
    }

    /// Whether other replicas share the records (and so must be told of changes).
    fn shared(&self) -> bool {
        false
    }

    /// Changes other replicas make, in the order they were made; `None` for a store no other
    /// replica writes. Taken once.
    fn follow(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<Changed>> {
        None
    }

    /// A change [`Store::follow`] reported is now in force here, so a write of that record is
    /// checked against it. Called under the same lock as this replica's own writes of it, so
    /// a write can never pass its check against a version memory does not hold yet.
    fn applied(&self, _kind: Kind, _id: &str, _seq: i64) {}
}

pub struct RedbStore {
    db: Database,
}

impl RedbStore {
    /// Opens (or creates) `tollgate.redb` in `dir`, creating the directory if needed.
    pub fn open(dir: &Path) -> Result<RedbStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Failed(format!("cannot create {}: {e}", dir.display())))?;
        let path = dir.join("tollgate.redb");
        let db = Database::create(&path).map_err(|e| StoreError::Failed(format!("cannot open {}: {e}", path.display())))?;
        Ok(RedbStore { db })
    }
}

impl Store for RedbStore {
    fn write(&self, batch: &[Write]) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(err)?;
        for w in batch {
            match w {
                Write::Put(kind, id, record) => {
                    tx.open_table(kind.table()).map_err(err)?.insert(id.as_str(), record.as_slice()).map_err(err)?;
                }
                Write::Delete(kind, id) => {
                    tx.open_table(kind.table()).map_err(err)?.remove(id.as_str()).map_err(err)?;
                }
            }
        }
        tx.commit().map_err(err)
    }

    fn all(&self, kind: Kind) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let tx = self.db.begin_read().map_err(err)?;
        let table = match tx.open_table(kind.table()) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(err(e)),
        };
        let mut out = Vec::new();
        for row in table.iter().map_err(err)? {
            let (k, v) = row.map_err(err)?;
            out.push((k.value().to_owned(), v.value().to_vec()));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_reopening() {
        let dir = std::env::temp_dir().join(format!("tollgate-store-{}", std::process::id()));
        {
            let s = RedbStore::open(&dir).unwrap();
            s.put(Kind::Subscriptions, "a", b"one").unwrap();
            s.put(Kind::Subscriptions, "b", b"two").unwrap();
            s.delete(Kind::Subscriptions, "a").unwrap();
        }
        let s = RedbStore::open(&dir).unwrap();
        assert_eq!(s.all(Kind::Subscriptions).unwrap(), vec![("b".to_owned(), b"two".to_vec())]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_batch_lands_whole() {
        let dir = std::env::temp_dir().join(format!("tollgate-batch-{}", std::process::id()));
        {
            let s = RedbStore::open(&dir).unwrap();
            s.put(Kind::Chains, "docs", b"old chain").unwrap();
            s.write(&[Write::Put(Kind::Servers, "docs".into(), b"server".to_vec()), Write::Delete(Kind::Chains, "docs".into())]).unwrap();
        }
        let s = RedbStore::open(&dir).unwrap();
        assert_eq!(s.all(Kind::Servers).unwrap(), vec![("docs".to_owned(), b"server".to_vec())]);
        assert!(s.all(Kind::Chains).unwrap().is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
