//! A recursive-descent parser over an on-demand scanner.
//!
//! The scanner does not run ahead: `/` means division or the start of a
//! regex depending on where the parser is, so the parser asks for a regex
//! where one may appear. Errors read as InfluxDB 1.x words them
//! (`found X, expected Y at line 1, char N`), since scripts match on them.

use crate::ast::*;
use crate::{ParseError, duration};

/// The reserved words of InfluxQL 1.x. An unquoted reserved word is never
/// an identifier.
const KEYWORDS: &[&str] = &[
    "ALL",
    "ALTER",
    "ANALYZE",
    "ANY",
    "AS",
    "ASC",
    "BEGIN",
    "BY",
    "CARDINALITY",
    "CREATE",
    "CONTINUOUS",
    "DATABASE",
    "DATABASES",
    "DEFAULT",
    "DELETE",
    "DESC",
    "DESTINATIONS",
    "DIAGNOSTICS",
    "DISTINCT",
    "DROP",
    "DURATION",
    "END",
    "EVERY",
    "EXACT",
    "EXPLAIN",
    "FIELD",
    "FOR",
    "FROM",
    "GRANT",
    "GRANTS",
    "GROUP",
    "GROUPS",
    "IN",
    "INF",
    "INSERT",
    "INTO",
    "KEY",
    "KEYS",
    "KILL",
    "LIMIT",
    "MEASUREMENT",
    "MEASUREMENTS",
    "NAME",
    "OFFSET",
    "ON",
    "ORDER",
    "PASSWORD",
    "POLICY",
    "POLICIES",
    "PRIVILEGES",
    "QUERIES",
    "QUERY",
    "READ",
    "REPLICATION",
    "RESAMPLE",
    "RETENTION",
    "REVOKE",
    "SELECT",
    "SERIES",
    "SET",
    "SHARD",
    "SHARDS",
    "SHOW",
    "SLIMIT",
    "SOFFSET",
    "STATS",
    "SUBSCRIPTION",
    "SUBSCRIPTIONS",
    "TAG",
    "TO",
    "USER",
    "USERS",
    "VALUES",
    "WHERE",
    "WITH",
    "WRITE",
    "AND",
    "OR",
    "TRUE",
    "FALSE",
];

/// Whether `word` is reserved (case-insensitive).
pub(crate) fn is_keyword(word: &str) -> bool {
    KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(word))
}

const EXPECT_STATEMENT: &str =
    "SELECT, DELETE, SHOW, CREATE, DROP, EXPLAIN, GRANT, REVOKE, ALTER, SET, KILL";
const EXPECT_SHOW: &str = "CONTINUOUS, DATABASES, DIAGNOSTICS, FIELD, GRANTS, MEASUREMENT, \
                           MEASUREMENTS, QUERIES, RETENTION, SERIES, SHARD, SHARDS, STATS, \
                           SUBSCRIPTIONS, TAG, USERS";
const EXPECT_OPERAND: &str = "identifier, string, number, bool";

/// A scanned token.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Eof,
    Ident(String),
    Keyword(&'static str),
    QuotedIdent(String),
    Str(String),
    Integer(String),
    Float(String),
    Duration(String),
    Param(String),
    Sym(&'static str),
    /// A character that starts no token, or an unterminated string.
    Illegal(String),
}

impl Tok {
    /// The token as an error message shows it.
    fn shown(&self) -> String {
        match self {
            Tok::Eof => "EOF".to_string(),
            Tok::Keyword(k) => k.to_string(),
            Tok::Ident(s)
            | Tok::QuotedIdent(s)
            | Tok::Str(s)
            | Tok::Integer(s)
            | Tok::Float(s)
            | Tok::Duration(s)
            | Tok::Illegal(s) => s.clone(),
            Tok::Param(p) => format!("${p}"),
            Tok::Sym(s) => s.to_string(),
        }
    }

    fn is_keyword(&self, k: &str) -> bool {
        matches!(self, Tok::Keyword(kw) if *kw == k)
    }
}

/// Parses InfluxQL text into statements.
pub(crate) struct Parser<'a> {
    src: &'a str,
    pos: usize,
}

const SYMBOLS: &[&str] = &[
    "::", "!=", "<>", "<=", ">=", "=~", "!~", "(", ")", ",", ";", ".", "*", "+", "-", "/", "%",
    "&", "|", "^", "=", "<", ">", ":",
];

impl<'a> Parser<'a> {
    pub(crate) fn new(src: &'a str) -> Self {
        Self { src, pos: 0 }
    }

    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn skip_space_and_comments(&mut self) {
        loop {
            let rest = self.rest();
            let trimmed = rest.trim_start();
            self.pos += rest.len() - trimmed.len();
            if trimmed.starts_with("--") {
                let end = trimmed.find('\n').unwrap_or(trimmed.len());
                self.pos += end;
            } else if trimmed.starts_with("/*") {
                let end = trimmed.find("*/").map(|e| e + 2).unwrap_or(trimmed.len());
                self.pos += end;
            } else {
                return;
            }
        }
    }

