//! One lease on the object store: acquire, renew, reclaim, release.
//!
//! ```text
//!  acquire:  no claim ─────────────────────────────▶ create claim 1
//!            latest claim E released or stopped ───▶ create claim E+1
//!            beat of E unchanged for --node-lease-timeout (watched) ─▶ create claim E+1
//!            beat of E changes while watched ─▶ Refuse: error naming the holder
//!                                             Wait:   watch again (a standby)
//!  holder, every heartbeat:
//!            a claim after E, or E stopped ─▶ lost
//!            otherwise rewrite beat E ─▶ valid for half a timeout from the renewal's start
//!            renewals failing past that ─▶ create claim E+1 itself (nobody took it) or lost
//! ```
//!
//! A claim is created with `PutMode::Create`, so of two contenders for one
//! epoch exactly one wins. The beat is a plain overwrite that only its
//! epoch's holder writes. Contenders never read the beat's wall-clock time:
//! they take over after watching it stay unchanged for the whole timeout,
//! and a holder counts itself valid only for half a timeout after a renewal
//! began, so the two never act at once whatever their clocks say.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use futures::future::BoxFuture;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use uuid::Uuid;

/// How often a holder renews, and how long a silent holder keeps its lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTiming {
    /// `--node-heartbeat-interval`: one renewal (a LIST and a PUT) each.
    pub heartbeat: Duration,
    /// `--node-lease-timeout`: how long a contender watches an unchanged
    /// beat before it takes over. A holder stops acting after half of it
    /// without a successful renewal.
    pub timeout: Duration,
}

impl LeaseTiming {
    fn validity(&self) -> Duration {
        self.timeout / 2
    }

    fn poll(&self) -> Duration {
        (self.heartbeat / 2).max(Duration::from_millis(10))
    }
}

/// Who holds a lease: the node registry's entry for a process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// Unique per process start.
    pub instance_id: Uuid,
    /// `--node-id`.
    pub node_id: String,
    /// What the process does: `ingest`, `query`, `compact`.
    pub roles: Vec<String>,
    /// Where its HTTP API is reached (`--advertise-address`).
    pub address: String,
    /// When the process started, in ns since the epoch.
    pub started_at_ns: i64,
    /// Its process id.
    pub pid: u32,
    /// Its host name (the pod name on Kubernetes).
    pub hostname: String,
    /// CPU cores it may use.
    pub core_count: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Claim {
    pub(crate) epoch: u64,
    pub(crate) claimed_at_ns: i64,
    pub(crate) holder: Holder,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Beat {
    pub(crate) epoch: u64,
    pub(crate) instance_id: Uuid,
    /// Renewals so far; a watcher sees a live holder by this changing.
    pub(crate) count: u64,
    pub(crate) at_ns: i64,
    /// Set by a holder that let go on shutdown: take over at once.
    #[serde(default)]
    pub(crate) released: bool,
}

/// What a contender does while a live process holds the lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contention {
    /// Fail with [`LeaseError::Held`] (a node id: two live processes with
    /// one id are a misconfiguration).
    Refuse,
    /// Keep watching and take over once the holder is gone (a standby
    /// compactor).
    Wait,
}

/// Why a lease could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// The object store failed.
    #[error("lease object store error: {0}")]
    ObjectStore(#[from] object_store::Error),
    /// A lease object does not decode.
    #[error("lease object {path} is corrupt: {reason}; delete it if no process holds that lease")]
    Corrupt {
        /// The object.
        path: String,
        /// What failed.
        reason: String,
    },
    /// A live process holds it.
    #[error(
        "lease '{name}' is held by a live process: node {} ({}) at {}, pid {} on {}, started {}; \
         stop it first, or give this process another --node-id",
        holder.node_id, holder.roles.join(","), holder.address, holder.pid, holder.hostname, format_ns(holder.started_at_ns)
    )]
    Held {
        /// The lease.
        name: String,
        /// Its live holder.
        holder: Box<Holder>,
    },
    /// The first epoch could not be fenced in the catalog.
    #[error("lease '{name}': {reason}")]
    Fence {
        /// The lease.
        name: String,
        /// What failed.
        reason: String,
    },
}

