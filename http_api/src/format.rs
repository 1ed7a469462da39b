//! Output formats of `/api/v3/query_sql`: batches in, bytes out, one batch at
//! a time where the format allows it.

use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{
    DataType, FieldRef, Float64Type, Int32Type, Int64Type, SchemaRef, TimeUnit,
    TimestampNanosecondType, UInt64Type,
};
use arrow::error::ArrowError;
use arrow::json::writer::{
    Encoder as JsonEncoder, EncoderFactory, EncoderOptions, JsonFormat, NullableEncoder,
};
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use chrono::Datelike;

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
                "application/jsonl" | "application/x-ndjson" | "application/json-lines" => {
                    Self::JsonLines
                }
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
        let mut out = Vec::new();
        self.batch_into(batch, &mut out)?;
        Ok(Bytes::from(out))
    }

    /// Appends one batch's bytes (possibly none) to `out`.
    pub fn batch_into(&mut self, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<(), ArrowError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        if matches!(self.format, QueryFormat::Json | QueryFormat::JsonLines) {
            // Room for about 16 bytes a value up front: growing a buffer of
            // megabytes by doubling copied it over and over (a fifth of the
            // time of a 100,000-row answer).
            // At most 64 MiB ahead: the rest grows as it is written.
            let estimate = batch.num_rows().saturating_mul(batch.num_columns() + 1) * 16;
            out.reserve(estimate.min(64 << 20));
        }
        match self.format {
            QueryFormat::Json if self.started => json_into::<LaterRows>(batch, out)?,
            QueryFormat::Json => {
                out.push(b'[');
                json_into::<FirstRows>(batch, out)?;
            }
            QueryFormat::JsonLines => json_lines_into(batch, out)?,
            QueryFormat::Csv => {
                let mut w = arrow::csv::WriterBuilder::new()
                    .with_header(!self.started)
                    .build(&mut *out);
                w.write(batch)?;
            }
            QueryFormat::Pretty | QueryFormat::Parquet => self.held.push(batch.clone()),
        }
        self.started = true;
        Ok(())
    }

    /// The closing bytes.
    pub fn finish(&mut self) -> Result<Bytes, ArrowError> {
        let mut out = Vec::new();
        self.finish_into(&mut out)?;
        Ok(Bytes::from(out))
    }

    /// Appends the closing bytes to `out`.
    pub fn finish_into(&mut self, out: &mut Vec<u8>) -> Result<(), ArrowError> {
        match self.format {
            QueryFormat::Json if self.started => out.push(b']'),
            QueryFormat::Json => out.extend_from_slice(b"[]"),
            QueryFormat::JsonLines => {}
            QueryFormat::Csv if !self.started => {
                let mut w = arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(&mut *out);
                w.write(&RecordBatch::new_empty(Arc::clone(&self.schema)))?;
            }
            QueryFormat::Csv => {}
            QueryFormat::Pretty => {
                out.extend_from_slice(
                    arrow::util::pretty::pretty_format_batches(&self.held)?
                        .to_string()
                        .as_bytes(),
                );
                out.push(b'\n');
            }
            QueryFormat::Parquet => {
                let mut w =
                    parquet::arrow::ArrowWriter::try_new(&mut *out, Arc::clone(&self.schema), None)
                        .map_err(|e| ArrowError::ExternalError(Box::new(e)))?;
                for b in &self.held {
                    w.write(b)
                        .map_err(|e| ArrowError::ExternalError(Box::new(e)))?;
                }
                w.close()
                    .map_err(|e| ArrowError::ExternalError(Box::new(e)))?;
            }
        }
        self.held.clear();
        Ok(())
    }
}

#[cfg(test)]
fn json_lines(batch: &RecordBatch) -> Result<Vec<u8>, ArrowError> {
    let mut out = Vec::new();
    json_lines_into(batch, &mut out)?;
    Ok(out)
}

fn json_lines_into(batch: &RecordBatch, out: &mut Vec<u8>) -> Result<(), ArrowError> {
    json_into::<arrow::json::writer::LineDelimited>(batch, out)
}

