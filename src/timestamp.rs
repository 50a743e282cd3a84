//! Points in time as image configs and GitLab write them: RFC 3339 (`2026-12-04T12:07:14Z`,
//! `2026-12-04T12:07:14.123456789Z` as buildah and BuildKit write `created`, `+00:00` offsets as
//! GitLab writes `CI_COMMIT_TIMESTAMP`), read into seconds since the Unix epoch and shown back in
//! UTC. A small parser of our own: humantime and httpdate read neither offsets nor this whole
//! grammar, and a date crate would be heavy for one comparison. Pure.
//! Spec: <https://www.rfc-editor.org/rfc/rfc3339#section-5.6>.

use std::fmt;

/// A point in time, to the nanosecond; ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Timestamp {
    /// Seconds since 1970-01-01T00:00:00Z (negative before).
    secs: i64,
    nanos: u32,
}

impl Timestamp {
    /// Reads an RFC 3339 date-time: `T`, `t` or a space between date and time, a fraction of any
    /// length (read to the nanosecond), then `Z` or an offset `±HH:MM` (`±HHMM` too). The error
    /// says what is wrong, without the value.
    pub(crate) fn parse(text: &str) -> Result<Timestamp, &'static str> {
        let b = text.trim().as_bytes();
        let num = |at: usize, len: usize| -> Result<i64, &'static str> {
            let digits = b.get(at..at + len).ok_or("it ends too early")?;
            if !digits.iter().all(u8::is_ascii_digit) {
                return Err("a digit is expected where it has another character");
            }
            Ok(digits.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
        };
        let sep = |at: usize, want: &[u8]| -> Result<(), &'static str> {
            match b.get(at) {
                Some(c) if want.contains(c) => Ok(()),
                _ => Err("it is not an RFC 3339 date-time (YYYY-MM-DDTHH:MM:SSZ)"),
            }
        };
        let year = num(0, 4)?;
        sep(4, b"-")?;
        let month = num(5, 2)?;
        sep(7, b"-")?;
        let day = num(8, 2)?;
        sep(10, b"Tt ")?;
        let hour = num(11, 2)?;
        sep(13, b":")?;
        let minute = num(14, 2)?;
        sep(16, b":")?;
        let second = num(17, 2)?;
        if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
            return Err("the date does not exist");
        }
        // 60: a leap second.
        if hour > 23 || minute > 59 || second > 60 {
            return Err("the time of day does not exist");
        }
        let mut at = 19;
        let mut nanos = 0u32;
        if b.get(at) == Some(&b'.') {
            at += 1;
            let start = at;
            while b.get(at).is_some_and(u8::is_ascii_digit) {
                if at - start < 9 {
                    nanos = nanos * 10 + u32::from(b[at] - b'0');
                }
                at += 1;
            }
            if at == start {
                return Err("a fraction of a second needs digits");
            }
            for _ in (at - start)..9 {
                nanos *= 10;
            }
        }
        let offset = match b.get(at) {
            Some(b'Z' | b'z') if at + 1 == b.len() => 0,
            Some(sign @ (b'+' | b'-')) => {
                let hours = num(at + 1, 2)?;
                let rest = &b[at + 3..];
                let minutes = match rest {
                    [b':', _, _] => num(at + 4, 2)?,
                    [_, _] => num(at + 3, 2)?,
                    _ => return Err("the offset is not ±HH:MM"),
                };
                if hours > 23 || minutes > 59 {
                    return Err("the offset does not exist");
                }
                let offset = hours * 3600 + minutes * 60;
                if *sign == b'-' {
                    -offset
                } else {
                    offset
                }
            }
            _ => return Err("it does not end in Z or an offset (±HH:MM)"),
        };
        let days = days_from_civil(year, month, day);
        Ok(Timestamp {
            secs: days * 86_400 + hour * 3600 + minute * 60 + second - offset,
            nanos,
        })
    }

    /// The whole second `secs` after the epoch.
    pub(crate) const fn from_unix(secs: i64) -> Timestamp {
        Timestamp { secs, nanos: 0 }
    }

    /// Seconds since the epoch, the fraction dropped.
    #[cfg(test)]
    pub(crate) fn unix(self) -> i64 {
        self.secs
    }
}

