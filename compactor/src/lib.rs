//! The compactor: one per cluster, it will merge small Parquet files, enforce
//! retention and carry out hard deletes.
//!
//! Today there are no Parquet files yet (they arrive with persistence), so the
//! compactor process only joins the cluster: it loads and follows the catalog
//! and serves `/health` and `/metrics`. The library holds nothing until then.
