use super::*;

fn parse(s: &str) -> Result<ParsedLine<'_>, LineError> {
    parse_line(s.as_bytes())
}

fn lines(body: &str) -> Vec<(usize, String)> {
    split_lines(body.as_bytes())
        .map(|(n, l)| (n, String::from_utf8(l.to_vec()).unwrap()))
        .collect()
}

#[test]
fn basic_line() {
    let l =
        parse("cpu,host=a,region=us usage=1.5,count=3i,free=7u,ok=true,msg=\"hi\" 123").unwrap();
    assert_eq!(l.measurement, "cpu");
    assert_eq!(
        l.tags,
        vec![("host".into(), "a".into()), ("region".into(), "us".into())]
    );
    assert_eq!(
        l.fields,
        vec![
            ("usage".into(), FieldValue::F64(1.5)),
            ("count".into(), FieldValue::I64(3)),
            ("free".into(), FieldValue::U64(7)),
            ("ok".into(), FieldValue::Bool(true)),
            ("msg".into(), FieldValue::String("hi".into())),
        ]
    );
    assert_eq!(l.timestamp, Some(123));
}

#[test]
fn optional_timestamp_and_negative() {
    assert_eq!(parse("m f=1").unwrap().timestamp, None);
    assert_eq!(parse("m f=1 -5").unwrap().timestamp, Some(-5));
    assert_eq!(parse("m f=1   7  ").unwrap().timestamp, Some(7));
}

#[test]
fn booleans_in_every_spelling() {
    for (s, v) in [
        ("t", true),
        ("T", true),
        ("true", true),
        ("True", true),
        ("TRUE", true),
        ("f", false),
        ("F", false),
        ("false", false),
        ("False", false),
        ("FALSE", false),
    ] {
        let line = format!("m b={s}");
        assert_eq!(
            parse(&line).unwrap().fields[0].1,
            FieldValue::Bool(v),
            "{s}"
        );
    }
    assert!(matches!(
        parse("m b=tRUE"),
        Err(LineError::BadFieldValue { .. })
    ));
}

#[test]
fn numbers() {
    assert_eq!(
        parse("m f=-1.5e3").unwrap().fields[0].1,
        FieldValue::F64(-1500.0)
    );
    assert_eq!(parse("m f=1").unwrap().fields[0].1, FieldValue::F64(1.0));
    assert_eq!(parse("m f=.5").unwrap().fields[0].1, FieldValue::F64(0.5));
    assert_eq!(
        parse("m f=-9223372036854775808i").unwrap().fields[0].1,
        FieldValue::I64(i64::MIN)
    );
    assert_eq!(
        parse("m f=18446744073709551615u").unwrap().fields[0].1,
        FieldValue::U64(u64::MAX)
    );
    let e = parse("m f=9223372036854775808i").unwrap_err();
    assert!(e.to_string().contains("out of range"), "{e}");
    let e = parse("m f=18446744073709551616u").unwrap_err();
    assert!(e.to_string().contains("out of range"), "{e}");
    let e = parse("m f=-1u").unwrap_err();
    assert!(e.to_string().contains("negative"), "{e}");
    for bad in [
        "m f=1.2.3",
        "m f=abc",
        "m f=NaN",
        "m f=inf",
        "m f=1x",
        "m f=i",
        "m f=--1",
        "m f=1e999",
    ] {
        assert!(
            matches!(parse(bad), Err(LineError::BadFieldValue { .. })),
            "{bad}"
        );
    }
}

