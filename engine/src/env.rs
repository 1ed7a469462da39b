//! The plugins' surroundings: their files under `--plugin-dir`, the
//! virtual environment packages are installed into, and the rows a WAL dry
//! run is called with.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, StringBuilder,
    TimestampNanosecondBuilder, UInt64Builder,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow::record_batch::RecordBatch;
use line_protocol::FieldValue;
use services::engine::EngineError;

use crate::EngineConfig;

/// `--package-manager`: how packages get into the plugin environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackageManager {
    /// `python -m pip install` in the environment.
    Pip,
    /// `uv pip install` into the environment (uv must be on PATH).
    Uv,
    /// No installs: the install endpoints answer 403.
    Disabled,
}

impl std::str::FromStr for PackageManager {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pip" => Ok(PackageManager::Pip),
            "uv" => Ok(PackageManager::Uv),
            "disabled" => Ok(PackageManager::Disabled),
            _ => Err(format!(
                "unknown package manager '{s}': expected pip, uv or disabled"
            )),
        }
    }
}

/// What to install.
#[derive(Debug)]
pub(crate) enum Install {
    Packages(Vec<String>),
    Requirements(PathBuf),
}

/// The interpreter the build embedded: it makes the virtual environment.
fn base_python() -> PathBuf {
    PathBuf::from(env!("INFLOW_PYTHON"))
}

async fn run(program: &Path, args: &[&str]) -> Result<(), EngineError> {
    let output = tokio::process::Command::new(program)
        .args(args)
        .output()
        .await
        .map_err(|e| EngineError::Failed(format!("running {}: {e}", program.display())))?;
    if output.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&output.stderr).into_owned();
    if text.trim().is_empty() {
        text = String::from_utf8_lossy(&output.stdout).into_owned();
    }
    Err(EngineError::Failed(format!(
        "{} {} failed ({}): {}",
        program.display(),
        args.join(" "),
        output.status,
        text.trim()
    )))
}

/// Installs into the environment, making it first if it does not exist,
/// then makes its packages importable by plugins.
pub(crate) async fn install(config: &EngineConfig, what: Install) -> Result<(), EngineError> {
    if config.package_manager == PackageManager::Disabled {
        return Err(EngineError::Forbidden(
            "package installation is disabled (--package-manager disabled)".into(),
        ));
    }
    let venv = &config.venv;
    let python = venv.join("bin").join("python");
    let venv_arg = venv.to_string_lossy().into_owned();
    if !python.exists() {
        match config.package_manager {
            PackageManager::Uv => {
                run(
                    Path::new("uv"),
                    &[
                        "venv",
                        "--python",
                        &base_python().to_string_lossy(),
                        &venv_arg,
                    ],
                )
                .await?
            }
            _ => run(&base_python(), &["-m", "venv", &venv_arg]).await?,
        }
    }
    let mut args: Vec<String> = Vec::new();
    match config.package_manager {
        PackageManager::Uv => {
            args.extend(["pip", "install", "--python"].map(String::from));
            args.push(python.to_string_lossy().into_owned());
        }
        _ => args.extend(["-m", "pip", "install", "--disable-pip-version-check"].map(String::from)),
    }
    match what {
        Install::Packages(p) => {
            if p.is_empty() {
                return Err(EngineError::Invalid("no packages given".into()));
            }
            for name in &p {
                if name.starts_with('-') {
                    return Err(EngineError::Invalid(format!(
                        "'{name}' is not a package name"
                    )));
                }
            }
            args.extend(p);
        }
        Install::Requirements(path) => {
            args.push("-r".into());
            args.push(path.to_string_lossy().into_owned());
        }
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let program = match config.package_manager {
        PackageManager::Uv => PathBuf::from("uv"),
        _ => python,
    };
    run(&program, &args).await?;
    crate::python::add_site_packages(venv).map_err(EngineError::Failed)
}

/// Writes a plugin file, making its directories (all inside `root`).
pub(crate) fn write_file(root: &Path, path: &Path, content: &str) -> Result<(), EngineError> {
    let failed = |e: std::io::Error| EngineError::Failed(format!("{}: {e}", path.display()));
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(failed)?;
        let real = parent.canonicalize().map_err(failed)?;
        if !real.starts_with(root) {
            return Err(EngineError::Invalid(format!(
                "{} leads outside the plugin directory",
                path.display()
            )));
        }
    }
    // Written aside and renamed, so a running trigger never loads half a file.
    let tmp = path.with_extension("inflow-upload");
    std::fs::write(&tmp, content).map_err(failed)?;
    std::fs::rename(&tmp, path).map_err(failed)
}

/// A column's values while a dry run's lines are gathered.
enum Values {
    Tag(Vec<Option<String>>),
    Float(Vec<Option<f64>>),
    Int(Vec<Option<i64>>),
    UInt(Vec<Option<u64>>),
    Str(Vec<Option<String>>),
    Bool(Vec<Option<bool>>),
}

impl Values {
    fn of(v: &FieldValue<'_>) -> Self {
        match v {
            FieldValue::F64(_) => Values::Float(Vec::new()),
            FieldValue::I64(_) => Values::Int(Vec::new()),
            FieldValue::U64(_) => Values::UInt(Vec::new()),
            FieldValue::String(_) => Values::Str(Vec::new()),
            FieldValue::Bool(_) => Values::Bool(Vec::new()),
        }
    }

    fn len(&self) -> usize {
        match self {
            Values::Tag(v) | Values::Str(v) => v.len(),
            Values::Float(v) => v.len(),
            Values::Int(v) => v.len(),
            Values::UInt(v) => v.len(),
            Values::Bool(v) => v.len(),
        }
    }

