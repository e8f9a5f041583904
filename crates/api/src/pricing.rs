//! The price list usage is priced by: a price per vCPU-second and per GiB-second of requested resources. Prices
//! are exact decimals (at most 12 decimal places); a cost is computed exactly and rounded once, half up, to
//! 6 decimal places of the currency.

use std::path::Path;

use maxcloud_api_model as m;
use maxcloud_store::{ServiceUsage, GIB};
use serde::Deserialize;

/// Decimal places of a price.
const PRICE_DECIMALS: u32 = 12;
/// Decimal places of a cost.
const COST_DECIMALS: u32 = 6;

/// A non-negative decimal with at most 12 decimal places, held in 10^-12 units of the currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Price(u64);

impl Price {
    /// `0.000024`, `1`, `.5`; no sign, no exponent.
    pub fn parse(text: &str) -> Result<Price, String> {
        let bad =
            || format!("{text:?} is not a price: expected a decimal such as 0.000024 (at most 12 decimal places)");
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() && fraction.is_empty()
            || !digits(whole)
            || !digits(fraction)
            || fraction.len() > PRICE_DECIMALS as usize
        {
            return Err(bad());
        }
        let fraction = format!("{fraction:0<width$}", width = PRICE_DECIMALS as usize);
        let whole: u64 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| bad())? };
        let fraction: u64 = fraction.parse().map_err(|_| bad())?;
        whole.checked_mul(10u64.pow(PRICE_DECIMALS)).and_then(|w| w.checked_add(fraction)).map(Price).ok_or_else(bad)
    }
}

impl std::fmt::Display for Price {
    /// The shortest exact decimal: `0.000024`, `1`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scale = 10u64.pow(PRICE_DECIMALS);
        let (whole, fraction) = (self.0 / scale, self.0 % scale);
        if fraction == 0 {
            return write!(f, "{whole}");
        }
        let fraction = format!("{fraction:0>width$}", width = PRICE_DECIMALS as usize);
        write!(f, "{whole}.{}", fraction.trim_end_matches('0'))
    }
}

/// Prices per second of requested resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceList {
    /// ISO 4217 code.
    pub currency: String,
    pub vcpu_second: Price,
    pub gib_second: Price,
    /// VAT added on invoices, in hundredths of a percent (1900 = 19 %, the German standard rate).
    pub vat_basis_points: u32,
}

impl Default for PriceList {
    /// Cloud-Run-like list prices: EUR 0.000024 per vCPU-second, EUR 0.0000025 per GiB-second; 19 % VAT.
    fn default() -> Self {
        PriceList {
            currency: "EUR".into(),
            vcpu_second: Price(24_000_000),
            gib_second: Price(2_500_000),
            vat_basis_points: 1900,
        }
    }
}

/// The price list file (YAML or JSON), before validation.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceListFile {
    currency: String,
    vcpu_second: String,
    gib_second: String,
    /// Percent, up to two decimals (`19`, `7.7`, `0`); default 19.
    #[serde(default)]
    vat_percent: Option<String>,
}

/// A price list file that cannot be used; the message names the field.
#[derive(Debug, thiserror::Error)]
#[error("price list {path}: {message}")]
pub struct PriceListError {
    pub path: String,
    pub message: String,
}