/// The rows of `batch` as JSON objects, straight into `out`, byte for byte
/// as arrow-json's writer gives them (nulls left out, NaN and infinities as
/// `null`, times as `NaiveDateTime`'s debug form). arrow-json's `Writer`
/// encodes into a buffer of its own and copies it over 8 KiB at a time, and
/// its row encoder calls each column's encoder through a `dyn` call and a
/// null check per cell; here the common column types are matched once per
/// batch and written by one loop (the JSON encoding was over half of a
/// 100,000-row `last_cache()` answer).
fn json_into<F: JsonFormat + Default>(
    batch: &RecordBatch,
    out: &mut Vec<u8>,
) -> Result<(), ArrowError> {
    let format = F::default();
    let options = EncoderOptions::default().with_encoder_factory(Arc::new(NanosAsText));
    let schema = batch.schema();
    let mut columns = schema
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(field, array)| JsonColumn::new(field, array.as_ref(), &options))
        .collect::<Result<Vec<_>, ArrowError>>()?;
    for row in 0..batch.num_rows() {
        format.start_row(out, row == 0)?;
        out.push(b'{');
        let mut first = true;
        for column in &mut columns {
            if column.is_null(row) {
                continue;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            match &column.padded_name {
                Some(padded) => put_padded(out, padded, column.name.len()),
                None => out.extend_from_slice(&column.name),
            }
            column.values.encode(row, out);
        }
        out.push(b'}');
        format.end_row(out)?;
    }
    Ok(())
}

/// One column of a JSON answer: its key and its values.
struct JsonColumn<'a> {
    /// `"name":`, the key as arrow-json escapes it.
    name: Vec<u8>,
    /// The same, padded, when it is short enough for [`put_padded`].
    padded_name: Option<[u8; 32]>,
    nulls: Option<&'a arrow::buffer::NullBuffer>,
    values: JsonValues<'a>,
}

