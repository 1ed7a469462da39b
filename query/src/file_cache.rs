//! An in-memory cache of whole Parquet files, in front of the object store
//! that queries read (InfluxDB 3's `--parquet-mem-cache-size`).
//!
//! Files are immutable (a new file gets a new path), so a cached copy is
//! never stale. The first read of a file is served by the store, and a
//! background task fetches the whole file into the cache (a read of a whole
//! file keeps what it read); later reads are
//! slices of it: no request to S3, and on the local file system no blocking
//! task, `open` or `pread` per column chunk. The least recently used files
//! leave first when the cache is full. Files of more than half the capacity
//! are never cached, and at most four files are fetched at a time.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, Result,
};
use prometheus::{IntCounter, IntGauge};

/// Files fetched into the cache at once, at most.
const MAX_FILLS: usize = 4;

/// Cache counters, for `/metrics`.
#[derive(Debug, Clone)]
pub struct CacheMetrics {
    /// `inflow_parquet_cache_hits_total`.
    pub hits: IntCounter,
    /// `inflow_parquet_cache_misses_total`.
    pub misses: IntCounter,
    /// `inflow_parquet_cache_bytes`.
    pub bytes: IntGauge,
}

impl Default for CacheMetrics {
    fn default() -> Self {
        let counter = |name: &str, help: &str| {
            IntCounter::new(name, help)
                .unwrap_or_else(|e| unreachable!("metric {name} is valid: {e}"))
        };
        Self {
            hits: counter(
                "inflow_parquet_cache_hits_total",
                "Parquet reads served from the in-memory file cache",
            ),
            misses: counter(
                "inflow_parquet_cache_misses_total",
                "Parquet reads of files not in the in-memory file cache",
            ),
            bytes: IntGauge::new(
                "inflow_parquet_cache_bytes",
                "Bytes of Parquet files held in the in-memory cache",
            )
            .unwrap_or_else(|e| unreachable!("metric is valid: {e}")),
        }
    }
}

/// An [`ObjectStore`] that keeps whole files in memory, up to a capacity.
pub struct ParquetCache {
    shared: Arc<Shared>,
}

struct Shared {
    inner: Arc<dyn ObjectStore>,
    capacity: usize,
    state: Mutex<State>,
    /// A logical clock: each read stamps the file it hits.
    clock: AtomicU64,
    metrics: CacheMetrics,
}

#[derive(Default)]
struct State {
    files: HashMap<Path, Arc<Cached>>,
    /// Files being fetched, so a file is fetched once however many reads miss.
    filling: HashSet<Path>,
    bytes: usize,
}

struct Cached {
    data: Bytes,
    meta: ObjectMeta,
    used: AtomicU64,
}