    /// Scans the next token; returns it and its byte offset.
    fn scan(&mut self) -> (Tok, usize) {
        self.skip_space_and_comments();
        let start = self.pos;
        let rest = self.rest();
        let Some(c) = rest.chars().next() else {
            return (Tok::Eof, start);
        };
        if c.is_alphabetic() || c == '_' {
            let len = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let word = &rest[..len];
            self.pos += len;
            let tok = KEYWORDS
                .iter()
                .find(|k| k.eq_ignore_ascii_case(word))
                .map(|k| Tok::Keyword(k))
                .unwrap_or_else(|| Tok::Ident(word.to_string()));
            return (tok, start);
        }
        if c == '"' || c == '\'' {
            return match scan_quoted(rest, c) {
                Some((text, len)) => {
                    self.pos += len;
                    let tok = if c == '"' {
                        Tok::QuotedIdent(text)
                    } else {
                        Tok::Str(text)
                    };
                    (tok, start)
                }
                None => {
                    self.pos = self.src.len();
                    (Tok::Illegal(rest.to_string()), start)
                }
            };
        }
        if c.is_ascii_digit() || (c == '.' && rest[1..].starts_with(|c: char| c.is_ascii_digit())) {
            let int_len = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            let after = &rest[int_len..];
            if after.starts_with('.') && after[1..].starts_with(|c: char| c.is_ascii_digit()) {
                let frac = after[1..]
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(after.len() - 1);
                let len = int_len + 1 + frac;
                self.pos += len;
                return (Tok::Float(rest[..len].to_string()), start);
            }
            if after.starts_with(|c: char| c.is_alphabetic()) {
                let len = rest
                    .find(|c: char| !(c.is_ascii_digit() || c.is_alphabetic()))
                    .unwrap_or(rest.len());
                self.pos += len;
                return (Tok::Duration(rest[..len].to_string()), start);
            }
            self.pos += int_len;
            return (Tok::Integer(rest[..int_len].to_string()), start);
        }
        if c == '$' {
            let after = &rest[1..];
            if after.starts_with('"')
                && let Some((text, len)) = scan_quoted(after, '"')
            {
                self.pos += 1 + len;
                return (Tok::Param(text), start);
            }
            let len = after
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            self.pos += 1 + len;
            return (Tok::Param(after[..len].to_string()), start);
        }
        for s in SYMBOLS {
            if rest.starts_with(s) {
                self.pos += s.len();
                return (Tok::Sym(s), start);
            }
        }
        self.pos += c.len_utf8();
        (Tok::Illegal(c.to_string()), start)
    }

    fn peek(&mut self) -> Tok {
        let saved = self.pos;
        let (tok, _) = self.scan();
        self.pos = saved;
        tok
    }

    /// The error for an unexpected token at `start`.
    fn error_at(&self, tok: &Tok, start: usize, expected: &str) -> ParseError {
        let offset = if *tok == Tok::Eof {
            // InfluxDB reports the end one character past the last.
            self.src.chars().count() + 1
        } else {
            self.src[..start].chars().count()
        };
        let before: String = self.src.chars().take(offset).collect();
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map(|i| before[..i + 1].chars().count());
        let char = offset - line_start.unwrap_or(0) + 1;
        ParseError(format!(
            "found {}, expected {expected} at line {line}, char {char}",
            tok.shown()
        ))
    }

    /// Scans a token and fails unless it is `expected`.
    fn expect_sym(&mut self, sym: &str) -> Result<(), ParseError> {
        let (tok, start) = self.scan();
        if tok == Tok::Sym(leak_sym(sym)) {
            Ok(())
        } else {
            Err(self.error_at(&tok, start, sym))
        }
    }

    fn expect_keyword(&mut self, kw: &str) -> Result<(), ParseError> {
        let (tok, start) = self.scan();
        if tok.is_keyword(kw) {
            Ok(())
        } else {
            Err(self.error_at(&tok, start, kw))
        }
    }

    /// Consumes `kw` if it is next.
    fn accept_keyword(&mut self, kw: &str) -> bool {
        if self.peek().is_keyword(kw) {
            self.scan();
            true
        } else {
            false
        }
    }

    fn accept_sym(&mut self, sym: &str) -> bool {
        if self.peek() == Tok::Sym(leak_sym(sym)) {
            self.scan();
            true
        } else {
            false
        }
    }

