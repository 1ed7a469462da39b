//! Deterministic TSBS-style `cpu` data: 10 tags and 10 integer fields per
//! host and interval. The same arguments always give the same bytes, so every
//! system in a comparison receives identical input.

/// What to generate.
#[derive(Debug, Clone)]
pub(crate) struct DataSpec {
    /// Number of hosts (series).
    pub(crate) hosts: usize,
    /// Seconds between points of one host.
    pub(crate) interval_s: u64,
    /// Points per host.
    pub(crate) points: usize,
    /// First timestamp, seconds since the epoch.
    pub(crate) start_s: i64,
    /// Give every host a unique `instance` tag that changes every point
    /// (the high-cardinality variant: one new series per line).
    pub(crate) high_cardinality: bool,
}

pub(crate) const FIELDS: [&str; 10] = [
    "usage_user",
    "usage_system",
    "usage_idle",
    "usage_nice",
    "usage_iowait",
    "usage_irq",
    "usage_softirq",
    "usage_steal",
    "usage_guest",
    "usage_guest_nice",
];

const REGIONS: [&str; 4] = ["us-east-1", "us-west-1", "eu-west-1", "ap-southeast-2"];
const OS: [&str; 3] = ["Ubuntu16.10", "Ubuntu16.04LTS", "Ubuntu15.10"];
const ARCH: [&str; 2] = ["x64", "x86"];
const TEAM: [&str; 4] = ["SF", "NYC", "LON", "CHI"];

/// xorshift64*: fast, deterministic, good enough for benchmark values.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

impl DataSpec {
    /// Total lines.
    pub(crate) fn lines(&self) -> usize {
        self.hosts * self.points
    }

    /// The data in time order (all hosts at t0, then t1, ...), cut into
    /// bodies of at most `batch` lines.
    pub(crate) fn batches(&self, batch: usize) -> Vec<Vec<u8>> {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let tags: Vec<String> = (0..self.hosts)
            .map(|h| {
                let region = REGIONS[h % REGIONS.len()];
                format!(
                    "hostname=host_{h},region={region},datacenter={region}{},rack={},os={},arch={},team={},service={},service_version={},service_environment={}",
                    ["a", "b", "c"][h % 3],
                    h % 100,
                    OS[h % OS.len()],
                    ARCH[h % ARCH.len()],
                    TEAM[h % TEAM.len()],
                    h % 20,
                    h % 2,
                    ["production", "staging", "test"][h % 3],
                )
            })
            .collect();
        // Values random-walk per host and field, as TSBS's do.
        let mut values: Vec<[u64; 10]> = (0..self.hosts).map(|_| [50; 10]).collect();
        let mut out = Vec::new();
        let mut body = Vec::with_capacity(batch * 330);
        let mut in_body = 0;
        for p in 0..self.points {
            let ts_ns = (self.start_s + (p as u64 * self.interval_s) as i64) * 1_000_000_000;
            for (h, host_tags) in tags.iter().enumerate() {
                body.extend_from_slice(b"cpu,");
                body.extend_from_slice(host_tags.as_bytes());
                if self.high_cardinality {
                    body.extend_from_slice(format!(",instance=i{}", p * self.hosts + h).as_bytes());
                }
                body.push(b' ');
                for (f, name) in FIELDS.iter().enumerate() {
                    let v = &mut values[h][f];
                    let step = rng.next() % 11;
                    *v = (*v + step).saturating_sub(5).min(100);
                    if f > 0 {
                        body.push(b',');
                    }
                    body.extend_from_slice(name.as_bytes());
                    body.push(b'=');
                    body.extend_from_slice(v.to_string().as_bytes());
                    body.push(b'i');
                }
                body.push(b' ');
                body.extend_from_slice(ts_ns.to_string().as_bytes());
                body.push(b'\n');
                in_body += 1;
                if in_body == batch {
                    out.push(std::mem::replace(
                        &mut body,
                        Vec::with_capacity(batch * 330),
                    ));
                    in_body = 0;
                }
            }
        }
        if in_body > 0 {
            out.push(body);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_complete() {
        let spec = DataSpec {
            hosts: 3,
            interval_s: 10,
            points: 4,
            start_s: 1_700_000_000,
            high_cardinality: false,
        };
        let a = spec.batches(5);
        assert_eq!(a, spec.batches(5));
        assert_eq!(a.len(), 3);
        let text: String = a
            .iter()
            .map(|b| String::from_utf8(b.clone()).unwrap())
            .collect();
        assert_eq!(text.lines().count(), 12);
        let first = text.lines().next().unwrap();
        assert!(
            first.starts_with("cpu,hostname=host_0,region=us-east-1,"),
            "{first}"
        );
        assert!(first.ends_with(" 1700000000000000000"), "{first}");
        assert_eq!(first.split(' ').nth(1).unwrap().split(',').count(), 10);
        assert_eq!(first.split(' ').next().unwrap().split(',').count(), 11);
    }
}
