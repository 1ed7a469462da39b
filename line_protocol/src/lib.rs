//! InfluxDB line protocol: splitting a request body into lines and parsing each line.
//!
//! ```text
//!   request body ──split_lines──▶ (line_number, &str) ──parse_line──▶ ParsedLine<'_>
//!                                                                        │
//!                      ingester validates against the catalog ◀──────────┘
//! ```
//!
//! The parser is zero-copy: names and strings borrow from the body unless they
//! contain escapes, in which case they are unescaped into an owned `String`.
//! Every failure is a [`LineError`] whose message names the problem, so the write
//! endpoints can return it per line.
//!
//! Syntax accepted (the InfluxDB 1.x/3.x grammar):
//! `measurement[,tag=value...] field=value[,field=value...] [timestamp]`
//! - measurement: `\,` and `\ ` are escapes;
//! - tag keys, tag values and field keys: `\,`, `\=` and `\ ` are escapes;
//! - string field values are double-quoted, with `\"` and `\\` as escapes;
//! - numbers: float (default), `123i` integer, `123u` unsigned;
//! - booleans: `t T true True TRUE f F false False FALSE`;
//! - blank lines, lines starting with `#`, and `\r\n` endings are accepted.

use std::borrow::Cow;

mod precision;
pub use precision::Precision;

/// A field value as written in the line.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue<'a> {
    /// A float, written without suffix.
    F64(f64),
    /// An integer, written with the `i` suffix.
    I64(i64),
    /// An unsigned integer, written with the `u` suffix.
    U64(u64),
    /// A double-quoted string.
    String(Cow<'a, str>),
    /// A boolean in any of its spellings.
    Bool(bool),
}

impl FieldValue<'_> {
    /// The name of the type, as used in error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            FieldValue::F64(_) => "float",
            FieldValue::I64(_) => "integer",
            FieldValue::U64(_) => "unsigned integer",
            FieldValue::String(_) => "string",
            FieldValue::Bool(_) => "boolean",
        }
    }
}

/// One parsed line of line protocol.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedLine<'a> {
    /// The measurement (table) name.
    pub measurement: Cow<'a, str>,
    /// Tags in the order written.
    pub tags: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    /// Fields in the order written; never empty.
    pub fields: Vec<(Cow<'a, str>, FieldValue<'a>)>,
    /// The timestamp as written, in the request's precision.
    pub timestamp: Option<i64>,
}

/// Why a line was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// The measurement name is empty.
    #[error("missing measurement name")]
    MissingMeasurement,
    /// A tag has no `=value`.
    #[error("invalid tag set: tag '{0}' has no value")]
    MissingTagValue(String),
    /// A tag key is empty.
    #[error("invalid tag set: empty tag key")]
    EmptyTagKey,
    /// A tag value is empty.
    #[error("invalid tag set: tag '{0}' has an empty value")]
    EmptyTagValue(String),
    /// The line has no field set.
    #[error("no fields were provided; a line needs at least one field")]
    NoFields,
    /// A field key is empty.
    #[error("invalid field set: empty field key")]
    EmptyFieldKey,
    /// A field has no `=value`.
    #[error("invalid field set: field '{0}' has no value")]
    MissingFieldValue(String),
    /// A field value could not be parsed.
    #[error("invalid field value for field '{field}': {reason}")]
    BadFieldValue {
        /// The field's name.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A quoted string is not closed.
    #[error("invalid field value for field '{0}': unterminated string")]
    UnterminatedString(String),
    /// The same tag key appears twice.
    #[error("duplicate tag key '{0}'")]
    DuplicateTag(String),
    /// The same field key appears twice.
    #[error("duplicate field key '{0}'")]
    DuplicateField(String),
    /// A name is used as a tag and as a field in one line.
    #[error("column '{0}' is used as both a tag and a field")]
    TagFieldConflict(String),
    /// `time` is the timestamp column and can't be a tag or field.
    #[error("column name 'time' is reserved for the timestamp and can't be used as a tag or field")]
    ReservedTime,
    /// The timestamp is not an integer.
    #[error("invalid timestamp '{0}': expected an integer")]
    BadTimestamp(String),
    /// The timestamp does not fit in nanoseconds.
    #[error("timestamp {0} is out of range for nanosecond precision")]
    TimestampOutOfRange(i64),
    /// Text after the timestamp.
    #[error("unexpected text after the timestamp: '{0}'")]
    TrailingText(String),
    /// The line is not valid UTF-8.
    #[error("line is not valid UTF-8")]
    InvalidUtf8,
}

