//! [`Timestamp`]: a point in time as ChronoDB keeps it — microseconds since the Unix epoch,
//! UTC — and the one place that reads and writes one as text. `AS OF TIMESTAMP`, the CLI's
//! times, the audit report and the tools' output all go through it, so a time written by
//! one is read back exactly by the others.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::value::{format_timestamp_micros, parse_timestamp};

/// The largest whole number read as Unix seconds: 9999-12-31 23:59:59 UTC. A larger whole
/// number is a count of microseconds (every time since 1970-04-26 is one, as microseconds).
pub const MAX_SECONDS: i64 = 253_402_300_799;

/// Microseconds since 1970-01-01 00:00:00 UTC (commit timestamps are these).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The time `micros` microseconds after the epoch.
    pub const fn from_micros(micros: u64) -> Timestamp {
        Timestamp(micros)
    }

    /// Microseconds since the epoch.
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// The wall clock now.
    pub fn now() -> Timestamp {
        Timestamp(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_micros() as u64)
                .unwrap_or(0),
        )
    }

    /// Reads a time in every form any interface prints one: Unix seconds, optionally
    /// fractional and exact to the microsecond (`1635724800`, `1635724800.25`, as the shell
    /// and JSON output print commit times); a whole number of microseconds
    /// (`1635724800250000`, as gRPC, GraphQL's `commitTs` and the WebSocket monitor's
    /// `commit_ts` give them: a whole number above [`MAX_SECONDS`] is microseconds); or
    /// ISO-8601 (`2021-11-01`, `2021-11-01T00:00:00Z`, `2021-11-01 00:00:00.5+01:00`, and
    /// `2021-11-01 00:00:00.250000 UTC` as the shell prints it). Times before 1970 are refused.
    pub fn parse(text: &str) -> Result<Timestamp> {
        let trimmed = text.trim();
        let trimmed = trimmed
            .strip_suffix("UTC")
            .map(str::trim_end)
            .unwrap_or(trimmed);
        if !trimmed.is_empty()
            && trimmed.bytes().all(|b| b.is_ascii_digit())
            && let Ok(n) = trimmed.parse::<i64>()
        {
            return Timestamp::from_number(n);
        }
        let micros = parse_timestamp(trimmed)
            .or_else(|| seconds_to_micros(trimmed))
            .ok_or_else(|| invalid(text))?;
        Timestamp::from_signed_micros(micros)
    }

    /// A whole number as a time: Unix seconds up to [`MAX_SECONDS`], microseconds above.
    pub fn from_number(n: i64) -> Result<Timestamp> {
        if n > MAX_SECONDS {
            Timestamp::from_signed_micros(n)
        } else {
            Timestamp::from_seconds(n)
        }
    }

    /// A signed microsecond count (a SQL `TIMESTAMP` value): refused before 1970.
    pub fn from_signed_micros(micros: i64) -> Result<Timestamp> {
        u64::try_from(micros)
            .map(Timestamp)
            .map_err(|_| invalid("before 1970"))
    }

    /// Whole Unix seconds.
    pub fn from_seconds(seconds: i64) -> Result<Timestamp> {
        seconds
            .checked_mul(1_000_000)
            .ok_or_else(|| invalid(&seconds.to_string()))
            .and_then(Timestamp::from_signed_micros)
    }

    /// Fractional Unix seconds, rounded to the microsecond.
    pub fn from_seconds_f64(seconds: f64) -> Result<Timestamp> {
        let micros = (seconds * 1e6).round();
        if !micros.is_finite() || micros >= 9.2e18 {
            return Err(invalid(&seconds.to_string()));
        }
        Timestamp::from_signed_micros(micros as i64)
    }

    /// Unix seconds with six decimals (`1635724800.250000`): exact, and what
    /// `AS OF TIMESTAMP` reads back to the same microsecond.
    pub fn seconds(self) -> String {
        format!("{}.{:06}", self.0 / 1_000_000, self.0 % 1_000_000)
    }

    /// `YYYY-MM-DD HH:MM:SS[.ffffff]` in UTC (also what `Display` writes).
    pub fn iso(self) -> String {
        format_timestamp_micros(self.0.min(i64::MAX as u64) as i64)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.iso())
    }
}