#[test]
fn escapes_in_names() {
    let l = parse(r#"my\ meas\,ure=x,tag\ k\=ey=val\,u\ e\=s field\=k\ ey\,=1"#).unwrap();
    assert_eq!(l.measurement, "my meas,ure=x");
    assert_eq!(l.tags[0], ("tag k=ey".into(), "val,u e=s".into()));
    assert_eq!(l.fields[0].0, "field=k ey,");
    // A backslash before any other character stays.
    let l = parse(r"m\x,t=a\b f=1").unwrap();
    assert_eq!(l.measurement, r"m\x");
    assert_eq!(l.tags[0].1, r"a\b");
}

#[test]
fn string_values() {
    let l = parse(r#"m s="a \"quoted\" \\ value, with = and spaces",n=1"#).unwrap();
    assert_eq!(
        l.fields[0].1,
        FieldValue::String(r#"a "quoted" \ value, with = and spaces"#.into())
    );
    assert_eq!(l.fields[1].1, FieldValue::F64(1.0));
    let l = parse(r#"m s="back\slash""#).unwrap();
    assert_eq!(l.fields[0].1, FieldValue::String(r"back\slash".into()));
    let l = parse(r#"m s="""#).unwrap();
    assert_eq!(l.fields[0].1, FieldValue::String("".into()));
    assert!(matches!(
        parse(r#"m s="open"#),
        Err(LineError::UnterminatedString(_))
    ));
    assert!(matches!(
        parse(r#"m s="x"y"#),
        Err(LineError::TrailingText(_))
    ));
    let l = parse("m s=\"multi\nline\" 5").unwrap();
    assert_eq!(l.fields[0].1, FieldValue::String("multi\nline".into()));
}

#[test]
fn errors_name_the_problem() {
    assert_eq!(parse("m").unwrap_err(), LineError::NoFields);
    assert_eq!(parse("m,t=1").unwrap_err(), LineError::NoFields);
    assert_eq!(parse("m 123").unwrap_err(), LineError::NoFields);
    assert_eq!(
        parse("m abc 123").unwrap_err(),
        LineError::MissingFieldValue("abc".into())
    );
    assert_eq!(
        parse(",t=1 f=1").unwrap_err(),
        LineError::MissingMeasurement
    );
    assert_eq!(
        parse("m,t f=1").unwrap_err(),
        LineError::MissingTagValue("t".into())
    );
    assert_eq!(
        parse("m,t= f=1").unwrap_err(),
        LineError::EmptyTagValue("t".into())
    );
    assert_eq!(parse("m,=v f=1").unwrap_err(), LineError::EmptyTagKey);
    assert_eq!(
        parse("m,a=1,a=2 f=1").unwrap_err(),
        LineError::DuplicateTag("a".into())
    );
    assert_eq!(
        parse("m f=1,f=2").unwrap_err(),
        LineError::DuplicateField("f".into())
    );
    assert_eq!(
        parse("m,a=1 a=2").unwrap_err(),
        LineError::TagFieldConflict("a".into())
    );
    assert_eq!(parse("m f=1,=2").unwrap_err(), LineError::EmptyFieldKey);
    assert_eq!(
        parse("m f=").unwrap_err().to_string(),
        "invalid field value for field 'f': empty value"
    );
    assert_eq!(
        parse("m f=1 12x").unwrap_err(),
        LineError::BadTimestamp("12x".into())
    );
    assert_eq!(
        parse("m f=1 1 2").unwrap_err(),
        LineError::TrailingText("2".into())
    );
    assert_eq!(parse("m time=1").unwrap_err(), LineError::ReservedTime);
    assert_eq!(parse("m,time=1 f=1").unwrap_err(), LineError::ReservedTime);
    assert_eq!(
        parse_line(b"m f=\"\xff\"").unwrap_err(),
        LineError::InvalidUtf8
    );
    let big = "m f=1 99999999999999999999";
    assert_eq!(
        parse(big).unwrap_err(),
        LineError::BadTimestamp("99999999999999999999".into())
    );
}

#[test]
fn splitting_lines() {
    let body =
        "# comment\r\nm f=1 1\r\n\n   \nm f=2 2\n  # indented comment\nm s=\"a\nb\" 3\nm f=4";
    assert_eq!(
        lines(body),
        vec![
            (2, "m f=1 1".to_string()),
            (5, "m f=2 2".to_string()),
            (7, "m s=\"a\nb\" 3".to_string()),
            (9, "m f=4".to_string()),
        ]
    );
    // An escaped quote does not open or close a string.
    assert_eq!(lines("m,t=\\\"x f=1\nm f=2").len(), 2);
    assert_eq!(lines("m s=\"a\\\"\nb\" 1\nm f=2").len(), 2);
}

#[test]
fn precision_conversion() {
    assert_eq!(
        Precision::Auto.to_nanos(1_700_000_000).unwrap(),
        1_700_000_000_000_000_000
    );
    assert_eq!(
        Precision::Auto.to_nanos(1_700_000_000_000).unwrap(),
        1_700_000_000_000_000_000
    );
    assert_eq!(
        Precision::Auto.to_nanos(1_700_000_000_000_000).unwrap(),
        1_700_000_000_000_000_000
    );
    assert_eq!(
        Precision::Auto.to_nanos(1_700_000_000_000_000_000).unwrap(),
        1_700_000_000_000_000_000
    );
    assert_eq!(Precision::Second.to_nanos(2).unwrap(), 2_000_000_000);
    assert_eq!(Precision::Minute.to_nanos(1).unwrap(), 60_000_000_000);
    assert_eq!(Precision::Hour.to_nanos(1).unwrap(), 3_600_000_000_000);
    assert!(Precision::Second.to_nanos(i64::MAX / 10).is_err());
    assert_eq!(Precision::parse_v1("µ"), Some(Precision::Microsecond));
    assert_eq!(Precision::parse_v1("h"), Some(Precision::Hour));
    assert_eq!(Precision::parse_v2("h"), None);
    assert_eq!(
        Precision::parse_v3("millisecond"),
        Some(Precision::Millisecond)
    );
    assert_eq!(Precision::parse_v3("bogus"), None);
    for c in 0..7 {
        assert_eq!(Precision::from_code(c).unwrap().code(), c);
    }
}

#[test]
fn fast_float_path_matches_the_general_parser() {
    let cases = [
        "0",
        "-0",
        "1",
        "1.",
        ".5",
        "-.5",
        "+2.25",
        "58.1358",
        "0.1",
        "0.3",
        "123456789012345",
        "1234567.89012345",
        "9007199254740993",
        "0.000000000000001",
        "99999999999999.9",
        "-42.000001",
        "3.14159265358979",
    ];
    for c in cases {
        let want: f64 = c.parse().unwrap();
        match super::fast_decimal(c.as_bytes()) {
            Some(got) => assert_eq!(got.to_bits(), want.to_bits(), "{c}"),
            None => assert!(
                c.trim_start_matches(['-', '+']).replace('.', "").len() > 15,
                "{c} should take the fast path"
            ),
        }
        let line = format!("m f={c}");
        let parsed = parse_line(line.as_bytes()).unwrap();
        assert_eq!(parsed.fields[0].1, FieldValue::F64(want), "{c}");
    }
    // A pseudo-random sweep of short decimals.
    let mut x: u64 = 0x9E3779B97F4A7C15;
    for _ in 0..20000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let int = x % 1_000_000;
        let frac = (x >> 20) % 1_000_000_000;
        let s = format!("{int}.{frac:09}");
        assert_eq!(
            super::fast_decimal(s.as_bytes()).map(f64::to_bits),
            Some(s.parse::<f64>().unwrap().to_bits()),
            "{s}"
        );
    }
    for bad in ["", "-", ".", "1.2.3", "1e5", "abc", "1-2"] {
        assert_eq!(super::fast_decimal(bad.as_bytes()), None, "{bad}");
    }
}

#[test]
fn series_split_agrees_with_the_full_parser() {
    let lines = [
        "cpu,host=a,region=us usage=1.5,count=3i,free=7u,ok=true,msg=\"hi there\" 123",
        "cpu usage=1",
        "cpu,host=a f=1   7  ",
        "cpu,host=a\tb f=1 7",
        "cpu,host=a f=\"x\"y",
        "cpu,host=a f=1,f=2",
        "cpu,host=a host=2",
        "cpu,host=a time=2",
        "cpu,host=a f=1 12x",
        "cpu,host=a 123",
        "cpu,host=a f=",
        "cpu,host=a f=1 1 2",
        "cpu,host=a f=\"a\\\"b\",g=-1.5e3",
    ];
    for line in lines {
        let (key, rest) = split_series(line.as_bytes()).unwrap();
        assert_eq!(key, line.split(' ').next().unwrap().as_bytes());
        let mut fields = Vec::new();
        let fast = parse_fields_into(rest, &mut fields, &[]);
        // With an earlier line's fields as the hint, the result is the same.
        let hint = parse("cpu f=1,g=2,msg=\"x\"").unwrap().fields;
        let mut hinted = Vec::new();
        assert_eq!(parse_fields_into(rest, &mut hinted, &hint), fast, "{line}");
        assert_eq!(hinted, fields, "{line}");
        match parse(line) {
            Ok(l) => {
                assert_eq!(fast, Ok(l.timestamp), "{line}");
                assert_eq!(fields, l.fields, "{line}");
            }
            // The full parser also checks keys for duplicates and against
            // the tags; the field parser leaves that to its caller.
            Err(LineError::DuplicateField(_) | LineError::TagFieldConflict(_)) => {
                assert!(fast.is_ok(), "{line}")
            }
            Err(e) => {
                assert_eq!(fast, Err(e), "{line}");
                assert!(fields.is_empty());
            }
        }
    }
    // Lines whose key needs the full parser.
    for line in [
        " cpu f=1",
        "\tcpu f=1",
        "cpu,host=a\\ b f=1",
        "cpu\\,x f=1",
        "cpu",
    ] {
        assert!(split_series(line.as_bytes()).is_none(), "{line}");
    }
}