pub(crate) fn format_ns(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    format!("{secs} s after the Unix epoch")
}

pub(crate) fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Called with each epoch the process takes before it acts under it: the
/// catalog records it (`TakeLease`), so writes of an older epoch are refused.
pub type EpochHook = Arc<dyn Fn(u64) -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// What a watcher compares: the latest epoch and its beat's count and time.
type Signature = (Option<u64>, Option<(u64, i64)>);

/// The objects of one lease directory, as read at one moment.
#[derive(Debug, Default)]
pub(crate) struct Observed {
    pub(crate) epoch: Option<u64>,
    pub(crate) claim: Option<Claim>,
    pub(crate) beat: Option<Beat>,
    pub(crate) stopped: bool,
    /// Objects of earlier epochs (left for the next holder to delete).
    pub(crate) older: Vec<Path>,
}

impl Observed {
    /// The holder let go, or the node was marked stopped.
    pub(crate) fn ended(&self) -> bool {
        self.stopped || self.beat.as_ref().is_some_and(|b| b.released)
    }

    /// What changes while the holder lives.
    fn signature(&self) -> Signature {
        (self.epoch, self.beat.as_ref().map(|b| (b.count, b.at_ns)))
    }
}

fn object(dir: &Path, epoch: u64, kind: &str) -> Path {
    dir.clone().join(format!("{epoch:020}.{kind}").as_str())
}

fn parse_name(name: &str) -> Option<(u64, &str)> {
    let (epoch, kind) = name.split_once('.')?;
    Some((epoch.parse().ok()?, kind))
}

async fn get_json<T: serde::de::DeserializeOwned>(
    store: &dyn ObjectStore,
    path: &Path,
) -> Result<Option<T>, LeaseError> {
    let bytes = match store.get(path).await {
        Ok(r) => r.bytes().await?,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| LeaseError::Corrupt {
            path: path.to_string(),
            reason: e.to_string(),
        })
}

fn to_json<T: Serialize>(value: &T) -> PutPayload {
    // Plain structs of strings and numbers: serialising cannot fail.
    PutPayload::from(serde_json::to_vec(value).unwrap_or_default())
}

/// Reads a lease directory: its latest claim, that claim's beat and stop.
pub(crate) async fn observe(store: &dyn ObjectStore, dir: &Path) -> Result<Observed, LeaseError> {
    // A new holder deletes older epochs' objects; one read may race that.
    for _ in 0..3 {
        let metas: Vec<_> = store.list(Some(dir)).try_collect().await?;
        let mut entries: Vec<(u64, String, Path)> = metas
            .into_iter()
            .filter_map(|m| {
                let (epoch, kind) = parse_name(m.location.filename()?)?;
                Some((epoch, kind.to_string(), m.location.clone()))
            })
            .collect();
        let Some(epoch) = entries
            .iter()
            .filter(|(_, k, _)| k == "claim")
            .map(|(e, _, _)| *e)
            .max()
        else {
            return Ok(Observed::default());
        };
        let Some(claim) = get_json::<Claim>(store, &object(dir, epoch, "claim")).await? else {
            continue;
        };
        let beat = get_json::<Beat>(store, &object(dir, epoch, "beat")).await?;
        let stopped = entries.iter().any(|(e, k, _)| *e == epoch && k == "stop");
        entries.retain(|(e, _, _)| *e < epoch);
        return Ok(Observed {
            epoch: Some(epoch),
            claim: Some(claim),
            beat: beat.filter(|b| b.epoch == epoch),
            stopped,
            older: entries.into_iter().map(|(_, _, p)| p).collect(),
        });
    }
    Err(LeaseError::Corrupt {
        path: dir.to_string(),
        reason: "its latest claim disappears while it is read".into(),
    })
}

