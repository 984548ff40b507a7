//! The `format`s a chart's schema asserts, checked as Helm's validator checks them on draft-07
//! schemas (RFC 3339 dates and times). Formats Helm does not know (`int32`, `int64`, `byte`)
//! are annotations; formats Helm asserts and this module does not implement are listed in
//! [`ASSERTED_ELSEWHERE`], and a schema using one is refused rather than checked less.

/// Formats Helm's validator asserts that this module does not implement.
pub const ASSERTED_ELSEWHERE: &[&str] = &[
    "duration",
    "email",
    "hostname",
    "idn-email",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "iri",
    "iri-reference",
    "json-pointer",
    "period",
    "regex",
    "relative-json-pointer",
    "semver",
    "uri",
    "uri-reference",
    "uri-template",
    "uuid",
];

/// `Some(Ok)` when `text` has the format, `Some(Err(why))` when not, `None` when the format is
/// not checked here (an annotation).
pub fn check(format: &str, text: &str) -> Option<Result<(), &'static str>> {
    Some(match format {
        "date-time" => date_time(text),
        "date" => date(text),
        "time" => time(text),
        _ => return None,
    })
}

/// RFC 3339 `date-time`: `2024-02-29T23:59:60Z`, `2024-01-01t10:00:00.5+02:00`.
fn date_time(text: &str) -> Result<(), &'static str> {
    if text.len() < 20 {
        return Err("shorter than 20 characters (yyyy-mm-ddThh:mm:ssZ)");
    }
    let (Some(d), Some(sep), Some(t)) = (text.get(..10), text.get(10..11), text.get(11..)) else {
        return Err("not a date, `T` and a time");
    };
    if sep != "T" && sep != "t" {
        return Err("the 11th character must be `T`");
    }
    date(d)?;
    time(t)
}

/// RFC 3339 `full-date`: `yyyy-mm-dd`, a day that exists.
fn date(text: &str) -> Result<(), &'static str> {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return Err("not yyyy-mm-dd");
    }
    let (Some(year), Some(month), Some(day)) =
        (digits(&b[0..4]), digits(&b[5..7]), digits(&b[8..10]))
    else {
        return Err("not yyyy-mm-dd");
    };
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err("no such month"),
    };
    if day == 0 || day > days {
        return Err("no such day");
    }
    Ok(())
}

/// RFC 3339 `full-time`: `hh:mm:ss[.frac]` and `Z` or `±hh:mm`; a leap second only at 23:59
/// UTC.
fn time(text: &str) -> Result<(), &'static str> {
    let b = text.as_bytes();
    if b.len() < 9 || b[2] != b':' || b[5] != b':' {
        return Err("not hh:mm:ss");
    }
    let (Some(hour), Some(minute), Some(second)) =
        (digits(&b[0..2]), digits(&b[3..5]), digits(&b[6..8]))
    else {
        return Err("not hh:mm:ss");
    };
    let mut rest = &b[8..];
    if rest.first() == Some(&b'.') {
        let frac = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if frac == 0 {
            return Err("no digits after the decimal point");
        }
        rest = &rest[1 + frac..];
    }
    let (offset_hour, offset_minute, sign) = match rest {
        [b'Z' | b'z'] => (0, 0, 0),
        [s @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (Some(h), Some(m)) = (digits(&[*h1, *h2]), digits(&[*m1, *m2])) else {
                return Err("a time offset that is not ±hh:mm");
            };
            if h > 23 || m > 59 {
                return Err("a time offset out of range");
            }
            (h, m, if *s == b'+' { 1 } else { -1 })
        }
        _ => return Err("no time zone (Z or ±hh:mm)"),
    };
    if hour > 23 || minute > 59 || second > 60 {
        return Err("a time out of range");
    }
    if second == 60 {
        // The same instant in UTC must be 23:59:60.
        let local = i64::from(hour) * 60 + i64::from(minute);
        let utc = (local - sign * (i64::from(offset_hour) * 60 + i64::from(offset_minute)))
            .rem_euclid(24 * 60);
        if utc != 23 * 60 + 59 {
            return Err("a leap second that is not at 23:59 UTC");
        }
    }
    Ok(())
}

fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |n, c| {
        c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_3339_dates_and_times() {
        for ok in [
            "2024-02-29T23:59:59Z",
            "1999-12-31t23:59:60Z",
            "2024-01-01T10:00:00.125+02:00",
            "2024-01-02T01:29:60+01:30",
        ] {
            assert_eq!(check("date-time", ok), Some(Ok(())), "{ok}");
        }
        for bad in [
            "2023-02-29T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-01-01 00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T10:00:60Z",
            "2024-01-01T10:00:00",
            "2024-01-01T10:00:00.Z",
            "nope",
        ] {
            assert!(matches!(check("date-time", bad), Some(Err(_))), "{bad}");
        }
        assert_eq!(check("int32", "x"), None);
        assert!(ASSERTED_ELSEWHERE.contains(&"email"));
    }
}
