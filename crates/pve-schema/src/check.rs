//! The parameter checks of PVE::JSONSchema (check_object / check_prop / parse_property_string)
//! and the request plumbing of pve-http-server around them, re-implemented with the same
//! order of checks and the same messages. Errors are collected per key, never stop at the first.
//! Hand-written: no crate implements PVE's JSON-Schema dialect (property strings, Perl typing).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::Rejection;
use crate::formats;
use crate::model::{perl_number, Format, ParamSet, Prop};
use crate::schema::{Endpoint, Schema};
use crate::Validated;

/// A parameter value as the Perl validator sees it.
#[derive(Debug, Clone)]
pub(crate) enum Val {
    /// undef: a form field sent empty (`x=`), or JSON null.
    Undef,
    /// A plain scalar: form strings, JSON strings and JSON numbers alike.
    Str(String),
    /// A JSON true/false (a blessed JSON::PP::Boolean reference in Perl).
    Bool(bool),
    Array(Vec<Val>),
    Hash,
}

impl Val {
    fn from_json(v: &Value) -> Val {
        match v {
            Value::Null => Val::Undef,
            Value::Bool(b) => Val::Bool(*b),
            Value::Number(n) => Val::Str(perl_number(n)),
            Value::String(s) => Val::Str(s.clone()),
            Value::Array(items) => Val::Array(items.iter().map(Val::from_json).collect()),
            Value::Object(_) => Val::Hash,
        }
    }

    fn is_defined(&self) -> bool {
        !matches!(self, Val::Undef)
    }

    /// Perl's `"$value"` for comparisons with URI parameters.
    fn perl_text(&self) -> String {
        match self {
            Val::Undef => String::new(),
            Val::Str(s) => s.clone(),
            Val::Bool(true) => "1".to_string(),
            Val::Bool(false) => "0".to_string(),
            Val::Array(_) => "ARRAY".to_string(),
            Val::Hash => "HASH".to_string(),
        }
    }

    fn truthy(&self) -> bool {
        match self {
            Val::Undef => false,
            Val::Str(s) => formats::perl_truthy(s),
            Val::Bool(b) => *b,
            Val::Array(_) | Val::Hash => true,
        }
    }

    /// `ref($value)` for a reference, None for a plain scalar.
    fn ref_kind(&self) -> Option<&'static str> {
        match self {
            Val::Undef | Val::Str(_) => None,
            Val::Bool(_) => Some("JSON::PP::Boolean"),
            Val::Array(_) => Some("ARRAY"),
            Val::Hash => Some("HASH"),
        }
    }
}

type Errors = BTreeMap<String, String>;

/// PVE joins several messages for one key with a literal backslash-n (`join('\n', ...)` in
/// single quotes), not a newline.
fn add_error(errors: &mut Errors, path: &str, msg: impl Into<String>) {
    let path = if path.is_empty() { "_root" } else { path };
    let msg = msg.into();
    errors
        .entry(path.to_string())
        .and_modify(|old| {
            old.push_str("\\n");
            old.push_str(&msg);
        })
        .or_insert(msg);
}

impl Schema {
    /// Form/query-style request (all values are strings, as on the wire; booleans must be "0"/"1").
    /// `path` is the concrete path after /api2/json, e.g. "/nodes/pve/lxc/100/config"; it may be
    /// percent-encoded and may carry a `?query`, whose values override `params` like on PVE.
    pub fn validate(
        &self,
        method: &str,
        path: &str,
        params: &[(String, String)],
    ) -> Result<Validated, Rejection> {
        let values = decode_form(params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        self.check_request(method, path, values, Wire::Form)
    }

    /// JSON-body request: booleans may be true/false, numbers may be JSON numbers.
    pub fn validate_json(
        &self,
        method: &str,
        path: &str,
        params: &serde_json::Map<String, Value>,
    ) -> Result<Validated, Rejection> {
        let values = params
            .iter()
            .map(|(k, v)| (k.clone(), Val::from_json(v)))
            .collect();
        self.check_request(method, path, values, Wire::Json)
    }

    fn check_request(
        &self,
        method: &str,
        path: &str,
        mut values: BTreeMap<String, Val>,
        wire: Wire,
    ) -> Result<Validated, Rejection> {
        // A query string in `path` is merged over the body, as pve-http-server's extract_params does.
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        if !query.is_empty() {
            let pairs: Vec<(String, String)> = query
                .split(['&', ';'])
                .filter(|kv| !kv.is_empty())
                .map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                    (form_unescape(k), form_unescape(v))
                })
                .collect();
            values.extend(decode_form(
                pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            ));
        }
        // pve-http-server unescapes the whole path before splitting it.
        let decoded = percent_encoding::percent_decode_str(path)
            .decode_utf8_lossy()
            .into_owned();
        let Some((endpoint, path_params)) = self.route(method, &decoded) else {
            return Err(Rejection::NotImplemented {
                method: method.to_string(),
                path: decoded,
            });
        };

