//! Quota periods: calendar hours, days, weeks (from Monday) and months in UTC, or a fixed
//! duration since the epoch. Every gateway computes the same period from the clock alone.

use policy_common::duration;
use serde::{Deserialize, Deserializer, de};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Month,
    /// Fixed windows of this many ms, aligned to the epoch (`hour`, `day`, `6h`), shifted by
    /// `offset` ms (weeks start on Monday; the epoch was a Thursday).
    Fixed {
        len: u64,
        offset: u64,
    },
}

const DAY: u64 = 86_400_000;

impl Period {
    pub fn parse(text: &str) -> Result<Period, String> {
        Ok(match text {
            "hour" => Period::Fixed { len: 3_600_000, offset: 0 },
            "day" => Period::Fixed { len: DAY, offset: 0 },
            "week" => Period::Fixed { len: 7 * DAY, offset: 3 * DAY },
            "month" => Period::Month,
            other => Period::Fixed { len: duration::parse(other).map_err(|e| format!("period: {e}, or hour, day, week, month"))?.ms(), offset: 0 },
        })
    }

    /// The current period's label (part of the counter key) and when it ends.
    pub fn at(self, now: u64) -> (String, u64) {
        match self {
            Period::Fixed { len, offset } => {
                let shifted = now + offset;
                let index = shifted / len;
                (index.to_string(), (index + 1) * len - offset)
            }
            Period::Month => {
                let (y, m, _) = civil(now / DAY);
                let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                (format!("{y:04}-{m:02}"), days_from_civil(ny, nm, 1) * DAY)
            }
        }
    }
}

impl<'de> Deserialize<'de> for Period {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Period::parse(&String::deserialize(d)?).map_err(de::Error::custom)
    }
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (Howard Hinnant's algorithm).
fn civil(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

fn days_from_civil(y: u64, m: u64, d: u64) -> u64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2024-02-29T12:00:00Z, a leap day.
    const LEAP_NOON: u64 = 1_709_208_000_000;

    #[test]
    fn months_follow_the_calendar() {
        assert_eq!(Period::Month.at(LEAP_NOON), ("2024-02".into(), 1_709_251_200_000), "ends at 2024-03-01T00:00Z");
        assert_eq!(Period::Month.at(0), ("1970-01".into(), 31 * DAY));
        // 2023-12-31T23:59:59Z rolls into the next year.
        assert_eq!(Period::Month.at(1_704_067_199_000), ("2023-12".into(), 1_704_067_200_000));
        assert_eq!(civil(days_from_civil(2100, 3, 1)), (2100, 3, 1));
    }

    #[test]
    fn fixed_periods_and_weeks_from_monday() {
        let day = Period::parse("day").unwrap();
        assert_eq!(day.at(LEAP_NOON).1, LEAP_NOON + 12 * 3_600_000);
        // 2024-02-29 is a Thursday: the week ends on Monday 2024-03-04T00:00Z.
        assert_eq!(Period::parse("week").unwrap().at(LEAP_NOON).1, 1_709_510_400_000);
        assert_eq!(Period::parse("6h").unwrap().at(LEAP_NOON).1, LEAP_NOON + 6 * 3_600_000);
        assert!(Period::parse("fortnight").unwrap_err().contains("month"));
    }
}
