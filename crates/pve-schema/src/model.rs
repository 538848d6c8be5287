//! Typed form of the JSON-Schema-like property definitions in apidata.json, built once at load.
//! Keeps only what validation needs; regexes compile on first use and are cached per property.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use regex::Regex;
use serde_json::Value;

use crate::perl_regex;

/// One property definition (a parameter, a property-string key or an array item).
#[derive(Debug, Default)]
pub(crate) struct Prop {
    pub ty: Option<String>,
    pub optional: bool,
    pub alias: Option<String>,
    pub key_alias: Option<String>,
    pub default_key: bool,
    pub enum_values: Option<Vec<String>>,
    pub minimum: Option<Bound>,
    pub maximum: Option<Bound>,
    pub min_length: Option<usize>,
    pub max_length: Option<usize>,
    pub pattern: Option<Pattern>,
    pub format: Option<Format>,
    pub requires: Option<String>,
    pub items: Option<Box<Prop>>,
    pub one_of: Vec<Prop>,
    pub instance_types: Option<Vec<String>>,
    pub type_property: Option<String>,
}

#[derive(Debug)]
pub(crate) struct Bound {
    pub value: f64,
    /// How Perl prints the bound inside messages ("100", "0", "8192").
    pub text: String,
}

#[derive(Debug)]
pub(crate) enum Format {
    Named(String),
    /// A property string: comma-separated `key=value` pairs with their own sub-schema.
    Properties(BTreeMap<String, Prop>),
}

#[derive(Debug)]
pub(crate) struct Pattern {
    pub source: String,
    compiled: OnceLock<Option<Regex>>,
}

impl Pattern {
    fn new(source: String) -> Self {
        Pattern {
            source,
            compiled: OnceLock::new(),
        }
    }

    /// The anchored regex, or `None` when the Perl pattern cannot be translated: such a pattern
    /// accepts everything (the schema tests assert that none exists in the shipped files).
    pub fn regex(&self) -> Option<&Regex> {
        self.compiled
            .get_or_init(|| perl_regex::anchored(&self.source).ok())
            .as_ref()
    }
}

/// The `parameters` object of one endpoint.
#[derive(Debug, Default)]
pub(crate) struct ParamSet {
    /// Plain parameters by name.
    pub props: BTreeMap<String, Prop>,
    /// Collapsed indexed parameters (`net[n]`) by base name (`net`).
    pub indexed: BTreeMap<String, Prop>,
    /// `additionalProperties: 0` — unknown parameters are errors.
    pub closed: bool,
}

/// Perl truthiness of a JSON value as the schema dump encodes flags (1, "1", 0, true, null).
pub(crate) fn truthy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => !s.is_empty() && s != "0",
        Some(Value::Array(_)) | Some(Value::Object(_)) => true,
    }
}

/// How Perl stringifies a scalar decoded from JSON (numbers lose a ".0", booleans are 1/"").
pub(crate) fn perl_string(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Bool(true) => "1".to_string(),
        Value::Bool(false) => String::new(),
        Value::Number(n) => perl_number(n),
        Value::String(s) => s.clone(),
        Value::Array(_) => "ARRAY".to_string(),
        Value::Object(_) => "HASH".to_string(),
    }
}