        // rest_handler: a body/query value for a URI parameter must equal it; the first
        // conflict (in sorted key order) aborts before schema validation.
        for (key, value) in &values {
            if let Some(uri_value) = path_params.get(key) {
                if value.perl_text() != *uri_value {
                    let mut errors = Errors::new();
                    errors.insert(
                        key.clone(),
                        "duplicate parameter (already defined in URI) with conflicting values!"
                            .to_string(),
                    );
                    return Err(Rejection::Parameters { errors });
                }
            }
        }
        for (key, value) in &path_params {
            values.insert(key.clone(), Val::Str(value.clone()));
        }

        normalize_legacy_formats(&endpoint.params, &mut values, wire);

        let mut errors = Errors::new();
        check_params(endpoint, &values, &mut errors);
        if !errors.is_empty() {
            return Err(Rejection::Parameters { errors });
        }
        Ok(Validated {
            template: endpoint.path.clone(),
            path_params,
            method: endpoint.method.clone(),
        })
    }
}

/// decode_urlencoded: `k=` yields undef (Perl's split drops the empty field) and a repeated key
/// is joined with NUL, which the *-list formats split again.
fn decode_form<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> BTreeMap<String, Val> {
    let mut values: BTreeMap<String, Val> = BTreeMap::new();
    for (key, value) in pairs {
        let new = if value.is_empty() {
            Val::Undef
        } else {
            match values.get(key) {
                Some(Val::Str(old)) => Val::Str(format!("{old}\0{value}")),
                _ => Val::Str(value.to_string()),
            }
        };
        values.insert(key.to_string(), new);
    }
    values
}

/// `+` is a space in form encoding, then %XX escapes.
fn form_unescape(s: &str) -> String {
    let spaced = s.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

#[derive(Clone, Copy, PartialEq)]
enum Wire {
    Form,
    Json,
}

/// RESTHandler's $normalize_legacy_param_formats: arrays for `-list` strings are joined with ',',
/// scalars for `array` parameters become one-element arrays. A form value holding NULs (a repeated
/// key) is split into items instead, which is what a form client means by repeating the key.
fn normalize_legacy_formats(params: &ParamSet, values: &mut BTreeMap<String, Val>, wire: Wire) {
    for (name, prop) in &params.props {
        let Some(value) = values.get_mut(name) else {
            continue;
        };
        if !value.truthy() {
            continue;
        }
        let ty = prop.ty.as_deref().unwrap_or("");
        let is_list_format = matches!(&prop.format, Some(Format::Named(f)) if f.ends_with("-list"));
        match value {
            Val::Array(items) if ty == "string" && is_list_format => {
                let joined = items
                    .iter()
                    .map(Val::perl_text)
                    .collect::<Vec<_>>()
                    .join(",");
                *value = Val::Str(joined);
            }
            Val::Str(s) if ty == "array" => {
                *value = if wire == Wire::Form && s.contains('\0') {
                    Val::Array(s.split('\0').map(|p| Val::Str(p.to_string())).collect())
                } else {
                    Val::Array(vec![Val::Str(s.clone())])
                };
            }
            _ => {}
        }
    }
}

/// Index ranges of the collapsed `name[n]` parameters. The schema drops them; these are the
/// constants of pve-container (LXC/Config.pm), qemu-server, pve-manager (NodeConfig.pm) and
/// pve-cluster (corosync links) for PVE 8 and 9.
fn index_count(base: &str, template: &str) -> Option<u32> {
    let lxc = template.contains("/lxc");
    Some(match base {
        "net" => 32,
        "mp" | "unused" | "dev" if lxc => 256,
        "unused" => 256,
        "ide" => 4,
        "sata" => 6,
        "scsi" => 31,
        "virtio" => 16,
        "usb" => 14,
        "hostpci" => 16,
        "serial" => 4,
        "parallel" => 3,
        "numa" => 8,
        "ipconfig" => 32,
        "virtiofs" => 10,
        "acmedomain" => 6,
        "link" => 8,
        // A collapsed name this table does not know (a future schema) accepts any index.
        _ => return None,
    })
}

/// Resolves a wire name like "net3" to its collapsed schema entry, honouring the index range.
pub(crate) fn indexed_prop<'a>(
    params: &'a ParamSet,
    wire_name: &str,
    template: &str,
) -> Option<(&'a str, &'a Prop)> {
    let digits_at = wire_name.find(|c: char| c.is_ascii_digit())?;
    let (base, idx) = wire_name.split_at(digits_at);
    // api_clone_schema collapses names matching ^([a-z]+)(\d+)$; the real keys have no leading zeros.
    if base.is_empty()
        || !base.bytes().all(|b| b.is_ascii_lowercase())
        || !idx.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    if idx.len() > 1 && idx.starts_with('0') {
        return None;
    }
    let (name, prop) = params.indexed.get_key_value(base)?;
    let n: u32 = idx.parse().ok()?;
    match index_count(base, template) {
        Some(count) if n >= count => None,
        _ => Some((name.as_str(), prop)),
    }
}

