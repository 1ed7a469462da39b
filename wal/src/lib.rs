//! The write-ahead log on the object store.
//!
//! ```text
//!  request ─┐                           every --wal-flush-interval
//!  request ─┼─▶ channel ─▶ flusher ──── one PUT (PutMode::Create) of wal/{node}/{seq:020}.wal
//!  request ─┘                 │         then `apply` each entry in order (the buffer),
//!                             └───────▶ then answer each waiting request
//! ```
//!
//! Group commit: every request waiting in one interval shares one object. A
//! request is acknowledged only after the PUT succeeded (unless the writer
//! chose `no_sync`, which answers before the flush). Entries are applied in
//! WAL order, so "later writes win" means the same thing in memory and in
//! replay.
//!
//! File format (version 1), little-endian:
//! ```text
//!  magic "INFLOWAL" | version u32 | crc32 u32 (of the payload) | payload_len u64 | payload
//!  payload = entry*
//!  entry   = db_len u16 | db | precision u8 | default_time_ns i64 | lines_len u32 | lines
//! ```
//! An entry with precision [`DELETE_MARKER`] carries no lines but the
//! highest tombstone id it marks, as decimal text: the predicate deletes up
//! to it apply to the rows of the entries before it (see the catalog's
//! `Tombstone`).
//! A file that fails any check stops replay with an error that names it;
//! nothing is skipped silently.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use tokio::sync::{Notify, mpsc, oneshot};

const MAGIC: &[u8; 8] = b"INFLOWAL";
const VERSION: u32 = 1;
const HEADER_LEN: usize = 8 + 4 + 4 + 8;

/// Errors from the WAL.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WalError {
    /// The object store failed.
    #[error("WAL object store error: {0}")]
    ObjectStore(Arc<object_store::Error>),
    /// A WAL file failed its checks.
    #[error(
        "WAL file {path} is corrupt: {reason}. Start-up stops rather than lose data silently; restore the file, or move it away if its writes may be dropped"
    )]
    Corrupt {
        /// The file.
        path: String,
        /// What failed.
        reason: String,
    },
    /// The flusher is gone (the server is shutting down).
    #[error("the WAL is shut down")]
    Closed,
    /// The file is on the store, but this process could not confirm it
    /// still holds its node id's lease, so the write is not acknowledged.
    #[error("{0}")]
    NotLeaseHolder(String),
}

impl From<object_store::Error> for WalError {
    fn from(e: object_store::Error) -> Self {
        WalError::ObjectStore(Arc::new(e))
    }
}

/// One write request's accepted lines.
#[derive(Debug, Clone, PartialEq)]
pub struct WalEntry {
    /// The database name.
    pub db: String,
    /// The request's precision code (see `line_protocol::Precision::code`).
    pub precision: u8,
    /// The time given to lines without a timestamp, in nanoseconds.
    pub default_time_ns: i64,
    /// The accepted lines, separated by `\n`.
    pub lines: Bytes,
}

/// The precision code of a delete marker entry (no line protocol code).
pub const DELETE_MARKER: u8 = 0xFF;

impl WalEntry {
    /// A delete marker for the tombstones up to `through`.
    pub fn delete_marker(through: u64, time_ns: i64) -> Self {
        Self {
            db: String::new(),
            precision: DELETE_MARKER,
            default_time_ns: time_ns,
            lines: Bytes::from(through.to_string()),
        }
    }

    /// The highest tombstone id a delete marker marks; `None` for a write.
    /// A marker whose id does not parse is `Some(Err)`: the file is corrupt.
    pub fn marked_deletes(&self) -> Option<Result<u64, String>> {
        (self.precision == DELETE_MARKER).then(|| {
            std::str::from_utf8(&self.lines)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| "a delete marker whose tombstone id is not a number".to_string())
        })
    }
}

/// One WAL file: a sequence number and its entries.
#[derive(Debug, Clone, PartialEq)]
pub struct WalFile {
    /// The file's sequence number.
    pub seq: u64,
    /// The entries in write order.
    pub entries: Vec<WalEntry>,
}