pub(crate) fn perl_number(n: &serde_json::Number) -> String {
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    match n.as_f64() {
        // Perl prints whole floats without a fraction; %.15g keeps integers exact below 1e15.
        Some(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e15 => format!("{f:.0}"),
        Some(f) => f.to_string(),
        None => n.to_string(),
    }
}

fn string_field(obj: &serde_json::Map<String, Value>, key: &str) -> Option<String> {
    obj.get(key).and_then(Value::as_str).map(str::to_string)
}

fn usize_field(obj: &serde_json::Map<String, Value>, key: &str) -> Option<usize> {
    match obj.get(key)? {
        Value::Number(n) => n
            .as_u64()
            .map(|u| u as usize)
            .or_else(|| n.as_f64().map(|f| f.max(0.0) as usize)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn bound_field(obj: &serde_json::Map<String, Value>, key: &str) -> Option<Bound> {
    let v = obj.get(key)?;
    let text = perl_string(v);
    let value = match v {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    Some(Bound { value, text })
}

impl Prop {
    pub(crate) fn from_json(v: &Value) -> Prop {
        let Some(obj) = v.as_object() else {
            return Prop {
                optional: true,
                ..Prop::default()
            };
        };
        let format = match obj.get("format") {
            Some(Value::String(name)) => Some(Format::Named(name.clone())),
            Some(Value::Object(keys)) => Some(Format::Properties(
                keys.iter()
                    .map(|(k, sub)| (k.clone(), Prop::from_json(sub)))
                    .collect(),
            )),
            _ => None,
        };
        Prop {
            // A type list (`["string", "null"]`) never occurs in request schemas; treat it as untyped.
            ty: string_field(obj, "type"),
            optional: truthy(obj.get("optional")),
            alias: string_field(obj, "alias"),
            key_alias: string_field(obj, "keyAlias"),
            default_key: truthy(obj.get("default_key")),
            enum_values: obj
                .get("enum")
                .and_then(Value::as_array)
                .map(|a| a.iter().map(perl_string).collect()),
            minimum: bound_field(obj, "minimum"),
            maximum: bound_field(obj, "maximum"),
            min_length: usize_field(obj, "minLength"),
            max_length: usize_field(obj, "maxLength"),
            pattern: string_field(obj, "pattern").map(Pattern::new),
            format,
            requires: string_field(obj, "requires"),
            items: obj
                .get("items")
                .filter(|i| i.is_object())
                .map(|i| Box::new(Prop::from_json(i))),
            one_of: obj
                .get("oneOf")
                .and_then(Value::as_array)
                .map(|a| a.iter().map(Prop::from_json).collect())
                .unwrap_or_default(),
            instance_types: obj
                .get("instance-types")
                .and_then(Value::as_array)
                .map(|a| a.iter().map(perl_string).collect()),
            type_property: string_field(obj, "type-property"),
        }
    }

    /// Every Perl pattern in this property and below (for the schema tests).
    pub(crate) fn patterns<'a>(&'a self, out: &mut Vec<&'a Pattern>) {
        out.extend(self.pattern.iter());
        if let Some(Format::Properties(keys)) = &self.format {
            keys.values().for_each(|p| p.patterns(out));
        }
        if let Some(items) = &self.items {
            items.patterns(out);
        }
        self.one_of.iter().for_each(|p| p.patterns(out));
    }

    /// Every named format used by this property and below (for the schema tests).
    pub(crate) fn formats<'a>(&'a self, out: &mut Vec<&'a str>) {
        match &self.format {
            Some(Format::Named(name)) => out.push(name),
            Some(Format::Properties(keys)) => keys.values().for_each(|p| p.formats(out)),
            None => {}
        }
        if let Some(items) = &self.items {
            items.formats(out);
        }
        self.one_of.iter().for_each(|p| p.formats(out));
    }
}

impl ParamSet {
    pub(crate) fn from_json(v: Option<&Value>) -> ParamSet {
        let Some(obj) = v.and_then(Value::as_object) else {
            return ParamSet::default();
        };
        let mut set = ParamSet {
            // RESTHandler leaves additionalProperties undefined for some SDN endpoints: open.
            closed: obj.get("additionalProperties").is_some_and(|a| {
                matches!(a, Value::Number(_) | Value::Bool(_) | Value::String(_))
                    && !truthy(Some(a))
            }),
            ..ParamSet::default()
        };
        if let Some(props) = obj.get("properties").and_then(Value::as_object) {
            for (name, def) in props {
                let prop = Prop::from_json(def);
                match name.strip_suffix("[n]") {
                    Some(base) => set.indexed.insert(base.to_string(), prop),
                    None => set.props.insert(name.clone(), prop),
                };
            }
        }
        set
    }
}