fn resolve<'a>(params: &'a ParamSet, key: &str, template: &str) -> Option<&'a Prop> {
    params
        .props
        .get(key)
        .or_else(|| indexed_prop(params, key, template).map(|(_, p)| p))
}

/// check_object for the top-level parameters of one endpoint.
fn check_params(endpoint: &Endpoint, values: &BTreeMap<String, Val>, errors: &mut Errors) {
    let params = &endpoint.params;
    let instance_type = |prop: &Prop| -> Option<String> {
        let tp = prop.type_property.as_deref()?;
        match values.get(tp) {
            Some(v) if v.is_defined() => Some(v.perl_text()),
            _ => None,
        }
    };
    for (name, prop) in &params.props {
        check_prop(
            values.get(name),
            prop,
            name,
            errors,
            instance_type(prop).as_deref(),
        );
    }
    for (key, value) in values {
        if params.props.contains_key(key) {
            continue;
        }
        if let Some((_, prop)) = indexed_prop(params, key, &endpoint.path) {
            check_prop(
                Some(value),
                prop,
                key,
                errors,
                instance_type(prop).as_deref(),
            );
        }
    }
    for key in values.keys() {
        if let Some(prop) = resolve(params, key, &endpoint.path) {
            check_requires(
                values.contains_key_defined(prop.requires.as_deref()),
                prop,
                "",
                key,
                errors,
            );
            if !prop.one_of.is_empty() && !one_of_matches(prop, instance_type(prop).as_deref()) {
                // Like Perl: no matching oneOf variant falls through to the additional-property rule.
                if params.closed {
                    add_error(errors, key, NOT_IN_SCHEMA);
                }
            }
            continue;
        }
        if params.closed {
            add_error(errors, key, NOT_IN_SCHEMA);
        }
    }
}

const NOT_IN_SCHEMA: &str =
    "property is not defined in schema and the schema does not allow additional properties";

trait DefinedLookup {
    fn contains_key_defined(&self, key: Option<&str>) -> Option<bool>;
}

impl DefinedLookup for BTreeMap<String, Val> {
    /// None when there is no `requires`; else whether the required key holds a defined value.
    fn contains_key_defined(&self, key: Option<&str>) -> Option<bool> {
        key.map(|k| self.get(k).is_some_and(Val::is_defined))
    }
}

fn check_requires(
    present: Option<bool>,
    prop: &Prop,
    parent: &str,
    key: &str,
    errors: &mut Errors,
) {
    if present != Some(false) {
        return;
    }
    let Some(required) = prop.requires.as_deref() else {
        return;
    };
    let join = |k: &str| {
        if parent.is_empty() {
            k.to_string()
        } else {
            format!("{parent}.{k}")
        }
    };
    add_error(
        errors,
        &join(required),
        format!("missing property - '{}' requires this property", join(key)),
    );
}

fn one_of_matches(prop: &Prop, instance_type: Option<&str>) -> bool {
    prop.one_of
        .iter()
        .any(|alt| match (&alt.instance_types, instance_type) {
            (Some(types), Some(it)) => types.iter().any(|t| t == it),
            (Some(_), None) => false,
            (None, _) => true,
        })
}

