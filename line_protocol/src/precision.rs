//! Timestamp precision, as each write API spells it, and conversion to nanoseconds.

use crate::LineError;

/// The unit of the timestamps in a write request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// Guess each timestamp's unit from its magnitude (v3 `auto`).
    Auto,
    /// Nanoseconds.
    Nanosecond,
    /// Microseconds.
    Microsecond,
    /// Milliseconds.
    Millisecond,
    /// Seconds.
    Second,
    /// Minutes (v1 `m`).
    Minute,
    /// Hours (v1 `h`).
    Hour,
}

impl Precision {
    /// Parses the v3 `/api/v3/write_lp` spelling. v3 clients also send the
    /// short v2 forms, so those are accepted too.
    pub fn parse_v3(s: &str) -> Option<Self> {
        Some(match s {
            "auto" => Self::Auto,
            "nanosecond" | "ns" => Self::Nanosecond,
            "microsecond" | "us" => Self::Microsecond,
            "millisecond" | "ms" => Self::Millisecond,
            "second" | "s" => Self::Second,
            _ => return None,
        })
    }

    /// Parses the v2 `/api/v2/write` spelling.
    pub fn parse_v2(s: &str) -> Option<Self> {
        Some(match s {
            "ns" => Self::Nanosecond,
            "us" => Self::Microsecond,
            "ms" => Self::Millisecond,
            "s" => Self::Second,
            _ => return None,
        })
    }

    /// Parses the v1 `/write` spelling, including the old `m` and `h`.
    pub fn parse_v1(s: &str) -> Option<Self> {
        Some(match s {
            "n" | "ns" => Self::Nanosecond,
            "u" | "us" | "µ" | "µs" => Self::Microsecond,
            "ms" => Self::Millisecond,
            "s" => Self::Second,
            "m" => Self::Minute,
            "h" => Self::Hour,
            _ => return None,
        })
    }

    /// A stable code for the WAL, which records the request's precision.
    pub fn code(self) -> u8 {
        match self {
            Self::Auto => 0,
            Self::Nanosecond => 1,
            Self::Microsecond => 2,
            Self::Millisecond => 3,
            Self::Second => 4,
            Self::Minute => 5,
            Self::Hour => 6,
        }
    }

    /// The inverse of [`Precision::code`].
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Self::Auto,
            1 => Self::Nanosecond,
            2 => Self::Microsecond,
            3 => Self::Millisecond,
            4 => Self::Second,
            5 => Self::Minute,
            6 => Self::Hour,
            _ => return None,
        })
    }

    /// Converts a timestamp written in this precision to nanoseconds.
    ///
    /// `Auto` decides by magnitude: below 5e9 seconds, below 5e12
    /// milliseconds, below 5e15 microseconds, otherwise nanoseconds.
    pub fn to_nanos(self, ts: i64) -> Result<i64, LineError> {
        let factor: i64 = match self {
            Self::Auto => {
                let m = ts.unsigned_abs();
                if m < 5_000_000_000 {
                    1_000_000_000
                } else if m < 5_000_000_000_000 {
                    1_000_000
                } else if m < 5_000_000_000_000_000 {
                    1_000
                } else {
                    1
                }
            }
            Self::Nanosecond => 1,
            Self::Microsecond => 1_000,
            Self::Millisecond => 1_000_000,
            Self::Second => 1_000_000_000,
            Self::Minute => 60_000_000_000,
            Self::Hour => 3_600_000_000_000,
        };
        ts.checked_mul(factor)
            .ok_or(LineError::TimestampOutOfRange(ts))
    }
}
