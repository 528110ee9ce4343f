//! Dates: the workspace's one date module. ISO 8601 as
//! `Date.prototype.toJSON` writes it, and proleptic Gregorian civil days.

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
pub(crate) fn parse_iso(s: &str) -> Option<f64> {
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
}
