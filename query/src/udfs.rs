//! DataFusion's time-bucketing functions with a cheap hash.
//!
//! DataFusion hashes expressions while it plans (common subexpressions,
//! equivalence classes, orderings), and the derived hash of a function
//! covers its whole type signature. `date_bin`'s lists some sixty
//! combinations of interval and timestamp types, and hashing it took 17%
//! of the instructions of a single-host `GROUP BY date_bin(…)` query. The
//! wrapper hashes the name only (functions that are equal have equal
//! names), compares by identity before comparing in full, and delegates
//! everything else, except `date_bin` of nanosecond timestamps by a fixed
//! stride, which it computes itself (`date_bin_nanos`).

use std::any::Any;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::{ExprSchema, Result, ScalarValue};
use datafusion::logical_expr::interval_arithmetic::Interval;
use datafusion::logical_expr::preimage::PreimageResult;
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::sort_properties::{ExprProperties, SortProperties};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, Expr, ExpressionPlacement, ReturnFieldArgs, ScalarFunctionArgs,
    ScalarUDF, ScalarUDFImpl, Signature, StructFieldMapping,
};

/// Nanoseconds in a day.
const DAY_NS: i64 = 86_400_000_000_000;

/// The functions wrapped: the ones dashboards bucket time with. None of
/// them is recognised by DataFusion by its type.
pub(crate) const CHEAP_HASH: [&str; 3] = ["date_bin", "date_trunc", "date_part"];

/// A scalar function that hashes by name.
#[derive(Debug)]
pub(crate) struct CheapHash(Arc<dyn ScalarUDFImpl>);

impl CheapHash {
    pub(crate) fn wrap(f: &ScalarUDF) -> ScalarUDF {
        ScalarUDF::new_from_impl(Self(Arc::clone(f.inner())))
    }
}

impl PartialEq for CheapHash {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.dyn_eq(other.0.as_ref() as &dyn Any)
    }
}

impl Eq for CheapHash {}

impl Hash for CheapHash {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.name().hash(state);
    }
}

impl ScalarUDFImpl for CheapHash {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn aliases(&self) -> &[String] {
        self.0.aliases()
    }
    #[allow(deprecated)] // still called by older paths; delegated like the rest
    fn display_name(&self, args: &[Expr]) -> Result<String> {
        self.0.display_name(args)
    }
    fn schema_name(&self, args: &[Expr]) -> Result<String> {
        self.0.schema_name(args)
    }
    fn signature(&self) -> &Signature {
        self.0.signature()
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.0.return_type(arg_types)
    }
    fn with_updated_config(&self, config: &ConfigOptions) -> Option<ScalarUDF> {
        self.0.with_updated_config(config).map(|f| Self::wrap(&f))
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.0.return_field_from_args(args)
    }
    #[allow(deprecated)] // still called by older paths; delegated like the rest
    fn is_nullable(&self, args: &[Expr], schema: &dyn ExprSchema) -> bool {
        self.0.is_nullable(args, schema)
    }
    fn is_strict(&self) -> bool {
        self.0.is_strict()
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if self.0.name() == "date_bin"
            && let Some(binned) = date_bin_nanos(&args.args)
        {
            return Ok(binned);
        }
        self.0.invoke_with_args(args)
    }
    fn simplify(&self, args: Vec<Expr>, info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        self.0.simplify(args, info)
    }
    fn preimage(
        &self,
        args: &[Expr],
        lit_expr: &Expr,
        info: &SimplifyContext,
    ) -> Result<PreimageResult> {
        self.0.preimage(args, lit_expr, info)
    }
    fn short_circuits(&self) -> bool {
        self.0.short_circuits()
    }
    fn conditional_arguments<'a>(
        &self,
        args: &'a [Expr],
    ) -> Option<(Vec<&'a Expr>, Vec<&'a Expr>)> {
        self.0.conditional_arguments(args)
    }
    fn evaluate_bounds(&self, input: &[&Interval]) -> Result<Interval> {
        self.0.evaluate_bounds(input)
    }
    fn propagate_constraints(
        &self,
        interval: &Interval,
        inputs: &[&Interval],
    ) -> Result<Option<Vec<Interval>>> {
        self.0.propagate_constraints(interval, inputs)
    }
    fn output_ordering(&self, inputs: &[ExprProperties]) -> Result<SortProperties> {
        self.0.output_ordering(inputs)
    }
    fn preserves_lex_ordering(&self, inputs: &[ExprProperties]) -> Result<bool> {
        self.0.preserves_lex_ordering(inputs)
    }
    fn strictly_order_preserving(&self, inputs: &[ExprProperties]) -> Result<bool> {
        self.0.strictly_order_preserving(inputs)
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.0.coerce_types(arg_types)
    }
    fn struct_field_mapping(
        &self,
        literal_args: &[Option<ScalarValue>],
    ) -> Option<StructFieldMapping> {
        self.0.struct_field_mapping(literal_args)
    }
    fn documentation(&self) -> Option<&Documentation> {
        self.0.documentation()
    }
    fn placement(&self, args: &[ExpressionPlacement]) -> ExpressionPlacement {
        self.0.placement(args)
    }
}