impl ParquetCache {
    /// A cache of at most `capacity` bytes in front of `inner`.
    pub fn new(inner: Arc<dyn ObjectStore>, capacity: usize, metrics: CacheMetrics) -> Self {
        Self {
            shared: Arc::new(Shared {
                inner,
                capacity,
                state: Mutex::new(State::default()),
                clock: AtomicU64::new(0),
                metrics,
            }),
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.shared.lock().bytes
    }

    /// Whether `path` is held.
    pub fn contains(&self, path: &Path) -> bool {
        self.shared.lock().files.contains_key(path)
    }

    /// Waits until no fetch is under way (for tests and benchmarks).
    pub async fn settle(&self) {
        while !self.shared.lock().filling.is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent whatever a panicking holder did: every
        // update is a single insert or remove with its byte count.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached file at `path`, stamped as just used.
    fn lookup(&self, path: &Path) -> Option<Arc<Cached>> {
        let found = self.lock().files.get(path).cloned();
        match found {
            Some(c) => {
                c.used.store(
                    self.clock.fetch_add(1, Ordering::Relaxed),
                    Ordering::Relaxed,
                );
                self.metrics.hits.inc();
                Some(c)
            }
            None => {
                self.metrics.misses.inc();
                None
            }
        }
    }

    fn fill(self: &Arc<Self>, path: &Path) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        {
            // A bounded number of fetches at a time: a query over thousands
            // of files must not fetch them all at once (each fetch holds its
            // file in memory until it is inserted); later reads fill the rest.
            let mut state = self.lock();
            if state.filling.len() >= MAX_FILLS || !state.filling.insert(path.clone()) {
                return;
            }
        }
        let shared = Arc::clone(self);
        let path = path.clone();
        runtime.spawn(async move {
            let fetched = match shared.inner.get_opts(&path, GetOptions::default()).await {
                Ok(r) => {
                    let meta = r.meta.clone();
                    r.bytes().await.map(|data| (data, meta))
                }
                Err(e) => Err(e),
            };
            match fetched {
                Ok((data, meta)) => shared.insert(path.clone(), data, meta),
                // The reads themselves go to the store, which reports errors
                // to the query; the cache just stays without the file.
                Err(e) => tracing::debug!(%path, error = %e, "parquet cache: fetch failed"),
            }
            shared.lock().filling.remove(&path);
        });
    }

    fn insert(&self, path: Path, data: Bytes, meta: ObjectMeta) {
        let size = data.len();
        if size > self.capacity / 2 {
            return;
        }
        let mut state = self.lock();
        if state.files.contains_key(&path) {
            return;
        }
        while state.bytes + size > self.capacity {
            let Some(oldest) = state
                .files
                .iter()
                .min_by_key(|(_, c)| c.used.load(Ordering::Relaxed))
                .map(|(p, _)| p.clone())
            else {
                break;
            };
            if let Some(old) = state.files.remove(&oldest) {
                state.bytes -= old.data.len();
            }
        }
        state.bytes += size;
        let used = AtomicU64::new(self.clock.fetch_add(1, Ordering::Relaxed));
        state
            .files
            .insert(path, Arc::new(Cached { data, meta, used }));
        self.metrics.bytes.set(state.bytes as i64);
    }

    fn remove(&self, path: &Path) {
        let mut state = self.lock();
        if let Some(old) = state.files.remove(path) {
            state.bytes -= old.data.len();
            self.metrics.bytes.set(state.bytes as i64);
        }
    }
}

fn out_of_range(path: &Path, range: &Range<u64>, len: usize) -> object_store::Error {
    object_store::Error::Generic {
        store: "ParquetCache",
        source: format!("range {range:?} is outside {path} ({len} bytes)").into(),
    }
}

impl Cached {
    fn slice(&self, path: &Path, range: Range<u64>) -> Result<Bytes> {
        let len = self.data.len();
        match (usize::try_from(range.start), usize::try_from(range.end)) {
            (Ok(s), Ok(e)) if s <= e && e <= len => Ok(self.data.slice(s..e)),
            _ => Err(out_of_range(path, &range, len)),
        }
    }
}

impl fmt::Display for ParquetCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ParquetCache({}, {} bytes)",
            self.shared.inner, self.shared.capacity
        )
    }
}

