//! Sizes and durations as they are written in `wharf.toml`.
//!
//! In: strings such as `"64KiB"`, `"10MB"`, `"512Mi"`, `"30s"`, `"100ms"`.
//! Out: a byte count (`u64`) or a `Duration`, or a short reason why the
//! text is not one (the caller adds the position and the fix).
//! Binary suffixes (`K`, `Ki`, `KiB`) are powers of 1024; decimal ones
//! (`KB`, `MB`) are powers of 1000, as disk and network vendors use them.

use std::time::Duration;

/// Parses a size: a whole number, optionally followed by a unit.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(digits_end);
    if digits.is_empty() {
        return Err("a size starts with a whole number".to_string());
    }
    let number: u64 = digits
        .parse()
        .map_err(|_| "the number is too large".to_string())?;
    let multiplier =
        unit_multiplier(unit.trim()).ok_or_else(|| format!("unknown unit `{}`", unit.trim()))?;
    number
        .checked_mul(multiplier)
        .ok_or_else(|| "the size is too large".to_string())
}

fn unit_multiplier(unit: &str) -> Option<u64> {
    if unit.is_empty() || unit.eq_ignore_ascii_case("b") {
        return Some(1);
    }
    let mut chars = unit.chars();
    let prefix = chars.next()?.to_ascii_uppercase();
    let power = match prefix {
        'K' => 1,
        'M' => 2,
        'G' => 3,
        'T' => 4,
        _ => return None,
    };
    let rest = chars.as_str();
    let base: u64 = match rest {
        "" | "i" | "iB" | "ib" => 1024,
        "B" | "b" => 1000,
        _ => return None,
    };
    Some(base.pow(power))
}

/// Parses a duration such as `"30s"`, `"100ms"`, `"1h"`, `"30d"` or `"1m 30s"`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text.trim()).map_err(|e| e.to_string())?;
    if duration > MAX_DURATION {
        return Err("longer than any setting needs (at most 3650 days)".to_string());
    }
    Ok(duration)
}

/// The longest duration a config may give: ten years. Longer ones are
/// typing mistakes, and added to a clock they would overflow it (a
/// timeout of 500000000000000000s) or end up in headers as nonsense
/// (`Retry-After: 18446744073705944`).
pub const MAX_DURATION: Duration = Duration::from_secs(3650 * 86_400);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("64KiB"), Ok(64 * 1024));
        assert_eq!(parse_size("64K"), Ok(64 * 1024));
        assert_eq!(parse_size("64Ki"), Ok(64 * 1024));
        assert_eq!(parse_size("10MiB"), Ok(10 * 1024 * 1024));
        assert_eq!(parse_size("512Mi"), Ok(512 * 1024 * 1024));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("10MB"), Ok(10_000_000));
        assert_eq!(parse_size("2 KB"), Ok(2000));
        assert_eq!(parse_size("7B"), Ok(7));
        assert_eq!(parse_size("1TiB"), Ok(1 << 40));
    }

    #[test]
    fn bad_sizes_say_why() {
        assert!(parse_size("").is_err());
        assert!(parse_size("MiB").is_err());
        assert_eq!(parse_size("10XB"), Err("unknown unit `XB`".to_string()));
        assert!(parse_size("1.5GiB").is_err());
        assert!(parse_size("99999999999999999999").is_err());
        assert!(parse_size("99999999999TiB").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86400)));
        assert!(parse_duration("30").is_err());
        assert!(parse_duration("soon").is_err());
        assert_eq!(parse_duration("3650d"), Ok(MAX_DURATION));
        assert!(parse_duration("3651d").is_err());
        assert!(parse_duration("500000000000000000s").is_err());
    }
}
