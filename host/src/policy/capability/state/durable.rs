//! The embedded store kept across restarts: lasting entries ([`super::LASTING`] or more to
//! live: quota periods, fetched keys, cached tokens) are written to `<data_dir>/state.redb`
//! once a second and at shutdown, and read back at start. A `kill -9` loses at most the
//! last second of changes; short-lived entries (rate-limit windows, locks) stay in memory.
//!
//! Written behind rather than through: a quota counts every call, and an fsync per call
//! would cost more than the rest of the chain.

use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::MemoryStore;

/// Key -> 8 bytes of expiry (Unix ms, big-endian; 0 for none), then the value.
const TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("state");

/// How often changes reach the disk.
const EVERY: Duration = Duration::from_secs(1);

struct Keeper {
    db: Database,
    store: Arc<MemoryStore>,
    /// One writer at a time: the ticker or the final flush.
    writing: Mutex<()>,
}

static KEEPER: OnceLock<Arc<Keeper>> = OnceLock::new();

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Opens (or creates) the file, loads what is still live into a new journaled store, and
/// starts writing its changes.
pub fn open(dir: &Path, budget: usize) -> Result<Arc<MemoryStore>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join("state.redb");
    owner_only(&path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    let db = Database::create(&path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let store = Arc::new(MemoryStore::journaled(budget));
    let (loaded, dropped) = load(&db, &store).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    tracing::info!(file = %path.display(), loaded, dropped, "policy state kept across restarts");
    let keeper = Arc::new(Keeper { db, store: store.clone(), writing: Mutex::new(()) });
    let _ = KEEPER.set(keeper.clone());
    std::thread::Builder::new()
        .name("policy-state-keeper".into())
        .spawn(move || {
            loop {
                std::thread::sleep(EVERY);
                if let Err(e) = keeper.write() {
                    tracing::warn!(error = %e, "cannot keep policy state on disk; retrying");
                }
            }
        })
        .map_err(|e| format!("cannot start the state keeper: {e}"))?;
    Ok(store)
}

/// The file may hold cached tokens: readable and writable by this user alone.
#[cfg(unix)]
fn owner_only(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn owner_only(_: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Writes what changed since the last write: at shutdown, so a restart loses nothing.
pub fn flush() {
    if let Some(k) = KEEPER.get()
        && let Err(e) = k.write()
    {
        tracing::warn!(error = %e, "cannot keep policy state on disk");
    }
}

/// Entries still live go into the store; expired ones leave the file.
fn load(db: &Database, store: &MemoryStore) -> Result<(usize, usize), redb::Error> {
    let now = unix_ms(SystemTime::now());
    let mut expired = Vec::new();
    let mut loaded = 0;
    {
        let tx = db.begin_read()?;
        let table = match tx.open_table(TABLE) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok((0, 0)),
            Err(e) => return Err(e.into()),
        };
        for row in table.iter()? {
            let (k, v) = row?;
            let (k, v) = (k.value(), v.value());
            let Some((at, value)) = v.split_first_chunk::<8>() else {
                expired.push(k.to_owned());
                continue;
            };
            let at = u64::from_be_bytes(*at);
            if at != 0 && at <= now {
                expired.push(k.to_owned());
                continue;
            }
            let left = (at != 0).then(|| Duration::from_millis(at - now));
            store.restore(k.to_owned(), value.to_vec(), left);
            loaded += 1;
        }
    }
    if !expired.is_empty() {
        let tx = db.begin_write()?;
        {
            let mut t = tx.open_table(TABLE)?;
            for k in &expired {
                t.remove(k.as_str())?;
            }
        }
        tx.commit()?;
    }
    Ok((loaded, expired.len()))
}

impl Keeper {
    fn write(&self) -> Result<(), redb::Error> {
        let _one = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        let keys = self.store.take_journal();
        if keys.is_empty() {
            return Ok(());
        }
        let now = SystemTime::now();
        let tx = self.db.begin_write()?;
        {
            let mut t = tx.open_table(TABLE)?;
            for k in &keys {
                match self.store.read(k) {
                    Some((value, left)) => {
                        let at = left.map_or(0, |l| unix_ms(now + l).max(1));
                        let mut row = Vec::with_capacity(8 + value.len());
                        row.extend_from_slice(&at.to_be_bytes());
                        row.extend_from_slice(&value);
                        t.insert(k.as_str(), row.as_slice())?;
                    }
                    None => {
                        t.remove(k.as_str())?;
                    }
                }
            }
        }
        tx.commit()
            .inspect_err(|_| {
                // Not written: noted again, so the next tick tries them.
                for k in keys {
                    self.store.renote(k);
                }
            })
            .map_err(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::capability::state::StateStore;

    #[tokio::test]
    async fn lasting_entries_come_back_and_short_ones_do_not() {
        let dir = std::env::temp_dir().join(format!("tollgate-state-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        {
            let db = Database::create(dir.join("state.redb")).unwrap();
            let store = Arc::new(MemoryStore::journaled(1 << 20));
            let k = Keeper { db, store: store.clone(), writing: Mutex::new(()) };
            store.incr("quota", 3, Some(Duration::from_secs(86_400))).await.unwrap();
            store.set("jwks", b"keys".to_vec(), None).await.unwrap();
            store.incr("window", 1, Some(Duration::from_secs(10))).await.unwrap();
            store.set("gone", b"x".to_vec(), None).await.unwrap();
            k.write().unwrap();
            store.delete("gone").await.unwrap();
            store.incr("quota", 2, None).await.unwrap();
            k.write().unwrap();
        }
        let db = Database::create(dir.join("state.redb")).unwrap();
        let store = MemoryStore::journaled(1 << 20);
        assert_eq!(load(&db, &store).unwrap(), (2, 0));
        assert_eq!(store.get("quota").await, Ok(Some(b"5".to_vec())));
        let (_, left) = store.read("quota").unwrap();
        assert!(left.is_some_and(|l| l > Duration::from_secs(86_000)), "the period's end is kept: {left:?}");
        assert_eq!(store.get("jwks").await, Ok(Some(b"keys".to_vec())));
        assert_eq!(store.get("window").await, Ok(None), "a short window is not kept");
        assert_eq!(store.get("gone").await, Ok(None), "a deletion reaches the disk");
        assert!(store.take_journal().is_empty(), "what was loaded is not written back");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