impl fmt::Debug for ParquetCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[async_trait]
impl ObjectStore for ParquetCache {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.shared.remove(location);
        self.shared.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.shared.remove(location);
        self.shared.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let conditional = options.if_match.is_some()
            || options.if_none_match.is_some()
            || options.if_modified_since.is_some()
            || options.if_unmodified_since.is_some()
            || options.version.is_some();
        if conditional {
            return self.shared.inner.get_opts(location, options).await;
        }
        let Some(cached) = self.shared.lookup(location) else {
            if options.range.is_some() || options.head {
                self.shared.fill(location);
                return self.shared.inner.get_opts(location, options).await;
            }
            // A whole file (a merge of overlapping files reads them so):
            // kept from this read, not fetched a second time.
            let read = self.shared.inner.get_opts(location, options).await?;
            let (meta, range, attributes) = (
                read.meta.clone(),
                read.range.clone(),
                read.attributes.clone(),
            );
            let data = read.bytes().await?;
            self.shared
                .insert(location.clone(), data.clone(), meta.clone());
            return Ok(GetResult {
                payload: GetResultPayload::Stream(stream::once(async move { Ok(data) }).boxed()),
                meta,
                range,
                attributes,
            });
        };
        let len = cached.meta.size;
        let range = match &options.range {
            Some(r) => r.as_range(len).map_err(|e| object_store::Error::Generic {
                store: "ParquetCache",
                source: Box::new(e),
            })?,
            None => 0..len,
        };
        let body = if options.head {
            Bytes::new()
        } else {
            cached.slice(location, range.clone())?
        };
        Ok(GetResult {
            payload: GetResultPayload::Stream(stream::once(async move { Ok(body) }).boxed()),
            meta: cached.meta.clone(),
            range,
            attributes: Default::default(),
        })
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        match self.shared.lookup(location) {
            Some(cached) => ranges
                .iter()
                .map(|r| cached.slice(location, r.clone()))
                .collect(),
            None => {
                self.shared.fill(location);
                self.shared.inner.get_ranges(location, ranges).await
            }
        }
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        let shared = Arc::clone(&self.shared);
        self.shared
            .inner
            .delete_stream(locations)
            .map(move |r| {
                if let Ok(p) = &r {
                    shared.remove(p);
                }
                r
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.shared.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.shared.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.shared.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.shared.remove(to);
        self.shared.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.shared.remove(from);
        self.shared.remove(to);
        self.shared.inner.rename_opts(from, to, options).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use object_store::ObjectStoreExt;
    use object_store::memory::InMemory;

    /// Counts the reads that reach the store.
    #[derive(Debug)]
    struct Counting {
        inner: InMemory,
        reads: AtomicU64,
    }

    impl fmt::Display for Counting {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "Counting")
        }
    }

