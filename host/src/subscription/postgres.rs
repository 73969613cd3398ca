//! Management records in PostgreSQL, shared by every replica.
//!
//! One table, `tollgate_records (kind, id, record, seq)`: a deletion leaves its row with no
//! record, so replicas catching up see it. Writers take one advisory lock per transaction, so
//! `seq` (from a sequence, taken under the lock) orders changes as they committed; a replica
//! reads every row past the last `seq` it saw when told (`LISTEN`/`NOTIFY`), and once every few
//! seconds in case a notification was missed while its listening connection was down.
//!
//! Each replica remembers the `seq` of every record as it last read, wrote or applied it. A
//! write of a record that has changed since is refused ([`StoreError::Stale`]): two replicas changing one
//! record with the same ETag cannot both succeed, as two requests on one replica cannot.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_postgres::AsyncMessage;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::store::{Changed, Kind, Store, StoreError, Write, err};

/// Schema migrations, applied in order at start under the advisory lock; each runs once.
const MIGRATIONS: &[&str] = &[r"
CREATE TABLE tollgate_records (
    kind   text   NOT NULL,
    id     text   NOT NULL,
    record bytea,
    seq    bigint NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE INDEX tollgate_records_seq ON tollgate_records (seq);
CREATE SEQUENCE tollgate_seq;
"];

/// The advisory lock every writer (and the migrations) takes: "tollgate" in ASCII.
const LOCK: i64 = 0x746f_6c6c_6761_7465;
const CHANNEL: &str = "tollgate_records";
/// Bound on one statement or transaction: a database that hangs must not hang the API.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Catching up without a notification, in case one was missed.
const SWEEP: Duration = Duration::from_secs(5);

struct Seen {
    /// The highest `seq` this replica has read past.
    upto: AtomicI64,
    /// Each record's `seq` as this replica last read or wrote it.
    known: Mutex<HashMap<(Kind, String), i64>>,
}

pub struct PgStore {
    pool: Pool,
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    seen: Arc<Seen>,
    changes: Mutex<Option<mpsc::UnboundedReceiver<Changed>>>,
    tx: mpsc::UnboundedSender<Changed>,
    rt: tokio::runtime::Handle,
}

fn tls() -> MakeRustlsConnect {
    use tokio_rustls::rustls;
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    MakeRustlsConnect::new(config)
}

/// Never shows the URL: it may carry a password.
fn pg(e: tokio_postgres::Error) -> StoreError {
    let cause = std::error::Error::source(&e).map(|s| s.to_string());
    StoreError::Failed(format!("postgresql: {e}{}", cause.map(|c| format!(": {c}")).unwrap_or_default()))
}

async fn bounded<T>(what: &str, f: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
    tokio::time::timeout(TIMEOUT, f).await.unwrap_or_else(|_| Err(StoreError::Failed(format!("postgresql: {what} took longer than {} s", TIMEOUT.as_secs()))))
}

impl PgStore {
    /// Connects, migrates the schema, and notes where the change log stands. Must run in the
    /// runtime the store serves (its listener task is spawned there).
    pub async fn open(url: &str) -> Result<PgStore, StoreError> {
        let config: tokio_postgres::Config = url.parse().map_err(|_| StoreError::Failed("management.database is not a PostgreSQL URL".into()))?;
        let mut config = config;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        let tls = tls();
        let manager = Manager::from_config(config.clone(), tls.clone(), ManagerConfig { recycling_method: RecyclingMethod::Verified });
        let pool = Pool::builder(manager)
            .max_size(4)
            .wait_timeout(Some(TIMEOUT))
            .create_timeout(Some(TIMEOUT))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(err)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let store = PgStore {
            pool,
            config,
            tls,
            seen: Arc::new(Seen { upto: AtomicI64::new(0), known: Mutex::new(HashMap::new()) }),
            changes: Mutex::new(Some(rx)),
            tx,
            rt: tokio::runtime::Handle::current(),
        };
        bounded("migrating the schema", store.migrate()).await?;
        let upto = bounded("reading the change log", async {
            let c = store.pool.get().await.map_err(err)?;
            let row = c.query_one("SELECT coalesce(max(seq), 0) FROM tollgate_records", &[]).await.map_err(pg)?;
            Ok(row.get::<_, i64>(0))
        })
        .await?;
        store.seen.upto.store(upto, Ordering::Release);
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut c = self.pool.get().await.map_err(err)?;
        let tx = c.transaction().await.map_err(pg)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK]).await.map_err(pg)?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS tollgate_schema (version integer NOT NULL)").await.map_err(pg)?;
        let done: i64 = tx.query_one("SELECT count(*) FROM tollgate_schema", &[]).await.map_err(pg)?.get(0);
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(done as usize) {
            tx.batch_execute(sql).await.map_err(pg)?;
            tx.execute("INSERT INTO tollgate_schema (version) VALUES ($1)", &[&(i as i32 + 1)]).await.map_err(pg)?;
            tracing::info!(version = i + 1, "management database schema migrated");
        }
        tx.commit().await.map_err(pg)
    }

    /// Runs `f` to its end from a synchronous caller (the [`Store`] trait is called off the
    /// async workers, or once at start).
    fn block<T>(&self, f: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
        let f = bounded("a request", f);
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(|| self.rt.block_on(f)),
            _ => self.rt.block_on(f),
        }
    }

    async fn write_batch(&self, batch: &[Write]) -> Result<(), StoreError> {
        let mut c = self.pool.get().await.map_err(err)?;
        let tx = c.transaction().await.map_err(pg)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK]).await.map_err(pg)?;
        let mut wrote = Vec::new();
        for w in batch {
            let (kind, id, record) = match w {
                Write::Put(k, id, r) => (*k, id, Some(r.as_slice())),
                Write::Delete(k, id) => (*k, id, None),
            };
            let current: Option<i64> =
                tx.query_opt("SELECT seq FROM tollgate_records WHERE kind = $1 AND id = $2", &[&kind.name(), id]).await.map_err(pg)?.map(|r| r.get(0));
            let known = self.seen.known.lock().expect("known lock").get(&(kind, id.clone())).copied();
            if current != known {
                return Err(StoreError::Stale(format!("{} '{id}'", kind.name())));
            }
            let seq: i64 = tx.query_one("SELECT nextval('tollgate_seq')", &[]).await.map_err(pg)?.get(0);
            tx.execute(
                "INSERT INTO tollgate_records (kind, id, record, seq) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (kind, id) DO UPDATE SET record = EXCLUDED.record, seq = EXCLUDED.seq",
                &[&kind.name(), id, &record, &seq],
            )
            .await
            .map_err(pg)?;
            wrote.push(((kind, id.clone()), seq));
        }
        tx.execute("SELECT pg_notify($1, '')", &[&CHANNEL]).await.map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        self.seen.known.lock().expect("known lock").extend(wrote);
        Ok(())
    }

    async fn rows(&self, kind: Kind) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let c = self.pool.get().await.map_err(err)?;
        let rows = c.query("SELECT id, record, seq FROM tollgate_records WHERE kind = $1 ORDER BY id", &[&kind.name()]).await.map_err(pg)?;
        let mut known = self.seen.known.lock().expect("known lock");
        let mut out = Vec::new();
        for r in rows {
            let (id, record, seq): (String, Option<Vec<u8>>, i64) = (r.get(0), r.get(1), r.get(2));
            known.insert((kind, id.clone()), seq);
            if let Some(record) = record {
                out.push((id, record));
            }
        }
        Ok(out)
    }

    /// Starts following other replicas' changes: a connection that listens, reconnecting
    /// when it drops, and a sweep every few seconds.
    fn listen(&self) {
        let (config, tls, pool, seen, tx) = (self.config.clone(), self.tls.clone(), self.pool.clone(), self.seen.clone(), self.tx.clone());
        self.rt.spawn(async move {
            let (wake_tx, mut wake) = mpsc::unbounded_channel::<()>();
            tokio::spawn(listener(config, tls, wake_tx));
            loop {
                if let Err(e) = catch_up(&pool, &seen, &tx).await {
                    tracing::warn!(error = %e, "cannot read the management database's changes; retrying");
                }
                if tx.is_closed() {
                    return;
                }
                let _ = tokio::time::timeout(SWEEP, wake.recv()).await;
            }
        });
    }
}

