//! The statements the parser produces.
//!
//! The tree keeps what InfluxQL says, not how Inflow runs it: time literals
//! stay strings and integers until the planner knows they are compared with
//! `time`, and `*` and regexes stay unexpanded until the planner has the
//! measurement's schema.

use std::fmt;

/// One InfluxQL statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    /// `SELECT ...`.
    Select(Box<SelectStatement>),
    /// `SHOW DATABASES`.
    ShowDatabases,
    /// `SHOW RETENTION POLICIES [ON db]`.
    ShowRetentionPolicies { on: Option<String> },
    /// `SHOW MEASUREMENTS [ON db] [WITH MEASUREMENT =~ /re/ | = name] [WHERE ...] [LIMIT] [OFFSET]`.
    ShowMeasurements(ShowMeasurements),
    /// `SHOW TAG KEYS [ON db] [FROM ...] [WHERE ...] [LIMIT] [OFFSET]`.
    ShowTagKeys(ShowKeys),
    /// `SHOW FIELD KEYS [ON db] [FROM ...] [LIMIT] [OFFSET]`.
    ShowFieldKeys(ShowKeys),
    /// `SHOW TAG VALUES [ON db] [FROM ...] WITH KEY ... [WHERE ...] [LIMIT] [OFFSET]`.
    ShowTagValues(ShowTagValues),
    /// `SHOW SERIES [ON db] [FROM ...] [WHERE ...] [LIMIT] [OFFSET]`.
    ShowSeries(ShowKeys),
    /// `SHOW TAG KEY CARDINALITY`, `SHOW FIELD KEY CARDINALITY`,
    /// `SHOW SERIES CARDINALITY`, `SHOW MEASUREMENT CARDINALITY`,
    /// each optionally `EXACT`.
    ShowCardinality(ShowCardinality),
    /// `CREATE DATABASE name [WITH ...]`.
    CreateDatabase { name: String },
    /// `DROP DATABASE name`.
    DropDatabase { name: String },
    /// `DROP MEASUREMENT name`.
    DropMeasurement { name: String },
    /// `DELETE [FROM m] [WHERE ...]`.
    Delete {
        from: Vec<Source>,
        condition: Option<Expr>,
    },
    /// A statement InfluxDB 1.x has and Inflow does not run (users,
    /// grants, retention policy changes, continuous queries, ...): its
    /// first words, for the error.
    Unsupported(String),
    /// `EXPLAIN [ANALYZE] SELECT ...`.
    Explain {
        analyze: bool,
        select: Box<SelectStatement>,
    },
}

/// A `SELECT` statement.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SelectStatement {
    /// The projection.
    pub fields: Vec<Field>,
    /// `INTO`.
    pub into: Option<Measurement>,
    /// `FROM`.
    pub from: Vec<Source>,
    /// `WHERE`.
    pub condition: Option<Expr>,
    /// `GROUP BY`.
    pub group_by: Vec<Dimension>,
    /// `fill(...)`.
    pub fill: Option<Fill>,
    /// `ORDER BY time DESC`.
    pub descending: bool,
    /// `LIMIT`.
    pub limit: Option<u64>,
    /// `OFFSET`.
    pub offset: Option<u64>,
    /// `SLIMIT`.
    pub slimit: Option<u64>,
    /// `SOFFSET`.
    pub soffset: Option<u64>,
    /// `tz('...')`.
    pub timezone: Option<String>,
}

/// A projected expression and its alias.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// The expression.
    pub expr: Expr,
    /// `AS alias`.
    pub alias: Option<String>,
}

/// What a statement reads.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A measurement, by name or regex.
    Measurement(Measurement),
    /// `(SELECT ...)`.
    Subquery(Box<SelectStatement>),
}

/// `[db.][rp.]name` or `[db.][rp.]/regex/`.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    /// The database, when named.
    pub database: Option<String>,
    /// The retention policy, when named.
    pub retention_policy: Option<String>,
    /// The name or pattern.
    pub name: MeasurementName,
}

/// A measurement name or pattern.
#[derive(Debug, Clone, PartialEq)]
pub enum MeasurementName {
    /// An exact name.
    Name(String),
    /// `/regex/`.
    Regex(String),
}

/// One `GROUP BY` item.
#[derive(Debug, Clone, PartialEq)]
pub enum Dimension {
    /// `time(interval[, offset])`. The offset is a duration or `now()`.
    Time {
        interval: i64,
        offset: Option<TimeOffset>,
    },
    /// A tag.
    Tag(String),
    /// `/regex/` over tag keys.
    Regex(String),
    /// `*`: every tag.
    Wildcard,
}

/// The offset of `GROUP BY time(i, offset)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TimeOffset {
    /// A duration, possibly negative.
    Duration(i64),
    /// `now()`: buckets end at the query's now.
    Now,
}