/// A column's values, by the types queries mostly answer with; the rest go
/// through arrow-json's own encoders.
enum JsonValues<'a> {
    Float(&'a [f64]),
    Integer(&'a [i64]),
    UInteger(&'a [u64]),
    Boolean(&'a arrow::array::BooleanArray),
    Text(&'a arrow::array::StringArray),
    Tag(DictionaryText<'a>),
    Time(NanosEncoder<'a>),
    Other(NullableEncoder<'a>),
}

impl<'a> JsonColumn<'a> {
    fn new(
        field: &'a FieldRef,
        array: &'a dyn Array,
        options: &'a EncoderOptions,
    ) -> Result<Self, ArrowError> {
        let mut name = Vec::new();
        // serde_json escapes as arrow-json does; into a Vec it cannot fail.
        let _ = serde_json::to_writer(&mut name, field.name());
        name.push(b':');
        let padded_name = padded(&name);
        let nulls = array.nulls();
        let values = match array.data_type() {
            DataType::Float64 => JsonValues::Float(array.as_primitive::<Float64Type>().values()),
            DataType::Int64 => JsonValues::Integer(array.as_primitive::<Int64Type>().values()),
            DataType::UInt64 => JsonValues::UInteger(array.as_primitive::<UInt64Type>().values()),
            DataType::Boolean => JsonValues::Boolean(array.as_boolean()),
            DataType::Utf8 => JsonValues::Text(array.as_string::<i32>()),
            DataType::Timestamp(TimeUnit::Nanosecond, None) => JsonValues::Time(NanosEncoder::new(
                array.as_primitive::<TimestampNanosecondType>().values(),
            )),
            _ => match DictionaryText::of(array) {
                Some(tags) => JsonValues::Tag(tags),
                None => {
                    let encoder = arrow::json::writer::make_encoder(field, array, options)?;
                    return Ok(Self {
                        name,
                        padded_name,
                        nulls: None,
                        values: JsonValues::Other(encoder),
                    });
                }
            },
        };
        Ok(Self {
            name,
            padded_name,
            nulls,
            values,
        })
    }

    fn is_null(&self, row: usize) -> bool {
        match &self.values {
            JsonValues::Other(encoder) => encoder.is_null(row),
            _ => self.nulls.is_some_and(|n| n.is_null(row)),
        }
    }
}

impl JsonValues<'_> {
    fn encode(&mut self, row: usize, out: &mut Vec<u8>) {
        match self {
            JsonValues::Float(values) => {
                let v = values[row];
                if v.is_finite() {
                    write_float(v, out);
                } else {
                    out.extend_from_slice(b"null");
                }
            }
            JsonValues::Integer(values) => write_lexical(values[row], out),
            JsonValues::UInteger(values) => write_lexical(values[row], out),
            JsonValues::Boolean(values) => {
                out.extend_from_slice(if values.value(row) { b"true" } else { b"false" })
            }
            JsonValues::Text(values) => write_json_string(values.value(row), out),
            JsonValues::Tag(tags) => tags.encode(row, out),
            JsonValues::Time(times) => times.encode(row, out),
            JsonValues::Other(encoder) => encoder.encode(row, out),
        }
    }
}

/// `bytes` in a 32-byte array, if they fit.
fn padded(bytes: &[u8]) -> Option<[u8; 32]> {
    let mut padded = [0; 32];
    padded.get_mut(..bytes.len())?.copy_from_slice(bytes);
    Some(padded)
}

/// Appends the first `len` bytes of `padded` as one fixed-size copy and a
/// truncate: a slice of unknown length is a `memcpy` call, and a row
/// writes several short pieces per value (a tenth of a large answer).
#[inline]
fn put_padded<const N: usize>(out: &mut Vec<u8>, padded: &[u8; N], len: usize) {
    let at = out.len();
    out.extend_from_slice(padded);
    out.truncate(at + len);
}

/// A string as arrow-json writes it (serde_json's escapes); most need none
/// and are copied between their quotes.
fn write_json_string(text: &str, out: &mut Vec<u8>) {
    if text.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        let _ = serde_json::to_writer(&mut *out, text);
        return;
    }
    out.reserve(text.len() + 2);
    out.push(b'"');
    out.extend_from_slice(text.as_bytes());
    out.push(b'"');
}

/// A float as lexical writes it (its shortest decimal that reads back as
/// the same float). Readings mostly have a few decimals: a value that is
/// exactly the float nearest to some `k / 1000` with `|k| < 10^12` has that
/// decimal, trailing zeros dropped, as its shortest form (two decimals of
/// at most 15 significant digits never share a float), and is written from
/// `k` directly; any other goes to lexical.
fn write_float(v: f64, out: &mut Vec<u8>) {
    let scaled = v * 1000.0;
    // `as` truncates (one instruction; `trunc` is a libm call here).
    if scaled.abs() < 1e12 && (scaled as i64) as f64 == scaled && v != 0.0 {
        let k = scaled as i64;
        if k as f64 / 1000.0 == v {
            let magnitude = k.unsigned_abs();
            if k < 0 {
                out.push(b'-');
            }
            write_lexical(magnitude / 1000, out);
            let fraction = (magnitude % 1000) as u32;
            let digits = [
                b'.',
                b'0' + (fraction / 100) as u8,
                b'0' + (fraction / 10 % 10) as u8,
                b'0' + (fraction % 10) as u8,
            ];
            let mut len = 4;
            while len > 2 && digits[len - 1] == b'0' {
                len -= 1;
            }
            put_padded(out, &digits, len);
            return;
        }
    }
    write_lexical(v, out);
}

/// A number as arrow-json writes it (lexical's shortest form), straight
/// into `out`'s free space.
fn write_lexical<N: lexical_core::ToLexical>(value: N, out: &mut Vec<u8>) {
    let at = out.len();
    out.resize(at + N::FORMATTED_SIZE_DECIMAL, 0);
    let written = lexical_core::write(value, &mut out[at..]).len();
    out.truncate(at + written);
}

/// The rows of a JSON array's first batch: commas between them. The
/// array's brackets are the `Encoder`'s.
#[derive(Debug, Default)]
struct FirstRows;

impl JsonFormat for FirstRows {
    fn start_row<W: std::io::Write>(
        &self,
        w: &mut W,
        is_first_row: bool,
    ) -> Result<(), ArrowError> {
        if !is_first_row {
            w.write_all(b",")?;
        }
        Ok(())
    }
}

/// The rows of a JSON array's later batches: a comma before each.
#[derive(Debug, Default)]
struct LaterRows;

impl JsonFormat for LaterRows {
    fn start_row<W: std::io::Write>(&self, w: &mut W, _: bool) -> Result<(), ArrowError> {
        w.write_all(b",")?;
        Ok(())
    }
}

/// Writes nanosecond timestamps without a time zone (every `time` column)
/// as arrow-json does, `"2016-01-01T00:00:00.000005"`, without going
/// through `chrono` and `fmt`: about 1.5 K instructions a value there,
/// 5% of a small query answered from a cached plan.
#[derive(Debug)]
struct NanosAsText;

impl EncoderFactory for NanosAsText {
    fn make_default_encoder<'a>(
        &self,
        _field: &'a FieldRef,
        array: &'a dyn Array,
        _options: &'a EncoderOptions,
    ) -> Result<Option<NullableEncoder<'a>>, ArrowError> {
        if let Some(tags) = DictionaryText::of(array) {
            return Ok(Some(NullableEncoder::new(
                Box::new(tags),
                array.nulls().cloned(),
            )));
        }
        if array.data_type() != &DataType::Timestamp(TimeUnit::Nanosecond, None) {
            return Ok(None);
        }
        let a = array.as_primitive::<TimestampNanosecondType>();
        Ok(Some(NullableEncoder::new(
            Box::new(NanosEncoder::new(a.values())),
            a.nulls().cloned(),
        )))
    }
}

/// Tag columns (string dictionaries): each value used is escaped once per
/// batch and copied after that, where arrow-json escapes it on every row
/// (a third of the JSON encoder's work for `SELECT *` over the cpu table).
struct DictionaryText<'a> {
    keys: &'a [i32],
    values: &'a arrow::array::StringArray,
    /// The values used so far, as JSON text.
    text: Vec<u8>,
    /// Each value's place in `text`, once written.
    spans: Vec<Option<(usize, usize)>>,
}

impl<'a> DictionaryText<'a> {
    /// The encoder of a string dictionary with `i32` keys, if `array` is one.
    fn of(array: &'a dyn Array) -> Option<Self> {
        let d = array.as_dictionary_opt::<Int32Type>()?;
        let values = d.values().as_string_opt::<i32>()?;
        Some(DictionaryText {
            keys: d.keys().values(),
            values,
            text: Vec::new(),
            spans: vec![None; values.len()],
        })
    }
}

impl JsonEncoder for DictionaryText<'_> {
    fn encode(&mut self, idx: usize, out: &mut Vec<u8>) {
        let k = self.keys[idx] as usize;
        let (start, end) = match self.spans.get(k).copied().flatten() {
            Some(span) => span,
            None => {
                let start = self.text.len();
                // serde_json escapes as arrow-json does; into a Vec it
                // cannot fail. (A null value under a valid key reads as
                // its bytes, as in arrow-json: tags are null by their key.)
                let _ = serde_json::to_writer(&mut self.text, self.values.value(k));
                let span = (start, self.text.len());
                if let Some(slot) = self.spans.get_mut(k) {
                    *slot = Some(span);
                }
                span
            }
        };
        out.extend_from_slice(&self.text[start..end]);
    }
}

/// Timestamps as `chrono`'s `NaiveDateTime` debug form (arrow-json's): the
/// fraction has 0, 3, 6 or 9 digits. Every `i64` of nanoseconds falls in
/// the years 1677 to 2262, which it writes with four digits. The calendar
/// is chrono's, looked up once per day that the column's rows fall on
/// (consecutive rows mostly share it); only the formatting is ours.
struct NanosEncoder<'a> {
    values: &'a [i64],
    /// The day of the last row written (days since the epoch), and its
    /// `YYYY-MM-DDT`.
    day: Option<(i64, [u8; 11])>,
    /// The last value written and its text, quotes included: answers often
    /// repeat a time row after row (every series' last value at one time).
    last: Option<(i64, [u8; 31], usize)>,
}

