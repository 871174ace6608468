//! Kubernetes quantities (`500m`, `1Gi`, `1e3`) as the apiserver reads and
//! writes them (`k8s.io/apimachinery/pkg/api/resource`, unchanged from
//! v0.34 to v0.37), so the simulated cluster stores what a real one would:
//! `"1000"` comes back as `1k`, `"0.5"` as `500m`, `"1024Mi"` as `1Gi`.
//!
//! The rules, in apimachinery's terms:
//!
//! - **Parsing** keeps the suffix's format (decimal SI, binary SI, or a
//!   decimal exponent `e3`) and rounds a value finer than 1n up (away from
//!   zero) to the next nano.
//! - **Written back verbatim.** An input that already looks canonical (on
//!   the parser's fast path: the decimal exponent a multiple of three, no
//!   trailing `000`, no leading zero; a binary value not divisible by 8) is
//!   kept as written, sign and all: `"+1"`, `"01"`, `"1E3"` come back as
//!   they went in.
//! - **Otherwise canonical**: decimal values move every factor of ten into
//!   the exponent, then lower it to a multiple of three (`1500` stays
//!   `1500`, `1000` is `1k`); binary values divide by 1024 while they can
//!   (`1536Mi`), and fall back to decimal between -1024 and 1024 or when not
//!   whole (`0.5Ki` is `512`, `0.1Gi` is `107374182400m`).
//! - **Resource lists** (requests, limits, overhead) are also rounded up to
//!   milli units on defaulting (`0.0001` cpu is `1m`); a lone quantity such as
//!   `emptyDir.sizeLimit` is not (`100u`).

use std::fmt;

/// Why a text is not a quantity, in the apiserver's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error("quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")]
    Format,
    #[error("unable to parse quantity's suffix")]
    Suffix,
    /// Valid, but with more digits than the model's 128-bit arithmetic
    /// holds (apimachinery has arbitrary precision there).
    #[error("quantity too large for the simulated cluster")]
    TooLarge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    DecimalSI,
    BinarySI,
    DecimalExponent,
}

/// A parsed quantity: `unscaled × 10^scale`, the format its suffix chose,
/// and the text it is written back as when the apiserver keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quantity {
    unscaled: i128,
    scale: i32,
    format: Format,
    verbatim: Option<String>,
    /// Parsed on apimachinery's int64 fast path, whose `scale` is the
    /// suffix's exponent less the fraction's digits (it decides whether
    /// rounding to milli keeps the verbatim text).
    fast: bool,
}

/// The parts `parseQuantityString` splits a text into.
struct Parts<'a> {
    negative: bool,
    /// Digits before the point, leading zeros removed ("0" when none).
    num: &'a str,
    /// Digits after the point.
    denom: &'a str,
    suffix: &'a str,
}

fn split(text: &str) -> Result<Parts<'_>, QuantityError> {
    let b = text.as_bytes();
    let end = b.len();
    let mut pos = 0;
    let mut negative = false;
    if let Some(&c) = b.first() {
        if c == b'-' || c == b'+' {
            negative = c == b'-';
            pos = 1;
        }
    }
    while pos < end && b[pos] == b'0' {
        pos += 1;
    }
    if pos >= end {
        return Ok(Parts {
            negative,
            num: "0",
            denom: "",
            suffix: "",
        });
    }
    let digits = |from: usize| {
        let mut i = from;
        while i < end && b[i].is_ascii_digit() {
            i += 1;
        }
        i
    };
    let num_end = digits(pos);
    let num = if num_end == pos {
        "0"
    } else {
        &text[pos..num_end]
    };
    pos = num_end;
    let mut denom = "";
    if pos < end && b[pos] == b'.' {
        let denom_end = digits(pos + 1);
        denom = &text[pos + 1..denom_end];
        pos = denom_end;
    }
    let suffix_start = pos;
    while pos < end && b"eEinumkKMGTP".contains(&b[pos]) {
        pos += 1;
    }
    if pos < end && (b[pos] == b'-' || b[pos] == b'+') {
        pos += 1;
    }
    if digits(pos) != end {
        return Err(QuantityError::Format);
    }
    Ok(Parts {
        negative,
        num,
        denom,
        suffix: &text[suffix_start..],
    })
}