/// `fill(...)`.
#[derive(Debug, Clone, PartialEq)]
pub enum Fill {
    /// `fill(null)` (the default).
    Null,
    /// `fill(none)`: empty buckets are left out.
    None,
    /// `fill(previous)`.
    Previous,
    /// `fill(linear)`.
    Linear,
    /// `fill(<number>)`.
    Value(Literal),
}

/// `SHOW MEASUREMENTS`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ShowMeasurements {
    /// `ON db`.
    pub on: Option<String>,
    /// `WITH MEASUREMENT ...`.
    pub with: Option<NameMatch>,
    /// `WHERE`.
    pub condition: Option<Expr>,
    /// `LIMIT`.
    pub limit: Option<u64>,
    /// `OFFSET`.
    pub offset: Option<u64>,
}

/// `SHOW TAG KEYS`, `SHOW FIELD KEYS` and `SHOW SERIES`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ShowKeys {
    /// `ON db`.
    pub on: Option<String>,
    /// `FROM`.
    pub from: Vec<Measurement>,
    /// `WHERE`.
    pub condition: Option<Expr>,
    /// `LIMIT`.
    pub limit: Option<u64>,
    /// `OFFSET`.
    pub offset: Option<u64>,
}

/// `SHOW TAG VALUES`.
#[derive(Debug, Clone, PartialEq)]
pub struct ShowTagValues {
    /// `ON db`, `FROM`, `WHERE`, `LIMIT`, `OFFSET`.
    pub keys: ShowKeys,
    /// `WITH KEY ...`.
    pub key: KeyMatch,
}

/// `WITH KEY = k`, `IN (a, b)`, `=~ /re/`, `!= k`, `!~ /re/`.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyMatch {
    /// `= key`.
    Eq(String),
    /// `!= key`.
    NotEq(String),
    /// `IN (keys)`.
    In(Vec<String>),
    /// `=~ /re/`.
    Regex(String),
    /// `!~ /re/`.
    NotRegex(String),
}

/// `WITH MEASUREMENT = name` or `=~ /re/`.
#[derive(Debug, Clone, PartialEq)]
pub enum NameMatch {
    /// `= name`.
    Eq(String),
    /// `=~ /re/`.
    Regex(String),
}

/// Which cardinality `SHOW ... CARDINALITY` counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardinalityOf {
    /// Tag keys.
    TagKeys,
    /// Field keys.
    FieldKeys,
    /// Series.
    Series,
    /// Measurements.
    Measurements,
    /// Values of one tag key (`SHOW TAG VALUES CARDINALITY WITH KEY = k`).
    TagValues,
}

/// `SHOW ... CARDINALITY`.
#[derive(Debug, Clone, PartialEq)]
pub struct ShowCardinality {
    /// What is counted.
    pub of: CardinalityOf,
    /// `EXACT` (Inflow always counts exactly).
    pub exact: bool,
    /// `ON`, `FROM`, `WHERE`, `LIMIT`, `OFFSET`.
    pub keys: ShowKeys,
    /// For tag values: `WITH KEY`.
    pub key: Option<KeyMatch>,
}

/// An expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A field or tag, with an optional `::field`/`::tag`/type cast.
    VarRef { name: String, cast: Option<Cast> },
    /// `*`, optionally `*::field` or `*::tag`.
    Wildcard(Option<Cast>),
    /// `/regex/`: in a projection, the keys it matches; in a condition, the
    /// pattern of `=~` and `!~`.
    Regex(String),
    /// A function call.
    Call { name: String, args: Vec<Expr> },
    /// `lhs op rhs`.
    Binary {
        op: BinaryOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    /// `( expr )`.
    Paren(Box<Expr>),
    /// A literal.
    Literal(Literal),
    /// `$name`.
    BindParam(String),
}

/// A literal value.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// An integer (also a time in nanoseconds when compared with `time`).
    Integer(i64),
    /// An integer too large for `i64`.
    Unsigned(u64),
    /// A float.
    Float(f64),
    /// A single-quoted string (also a time when compared with `time`).
    String(String),
    /// `true` or `false`.
    Boolean(bool),
    /// A duration in nanoseconds.
    Duration(i64),
}

/// `::field`, `::tag` and the type casts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cast {
    /// `::field`.
    Field,
    /// `::tag`.
    Tag,
    /// `::float`.
    Float,
    /// `::integer`.
    Integer,
    /// `::unsigned`.
    Unsigned,
    /// `::string`.
    String,
    /// `::boolean`.
    Boolean,
}

