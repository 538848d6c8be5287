//! Request parameters as pveproxy reads them: the query string, plus a urlencoded body (or a
//! JSON body when the Content-Type is exactly application/json); query values override body.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::ApiError;

pub struct RawParams {
    /// Form and query values (query overriding), repeated keys joined with NUL.
    form: BTreeMap<String, String>,
    /// A JSON body, with the query values merged in as strings.
    json: Option<Map<String, Value>>,
}

/// `%XX` decoding (and `+` left alone: this is for paths and cookies, not forms).
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let Some(v) = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .filter(|h| h.chars().all(|c| c.is_ascii_hexdigit()))
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn json_to_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(b) => if *b { "1" } else { "0" }.to_string(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Joins a repeated key's values with NUL, as pve-http-server's decode_urlencoded does (the
/// `*-list` formats split on it again).
fn decode_pairs(pairs: Vec<(String, String)>) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in pairs {
        out.entry(k)
            .and_modify(|old| {
                old.push('\0');
                old.push_str(&v);
            })
            .or_insert(v);
    }
    out
}

impl RawParams {
    pub fn parse(query: &str, content_type: &str, body: &[u8]) -> Result<RawParams, ApiError> {
        let query_pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let query = decode_pairs(query_pairs);
        let ct = content_type.trim().to_ascii_lowercase();
        if ct == "application/json" && !body.is_empty() {
            let value: Value = serde_json::from_slice(body).map_err(|e| ApiError::Status {
                code: 400,
                message: format!("unable to parse JSON body - {e}"),
            })?;
            let Value::Object(mut map) = value else {
                return Err(ApiError::Status {
                    code: 400,
                    message: "JSON body must be an object".into(),
                });
            };
            for (k, v) in query {
                map.insert(k, Value::String(v));
            }
            return Ok(RawParams {
                form: BTreeMap::new(),
                json: Some(map),
            });
        }
        let mut form = decode_pairs(
            url::form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        );
        // Query values override the body's, as in extract_params.
        form.extend(query);
        Ok(RawParams { form, json: None })
    }

    /// One string per key; JSON booleans become 0/1.
    pub fn merged(&self) -> BTreeMap<String, String> {
        match &self.json {
            Some(map) => map
                .iter()
                .map(|(k, v)| (k.clone(), json_to_string(v)))
                .collect(),
            None => self.form.clone(),
        }
    }

    /// `raw_path` as sent (percent-encoded, without the query); the schema crate decodes it.
    pub fn validate(
        &self,
        schema: &pve_schema::Schema,
        method: &str,
        raw_path: &str,
    ) -> Result<pve_schema::Validated, pve_schema::Rejection> {
        match &self.json {
            Some(map) => schema.validate_json(method, raw_path, map),
            None => {
                let pairs: Vec<(String, String)> = self
                    .form
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                schema.validate(method, raw_path, &pairs)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode() {
        assert_eq!(percent_decode("UPID%3Apve%3A"), "UPID:pve:");
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%zz"), "%zz");
    }

    #[test]
    fn query_overrides_body_and_json_bools_become_digits() {
        let p = RawParams::parse("a=2", "", b"a=1&b=x").unwrap();
        assert_eq!(p.merged()["a"], "2");
        let j = RawParams::parse("", "application/json", br#"{"start":true,"n":3}"#).unwrap();
        assert_eq!(j.merged()["start"], "1");
        assert_eq!(j.merged()["n"], "3");
        let r = RawParams::parse("", "", b"delete=a&delete=b").unwrap();
        assert_eq!(r.merged()["delete"], "a\0b");
    }
}
