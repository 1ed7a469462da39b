//! The line protocol parser on any bytes: it never panics, and its fast
//! path (a series key split off and cached, then only the fields parsed)
//! agrees with the full parse on every line the full parse accepts.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    for (_, line) in line_protocol::split_lines(body) {
        let full = line_protocol::parse_line(line);
        let Some((key, rest)) = line_protocol::split_series(line) else {
            continue;
        };
        let Ok(full) = full else { continue };
        let mut fields = Vec::new();
        let time = line_protocol::parse_fields_into(rest, &mut fields, &[])
            .expect("the fields of a line the full parser accepts parse on their own");
        assert_eq!(time, full.timestamp);
        assert_eq!(format!("{fields:?}"), format!("{:?}", full.fields));
        // Parsing them again with themselves as the hint changes nothing.
        let mut again = Vec::new();
        let time_again = line_protocol::parse_fields_into(rest, &mut again, &fields)
            .expect("the same fields parse with a hint");
        assert_eq!(time_again, time);
        assert_eq!(format!("{again:?}"), format!("{fields:?}"));
        // The key alone, with any field, parses to the same series.
        let mut probe = key.to_vec();
        probe.extend_from_slice(b" fuzz_probe=1");
        if let Ok(series) = line_protocol::parse_line(&probe) {
            assert_eq!(series.measurement, full.measurement);
            assert_eq!(series.tags, full.tags);
        }
    }
});