/// A binary operator, lowest precedence first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    /// `OR`.
    Or,
    /// `AND`.
    And,
    /// `=`.
    Eq,
    /// `!=` or `<>`.
    NotEq,
    /// `=~`.
    RegexMatch,
    /// `!~`.
    RegexNotMatch,
    /// `<`.
    Lt,
    /// `<=`.
    LtEq,
    /// `>`.
    Gt,
    /// `>=`.
    GtEq,
    /// `+`.
    Add,
    /// `-`.
    Sub,
    /// `|`.
    BitOr,
    /// `^`.
    BitXor,
    /// `*`.
    Mul,
    /// `/`.
    Div,
    /// `%`.
    Mod,
    /// `&`.
    BitAnd,
}

impl BinaryOp {
    /// Binding strength: higher binds tighter.
    pub fn precedence(self) -> u8 {
        use BinaryOp::*;
        match self {
            Or => 1,
            And => 2,
            Eq | NotEq | RegexMatch | RegexNotMatch | Lt | LtEq | Gt | GtEq => 4,
            Add | Sub | BitOr | BitXor => 5,
            Mul | Div | Mod | BitAnd => 6,
        }
    }

    /// Whether the operator compares (its result is a boolean).
    pub fn is_comparison(self) -> bool {
        use BinaryOp::*;
        matches!(
            self,
            Eq | NotEq | RegexMatch | RegexNotMatch | Lt | LtEq | Gt | GtEq
        )
    }

    /// The operator as InfluxQL writes it.
    pub fn symbol(self) -> &'static str {
        use BinaryOp::*;
        match self {
            Or => "OR",
            And => "AND",
            Eq => "=",
            NotEq => "!=",
            RegexMatch => "=~",
            RegexNotMatch => "!~",
            Lt => "<",
            LtEq => "<=",
            Gt => ">",
            GtEq => ">=",
            Add => "+",
            Sub => "-",
            BitOr => "|",
            BitXor => "^",
            Mul => "*",
            Div => "/",
            Mod => "%",
            BitAnd => "&",
        }
    }
}

impl Expr {
    /// A reference to `name` without a cast.
    pub fn var(name: &str) -> Expr {
        Expr::VarRef {
            name: name.to_string(),
            cast: None,
        }
    }

    /// The expression without enclosing parentheses.
    pub fn unparen(&self) -> &Expr {
        match self {
            Expr::Paren(e) => e.unparen(),
            e => e,
        }
    }

    /// Visits every sub-expression, this one first.
    pub fn walk<'a>(&'a self, f: &mut impl FnMut(&'a Expr)) {
        f(self);
        match self {
            Expr::Call { args, .. } => args.iter().for_each(|a| a.walk(f)),
            Expr::Binary { lhs, rhs, .. } => {
                lhs.walk(f);
                rhs.walk(f);
            }
            Expr::Paren(e) => e.walk(f),
            _ => {}
        }
    }
}

fn quote_ident(name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let plain = !name.is_empty()
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !crate::parser::is_keyword(name);
    if plain {
        f.write_str(name)
    } else {
        write!(f, "\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Integer(i) => write!(f, "{i}"),
            Literal::Unsigned(u) => write!(f, "{u}"),
            Literal::Float(x) => write!(f, "{x}"),
            Literal::String(s) => write!(f, "'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")),
            Literal::Boolean(b) => write!(f, "{b}"),
            Literal::Duration(d) => write!(f, "{d}ns"),
        }
    }
}

impl fmt::Display for Cast {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Cast::Field => "field",
            Cast::Tag => "tag",
            Cast::Float => "float",
            Cast::Integer => "integer",
            Cast::Unsigned => "unsigned",
            Cast::String => "string",
            Cast::Boolean => "boolean",
        })
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::VarRef { name, cast } => {
                quote_ident(name, f)?;
                if let Some(c) = cast {
                    write!(f, "::{c}")?;
                }
                Ok(())
            }
            Expr::Wildcard(cast) => match cast {
                Some(c) => write!(f, "*::{c}"),
                None => f.write_str("*"),
            },
            Expr::Regex(r) => write!(f, "/{}/", r.replace('/', "\\/")),
            Expr::Call { name, args } => {
                write!(f, "{name}(")?;
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{a}")?;
                }
                f.write_str(")")
            }
            Expr::Binary { op, lhs, rhs } => write!(f, "{lhs} {} {rhs}", op.symbol()),
            Expr::Paren(e) => write!(f, "({e})"),
            Expr::Literal(l) => write!(f, "{l}"),
            Expr::BindParam(p) => write!(f, "${p}"),
        }
    }
}

impl fmt::Display for Measurement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(db) = &self.database {
            quote_ident(db, f)?;
            f.write_str(".")?;
        }
        if let Some(rp) = &self.retention_policy {
            quote_ident(rp, f)?;
            f.write_str(".")?;
        } else if self.database.is_some() {
            f.write_str(".")?;
        }
        match &self.name {
            MeasurementName::Name(n) => quote_ident(n, f),
            MeasurementName::Regex(r) => write!(f, "/{}/", r.replace('/', "\\/")),
        }
    }
}