/// Where the objects of lease `name` live.
pub(crate) fn lease_dir(prefix: &Path, name: &str) -> Path {
    prefix.clone().join("catalog").join("leases").join(name)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Status {
    Held,
    Lost(String),
    Released,
}

/// A held lease. Renewed in the background until released or lost.
pub struct Lease {
    shared: Arc<Shared>,
    renewer: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("name", &self.shared.name)
            .field("epoch", &self.epoch())
            .finish_non_exhaustive()
    }
}

struct Shared {
    store: Arc<dyn ObjectStore>,
    dir: Path,
    name: String,
    holder: Holder,
    timing: LeaseTiming,
    epoch: AtomicU64,
    /// The epoch the hook has recorded (the catalog fences with it).
    fenced: AtomicU64,
    count: AtomicU64,
    /// When the last successful renewal began.
    renewed: Mutex<Instant>,
    status: watch::Sender<Status>,
    hook: Option<EpochHook>,
}

impl Shared {
    fn renewed(&self) -> Instant {
        *self.renewed.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set_renewed(&self, at: Instant) {
        *self.renewed.lock().unwrap_or_else(|p| p.into_inner()) = at;
    }

    fn is_valid(&self) -> bool {
        *self.status.borrow() == Status::Held
            && self.renewed().elapsed() < self.timing.validity()
            && (self.hook.is_none()
                || self.fenced.load(Ordering::Acquire) == self.epoch.load(Ordering::Acquire))
    }

    fn lose(&self, why: String) {
        tracing::error!(lease = %self.name, epoch = self.epoch.load(Ordering::Acquire), reason = %why, "lease lost");
        self.status.send_replace(Status::Lost(why));
    }

    async fn write_beat(&self, epoch: u64, released: bool) -> Result<(), object_store::Error> {
        let beat = Beat {
            epoch,
            instance_id: self.holder.instance_id,
            count: self.count.fetch_add(1, Ordering::AcqRel) + 1,
            at_ns: now_ns(),
            released,
        };
        self.store
            .put(&object(&self.dir, epoch, "beat"), to_json(&beat))
            .await
            .map(|_| ())
    }

    /// Creates claim `epoch`; false if another process created it first.
    async fn create_claim(&self, epoch: u64) -> Result<bool, object_store::Error> {
        let claim = Claim {
            epoch,
            claimed_at_ns: now_ns(),
            holder: self.holder.clone(),
        };
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        let path = object(&self.dir, epoch, "claim");
        match self.store.put_opts(&path, to_json(&claim), opts).await {
            Ok(_) => Ok(true),
            // Ours, if an earlier attempt of this PUT was stored but
            // reported failed (the client retried it).
            Err(object_store::Error::AlreadyExists { .. }) => {
                let stored = self.store.get(&path).await?.bytes().await?;
                Ok(serde_json::from_slice::<Claim>(&stored)
                    .is_ok_and(|c| c.holder.instance_id == self.holder.instance_id))
            }
            Err(e) => Err(e),
        }
    }

    async fn fence(&self, epoch: u64) -> Result<(), String> {
        if let Some(hook) = &self.hook {
            hook(epoch).await?;
        }
        self.fenced.store(epoch, Ordering::Release);
        Ok(())
    }

    /// One heartbeat.
    async fn renew(&self) {
        let started = Instant::now();
        let epoch = self.epoch.load(Ordering::Acquire);
        if self.renewed().elapsed() >= self.timing.validity() {
            // Past our own validity a contender may be watching the beat
            // lapse; the next epoch goes to whichever of us creates it.
            match self.create_claim(epoch + 1).await {
                Ok(true) => {
                    self.epoch.store(epoch + 1, Ordering::Release);
                    if let Err(e) = self.write_beat(epoch + 1, false).await {
                        tracing::warn!(lease = %self.name, error = %e, "could not write the beat of a reclaimed lease");
                        return;
                    }
                    tracing::warn!(lease = %self.name, epoch = epoch + 1, "renewals had failed; lease reclaimed");
                    self.set_renewed(started);
                    // Valid again only once the new epoch is recorded: do it
                    // now, not a heartbeat later (writers are waiting).
                    if let Err(e) = self.fence(epoch + 1).await {
                        tracing::warn!(lease = %self.name, error = %e, "could not record the reclaimed epoch; retrying");
                    }
                }
                Ok(false) => self.lose(format!(
                    "another process took lease '{}' while renewals failed",
                    self.name
                )),
                Err(e) => {
                    tracing::warn!(lease = %self.name, error = %e, "lease renewal failed; retrying")
                }
            }
            return;
        }
        let observed = match observe(self.store.as_ref(), &self.dir).await {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(lease = %self.name, error = %e, "lease renewal failed; retrying");
                return;
            }
        };
        if let (Some(latest), Some(claim)) = (observed.epoch, &observed.claim)
            && latest > epoch
        {
            let h = &claim.holder;
            return self.lose(format!(
                "lease '{}' was taken by node {} at {} (pid {} on {})",
                self.name, h.node_id, h.address, h.pid, h.hostname
            ));
        }
        if observed.epoch == Some(epoch) && observed.stopped {
            return self.lose(format!("node of lease '{}' was marked stopped", self.name));
        }
        match self.write_beat(epoch, false).await {
            Ok(()) => self.set_renewed(started),
            Err(e) => {
                tracing::warn!(lease = %self.name, error = %e, "lease renewal failed; retrying")
            }
        }
        if self.fenced.load(Ordering::Acquire) != epoch
            && let Err(e) = self.fence(epoch).await
        {
            tracing::warn!(lease = %self.name, epoch, error = %e, "could not record the lease epoch; retrying");
        }
    }
}