/// A suffix's base, exponent and format (apimachinery's suffix tables).
fn interpret(suffix: &str) -> Option<(u32, i32, Format)> {
    let decimal = [
        ("", 0),
        ("n", -9),
        ("u", -6),
        ("m", -3),
        ("k", 3),
        ("M", 6),
        ("G", 9),
        ("T", 12),
        ("P", 15),
        ("E", 18),
    ];
    if let Some((_, e)) = decimal.iter().find(|(s, _)| *s == suffix) {
        return Some((10, *e, Format::DecimalSI));
    }
    let binary = [
        ("Ki", 10),
        ("Mi", 20),
        ("Gi", 30),
        ("Ti", 40),
        ("Pi", 50),
        ("Ei", 60),
    ];
    if let Some((_, e)) = binary.iter().find(|(s, _)| *s == suffix) {
        return Some((2, *e, Format::BinarySI));
    }
    let exponent = suffix.strip_prefix(['e', 'E'])?;
    // Go's ParseInt: an optional sign, then digits.
    let digits = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let e: i32 = exponent.parse().ok()?;
    Some((10, e, Format::DecimalExponent))
}

impl Quantity {
    /// Parses `text` as `resource.ParseQuantity` does.
    pub fn parse(text: &str) -> Result<Quantity, QuantityError> {
        if text.is_empty() {
            return Err(QuantityError::Format);
        }
        let parts = split(text)?;
        let (base, exponent, mut format) = interpret(parts.suffix).ok_or(QuantityError::Suffix)?;
        let shifted = format!("{}{}", parts.num, parts.denom);
        let digits: i128 = shifted.parse().map_err(|_| QuantityError::TooLarge)?;
        let denom_len = i32::try_from(parts.denom.len()).map_err(|_| QuantityError::TooLarge)?;
        let (mut unscaled, mut scale) = if base == 2 {
            let factor = 1i128 << exponent;
            (
                digits.checked_mul(factor).ok_or(QuantityError::TooLarge)?,
                -denom_len,
            )
        } else {
            (digits, exponent.saturating_sub(denom_len))
        };
        // Headroom for the arithmetic below (canonical forms multiply the
        // mantissa by up to 100 and move the exponent by up to 40).
        if unscaled.abs() > 10i128.pow(36) || scale.abs() > 1_000_000 {
            return Err(QuantityError::TooLarge);
        }
        if parts.negative {
            unscaled = -unscaled;
        }

        // apimachinery's int64 fast path, and whether it keeps the text.
        let precision = match format {
            Format::DecimalSI | Format::DecimalExponent => 18 - (shifted.len() as i64),
            Format::BinarySI if exponent >= 0 && parts.denom.is_empty() => {
                15 - parts.num.len() as i64 - (exponent as f32 * 3.0 / 10.0) as i64 - 1
            }
            Format::BinarySI => -1,
        };
        let go_scale = if base == 2 { -denom_len } else { scale };
        let fast = precision >= 0
            && go_scale >= -9
            && i64::try_from(digits).is_ok()
            && i64::try_from(unscaled).is_ok();
        if fast {
            let keeps_text = match format {
                Format::BinarySI => exponent % 10 == 0 && digits & 0x07 != 0,
                _ => scale % 3 == 0 && !shifted.ends_with("000") && !shifted.starts_with('0'),
            };
            return Ok(Quantity {
                unscaled,
                scale,
                format,
                verbatim: keeps_text.then(|| text.to_string()),
                fast: true,
            });
        }

        // The arbitrary-precision path: round a non-zero value up (away
        // from zero) to a whole number of nano units.
        if unscaled != 0 && scale < -9 {
            let divisor = 10i128
                .checked_pow((-9 - scale) as u32)
                .ok_or(QuantityError::TooLarge)?;
            let (q, r) = (unscaled / divisor, unscaled % divisor);
            unscaled = q + r.signum();
            scale = -9;
        }
        if format == Format::BinarySI {
            // The only cap apimachinery applies: binary values at 2^63-1.
            let cap = i128::from(i64::MAX);
            if scaled_cmp(unscaled.abs(), scale, cap) == std::cmp::Ordering::Greater {
                unscaled = if unscaled < 0 { -cap } else { cap };
                scale = 0;
            }
            if unscaled != 0 && scaled_cmp(unscaled.abs(), scale, 1) == std::cmp::Ordering::Less {
                format = Format::DecimalSI;
            }
        }
        Ok(Quantity {
            unscaled,
            scale,
            format,
            verbatim: None,
            fast: false,
        })
    }