/// Encodes a file's entries in the current format, as parts that share the
/// entries' line buffers (no copy of the lines; the CRC runs over them).
pub fn encode_parts(entries: &[WalEntry]) -> PutPayload {
    let mut crc = crc32fast::Hasher::new();
    let mut parts: Vec<Bytes> = Vec::with_capacity(1 + 2 * entries.len());
    let mut payload_len = 0usize;
    for e in entries {
        let mut head = BytesMut::with_capacity(2 + e.db.len() + 1 + 8 + 4);
        head.put_u16_le(e.db.len() as u16);
        head.put_slice(e.db.as_bytes());
        head.put_u8(e.precision);
        head.put_i64_le(e.default_time_ns);
        head.put_u32_le(e.lines.len() as u32);
        let head = head.freeze();
        crc.update(&head);
        crc.update(&e.lines);
        payload_len += head.len() + e.lines.len();
        parts.push(head);
        parts.push(e.lines.clone());
    }
    let mut header = BytesMut::with_capacity(HEADER_LEN);
    header.put_slice(MAGIC);
    header.put_u32_le(VERSION);
    header.put_u32_le(crc.finalize());
    header.put_u64_le(payload_len as u64);
    std::iter::once(header.freeze()).chain(parts).collect()
}

/// Encodes a file's entries in the current format, as one buffer.
pub fn encode(entries: &[WalEntry]) -> Bytes {
    let payload = encode_parts(entries);
    let mut out = BytesMut::with_capacity(payload.content_length());
    for part in payload.iter() {
        out.put_slice(part);
    }
    out.freeze()
}

/// Decodes and checks a file. `path` is used in error messages.
pub fn decode(path: &str, seq: u64, data: Bytes) -> Result<WalFile, WalError> {
    let corrupt = |reason: String| WalError::Corrupt {
        path: path.to_string(),
        reason,
    };
    if data.len() < HEADER_LEN {
        return Err(corrupt(format!(
            "truncated: {} bytes is shorter than the {HEADER_LEN}-byte header",
            data.len()
        )));
    }
    let mut buf = data;
    if &buf[..8] != MAGIC {
        return Err(corrupt("bad magic bytes; not an Inflow WAL file".into()));
    }
    buf.advance(8);
    let version = buf.get_u32_le();
    if version != VERSION {
        return Err(corrupt(format!(
            "format version {version} is not supported (this build reads version {VERSION})"
        )));
    }
    let crc = buf.get_u32_le();
    let len = buf.get_u64_le() as usize;
    if buf.len() != len {
        return Err(corrupt(format!(
            "truncated: header says {len} payload bytes, file has {}",
            buf.len()
        )));
    }
    if crc32fast::hash(&buf) != crc {
        return Err(corrupt("checksum mismatch".into()));
    }
    let mut entries = Vec::new();
    let short = || corrupt("entry runs past the end of the payload".into());
    while buf.has_remaining() {
        if buf.remaining() < 2 {
            return Err(short());
        }
        let db_len = buf.get_u16_le() as usize;
        if buf.remaining() < db_len + 1 + 8 + 4 {
            return Err(short());
        }
        let db = String::from_utf8(buf.split_to(db_len).to_vec())
            .map_err(|_| corrupt("database name is not UTF-8".into()))?;
        let precision = buf.get_u8();
        let default_time_ns = buf.get_i64_le();
        let lines_len = buf.get_u32_le() as usize;
        if buf.remaining() < lines_len {
            return Err(short());
        }
        let lines = buf.split_to(lines_len);
        entries.push(WalEntry {
            db,
            precision,
            default_time_ns,
            lines,
        });
    }
    Ok(WalFile { seq, entries })
}

/// Where a node's WAL files live.
#[derive(Debug, Clone)]
pub struct WalLocation {
    store: Arc<dyn ObjectStore>,
    dir: Path,
}

impl WalLocation {
    /// The WAL of `node_id` under `prefix`.
    pub fn new(store: Arc<dyn ObjectStore>, prefix: &Path, node_id: &str) -> Self {
        Self {
            store,
            dir: prefix.clone().join("wal").join(node_id),
        }
    }