impl Lease {
    /// Takes lease `name` under `prefix` for `holder`, waiting while a
    /// former holder's lease lapses (and, with [`Contention::Wait`], while a
    /// live one holds it). `hook` runs for every epoch taken, before the
    /// lease counts as valid; if it fails for the first, the lease is
    /// released and the error returned.
    pub async fn acquire(
        store: Arc<dyn ObjectStore>,
        prefix: &Path,
        name: &str,
        holder: Holder,
        timing: LeaseTiming,
        contention: Contention,
        hook: Option<EpochHook>,
    ) -> Result<Arc<Lease>, LeaseError> {
        let dir = lease_dir(prefix, name);
        let (status, _) = watch::channel(Status::Held);
        let shared = Arc::new(Shared {
            store,
            dir,
            name: name.to_string(),
            holder,
            timing,
            epoch: AtomicU64::new(0),
            fenced: AtomicU64::new(0),
            count: AtomicU64::new(0),
            renewed: Mutex::new(Instant::now()),
            status,
            hook,
        });
        let epoch = take(&shared, contention).await?;
        let lease = Arc::new(Lease {
            shared: Arc::clone(&shared),
            renewer: Mutex::new(None),
        });
        if let Err(reason) = shared.fence(epoch).await {
            lease.release().await;
            return Err(LeaseError::Fence {
                name: name.to_string(),
                reason,
            });
        }
        let renewing = Arc::clone(&shared);
        let task = tokio::spawn(async move {
            let mut tick =
                tokio::time::interval(renewing.timing.heartbeat.max(Duration::from_millis(10)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                if *renewing.status.borrow() != Status::Held {
                    return;
                }
                renewing.renew().await;
            }
        });
        *lease.renewer.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
        Ok(lease)
    }

    /// The lease's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The epoch held now.
    pub fn epoch(&self) -> u64 {
        self.shared.epoch.load(Ordering::Acquire)
    }

    /// Whether the process may act under the lease now: held, renewed
    /// within half the timeout, and its epoch recorded.
    pub fn is_valid(&self) -> bool {
        self.shared.is_valid()
    }

    /// Waits up to `max` for the lease to be valid (renewals may be
    /// catching up); false if it is lost or still not valid.
    pub async fn wait_valid(&self, max: Duration) -> bool {
        let deadline = Instant::now() + max;
        loop {
            if self.is_valid() {
                return true;
            }
            if *self.shared.status.borrow() != Status::Held || Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Completes when the lease is lost, with the reason. Never completes
    /// for a lease that is released instead.
    pub async fn lost(&self) -> String {
        let mut rx = self.shared.status.subscribe();
        loop {
            if let Status::Lost(why) = &*rx.borrow_and_update() {
                return why.clone();
            }
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Stops renewing and marks the lease released, so the next holder
    /// takes it at once (a graceful shutdown).
    pub async fn release(&self) {
        if let Some(task) = self
            .renewer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            task.abort();
        }
        let was_held = self.shared.status.send_replace(Status::Released) == Status::Held;
        if was_held {
            let epoch = self.epoch();
            match self.shared.write_beat(epoch, true).await {
                Ok(()) => tracing::info!(lease = %self.shared.name, epoch, "lease released"),
                Err(e) => {
                    tracing::warn!(lease = %self.shared.name, error = %e, "could not release the lease; it lapses after the timeout")
                }
            }
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(task) = self
            .renewer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            task.abort();
        }
    }
}

/// The acquisition loop: returns the epoch taken.
async fn take(shared: &Shared, contention: Contention) -> Result<u64, LeaseError> {
    let store = shared.store.as_ref();
    let timing = shared.timing;
    let mut watching: Option<(Signature, Instant)> = None;
    loop {
        let observed = observe(store, &shared.dir).await?;
        let next = match observed.epoch {
            None => Some(1),
            Some(e) if observed.ended() => Some(e + 1),
            Some(e) => {
                let sig = observed.signature();
                match &watching {
                    Some((s, since)) if *s == sig => {
                        (since.elapsed() >= timing.timeout).then_some(e + 1)
                    }
                    Some(_) => {
                        let holder = observed.claim.map(|c| c.holder);
                        match (contention, holder) {
                            (Contention::Refuse, Some(holder)) => {
                                return Err(LeaseError::Held {
                                    name: shared.name.clone(),
                                    holder: Box::new(holder),
                                });
                            }
                            _ => watching = Some((sig, Instant::now())),
                        }
                        None
                    }
                    None => {
                        if let Some(c) = &observed.claim {
                            tracing::info!(
                                lease = %shared.name,
                                holder = %c.holder.node_id,
                                address = %c.holder.address,
                                pid = c.holder.pid,
                                timeout_ms = timing.timeout.as_millis() as u64,
                                "lease held; waiting to see whether its holder is alive"
                            );
                        }
                        watching = Some((sig, Instant::now()));
                        None
                    }
                }
            }
        };
        if let Some(epoch) = next {
            if shared.create_claim(epoch).await? {
                shared.epoch.store(epoch, Ordering::Release);
                shared.write_beat(epoch, false).await?;
                shared.set_renewed(Instant::now());
                for path in observed.older.iter().chain(
                    observed
                        .epoch
                        .map(|e| object(&shared.dir, e, "claim"))
                        .iter(),
                ) {
                    let _ = store.delete(path).await;
                }
                if let Some(e) = observed.epoch {
                    for kind in ["beat", "stop"] {
                        let _ = store.delete(&object(&shared.dir, e, kind)).await;
                    }
                }
                tracing::info!(lease = %shared.name, epoch, "lease taken");
                return Ok(epoch);
            }
            watching = None;
            continue;
        }
        tokio::time::sleep(timing.poll()).await;
    }
}

/// Marks the latest epoch of lease `name` stopped: its holder (if it still
/// runs) stops at its next heartbeat, and the next holder need not wait.
/// Returns the holder, or `None` if the lease was never taken.
pub(crate) async fn stop(
    store: &dyn ObjectStore,
    prefix: &Path,
    name: &str,
) -> Result<Option<Holder>, LeaseError> {
    let dir = lease_dir(prefix, name);
    let observed = observe(store, &dir).await?;
    let (Some(epoch), Some(claim)) = (observed.epoch, observed.claim) else {
        return Ok(None);
    };
    let opts = PutOptions {
        mode: PutMode::Create,
        ..Default::default()
    };
    let marker = serde_json::json!({"epoch": epoch, "at_ns": now_ns()});
    match store
        .put_opts(&object(&dir, epoch, "stop"), to_json(&marker), opts)
        .await
    {
        Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => Ok(Some(claim.holder)),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use object_store::local::LocalFileSystem;
    use object_store::memory::InMemory;

    const FAST: LeaseTiming = LeaseTiming {
        heartbeat: Duration::from_millis(20),
        timeout: Duration::from_millis(200),
    };

    fn holder(node: &str) -> Holder {
        Holder {
            instance_id: Uuid::new_v4(),
            node_id: node.to_string(),
            roles: vec!["ingest".into()],
            address: "127.0.0.1:1".into(),
            started_at_ns: now_ns(),
            pid: 1,
            hostname: "test".into(),
            core_count: 1,
        }
    }

    async fn take_lease(
        store: &Arc<dyn ObjectStore>,
        contention: Contention,
    ) -> Result<Arc<Lease>, LeaseError> {
        Lease::acquire(
            Arc::clone(store),
            &Path::default(),
            "node-a",
            holder("a"),
            FAST,
            contention,
            None,
        )
        .await
    }

    fn stores() -> Vec<(Arc<dyn ObjectStore>, Option<tempfile::TempDir>)> {
        let dir = tempfile::tempdir().unwrap();
        let local: Arc<dyn ObjectStore> =
            Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap());
        vec![(Arc::new(InMemory::new()), None), (local, Some(dir))]
    }

    /// A live holder keeps the lease; a second contender is refused within
    /// a few heartbeats, naming the holder.
    #[tokio::test]
    async fn a_live_holder_refuses_a_second() {
        for (store, _dir) in stores() {
            let first = take_lease(&store, Contention::Refuse).await.unwrap();
            assert_eq!(first.epoch(), 1);
            assert!(first.is_valid());
            let started = Instant::now();
            let err = take_lease(&store, Contention::Refuse).await.unwrap_err();
            assert!(
                started.elapsed() < FAST.timeout,
                "refused before the timeout"
            );
            assert!(matches!(err, LeaseError::Held { .. }), "{err}");
            assert!(err.to_string().contains("node a"), "{err}");
            assert!(first.is_valid(), "the holder keeps it");
        }
    }

    /// A holder that stops renewing (killed) is replaced after the timeout;
    /// a released one at once.
    #[tokio::test]
    async fn lapsed_and_released_leases_are_taken_over() {
        for (store, _dir) in stores() {
            let dead = take_lease(&store, Contention::Refuse).await.unwrap();
            drop(dead); // stops renewing, like kill -9
            let started = Instant::now();
            let next = take_lease(&store, Contention::Refuse).await.unwrap();
            assert!(started.elapsed() >= FAST.timeout, "waited out the timeout");
            assert_eq!(next.epoch(), 2);
            next.release().await;
            let started = Instant::now();
            let third = take_lease(&store, Contention::Refuse).await.unwrap();
            assert!(
                started.elapsed() < FAST.timeout,
                "a released lease is taken at once"
            );
            assert_eq!(third.epoch(), 3);
            // Older epochs' objects are cleaned up.
            let objects: Vec<_> = store.list(None).try_collect().await.unwrap();
            assert!(
                objects.iter().all(|m| m
                    .location
                    .filename()
                    .unwrap()
                    .starts_with("00000000000000000003")),
                "{objects:?}"
            );
        }
    }

    /// A holder that was taken over notices at its next renewal and is
    /// lost; it was already invalid before the new holder took over.
    #[tokio::test]
    async fn a_taken_over_holder_loses_and_a_standby_takes_over() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let first = take_lease(&store, Contention::Refuse).await.unwrap();
        // A standby waits while the holder lives.
        let standby = tokio::spawn({
            let store = Arc::clone(&store);
            async move { take_lease(&store, Contention::Wait).await.unwrap() }
        });
        tokio::time::sleep(FAST.timeout * 2).await;
        assert!(
            !standby.is_finished(),
            "a standby waits while the holder renews"
        );
        // Pause renewals: the holder goes invalid, then the standby takes over.
        if let Some(task) = first.renewer.lock().unwrap().take() {
            task.abort();
        }
        let second = standby.await.unwrap();
        assert!(!first.is_valid(), "the silent holder stopped acting first");
        assert_eq!(second.epoch(), 2);
        // Renewing again, the former holder sees the new claim.
        first.shared.set_renewed(Instant::now());
        first.shared.renew().await;
        let why = tokio::time::timeout(Duration::from_secs(1), first.lost())
            .await
            .unwrap();
        assert!(why.contains("taken by node a"), "{why}");
        assert!(second.is_valid());
    }

    /// A holder whose renewals failed for a while, with nobody taking over,
    /// takes the next epoch itself; a stop marker ends a lease.
    #[tokio::test]
    async fn reclaim_after_failed_renewals_and_stop() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let lease = take_lease(&store, Contention::Refuse).await.unwrap();
        lease.shared.set_renewed(Instant::now() - FAST.timeout);
        assert!(!lease.is_valid());
        assert!(lease.wait_valid(FAST.timeout).await, "reclaimed");
        assert_eq!(lease.epoch(), 2);
        let stopped = stop(store.as_ref(), &Path::default(), "node-a")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stopped.node_id, "a");
        let why = tokio::time::timeout(Duration::from_secs(1), lease.lost())
            .await
            .unwrap();
        assert!(why.contains("marked stopped"), "{why}");
        let started = Instant::now();
        let next = take_lease(&store, Contention::Refuse).await.unwrap();
        assert!(
            started.elapsed() < FAST.timeout,
            "a stopped node's lease is free at once"
        );
        assert_eq!(next.epoch(), 3);
        assert!(
            stop(store.as_ref(), &Path::default(), "node-b")
                .await
                .unwrap()
                .is_none()
        );
    }

    /// A reclaimed epoch is recorded by the hook at once, so the lease is
    /// valid again within one heartbeat of the reclaim (a process resumed
    /// after a long pause must not make writers wait another heartbeat).
    #[tokio::test]
    async fn a_reclaimed_epoch_is_fenced_at_once() {
        let timing = LeaseTiming {
            heartbeat: Duration::from_millis(300),
            timeout: Duration::from_secs(2),
        };
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let fenced = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&fenced);
        let hook: EpochHook = Arc::new(move |epoch| {
            seen.lock().unwrap().push(epoch);
            Box::pin(async { Ok(()) })
        });
        let lease = Lease::acquire(
            Arc::clone(&store),
            &Path::default(),
            "node-a",
            holder("a"),
            timing,
            Contention::Refuse,
            Some(hook),
        )
        .await
        .unwrap();
        lease.shared.set_renewed(Instant::now() - timing.timeout);
        assert!(!lease.is_valid());
        assert!(
            lease
                .wait_valid(timing.heartbeat + timing.heartbeat / 2)
                .await,
            "valid within one heartbeat"
        );
        assert_eq!(lease.epoch(), 2);
        assert_eq!(*fenced.lock().unwrap(), vec![1, 2]);
    }

    /// Many contenders for a free lease: exactly one wins.
    #[tokio::test]
    async fn one_winner_among_racing_contenders() {
        for (store, _dir) in stores() {
            let tasks: Vec<_> = (0..8)
                .map(|_| {
                    let store = Arc::clone(&store);
                    tokio::spawn(async move { take_lease(&store, Contention::Refuse).await })
                })
                .collect();
            let mut won = Vec::new();
            for t in tasks {
                if let Ok(l) = t.await.unwrap() {
                    won.push(l);
                }
            }
            assert_eq!(won.len(), 1, "exactly one winner");
        }
    }
}
