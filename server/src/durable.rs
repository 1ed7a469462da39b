//! The local file store, made durable: every object written is fsynced,
//! with its directory, before the write returns.
//!
//! `object_store`'s `LocalFileSystem` writes a temporary file and renames
//! it into place, but never calls `fsync`, so after a power loss (not a
//! process crash: the page cache survives those) an acknowledged WAL file
//! or catalog transaction could be missing or empty. Writes are
//! acknowledged only after their WAL file's PUT returns, so the PUT must
//! mean "on disk". Reads, lists and deletes pass straight through.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::BoxStream;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result, UploadPart,
};

/// A [`LocalFileSystem`] whose writes are fsynced before they return.
#[derive(Debug, Clone)]
pub struct DurableLocalStore {
    inner: Arc<LocalFileSystem>,
}

impl DurableLocalStore {
    /// Wraps `inner`.
    pub fn new(inner: LocalFileSystem) -> Self {
        Self {
            inner: Arc::new(inner),
        }
    }
}

impl fmt::Display for DurableLocalStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Durable({})", self.inner)
    }
}

/// Flushes the file at `location` and its directory to disk.
async fn sync(inner: &LocalFileSystem, location: &Path) -> Result<()> {
    let file = inner.path_to_filesystem(location)?;
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        std::fs::File::open(&file)?.sync_all()?;
        if let Some(dir) = file.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    })
    .await
    .map_err(|e| object_store::Error::Generic {
        store: "DurableLocalStore",
        source: Box::new(e),
    })?
    .map_err(|e| object_store::Error::Generic {
        store: "DurableLocalStore",
        source: Box::new(e),
    })
}

#[async_trait]
impl ObjectStore for DurableLocalStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        let result = self.inner.put_opts(location, payload, opts).await?;
        sync(&self.inner, location).await?;
        Ok(result)
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        let upload = self.inner.put_multipart_opts(location, opts).await?;
        Ok(Box::new(DurableUpload {
            upload,
            inner: Arc::clone(&self.inner),
            location: location.clone(),
        }))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await?;
        sync(&self.inner, to).await
    }
}

/// A multipart upload that fsyncs its file when completed.
#[derive(Debug)]
struct DurableUpload {
    upload: Box<dyn MultipartUpload>,
    inner: Arc<LocalFileSystem>,
    location: Path,
}

#[async_trait]
impl MultipartUpload for DurableUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        self.upload.put_part(data)
    }

    async fn complete(&mut self) -> Result<PutResult> {
        let result = self.upload.complete().await?;
        sync(&self.inner, &self.location).await?;
        Ok(result)
    }

    async fn abort(&mut self) -> Result<()> {
        self.upload.abort().await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use object_store::{ObjectStoreExt, PutMode};

    /// Behaves as the local store it wraps: puts (plain, conditional,
    /// multipart), reads, lists and deletes.
    #[tokio::test]
    async fn behaves_as_the_local_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = DurableLocalStore::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap());
        let path = Path::from("wal/n/1.wal");
        store.put(&path, "one".into()).await.unwrap();
        let create = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        let again = store.put_opts(&path, "two".into(), create).await;
        assert!(
            matches!(again, Err(object_store::Error::AlreadyExists { .. })),
            "{again:?}"
        );
        let mut upload = store
            .put_multipart(&Path::from("data/f.parquet"))
            .await
            .unwrap();
        upload.put_part("abc".into()).await.unwrap();
        upload.complete().await.unwrap();
        assert_eq!(
            store.get(&path).await.unwrap().bytes().await.unwrap(),
            "one"
        );
        assert_eq!(
            std::fs::read(dir.path().join("data/f.parquet")).unwrap(),
            b"abc"
        );
        store.delete(&path).await.unwrap();
        assert!(store.head(&path).await.is_err());
    }
}