    /// The path of file `seq`.
    /// Deletes WAL file `seq` (a missing file is not an error).
    pub async fn delete(&self, seq: u64) -> Result<(), WalError> {
        match self.store.delete(&self.path(seq)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The path of WAL file `seq`.
    pub fn path(&self, seq: u64) -> Path {
        self.dir.clone().join(format!("{seq:020}.wal").as_str())
    }

    /// Sequence numbers of the files present, ascending.
    pub async fn list(&self) -> Result<Vec<u64>, WalError> {
        Ok(self
            .list_with_times()
            .await?
            .into_iter()
            .map(|(seq, _)| seq)
            .collect())
    }

    /// The files present, ascending, each with when the store says it was
    /// written (ms since the epoch).
    pub async fn list_with_times(&self) -> Result<Vec<(u64, i64)>, WalError> {
        let metas: Vec<_> = self.store.list(Some(&self.dir)).try_collect().await?;
        let mut seqs = Vec::with_capacity(metas.len());
        for m in metas {
            let name = m.location.filename().unwrap_or_default();
            let seq = name
                .strip_suffix(".wal")
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| WalError::Corrupt {
                    path: m.location.to_string(),
                    reason: "unexpected file in the WAL directory (names are {seq:020}.wal)".into(),
                })?;
            seqs.push((seq, m.last_modified.timestamp_millis()));
        }
        seqs.sort_unstable();
        Ok(seqs)
    }

    /// Reads and checks file `seq`.
    pub async fn read(&self, seq: u64) -> Result<WalFile, WalError> {
        let path = self.path(seq);
        let data = self.store.get(&path).await?.bytes().await?;
        decode(path.as_ref(), seq, data)
    }
}

/// A request waiting for the next flush.
#[derive(Debug)]
struct Pending<P> {
    entry: WalEntry,
    payload: P,
    done: Option<oneshot::Sender<Result<(), WalError>>>,
    /// Released when the flusher takes the entry.
    arrival: Option<Arrival>,
}

/// Writes on their way to the WAL (being parsed and validated).
#[derive(Debug, Default)]
struct Arrivals {
    count: AtomicUsize,
    /// Signalled when the count drops to zero.
    settled: Notify,
}

/// One write on its way to the WAL, from [`Wal::arrival`] until the flusher
/// takes its entry, or until it is dropped (a rejected write). While none is
/// on its way and at least an eighth of `max_batch_bytes` is queued, the
/// flusher does not wait for the interval: nothing more is coming, and
/// under load every writer would otherwise sit out the rest of the tick.
#[derive(Debug)]
pub struct Arrival(Arc<Arrivals>);

impl Drop for Arrival {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.settled.notify_one();
        }
    }
}

/// Called with each flushed entry's payload, in WAL order, after the PUT.
pub type ApplyFn<P> = Box<dyn Fn(u64, Vec<P>) + Send + Sync>;

/// Asked after each PUT, before the writers are answered: whether this
/// process still holds the lease on its node id (a former holder must not
/// acknowledge writes its successor may not replay). `Err` answers the
/// writers with [`WalError::NotLeaseHolder`].
pub type AckGate =
    Arc<dyn Fn() -> futures::future::BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// Metrics hooks, so the WAL needs no metrics registry of its own.
pub type FlushObserver = Box<dyn Fn(&FlushStats) + Send + Sync>;

/// What one flush did.
#[derive(Debug, Clone)]
pub struct FlushStats {
    /// The file's sequence number.
    pub seq: u64,
    /// Entries in the file.
    pub entries: usize,
    /// Bytes written.
    pub bytes: usize,
    /// How long the PUT took.
    pub duration: Duration,
    /// Whether it succeeded.
    pub ok: bool,
}

/// The WAL writer: hands entries to the flusher task.
#[derive(Debug)]
pub struct Wal<P> {
    tx: mpsc::Sender<Pending<P>>,
    arrivals: Arc<Arrivals>,
}

