//! Output formats of `/api/v3/query_sql`: batches in, bytes out, one batch at
//! a time where the format allows it.

use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use bytes::Bytes;

/// A query output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryFormat {
    /// A JSON array of row objects.
    Json,
    /// One JSON object per line.
    JsonLines,
    /// CSV with a header row.
    Csv,
    /// An ASCII table.
    Pretty,
    /// A Parquet file.
    Parquet,
}

impl QueryFormat {
    /// Parses the `format` parameter.
    pub fn from_param(s: &str) -> Option<Self> {
        Some(match s {
            "json" => Self::Json,
            "jsonl" | "json_lines" => Self::JsonLines,
            "csv" => Self::Csv,
            "pretty" => Self::Pretty,
            "parquet" => Self::Parquet,
            _ => return None,
        })
    }

    /// Picks a format from an `Accept` header; `None` if it names none we know.
    pub fn from_accept(accept: &str) -> Option<Self> {
        accept.split(',').find_map(|part| {
            let mime = part.split(';').next().unwrap_or("").trim();
            Some(match mime {
                "application/json" | "*/*" | "application/*" => Self::Json,
                "application/jsonl" | "application/x-ndjson" | "application/json-lines" => Self::JsonLines,
                "text/csv" => Self::Csv,
                "text/plain" => Self::Pretty,
                "application/vnd.apache.parquet" => Self::Parquet,
                _ => return None,
            })
        })
    }

    /// The response `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::JsonLines => "application/jsonl",
            Self::Csv => "text/csv",
            Self::Pretty => "text/plain; charset=utf-8",
            Self::Parquet => "application/vnd.apache.parquet",
        }
    }
}

/// Turns a stream of batches into response bytes.
#[derive(Debug)]
pub struct Encoder {
    format: QueryFormat,
    schema: SchemaRef,
    started: bool,
    /// Formats that need every batch before writing keep them here.
    held: Vec<RecordBatch>,
}

impl Encoder {
    /// An encoder for results with `schema`.
    pub fn new(format: QueryFormat, schema: SchemaRef) -> Self {
        Self {
            format,
            schema,
            started: false,
            held: Vec::new(),
        }
    }

    /// Bytes for one batch (possibly empty).
    pub fn batch(&mut self, batch: &RecordBatch) -> Result<Bytes, ArrowError> {
        if batch.num_rows() == 0 {
            return Ok(Bytes::new());
        }
        let out = match self.format {
            QueryFormat::Json => {
                let lines = json_lines(batch)?;
                // Rows are objects separated by '\n' (never inside a JSON
                // string, where it is escaped), so commas can replace them.
                let mut out = Vec::with_capacity(lines.len() + 1);
                out.push(if self.started { b',' } else { b'[' });
                let body = lines.strip_suffix(b"\n").unwrap_or(&lines);
                out.extend(body.iter().map(|b| if *b == b'\n' { b',' } else { *b }));
                out
            }
            QueryFormat::JsonLines => json_lines(batch)?,
            QueryFormat::Csv => {
                let mut out = Vec::new();
                let mut w = arrow::csv::WriterBuilder::new()
                    .with_header(!self.started)
                    .build(&mut out);
                w.write(batch)?;
                drop(w);
                out
            }
            QueryFormat::Pretty | QueryFormat::Parquet => {
                self.held.push(batch.clone());
                Vec::new()
            }
        };
        self.started = true;
        Ok(Bytes::from(out))
    }

    /// The closing bytes.
    pub fn finish(&mut self) -> Result<Bytes, ArrowError> {
        let out = match self.format {
            QueryFormat::Json if self.started => b"]".to_vec(),
            QueryFormat::Json => b"[]".to_vec(),
            QueryFormat::JsonLines => Vec::new(),
            QueryFormat::Csv if !self.started => {
                let mut out = Vec::new();
                let mut w = arrow::csv::WriterBuilder::new().with_header(true).build(&mut out);
                w.write(&RecordBatch::new_empty(self.schema.clone()))?;
                drop(w);
                out
            }
            QueryFormat::Csv => Vec::new(),
            QueryFormat::Pretty => {
                let mut s = arrow::util::pretty::pretty_format_batches(&self.held)?.to_string();
                s.push('\n');
                s.into_bytes()
            }
            QueryFormat::Parquet => {
                let mut out = Vec::new();
                let mut w = parquet::arrow::ArrowWriter::try_new(&mut out, self.schema.clone(), None)
                    .map_err(|e| ArrowError::ExternalError(Box::new(e)))?;
                for b in &self.held {
                    w.write(b).map_err(|e| ArrowError::ExternalError(Box::new(e)))?;
                }
                w.close().map_err(|e| ArrowError::ExternalError(Box::new(e)))?;
                out
            }
        };
        self.held.clear();
        Ok(Bytes::from(out))
    }
}

fn json_lines(batch: &RecordBatch) -> Result<Vec<u8>, ArrowError> {
    let mut w = arrow::json::LineDelimitedWriter::new(Vec::new());
    w.write(batch)?;
    w.finish()?;
    Ok(w.into_inner())
}
