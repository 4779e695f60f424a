//! Invoice totals in exact decimal arithmetic: line items with quantities,
//! unit prices and tax rates, in an ISO 4217 currency. No floating point
//! touches an amount: numbers are read from their JSON text (decimal
//! strings such as `"19.99"` or JSON numbers, whose text is kept exactly)
//! into a fixed-point decimal (i128 mantissa and a decimal scale).
//!
//! Rounding (stated in the output too): each line's net (quantity x unit
//! price) is rounded to the currency's minor unit, then its tax (net x rate
//! / 100) is rounded the same way; totals are sums of the rounded lines.
//! The mode is `half_up` (half away from zero, commercial rounding) unless
//! the input asks for `half_even` (banker's rounding).

use std::cmp::Ordering;
use std::fmt;

use aifn_guest::{Context, FunctionError};
use serde::de::{Deserializer, Error as _};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Invoice {
    /// ISO 4217 code, e.g. `EUR`.
    currency: String,
    items: Vec<Item>,
    #[serde(default)]
    rounding: Rounding,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Item {
    #[serde(default)]
    description: String,
    quantity: Dec,
    unit_price: Dec,
    /// Percent, e.g. `"19"` or `"7.5"`; 0 to 100.
    tax_percent: Dec,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Rounding {
    /// Half away from zero (commercial rounding), the default.
    #[default]
    HalfUp,
    /// Half to even (banker's rounding).
    HalfEven,
}

impl Rounding {
    fn name(self) -> &'static str {
        match self {
            Rounding::HalfUp => "half_up",
            Rounding::HalfEven => "half_even",
        }
    }
}

#[derive(Serialize)]
struct Totals {
    currency: String,
    /// Digits after the decimal point in this currency (ISO 4217).
    minor_units: u32,
    lines: Vec<Line>,
    subtotal: String,
    tax_total: String,
    total: String,
    /// Net and tax per tax rate, by ascending rate.
    tax_by_rate: Vec<RateTotal>,
    /// How amounts were rounded, e.g. `half_up per line to 2 decimals`.
    rounding: String,
}

#[derive(Serialize)]
struct Line {
    description: String,
    net: String,
    tax_percent: String,
    tax: String,
    total: String,
}

#[derive(Serialize)]
struct RateTotal {
    tax_percent: String,
    net: String,
    tax: String,
}

/// An exact decimal: `mantissa / 10^scale`.
#[derive(Debug, Clone, Copy)]
struct Dec {
    m: i128,
    scale: u32,
}

/// Most digits after the point an input may have (after any exponent).
const MAX_SCALE: u32 = 18;
/// Most significant digits an input may have.
const MAX_DIGITS: usize = 24;

/// 10^0 ..= 10^38, the powers of ten an i128 holds.
const POW10: [i128; 39] = {
    let mut t = [1i128; 39];
    let mut i = 1;
    while i < 39 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

fn pow10(n: u32) -> Option<i128> {
    POW10.get(n as usize).copied()
}

/// `a * b`, `None` on overflow; 64-bit factors cannot overflow and skip
/// the overflow-checking library routine.
fn mul(a: i128, b: i128) -> Option<i128> {
    match (i64::try_from(a), i64::try_from(b)) {
        (Ok(x), Ok(y)) => Some(i128::from(x) * i128::from(y)),
        _ => a.checked_mul(b),
    }
}

/// `a / b` and `a % b` for `b > 0`. wasm32 has no 128-bit division; the
/// library routine costs hundreds of instructions, so values that fit in
/// 64 bits (all realistic amounts) take the native path.
fn div_rem(a: i128, b: i128) -> (i128, i128) {
    match (i64::try_from(a), i64::try_from(b)) {
        (Ok(x), Ok(y)) => (i128::from(x / y), i128::from(x % y)),
        _ => (a / b, a % b),
    }
}

impl Dec {
    /// Parses `-?DIGITS(.DIGITS)?([eE][+-]?DIGITS)?` exactly.
    fn parse(s: &str) -> Result<Dec, String> {
        let bad = || format!("{:?} is not a decimal number", s);
        let b = s.as_bytes();
        let mut i = 0;
        let neg = b.first() == Some(&b'-');
        if neg {
            i += 1;
        }
        let mut digits: Vec<u8> = Vec::new();
        let int_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            digits.push(b[i] - b'0');
            i += 1;
        }
        if i == int_start {
            return Err(bad());
        }
        let mut frac = 0i64;
        if i < b.len() && b[i] == b'.' {
            i += 1;
            let f = i;
            while i < b.len() && b[i].is_ascii_digit() {
                digits.push(b[i] - b'0');
                i += 1;
            }
            if i == f {
                return Err(bad());
            }
            frac = (i - f) as i64;
        }
        let mut exp = 0i64;
        if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
            i += 1;
            let eneg = i < b.len() && b[i] == b'-';
            if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
                i += 1;
            }
            let e = i;
            while i < b.len() && b[i].is_ascii_digit() {
                exp = (exp * 10 + i64::from(b[i] - b'0')).min(1_000_000);
                i += 1;
            }
            if i == e {
                return Err(bad());
            }
            if eneg {
                exp = -exp;
            }
        }
        if i != b.len() {
            return Err(bad());
        }
        // Leading zeros are not significant.
        let first = digits.iter().position(|d| *d != 0).unwrap_or(digits.len());
        let digits = &digits[first..];
        if digits.len() > MAX_DIGITS {
            return Err(format!(
                "{:?} has more than {} significant digits",
                s, MAX_DIGITS
            ));
        }
        let mut m: i128 = 0;
        for d in digits {
            m = m * 10 + i128::from(*d);
        }
        let mut scale = frac - exp;
        if m == 0 {
            scale = 0;
        }
        if scale < 0 {
            let up = pow10((-scale) as u32).and_then(|p| mul(m, p));
            m = match up {
                Some(v) if m == 0 || (-scale) as usize + digits.len() <= MAX_DIGITS => v,
                _ => {
                    return Err(format!(
                        "{:?} has more than {} significant digits",
                        s, MAX_DIGITS
                    ))
                }
            };
            scale = 0;
        }
        // Trailing zeros past MAX_SCALE are harmless: drop them.
        while scale > i64::from(MAX_SCALE) && div_rem(m, 10).1 == 0 {
            m = div_rem(m, 10).0;
            scale -= 1;
        }
        if scale > i64::from(MAX_SCALE) {
            return Err(format!(
                "{:?} has more than {} digits after the decimal point",
                s, MAX_SCALE
            ));
        }
        Ok(Dec {
            m: if neg { -m } else { m },
            scale: scale as u32,
        })
    }

    fn from_int(m: i128) -> Dec {
        Dec { m, scale: 0 }
    }

    fn mul(self, o: Dec) -> Option<Dec> {
        Some(Dec {
            m: mul(self.m, o.m)?,
            scale: self.scale + o.scale,
        })
    }

    /// This value at `scale` (only upwards: exact).
    fn rescaled(self, scale: u32) -> Option<i128> {
        mul(self.m, pow10(scale.checked_sub(self.scale)?)?)
    }

    fn add(self, o: Dec) -> Option<Dec> {
        let scale = self.scale.max(o.scale);
        Some(Dec {
            m: self.rescaled(scale)?.checked_add(o.rescaled(scale)?)?,
            scale,
        })
    }

    /// Rounds to `scale` digits after the point.
    fn round(self, scale: u32, mode: Rounding) -> Option<Dec> {
        if self.scale <= scale {
            return Some(Dec {
                m: self.rescaled(scale)?,
                scale,
            });
        }
        let div = pow10(self.scale - scale)?;
        let (q, r) = div_rem(self.m, div);
        let twice = r.abs() * 2;
        let away = match twice.cmp(&div) {
            Ordering::Greater => true,
            Ordering::Less => false,
            Ordering::Equal => mode == Rounding::HalfUp || q & 1 == 1,
        };
        let q = if away { q + self.m.signum() } else { q };
        Some(Dec { m: q, scale })
    }

    /// Without trailing zeros after the point.
    fn normalized(self) -> Dec {
        let mut d = self;
        while d.scale > 0 {
            let (q, r) = div_rem(d.m, 10);
            if r != 0 {
                break;
            }
            d.m = q;
            d.scale -= 1;
        }
        d
    }

    fn cmp(self, o: Dec) -> Ordering {
        let scale = self.scale.max(o.scale);
        match (self.rescaled(scale), o.rescaled(scale)) {
            (Some(a), Some(b)) => a.cmp(&b),
            // Only reachable with absurd magnitudes; fall back to the sign.
            _ => self.m.signum().cmp(&o.m.signum()),
        }
    }
}