/// Holds a `LISTEN` connection, waking the catcher-up on each notification and on each new
/// connection (a notification may have been missed while there was none).
async fn listener(config: tokio_postgres::Config, tls: MakeRustlsConnect, wake: mpsc::UnboundedSender<()>) {
    let mut down_since: Option<std::time::Instant> = None;
    while !wake.is_closed() {
        match config.connect(tls.clone()).await {
            Ok((client, mut connection)) => {
                let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
                let listening = async {
                    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
                    Ok::<_, tokio_postgres::Error>(())
                };
                // The connection must be polled for LISTEN to complete.
                let mut listening = std::pin::pin!(listening);
                let ok = loop {
                    tokio::select! {
                        r = &mut listening => break r.is_ok(),
                        m = messages.next() => if m.is_none() { break false },
                    }
                };
                if ok {
                    if down_since.take().is_some() {
                        tracing::info!("following the management database's changes again");
                    }
                    let _ = wake.send(());
                    while let Some(m) = messages.next().await {
                        match m {
                            Ok(AsyncMessage::Notification(_)) => {
                                let _ = wake.send(());
                            }
                            Ok(_) => {}
                            Err(_) => break,
                        }
                    }
                }
            }
            Err(e) => {
                if down_since.is_none() {
                    tracing::warn!(error = %pg(e), "cannot listen for the management database's changes; retrying");
                }
            }
        }
        down_since.get_or_insert_with(std::time::Instant::now);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Sends every change past `seen.upto` that this replica did not make or read itself, once.
async fn catch_up(pool: &Pool, seen: &Seen, tx: &mpsc::UnboundedSender<Changed>) -> Result<(), StoreError> {
    let upto = seen.upto.load(Ordering::Acquire);
    let rows = bounded("reading changes", async {
        let c = pool.get().await.map_err(err)?;
        c.query("SELECT kind, id, record, seq FROM tollgate_records WHERE seq > $1 ORDER BY seq", &[&upto]).await.map_err(pg)
    })
    .await?;
    for r in rows {
        let (kind, id, record, seq): (String, String, Option<Vec<u8>>, i64) = (r.get(0), r.get(1), r.get(2), r.get(3));
        seen.upto.fetch_max(seq, Ordering::AcqRel);
        let Some(kind) = Kind::from_name(&kind) else { continue };
        // This replica's own write, or one it read already. What it has not applied yet stays
        // unknown until it is: see [`Store::applied`].
        if seen.known.lock().expect("known lock").get(&(kind, id.clone())).is_some_and(|k| *k >= seq) {
            continue;
        }
        let _ = tx.send(Changed { kind, id, record, seq });
    }
    Ok(())
}

impl Store for PgStore {
    fn write(&self, batch: &[Write]) -> Result<(), StoreError> {
        self.block(self.write_batch(batch))
    }

    fn all(&self, kind: Kind) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.block(self.rows(kind))
    }

    fn shared(&self) -> bool {
        true
    }

    fn applied(&self, kind: Kind, id: &str, seq: i64) {
        let mut known = self.seen.known.lock().expect("known lock");
        let k = known.entry((kind, id.to_owned())).or_insert(seq);
        *k = (*k).max(seq);
    }

    fn follow(&self) -> Option<mpsc::UnboundedReceiver<Changed>> {
        let rx = self.changes.lock().expect("changes lock").take()?;
        self.listen();
        Some(rx)
    }
}
