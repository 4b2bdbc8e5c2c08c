//! Resource quantities (`resource.Quantity`) as numbers: "100m", "2", "1.5Gi", "1e3" in exact thousandths of
//! their unit, so quantities written differently ("1" and "1000m") compare equal.

/// A quantity in thousandths of its unit ("100m" → 100, "2" → 2000, "1Ki" → 1_024_000), rounded up;
/// `None` when it does not parse.
pub fn parse_milli(q: &str) -> Option<i128> {
    let q = q.trim();
    let split = q.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-')).unwrap_or(q.len());
    let (number, suffix) = q.split_at(split);
    let (negative, number) = match number.strip_prefix('-') {
        Some(n) => (true, n),
        None => (false, number.strip_prefix('+').unwrap_or(number)),
    };
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if (whole.is_empty() && frac.is_empty()) || !whole.chars().chain(frac.chars()).all(|c| c.is_ascii_digit()) {
        return None;
    }
    let digits: String = format!("{whole}{frac}");
    let mantissa: i128 = digits.parse().ok()?;
    // value = mantissa * 10^exp10 * 2^exp2
    let mut exp10: i32 = -i32::try_from(frac.len()).ok()?;
    let mut exp2: u32 = 0;
    match suffix {
        "" => {}
        "n" => exp10 -= 9,
        "u" => exp10 -= 6,
        "m" => exp10 -= 3,
        "k" => exp10 += 3,
        "M" => exp10 += 6,
        "G" => exp10 += 9,
        "T" => exp10 += 12,
        "P" => exp10 += 15,
        "E" => exp10 += 18,
        "Ki" => exp2 = 10,
        "Mi" => exp2 = 20,
        "Gi" => exp2 = 30,
        "Ti" => exp2 = 40,
        "Pi" => exp2 = 50,
        "Ei" => exp2 = 60,
        s if s.starts_with(['e', 'E']) => exp10 += s[1..].parse::<i32>().ok()?,
        _ => return None,
    }
    exp10 += 3; // thousandths
    let mut v = mantissa.checked_mul(1i128.checked_shl(exp2)?)?;
    if exp10 >= 0 {
        v = v.checked_mul(10i128.checked_pow(u32::try_from(exp10).ok()?)?)?;
    } else {
        let d = 10i128.checked_pow(u32::try_from(-exp10).ok()?).unwrap_or(i128::MAX);
        v = (v + d - 1) / d; // round up, as Kubernetes does
    }
    Some(if negative { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_suffix_exactly() {
        assert_eq!(parse_milli("100m"), Some(100));
        assert_eq!(parse_milli("1"), parse_milli("1000m"));
        assert_eq!(parse_milli("1Ki"), Some(1_024_000));
        assert_eq!(parse_milli("1.5G"), Some(1_500_000_000_000));
        assert_eq!(parse_milli("1e3"), Some(1_000_000));
        assert_eq!(parse_milli("1n"), Some(1));
        assert_eq!(parse_milli("-2"), Some(-2000));
        assert_eq!(parse_milli("abc"), None);
        assert_eq!(parse_milli("1Xi"), None);
    }
}