/// UTC, to the second, with the fraction when there is one: `2026-12-04T12:07:14Z`,
/// `2026-12-04T12:07:14.5Z`.
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (days, rem) = (self.secs.div_euclid(86_400), self.secs.rem_euclid(86_400));
        let (year, month, day) = civil_from_days(days);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        )?;
        if self.nanos > 0 {
            let fraction = format!("{:09}", self.nanos);
            write!(f, ".{}", fraction.trim_end_matches('0'))?;
        }
        f.write_str("Z")
    }
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day since 1970-01-01 (the inverse of `days_from_civil`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_builders_and_gitlab_write() {
        for (text, unix, shown) in [
            ("1970-01-01T00:00:00Z", 0, "1970-01-01T00:00:00Z"),
            (
                "2026-12-04T12:07:14Z",
                1_796_386_034,
                "2026-12-04T12:07:14Z",
            ),
            (
                "2026-12-04T12:07:14.123456789Z",
                1_796_386_034,
                "2026-12-04T12:07:14.123456789Z",
            ),
            (
                "2026-12-04T12:07:14.5z",
                1_796_386_034,
                "2026-12-04T12:07:14.5Z",
            ),
            // More digits than nanoseconds: read to the nanosecond.
            (
                "2026-12-04T12:07:14.1234567891234Z",
                1_796_386_034,
                "2026-12-04T12:07:14.123456789Z",
            ),
            (
                "2026-11-27T03:38:34+00:00",
                1_795_750_714,
                "2026-11-27T03:38:34Z",
            ),
            (
                "2026-11-27T05:38:34+02:00",
                1_795_750_714,
                "2026-11-27T03:38:34Z",
            ),
            (
                "2026-11-26T22:08:34-0530",
                1_795_750_714,
                "2026-11-27T03:38:34Z",
            ),
            (
                "2026-11-27 03:38:34Z",
                1_795_750_714,
                "2026-11-27T03:38:34Z",
            ),
            (
                "2024-02-29T00:00:00Z",
                1_709_164_800,
                "2024-02-29T00:00:00Z",
            ),
            (
                "0001-01-01T00:00:00Z",
                -62_135_596_800,
                "0001-01-01T00:00:00Z",
            ),
            ("1969-12-31T23:59:59Z", -1, "1969-12-31T23:59:59Z"),
        ] {
            let t = Timestamp::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(t.unix(), unix, "{text}");
            assert_eq!(t.to_string(), shown, "{text}");
        }
    }

    #[test]
    fn orders_by_the_instant_not_the_text() {
        let a = Timestamp::parse("2026-12-04T12:07:14.000000001Z").unwrap();
        let b = Timestamp::parse("2026-12-04T12:07:14Z").unwrap();
        let c = Timestamp::parse("2026-12-04T13:07:13+01:00").unwrap();
        assert!(a > b);
        assert!(c < b);
        assert_eq!(Timestamp::from_unix(b.unix()), b);
    }

    #[test]
    fn refuses_what_is_not_a_date_time() {
        for bad in [
            "",
            "2026-12-04",
            "2026-12-04T12:07:14",
            "2026-12-04T12:07Z",
            "2026-13-04T12:07:14Z",
            "2026-02-29T12:07:14Z",
            "2026-12-04T24:00:00Z",
            "2026-12-04T12:07:14.Z",
            "2026-12-04T12:07:14+25:00",
            "2026-12-04T12:07:14Zjunk",
            "2026-12-04T12:07:14+01:00:00",
            "26-12-04T12:07:14Z",
            "Fri, 04 Dec 2026 12:07:14 GMT",
            "１９７０-01-01T00:00:00Z",
        ] {
            assert!(Timestamp::parse(bad).is_err(), "{bad:?}");
        }
    }
}
