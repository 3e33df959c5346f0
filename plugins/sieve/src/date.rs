//! The `date` and `currentdate` tests (RFC 5260): parsing RFC 5322 dates and extracting
//! the date parts of §4.

/// RFC 5260 §4.2 date parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatePart {
    Year,
    Month,
    Day,
    Date,
    Julian,
    Hour,
    Minute,
    Second,
    Time,
    Iso8601,
    Std11,
    Zone,
    Weekday,
}

impl DatePart {
    pub fn parse(s: &str) -> Option<DatePart> {
        Some(match s.to_ascii_lowercase().as_str() {
            "year" => DatePart::Year,
            "month" => DatePart::Month,
            "day" => DatePart::Day,
            "date" => DatePart::Date,
            "julian" => DatePart::Julian,
            "hour" => DatePart::Hour,
            "minute" => DatePart::Minute,
            "second" => DatePart::Second,
            "time" => DatePart::Time,
            "iso8601" => DatePart::Iso8601,
            "std11" => DatePart::Std11,
            "zone" => DatePart::Zone,
            "weekday" => DatePart::Weekday,
            _ => return None,
        })
    }
}

/// Which zone to express a date in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    /// The server's zone (UTC: the server runs without a local time zone).
    Local,
    /// `:zone "+hhmm"`, as minutes east of UTC.
    Fixed(i32),
    /// `:originalzone`: the zone written in the header (`currentdate`: UTC).
    Original,
}

/// `+hhmm` / `-hhmm` as minutes.
pub fn parse_offset(s: &str) -> Option<i32> {
    let (sign, digits) = match s.as_bytes().first()? {
        b'+' => (1, s.get(1..)?),
        b'-' => (-1, s.get(1..)?),
        _ => return None,
    };
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let h: i32 = digits.get(..2)?.parse().ok()?;
    let m: i32 = digits.get(2..)?.parse().ok()?;
    if h > 23 || m > 59 {
        return None;
    }
    Some(sign * (h * 60 + m))
}

/// Days since 1970-01-01 of a civil date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/// An RFC 5322 §3.3 date-time (obsolete zone names included): Unix seconds and the
/// written zone in minutes.
pub fn parse_rfc5322(s: &str) -> Option<(i64, i32)> {
    // Drop comments and the optional day name.
    let s = match s.find('(') {
        Some(i) => s.get(..i)?,
        None => s,
    };
    let s = match s.split_once(',') {
        Some((_, rest)) => rest,
        None => s,
    };
    let mut w = s.split_whitespace();
    let day: u32 = w.next()?.parse().ok()?;
    let mon = w.next()?.to_ascii_lowercase();
    let month = MONTHS.iter().position(|m| mon.starts_with(m))? as u32 + 1;
    let mut year: i64 = w.next()?.parse().ok()?;
    if year < 50 {
        year += 2000;
    } else if year < 1000 {
        year += 1900;
    }
    let time = w.next()?;
    let mut t = time.split(':');
    let hour: i64 = t.next()?.parse().ok()?;
    let minute: i64 = t.next()?.parse().ok()?;
    let second: i64 = t.next().map(|s| s.parse().ok()).unwrap_or(Some(0))?;
    let zone = match w.next() {
        None => 0,
        Some(z) => parse_offset(z).or_else(|| {
            Some(match z.to_ascii_uppercase().as_str() {
                "UT" | "GMT" | "Z" => 0,
                "EDT" => -4 * 60,
                "EST" | "CDT" => -5 * 60,
                "CST" | "MDT" => -6 * 60,
                "MST" | "PDT" => -7 * 60,
                "PST" => -8 * 60,
                _ => 0,
            })
        })?,
    };
    if day == 0 || day > 31 || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let local = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    Some((local - i64::from(zone) * 60, zone))
}

/// The `part` of `unix` seconds expressed in `zone` (minutes east of UTC).
pub fn part(unix: i64, zone: i32, part: DatePart) -> String {
    let local = unix + i64::from(zone) * 60;
    let days = local.div_euclid(86_400);
    let secs = local.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (secs / 3600, secs / 60 % 60, secs % 60);
    let z = format!(
        "{}{:02}{:02}",
        if zone < 0 { '-' } else { '+' },
        zone.abs() / 60,
        zone.abs() % 60
    );
    match part {
        DatePart::Year => format!("{y:04}"),
        DatePart::Month => format!("{m:02}"),
        DatePart::Day => format!("{d:02}"),
        DatePart::Date => format!("{y:04}-{m:02}-{d:02}"),
        // Modified Julian Day: days since 1858-11-17 (RFC 5260 §4.2).
        DatePart::Julian => (days + 40_587).to_string(),
        DatePart::Hour => format!("{hh:02}"),
        DatePart::Minute => format!("{mm:02}"),
        DatePart::Second => format!("{ss:02}"),
        DatePart::Time => format!("{hh:02}:{mm:02}:{ss:02}"),
        DatePart::Iso8601 => format!(
            "{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}{}:{}",
            z.get(..3).unwrap_or("+00"),
            z.get(3..).unwrap_or("00")
        ),
        DatePart::Std11 => {
            let wd = DAYS
                .get(days.rem_euclid(7).wrapping_add(4) as usize % 7)
                .unwrap_or(&"Sun");
            let mon = MONTHS.get(m as usize - 1).unwrap_or(&"jan");
            let mon = format!(
                "{}{}",
                mon.get(..1).unwrap_or("").to_ascii_uppercase(),
                mon.get(1..).unwrap_or("")
            );
            format!("{wd}, {d} {mon} {y:04} {hh:02}:{mm:02}:{ss:02} {z}")
        }
        DatePart::Zone => z,
        // 1970-01-01 was a Thursday (4); 0 is Sunday.
        DatePart::Weekday => ((days.rem_euclid(7) + 4) % 7).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_splits_dates() {
        let (t, z) = parse_rfc5322("Tue, 23 Jun 2009 10:12:34 +0200 (CEST)").unwrap();
        assert_eq!(z, 120);
        assert_eq!(part(t, z, DatePart::Date), "2009-06-23");
        assert_eq!(part(t, z, DatePart::Time), "10:12:34");
        assert_eq!(part(t, 0, DatePart::Hour), "08");
        assert_eq!(part(t, z, DatePart::Weekday), "2");
        assert_eq!(part(t, z, DatePart::Iso8601), "2009-06-23T10:12:34+02:00");
        assert_eq!(
            part(t, z, DatePart::Std11),
            "Tue, 23 Jun 2009 10:12:34 +0200"
        );
        assert_eq!(part(0, 0, DatePart::Julian), "40587");
        assert_eq!(parse_offset("-0730"), Some(-450));
        assert_eq!(parse_offset("0730"), None);
        assert!(parse_rfc5322("garbage").is_none());
    }
}