    /// `RoundUp(Milli)`, which the apiserver applies to every entry of a
    /// resource list while defaulting: a value finer than 1m is rounded up
    /// (away from zero) to milli units and loses its verbatim text.
    pub fn round_up_to_milli(&mut self) {
        if self.fast && self.scale >= -3 {
            return;
        }
        self.verbatim = None;
        if self.scale < -3 {
            let divisor = 10i128.pow((-3 - self.scale) as u32);
            let (q, r) = (self.unscaled / divisor, self.unscaled % divisor);
            self.unscaled = q + r.signum();
            self.scale = -3;
        }
    }

    /// The value in nano units (`1m` is 1,000,000), saturating.
    pub fn nanos(&self) -> i128 {
        let shift = self.scale + 9;
        if shift >= 0 {
            10i128
                .checked_pow(shift as u32)
                .and_then(|f| self.unscaled.checked_mul(f))
                .unwrap_or(if self.unscaled < 0 {
                    i128::MIN
                } else {
                    i128::MAX
                })
        } else {
            // Only ever exact: parsing rounds to whole nanos.
            self.unscaled / 10i128.checked_pow((-shift) as u32).unwrap_or(i128::MAX)
        }
    }

    /// The text the apiserver writes back (`Quantity.String()`).
    pub fn canonical(&self) -> String {
        if let Some(text) = &self.verbatim {
            return text.clone();
        }
        if self.unscaled == 0 {
            return "0".to_string();
        }
        let mut format = self.format;
        if format == Format::BinarySI {
            let small =
                scaled_cmp(self.unscaled.abs(), self.scale, 1024) == std::cmp::Ordering::Less;
            if small || !self.is_whole() {
                format = Format::DecimalSI;
            }
        }
        match format {
            Format::BinarySI => {
                let mut value = self.whole();
                let mut power = 0;
                while value % 1024 == 0 && power < 6 {
                    value /= 1024;
                    power += 1;
                }
                let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][power];
                format!("{value}{suffix}")
            }
            Format::DecimalSI | Format::DecimalExponent => {
                let (mut mantissa, mut exponent) = (self.unscaled, self.scale);
                while mantissa % 10 == 0 {
                    mantissa /= 10;
                    exponent += 1;
                }
                while exponent.rem_euclid(3) != 0 {
                    mantissa *= 10;
                    exponent -= 1;
                }
                let suffix = if format == Format::DecimalExponent {
                    if exponent == 0 {
                        String::new()
                    } else {
                        format!("e{exponent}")
                    }
                } else {
                    // apimachinery drops a suffix its table lacks (above E),
                    // so `1000E` reads back as `1`; kept for fidelity.
                    match exponent {
                        -9 => "n",
                        -6 => "u",
                        -3 => "m",
                        3 => "k",
                        6 => "M",
                        9 => "G",
                        12 => "T",
                        15 => "P",
                        18 => "E",
                        _ => "",
                    }
                    .to_string()
                };
                format!("{mantissa}{suffix}")
            }
        }
    }

    fn is_whole(&self) -> bool {
        self.scale >= 0
            || 10i128
                .checked_pow((-self.scale) as u32)
                .is_some_and(|d| self.unscaled % d == 0)
    }

    /// The integer value of a whole quantity.
    fn whole(&self) -> i128 {
        if self.scale >= 0 {
            self.unscaled * 10i128.pow(self.scale as u32)
        } else {
            self.unscaled / 10i128.pow((-self.scale) as u32)
        }
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical())
    }
}