impl fmt::Display for Dec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let abs = self.m.unsigned_abs();
        let digits = match u64::try_from(abs) {
            Ok(small) => small.to_string(),
            Err(_) => abs.to_string(),
        };
        let scale = self.scale as usize;
        let padded = if digits.len() <= scale {
            format!("{}{}", "0".repeat(scale + 1 - digits.len()), digits)
        } else {
            digits
        };
        let (int, frac) = padded.split_at(padded.len() - scale);
        if self.m < 0 {
            f.write_str("-")?;
        }
        f.write_str(int)?;
        if scale > 0 {
            write!(f, ".{}", frac)?;
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for Dec {
    /// A decimal string (`"19.99"`) or a JSON number, read from its text.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Dec, D::Error> {
        let raw = Box::<RawValue>::deserialize(d)?;
        let text = raw.get();
        if text.starts_with('"') {
            let s: String = serde_json::from_str(text).map_err(D::Error::custom)?;
            Dec::parse(&s).map_err(D::Error::custom)
        } else if text.starts_with('-') || text.starts_with(|c: char| c.is_ascii_digit()) {
            Dec::parse(text).map_err(D::Error::custom)
        } else {
            Err(D::Error::custom(format!(
                "expected a decimal string like \"19.99\" or a number, got {}",
                text
            )))
        }
    }
}