impl FromStr for Timestamp {
    type Err = Error;

    fn from_str(s: &str) -> Result<Timestamp> {
        Timestamp::parse(s)
    }
}

fn invalid(what: &str) -> Error {
    Error::InvalidInput(format!(
        "invalid timestamp {what}: use Unix seconds (optionally fractional), microseconds (as commit timestamps are given) or an ISO-8601 string"
    ))
}

/// `"1635724800.25"` → 1_635_724_800_250_000, exactly (no float rounding); digits past the
/// sixth decimal are cut.
fn seconds_to_micros(text: &str) -> Option<i64> {
    let (neg, t) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    if whole.is_empty() && frac.is_empty() {
        return None;
    }
    if !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let w: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut f: i64 = 0;
    for (i, b) in frac.bytes().enumerate() {
        if i < 6 {
            f = f * 10 + i64::from(b - b'0');
        }
    }
    for _ in frac.len()..6 {
        f *= 10;
    }
    let v = w.checked_mul(1_000_000)?.checked_add(f)?;
    Some(if neg { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_forms_users_write() {
        let t = |s: &str| Timestamp::parse(s).map(Timestamp::as_micros);
        assert_eq!(t("1635724800").unwrap(), 1_635_724_800_000_000);
        assert_eq!(t(" 1635724800.25 ").unwrap(), 1_635_724_800_250_000);
        assert_eq!(t("1635724800.1234567").unwrap(), 1_635_724_800_123_456);
        assert_eq!(t("2021-11-01").unwrap(), 1_635_724_800_000_000);
        assert_eq!(t("2021-11-01T00:00:00Z").unwrap(), 1_635_724_800_000_000);
        assert_eq!(
            t("2021-11-01 01:00:00+01:00").unwrap(),
            1_635_724_800_000_000
        );
        // Microseconds, as gRPC, GraphQL and the WebSocket monitor print commit times, and
        // the shell's "… UTC".
        assert_eq!(t("1635724800250000").unwrap(), 1_635_724_800_250_000);
        assert_eq!(
            t("2021-11-01 00:00:00.25 UTC").unwrap(),
            1_635_724_800_250_000
        );
        assert_eq!(t("253402300799").unwrap(), 253_402_300_799_000_000);
        assert_eq!(t("253402300800").unwrap(), 253_402_300_800);
        for bad in [
            "",
            ".",
            "yesterday",
            "-5",
            "1969-12-31",
            "1e9",
            "99999999999999999999",
        ] {
            assert!(t(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Timestamp::from_micros(1_635_724_800_250_000).iso(),
            "2021-11-01 00:00:00.250000"
        );
        assert_eq!(
            Timestamp::from_seconds(-1).unwrap_err().kind(),
            crate::ErrorKind::InvalidInput
        );
    }

    proptest! {
        #[test]
        fn what_it_writes_it_reads_back(micros in 0u64..253_402_300_799_999_999) {
            let t = Timestamp::from_micros(micros);
            prop_assert_eq!(Timestamp::parse(&t.seconds()).unwrap(), t);
            prop_assert_eq!(Timestamp::parse(&t.iso()).unwrap(), t);
            prop_assert_eq!(Timestamp::parse(&format!("{} UTC", t.iso())).unwrap(), t);
            if micros > MAX_SECONDS as u64 {
                prop_assert_eq!(Timestamp::parse(&micros.to_string()).unwrap(), t);
            }
        }

        #[test]
        fn any_text_is_a_time_or_an_error(text in "\\PC{0,40}") {
            let _ = Timestamp::parse(&text);
        }
    }
}