/// Compares `unscaled × 10^scale` with the integer `n`, both non-negative.
fn scaled_cmp(unscaled: i128, scale: i32, n: i128) -> std::cmp::Ordering {
    if scale >= 0 {
        match 10i128
            .checked_pow(scale as u32)
            .and_then(|f| unscaled.checked_mul(f))
        {
            Some(v) => v.cmp(&n),
            None => std::cmp::Ordering::Greater,
        }
    } else {
        match 10i128
            .checked_pow((-scale) as u32)
            .and_then(|f| n.checked_mul(f))
        {
            Some(v) => unscaled.cmp(&v),
            None => std::cmp::Ordering::Less,
        }
    }
}

/// A quantity as it arrives in JSON: a string (trimmed, as
/// `UnmarshalJSON` trims it) or a number (its JSON text).
pub fn from_json(v: &serde_json::Value) -> Option<Result<Quantity, QuantityError>> {
    match v {
        serde_json::Value::String(s) => Some(Quantity::parse(s.trim())),
        serde_json::Value::Number(n) => Some(Quantity::parse(&n.to_string())),
        _ => None,
    }
}

/// Arithmetic as `resource.Quantity` does it, for sums of usage (the quota
/// controller and admission add quantities and print the result).
///
/// A result forgets the text it was parsed from (`Add` and `Sub` clear the
/// cached string) and keeps the first operand's format, unless that operand
/// is zero, when it takes the second's: so `0 + 64Mi` prints `64Mi` and
/// `500m + 1` prints `1500m`.
impl Quantity {
    /// `resource.Quantity{Format: DecimalSI}`: the zero a usage sum starts from.
    pub fn zero() -> Quantity {
        Quantity::from_int(0)
    }

    /// `resource.NewQuantity(n, DecimalSI)`, as object counts are made.
    pub fn from_int(n: i64) -> Quantity {
        Quantity {
            unscaled: i128::from(n),
            scale: 0,
            format: Format::DecimalSI,
            verbatim: None,
            fast: false,
        }
    }

    pub fn is_zero(&self) -> bool {
        self.unscaled == 0
    }

    /// -1, 0 or 1, as `Sign()`.
    pub fn signum(&self) -> i32 {
        self.unscaled.signum() as i32
    }

    /// Compares the values, whatever their formats (`Cmp`).
    pub fn cmp_value(&self, other: &Quantity) -> std::cmp::Ordering {
        use std::cmp::Ordering;
        let (a, b) = (self.unscaled.signum(), other.unscaled.signum());
        if a != b || a == 0 {
            return a.cmp(&b);
        }
        let magnitude = match self.aligned(other) {
            Some((x, y)) => x.abs().cmp(&y.abs()),
            // Only the operand with the larger scale can overflow when
            // brought to the smaller one, and it is then the larger.
            None if self.scale > other.scale => Ordering::Greater,
            None => Ordering::Less,
        };
        if a > 0 {
            magnitude
        } else {
            magnitude.reverse()
        }
    }

    /// `self + other`; `None` beyond the model's 128-bit range.
    pub fn checked_add(&self, other: &Quantity) -> Option<Quantity> {
        let (x, y) = self.aligned(other)?;
        self.combined(other, x.checked_add(y)?)
    }