impl PriceList {
    /// Parses a price list (YAML or JSON): `currency`, `vcpu_second` and `gib_second`, all required.
    pub fn parse(text: &str) -> Result<PriceList, String> {
        let file: PriceListFile = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
        let currency = file.currency.trim();
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(format!("currency: {currency:?} is not an ISO 4217 code such as EUR"));
        }
        Ok(PriceList {
            currency: currency.to_string(),
            vcpu_second: Price::parse(file.vcpu_second.trim()).map_err(|e| format!("vcpu_second: {e}"))?,
            gib_second: Price::parse(file.gib_second.trim()).map_err(|e| format!("gib_second: {e}"))?,
            vat_basis_points: match file.vat_percent.as_deref().map(str::trim) {
                None => 1900,
                Some(text) => parse_percent(text).map_err(|e| format!("vat_percent: {e}"))?,
            },
        })
    }

    /// Reads and parses a price list file.
    pub fn load(path: &Path) -> Result<PriceList, PriceListError> {
        let error = |message: String| PriceListError { path: path.display().to_string(), message };
        let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
        PriceList::parse(&text).map_err(error)
    }

    pub fn to_wire(&self) -> m::PriceList {
        m::PriceList {
            currency: self.currency.clone(),
            vcpu_second: self.vcpu_second.to_string(),
            gib_second: self.gib_second.to_string(),
        }
    }

    /// What a service's usage costs, in 10^-6 units of the currency: exact, rounded half up once.
    pub fn cost_micros(&self, usage: &ServiceUsage) -> u128 {
        // cost = cpu_ms / 1000 × vcpu / 10^12 + byte_s / 2^30 × gib / 10^12, over one common denominator.
        let numerator =
            usage.cpu_milli_seconds.saturating_mul(u128::from(self.vcpu_second.0)).saturating_mul(GIB).saturating_add(
                usage.memory_byte_seconds.saturating_mul(u128::from(self.gib_second.0)).saturating_mul(1000),
            );
        let denominator = 1000 * GIB * 10u128.pow(PRICE_DECIMALS - COST_DECIMALS);
        numerator.saturating_add(denominator / 2) / denominator
    }

    /// What a resource with this footprint costs in a month of 730 hours, at its fewest and its most instances,
    /// in 10^-6 units of the currency.
    pub fn monthly_micros(&self, f: &maxcloud_catalog::Footprint) -> (u128, u128) {
        let at = |instances: i64| {
            let seconds = MONTH_SECONDS * instances.max(0) as u128;
            self.cost_micros(&ServiceUsage {
                kind: String::new(),
                name: String::new(),
                pods: 0,
                cpu_milli_seconds: (f.cpu_milli.max(0) as u128).saturating_mul(seconds),
                memory_byte_seconds: (f.memory_bytes.max(0) as u128).saturating_mul(seconds),
            })
        };
        (at(f.min_instances), at(f.max_instances))
    }

    /// The estimate for the API: amounts and the one-line summary.
    pub fn estimate(&self, f: &maxcloud_catalog::Footprint) -> m::PriceEstimate {
        let (low, high) = self.monthly_micros(f);
        m::PriceEstimate {
            currency: self.currency.clone(),
            monthly_min: money(low),
            monthly_max: money(high),
            summary: self.summary(f, low, high),
        }
    }

    /// The estimate as one line for a pull request: `EUR 0.00–126.14 per month (0–3 instances of 1 vCPU,
    /// 512 MiB; 730 h, list prices)`.
    pub fn monthly_estimate(&self, f: &maxcloud_catalog::Footprint) -> String {
        let (low, high) = self.monthly_micros(f);
        self.summary(f, low, high)
    }

    /// The one-line estimate of `f` costing `low`–`high` (10^-6 units) per month.
    fn summary(&self, f: &maxcloud_catalog::Footprint, low: u128, high: u128) -> String {
        let amount = if low == high { money(low) } else { format!("{}–{}", money(low), money(high)) };
        let instances = if f.min_instances == f.max_instances {
            format!("{} instance{}", f.max_instances, if f.max_instances == 1 { "" } else { "s" })
        } else {
            format!("{}–{} instances", f.min_instances, f.max_instances)
        };
        let cpu = if f.cpu_milli % 1000 == 0 {
            format!("{}", f.cpu_milli / 1000)
        } else {
            format!("{}", f.cpu_milli as f64 / 1000.0)
        };
        let mib = f.memory_bytes as f64 / (1u64 << 20) as f64;
        format!(
            "{} {amount} per month ({instances} of {cpu} vCPU, {mib:.0} MiB; 730 h at {} per vCPU-second and {} per GiB-second)",
            self.currency, self.vcpu_second, self.gib_second
        )
    }
}

/// A percentage with at most two decimals, 0–100, as hundredths of a percent.
fn parse_percent(text: &str) -> Result<u32, String> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !(fraction.is_empty() || (digits(fraction) && fraction.len() <= 2)) {
        return Err(format!("{text:?} is not a percentage with at most two decimals, e.g. 19 or 7.7"));
    }
    let value =
        whole.parse::<u32>().map_err(|e| e.to_string())? * 100 + format!("{fraction:0<2}").parse::<u32>().unwrap_or(0);
    if value > 100_00 {
        return Err(format!("{text} is more than 100"));
    }
    Ok(value)
}

/// A cost in 10^-6 units rounded half up to cents.
pub fn micros_to_cents(micros: u128) -> u128 {
    (micros + 5_000) / 10_000
}

/// Cents as an exact amount with two decimals (`1234` → `12.34`).
pub fn cents_text(cents: u128) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// The VAT on `net_cents` at `basis_points`, rounded half up to cents.
pub fn vat_cents(net_cents: u128, basis_points: u32) -> u128 {
    (net_cents * u128::from(basis_points) + 5_000) / 10_000
}