    #[async_trait]
    impl ObjectStore for Counting {
        async fn put_opts(&self, l: &Path, p: PutPayload, o: PutOptions) -> Result<PutResult> {
            self.inner.put_opts(l, p, o).await
        }
        async fn put_multipart_opts(
            &self,
            l: &Path,
            o: PutMultipartOptions,
        ) -> Result<Box<dyn MultipartUpload>> {
            self.inner.put_multipart_opts(l, o).await
        }
        async fn get_opts(&self, l: &Path, o: GetOptions) -> Result<GetResult> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            self.inner.get_opts(l, o).await
        }
        async fn get_ranges(&self, l: &Path, r: &[Range<u64>]) -> Result<Vec<Bytes>> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            self.inner.get_ranges(l, r).await
        }
        fn delete_stream(
            &self,
            l: BoxStream<'static, Result<Path>>,
        ) -> BoxStream<'static, Result<Path>> {
            self.inner.delete_stream(l)
        }
        fn list(&self, p: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
            self.inner.list(p)
        }
        async fn list_with_delimiter(&self, p: Option<&Path>) -> Result<ListResult> {
            self.inner.list_with_delimiter(p).await
        }
        async fn copy_opts(&self, f: &Path, t: &Path, o: CopyOptions) -> Result<()> {
            self.inner.copy_opts(f, t, o).await
        }
    }

    async fn setup(capacity: usize, files: &[(&str, usize)]) -> (Arc<Counting>, ParquetCache) {
        let store = Arc::new(Counting {
            inner: InMemory::new(),
            reads: AtomicU64::new(0),
        });
        for (name, len) in files {
            let data: Vec<u8> = (0..*len).map(|i| (i % 251) as u8).collect();
            store.put(&Path::from(*name), data.into()).await.unwrap();
        }
        let cache = ParquetCache::new(
            Arc::clone(&store) as Arc<dyn ObjectStore>,
            capacity,
            CacheMetrics::default(),
        );
        (store, cache)
    }

    #[tokio::test]
    async fn a_read_file_is_served_from_memory_afterwards() {
        let (store, cache) = setup(1000, &[("a", 300)]).await;
        let a = Path::from("a");
        let first = cache.get_range(&a, 10..20).await.unwrap();
        cache.settle().await;
        assert!(cache.contains(&a) && cache.bytes() == 300);
        let reads = store.reads.load(Ordering::SeqCst);

        assert_eq!(cache.get_range(&a, 10..20).await.unwrap(), first);
        let ranges = cache.get_ranges(&a, &[0..5, 295..300]).await.unwrap();
        assert_eq!(ranges[0].as_ref(), &[0, 1, 2, 3, 4]);
        assert_eq!(ranges[1].as_ref(), &[(295 % 251) as u8, 45, 46, 47, 48]);
        let tail = cache.get_opts(
            &a,
            GetOptions {
                range: Some(object_store::GetRange::Suffix(8)),
                ..Default::default()
            },
        );
        let tail = tail.await.unwrap();
        assert_eq!((tail.range.clone(), tail.meta.size), (292..300, 300));
        assert_eq!(tail.bytes().await.unwrap().len(), 8);
        assert_eq!(cache.head(&a).await.unwrap().size, 300);
        assert_eq!(
            store.reads.load(Ordering::SeqCst),
            reads,
            "no read reached the store"
        );

        // A whole-file read keeps the file from that one read.
        let (store, whole) = setup(1000, &[("w", 200)]).await;
        let w = Path::from("w");
        assert_eq!(
            whole.get(&w).await.unwrap().bytes().await.unwrap().len(),
            200
        );
        assert!(whole.contains(&w) && store.reads.load(Ordering::SeqCst) == 1);
        assert_eq!(
            whole.get(&w).await.unwrap().bytes().await.unwrap().len(),
            200
        );
        assert_eq!(store.reads.load(Ordering::SeqCst), 1);
        assert_eq!(
            (
                cache.shared.metrics.hits.get(),
                cache.shared.metrics.misses.get()
            ),
            (4, 1)
        );

        // A range past the end is cut at the end (as stores do); one that
        // starts past it, or runs backwards, is an error, not a panic.
        assert_eq!(cache.get_range(&a, 290..310).await.unwrap().len(), 10);
        assert!(cache.get_range(&a, 300..310).await.is_err());
        let past_end = Range {
            start: 290,
            end: 301,
        };
        let backwards = Range { start: 20, end: 10 };
        for bad in [past_end, backwards] {
            assert!(
                cache
                    .get_ranges(&a, std::slice::from_ref(&bad))
                    .await
                    .is_err()
            );
        }
    }

    #[tokio::test]
    async fn at_most_four_files_are_fetched_at_once() {
        let names = ["f0", "f1", "f2", "f3", "f4", "f5"];
        let files: Vec<(&str, usize)> = names.iter().map(|n| (*n, 10)).collect();
        let (_, cache) = setup(1000, &files).await;
        // Six misses before any fetch has run (the test runtime has one thread).
        for n in names {
            cache.get_range(&Path::from(n), 0..1).await.unwrap();
        }
        cache.settle().await;
        let held = names
            .iter()
            .filter(|n| cache.contains(&Path::from(**n)))
            .count();
        assert_eq!(held, 4);
        // Later reads fill the rest.
        for n in names {
            cache.get_range(&Path::from(n), 0..1).await.unwrap();
        }
        cache.settle().await;
        assert!(names.iter().all(|n| cache.contains(&Path::from(*n))));
    }

    #[tokio::test]
    async fn the_least_recently_used_files_leave_first() {
        let (_, cache) = setup(1000, &[("a", 400), ("b", 400), ("c", 400), ("big", 600)]).await;
        let (a, b, c) = (Path::from("a"), Path::from("b"), Path::from("c"));
        for p in [&a, &b] {
            cache.get_range(p, 0..1).await.unwrap();
            cache.settle().await;
        }
        cache.get_range(&a, 0..1).await.unwrap(); // a is now newer than b
        cache.get_range(&c, 0..1).await.unwrap();
        cache.settle().await;
        assert!(cache.contains(&a) && !cache.contains(&b) && cache.contains(&c));
        assert_eq!(cache.bytes(), 800);

        // More than half the capacity: never cached.
        let big = Path::from("big");
        cache.get_range(&big, 0..1).await.unwrap();
        cache.settle().await;
        assert!(!cache.contains(&big) && cache.bytes() == 800);

        // A deleted file leaves the cache.
        cache.delete(&a).await.unwrap();
        assert!(!cache.contains(&a) && cache.bytes() == 400);
        assert!(cache.get_range(&a, 0..1).await.is_err());
    }
}