/// Splits a body into `(line_number, line)` pairs, skipping blank lines and
/// `#` comments. Line numbers are 1-based physical line numbers. A newline
/// inside a quoted string field value does not end the line.
pub fn split_lines(body: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    LineSplitter {
        body,
        pos: 0,
        line_number: 0,
    }
}

#[derive(Debug)]
struct LineSplitter<'a> {
    body: &'a [u8],
    pos: usize,
    line_number: usize,
}

impl<'a> Iterator for LineSplitter<'a> {
    type Item = (usize, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.pos >= self.body.len() {
                return None;
            }
            self.line_number += 1;
            let start = self.pos;
            let number = self.line_number;
            let rest = &self.body[start..];
            // Fast path: the next newline ends the line unless the line holds a
            // quote (a string field may contain newlines).
            let nl = memchr::memchr(b'\n', rest).map_or(self.body.len(), |i| start + i);
            let end = if memchr::memchr(b'"', &self.body[start..nl]).is_none() {
                nl
            } else {
                let end = find_line_end(self.body, start);
                // Newlines inside quoted strings still advance the physical
                // line count for the lines that follow.
                self.line_number += memchr::memchr_iter(b'\n', &self.body[start..end]).count();
                end
            };
            self.pos = end + 1;
            let mut line = &self.body[start..end];
            if let [rest @ .., b'\r'] = line {
                line = rest;
            }
            let trimmed = trim_ascii_start(line);
            if trimmed.is_empty() || trimmed[0] == b'#' {
                continue;
            }
            return Some((number, line));
        }
    }
}

/// Finds the end of the line that starts at `start`: the first `\n` that is not
/// inside a quoted string field value. A quote opens a string only right after
/// `=`, which is where field values start.
fn find_line_end(body: &[u8], start: usize) -> usize {
    let mut i = start;
    let mut in_string = false;
    let mut prev = 0u8;
    while i < body.len() {
        let b = body[i];
        if in_string {
            match b {
                b'\\' => {
                    i += 2;
                    prev = 0;
                    continue;
                }
                b'"' => in_string = false,
                _ => {}
            }
        } else {
            match b {
                b'\n' => return i,
                b'\\' => {
                    i += 2;
                    prev = 0;
                    continue;
                }
                b'"' if prev == b'=' => in_string = true,
                _ => {}
            }
        }
        prev = b;
        i += 1;
    }
    body.len()
}

fn trim_ascii_start(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|b| **b == b' ' || **b == b'\t').count();
    &s[n..]
}

/// Parses one line (without its newline).
pub fn parse_line(line: &[u8]) -> Result<ParsedLine<'_>, LineError> {
    let mut tags = Vec::with_capacity(12);
    let mut fields = Vec::with_capacity(12);
    let (measurement, timestamp) = parse_line_into(line, &mut tags, &mut fields)?;
    Ok(ParsedLine {
        measurement,
        tags,
        fields,
        timestamp,
    })
}

/// Tags as parsed: key and value.
pub type Tag<'a> = (Cow<'a, str>, Cow<'a, str>);
/// Fields as parsed: key and value.
pub type Field<'a> = (Cow<'a, str>, FieldValue<'a>);

/// Parses one line, appending its tags and fields to shared vectors (one
/// allocation for a whole request instead of two per line). Returns the
/// measurement and timestamp; on error nothing is appended.
pub fn parse_line_into<'a>(
    line: &'a [u8],
    tags: &mut Vec<Tag<'a>>,
    fields: &mut Vec<Field<'a>>,
) -> Result<(Cow<'a, str>, Option<i64>), LineError> {
    let line = std::str::from_utf8(line).map_err(|_| LineError::InvalidUtf8)?;
    let (t0, f0) = (tags.len(), fields.len());
    let r = Parser::new(line).parse(tags, fields);
    if r.is_err() {
        tags.truncate(t0);
        fields.truncate(f0);
    }
    r
}

/// Splits a line at the space that ends its series key
/// (`measurement[,tag=value...]`), for callers that cache what they learnt
/// from a key: equal keys parse to equal measurements and tags. `None` when
/// the line starts with whitespace or the key holds a backslash (an escape);
/// such lines go through [`parse_line_into`]. The key is returned exactly
/// as written, the rest starts at the space.
pub fn split_series(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let space = memchr::memchr(b' ', line)?;
    let key = &line[..space];
    if space == 0 || line[0] == b'\t' || memchr::memchr(b'\\', key).is_some() {
        return None;
    }
    Some((key, &line[space..]))
}

