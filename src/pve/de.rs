//! Lenient decoding for PVE answers: Perl hands back integers as numbers or numeric strings
//! and booleans as 0/1, "0"/"1" or true/false, depending on the code path. Use these with
//! `#[serde(default, deserialize_with = "...")]`; `null` and absent fields become `None`.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// A number or a numeric string as `u64` (floats with no fraction are accepted too).
pub fn value_to_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                .map(|f| f as u64)
        }),
        Value::String(s) => {
            let t = s.trim();
            t.parse::<u64>().ok().or_else(|| {
                t.parse::<f64>()
                    .ok()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0 && f.is_finite())
                    .map(|f| f as u64)
            })
        }
        _ => None,
    }
}

pub fn value_to_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    }
}

pub fn value_to_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    }
}

pub fn value_to_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_i64() {
            Some(0) => Some(false),
            Some(1) => Some(true),
            _ => None,
        },
        Value::String(s) => match s.trim() {
            "0" | "false" | "no" | "off" => Some(false),
            "1" | "true" | "yes" | "on" => Some(true),
            _ => None,
        },
        _ => None,
    }
}

fn lenient<'de, D, T>(d: D, what: &str, f: fn(&Value) -> Option<T>) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
{
    let v = Option::<Value>::deserialize(d)?;
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v) => f(&v)
            .map(Some)
            .ok_or_else(|| D::Error::custom(format!("expected {what}, got {v}"))),
    }
}

fn required<T>(v: Option<T>, what: &str) -> Result<T, String> {
    v.ok_or_else(|| format!("expected {what}, got null"))
}

pub fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    lenient(
        d,
        "an unsigned integer (number or numeric string)",
        value_to_u64,
    )
}

pub fn u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    required(opt_u64(d)?, "an unsigned integer").map_err(D::Error::custom)
}

pub fn opt_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    match opt_u64(d)? {
        None => Ok(None),
        Some(n) => u32::try_from(n)
            .map(Some)
            .map_err(|_| D::Error::custom(format!("{n} does not fit in 32 bits"))),
    }
}

pub fn u32<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    required(opt_u32(d)?, "an unsigned integer").map_err(D::Error::custom)
}

pub fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    lenient(d, "an integer (number or numeric string)", value_to_i64)
}

pub fn opt_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    lenient(d, "a number (or numeric string)", value_to_f64)
}

pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    lenient(
        d,
        "a boolean (0/1, \"0\"/\"1\" or true/false)",
        value_to_bool,
    )
}

/// Absent or null means `false`, as PVE omits unset flags.
pub fn bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(opt_bool(d)?.unwrap_or(false))
}

/// Strings that Perl sometimes sends as numbers (names like `100`, versions, mhz).
pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(Value::Bool(b)) => Ok(Some(if b { "1" } else { "0" }.to_string())),
        Some(other) => Err(D::Error::custom(format!("expected a string, got {other}"))),
    }
}

/// A list of numbers given as numbers or strings (`loadavg` is `["0.10","0.20","0.30"]`).
pub fn vec_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    let v = Option::<Vec<Value>>::deserialize(d)?;
    v.unwrap_or_default()
        .iter()
        .map(|x| {
            value_to_f64(x).ok_or_else(|| D::Error::custom(format!("expected a number, got {x}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    struct T {
        #[serde(default, deserialize_with = "opt_u64")]
        n: Option<u64>,
        #[serde(default, deserialize_with = "bool")]
        b: bool,
        #[serde(default, deserialize_with = "vec_f64")]
        l: Vec<f64>,
    }

    #[test]
    fn accepts_numbers_strings_and_flags() {
        let t: T = serde_json::from_str(r#"{"n":"42","b":"1","l":["0.5",1]}"#).unwrap();
        assert_eq!((t.n, t.b, t.l), (Some(42), true, vec![0.5, 1.0]));
        let t: T = serde_json::from_str(r#"{"n":42.0,"b":true}"#).unwrap();
        assert_eq!((t.n, t.b), (Some(42), true));
        let t: T = serde_json::from_str(r#"{"n":null,"b":0}"#).unwrap();
        assert_eq!((t.n, t.b), (None, false));
        let t: T = serde_json::from_str(r#"{}"#).unwrap();
        assert_eq!((t.n, t.b), (None, false));
    }

    #[test]
    fn rejects_garbage_with_the_value() {
        let e = serde_json::from_str::<T>(r#"{"n":"abc"}"#).unwrap_err();
        assert!(e.to_string().contains("\"abc\""), "{e}");
        let e = serde_json::from_str::<T>(r#"{"b":2}"#).unwrap_err();
        assert!(e.to_string().contains("boolean"), "{e}");
        assert!(serde_json::from_str::<T>(r#"{"n":-1}"#).is_err());
    }
}
