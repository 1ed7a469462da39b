//! Counts every object-store request by operation and outcome, and times
//! it: `inflow_object_store_requests_total{op, outcome}` and
//! `inflow_object_store_request_duration_seconds{op}`. The cost of tailing
//! the WAL, of leases and of queries' file reads shows here.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};

/// An object store that records its requests in the cluster metrics.
#[derive(Debug)]
pub struct MeteredStore {
    inner: Arc<dyn ObjectStore>,
}

impl MeteredStore {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        Self { inner }
    }
}

impl fmt::Display for MeteredStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Metered({})", self.inner)
    }
}

fn outcome<T>(r: &Result<T>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(object_store::Error::NotFound { .. }) => "not_found",
        Err(object_store::Error::AlreadyExists { .. }) => "already_exists",
        Err(object_store::Error::Precondition { .. }) => "precondition_failed",
        Err(_) => "error",
    }
}

fn record<T>(op: &str, started: Instant, r: &Result<T>) {
    let m = http_api::cluster_metrics();
    m.object_store_requests
        .with_label_values(&[op, outcome(r)])
        .inc();
    m.object_store_duration
        .with_label_values(&[op])
        .observe(started.elapsed().as_secs_f64());
}

#[async_trait]
impl ObjectStore for MeteredStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        let started = Instant::now();
        let op = if matches!(opts.mode, object_store::PutMode::Overwrite) {
            "put"
        } else {
            "put_conditional"
        };
        let r = self.inner.put_opts(location, payload, opts).await;
        record(op, started, &r);
        r
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        let started = Instant::now();
        let r = self.inner.put_multipart_opts(location, opts).await;
        record("put_multipart", started, &r);
        r
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let started = Instant::now();
        let op = if options.head {
            "head"
        } else if options.range.is_some() {
            "get_range"
        } else {
            "get"
        };
        let r = self.inner.get_opts(location, options).await;
        record(op, started, &r);
        r
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[std::ops::Range<u64>],
    ) -> Result<Vec<bytes::Bytes>> {
        let started = Instant::now();
        let r = self.inner.get_ranges(location, ranges).await;
        record("get_ranges", started, &r);
        r
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner
            .delete_stream(locations)
            .map(|r| {
                let m = http_api::cluster_metrics();
                m.object_store_requests
                    .with_label_values(&["delete", outcome(&r)])
                    .inc();
                r
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        // One count per listing (a listing of many pages is several
        // requests on S3; the first page stands for them).
        http_api::cluster_metrics()
            .object_store_requests
            .with_label_values(&["list", "ok"])
            .inc();
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        http_api::cluster_metrics()
            .object_store_requests
            .with_label_values(&["list", "ok"])
            .inc();
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let started = Instant::now();
        let r = self.inner.list_with_delimiter(prefix).await;
        record("list", started, &r);
        r
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        let started = Instant::now();
        let r = self.inner.copy_opts(from, to, options).await;
        record("copy", started, &r);
        r
    }
}