/// `date_bin` of nanosecond timestamps by a fixed stride (no months),
/// the dashboards' `GROUP BY date_bin(INTERVAL '1 minute', time)`: one pass
/// of integer arithmetic. DataFusion's general path checks each row for
/// overflow and builds a null mask row by row, about 100 instructions a
/// row. `None` (DataFusion decides) for any other argument, a stride that
/// is not positive, or a value whose bin would overflow, which DataFusion
/// turns into a null.
fn date_bin_nanos(args: &[ColumnarValue]) -> Option<ColumnarValue> {
    use datafusion::arrow::array::{Array, AsArray, PrimitiveArray};
    use datafusion::arrow::datatypes::{
        IntervalDayTimeType, IntervalMonthDayNanoType, TimeUnit, TimestampNanosecondType,
    };
    let (stride, times, origin) = match args {
        [stride, ColumnarValue::Array(times)] => (stride, times, 0),
        [
            stride,
            ColumnarValue::Array(times),
            ColumnarValue::Scalar(ScalarValue::TimestampNanosecond(Some(o), _)),
        ] => (stride, times, *o),
        _ => return None,
    };
    let stride = match stride {
        ColumnarValue::Scalar(ScalarValue::IntervalMonthDayNano(Some(v))) => {
            let (months, days, nanos) = IntervalMonthDayNanoType::to_parts(*v);
            if months != 0 {
                return None;
            }
            i64::from(days).checked_mul(DAY_NS)?.checked_add(nanos)?
        }
        ColumnarValue::Scalar(ScalarValue::IntervalDayTime(Some(v))) => {
            let (days, ms) = IntervalDayTimeType::to_parts(*v);
            i64::from(days)
                .checked_mul(DAY_NS)?
                .checked_add(i64::from(ms).checked_mul(1_000_000)?)?
        }
        _ => return None,
    };
    if stride <= 0
        || !matches!(
            times.data_type(),
            DataType::Timestamp(TimeUnit::Nanosecond, _)
        )
    {
        return None;
    }
    let times = times.as_primitive_opt::<TimestampNanosecondType>()?;
    // The bin of `t`: `origin` plus the stride multiple at or below `t - origin`.
    let bin = |t: i64| {
        let d = t.checked_sub(origin)?;
        origin.checked_add(d.checked_sub(d.rem_euclid(stride))?)
    };
    let mut overflow = false;
    let values: Vec<i64> = times
        .values()
        .iter()
        .map(|t| {
            bin(*t).unwrap_or_else(|| {
                overflow = true;
                0
            })
        })
        .collect();
    if overflow {
        return None;
    }
    let binned =
        PrimitiveArray::<TimestampNanosecondType>::new(values.into(), times.nulls().cloned());
    Some(ColumnarValue::Array(Arc::new(
        binned.with_timezone_opt(times.timezone()),
    )))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::hash::{BuildHasher, RandomState};
    use std::sync::Arc;

    use datafusion::arrow::array::TimestampNanosecondArray;
    use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use datafusion::arrow::record_batch::RecordBatch;
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::datasource::MemTable;
    use datafusion::prelude::SessionContext;

    use super::{CHEAP_HASH, CheapHash};

    fn context(wrapped: bool) -> SessionContext {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "time",
            DataType::Timestamp(TimeUnit::Nanosecond, None),
            false,
        )]));
        let times: Vec<i64> = (-250..250).map(|i| i * 7_300_000_003).collect();
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![Arc::new(TimestampNanosecondArray::from(times))],
        )
        .unwrap();
        let ctx = SessionContext::new();
        ctx.register_table(
            "m",
            Arc::new(MemTable::try_new(schema, vec![vec![batch]]).unwrap()),
        )
        .unwrap();
        if wrapped {
            for name in CHEAP_HASH {
                let f = ctx.state().scalar_functions().get(name).cloned().unwrap();
                ctx.register_udf(CheapHash::wrap(&f));
            }
        }
        ctx
    }

    #[tokio::test]
    async fn wrapped_functions_answer_and_compare_as_before() {
        let queries = [
            "SELECT date_bin(INTERVAL '1 minute', time) AS t, count(*) AS n FROM m GROUP BY t ORDER BY t",
            "SELECT date_trunc('hour', time) AS t, date_part('minute', time) AS mi, count(*) AS n FROM m \
             GROUP BY t, mi ORDER BY t, mi",
            "SELECT date_bin(INTERVAL '15 minutes', time, TIMESTAMP '1970-01-01T00:07:00') AS t FROM m ORDER BY t DESC LIMIT 3",
            // Every row through `date_bin_nanos` and through DataFusion's
            // own: strides and origins around negative and positive times,
            // nulls, a zone, and the cases it leaves to DataFusion (months,
            // a negative stride, overflow).
            "SELECT time, date_bin(INTERVAL '7 seconds', time) AS a, \
             date_bin(INTERVAL '1 day 3 hours', time, TIMESTAMP '1970-01-01T00:00:03') AS b, \
             date_bin(INTERVAL '1 minute', CASE WHEN time > TIMESTAMP '1970-01-01T00:05:00' THEN time END) AS c, \
             date_bin(INTERVAL '1 hour', arrow_cast(time, 'Timestamp(Nanosecond, Some(\"+01:00\"))')) AS d, \
             date_bin(INTERVAL '1 month', time) AS e, \
             date_bin(INTERVAL '3 nanoseconds', time, TIMESTAMP '1970-01-01T00:00:00.000000001') AS f \
             FROM m ORDER BY time",
            "SELECT date_bin(INTERVAL '-5 minutes', time) AS a FROM m ORDER BY time",
            "SELECT date_bin(INTERVAL '1 minute', time, TIMESTAMP '2262-04-11T23:47:16') AS a FROM m ORDER BY time",
        ];
        let (plain, wrapped) = (context(false), context(true));
        for q in queries {
            let a = pretty_format_batches(&plain.sql(q).await.unwrap().collect().await.unwrap())
                .unwrap()
                .to_string();
            let b = pretty_format_batches(&wrapped.sql(q).await.unwrap().collect().await.unwrap())
                .unwrap()
                .to_string();
            assert_eq!(a, b, "{q}");
        }
        let f = |name: &str| {
            wrapped
                .state()
                .scalar_functions()
                .get(name)
                .cloned()
                .unwrap()
        };
        let hash = RandomState::new();
        assert_eq!(f("date_bin"), f("date_bin"));
        assert_eq!(hash.hash_one(f("date_bin")), hash.hash_one(f("date_bin")));
        assert_ne!(f("date_bin"), f("date_trunc"));
        assert_ne!(
            f("date_bin"),
            plain
                .state()
                .scalar_functions()
                .get("date_bin")
                .cloned()
                .unwrap()
        );
    }
}