/// Parses the field set and timestamp after a series key (the `rest` of
/// [`split_series`]), appending the fields. Unlike [`parse_line_into`], the
/// field keys are not checked for duplicates or against the tags: the caller
/// must check them (or know them from an earlier line) before it accepts the
/// line. On error nothing is appended.
///
/// `hint` is an earlier line's fields, as this parser returned them: keys
/// that repeat in the same places are matched, not scanned again.
pub fn parse_fields_into<'a>(
    rest: &'a [u8],
    fields: &mut Vec<Field<'a>>,
    hint: &[Field<'_>],
) -> Result<Option<i64>, LineError> {
    let rest = std::str::from_utf8(rest).map_err(|_| LineError::InvalidUtf8)?;
    let f0 = fields.len();
    let mut p = Parser {
        s: rest,
        b: rest.as_bytes(),
        pos: 0,
    };
    let r = p.fields_and_time(fields, None, hint);
    if r.is_err() {
        fields.truncate(f0);
    }
    r
}

/// Bytes that end (or escape within) a measurement: `,` `space` `\\`.
const MEASUREMENT_STOPS: [bool; 256] = stops(false);
/// Bytes that end (or escape within) a tag key, tag value or field key: `,` `=` `space` `\\`.
const NAME_STOPS: [bool; 256] = stops(true);

const fn stops(equals: bool) -> [bool; 256] {
    let mut t = [false; 256];
    t[b',' as usize] = true;
    t[b' ' as usize] = true;
    t[b'\\' as usize] = true;
    t[b'=' as usize] = equals;
    t
}

struct Parser<'a> {
    s: &'a str,
    b: &'a [u8],
    pos: usize,
}

/// Which characters end a token, and which escapes apply.
#[derive(Clone, Copy)]
enum Token {
    Measurement,
    TagKey,
    TagValue,
    FieldKey,
}

impl<'a> Parser<'a> {
    fn new(s: &'a str) -> Self {
        let b = s.as_bytes();
        let start = b.iter().take_while(|c| **c == b' ' || **c == b'\t').count();
        Parser { s, b, pos: start }
    }

    fn parse(
        mut self,
        all_tags: &mut Vec<Tag<'a>>,
        all_fields: &mut Vec<Field<'a>>,
    ) -> Result<(Cow<'a, str>, Option<i64>), LineError> {
        let t0 = all_tags.len();
        let measurement = self.series(all_tags)?;
        let timestamp = self.fields_and_time(all_fields, Some(&all_tags[t0..]), &[])?;
        Ok((measurement, timestamp))
    }

