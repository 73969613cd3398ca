//! Durations in config as people write them: `500ms`, `30s`, `5m`, `1h`, `1d`.

use serde::{Deserialize, Deserializer, de};

/// A positive duration, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Duration(pub u64);

impl Duration {
    pub fn ms(self) -> u64 {
        self.0
    }
    /// Whole seconds, rounded up, as `Retry-After` wants them.
    pub fn secs_ceil(ms: u64) -> u64 {
        ms.div_ceil(1000)
    }
}

/// Parses `<number><unit>` with unit `ms`, `s`, `m`, `h` or `d`.
pub fn parse(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("'{text}' is not a duration (write 500ms, 30s, 5m, 1h or 1d)"))?;
    let scale = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("'{text}' has no known unit (use ms, s, m, h or d)")),
    };
    match n.checked_mul(scale) {
        Some(0) => Err(format!("'{text}' must be longer than zero")),
        Some(ms) => Ok(Duration(ms)),
        None => Err(format!("'{text}' is too long")),
    }
}

/// Shows a duration the way config writes it, for messages: `90s`, `1m`, `2h`.
pub fn show(ms: u64) -> String {
    for (unit, scale) in [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000)] {
        if ms >= scale && ms.is_multiple_of(scale) {
            return format!("{}{unit}", ms / scale);
        }
    }
    format!("{ms}ms")
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_scale_and_nonsense_is_refused() {
        assert_eq!(parse("500ms"), Ok(Duration(500)));
        assert_eq!(parse("30s"), Ok(Duration(30_000)));
        assert_eq!(parse("5m"), Ok(Duration(300_000)));
        assert_eq!(parse("1h"), Ok(Duration(3_600_000)));
        assert_eq!(parse("1d"), Ok(Duration(86_400_000)));
        for bad in ["", "5", "m", "0s", "5 parsecs", "-1s", "99999999999999999999d"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(show(90_000), "90s");
        assert_eq!(show(3_600_000), "1h");
        assert_eq!(Duration::secs_ceil(1), 1);
        assert_eq!(Duration::secs_ceil(2000), 2);
    }
}