    /// An identifier, quoted or not.
    fn ident(&mut self) -> Result<String, ParseError> {
        let (tok, start) = self.scan();
        match tok {
            Tok::Ident(s) | Tok::QuotedIdent(s) => Ok(s),
            t => Err(self.error_at(&t, start, "identifier")),
        }
    }

    /// An identifier or a string (database and key names accept both).
    fn ident_or_string(&mut self) -> Result<String, ParseError> {
        let (tok, start) = self.scan();
        match tok {
            Tok::Ident(s) | Tok::QuotedIdent(s) | Tok::Str(s) => Ok(s),
            t => Err(self.error_at(&t, start, "identifier, string")),
        }
    }

    fn unsigned(&mut self) -> Result<u64, ParseError> {
        let (tok, start) = self.scan();
        match &tok {
            Tok::Integer(s) => s.parse().map_err(|_| {
                ParseError(format!(
                    "unable to parse integer at line 1, char {}",
                    start + 1
                ))
            }),
            t => Err(self.error_at(t, start, "integer")),
        }
    }

    /// `/regex/` starting at the next token.
    fn regex(&mut self) -> Result<String, ParseError> {
        self.skip_space_and_comments();
        let start = self.pos;
        let rest = self.rest();
        if !rest.starts_with('/') {
            let (tok, start) = self.scan();
            return Err(self.error_at(&tok, start, "regex"));
        }
        let mut out = String::new();
        let mut chars = rest[1..].char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, '/')) => out.push('/'),
                    Some((_, other)) => {
                        out.push('\\');
                        out.push(other);
                    }
                    None => break,
                },
                '/' => {
                    self.pos += 1 + i + 1;
                    return Ok(out);
                }
                '\n' => break,
                c => out.push(c),
            }
        }
        self.pos = self.src.len();
        Err(ParseError(format!(
            "found {}, expected regex at line 1, char {}",
            &self.src[start..],
            self.src[..start].chars().count() + 1
        )))
    }

    fn next_is_regex(&mut self) -> bool {
        self.skip_space_and_comments();
        self.rest().starts_with('/')
    }

    /// Every statement of the text, split by `;`.
    pub(crate) fn statements(&mut self) -> Result<Vec<Statement>, ParseError> {
        let mut out = Vec::new();
        loop {
            while self.accept_sym(";") {}
            if self.peek() == Tok::Eof {
                return Ok(out);
            }
            out.push(self.statement()?);
            let (tok, start) = self.scan();
            match tok {
                Tok::Eof => return Ok(out),
                Tok::Sym(";") => {}
                t => return Err(self.error_at(&t, start, ";")),
            }
        }
    }

    fn statement(&mut self) -> Result<Statement, ParseError> {
        let (tok, start) = self.scan();
        match tok {
            Tok::Keyword("SELECT") => Ok(Statement::Select(Box::new(self.select_body()?))),
            Tok::Keyword("SHOW") => self.show(),
            Tok::Keyword("CREATE") => self.create(),
            Tok::Keyword("DROP") => self.drop(),
            Tok::Keyword("DELETE") => self.delete(),
            Tok::Keyword("EXPLAIN") => {
                let analyze = self.accept_keyword("ANALYZE");
                self.expect_keyword("SELECT")?;
                Ok(Statement::Explain {
                    analyze,
                    select: Box::new(self.select_body()?),
                })
            }
            Tok::Keyword(k @ ("GRANT" | "REVOKE" | "ALTER" | "SET" | "KILL")) => {
                Ok(Statement::Unsupported(self.skip_statement(k)))
            }
            t => Err(self.error_at(&t, start, EXPECT_STATEMENT)),
        }
    }

    /// Skips to the end of a statement Inflow does not run; returns its words.
    fn skip_statement(&mut self, first: &str) -> String {
        let mut words = vec![first.to_string()];
        loop {
            match self.peek() {
                Tok::Eof | Tok::Sym(";") => return words.join(" "),
                t => {
                    if words.len() < 2
                        && let Tok::Keyword(k) = &t
                    {
                        words.push(k.to_string());
                    }
                    self.scan();
                }
            }
        }
    }

    fn create(&mut self) -> Result<Statement, ParseError> {
        if self.accept_keyword("DATABASE") {
            let name = self.ident()?;
            // `WITH DURATION ... REPLICATION ... NAME ...`: accepted, since
            // clients send it; Inflow's retention is set on the database.
            if self.accept_keyword("WITH") {
                self.skip_statement("WITH");
            }
            return Ok(Statement::CreateDatabase { name });
        }
        Ok(Statement::Unsupported(self.skip_statement("CREATE")))
    }

    fn drop(&mut self) -> Result<Statement, ParseError> {
        if self.accept_keyword("DATABASE") {
            return Ok(Statement::DropDatabase {
                name: self.ident()?,
            });
        }
        if self.accept_keyword("MEASUREMENT") {
            return Ok(Statement::DropMeasurement {
                name: self.ident()?,
            });
        }
        Ok(Statement::Unsupported(self.skip_statement("DROP")))
    }

    fn delete(&mut self) -> Result<Statement, ParseError> {
        let from = if self.accept_keyword("FROM") {
            self.sources()?
        } else {
            Vec::new()
        };
        let condition = if self.accept_keyword("WHERE") {
            Some(self.expr()?)
        } else {
            None
        };
        if from.is_empty() && condition.is_none() {
            let (tok, start) = self.scan();
            return Err(self.error_at(&tok, start, "FROM, WHERE"));
        }
        Ok(Statement::Delete { from, condition })
    }

    /// After `SELECT`.
    fn select_body(&mut self) -> Result<SelectStatement, ParseError> {
        let mut s = SelectStatement {
            fields: self.fields()?,
            ..Default::default()
        };
        if self.accept_keyword("INTO") {
            s.into = Some(self.measurement()?);
        }
        self.expect_keyword("FROM")?;
        s.from = self.sources()?;
        if self.accept_keyword("WHERE") {
            s.condition = Some(self.expr()?);
        }
        if self.accept_keyword("GROUP") {
            self.expect_keyword("BY")?;
            s.group_by = self.dimensions()?;
        }
        if let Tok::Ident(w) = self.peek()
            && w.eq_ignore_ascii_case("fill")
        {
            self.scan();
            s.fill = Some(self.fill()?);
        }
        if self.accept_keyword("ORDER") {
            self.expect_keyword("BY")?;
            s.descending = self.order_by()?;
        }
        if self.accept_keyword("LIMIT") {
            s.limit = Some(self.unsigned()?);
        }
        if self.accept_keyword("OFFSET") {
            s.offset = Some(self.unsigned()?);
        }
        if self.accept_keyword("SLIMIT") {
            s.slimit = Some(self.unsigned()?);
        }
        if self.accept_keyword("SOFFSET") {
            s.soffset = Some(self.unsigned()?);
        }
        if let Tok::Ident(w) = self.peek()
            && w.eq_ignore_ascii_case("tz")
        {
            self.scan();
            self.expect_sym("(")?;
            let (tok, start) = self.scan();
            let Tok::Str(zone) = tok else {
                return Err(self.error_at(&tok, start, "string"));
            };
            self.expect_sym(")")?;
            s.timezone = Some(zone);
        }
        Ok(s)
    }

    fn fields(&mut self) -> Result<Vec<Field>, ParseError> {
        let mut fields = Vec::new();
        loop {
            let expr = self.expr()?;
            let alias = if self.accept_keyword("AS") {
                Some(self.ident()?)
            } else {
                None
            };
            fields.push(Field { expr, alias });
            if !self.accept_sym(",") {
                return Ok(fields);
            }
        }
    }

    fn sources(&mut self) -> Result<Vec<Source>, ParseError> {
        let mut out = Vec::new();
        loop {
            if self.accept_sym("(") {
                self.expect_keyword("SELECT")?;
                let inner = self.select_body()?;
                self.expect_sym(")")?;
                out.push(Source::Subquery(Box::new(inner)));
            } else {
                out.push(Source::Measurement(self.measurement()?));
            }
            if !self.accept_sym(",") {
                return Ok(out);
            }
        }
    }

    fn measurements(&mut self) -> Result<Vec<Measurement>, ParseError> {
        let mut out = vec![self.measurement()?];
        while self.accept_sym(",") {
            out.push(self.measurement()?);
        }
        Ok(out)
    }

    /// `[db.[rp].]name`, `[rp.]name`, or a regex in the last place.
    fn measurement(&mut self) -> Result<Measurement, ParseError> {
        let mut segments: Vec<Option<String>> = Vec::new();
        loop {
            if self.next_is_regex() {
                let re = self.regex()?;
                return Ok(assemble(segments, MeasurementName::Regex(re)));
            }
            if segments.len() == 1 && self.peek() == Tok::Sym(".") {
                // `db..m`: the default retention policy.
                segments.push(None);
                self.scan();
                continue;
            }
            let name = self.ident()?;
            if segments.len() < 2 && self.accept_sym(".") {
                segments.push(Some(name));
                continue;
            }
            return Ok(assemble(segments, MeasurementName::Name(name)));
        }
    }

    fn dimensions(&mut self) -> Result<Vec<Dimension>, ParseError> {
        let mut dims = Vec::new();
        loop {
            dims.push(self.dimension()?);
            if !self.accept_sym(",") {
                return Ok(dims);
            }
        }
    }

    fn dimension(&mut self) -> Result<Dimension, ParseError> {
        if self.next_is_regex() {
            return Ok(Dimension::Regex(self.regex()?));
        }
        let (tok, start) = self.scan();
        match tok {
            Tok::Sym("*") => Ok(Dimension::Wildcard),
            Tok::Ident(name) if name.eq_ignore_ascii_case("time") && self.accept_sym("(") => {
                let interval = self.duration_arg()?;
                let offset = if self.accept_sym(",") {
                    Some(self.time_offset()?)
                } else {
                    None
                };
                self.expect_sym(")")?;
                if interval <= 0 {
                    return Err(ParseError(
                        "time dimension must have a positive duration".to_string(),
                    ));
                }
                Ok(Dimension::Time { interval, offset })
            }
            Tok::Ident(name) | Tok::QuotedIdent(name) => Ok(Dimension::Tag(name)),
            t => Err(self.error_at(&t, start, "identifier")),
        }
    }

    fn duration_arg(&mut self) -> Result<i64, ParseError> {
        let (tok, start) = self.scan();
        match tok {
            Tok::Duration(d) => duration::parse(&d),
            t => Err(self.error_at(&t, start, "duration")),
        }
    }

    fn time_offset(&mut self) -> Result<TimeOffset, ParseError> {
        let negative = self.accept_sym("-");
        let (tok, start) = self.scan();
        match tok {
            Tok::Duration(d) => {
                let d = duration::parse(&d)?;
                Ok(TimeOffset::Duration(if negative { -d } else { d }))
            }
            Tok::Ident(f) if !negative && f.eq_ignore_ascii_case("now") => {
                self.expect_sym("(")?;
                self.expect_sym(")")?;
                Ok(TimeOffset::Now)
            }
            t => Err(self.error_at(&t, start, "duration")),
        }
    }

    fn fill(&mut self) -> Result<Fill, ParseError> {
        self.expect_sym("(")?;
        let negative = self.accept_sym("-");
        let (tok, start) = self.scan();
        let fill = match &tok {
            Tok::Ident(w) if !negative && w.eq_ignore_ascii_case("null") => Fill::Null,
            Tok::Ident(w) if !negative && w.eq_ignore_ascii_case("none") => Fill::None,
            Tok::Ident(w) if !negative && w.eq_ignore_ascii_case("previous") => Fill::Previous,
            Tok::Ident(w) if !negative && w.eq_ignore_ascii_case("linear") => Fill::Linear,
            Tok::Integer(i) => Fill::Value(integer_literal(i, negative)?),
            Tok::Float(x) => {
                let v: f64 = x
                    .parse()
                    .map_err(|_| ParseError(format!("unable to parse number: {x}")))?;
                Fill::Value(Literal::Float(if negative { -v } else { v }))
            }
            Tok::Ident(_) => {
                return Err(ParseError("expected number argument in fill()".to_string()));
            }
            t => return Err(self.error_at(t, start, "identifier, number")),
        };
        self.expect_sym(")")?;
        Ok(fill)
    }

    /// `ORDER BY time [ASC|DESC]`; returns whether it is descending.
    fn order_by(&mut self) -> Result<bool, ParseError> {
        let (tok, start) = self.scan();
        let descending = match &tok {
            Tok::Ident(w) if w.eq_ignore_ascii_case("time") => {
                if self.accept_keyword("DESC") {
                    true
                } else {
                    self.accept_keyword("ASC");
                    false
                }
            }
            Tok::Keyword("ASC") => false,
            Tok::Keyword("DESC") => true,
            t => return Err(self.error_at(t, start, "identifier, ASC, DESC")),
        };
        if self.peek() == Tok::Sym(",") {
            return Err(ParseError(
                "only ORDER BY time supported at this time".to_string(),
            ));
        }
        Ok(descending)
    }

    /// An expression.
    pub(crate) fn expr(&mut self) -> Result<Expr, ParseError> {
        self.binary(1)
    }

    fn binary(&mut self, min_precedence: u8) -> Result<Expr, ParseError> {
        let mut lhs = self.unary()?;
        loop {
            let Some(op) = self.peek_operator() else {
                return Ok(lhs);
            };
            if op.precedence() < min_precedence {
                return Ok(lhs);
            }
            self.scan();
            let rhs = if matches!(op, BinaryOp::RegexMatch | BinaryOp::RegexNotMatch) {
                if self.next_is_regex() {
                    Expr::Regex(self.regex()?)
                } else {
                    let (tok, start) = self.scan();
                    match tok {
                        Tok::Param(p) => Expr::BindParam(p),
                        t => return Err(self.error_at(&t, start, "regex")),
                    }
                }
            } else {
                self.binary(op.precedence() + 1)?
            };
            lhs = Expr::Binary {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
            };
        }
    }

    fn peek_operator(&mut self) -> Option<BinaryOp> {
        Some(match self.peek() {
            Tok::Keyword("OR") => BinaryOp::Or,
            Tok::Keyword("AND") => BinaryOp::And,
            Tok::Sym("=") => BinaryOp::Eq,
            Tok::Sym("!=") | Tok::Sym("<>") => BinaryOp::NotEq,
            Tok::Sym("=~") => BinaryOp::RegexMatch,
            Tok::Sym("!~") => BinaryOp::RegexNotMatch,
            Tok::Sym("<") => BinaryOp::Lt,
            Tok::Sym("<=") => BinaryOp::LtEq,
            Tok::Sym(">") => BinaryOp::Gt,
            Tok::Sym(">=") => BinaryOp::GtEq,
            Tok::Sym("+") => BinaryOp::Add,
            Tok::Sym("-") => BinaryOp::Sub,
            Tok::Sym("|") => BinaryOp::BitOr,
            Tok::Sym("^") => BinaryOp::BitXor,
            Tok::Sym("*") => BinaryOp::Mul,
            Tok::Sym("/") => BinaryOp::Div,
            Tok::Sym("%") => BinaryOp::Mod,
            Tok::Sym("&") => BinaryOp::BitAnd,
            _ => return None,
        })
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        if self.peek() == Tok::Sym("-") {
            self.scan();
            let saved = self.pos;
            let (tok, _) = self.scan();
            match tok {
                Tok::Integer(i) => return Ok(Expr::Literal(integer_literal(&i, true)?)),
                Tok::Float(x) => {
                    let v: f64 = x
                        .parse()
                        .map_err(|_| ParseError(format!("unable to parse number: {x}")))?;
                    return Ok(Expr::Literal(Literal::Float(-v)));
                }
                Tok::Duration(d) => {
                    return Ok(Expr::Literal(Literal::Duration(-duration::parse(&d)?)));
                }
                _ => {
                    self.pos = saved;
                    let operand = self.unary()?;
                    return Ok(Expr::Binary {
                        op: BinaryOp::Mul,
                        lhs: Box::new(Expr::Literal(Literal::Integer(-1))),
                        rhs: Box::new(operand),
                    });
                }
            }
        }
        if self.next_is_regex() {
            return Ok(Expr::Regex(self.regex()?));
        }
        let (tok, start) = self.scan();
        match tok {
            Tok::Sym("(") => {
                let inner = self.expr()?;
                self.expect_sym(")")?;
                Ok(Expr::Paren(Box::new(inner)))
            }
            Tok::Sym("*") => Ok(Expr::Wildcard(self.cast()?)),
            Tok::Ident(name) => {
                if self.accept_sym("(") {
                    let args = self.call_args()?;
                    return Ok(Expr::Call {
                        name: name.to_ascii_lowercase(),
                        args,
                    });
                }
                Ok(Expr::VarRef {
                    name,
                    cast: self.cast()?,
                })
            }
            Tok::Keyword("DISTINCT") => {
                if self.accept_sym("(") {
                    let args = self.call_args()?;
                    return Ok(Expr::Call {
                        name: "distinct".to_string(),
                        args,
                    });
                }
                let name = self.ident()?;
                Ok(Expr::Call {
                    name: "distinct".to_string(),
                    args: vec![Expr::var(&name)],
                })
            }
            Tok::QuotedIdent(name) => Ok(Expr::VarRef {
                name,
                cast: self.cast()?,
            }),
            Tok::Str(s) => Ok(Expr::Literal(Literal::String(s))),
            Tok::Integer(i) => Ok(Expr::Literal(integer_literal(&i, false)?)),
            Tok::Float(x) => x
                .parse()
                .map(|v| Expr::Literal(Literal::Float(v)))
                .map_err(|_| ParseError(format!("unable to parse number: {x}"))),
            Tok::Duration(d) => Ok(Expr::Literal(Literal::Duration(duration::parse(&d)?))),
            Tok::Keyword("TRUE") => Ok(Expr::Literal(Literal::Boolean(true))),
            Tok::Keyword("FALSE") => Ok(Expr::Literal(Literal::Boolean(false))),
            Tok::Param(p) => Ok(Expr::BindParam(p)),
            t => Err(self.error_at(&t, start, EXPECT_OPERAND)),
        }
    }

    fn call_args(&mut self) -> Result<Vec<Expr>, ParseError> {
        let mut args = Vec::new();
        if self.accept_sym(")") {
            return Ok(args);
        }
        loop {
            args.push(self.expr()?);
            let (tok, start) = self.scan();
            match tok {
                Tok::Sym(",") => {}
                Tok::Sym(")") => return Ok(args),
                t => return Err(self.error_at(&t, start, ", or )")),
            }
        }
    }

    /// An optional `::type`.
    fn cast(&mut self) -> Result<Option<Cast>, ParseError> {
        if !self.accept_sym("::") {
            return Ok(None);
        }
        let (tok, start) = self.scan();
        let word = match &tok {
            Tok::Ident(w) => w.to_ascii_lowercase(),
            Tok::Keyword(k) => k.to_ascii_lowercase(),
            _ => String::new(),
        };
        Ok(Some(match word.as_str() {
            "field" => Cast::Field,
            "tag" => Cast::Tag,
            "float" => Cast::Float,
            "integer" => Cast::Integer,
            "unsigned" => Cast::Unsigned,
            "string" => Cast::String,
            "boolean" => Cast::Boolean,
            _ => {
                return Err(self.error_at(
                    &tok,
                    start,
                    "float, integer, unsigned, string, boolean, field, tag",
                ));
            }
        }))
    }

    fn show(&mut self) -> Result<Statement, ParseError> {
        let (tok, start) = self.scan();
        match tok {
            Tok::Keyword("DATABASES") => Ok(Statement::ShowDatabases),
            Tok::Keyword("RETENTION") => {
                self.expect_keyword("POLICIES")?;
                let on = self.on()?;
                Ok(Statement::ShowRetentionPolicies { on })
            }
            Tok::Keyword("MEASUREMENTS") => {
                let mut m = ShowMeasurements {
                    on: self.on()?,
                    ..Default::default()
                };
                if self.accept_keyword("WITH") {
                    self.expect_keyword("MEASUREMENT")?;
                    let (tok, start) = self.scan();
                    m.with = Some(match tok {
                        Tok::Sym("=") => NameMatch::Eq(self.ident()?),
                        Tok::Sym("=~") => NameMatch::Regex(self.regex()?),
                        t => return Err(self.error_at(&t, start, "=, =~")),
                    });
                }
                if self.accept_keyword("WHERE") {
                    m.condition = Some(self.expr()?);
                }
                (m.limit, m.offset) = self.limit_offset()?;
                Ok(Statement::ShowMeasurements(m))
            }
            Tok::Keyword("MEASUREMENT") => self.cardinality(CardinalityOf::Measurements),
            Tok::Keyword("TAG") => {
                let (tok, start) = self.scan();
                match tok {
                    Tok::Keyword("KEYS") => Ok(Statement::ShowTagKeys(self.show_keys(true)?)),
                    Tok::Keyword("KEY") => self.cardinality(CardinalityOf::TagKeys),
                    Tok::Keyword("VALUES") => {
                        if matches!(self.peek(), Tok::Keyword("CARDINALITY" | "EXACT")) {
                            return self.cardinality(CardinalityOf::TagValues);
                        }
                        let (on, from) = self.on_from()?;
                        let key = self.with_key()?;
                        let mut keys = self.keys_tail(true)?;
                        keys.on = on;
                        keys.from = from;
                        Ok(Statement::ShowTagValues(ShowTagValues { keys, key }))
                    }
                    t => Err(self.error_at(&t, start, "KEY, KEYS, VALUES")),
                }
            }
            Tok::Keyword("FIELD") => {
                let (tok, start) = self.scan();
                match tok {
                    Tok::Keyword("KEYS") => Ok(Statement::ShowFieldKeys(self.show_keys(false)?)),
                    Tok::Keyword("KEY") => self.cardinality(CardinalityOf::FieldKeys),
                    t => Err(self.error_at(&t, start, "KEY, KEYS")),
                }
            }
            Tok::Keyword("SERIES") => {
                if matches!(self.peek(), Tok::Keyword("CARDINALITY" | "EXACT")) {
                    return self.cardinality(CardinalityOf::Series);
                }
                Ok(Statement::ShowSeries(self.show_keys(true)?))
            }
            Tok::Keyword(
                k @ ("CONTINUOUS" | "DIAGNOSTICS" | "GRANTS" | "QUERIES" | "SHARD" | "SHARDS"
                | "STATS" | "SUBSCRIPTIONS" | "USERS"),
            ) => {
                let mut text = self.skip_statement("SHOW");
                if !text.contains(k) {
                    text = format!("SHOW {k}");
                }
                Ok(Statement::Unsupported(text))
            }
            t => Err(self.error_at(&t, start, EXPECT_SHOW)),
        }
    }

    /// `[EXACT] CARDINALITY [ON db] [FROM ...] [WITH KEY ...] [WHERE ...] [LIMIT] [OFFSET]`.
    fn cardinality(&mut self, of: CardinalityOf) -> Result<Statement, ParseError> {
        let exact = self.accept_keyword("EXACT");
        self.expect_keyword("CARDINALITY")?;
        let (on, from) = self.on_from()?;
        let key = if of == CardinalityOf::TagValues {
            Some(self.with_key()?)
        } else {
            None
        };
        let mut keys = self.keys_tail(true)?;
        keys.on = on;
        keys.from = from;
        Ok(Statement::ShowCardinality(ShowCardinality {
            of,
            exact,
            keys,
            key,
        }))
    }

    fn on(&mut self) -> Result<Option<String>, ParseError> {
        if self.accept_keyword("ON") {
            Ok(Some(self.ident()?))
        } else {
            Ok(None)
        }
    }

    fn on_from(&mut self) -> Result<(Option<String>, Vec<Measurement>), ParseError> {
        let on = self.on()?;
        let from = if self.accept_keyword("FROM") {
            self.measurements()?
        } else {
            Vec::new()
        };
        Ok((on, from))
    }

    fn show_keys(&mut self, with_where: bool) -> Result<ShowKeys, ParseError> {
        let (on, from) = self.on_from()?;
        let mut keys = self.keys_tail(with_where)?;
        keys.on = on;
        keys.from = from;
        Ok(keys)
    }

    /// `[WHERE ...] [LIMIT n] [OFFSET n]` (and `SLIMIT`/`SOFFSET`, accepted).
    fn keys_tail(&mut self, with_where: bool) -> Result<ShowKeys, ParseError> {
        let mut keys = ShowKeys::default();
        if with_where && self.accept_keyword("WHERE") {
            keys.condition = Some(self.expr()?);
        }
        (keys.limit, keys.offset) = self.limit_offset()?;
        if self.accept_keyword("SLIMIT") {
            self.unsigned()?;
        }
        if self.accept_keyword("SOFFSET") {
            self.unsigned()?;
        }
        Ok(keys)
    }

    fn limit_offset(&mut self) -> Result<(Option<u64>, Option<u64>), ParseError> {
        let limit = if self.accept_keyword("LIMIT") {
            Some(self.unsigned()?)
        } else {
            None
        };
        let offset = if self.accept_keyword("OFFSET") {
            Some(self.unsigned()?)
        } else {
            None
        };
        Ok((limit, offset))
    }

    fn with_key(&mut self) -> Result<KeyMatch, ParseError> {
        self.expect_keyword("WITH")?;
        self.expect_keyword("KEY")?;
        let (tok, start) = self.scan();
        Ok(match tok {
            Tok::Sym("=") => KeyMatch::Eq(self.ident_or_string()?),
            Tok::Sym("!=") | Tok::Sym("<>") => KeyMatch::NotEq(self.ident_or_string()?),
            Tok::Sym("=~") => KeyMatch::Regex(self.regex()?),
            Tok::Sym("!~") => KeyMatch::NotRegex(self.regex()?),
            Tok::Keyword("IN") => {
                self.expect_sym("(")?;
                let mut keys = vec![self.ident_or_string()?];
                while self.accept_sym(",") {
                    keys.push(self.ident_or_string()?);
                }
                self.expect_sym(")")?;
                KeyMatch::In(keys)
            }
            t => return Err(self.error_at(&t, start, "=, !=, =~, !~, IN")),
        })
    }
}

