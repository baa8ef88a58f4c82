//! [`Timestamp`], the one time format on the wire: RFC 3339 UTC with milliseconds.

use std::{
    cell::Cell,
    time::{SystemTime, UNIX_EPOCH},
};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Serialize, Serializer};

/// An instant to the millisecond, written on the wire as RFC 3339 UTC with milliseconds
/// (`2026-11-25T01:40:00.123Z`), the only time format there is.
///
/// Kept as milliseconds since the Unix epoch: reading the clock is one `SystemTime` call,
/// and the text, which every message and echo carries, is made once per millisecond per
/// thread and then reused (see docs/benchmarks.md for what formatting per frame cost).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp {
    millis: i64,
}

impl Timestamp {
    pub fn now() -> Self {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Self::from_millis(since_epoch.as_millis() as i64)
    }

    pub fn from_millis(millis: i64) -> Self {
        Self { millis }
    }

    /// Milliseconds since the Unix epoch.
    pub fn millis(&self) -> i64 {
        self.millis
    }

    /// `YYYY-MM-DDTHH:MM:SS.mmmZ`, the same text as chrono's
    /// `to_rfc3339_opts(SecondsFormat::Millis, true)`, written digit by digit. `false`
    /// for years outside 0..=9999, which need another width.
    fn write_rfc3339(&self, out: &mut [u8; 24]) -> bool {
        use chrono::{Datelike, Timelike};
        let Some(at) = DateTime::<Utc>::from_timestamp_millis(self.millis) else {
            return false;
        };
        let (date, time) = (at.date_naive(), at.time());
        if !(0..=9999).contains(&date.year()) {
            return false;
        }
        let mut put = |at: usize, value: u32, digits: usize| {
            let mut value = value;
            for i in (at..at + digits).rev() {
                out[i] = b'0' + (value % 10) as u8;
                value /= 10;
            }
        };
        put(0, date.year() as u32, 4);
        put(5, date.month(), 2);
        put(8, date.day(), 2);
        put(11, time.hour(), 2);
        put(14, time.minute(), 2);
        put(17, time.second(), 2);
        put(20, time.nanosecond() / 1_000_000, 3);
        for (at, byte) in [
            (4, b'-'),
            (7, b'-'),
            (10, b'T'),
            (13, b':'),
            (16, b':'),
            (19, b'.'),
            (23, b'Z'),
        ] {
            out[at] = byte;
        }
        true
    }

    fn to_chrono_rfc3339(self) -> String {
        DateTime::<Utc>::from_timestamp_millis(self.millis)
            .map(|at| at.to_rfc3339_opts(SecondsFormat::Millis, true))
            .unwrap_or_else(|| format!("{}ms since the Unix epoch", self.millis))
    }
}

/// The wire's text, for log lines (not the hot path: it formats every time).
impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_chrono_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        thread_local! {
            /// The last timestamp this thread wrote, and its text.
            static LAST: Cell<(i64, [u8; 24])> = const { Cell::new((i64::MIN, [0; 24])) };
        }
        let (last, mut text) = LAST.get();
        if last != self.millis {
            if !self.write_rfc3339(&mut text) {
                return serializer.serialize_str(&self.to_chrono_rfc3339());
            }
            LAST.set((self.millis, text));
        }
        // Only ASCII digits and separators were written.
        serializer.serialize_str(std::str::from_utf8(&text).expect("ASCII"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_written_as_chrono_writes_them() {
        let day = 86_400_000;
        let mut cases: Vec<i64> = vec![
            0,
            -1,
            Timestamp::now().millis(),
            -62_167_219_200_000,     // 0000-01-01T00:00:00.000Z
            -62_167_219_200_000 - 1, // the year before: chrono's own text
            253_402_300_799_999,     // 9999-12-31T23:59:59.999Z
            253_402_300_799_999 + 1, // year 10000
            1_483_228_799_999,       // 2016-12-31T23:59:59.999Z
            951_782_400_000 - 1,     // 2000-02-28T23:59:59.999Z, then a leap day
            951_782_400_000 + day,
        ];
        // A pseudo-random walk over four centuries around now.
        let mut t: i64 = 1_000_000_007;
        for _ in 0..10_000 {
            t = t
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            cases.push((t >> 1).rem_euclid(400 * 365 * day) - 200 * 365 * day);
        }
        for millis in cases {
            // Twice: the second comes from this thread's cache.
            for _ in 0..2 {
                let at = Timestamp::from_millis(millis);
                let ours = serde_json::to_string(&at).unwrap();
                assert_eq!(ours, format!("\"{}\"", at.to_chrono_rfc3339()), "{millis}");
            }
        }
        assert_eq!(
            serde_json::to_string(&Timestamp::from_millis(1_483_228_799_999)).unwrap(),
            "\"2016-12-31T23:59:59.999Z\""
        );
    }
}
