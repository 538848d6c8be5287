//! An honest tiny engine: a document matches when every query word is a prefix of some word
//! of its searchable fields (case-insensitive); hits come in document order, no ranking, no
//! typo tolerance. Filters: `attr = value`, `attr != value`, joined by `AND`, or Meilisearch's
//! array form (outer array AND, inner array OR).

use crate::error::ApiError;
use crate::store::Index;
use serde_json::{Map, Value};

fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

/// Every string and number inside `v`.
fn texts(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Number(n) => out.push(n.to_string()),
        Value::Array(a) => a.iter().for_each(|x| texts(x, out)),
        Value::Object(o) => o.values().for_each(|x| texts(x, out)),
        _ => {}
    }
}

/// The value at a dotted path (`a.b`), or the top-level field.
fn lookup<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
    doc.get(path)
        .or_else(|| path.split('.').try_fold(doc, |v, part| v.get(part)))
}

fn matches_query(searchable: &[String], doc: &Value, query_words: &[String]) -> bool {
    if query_words.is_empty() {
        return true;
    }
    let mut found = Vec::new();
    if searchable.iter().any(|a| a == "*") {
        texts(doc, &mut found);
    } else {
        searchable
            .iter()
            .filter_map(|a| lookup(doc, a))
            .for_each(|v| texts(v, &mut found));
    }
    let doc_words: Vec<String> = found.iter().flat_map(|t| words(t)).collect();
    query_words
        .iter()
        .all(|q| doc_words.iter().any(|w| w.starts_with(q.as_str())))
}

/// One `attr = value` / `attr != value` condition.
struct Condition {
    attr: String,
    value: String,
    negated: bool,
}

impl Condition {
    fn holds(&self, doc: &Value) -> bool {
        let equal = |v: &Value| match v {
            Value::String(s) => *s == self.value,
            Value::Number(n) => n.to_string() == self.value,
            Value::Bool(b) => b.to_string() == self.value,
            _ => false,
        };
        let hit = match lookup(doc, &self.attr) {
            Some(Value::Array(items)) => items.iter().any(equal),
            Some(v) => equal(v),
            None => false,
        };
        hit != self.negated
    }
}

/// A filter in conjunctive normal form: every group must have a condition that holds.
pub struct Filter(Vec<Vec<Condition>>);

impl Filter {
    pub fn parse(filter: &Value, index: &Index) -> Result<Option<Filter>, ApiError> {
        let filterable = index.list_setting("filterableAttributes");
        let groups = match filter {
            Value::Null => return Ok(None),
            Value::String(s) if s.trim().is_empty() => return Ok(None),
            Value::String(s) => split_and(s)
                .map(|c| parse_condition(c, &filterable).map(|c| vec![c]))
                .collect(),
            Value::Array(items) => items
                .iter()
                .map(|item| match item {
                    Value::String(s) => Ok(vec![parse_condition(s, &filterable)?]),
                    Value::Array(any) => any
                        .iter()
                        .map(|x| {
                            x.as_str()
                                .ok_or_else(|| bad_filter("filter array items must be strings"))
                        })
                        .map(|s| parse_condition(s?, &filterable))
                        .collect(),
                    _ => Err(bad_filter(
                        "filter array items must be strings or arrays of strings",
                    )),
                })
                .collect(),
            _ => Err(bad_filter("`filter` must be a string or an array")),
        }?;
        Ok(Some(Filter(groups)))
    }

    pub fn holds(&self, doc: &Value) -> bool {
        self.0.iter().all(|any| any.iter().any(|c| c.holds(doc)))
    }
}

fn bad_filter(msg: &str) -> ApiError {
    ApiError::InvalidSearchFilter(format!("Invalid filter: {msg}."))
}

fn split_and(s: &str) -> impl Iterator<Item = &str> {
    // Split on the word AND outside quotes.
    let mut parts = Vec::new();
    let (mut start, mut quote, bytes) = (0, None, s.as_bytes());
    let mut i = 0;
    while i < bytes.len() {
        match (quote, bytes[i]) {
            (None, q @ (b'"' | b'\'')) => quote = Some(q),
            (Some(q), c) if c == q => quote = None,
            (None, _)
                if i > start
                    && bytes[i..].len() >= 5
                    && bytes[i..i + 5].eq_ignore_ascii_case(b" and ") =>
            {
                parts.push(&s[start..i]);
                start = i + 5;
                i += 4;
            }
            _ => {}
        }
        i += 1;
    }
    parts.push(&s[start..]);
    parts.into_iter()
}

fn parse_condition(text: &str, filterable: &[String]) -> Result<Condition, ApiError> {
    let unsupported = || {
        ApiError::InvalidSearchFilter(format!(
            "Invalid filter `{}`: meili-standin supports only `attribute = value`, `attribute != value` and `AND`.",
            text.trim()
        ))
    };
    let (attr, value, negated) = match text.split_once("!=") {
        Some((a, v)) => (a, v, true),
        None => text
            .split_once('=')
            .map(|(a, v)| (a, v, false))
            .ok_or_else(unsupported)?,
    };
    let attr = attr.trim();
    let value = value.trim();
    let unquoted = ['"', '\'']
        .iter()
        .find_map(|q| value.strip_prefix(*q).and_then(|v| v.strip_suffix(*q)))
        .unwrap_or(value);
    if attr.is_empty() || attr.contains(char::is_whitespace) || unquoted.is_empty() {
        return Err(unsupported());
    }
    let allowed = filterable
        .iter()
        .any(|f| f == "*" || f == attr || attr.starts_with(&format!("{f}.")));
    if !allowed {
        return Err(ApiError::InvalidSearchFilter(format!(
            "Attribute `{attr}` is not filterable. Available filterable attribute patterns are: `{}`.\n1:{} {}",
            filterable.join(", "),
            attr.len() + 1,
            text.trim()
        )));
    }
    Ok(Condition {
        attr: attr.into(),
        value: unquoted.into(),
        negated,
    })
}

/// Keeps the requested attributes (`*` or none: all), within displayedAttributes.
pub fn retrieve(index: &Index, doc: &Value, attributes: Option<&[String]>) -> Value {
    let displayed = index.list_setting("displayedAttributes");
    let wanted = |k: &str| {
        let shown = displayed.iter().any(|a| a == "*" || a == k);
        let asked = attributes.is_none_or(|a| a.iter().any(|x| x == "*" || x == k));
        shown && asked
    };
    let Some(obj) = doc.as_object() else {
        return doc.clone();
    };
    let kept: Map<String, Value> = obj
        .iter()
        .filter(|(k, _)| wanted(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Value::Object(kept)
}

/// Documents of `index` matching the query words and the filter, in document order.
pub fn matching<'a>(
    index: &'a Index,
    query: &str,
    filter: Option<&'a Filter>,
) -> impl Iterator<Item = &'a Value> + 'a {
    let query_words: Vec<String> = words(query).collect();
    let searchable = index.list_setting("searchableAttributes");
    index
        .documents
        .values()
        .filter(move |d| filter.is_none_or(|f| f.holds(d)))
        .filter(move |d| matches_query(&searchable, d, &query_words))
}
