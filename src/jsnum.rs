//! JavaScript's number rules, as Nightscout's output is shaped by them: `Number()`,
//! truthiness, `parseInt`, `parseFloat`, `Math.round`, `JSON.stringify`'s numbers,
//! `String(number)`, `toFixed`, `toPrecision`. Reproduced rather than approximated, because followers compare
//! the text. At the crate root so the store (treatment preparation), the live layer and the
//! plugins share one copy.

use serde_json::{Number, Value};

use crate::config::MMOL_TO_MGDL;

/// JavaScript truthiness of a field (`None` is undefined).
pub fn truthy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Some(Value::String(s)) => !s.is_empty(),
        Some(_) => true,
    }
}

/// JavaScript's `Number(v)`; `None` stands for NaN (and for undefined).
pub fn js_number(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Null => Some(0.0),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        Value::Number(n) => n.as_f64(),
        Value::String(s) => str_number(s),
        _ => None,
    }
}

/// JavaScript's `Number(s)` of a string (blank is 0); `None` stands for NaN.
pub fn str_number(s: &str) -> Option<f64> {
    let t = s.trim();
    if t.is_empty() {
        return Some(0.0);
    }
    t.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// JavaScript's `parseInt`: leading whitespace, a sign, digits; anything else ends it.
pub fn parse_int(s: &str) -> Option<i64> {
    let t = s.trim_start();
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let end = digits
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    let n: i64 = digits[..end].parse().ok()?;
    Some(if neg { -n } else { n })
}

/// JavaScript's `parseFloat` of a string: the longest leading decimal number, else NaN.
pub fn parse_float(s: &str) -> f64 {
    let t = s.trim_start();
    if t.starts_with("Infinity") || t.starts_with("+Infinity") {
        return f64::INFINITY;
    }
    if t.starts_with("-Infinity") {
        return f64::NEG_INFINITY;
    }
    let end = t
        .bytes()
        .position(|b| !(b.is_ascii_digit() || b"+-.eE".contains(&b)))
        .unwrap_or(t.len());
    (1..=end)
        .rev()
        .find_map(|n| t[..n].parse::<f64>().ok())
        .unwrap_or(f64::NAN)
}

/// `Math.round`: halves go up (towards +∞), unlike `f64::round`.
pub fn js_round(x: f64) -> f64 {
    let f = x.floor();
    if x - f >= 0.5 {
        f + 1.0
    } else {
        f
    }
}

/// A number as `JSON.stringify` writes it: integers without a fraction, NaN as null.
pub fn num(x: f64) -> Value {
    if !x.is_finite() {
        return Value::Null;
    }
    if x == x.trunc() && x.abs() < 9.0e15 {
        // Exact: below 2^53.
        return Value::from(x as i64);
    }
    Number::from_f64(x).map_or(Value::Null, Value::Number)
}

pub fn opt_num(x: Option<f64>) -> Value {
    x.map_or(Value::Null, num)
}

/// `String(x)` for a number.
pub fn js_str(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if x == 0.0 {
        return "0".into();
    }
    if x.abs() >= 1e21 || x.abs() < 1e-6 {
        let s = format!("{x:e}");
        return match s.split_once('e') {
            Some((m, e)) if !e.starts_with('-') => format!("{m}e+{e}"),
            _ => s,
        };
    }
    format!("{x}")
}

/// `String(v)` for a JSON value, as string concatenation would write it.
pub fn js_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.as_f64().map_or_else(|| n.to_string(), js_str),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".into(),
        Value::Array(_) | Value::Object(_) => v.to_string(),
    }
}

fn increment(digits: &mut Vec<u8>) {
    for d in digits.iter_mut().rev() {
        if *d == b'9' {
            *d = b'0';
        } else {
            *d += 1;
            return;
        }
    }
    digits.insert(0, b'1');
}

fn ascii(digits: &[u8]) -> &str {
    std::str::from_utf8(digits).unwrap_or("")
}

/// `x.toFixed(digits)`. Rust rounds an exact tie to even; JavaScript rounds it up.
pub fn to_fixed(x: f64, digits: usize) -> String {
    if !x.is_finite() || x.abs() >= 1e21 {
        return js_str(x);
    }
    // 30 digits past the last kept one decide the rounding exactly enough for any double.
    let text = format!("{:.*}", digits + 30, x.abs());
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let mut ds: Vec<u8> = int.bytes().chain(frac.bytes().take(digits)).collect();
    if frac.as_bytes().get(digits).is_some_and(|b| *b >= b'5') {
        increment(&mut ds);
    }
    let int_len = ds.len() - digits;
    let mut out = String::new();
    if x < 0.0 {
        out.push('-');
    }
    out.push_str(ascii(&ds[..int_len]));
    if digits > 0 {
        out.push('.');
        out.push_str(ascii(&ds[int_len..]));
    }
    out
}