/// check_prop: one value against one property schema.
fn check_prop(
    value: Option<&Val>,
    prop: &Prop,
    path: &str,
    errors: &mut Errors,
    instance_type: Option<&str>,
) {
    let mut optional_for_type = false;
    if !prop.one_of.is_empty() {
        if prop.type_property.is_some() {
            optional_for_type = true;
            if let Some(it) = instance_type {
                for alt in &prop.one_of {
                    let Some(types) = &alt.instance_types else {
                        add_error(
                            errors,
                            path,
                            "missing 'instance-types' in oneOf alternative",
                        );
                        return;
                    };
                    if !types.iter().any(|t| t == it) {
                        continue;
                    }
                    optional_for_type = alt.optional;
                    check_prop(value, alt, path, errors, None);
                }
            }
        } else {
            // Untyped oneOf (not used by the shipped schemas): valid if any alternative passes.
            let any_valid = prop.one_of.iter().any(|alt| {
                let mut scratch = Errors::new();
                check_prop(value, alt, path, &mut scratch, None);
                scratch.is_empty()
            });
            if !any_valid {
                // PVE-like wording; PVE's own aggregation of these errors is broken upstream.
                add_error(
                    errors,
                    path,
                    "value does not match any of the allowed variants",
                );
            }
        }
    } else if instance_type.is_some() && prop.instance_types.is_none() {
        add_error(errors, path, "missing 'instance-types'");
        return;
    }

    let value = match value {
        Some(v) if v.is_defined() => v,
        _ => {
            if prop.ty.as_deref() == Some("null") {
                return;
            }
            if !prop.optional && prop.alias.is_none() && !optional_for_type {
                add_error(errors, path, "property is missing and it is not optional");
            }
            return;
        }
    };

    if !check_type(path, prop.ty.as_deref(), value, errors) {
        return;
    }

    let text = match value {
        Val::Array(items) => {
            if let Some(item_schema) = &prop.items {
                for (i, item) in items.iter().enumerate() {
                    check_prop(
                        Some(item),
                        item_schema,
                        &format!("{path}[{i}]"),
                        errors,
                        None,
                    );
                }
            }
            return;
        }
        // Objects (never used in request schemas) and JSON booleans get no further checks in PVE.
        Val::Hash | Val::Bool(_) | Val::Undef => return,
        Val::Str(s) => s.as_str(),
    };

    if let Some(format) = &prop.format {
        let result = match format {
            Format::Named(name) => formats::check_named(name, text),
            Format::Properties(keys) => check_property_string(keys, text, path),
        };
        if let Err(msg) = result {
            add_error(errors, path, format!("invalid format - {msg}"));
            return;
        }
    }

    if let Some(pattern) = &prop.pattern {
        if pattern.regex().is_some_and(|re| !re.is_match(text)) {
            add_error(errors, path, "value does not match the regex pattern");
            return;
        }
    }

    let len = text.chars().count();
    if let Some(max) = prop.max_length {
        if len > max {
            add_error(
                errors,
                path,
                format!("value may only be {max} characters long"),
            );
            return;
        }
    }
    if let Some(min) = prop.min_length {
        if len < min {
            add_error(
                errors,
                path,
                format!("value must be at least {min} characters long"),
            );
            return;
        }
    }

    if let Some(number) = perl_number_value(text) {
        if let Some(max) = &prop.maximum {
            if number > max.value {
                add_error(
                    errors,
                    path,
                    format!("value must have a maximum value of {}", max.text),
                );
                return;
            }
        }
        if let Some(min) = &prop.minimum {
            if number < min.value {
                add_error(
                    errors,
                    path,
                    format!("value must have a minimum value of {}", min.text),
                );
                return;
            }
        }
    }

    if let Some(allowed) = &prop.enum_values {
        if !allowed.iter().any(|a| a == text) {
            add_error(
                errors,
                path,
                format!(
                    "value '{text}' does not have a value in the enumeration '{}'",
                    allowed.join(", ")
                ),
            );
        }
    }
}

