use crate::*;

fn one(text: &str) -> Statement {
    let mut s = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    assert_eq!(s.len(), 1, "{text}");
    s.remove(0)
}

fn select(text: &str) -> SelectStatement {
    match one(text) {
        Statement::Select(s) => *s,
        other => panic!("{text}: {other:?}"),
    }
}

fn err(text: &str) -> String {
    parse(text).expect_err(text).0
}

#[test]
fn select_with_every_clause() {
    let s = select(
        "SELECT mean(\"usage\") AS m, max(idle) FROM \"db\".\"autogen\".cpu \
         WHERE host =~ /^web.*$/ AND time >= 1700000000000ms and time <= now() - 1h \
         GROUP BY time(10s, 5s), \"host\" fill(previous) ORDER BY time DESC \
         LIMIT 10 OFFSET 2 SLIMIT 3 SOFFSET 1 tz('Europe/Paris')",
    );
    assert_eq!(s.fields.len(), 2);
    assert_eq!(s.fields[0].alias.as_deref(), Some("m"));
    assert_eq!(
        s.from,
        vec![Source::Measurement(Measurement {
            database: Some("db".into()),
            retention_policy: Some("autogen".into()),
            name: MeasurementName::Name("cpu".into()),
        })]
    );
    assert_eq!(
        s.group_by,
        vec![
            Dimension::Time {
                interval: 10_000_000_000,
                offset: Some(TimeOffset::Duration(5_000_000_000))
            },
            Dimension::Tag("host".into())
        ]
    );
    assert_eq!(s.fill, Some(Fill::Previous));
    assert!(s.descending);
    assert_eq!(
        (s.limit, s.offset, s.slimit, s.soffset),
        (Some(10), Some(2), Some(3), Some(1))
    );
    assert_eq!(s.timezone.as_deref(), Some("Europe/Paris"));
    let cond = s.condition.unwrap();
    let Expr::Binary {
        op: BinaryOp::And,
        lhs,
        ..
    } = &cond
    else {
        panic!("{cond:?}")
    };
    let Expr::Binary {
        op: BinaryOp::And,
        lhs: re,
        ..
    } = lhs.as_ref()
    else {
        panic!()
    };
    assert_eq!(
        **re,
        Expr::Binary {
            op: BinaryOp::RegexMatch,
            lhs: Box::new(Expr::var("host")),
            rhs: Box::new(Expr::Regex("^web.*$".into()))
        }
    );
}

#[test]
fn precedence_and_unary_minus() {
    let e = parse_expr("a + b * 2 > -3 OR c = 'x' AND d").unwrap();
    assert_eq!(e.to_string(), "a + b * 2 > -3 OR c = 'x' AND d");
    let Expr::Binary {
        op: BinaryOp::Or,
        rhs,
        ..
    } = &e
    else {
        panic!()
    };
    assert!(matches!(
        rhs.as_ref(),
        Expr::Binary {
            op: BinaryOp::And,
            ..
        }
    ));
    let e = parse_expr("-x").unwrap();
    assert_eq!(e.to_string(), "-1 * x");
}

#[test]
fn regex_sources_casts_params_and_several_statements() {
    let st =
        parse("SELECT *::field, v::integer FROM /cpu.*/, mem WHERE h = $host; SHOW DATABASES;")
            .unwrap();
    assert_eq!(st.len(), 2);
    let Statement::Select(s) = &st[0] else {
        panic!()
    };
    assert_eq!(s.fields[0].expr, Expr::Wildcard(Some(Cast::Field)));
    assert_eq!(
        s.fields[1].expr,
        Expr::VarRef {
            name: "v".into(),
            cast: Some(Cast::Integer)
        }
    );
    assert!(
        matches!(&s.from[0], Source::Measurement(Measurement { name: MeasurementName::Regex(r), .. }) if r == "cpu.*")
    );
    assert!(
        matches!(&s.condition, Some(Expr::Binary { rhs, .. }) if **rhs == Expr::BindParam("host".into()))
    );
    assert_eq!(st[1], Statement::ShowDatabases);
}

#[test]
fn subqueries_and_into() {
    let s = select(
        "SELECT max(m) INTO \"down\".autogen.cpu_max FROM (SELECT mean(v) AS m FROM cpu GROUP BY time(1m)) WHERE time > 0",
    );
    assert_eq!(
        s.into.unwrap().name,
        MeasurementName::Name("cpu_max".into())
    );
    let Source::Subquery(inner) = &s.from[0] else {
        panic!()
    };
    assert_eq!(inner.fields[0].alias.as_deref(), Some("m"));
}