impl<P: Send + 'static> Wal<P> {
    /// Starts the flusher. `next_seq` is one past the last file replayed.
    /// A flush happens every `flush_interval`, or sooner once the queued
    /// lines reach `max_batch_bytes` (so heavy load is not capped at one
    /// interval's worth of requests per flush), or once an eighth of that
    /// is queued and no other write is on its way ([`Arrival`]). `gate`,
    /// if given, is asked before each flush's writers are answered.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        location: WalLocation,
        next_seq: u64,
        flush_interval: Duration,
        max_batch_bytes: usize,
        apply: ApplyFn<P>,
        observe: FlushObserver,
        gate: Option<AckGate>,
    ) -> Self {
        let (tx, rx) = mpsc::channel(65_536);
        let arrivals = Arc::new(Arrivals::default());
        let flush = flusher(
            location,
            next_seq,
            flush_interval,
            max_batch_bytes,
            Arc::clone(&arrivals),
            rx,
            apply,
            observe,
            gate,
        );
        tokio::spawn(flush);
        Self { tx, arrivals }
    }

    /// Marks a write as on its way: take it before parsing the request.
    pub fn arrival(&self) -> Arrival {
        self.arrivals.count.fetch_add(1, Ordering::AcqRel);
        Arrival(Arc::clone(&self.arrivals))
    }

    /// Queues an entry and waits until it is durable and applied.
    pub async fn write(
        &self,
        arrival: Arrival,
        entry: WalEntry,
        payload: P,
    ) -> Result<(), WalError> {
        let (done, rx) = oneshot::channel();
        self.tx
            .send(Pending {
                entry,
                payload,
                done: Some(done),
                arrival: Some(arrival),
            })
            .await
            .map_err(|_| WalError::Closed)?;
        rx.await.map_err(|_| WalError::Closed)?
    }

    /// Queues an entry without waiting for the flush (`no_sync`).
    pub async fn write_no_sync(
        &self,
        arrival: Arrival,
        entry: WalEntry,
        payload: P,
    ) -> Result<(), WalError> {
        self.tx
            .send(Pending {
                entry,
                payload,
                done: None,
                arrival: Some(arrival),
            })
            .await
            .map_err(|_| WalError::Closed)
    }
}