/// check_type; false when an error was recorded.
fn check_type(path: &str, ty: Option<&str>, value: &Val, errors: &mut Errors) -> bool {
    let Some(ty) = ty else { return true };
    let fail = |errors: &mut Errors, msg: String| {
        add_error(errors, path, msg);
        false
    };
    match ty {
        "any" => true,
        "null" => fail(
            errors,
            "type check ('null') failed - value is not null".to_string(),
        ),
        "array" | "object" | "coderef" => {
            let ok = matches!(
                (ty, value),
                ("array", Val::Array(_)) | ("object", Val::Hash)
            );
            ok || fail(errors, format!("type check ('{ty}') failed"))
        }
        _ => {
            if let Some(kind) = value.ref_kind() {
                if ty == "boolean" && matches!(value, Val::Bool(_)) {
                    return true;
                }
                return fail(errors, format!("type check ('{ty}') failed - got {kind}"));
            }
            let s = match value {
                Val::Str(s) => s.as_str(),
                _ => "",
            };
            let ok = match ty {
                "boolean" => s == "1" || s == "0",
                "integer" => is_integer(s),
                "number" => is_number(s),
                _ => true, // string, and types PVE does not verify
            };
            ok || fail(errors, format!("type check ('{ty}') failed - got '{s}'"))
        }
    }
}