    /// The measurement and the tag set, checked for duplicate keys.
    fn series(&mut self, all_tags: &mut Vec<Tag<'a>>) -> Result<Cow<'a, str>, LineError> {
        let t0 = all_tags.len();
        let measurement = self.token(Token::Measurement);
        if measurement.is_empty() {
            return Err(LineError::MissingMeasurement);
        }
        while self.peek() == Some(b',') {
            self.pos += 1;
            let key = self.token(Token::TagKey);
            if self.peek() != Some(b'=') {
                if key.is_empty() {
                    return Err(LineError::EmptyTagKey);
                }
                return Err(LineError::MissingTagValue(key.into_owned()));
            }
            self.pos += 1;
            if key.is_empty() {
                return Err(LineError::EmptyTagKey);
            }
            let value = self.token(Token::TagValue);
            if value.is_empty() {
                return Err(LineError::EmptyTagValue(key.into_owned()));
            }
            if key == "time" {
                return Err(LineError::ReservedTime);
            }
            if all_tags[t0..].iter().any(|(k, _)| *k == key) {
                return Err(LineError::DuplicateTag(key.into_owned()));
            }
            all_tags.push((key, value));
        }
        Ok(measurement)
    }

    /// The field set and the optional timestamp, from the spaces that end
    /// the series on. With `tags`, field keys are checked for duplicates and
    /// against those tags; without, the caller checks them.
    fn fields_and_time(
        &mut self,
        all_fields: &mut Vec<Field<'a>>,
        tags: Option<&[Tag<'a>]>,
        hint: &[Field<'_>],
    ) -> Result<Option<i64>, LineError> {
        let f0 = all_fields.len();
        if !self.skip_spaces() {
            return Err(LineError::NoFields);
        }
        loop {
            let key = match hint.get(all_fields.len() - f0) {
                Some((Cow::Borrowed(k), _)) if self.at_key(k) => {
                    let key = &self.s[self.pos..self.pos + k.len()];
                    self.pos += k.len();
                    Cow::Borrowed(key)
                }
                _ => self.token(Token::FieldKey),
            };
            if self.peek() != Some(b'=') {
                // `m 123`: a measurement and a timestamp, but no field set.
                let only_timestamp = all_fields.len() == f0
                    && is_integer(&key)
                    && self.s[self.pos..].trim().is_empty();
                if only_timestamp || (key.is_empty() && all_fields.len() == f0) {
                    return Err(LineError::NoFields);
                }
                if key.is_empty() {
                    return Err(LineError::EmptyFieldKey);
                }
                return Err(LineError::MissingFieldValue(key.into_owned()));
            }
            self.pos += 1;
            if key.is_empty() {
                return Err(LineError::EmptyFieldKey);
            }
            let value = self.field_value(&key)?;
            if key == "time" {
                return Err(LineError::ReservedTime);
            }
            if let Some(tags) = tags {
                if all_fields[f0..].iter().any(|(k, _)| *k == key) {
                    return Err(LineError::DuplicateField(key.into_owned()));
                }
                if tags.iter().any(|(k, _)| *k == key) {
                    return Err(LineError::TagFieldConflict(key.into_owned()));
                }
            }
            all_fields.push((key, value));
            if self.peek() == Some(b',') {
                self.pos += 1;
                continue;
            }
            break;
        }
        if self.skip_spaces() && self.pos < self.b.len() {
            let start = self.pos;
            while self.pos < self.b.len() && !matches!(self.b[self.pos], b' ' | b'\t') {
                self.pos += 1;
            }
            let text = &self.s[start..self.pos];
            let ts = parse_timestamp(text)?;
            self.skip_spaces();
            if self.pos < self.b.len() {
                return Err(LineError::TrailingText(self.s[self.pos..].to_string()));
            }
            Ok(Some(ts))
        } else if self.pos < self.b.len() {
            // A field value ended at something other than ',' or ' ', e.g. `f="a"x`.
            Err(LineError::TrailingText(self.s[self.pos..].to_string()))
        } else {
            Ok(None)
        }
    }

    /// Whether the input continues with `key=`. `key` is a field key the
    /// parser returned unescaped, so it holds no byte that ends a key: the
    /// tokenizer would read exactly `key` here.
    fn at_key(&self, key: &str) -> bool {
        let rest = &self.b[self.pos..];
        rest.len() > key.len() && rest[key.len()] == b'=' && rest.starts_with(key.as_bytes())
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    /// Skips spaces and tabs; returns whether any were skipped.
    fn skip_spaces(&mut self) -> bool {
        let start = self.pos;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
        self.pos > start
    }

    /// Reads a name up to its unescaped terminator.
    fn token(&mut self, kind: Token) -> Cow<'a, str> {
        let stops: &[bool; 256] = match kind {
            Token::Measurement => &MEASUREMENT_STOPS,
            _ => &NAME_STOPS,
        };
        let start = self.pos;
        let mut escaped = false;
        let b = self.b;
        let mut pos = self.pos;
        while pos < b.len() {
            let c = b[pos];
            if !stops[c as usize] {
                pos += 1;
                continue;
            }
            if c == b'\\' && pos + 1 < b.len() {
                escaped = true;
                pos += 2;
                continue;
            }
            if c == b'\\' {
                pos += 1;
                continue;
            }
            break;
        }
        self.pos = pos;
        let raw = &self.s[start..pos];
        if escaped {
            Cow::Owned(unescape(raw, kind))
        } else {
            Cow::Borrowed(raw)
        }
    }

    fn field_value(&mut self, key: &str) -> Result<FieldValue<'a>, LineError> {
        if self.peek() == Some(b'"') {
            self.pos += 1;
            let start = self.pos;
            let mut escaped = false;
            loop {
                match self.peek() {
                    None => return Err(LineError::UnterminatedString(key.to_string())),
                    Some(b'\\') if self.pos + 1 < self.b.len() => {
                        escaped = true;
                        self.pos += 2;
                    }
                    Some(b'"') => break,
                    Some(_) => self.pos += 1,
                }
            }
            let raw = &self.s[start..self.pos];
            self.pos += 1;
            let value = if escaped {
                Cow::Owned(unescape_string(raw))
            } else {
                Cow::Borrowed(raw)
            };
            return Ok(FieldValue::String(value));
        }
        let start = self.pos;
        while self.pos < self.b.len() && !matches!(self.b[self.pos], b',' | b' ' | b'\t') {
            self.pos += 1;
        }
        let raw = &self.s[start..self.pos];
        parse_scalar(raw).map_err(|reason| LineError::BadFieldValue {
            field: key.to_string(),
            reason,
        })
    }
}

fn parse_scalar(raw: &str) -> Result<FieldValue<'static>, String> {
    let bytes = raw.as_bytes();
    let Some(&last) = bytes.last() else {
        return Err("empty value".to_string());
    };
    match raw {
        "t" | "T" | "true" | "True" | "TRUE" => return Ok(FieldValue::Bool(true)),
        "f" | "F" | "false" | "False" | "FALSE" => return Ok(FieldValue::Bool(false)),
        _ => {}
    }
    match last {
        // `str::parse` takes exactly the digits with an optional sign that
        // `is_integer` does, so that check only names what went wrong.
        b'i' => {
            let digits = &raw[..raw.len() - 1];
            digits.parse::<i64>().map(FieldValue::I64).map_err(|_| {
                if is_integer(digits) {
                    format!("integer '{raw}' is out of range for a 64-bit signed integer")
                } else {
                    format!("'{raw}' is not a valid integer")
                }
            })
        }
        b'u' => {
            let digits = &raw[..raw.len() - 1];
            digits.parse::<u64>().map(FieldValue::U64).map_err(|_| {
                if digits.starts_with('-') && is_integer(digits) {
                    format!("unsigned integer '{raw}' can't be negative")
                } else if is_integer(digits) {
                    format!(
                        "unsigned integer '{raw}' is out of range for a 64-bit unsigned integer"
                    )
                } else {
                    format!("'{raw}' is not a valid unsigned integer")
                }
            })
        }
        _ => {
            if let Some(v) = fast_decimal(bytes) {
                return Ok(FieldValue::F64(v));
            }
            // Only plain decimal notation: Rust would also accept "inf" and "NaN".
            let ok = bytes
                .iter()
                .all(|c| c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.' | b'e' | b'E'))
                && bytes.iter().any(|c| c.is_ascii_digit());
            if !ok {
                return Err(format!(
                    "'{raw}' is not a number, boolean or quoted string (strings need double quotes)"
                ));
            }
            let v = raw
                .parse::<f64>()
                .map_err(|_| format!("'{raw}' is not a valid float"))?;
            if !v.is_finite() {
                return Err(format!("float '{raw}' is out of range"));
            }
            Ok(FieldValue::F64(v))
        }
    }
}

/// Exact powers of ten as f64 (10^22 is the largest that is exact).
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// The common float shape, `[-+]digits[.digits]` with at most 15 digits, in
/// one pass. The digits form an integer below 2^53 and the divisor is an
/// exact power of ten, so one IEEE division gives the correctly rounded
/// value, the same as `str::parse` (Clinger's fast path). Anything else
/// (exponents, long mantissas) returns `None` for the general parser.
fn fast_decimal(b: &[u8]) -> Option<f64> {
    let (neg, rest) = match b.first()? {
        b'-' => (true, &b[1..]),
        b'+' => (false, &b[1..]),
        _ => (false, b),
    };
    let mut mantissa: u64 = 0;
    let mut digits = 0usize;
    let mut frac = 0usize;
    let mut dot = false;
    for &c in rest {
        match c {
            b'0'..=b'9' => {
                mantissa = mantissa * 10 + u64::from(c - b'0');
                digits += 1;
                frac += usize::from(dot);
                if digits > 15 {
                    return None;
                }
            }
            b'.' if !dot => dot = true,
            _ => return None,
        }
    }
    if digits == 0 {
        return None;
    }
    let v = mantissa as f64 / POW10[frac];
    Some(if neg { -v } else { v })
}

fn is_integer(s: &str) -> bool {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|c| c.is_ascii_digit())
}

fn parse_timestamp(text: &str) -> Result<i64, LineError> {
    text.parse::<i64>()
        .map_err(|_| LineError::BadTimestamp(text.to_string()))
}

fn unescape(raw: &str, kind: Token) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(n @ (',' | ' ')) => out.push(n),
                Some('=') if !matches!(kind, Token::Measurement) => out.push('='),
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn unescape_string(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(n @ ('"' | '\\')) => out.push(n),
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests;