/// ISO 4217 active codes whose minor unit is not 2.
const MINOR_UNITS: &[(&str, u32)] = &[
    ("BHD", 3),
    ("BIF", 0),
    ("CLF", 4),
    ("CLP", 0),
    ("DJF", 0),
    ("GNF", 0),
    ("IQD", 3),
    ("ISK", 0),
    ("JOD", 3),
    ("JPY", 0),
    ("KMF", 0),
    ("KRW", 0),
    ("KWD", 3),
    ("LYD", 3),
    ("OMR", 3),
    ("PYG", 0),
    ("RWF", 0),
    ("TND", 3),
    ("UGX", 0),
    ("UYI", 0),
    ("UYW", 4),
    ("VND", 0),
    ("VUV", 0),
    ("XAF", 0),
    ("XOF", 0),
    ("XPF", 0),
];

/// ISO 4217 active codes with 2 minor digits.
const TWO_DIGITS: &str = "AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD \
BTN BWP BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP \
GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR \
LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN \
PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS \
TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED VES WST XCD XCG YER ZAR ZMW ZWG";

fn minor_units(code: &str) -> Option<u32> {
    if code.len() != 3 || !code.bytes().all(|c| c.is_ascii_uppercase()) {
        return None;
    }
    if let Some((_, n)) = MINOR_UNITS.iter().find(|(c, _)| *c == code) {
        return Some(*n);
    }
    // Codes are 3 letters and a space apart; compare bytes (cheaper in
    // fuel than splitting the string).
    let code = code.as_bytes();
    TWO_DIGITS
        .as_bytes()
        .chunks(4)
        .any(|c| &c[..3] == code)
        .then_some(2)
}