    /// `self - other`; `None` beyond the model's 128-bit range.
    pub fn checked_sub(&self, other: &Quantity) -> Option<Quantity> {
        let (x, y) = self.aligned(other)?;
        self.combined(other, x.checked_sub(y)?)
    }

    /// `RoundUp(0)`: a value with a fraction is rounded up (away from zero)
    /// to a whole number and forgets its text; `false` when that happened.
    pub fn round_up_to_units(&mut self) -> bool {
        if self.is_whole() {
            return true;
        }
        let divisor = 10i128.pow((-self.scale) as u32);
        let (q, r) = (self.unscaled / divisor, self.unscaled % divisor);
        self.unscaled = q + r.signum();
        self.scale = 0;
        self.verbatim = None;
        self.fast = false;
        false
    }

    /// Both mantissas at the smaller of the two scales.
    fn aligned(&self, other: &Quantity) -> Option<(i128, i128)> {
        let scale = self.scale.min(other.scale);
        let lift = |q: &Quantity| {
            u32::try_from(q.scale - scale)
                .ok()
                .and_then(|e| 10i128.checked_pow(e))
                .and_then(|f| q.unscaled.checked_mul(f))
        };
        Some((lift(self)?, lift(other)?))
    }

    fn combined(&self, other: &Quantity, unscaled: i128) -> Option<Quantity> {
        let format = if self.is_zero() {
            other.format
        } else {
            self.format
        };
        Some(Quantity {
            unscaled,
            scale: self.scale.min(other.scale),
            format,
            verbatim: None,
            fast: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(text: &str) -> String {
        Quantity::parse(text).unwrap().canonical()
    }

    fn resource_list(text: &str) -> String {
        let mut q = Quantity::parse(text).unwrap();
        q.round_up_to_milli();
        q.canonical()
    }

    /// What a v1.37.2 apiserver writes back for each input, taken by
    /// running apimachinery's decode, defaulting and encode on it: the
    /// lone-quantity form (emptyDir.sizeLimit) and the resource-list form
    /// (requests, limits, overhead).
    #[test]
    fn canonical_forms_match_the_apiserver() {
        let cases = [
            ("1000", "1k", "1k"),
            ("0.5", "500m", "500m"),
            ("1.5", "1500m", "1500m"),
            ("0.0001", "100u", "1m"),
            ("100e3", "100e3", "100e3"),
            ("1e3", "1e3", "1e3"),
            ("1E3", "1E3", "1E3"),
            ("1024Mi", "1Gi", "1Gi"),
            ("1536Mi", "1536Mi", "1536Mi"),
            ("0.5Gi", "512Mi", "512Mi"),
            ("1.5Gi", "1536Mi", "1536Mi"),
            ("0.1Gi", "107374182400m", "107374182400m"),
            ("1000000", "1M", "1M"),
            ("1000Ki", "1000Ki", "1000Ki"),
            ("1Ki", "1Ki", "1Ki"),
            ("512", "512", "512"),
            ("2048", "2048", "2048"),
            ("1e-3", "1e-3", "1e-3"),
            ("+1", "+1", "+1"),
            ("01", "01", "01"),
            ("1.0", "1", "1"),
            ("-1", "-1", "-1"),
            ("1500", "1500", "1500"),
            ("1.", "1.", "1."),
            ("1.5k", "1500", "1500"),
            ("0.0005", "500u", "1m"),
            ("100u", "100u", "1m"),
            ("1n", "1n", "1m"),
            ("0.5m", "500u", "1m"),
            ("1.0001", "1000100u", "1001m"),
            ("1e-4", "100e-6", "1e-3"),
            ("0.000001Gi", "1073741824u", "1073742m"),
        ];
        for (input, lone, list) in cases {
            assert_eq!(canonical(input), lone, "{input}");
            assert_eq!(resource_list(input), list, "{input} in a resource list");
        }
    }

    /// Further pairs from apimachinery's behaviour (its canonical-form rules
    /// run on these inputs).
    #[test]
    fn more_canonical_forms() {
        let cases = [
            ("0", "0"),
            ("00", "0"),
            ("+0", "0"),
            ("-0", "0"),
            ("0.0", "0"),
            ("0Ki", "0"),
            ("0m", "0"),
            ("1500000", "1500k"),
            ("2000", "2k"),
            ("1024", "1024"),
            ("999999", "999999"),
            ("5e-1", "500e-3"),
            ("1000e0", "1e3"),
            ("1.23e3", "1230"),
            ("1000E", "1"),
            ("1.5E", "1500P"),
            ("1024Gi", "1Ti"),
            ("1023Ki", "1023Ki"),
            ("0.5Ki", "512"),
            ("1.5Ki", "1536"),
            ("10.5Ki", "10752"),
            ("1.1Ki", "1126400m"),
            ("0.9Ki", "921600m"),
            ("-0.5Gi", "-512Mi"),
            ("3.001n", "4n"),
            ("0.0000000001", "1n"),
            ("-0.1n", "-1n"),
            ("0.00000012345", "124n"),
            ("9Ei", "9223372036854775807"),
            ("+1Ki", "+1Ki"),
            ("+1k", "+1k"),
            ("01k", "01k"),
            ("1e0", "1e0"),
            ("10e0", "10e0"),
            ("1e+3", "1e+3"),
            ("1e03", "1e03"),
            ("001e3", "001e3"),
            ("5.", "5."),
            ("1.G", "1.G"),
            ("128Mi", "128Mi"),
            ("500m", "500m"),
            ("250m", "250m"),
            ("64Mi", "64Mi"),
        ];
        for (input, want) in cases {
            assert_eq!(canonical(input), want, "{input}");
        }
    }

    #[test]
    fn canonical_text_reads_back_as_itself() {
        for input in [
            "1000", "0.5", "1.5Gi", "0.1Gi", "1024Mi", "100e3", "1.5k", "0.0001",
        ] {
            let once = canonical(input);
            assert_eq!(canonical(&once), once, "{input}");
        }
    }

    #[test]
    fn malformed_quantities_are_refused_in_the_apiservers_words() {
        for bad in ["", "abc", " 1", "1 Gi", "0x10", "1.1.M", "1e3k", "1e-3Ki"] {
            assert_eq!(Quantity::parse(bad), Err(QuantityError::Format), "{bad:?}");
        }
        for bad in ["1i", "1e", "1k5", "1Ki5", "0.1mi", "1K"] {
            assert_eq!(Quantity::parse(bad), Err(QuantityError::Suffix), "{bad:?}");
        }
        assert_eq!(
            QuantityError::Format.to_string(),
            "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
        );
    }

    #[test]
    fn json_numbers_and_padded_strings() {
        let json = serde_json::json!([1000, 0.5, " 1 ", true]);
        let out: Vec<_> = json
            .as_array()
            .unwrap()
            .iter()
            .map(|v| from_json(v).map(|r| r.map(|q| q.canonical())))
            .collect();
        assert_eq!(
            out,
            [
                Some(Ok("1k".to_string())),
                Some(Ok("500m".to_string())),
                Some(Ok("1".to_string())),
                None
            ]
        );
    }

    #[test]
    fn nanos_of_common_values() {
        let n = |t: &str| Quantity::parse(t).unwrap().nanos();
        assert_eq!(n("100m"), 100_000_000);
        assert_eq!(n("1"), 1_000_000_000);
        assert_eq!(n("1Ki"), 1024 * 1_000_000_000);
        assert_eq!(n("1e3"), 1_000 * 1_000_000_000);
        assert_eq!(n("-2"), -2_000_000_000);
        assert_eq!(n("1n"), 1);
    }
}