#[allow(clippy::too_many_arguments)]
async fn flusher<P>(
    location: WalLocation,
    mut seq: u64,
    interval: Duration,
    max_batch_bytes: usize,
    arrivals: Arc<Arrivals>,
    mut rx: mpsc::Receiver<Pending<P>>,
    apply: ApplyFn<P>,
    observe: FlushObserver,
    gate: Option<AckGate>,
) {
    let mut ticker = tokio::time::interval(interval.max(Duration::from_millis(1)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut batch: Vec<Pending<P>> = Vec::new();
    loop {
        // Wait for the first entry, then for the tick, for enough bytes, or
        // for some bytes with no other write on its way; then take all that
        // came.
        if batch.is_empty() {
            match rx.recv().await {
                Some(mut p) => {
                    drop(p.arrival.take());
                    batch.push(p);
                }
                None => return,
            }
        }
        let mut bytes: usize = batch.iter().map(|p| p.entry.lines.len()).sum();
        let settled = |bytes: usize| {
            bytes >= max_batch_bytes / 8 && arrivals.count.load(Ordering::Acquire) == 0
        };
        while bytes < max_batch_bytes && !settled(bytes) {
            tokio::select! {
                _ = ticker.tick() => break,
                _ = arrivals.settled.notified() => {}
                p = rx.recv() => match p {
                    Some(mut p) => {
                        bytes += p.entry.lines.len();
                        drop(p.arrival.take());
                        batch.push(p);
                    }
                    None => break,
                },
            }
        }
        while let Ok(mut p) = rx.try_recv() {
            drop(p.arrival.take());
            batch.push(p);
        }
        let entries: Vec<WalEntry> = batch.iter().map(|p| p.entry.clone()).collect();
        let data = encode_parts(&entries);
        drop(entries);
        let started = std::time::Instant::now();
        let result = put_next(&location, &mut seq, data.clone()).await;
        observe(&FlushStats {
            seq,
            entries: batch.len(),
            bytes: data.content_length(),
            duration: started.elapsed(),
            ok: result.is_ok(),
        });
        let mut payloads = Vec::with_capacity(batch.len());
        let mut waiters = Vec::with_capacity(batch.len());
        for p in batch.drain(..) {
            payloads.push(p.payload);
            waiters.push(p.done);
        }
        match result {
            Ok(()) => {
                // Applied even when the gate fails: the file is durable and
                // replays anyway; only the acknowledgement is withheld.
                let answer = match &gate {
                    Some(gate) => gate().await.map_err(WalError::NotLeaseHolder),
                    None => Ok(()),
                };
                apply(seq, payloads);
                seq += 1;
                if let Err(e) = &answer {
                    tracing::error!(error = %e, seq, "WAL flush not acknowledged");
                }
                for w in waiters.into_iter().flatten() {
                    let _ = w.send(answer.clone());
                }
            }
            Err(e) => {
                tracing::error!(error = %e, seq, "WAL flush failed; the writes in it were not acknowledged");
                for w in waiters.into_iter().flatten() {
                    let _ = w.send(Err(e.clone()));
                }
            }
        }
    }
}

/// PUTs `data` as the next file. If the sequence number is taken (an earlier
/// PUT that reported failure but landed), the next one is used: replay reads
/// both, and the earlier one's writes were never acknowledged.
async fn put_next(location: &WalLocation, seq: &mut u64, data: PutPayload) -> Result<(), WalError> {
    for _ in 0..16 {
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match location
            .store
            .put_opts(&location.path(*seq), data.clone(), opts)
            .await
        {
            Ok(_) => return Ok(()),
            Err(object_store::Error::AlreadyExists { .. }) => *seq += 1,
            Err(e) => return Err(e.into()),
        }
    }
    Err(WalError::Corrupt {
        path: location.path(*seq).to_string(),
        reason: "16 consecutive WAL sequence numbers already exist; is another process using this node id?".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(db: &str, lines: &str) -> WalEntry {
        WalEntry {
            db: db.into(),
            precision: 1,
            default_time_ns: 42,
            lines: Bytes::copy_from_slice(lines.as_bytes()),
        }
    }

    #[test]
    fn round_trip() {
        let entries = vec![entry("a", "m f=1 1\nm f=2 2"), entry("bb", "")];
        let data = encode(&entries);
        let f = decode("x", 7, data).unwrap();
        assert_eq!(f.seq, 7);
        assert_eq!(f.entries, entries);
    }

    #[test]
    fn corruption_is_detected_and_names_the_file() {
        let data = encode(&[entry("db", "m f=1 1")]);
        for cut in [0, 5, HEADER_LEN, data.len() - 1] {
            let e = decode("wal/n/1.wal", 1, data.slice(..cut)).unwrap_err();
            assert!(e.to_string().contains("wal/n/1.wal"), "{e}");
            assert!(e.to_string().contains("truncated"), "{e}");
        }
        let mut flipped = data.to_vec();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        let e = decode("f", 1, Bytes::from(flipped)).unwrap_err();
        assert!(e.to_string().contains("checksum"), "{e}");
        let mut v2 = data.to_vec();
        v2[8] = 9;
        let e = decode("f", 1, Bytes::from(v2)).unwrap_err();
        assert!(e.to_string().contains("version 9"), "{e}");
    }

    #[tokio::test]
    async fn group_commit_and_replay() {
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let loc = WalLocation::new(Arc::clone(&store), &Path::default(), "n1");
        let applied = Arc::new(std::sync::Mutex::new(Vec::new()));
        let a2 = Arc::clone(&applied);
        let wal = Arc::new(Wal::start(
            loc.clone(),
            1,
            Duration::from_millis(20),
            usize::MAX,
            Box::new(move |seq, p: Vec<u32>| a2.lock().unwrap().push((seq, p))),
            Box::new(|_| {}),
            None,
        ));
        let mut handles = Vec::new();
        for i in 0..10u32 {
            let wal = Arc::clone(&wal);
            handles.push(tokio::spawn(async move {
                wal.write(wal.arrival(), entry("db", &format!("m f={i}")), i)
                    .await
            }));
        }
        for h in handles {
            h.await.unwrap().unwrap();
        }
        let seqs = loc.list().await.unwrap();
        assert!(!seqs.is_empty() && seqs.len() < 10, "grouped: {seqs:?}");
        let mut total = 0;
        for s in &seqs {
            total += loc.read(*s).await.unwrap().entries.len();
        }
        assert_eq!(total, 10);
        let applied = applied.lock().unwrap();
        assert_eq!(applied.iter().map(|(_, p)| p.len()).sum::<usize>(), 10);
        assert_eq!(applied.iter().map(|(s, _)| *s).collect::<Vec<_>>(), seqs);
    }

    /// A WAL in memory with an hour-long interval, batches of `max_bytes`.
    fn hourly_wal(max_bytes: usize) -> (WalLocation, Arc<Wal<u32>>) {
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let loc = WalLocation::new(store, &Path::default(), "n1");
        let apply: ApplyFn<u32> = Box::new(|_, _| {});
        let wal = Wal::start(
            loc.clone(),
            1,
            Duration::from_secs(3600),
            max_bytes,
            apply,
            Box::new(|_| {}),
            None,
        );
        (loc, Arc::new(wal))
    }

    /// A failing gate withholds the acknowledgement of a durable file; a
    /// passing one lets it through.
    #[tokio::test]
    async fn the_gate_decides_each_acknowledgement() {
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let loc = WalLocation::new(Arc::clone(&store), &Path::default(), "n1");
        let open = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let gate_open = Arc::clone(&open);
        let gate: AckGate = Arc::new(move || {
            let ok = gate_open.load(Ordering::Acquire);
            Box::pin(async move {
                if ok {
                    Ok(())
                } else {
                    Err("lease lost".to_string())
                }
            })
        });
        let applied = Arc::new(std::sync::Mutex::new(Vec::new()));
        let a2 = Arc::clone(&applied);
        let wal = Wal::start(
            loc.clone(),
            1,
            Duration::from_millis(5),
            usize::MAX,
            Box::new(move |seq, _: Vec<u32>| a2.lock().unwrap().push(seq)),
            Box::new(|_| {}),
            Some(gate),
        );
        wal.write(wal.arrival(), entry("db", "m f=1"), 1)
            .await
            .unwrap();
        open.store(false, Ordering::Release);
        let err = wal
            .write(wal.arrival(), entry("db", "m f=2"), 2)
            .await
            .unwrap_err();
        assert!(
            matches!(err, WalError::NotLeaseHolder(ref m) if m == "lease lost"),
            "{err}"
        );
        assert_eq!(
            loc.list().await.unwrap(),
            vec![1, 2],
            "both files are durable"
        );
        assert_eq!(*applied.lock().unwrap(), vec![1, 2]);
    }

    /// Enough queued bytes flush before the interval: a long interval does
    /// not cap a heavy load at one file per interval.
    #[tokio::test]
    async fn flushes_early_when_the_batch_is_full() {
        let (loc, wal) = hourly_wal(64);
        let big = "m f=1 1\n".repeat(10);
        let started = std::time::Instant::now();
        for i in 0..3u32 {
            wal.write(wal.arrival(), entry("db", &big), i)
                .await
                .unwrap();
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "did not wait for the hour-long interval"
        );
        assert_eq!(loc.list().await.unwrap().len(), 3);
    }

    /// An eighth of a batch flushes at once when no other write is on its
    /// way; while one is, or below an eighth, the flusher waits.
    #[tokio::test]
    async fn flushes_when_no_other_write_is_coming() {
        let (loc, wal) = hourly_wal(800);
        // The interval's first tick is immediate: this write takes it.
        wal.write(wal.arrival(), entry("db", "m f=1 1"), 0)
            .await
            .unwrap();
        let files = loc.list().await.unwrap().len();
        let parsing = wal.arrival();
        let w = Arc::clone(&wal);
        let big = tokio::spawn(async move {
            w.write(w.arrival(), entry("db", &"m f=1 1\n".repeat(20)), 1)
                .await
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            !big.is_finished(),
            "flushed while another write was on its way"
        );
        drop(parsing);
        tokio::time::timeout(Duration::from_secs(10), big)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(loc.list().await.unwrap().len(), files + 1);

        let w = Arc::clone(&wal);
        let small =
            tokio::spawn(async move { w.write(w.arrival(), entry("db", "m f=1 1"), 2).await });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            !small.is_finished(),
            "a small write alone waits for the interval"
        );
        small.abort();
    }
}