/// `x.toPrecision(precision)` (1..=100).
pub fn to_precision(x: f64, precision: usize) -> String {
    let p = precision.clamp(1, 100);
    if !x.is_finite() {
        return js_str(x);
    }
    if x == 0.0 {
        return if p == 1 {
            "0".into()
        } else {
            format!("0.{}", "0".repeat(p - 1))
        };
    }
    let text = format!("{:.*e}", p - 1 + 30, x.abs());
    let Some((mantissa, exp)) = text.split_once('e') else {
        return js_str(x);
    };
    let mut e: i64 = exp.parse().unwrap_or(0);
    let all: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    let mut ds = all[..p.min(all.len())].to_vec();
    if all.get(p).is_some_and(|b| *b >= b'5') {
        increment(&mut ds);
        if ds.len() > p {
            ds.truncate(p);
            e += 1;
        }
    }
    let s = ascii(&ds);
    let p_i = i64::try_from(p).unwrap_or(100);
    let body = if e < -6 || e >= p_i {
        let m = if p == 1 {
            s.to_string()
        } else {
            format!("{}.{}", &s[..1], &s[1..])
        };
        format!("{m}e{}{}", if e >= 0 { '+' } else { '-' }, e.abs())
    } else if e >= 0 {
        let k = usize::try_from(e + 1).unwrap_or(p);
        if k >= p {
            s.to_string()
        } else {
            format!("{}.{}", &s[..k], &s[k..])
        }
    } else {
        let zeros = usize::try_from(-e - 1).unwrap_or(0);
        format!("0.{}{s}", "0".repeat(zeros))
    };
    if x < 0.0 {
        format!("-{body}")
    } else {
        body
    }
}

/// Nightscout's units.mgdlToMMOL: one decimal, as a string ("6.7").
pub fn mgdl_to_mmol(mgdl: f64) -> String {
    to_fixed(js_round(mgdl / MMOL_TO_MGDL * 10.0) / 10.0, 1)
}

/// `+(Math.round(x + "e+3") + "e-3")`: three decimals by shifting the decimal text.
pub fn round3(v: &Value) -> Option<f64> {
    let text = match v {
        Value::Number(n) => js_str(n.as_f64()?),
        Value::String(s) => s.trim().to_string(),
        _ => return None,
    };
    let shifted: f64 = format!("{text}e3")
        .parse()
        .ok()
        .filter(|f: &f64| f.is_finite())?;
    format!("{}e-3", js_str(js_round(shifted))).parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn javascript_numbers() {
        assert_eq!(js_round(2.5), 3.0);
        assert_eq!(js_round(-2.5), -2.0);
        assert_eq!(js_round(0.499_999_999_999_999_94), 0.0);
        // 0.125 is an exact tie: JavaScript rounds it up, Rust's formatter to even ("0.12").
        assert_eq!(to_fixed(0.125, 2), "0.13");
        // 1.005 is stored as 1.00499999999999989...
        assert_eq!(to_fixed(1.005, 2), "1.00");
        assert_eq!(to_fixed(-0.001, 2), "-0.00");
        assert_eq!(to_fixed(2.0, 1), "2.0");
        assert_eq!(to_fixed(0.5, 0), "1");
        // 99.95 is stored as 99.950000000000003: rounds up and carries.
        assert_eq!(to_fixed(99.95, 1), "100.0");
        assert_eq!(to_precision(85.5, 3), "85.5");
        assert_eq!(to_precision(150.0, 3), "150");
        assert_eq!(to_precision(0.0, 3), "0.00");
        assert_eq!(to_precision(12.25, 3), "12.3");
        assert_eq!(to_precision(9.999, 3), "10.0");
        assert_eq!(to_precision(1234.0, 3), "1.23e+3");
        assert_eq!(to_precision(0.000_012_34, 2), "0.000012");
        assert_eq!(js_str(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(js_str(-0.0), "0");
        assert_eq!(js_str(5.0), "5");
        assert_eq!(js_str(1e21), "1e+21");
        assert_eq!(js_str(1.5e-7), "1.5e-7");
        assert_eq!(num(5.0), json!(5));
        assert_eq!(num(-0.0), json!(0));
        assert_eq!(num(0.5), json!(0.5));
        assert_eq!(num(f64::NAN), Value::Null);
        // 120 / 18.01559 = 6.6609; 100 → 5.5507; 180 → 9.9913 → "10.0".
        assert_eq!(mgdl_to_mmol(120.0), "6.7");
        assert_eq!(mgdl_to_mmol(100.0), "5.6");
        assert_eq!(mgdl_to_mmol(180.0), "10.0");
        // "1.2345e3" = 1234.5 → 1235 → 1.235; "0.0004e3" = 0.4 → 0.
        assert_eq!(round3(&json!(1.2345)), Some(1.235));
        assert_eq!(round3(&json!("0.0004")), Some(0.0));
        assert!(truthy(Some(&json!("0"))));
        assert!(!truthy(Some(&json!(0))));
        assert_eq!(js_number(Some(&json!(" 42 "))), Some(42.0));
    }
}