/// The `&'static str` of a symbol, for comparing tokens.
fn leak_sym(sym: &str) -> &'static str {
    SYMBOLS.iter().find(|s| **s == sym).copied().unwrap_or("")
}

fn assemble(segments: Vec<Option<String>>, name: MeasurementName) -> Measurement {
    let mut segments = segments.into_iter();
    match (segments.next(), segments.next()) {
        (None, _) => Measurement {
            database: None,
            retention_policy: None,
            name,
        },
        (Some(rp), None) => Measurement {
            database: None,
            retention_policy: rp,
            name,
        },
        (Some(db), Some(rp)) => Measurement {
            database: db,
            retention_policy: rp,
            name,
        },
    }
}

fn integer_literal(digits: &str, negative: bool) -> Result<Literal, ParseError> {
    let err = || ParseError(format!("unable to parse integer: {digits}"));
    if negative {
        let text = format!("-{digits}");
        return text.parse().map(Literal::Integer).map_err(|_| err());
    }
    match digits.parse::<i64>() {
        Ok(i) => Ok(Literal::Integer(i)),
        Err(_) => digits.parse().map(Literal::Unsigned).map_err(|_| err()),
    }
}

/// The text of a quoted string or identifier at the start of `s` (which
/// begins with `quote`) and the bytes it spans; `None` when unterminated.
fn scan_quoted(s: &str, quote: char) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next()? {
                (_, 'n') => out.push('\n'),
                (_, 't') => out.push('\t'),
                (_, other) if other == quote || other == '\\' => out.push(other),
                (_, other) => {
                    out.push('\\');
                    out.push(other);
                }
            },
            c if c == quote => return Some((out, i + 1)),
            '\n' => return None,
            c => out.push(c),
        }
    }
    None
}
