//! Kubernetes resource quantities (`500m`, `1`, `0.5`, `256Mi`, `1e9`, `1G`), exactly: integer arithmetic, no
//! floating point. The grammar is the API's (`k8s.io/apimachinery/pkg/api/resource`):
//!
//! ```text
//! quantity ::= [+-] number suffix
//! number   ::= digits | digits "." [digits] | "." digits
//! suffix   ::= "" | "n" | "u" | "m" | "k" | "M" | "G" | "T" | "P" | "E"      (decimal SI)
//!            | "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei"                      (binary SI)
//!            | ("e" | "E") [+-] digits                                     (decimal exponent)
//! ```

/// Why a quantity could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantityError(pub String);

impl std::fmt::Display for QuantityError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A non-negative quantity: `mantissa × 10^exp10 × 2^exp2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Quantity {
    mantissa: u128,
    exp10: i32,
    exp2: u32,
}

fn parse(text: &str) -> Result<Quantity, QuantityError> {
    let err = |why: &str| QuantityError(format!("{text:?} is not a quantity: {why}"));
    let unsigned = text.strip_prefix('+').unwrap_or(text);
    if unsigned.starts_with('-') {
        return Err(err("negative"));
    }
    let split = unsigned.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(unsigned.len());
    let (number, suffix) = unsigned.split_at(split);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
        return Err(err("expected a number"));
    }
    let digits = format!("{whole}{fraction}");
    let digits = digits.trim_start_matches('0');
    if digits.len() > 38 {
        return Err(err("too many digits"));
    }
    let mantissa = if digits.is_empty() { 0 } else { digits.parse::<u128>().map_err(|_| err("expected a number"))? };
    let mut exp10 = -(fraction.len() as i32);
    let mut exp2 = 0;
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
        _ => {
            let exponent = suffix.strip_prefix(['e', 'E']).ok_or_else(|| err("unknown suffix"))?;
            let digits = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 4 {
                return Err(err("bad exponent"));
            }
            exp10 += exponent.parse::<i32>().map_err(|_| err("bad exponent"))?;
        }
    }
    Ok(Quantity { mantissa, exp10, exp2 })
}

/// `ceil(text × 10^scale)`: with scale 3 the milli-value (`500m` → 500, `0.5` → 500, `1` → 1000), with scale 0
/// the value (`256Mi` → 268435456). Rounds up like the API's `ScaledValue`.
pub fn scaled(text: &str, scale: i32) -> Result<i64, QuantityError> {
    let q = parse(text)?;
    let overflow = || QuantityError(format!("{text:?} is too large"));
    if q.mantissa == 0 {
        return Ok(0);
    }
    let value = q.mantissa.checked_mul(1u128.checked_shl(q.exp2).ok_or_else(overflow)?).ok_or_else(overflow)?;
    let exp = q.exp10 + scale;
    let result = if exp >= 0 {
        10u128.checked_pow(exp as u32).and_then(|p| value.checked_mul(p)).ok_or_else(overflow)?
    } else {
        match 10u128.checked_pow(exp.unsigned_abs()) {
            Some(p) => value.div_ceil(p),
            // Smaller than one unit of the scale, but not zero.
            None => 1,
        }
    };
    i64::try_from(result).map_err(|_| overflow())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_as_millis() {
        for (text, millis) in [
            ("500m", 500),
            ("1", 1000),
            ("0.5", 500),
            (".25", 250),
            ("2.", 2000),
            ("+1.5", 1500),
            ("100m", 100),
            ("0.1", 100),
            ("1500000u", 1500),
            ("1e3", 1_000_000),
            ("1E-3", 1),
            ("0", 0),
            ("0.0001", 1),
            ("1n", 1),
            ("1k", 1_000_000),
        ] {
            assert_eq!(scaled(text, 3), Ok(millis), "{text}");
        }
    }

    #[test]
    fn memory_as_bytes() {
        for (text, bytes) in [
            ("256Mi", 268_435_456),
            ("1Gi", 1_073_741_824),
            ("1.5Gi", 1_610_612_736),
            ("0.5Ki", 512),
            ("1e9", 1_000_000_000),
            ("1G", 1_000_000_000),
            ("128974848", 128_974_848),
            ("129e6", 129_000_000),
            ("123Mi", 128_974_848),
            ("1Ei", 1 << 60),
            ("1500m", 2),
        ] {
            assert_eq!(scaled(text, 0), Ok(bytes), "{text}");
        }
    }

    #[test]
    fn malformed_or_unusable_quantities() {
        for text in ["", "m", "1.2.3", "1Q", "1e", "1e+", "-1", "1 Gi", "Gi", "1ee3", "1e99999", ".", "1KiB"] {
            assert!(scaled(text, 0).is_err(), "{text:?} should fail");
        }
        assert!(scaled("10E", 3).is_err(), "10 exa-cores in millis overflows i64");
        assert!(scaled("99999999999Ei", 0).is_err());
    }
}
