//! Small helpers shared by protocol modules: dates, line ends and decimal numbers.

/// Civil date (year, month 1-12, day 1-31) of a day count since 1970-01-01
/// (proleptic Gregorian; Howard Hinnant's days-to-civil algorithm).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days.saturating_add(719_468);
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

/// Days since 1970-01-01 of a civil date (inverse of [`civil_from_days`]).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let (m, d) = (i64::from(month.clamp(1, 12)), i64::from(day.clamp(1, 31)));
    let y = if m <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Whether `year` is a leap year of the proleptic Gregorian calendar.
pub fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// Days in `month` (1-12) of `year`; 0 for a month out of range.
pub fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        1..=12 => 31,
        _ => 0,
    }
}

/// English weekday abbreviations, Sunday first.
const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/// The weekday abbreviation of a day count since 1970-01-01 (a Thursday).
pub fn weekday_name(days: i64) -> &'static str {
    WEEKDAYS
        .get(usize::try_from((days + 4).rem_euclid(7)).unwrap_or(0))
        .copied()
        .unwrap_or("Sun")
}

/// English month abbreviations (RFC 5322 §3.3, RFC 9051 `date-month`).
pub const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The abbreviation of `month` (1-12); `Jan` out of range.
pub fn month_name(month: u32) -> &'static str {
    MONTHS
        .get((month as usize).saturating_sub(1))
        .copied()
        .unwrap_or("Jan")
}

/// The month (1-12) a three-letter abbreviation names, case-insensitively.
pub fn month_from_name(name: &str) -> Option<u32> {
    let i = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(name))?;
    u32::try_from(i).ok().map(|i| i + 1)
}

/// A moment in UTC, split into the fields the date formats print (RFC 5322 dates, IMAP's
/// `date-time`, mbox From_ lines).
pub struct Utc {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: i64,
    pub minute: i64,
    pub second: i64,
    /// Days since 1970-01-01, for the weekday.
    days: i64,
}

impl Utc {
    pub fn from_unix(unix: i64) -> Utc {
        let days = unix.div_euclid(86_400);
        let secs = unix.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        Utc {
            year,
            month,
            day,
            hour: secs / 3600,
            minute: secs / 60 % 60,
            second: secs % 60,
            days,
        }
    }

    /// `Mon` ... `Sun`.
    pub fn weekday(&self) -> &'static str {
        weekday_name(self.days)
    }

    /// `Jan` ... `Dec`.
    pub fn month_name(&self) -> &'static str {
        month_name(self.month)
    }

    /// `hh:mm:ss`, as every one of those formats writes the time; written where it is
    /// formatted, with no string of its own (FETCH writes an INTERNALDATE per message).
    pub fn time(&self) -> impl std::fmt::Display {
        Clock(self.hour, self.minute, self.second)
    }
}

struct Clock(i64, i64, i64);

impl std::fmt::Display for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02}:{:02}:{:02}", self.0, self.1, self.2)
    }
}

/// An RFC 5322 §3.3 date in UTC: `Sat, 21 Nov 2026 23:36:22 +0000`.
pub fn rfc5322_date(unix: i64) -> String {
    let t = Utc::from_unix(unix);
    let (wd, d, mon, y, time) = (t.weekday(), t.day, t.month_name(), t.year, t.time());
    format!("{wd}, {d} {mon} {y} {time} +0000")
}

/// A decimal number of 1 to `max_digits` ASCII digits, as a `T`; `None` for anything
/// else, or for a value `T` cannot hold.
pub fn decimal<T: std::str::FromStr>(s: &[u8], max_digits: usize) -> Option<T> {
    if s.is_empty() || s.len() > max_digits || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// Normalises line ends to CRLF: a bare LF becomes CRLF (RFC 5322 §2.3), so that sizes
/// reported by IMAP and POP3 are the octets sent. A bare CR is kept as a data byte (as
/// Dovecot does), which keeps mbox and maildir round trips exact. Returns the input
/// unchanged (no copy) when it has no bare LF.
pub fn to_crlf(raw: Vec<u8>) -> Vec<u8> {
    let bare = |(i, b): (usize, &u8)| *b == b'\n' && (i == 0 || raw.get(i - 1) != Some(&b'\r'));
    let count = raw.iter().enumerate().filter(|x| bare(*x)).count();
    if count == 0 {
        return raw;
    }
    let mut out = Vec::with_capacity(raw.len() + count);
    for (i, b) in raw.iter().enumerate() {
        if bare((i, b)) {
            out.push(b'\r');
        }
        out.push(*b);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc5322_date(0), "Thu, 1 Jan 1970 00:00:00 +0000");
        assert_eq!(rfc5322_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
        assert_eq!(
            rfc5322_date(1_795_304_182),
            "Sat, 21 Nov 2026 23:36:22 +0000"
        );
    }

    #[test]
    fn crlf() {
        assert_eq!(to_crlf(b"a\nb\r\nc\rd".to_vec()), b"a\r\nb\r\nc\rd");
        assert_eq!(to_crlf(b"c\rd\ne\r".to_vec()), b"c\rd\r\ne\r");
        assert_eq!(to_crlf(b"a\r\n".to_vec()), b"a\r\n");
        assert_eq!(to_crlf(b"\n\n".to_vec()), b"\r\n\r\n");
        assert_eq!(to_crlf(b"\r".to_vec()), b"\r");
        assert_eq!(to_crlf(Vec::new()), b"");
    }
}
