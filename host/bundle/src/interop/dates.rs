//! Dates: the workspace's one date module (no time crate). Proleptic
//! Gregorian civil days, ISO 8601 as `Date.prototype.toJSON` writes it
//! (ms, years ±275760), RFC 3339 and HTTP (IMF-fixdate) dates as unix
//! seconds. Parsers take untrusted text: they refuse non-ASCII before any
//! byte-index slice, and return `None`, never panic.

pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month, day) of a day count since 1970-01-01 (H. Hinnant's
/// civil-from-days), for printing dates without a time crate.
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `Date.prototype.toJSON` of a time value; `None` for an invalid Date.
pub(crate) fn format_iso(ms: f64) -> Option<String> {
    if !ms.is_finite() || ms.abs() > 8.64e15 {
        return None;
    }
    let t = ms as i64;
    let (days, rem) = (t.div_euclid(86_400_000), t.rem_euclid(86_400_000));
    let (y, m, d) = civil_from_days(days);
    let year = if (0..=9999).contains(&y) {
        format!("{y:04}")
    } else if y < 0 {
        format!("-{:06}", -y)
    } else {
        format!("+{y:06}")
    };
    Some(format!(
        "{year}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    ))
}

/// Parses `[±YY]YYYY-MM-DDTHH:MM:SS[.sss]Z`.
///
/// Untrusted text: every slice below is by byte index, so anything but
/// ASCII is refused first (a date has no other characters, and a multi-byte
/// character would put a slice inside it).
pub(crate) fn parse_iso(s: &str) -> Option<f64> {
    if !s.is_ascii() {
        return None;
    }
    let (sign, rest, ylen) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..], 6),
        b'-' => (-1, &s[1..], 6),
        _ => (1, s, 4),
    };
    let num = |t: &str| -> Option<i64> {
        if t.bytes().all(|b| b.is_ascii_digit()) && !t.is_empty() {
            t.parse().ok()
        } else {
            None
        }
    };
    let y = sign * num(rest.get(..ylen)?)?;
    let r = rest.get(ylen..)?;
    let r = r.strip_suffix('Z')?;
    let b = r.as_bytes();
    if b.len() < 15 || b[0] != b'-' || b[3] != b'-' || b[6] != b'T' || b[9] != b':' || b[12] != b':'
    {
        return None;
    }
    let (mo, d, h, mi, se) = (
        num(&r[1..3])?,
        num(&r[4..6])?,
        num(&r[7..9])?,
        num(&r[10..12])?,
        num(&r[13..15])?,
    );
    let frac = &r[15..];
    let msec = if frac.is_empty() {
        0
    } else {
        let f = frac.strip_prefix('.')?;
        let digits = num(f)?;
        match f.len() {
            1 => digits * 100,
            2 => digits * 10,
            3 => digits,
            _ => return None,
        }
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 24 || mi > 59 || se > 59 {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    Some((days * 86_400_000 + h * 3_600_000 + mi * 60_000 + se * 1000 + msec) as f64)
}
/// Unix seconds as RFC 3339 UTC, `YYYY-MM-DDTHH:MM:SSZ` (years 0..=9999;
/// `None` outside them).
pub fn format_rfc3339(secs: i64) -> Option<String> {
    let (y, m, d, h, mi, s) = civil_time(secs)?;
    Some(format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z"))
}

/// Parses RFC 3339 `YYYY-MM-DDTHH:MM:SS[.fff]Z` (`t`/`z`/space accepted,
/// offsets `±HH:MM` applied) into unix seconds (fraction dropped).
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if !s.is_ascii() || b.len() < 20 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    let sep = |i: usize, cs: &[u8]| b.get(i).is_some_and(|c| cs.contains(c));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let (y, mo, d, h, mi, se) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    let mut rest = s.get(19..)?;
    if let Some(f) = rest.strip_prefix('.') {
        let n = f.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        rest = f.get(n..)?;
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let ob = rest.as_bytes();
            if ob.len() != 6 || ob[3] != b':' {
                return None;
            }
            let sign = match ob[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let oh: i64 = rest.get(1..3)?.parse().ok()?;
            let om: i64 = rest.get(4..6)?.parse().ok()?;
            if oh > 23 || om > 59 {
                return None;
            }
            sign * (oh * 3600 + om * 60)
        }
    };
    if !valid(y, mo, d, h, mi, se) {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se - offset)
}

const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Unix seconds as an HTTP date (RFC 9110 IMF-fixdate),
/// `Sun, 06 Nov 1994 08:49:37 GMT`; `None` outside years 0..=9999.
pub fn format_http_date(secs: i64) -> Option<String> {
    let (y, m, d, h, mi, s) = civil_time(secs)?;
    let wd = WEEKDAYS[secs.div_euclid(86_400).rem_euclid(7) as usize];
    let mon = MONTHS[(m - 1) as usize];
    Some(format!(
        "{wd}, {d:02} {mon} {y:04} {h:02}:{mi:02}:{s:02} GMT"
    ))
}

/// Parses an IMF-fixdate HTTP date into unix seconds (the weekday is not
/// checked, as RFC 9110 allows).
pub fn parse_http_date(s: &str) -> Option<i64> {
    let mut it = s.split(' ');
    let (_wd, d, mon, y, t, gmt) = (
        it.next()?,
        it.next()?,
        it.next()?,
        it.next()?,
        it.next()?,
        it.next()?,
    );
    if it.next().is_some() || gmt != "GMT" || d.len() != 2 || y.len() != 4 || t.len() != 8 {
        return None;
    }
    let m = MONTHS.iter().position(|x| *x == mon)? as i64 + 1;
    let digits = |x: &str| {
        x.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| x.parse::<i64>().ok())?
    };
    let tb = t.as_bytes();
    if tb[2] != b':' || tb[5] != b':' || !t.is_ascii() {
        return None;
    }
    let (d, y) = (digits(d)?, digits(y)?);
    let (h, mi, se) = (
        digits(t.get(0..2)?)?,
        digits(t.get(3..5)?)?,
        digits(t.get(6..8)?)?,
    );
    if !valid(y, m, d, h, mi, se) {
        return None;
    }
    Some(days_from_civil(y, m, d) * 86_400 + h * 3600 + mi * 60 + se)
}

/// Milliseconds since the Unix epoch, now (0 if the clock is before 1970):
/// the workspace's one clock reading for timestamps.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Unix seconds now (0 if the clock is before 1970).
pub fn now_unix_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// (y, m, d, h, min, s) of unix seconds, years 0..=9999 only.
fn civil_time(secs: i64) -> Option<(i64, i64, i64, i64, i64, i64)> {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    (0..=9999)
        .contains(&y)
        .then_some((y, m, d, rem / 3600, rem / 60 % 60, rem % 60))
}

fn valid(y: i64, mo: i64, d: i64, h: i64, mi: i64, se: i64) -> bool {
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let mdays = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    (1..=12).contains(&mo)
        && d >= 1
        && d <= mdays[(mo - 1) as usize]
        && h <= 23
        && mi <= 59
        && se <= 60
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_dates() {
        for ms in [
            0.0,
            1_700_000_000_123.0,
            -1.0,
            -62_198_755_200_000.0,
            8.64e15,
            951_782_400_000.0,
        ] {
            let s = format_iso(ms).unwrap();
            assert_eq!(parse_iso(&s), Some(ms), "{s}");
        }
        assert_eq!(format_iso(-1.0).unwrap(), "1969-12-31T23:59:59.999Z");
        assert_eq!(format_iso(8.64e15).unwrap(), "+275760-09-13T00:00:00.000Z");
        assert_eq!(format_iso(f64::NAN), None);
        assert_eq!(parse_iso("2020-01-01T00:00:00Z"), Some(1_577_836_800_000.0));
        assert_eq!(parse_iso("2020-13-01T00:00:00Z"), None);
        assert_eq!(parse_iso("garbage"), None);
    }

    #[test]
    fn non_ascii_dates_are_refused_not_sliced() {
        // Each puts a multi-byte character across one of the byte offsets
        // the parser slices at (it panicked before the ASCII check).
        for s in [
            "2024-02-29T12:00:5\u{e9}Z",
            "2024-02-29T12:00:00\u{e9}Z",
            "2024-\u{e9}-29T12:00:00Z",
            "+0\u{20ac}2024-02-29T12:00:00Z",
            "2024-02-29T12:0\u{1f600}:00.000Z",
        ] {
            assert_eq!(parse_iso(s), None, "{s}");
        }
    }

    #[test]
    fn rfc3339_and_http_dates() {
        let t = 784_111_777; // Sun, 06 Nov 1994 08:49:37 GMT (RFC 9110's example)
        assert_eq!(
            format_http_date(t).unwrap(),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(t));
        assert_eq!(format_rfc3339(t).unwrap(), "1994-11-06T08:49:37Z");
        assert_eq!(parse_rfc3339("1994-11-06T08:49:37Z"), Some(t));
        assert_eq!(parse_rfc3339("1994-11-06t08:49:37.123456z"), Some(t));
        assert_eq!(parse_rfc3339("1994-11-06T10:49:37+02:00"), Some(t));
        assert_eq!(parse_rfc3339("1994-11-06T03:49:37-05:00"), Some(t));
        assert_eq!(format_rfc3339(0).unwrap(), "1970-01-01T00:00:00Z");
        assert_eq!(
            format_http_date(-1).unwrap(),
            "Wed, 31 Dec 1969 23:59:59 GMT"
        );
        assert_eq!(format_rfc3339(i64::MAX / 2), None);
        for bad in [
            "1994-02-30T00:00:00Z",
            "1994-11-06T24:00:00Z",
            "1994-11-06T08:49:37",
            "1994-11-06T08:49:3\u{e9}Z",
            "\u{e9}994-11-06T08:49:37Z",
            "1994-11-06T08:49:37.Z",
            "1994-11-06T08:49:37+2:00",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
        for bad in [
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:3\u{e9} GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad}");
        }
        assert!(now_unix_secs() > 1_700_000_000);
    }
}