#[test]
fn escaped_regex_and_strings() {
    let e = parse_expr(r"m =~ /a\/b\d/ AND s = 'it\'s'").unwrap();
    let mut seen = Vec::new();
    e.walk(&mut |x| seen.push(x.clone()));
    assert!(seen.contains(&Expr::Regex(r"a/b\d".into())));
    assert!(seen.contains(&Expr::Literal(Literal::String("it's".into()))));
}

#[test]
fn show_statements() {
    assert!(matches!(
        one("SHOW MEASUREMENTS WITH MEASUREMENT =~ /c.*/ LIMIT 2"),
        Statement::ShowMeasurements(ShowMeasurements {
            with: Some(NameMatch::Regex(_)),
            limit: Some(2),
            ..
        })
    ));
    let Statement::ShowTagValues(v) =
        one("SHOW TAG VALUES FROM cpu WITH KEY IN (host, \"region\") WHERE host != 'a'")
    else {
        panic!()
    };
    assert_eq!(v.key, KeyMatch::In(vec!["host".into(), "region".into()]));
    assert!(v.keys.condition.is_some());
    assert!(matches!(
        one("SHOW TAG KEYS ON db FROM cpu"),
        Statement::ShowTagKeys(ShowKeys { on: Some(_), .. })
    ));
    assert!(matches!(
        one("SHOW FIELD KEYS"),
        Statement::ShowFieldKeys(_)
    ));
    assert!(matches!(
        one("SHOW SERIES FROM cpu WHERE host = 'a'"),
        Statement::ShowSeries(_)
    ));
    assert!(matches!(
        one("SHOW RETENTION POLICIES ON db"),
        Statement::ShowRetentionPolicies { on: Some(_) }
    ));
    assert!(matches!(
        one("SHOW TAG KEY EXACT CARDINALITY"),
        Statement::ShowCardinality(ShowCardinality {
            of: CardinalityOf::TagKeys,
            exact: true,
            ..
        })
    ));
    assert!(matches!(
        one("SHOW FIELD KEY CARDINALITY FROM cpu"),
        Statement::ShowCardinality(ShowCardinality {
            of: CardinalityOf::FieldKeys,
            ..
        })
    ));
    assert_eq!(
        one("CREATE DATABASE \"telegraf\""),
        Statement::CreateDatabase {
            name: "telegraf".into()
        }
    );
    assert_eq!(
        one("drop measurement cpu"),
        Statement::DropMeasurement { name: "cpu".into() }
    );
    assert!(matches!(one("SHOW USERS"), Statement::Unsupported(_)));
    assert!(matches!(
        one("CREATE USER x WITH PASSWORD 'y'"),
        Statement::Unsupported(_)
    ));
}

#[test]
fn durations() {
    assert_eq!(duration::parse("1h30m").unwrap(), 5_400_000_000_000);
    assert_eq!(duration::parse("500ms").unwrap(), 500_000_000);
    assert_eq!(duration::parse("2w").unwrap(), 1_209_600_000_000_000);
    assert_eq!(duration::parse("10u").unwrap(), 10_000);
    assert!(duration::parse("10x").is_err());
    assert_eq!(duration::format(3_600_000_000_000), "1h0m0s");
    assert_eq!(duration::format(0), "0s");
}

#[test]
fn errors_read_as_influxdb_words_them() {
    // Each message is what InfluxDB 1.6 answered for the same text.
    assert_eq!(
        err("SELEC x"),
        "found SELEC, expected SELECT, DELETE, SHOW, CREATE, DROP, EXPLAIN, GRANT, REVOKE, ALTER, SET, KILL at line 1, char 1"
    );
    assert_eq!(
        err("SELECT * FROM"),
        "found EOF, expected identifier at line 1, char 15"
    );
    assert_eq!(
        err("SELECT usage FROM cpu WHERE"),
        "found EOF, expected identifier, string, number, bool at line 1, char 29"
    );
    assert_eq!(
        err("SELECT usage FROM cpu GROUP BY time(10x)"),
        "invalid duration"
    );
    assert_eq!(
        err("SELECT usage FROM cpu LIMIT -1"),
        "found -, expected integer at line 1, char 29"
    );
    assert_eq!(
        err("SELECT usage, FROM cpu"),
        "found FROM, expected identifier, string, number, bool at line 1, char 15"
    );
    assert_eq!(
        err("SHOW FOO"),
        "found FOO, expected CONTINUOUS, DATABASES, DIAGNOSTICS, FIELD, GRANTS, MEASUREMENT, MEASUREMENTS, QUERIES, RETENTION, SERIES, SHARD, SHARDS, STATS, SUBSCRIPTIONS, TAG, USERS at line 1, char 6"
    );
    assert_eq!(
        err("select  from x"),
        "found FROM, expected identifier, string, number, bool at line 1, char 9"
    );
}
