//! Value parsers for flags: durations, viewports, tokens. Pure functions.

use std::time::Duration;

use sessbundle::state::Viewport;

/// A duration like `45s`, `30m`, `12h`, `7d`, `2w`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{s:?} has no unit: write e.g. 30m, 12h or 7d"))?;
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} does not start with a number: write e.g. 30m, 12h or 7d"))?;
    let secs_per = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {s:?}: use s, m, h, d or w (e.g. 30m, 12h, 7d)"
            ));
        }
    };
    if n == 0 {
        return Err(format!("{s:?} is zero: give a positive duration"));
    }
    n.checked_mul(secs_per)
        .filter(|&t| t <= 100 * 365 * 86_400)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{s:?} is too long (at most 100 years)"))
}

/// `WIDTHxHEIGHT`.
pub fn parse_viewport(s: &str) -> Result<Viewport, String> {
    let bad = || format!("{s:?} is not a viewport: write WIDTHxHEIGHT, e.g. 1280x720");
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    let width: u32 = w.parse().map_err(|_| bad())?;
    let height: u32 = h.parse().map_err(|_| bad())?;
    if width == 0 || height == 0 || width > 16_384 || height > 16_384 {
        return Err(format!("{s:?}: width and height must be 1-16384"));
    }
    Ok(Viewport {
        width,
        height,
        device_scale_factor: 1.0,
    })
}

pub fn parse_token(s: &str) -> Result<String, String> {
    if s.is_empty() || s.len() > 100 || !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "{s:?}: expected a value like en-GB or Europe/Paris"
        ));
    }
    Ok(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("12h"), Ok(Duration::from_secs(43_200)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
        assert_eq!(parse_duration("2w"), Ok(Duration::from_secs(1_209_600)));
        for bad in [
            "",
            "7",
            "d",
            "7x",
            "0d",
            "-1d",
            "1.5h",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert!(parse_duration("7").unwrap_err().contains("no unit"));
    }

    #[test]
    fn viewports() {
        let v = parse_viewport("1280x720").unwrap();
        assert_eq!((v.width, v.height), (1280, 720));
        for bad in ["1280", "x720", "0x1", "a x b", "1280x720x3"] {
            assert!(parse_viewport(bad).is_err(), "{bad}");
        }
    }
}