/// PVE's is_integer: ^[+-]?\d+$
fn is_integer(s: &str) -> bool {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// PVE's is_number: ^[+-]?(\d+\.\d+|\d+\.|\.\d+|\d+)([eE][+-]?\d+)?$
fn is_number(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some((int, frac)) => (!int.is_empty() || !frac.is_empty()) && digits(int) && digits(frac),
        None => !mantissa.is_empty() && digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exponent_ok
}

fn perl_number_value(s: &str) -> Option<f64> {
    if !is_number(s) {
        return None;
    }
    let trimmed = s.strip_prefix('+').unwrap_or(s);
    trimmed.parse::<f64>().ok()
}

/// parse_property_string + check_object for an inline (hash) format. `Err` is the text PVE puts
/// after "invalid format - ": a `die` message, or "format error\n" plus one "key: msg\n" line per
/// failing sub-key (sorted here; Perl's hash order is random).
fn check_property_string(
    keys: &BTreeMap<String, Prop>,
    data: &str,
    path: &str,
) -> Result<(), String> {
    let mut res: BTreeMap<String, Val> = BTreeMap::new();
    let mut default_key: Option<&str> = None;
    for part in data.split(',') {
        if part.trim().is_empty() {
            continue;
        }
        if let Some((k, v)) = split_key_value(part) {
            if res.get(k).is_some_and(Val::is_defined) {
                return Err(format!(
                    "duplicate key in comma-separated list property: {k}\n"
                ));
            }
            let mut key = k.to_string();
            let mut schema = keys.get(k);
            if let Some(alias) = schema.and_then(|s| s.alias.as_deref()) {
                if let Some(key_alias) = schema.and_then(|s| s.key_alias.as_deref()) {
                    if res.contains_key(key_alias) {
                        return Err(format!("key alias '{key_alias}' is already defined\n"));
                    }
                    res.insert(key_alias.to_string(), Val::Str(k.to_string()));
                }
                key = alias.to_string();
                schema = keys.get(alias);
            }
            let Some(schema) = schema else {
                return Err(format!(
                    "invalid key in comma-separated list property: {key}\n"
                ));
            };
            let value = if schema.ty.as_deref() == Some("boolean") {
                parse_boolean(v)
            } else {
                v.to_string()
            };
            res.insert(key, Val::Str(value));
        } else if !part.contains('=') {
            if let Some(dk) = default_key {
                return Err(format!(
                    "duplicate key in comma-separated list property: {dk}\n"
                ));
            }
            let Some(dk) = keys
                .iter()
                .find(|(_, p)| p.default_key)
                .map(|(k, _)| k.as_str())
            else {
                return Err(
                    "value without key, but schema does not define a default key\n".to_string(),
                );
            };
            default_key = Some(dk);
            if res.get(dk).is_some_and(Val::truthy) {
                return Err(format!(
                    "duplicate key in comma-separated list property: {dk}\n"
                ));
            }
            res.insert(dk.to_string(), Val::Str(part.to_string()));
        } else {
            return Err("missing key in comma-separated list property\n".to_string());
        }
    }

    let mut errors = Errors::new();
    for (k, prop) in keys {
        check_prop(res.get(k), prop, &format!("{path}.{k}"), &mut errors, None);
    }
    for k in res.keys() {
        if let Some(prop) = keys.get(k) {
            check_requires(
                res.contains_key_defined(prop.requires.as_deref()),
                prop,
                path,
                k,
                &mut errors,
            );
        }
    }
    if errors.is_empty() {
        return Ok(());
    }
    let mut msg = String::from("format error\n");
    for (k, m) in &errors {
        msg.push_str(&format!("{k}: {m}\n"));
    }
    Err(msg)
}

/// `^([^=]+)=(.+)$` without /s: `.` does not match a newline, `$` may sit before a final one.
fn split_key_value(part: &str) -> Option<(&str, &str)> {
    let (k, v) = part.split_once('=')?;
    let v_body = v.strip_suffix('\n').unwrap_or(v);
    if k.is_empty() || v_body.is_empty() || v_body.contains('\n') {
        return None;
    }
    Some((k, v_body))
}

/// parse_boolean: 1/on/yes/true and 0/off/no/false, any case; anything else stays as it is.
fn parse_boolean(v: &str) -> String {
    let lower = v.to_ascii_lowercase();
    match lower.as_str() {
        "1" | "on" | "yes" | "true" => "1".to_string(),
        "0" | "off" | "no" | "false" => "0".to_string(),
        _ => v.to_string(),
    }
}

/// Splits a PVE property string ("name=eth0,bridge=vmbr0,ip=dhcp" or "local-lvm:8,size=8G") into
/// ordered (key, value) pairs, putting a bare value under `default_key`. Errors on duplicate keys
/// and on a bare value without a default key, with PVE's messages.
pub fn split_property_string(
    value: &str,
    default_key: Option<&str>,
) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut saw_default = false;
    for part in value.split(',') {
        if part.trim().is_empty() {
            continue;
        }
        let (k, v) = if let Some((k, v)) = split_key_value(part) {
            (k.to_string(), v.to_string())
        } else if !part.contains('=') {
            let Some(dk) = default_key else {
                return Err(
                    "value without key, but schema does not define a default key".to_string(),
                );
            };
            if saw_default {
                return Err(format!(
                    "duplicate key in comma-separated list property: {dk}"
                ));
            }
            saw_default = true;
            (dk.to_string(), part.to_string())
        } else {
            return Err("missing key in comma-separated list property".to_string());
        };
        if out.iter().any(|(existing, _)| *existing == k) {
            return Err(format!(
                "duplicate key in comma-separated list property: {k}"
            ));
        }
        out.push((k, v));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_follow_perl_rules() {
        for ok in ["1", "+1", "-0", "007"] {
            assert!(is_integer(ok), "{ok}");
        }
        for bad in ["", "1.0", "0x10", " 1", "1 "] {
            assert!(!is_integer(bad), "{bad:?}");
        }
        for ok in ["1", "1.", ".5", "1.5e3", "-2E-2"] {
            assert!(is_number(ok), "{ok}");
        }
        for bad in [".", "e5", "1e", "1.2.3", "inf", "NaN"] {
            assert!(!is_number(bad), "{bad:?}");
        }
    }

    #[test]
    fn split_property_string_orders_and_rejects() {
        let pairs = split_property_string("local-lvm:8,size=8G", Some("volume"));
        assert_eq!(
            pairs,
            Ok(vec![
                ("volume".to_string(), "local-lvm:8".to_string()),
                ("size".to_string(), "8G".to_string())
            ])
        );
        assert_eq!(
            split_property_string("name=eth0,,bridge=vmbr0", None),
            Ok(vec![
                ("name".to_string(), "eth0".to_string()),
                ("bridge".to_string(), "vmbr0".to_string())
            ])
        );
        assert_eq!(
            split_property_string("a=1,a=2", None),
            Err("duplicate key in comma-separated list property: a".to_string())
        );
        assert_eq!(
            split_property_string("x,y", Some("volume")),
            Err("duplicate key in comma-separated list property: volume".to_string())
        );
        assert_eq!(
            split_property_string("bare", None),
            Err("value without key, but schema does not define a default key".to_string())
        );
        assert_eq!(
            split_property_string("k=", None),
            Err("missing key in comma-separated list property".to_string())
        );
    }

    #[test]
    fn repeated_errors_join_with_literal_backslash_n() {
        let mut errors = Errors::new();
        add_error(&mut errors, "a", "one");
        add_error(&mut errors, "a", "two");
        add_error(&mut errors, "", "root");
        assert_eq!(errors.get("a").map(String::as_str), Some("one\\ntwo"));
        assert_eq!(errors.get("_root").map(String::as_str), Some("root"));
    }
}