    fn pad(&mut self, rows: usize) {
        while self.len() < rows {
            match self {
                Values::Tag(v) | Values::Str(v) => v.push(None),
                Values::Float(v) => v.push(None),
                Values::Int(v) => v.push(None),
                Values::UInt(v) => v.push(None),
                Values::Bool(v) => v.push(None),
            }
        }
    }

    /// Appends a field value; false if its type is not the column's.
    fn push_field(&mut self, v: &FieldValue<'_>) -> bool {
        match (self, v) {
            (Values::Float(c), FieldValue::F64(x)) => c.push(Some(*x)),
            (Values::Int(c), FieldValue::I64(x)) => c.push(Some(*x)),
            (Values::UInt(c), FieldValue::U64(x)) => c.push(Some(*x)),
            (Values::Str(c), FieldValue::String(x)) => c.push(Some(x.to_string())),
            (Values::Bool(c), FieldValue::Bool(x)) => c.push(Some(*x)),
            _ => return false,
        }
        true
    }

    fn array(&self) -> (DataType, ArrayRef) {
        match self {
            Values::Tag(v) | Values::Str(v) => {
                let mut b = StringBuilder::new();
                v.iter().for_each(|x| b.append_option(x.as_deref()));
                (DataType::Utf8, Arc::new(b.finish()))
            }
            Values::Float(v) => {
                let mut b = Float64Builder::new();
                v.iter().for_each(|x| b.append_option(*x));
                (DataType::Float64, Arc::new(b.finish()))
            }
            Values::Int(v) => {
                let mut b = Int64Builder::new();
                v.iter().for_each(|x| b.append_option(*x));
                (DataType::Int64, Arc::new(b.finish()))
            }
            Values::UInt(v) => {
                let mut b = UInt64Builder::new();
                v.iter().for_each(|x| b.append_option(*x));
                (DataType::UInt64, Arc::new(b.finish()))
            }
            Values::Bool(v) => {
                let mut b = BooleanBuilder::new();
                v.iter().for_each(|x| b.append_option(*x));
                (DataType::Boolean, Arc::new(b.finish()))
            }
        }
    }
}

/// The lines of a WAL dry run as the tables a flush would hand a plugin
/// (timestamps in nanoseconds, `now_ns` where a line has none), and the
/// lines that could not be used.
/// A dry run table's columns by name, in order.
type Columns = Vec<(String, Values)>;

fn column(columns: &[(String, Values)], name: &str) -> Option<usize> {
    columns.iter().position(|(n, _)| n == name)
}

pub(crate) fn lines_to_tables(
    input_lp: &str,
    now_ns: i64,
) -> (Vec<(String, Vec<RecordBatch>)>, Vec<String>) {
    let mut errors = Vec::new();
    // Columns in the order InfluxDB 3 gives a new table's rows: tags, then
    // fields, each as first seen.
    let mut tables: Vec<(String, Columns, Vec<i64>)> = Vec::new();
    for (number, line) in line_protocol::split_lines(input_lp.as_bytes()) {
        let parsed = match line_protocol::parse_line(line) {
            Ok(p) => p,
            Err(e) => {
                errors.push(format!(
                    "line {number}: {e}: {}",
                    String::from_utf8_lossy(line)
                ));
                continue;
            }
        };
        let name = parsed.measurement.to_string();
        let at = match tables.iter().position(|(n, _, _)| *n == name) {
            Some(i) => i,
            None => {
                tables.push((name, Vec::new(), Vec::new()));
                tables.len() - 1
            }
        };
        let (_, columns, times) = &mut tables[at];
        let rows = times.len();
        // Check the field types before taking the line.
        let conflict = parsed.fields.iter().find(|(k, v)| {
            column(columns, k).is_some_and(|c| {
                std::mem::discriminant(&columns[c].1) != std::mem::discriminant(&Values::of(v))
            })
        });
        if let Some((k, v)) = conflict {
            errors.push(format!(
                "line {number}: field '{k}' is a {} here but another type earlier",
                v.type_name()
            ));
            continue;
        }
        for (k, v) in &parsed.tags {
            let at = column(columns, k).unwrap_or_else(|| {
                let tags = columns
                    .iter()
                    .take_while(|(_, c)| matches!(c, Values::Tag(_)))
                    .count();
                columns.insert(tags, (k.to_string(), Values::Tag(Vec::new())));
                tags
            });
            let c = &mut columns[at].1;
            c.pad(rows);
            if let Values::Tag(values) = c {
                values.push(Some(v.to_string()));
            }
        }
        for (k, v) in &parsed.fields {
            let at = column(columns, k).unwrap_or_else(|| {
                columns.push((k.to_string(), Values::of(v)));
                columns.len() - 1
            });
            let c = &mut columns[at].1;
            c.pad(rows);
            c.push_field(v);
        }
        times.push(parsed.timestamp.unwrap_or(now_ns));
        for (_, c) in columns.iter_mut() {
            c.pad(rows + 1);
        }
    }
    let mut out = Vec::with_capacity(tables.len());
    for (name, columns, times) in tables {
        let mut fields = Vec::with_capacity(columns.len() + 1);
        let mut arrays = Vec::with_capacity(columns.len() + 1);
        for (column, values) in &columns {
            let (ty, array) = values.array();
            fields.push(Field::new(column, ty, true));
            arrays.push(array);
        }
        let mut t = TimestampNanosecondBuilder::new();
        times.iter().for_each(|x| t.append_value(*x));
        fields.push(Field::new(
            "time",
            DataType::Timestamp(TimeUnit::Nanosecond, None),
            false,
        ));
        arrays.push(Arc::new(t.finish()));
        match RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays) {
            Ok(batch) => out.push((name, vec![batch])),
            Err(e) => errors.push(format!("table {name}: {e}")),
        }
    }
    (out, errors)
}