/// Hundredths of a percent as text (`1900` → `19`, `770` → `7.7`).
pub fn percent_text(basis_points: u32) -> String {
    let text = format!("{}.{:02}", basis_points / 100, basis_points % 100);
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Seconds in the month of an estimate (730 hours, the usual cloud billing month).
const MONTH_SECONDS: u128 = 730 * 3600;

/// A cost in 10^-6 units as an amount with two decimals (`663.57`).
fn money(micros: u128) -> String {
    format!("{:.2}", micros_to_units(micros))
}

/// A cost in 10^-6 units as a number of currency units.
pub fn micros_to_units(micros: u128) -> f64 {
    micros as f64 / 10f64.powi(COST_DECIMALS as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monthly_estimates_cover_the_instance_range() {
        let prices = PriceList::default();
        let f =
            maxcloud_catalog::Footprint { cpu_milli: 1000, memory_bytes: 1 << 30, min_instances: 0, max_instances: 2 };
        // One instance for 730 h: 2,628,000 s × (0.000024 + 0.0000025) = 69.642 EUR.
        assert_eq!(prices.monthly_micros(&f), (0, 2 * 69_642_000));
        assert_eq!(
            prices.monthly_estimate(&f),
            "EUR 0.00–139.28 per month (0–2 instances of 1 vCPU, 1024 MiB; 730 h at 0.000024 per vCPU-second and \
             0.0000025 per GiB-second)"
        );
        let f =
            maxcloud_catalog::Footprint { cpu_milli: 250, memory_bytes: 512 << 20, min_instances: 1, max_instances: 1 };
        assert!(
            prices.monthly_estimate(&f).starts_with("EUR 19.05 per month (1 instance of 0.25 vCPU, 512 MiB;"),
            "{}",
            prices.monthly_estimate(&f)
        );
    }

    #[test]
    fn invoice_amounts_are_exact_cents() {
        assert_eq!(micros_to_cents(4_999), 0);
        assert_eq!(micros_to_cents(5_000), 1);
        assert_eq!(cents_text(micros_to_cents(123_455_000)), "123.46");
        assert_eq!(vat_cents(1000, 1900), 190);
        assert_eq!(vat_cents(3, 1900), 1, "0.57 cents round up");
        assert_eq!((percent_text(1900), percent_text(770), percent_text(0)), ("19".into(), "7.7".into(), "0".into()));
        assert_eq!(parse_percent("7.7"), Ok(770));
        assert_eq!(parse_percent("0"), Ok(0));
        for bad in ["", "19%", "7.777", "-1", "101", "1e2"] {
            assert!(parse_percent(bad).is_err(), "{bad}");
        }
        let list =
            PriceList::parse("currency: EUR\nvcpu_second: '0.1'\ngib_second: '0.1'\nvat_percent: '7'\n").unwrap();
        assert_eq!(list.vat_basis_points, 700);
        let err =
            PriceList::parse("currency: EUR\nvcpu_second: '0.1'\ngib_second: '0.1'\nvat_percent: lots\n").unwrap_err();
        assert!(err.starts_with("vat_percent:"), "{err}");
    }

    #[test]
    fn prices_are_exact_decimals() {
        for (text, pico, shown) in [
            ("0.000024", 24_000_000, "0.000024"),
            ("0.0000025", 2_500_000, "0.0000025"),
            ("1", 1_000_000_000_000, "1"),
            (".5", 500_000_000_000, "0.5"),
            ("2.50", 2_500_000_000_000, "2.5"),
            ("0.000000000001", 1, "0.000000000001"),
        ] {
            let price = Price::parse(text).unwrap();
            assert_eq!((price.0, price.to_string().as_str()), (pico, shown), "{text}");
        }
        for bad in ["", ".", "-1", "1e-6", "0.0000000000001", "abc", "1.2.3", "99999999999"] {
            assert!(Price::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn price_list_files_name_the_bad_field() {
        let list = PriceList::parse("currency: CHF\nvcpu_second: 0.00003\ngib_second: \"0.000003\"\n").unwrap();
        assert_eq!(
            list.to_wire(),
            m::PriceList { currency: "CHF".into(), vcpu_second: "0.00003".into(), gib_second: "0.000003".into() }
        );
        let json =
            PriceList::parse(r#"{"currency": "EUR", "vcpu_second": 0.000024, "gib_second": 0.0000025}"#).unwrap();
        assert_eq!(json, PriceList::default());
        for (text, field) in [
            ("currency: EUR\nvcpu_second: 0.1\n", "gib_second"),
            ("currency: EUR\nvcpu_second: 0.1\ngib_second: 0.1\ncpu: 1\n", "cpu"),
            ("currency: euro\nvcpu_second: 0.1\ngib_second: 0.1\n", "currency"),
            ("currency: EUR\nvcpu_second: cheap\ngib_second: 0.1\n", "vcpu_second"),
            ("currency: EUR\nvcpu_second: 0.1\ngib_second: -0.1\n", "gib_second"),
        ] {
            let err = PriceList::parse(text).unwrap_err();
            assert!(err.contains(field), "{text:?}: {err}");
        }
    }

    #[test]
    fn costs_are_rounded_once_to_micro_units() {
        let usage = |cpu_milli_seconds, memory_byte_seconds| ServiceUsage {
            cpu_milli_seconds,
            memory_byte_seconds,
            ..ServiceUsage::default()
        };
        let list = PriceList::default();
        // 1800 vCPU-s × 0.000024 + 900 GiB-s × 0.0000025 = 0.0432 + 0.00225
        assert_eq!(list.cost_micros(&usage(1_800_000, 900 * GIB)), 45_450);
        // 1 vCPU-ms = 0.000000024: rounds to 0; 21 vCPU-s = 0.000504.
        assert_eq!(list.cost_micros(&usage(1, 0)), 0);
        assert_eq!(list.cost_micros(&usage(21_000, 0)), 504);
        // Half a micro-unit rounds up.
        let half = PriceList { vcpu_second: Price::parse("0.0000005").unwrap(), ..PriceList::default() };
        assert_eq!((half.cost_micros(&usage(1000, 0)), half.cost_micros(&usage(999, 0))), (1, 0));
        assert_eq!(micros_to_units(45_450), 0.04545);
    }
}