fn invoice_total(_ctx: &Context, inv: Invoice) -> Result<Totals, FunctionError> {
    let minor = minor_units(&inv.currency).ok_or_else(|| {
        FunctionError::invalid_input(
            "currency",
            format!("{:?} is not an ISO 4217 currency code", inv.currency),
        )
    })?;
    if inv.items.is_empty() {
        return Err(FunctionError::invalid_input(
            "items",
            "an invoice needs at least one line item",
        ));
    }
    let mode = inv.rounding;
    let zero = Dec::from_int(0);
    let hundred = Dec::from_int(100);
    let mut lines = Vec::with_capacity(inv.items.len());
    let mut subtotal = zero;
    let mut tax_total = zero;
    let mut by_rate: Vec<(Dec, Dec, Dec)> = Vec::new();
    for (i, item) in inv.items.into_iter().enumerate() {
        if item.tax_percent.cmp(zero) == Ordering::Less
            || item.tax_percent.cmp(hundred) == Ordering::Greater
        {
            return Err(FunctionError::invalid_input(
                &format!("items[{}].tax_percent", i),
                format!("{} is not between 0 and 100", item.tax_percent),
            ));
        }
        let too_large =
            || FunctionError::invalid_input(&format!("items[{}]", i), "amount too large");
        let net = item
            .quantity
            .mul(item.unit_price)
            .and_then(|n| n.round(minor, mode))
            .ok_or_else(too_large)?;
        // tax = net * percent / 100, exactly, then rounded.
        let tax_exact = net.mul(item.tax_percent).map(|t| Dec {
            m: t.m,
            scale: t.scale + 2,
        });
        let tax = tax_exact
            .and_then(|t| t.round(minor, mode))
            .ok_or_else(too_large)?;
        let total = net.add(tax).ok_or_else(too_large)?;
        subtotal = subtotal.add(net).ok_or_else(too_large)?;
        tax_total = tax_total.add(tax).ok_or_else(too_large)?;
        let rate = item.tax_percent.normalized();
        match by_rate
            .iter_mut()
            .find(|r| r.0.cmp(rate) == Ordering::Equal)
        {
            Some(r) => {
                r.1 = r.1.add(net).ok_or_else(too_large)?;
                r.2 = r.2.add(tax).ok_or_else(too_large)?;
            }
            None => by_rate.push((rate, net, tax)),
        }
        lines.push(Line {
            description: item.description,
            net: net.to_string(),
            tax_percent: rate.to_string(),
            tax: tax.to_string(),
            total: total.to_string(),
        });
    }
    by_rate.sort_by(|a, b| a.0.cmp(b.0));
    let too_large = || FunctionError::new("invoice total too large");
    let total = subtotal.add(tax_total).ok_or_else(too_large)?;
    let at = |d: Dec| {
        d.round(minor, mode)
            .map(|d| d.to_string())
            .ok_or_else(too_large)
    };
    Ok(Totals {
        minor_units: minor,
        subtotal: at(subtotal)?,
        tax_total: at(tax_total)?,
        total: at(total)?,
        tax_by_rate: by_rate
            .into_iter()
            .map(|(rate, net, tax)| {
                Ok(RateTotal {
                    tax_percent: rate.to_string(),
                    net: at(net)?,
                    tax: at(tax)?,
                })
            })
            .collect::<Result<_, FunctionError>>()?,
        rounding: format!("{} per line to {} decimals", mode.name(), minor),
        currency: inv.currency,
        lines,
    })
}

aifn_guest::export!(invoice_total);

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Dec {
        Dec::parse(s).expect(s)
    }

    #[test]
    fn parses_exactly() {
        assert_eq!(d("19.99").to_string(), "19.99");
        assert_eq!(d("-0.5").to_string(), "-0.5");
        assert_eq!(d("1e2").to_string(), "100");
        assert_eq!(d("1.5E-3").to_string(), "0.0015");
        assert_eq!(d("0.10").to_string(), "0.10");
        assert_eq!(
            d("0.1000000000000000000000").to_string(),
            "0.100000000000000000"
        );
        for bad in [
            "", "-", "1.", ".5", "1e", "1,5", " 1", "0x10", "1.2.3", "+1",
        ] {
            assert!(Dec::parse(bad).is_err(), "{}", bad);
        }
        assert!(Dec::parse("1e400").is_err());
        assert!(Dec::parse("1e-400").is_err());
    }

    #[test]
    fn rounds_half_up_and_half_even() {
        let r = |s: &str, m| d(s).round(2, m).expect("fits").to_string();
        assert_eq!(r("2.345", Rounding::HalfUp), "2.35");
        assert_eq!(r("2.345", Rounding::HalfEven), "2.34");
        assert_eq!(r("2.355", Rounding::HalfEven), "2.36");
        assert_eq!(r("-2.345", Rounding::HalfUp), "-2.35");
        assert_eq!(r("-2.345", Rounding::HalfEven), "-2.34");
        assert_eq!(r("2.3449", Rounding::HalfUp), "2.34");
        assert_eq!(r("7", Rounding::HalfUp), "7.00");
        assert_eq!(
            d("0.004")
                .round(2, Rounding::HalfUp)
                .expect("fits")
                .to_string(),
            "0.00"
        );
    }

    #[test]
    fn currencies() {
        assert_eq!(minor_units("EUR"), Some(2));
        assert_eq!(minor_units("JPY"), Some(0));
        assert_eq!(minor_units("KWD"), Some(3));
        assert_eq!(minor_units("eur"), None);
        assert_eq!(minor_units("XYZ"), None);
        assert_eq!(minor_units("EU"), None);
    }
}