impl<'a> NanosEncoder<'a> {
    fn new(values: &'a [i64]) -> Self {
        Self {
            values,
            day: None,
            last: None,
        }
    }
}

/// Nanoseconds in a day.
pub(crate) const DAY_NS: i64 = 86_400_000_000_000;

fn digits(out: &mut [u8], mut v: u32) {
    for d in out.iter_mut().rev() {
        *d = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

impl JsonEncoder for NanosEncoder<'_> {
    fn encode(&mut self, idx: usize, out: &mut Vec<u8>) {
        let ns = self.values[idx];
        if let Some((last, text, len)) = &self.last
            && *last == ns
        {
            put_padded(out, text, *len);
            return;
        }
        let day = ns.div_euclid(DAY_NS);
        let date = match self.day {
            Some((d, date)) if d == day => date,
            _ => {
                let t = chrono::DateTime::from_timestamp_nanos(ns).naive_utc();
                let mut date = *b"0000-00-00T";
                digits(&mut date[0..4], t.year() as u32);
                digits(&mut date[5..7], t.month());
                digits(&mut date[8..10], t.day());
                self.day = Some((day, date));
                date
            }
        };
        // Under a day: seconds and nanoseconds each fit a u32.
        let of_day = ns.rem_euclid(DAY_NS);
        let (sod, nanos) = (
            (of_day / 1_000_000_000) as u32,
            (of_day % 1_000_000_000) as u32,
        );
        let mut time = *b"00:00:00.000000000\"";
        digits(&mut time[0..2], sod / 3600);
        digits(&mut time[3..5], sod / 60 % 60);
        digits(&mut time[6..8], sod % 60);
        let end = if nanos == 0 {
            8
        } else if nanos % 1_000_000 == 0 {
            digits(&mut time[9..12], nanos / 1_000_000);
            12
        } else if nanos % 1_000 == 0 {
            digits(&mut time[9..15], nanos / 1_000);
            15
        } else {
            digits(&mut time[9..18], nanos);
            18
        };
        let mut text = [b'"'; 31];
        text[1..12].copy_from_slice(&date);
        text[12..12 + end].copy_from_slice(&time[..end]);
        let len = 12 + end + 1;
        put_padded(out, &text, len);
        self.last = Some((ns, text, len));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_read_as_arrow_json_writes_them() {
        let mut values = vec![
            0,
            1,
            -1,
            999,
            1_000,
            1_000_000,
            5_000,
            i64::MIN,
            i64::MAX,
            1_451_606_400_000_000_000,
        ];
        // A spread over the whole range, with every kind of fraction.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = x as i64;
            values.extend([
                v,
                v - v.rem_euclid(1_000),
                v - v.rem_euclid(1_000_000),
                v - v.rem_euclid(1_000_000_000),
            ]);
            values.push(v % (100 * 365 * DAY_NS));
        }
        // The same time row after row (written once, then copied).
        values.extend([5_000, 5_000, 5_000, -1, -1, 5_000]);
        // Rows on the same day, up to and past midnight (one calendar lookup
        // for the day, then its date again), before the epoch too.
        for day in [-3i64, 0, 16_801] {
            values.extend(
                (0..200)
                    .map(|i| day * DAY_NS + DAY_NS - 100 * 437_000_000_001 + i * 437_000_000_001),
            );
            values.extend((0..200).map(|i| day * DAY_NS + i * 60_000_000_000));
        }
        let array = arrow::array::TimestampNanosecondArray::from(values.clone());
        let mut encoder = NanosEncoder::new(array.values());
        for (i, v) in values.iter().enumerate() {
            let mut ours = Vec::new();
            encoder.encode(i, &mut ours);
            let theirs = arrow::temporal_conversions::timestamp_ns_to_datetime(*v).unwrap();
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                format!("\"{theirs:?}\""),
                "{v}"
            );
        }
        // Through the writer, with a null, as a query answer.
        let schema = std::sync::Arc::new(arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new(
                "time",
                DataType::Timestamp(TimeUnit::Nanosecond, None),
                true,
            ),
        ]));
        let col = arrow::array::TimestampNanosecondArray::from(vec![Some(5_000), None]);
        let batch = RecordBatch::try_new(schema, vec![std::sync::Arc::new(col)]).unwrap();
        assert_eq!(
            json_lines(&batch).unwrap(),
            b"{\"time\":\"1970-01-01T00:00:00.000005\"}\n{}\n"
        );
    }

    #[test]
    fn json_arrays_read_as_arrow_json_writes_them() {
        let schema = std::sync::Arc::new(arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new("s", DataType::Utf8, true),
            arrow::datatypes::Field::new("v", DataType::Float64, true),
        ]));
        let batch = |rows: &[(Option<&str>, Option<f64>)]| {
            let s = arrow::array::StringArray::from(rows.iter().map(|r| r.0).collect::<Vec<_>>());
            let v = arrow::array::Float64Array::from(rows.iter().map(|r| r.1).collect::<Vec<_>>());
            RecordBatch::try_new(
                Arc::clone(&schema),
                vec![std::sync::Arc::new(s), std::sync::Arc::new(v)],
            )
            .unwrap()
        };
        let batches = [
            batch(&[(Some("a\nb"), Some(1.5)), (None, Some(2.0))]),
            batch(&[]),
            batch(&[(Some("c"), None)]),
            batch(&[(Some(","), Some(-0.25)), (Some("]"), None), (None, None)]),
        ];
        for n in 0..=batches.len() {
            let mut theirs = arrow::json::ArrayWriter::new(Vec::new());
            let mut encoder = Encoder::new(QueryFormat::Json, Arc::clone(&schema));
            let mut ours = Vec::new();
            for b in &batches[..n] {
                theirs.write(b).unwrap();
                encoder.batch_into(b, &mut ours).unwrap();
            }
            theirs.finish().unwrap();
            encoder.finish_into(&mut ours).unwrap();
            let theirs = theirs.into_inner();
            // arrow-json writes nothing for no rows; the API answers `[]`.
            let theirs = if theirs.is_empty() {
                b"[]".to_vec()
            } else {
                theirs
            };
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                String::from_utf8(theirs).unwrap(),
                "{n} batches"
            );
        }
    }

    /// Every column type the row loop writes itself, and some it hands to
    /// arrow-json, with nulls, edge values and escapes.
    #[test]
    fn rows_of_every_type_read_as_arrow_json_writes_them() {
        use arrow::array::{
            ArrayRef, BooleanArray, Date32Array, DictionaryArray, Float64Array, Int32Array,
            Int64Array, ListArray, StringArray, TimestampMillisecondArray,
            TimestampNanosecondArray, UInt64Array,
        };
        use arrow::datatypes::{Field, Schema};
        let floats = [
            Some(0.0),
            Some(-0.0),
            None,
            Some(f64::NAN),
            Some(f64::INFINITY),
            Some(f64::NEG_INFINITY),
            Some(1e21),
            Some(1e-7),
            Some(5e-324),
            Some(f64::MAX),
            Some(0.1 + 0.2),
            Some(-123456.789),
        ];
        let n = floats.len();
        let pick = |i: usize| i % 3 != 1;
        let ints: Vec<Option<i64>> = (0..n)
            .map(|i| pick(i).then(|| [i64::MIN, i64::MAX, 0, -1, 42][i % 5]))
            .collect();
        let uints: Vec<Option<u64>> = (0..n)
            .map(|i| pick(i).then(|| [u64::MAX, 0, 7][i % 3]))
            .collect();
        let bools: Vec<Option<bool>> = (0..n).map(|i| pick(i + 1).then_some(i % 2 == 0)).collect();
        let texts: Vec<Option<&str>> = (0..n)
            .map(|i| pick(i + 2).then(|| ["a\"b", "\\", "\n\t\u{1}", "π ✓", ""][i % 5]))
            .collect();
        let times: Vec<Option<i64>> = (0..n)
            .map(|i| pick(i).then(|| 1_700_000_000_123_456_789 + i as i64 * 1_000_000))
            .collect();
        let keys = Int32Array::from(
            (0..n as i32)
                .map(|i| (i % 4 != 3).then_some(i % 2))
                .collect::<Vec<_>>(),
        );
        let tags = DictionaryArray::<Int32Type>::try_new(
            keys,
            Arc::new(StringArray::from(vec!["x\"y", "z"])),
        )
        .unwrap();
        let list = ListArray::from_iter_primitive::<Int64Type, _, _>(
            (0..n).map(|i| pick(i).then(|| vec![Some(i as i64), None])),
        );
        let columns: Vec<(&str, ArrayRef)> = vec![
            ("f", Arc::new(Float64Array::from(floats.to_vec()))),
            ("i", Arc::new(Int64Array::from(ints))),
            ("u", Arc::new(UInt64Array::from(uints))),
            ("b", Arc::new(BooleanArray::from(bools))),
            ("s \"quoted\"", Arc::new(StringArray::from(texts))),
            ("tag", Arc::new(tags)),
            (
                "time",
                Arc::new(TimestampNanosecondArray::from(times.clone())),
            ),
            (
                "small, under a name longer than the thirty-two bytes padded",
                Arc::new(Int32Array::from(
                    (0..n as i32).map(Some).collect::<Vec<_>>(),
                )),
            ),
            (
                "day",
                Arc::new(Date32Array::from(
                    (0..n as i32).map(Some).collect::<Vec<_>>(),
                )),
            ),
            (
                "ms_utc",
                Arc::new(
                    TimestampMillisecondArray::from(
                        times
                            .iter()
                            .map(|t| t.map(|t| t / 1_000_000))
                            .collect::<Vec<_>>(),
                    )
                    .with_timezone("UTC"),
                ),
            ),
            ("list", Arc::new(list)),
        ];
        let schema = Arc::new(Schema::new(
            columns
                .iter()
                .map(|(name, a)| Field::new(*name, a.data_type().clone(), true))
                .collect::<Vec<_>>(),
        ));
        let batch =
            RecordBatch::try_new(schema, columns.into_iter().map(|(_, a)| a).collect()).unwrap();
        let mut theirs = arrow::json::LineDelimitedWriter::new(Vec::new());
        theirs.write(&batch).unwrap();
        theirs.finish().unwrap();
        assert_eq!(
            String::from_utf8(json_lines(&batch).unwrap()).unwrap(),
            String::from_utf8(theirs.into_inner()).unwrap()
        );
    }

    /// The float fast path against lexical, over readings with up to
    /// three decimals, near the path's limits and around them.
    #[test]
    fn floats_read_as_lexical_writes_them() {
        let mut values: Vec<f64> = Vec::new();
        for k in -30_000i64..30_000 {
            values.push(k as f64 / 1000.0);
            values.push(k as f64 / 100.0);
            values.push(k as f64 / 10.0);
            values.push(k as f64 * 37.0 + 0.5);
        }
        for e in -12..=16 {
            let p = 10f64.powi(e);
            for m in [1.0, 1.5, 9.999, 12.345, 999_999_999.999, 0.1 + 0.2] {
                values.extend([m * p, -m * p, m * p * (1.0 + f64::EPSILON)]);
            }
        }
        values.extend([
            999_999_999.999,
            1e9,
            1e9 - 0.001,
            0.001,
            0.0005,
            -0.0,
            0.0,
            5e-324,
            f64::MAX,
            f64::MIN_POSITIVE,
            123_456_789.123,
        ]);
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            values.push(f64::from_bits(x));
            values.push((x % 2_000_000_000) as f64 / 1000.0 - 1e6);
        }
        for v in values.into_iter().filter(|v| v.is_finite()) {
            let mut ours = Vec::new();
            write_float(v, &mut ours);
            let mut theirs = Vec::new();
            write_lexical(v, &mut theirs);
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                String::from_utf8(theirs).unwrap(),
                "{v:e} ({:#x})",
                v.to_bits()
            );
        }
    }

    #[test]
    fn tags_read_as_arrow_json_writes_them() {
        use arrow::array::{DictionaryArray, Int32Array, StringArray};
        let values = StringArray::from(vec![
            Some("a\"b\\c\n"),
            None,
            Some("π ✓"),
            Some("unused"),
            Some(""),
        ]);
        let keys = Int32Array::from(vec![
            Some(0),
            Some(2),
            None,
            Some(1),
            Some(0),
            Some(4),
            Some(2),
        ]);
        let dict =
            DictionaryArray::<Int32Type>::try_new(keys, std::sync::Arc::new(values)).unwrap();
        let schema = std::sync::Arc::new(arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new("tag", dict.data_type().clone(), true),
        ]));
        let batch = RecordBatch::try_new(schema, vec![std::sync::Arc::new(dict)]).unwrap();
        let mut plain = arrow::json::LineDelimitedWriter::new(Vec::new());
        plain.write(&batch).unwrap();
        plain.finish().unwrap();
        let ours = json_lines(&batch).unwrap();
        assert_eq!(
            String::from_utf8(ours).unwrap(),
            String::from_utf8(plain.into_inner()).unwrap()
        );
    }
}
