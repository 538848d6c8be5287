//! The small query language subset: filters, sort, projection and update operators.

use bson::{doc, Bson, Document};
use std::cmp::Ordering;

#[derive(Debug, thiserror::Error)]
#[error("{msg}")]
pub struct QueryError {
    pub code: i32,
    pub msg: String,
}

pub fn bad(msg: impl Into<String>) -> QueryError {
    QueryError {
        code: 2,
        msg: msg.into(),
    }
}

/// Value at a dotted path; array elements are addressed by numeric components.
pub fn get_path<'a>(doc: &'a Document, path: &str) -> Option<&'a Bson> {
    let mut parts = path.split('.');
    let mut cur = doc.get(parts.next()?)?;
    for p in parts {
        cur = match cur {
            Bson::Document(d) => d.get(p)?,
            Bson::Array(a) => a.get(p.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Values a path reaches, descending through arrays of documents like MongoDB does.
fn path_values(doc: &Document, path: &str) -> Vec<Bson> {
    fn walk(v: &Bson, parts: &[&str], out: &mut Vec<Bson>) {
        if parts.is_empty() {
            out.push(v.clone());
            return;
        }
        match v {
            Bson::Document(d) => {
                if let Some(n) = d.get(parts[0]) {
                    walk(n, &parts[1..], out)
                }
            }
            Bson::Array(a) => {
                if let Ok(i) = parts[0].parse::<usize>() {
                    if let Some(n) = a.get(i) {
                        walk(n, &parts[1..], out)
                    }
                } else {
                    for e in a {
                        if matches!(e, Bson::Document(_)) {
                            walk(e, parts, out)
                        }
                    }
                }
            }
            _ => {}
        }
    }
    let parts: Vec<&str> = path.split('.').collect();
    let mut out = Vec::new();
    walk(&Bson::Document(doc.clone()), &parts, &mut out);
    out
}

fn type_rank(v: &Bson) -> u8 {
    match v {
        Bson::MinKey => 0,
        Bson::Null | Bson::Undefined => 1,
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_) => 2,
        Bson::String(_) | Bson::Symbol(_) => 3,
        Bson::Document(_) => 4,
        Bson::Array(_) => 5,
        Bson::Binary(_) => 6,
        Bson::ObjectId(_) => 7,
        Bson::Boolean(_) => 8,
        Bson::DateTime(_) => 9,
        Bson::Timestamp(_) => 10,
        Bson::RegularExpression(_) => 11,
        Bson::MaxKey => 13,
        _ => 12,
    }
}

fn num(v: &Bson) -> f64 {
    match v {
        Bson::Int32(i) => *i as f64,
        Bson::Int64(i) => *i as f64,
        Bson::Double(d) => *d,
        Bson::Decimal128(d) => d.to_string().parse().unwrap_or(f64::NAN),
        _ => f64::NAN,
    }
}

/// Total order across BSON types (MongoDB's canonical type order, then value).
pub fn compare(a: &Bson, b: &Bson) -> Ordering {
    let (ra, rb) = (type_rank(a), type_rank(b));
    if ra != rb {
        return ra.cmp(&rb);
    }
    match (a, b) {
        (Bson::String(x), Bson::String(y)) => x.cmp(y),
        (Bson::ObjectId(x), Bson::ObjectId(y)) => x.bytes().cmp(&y.bytes()),
        (Bson::Boolean(x), Bson::Boolean(y)) => x.cmp(y),
        (Bson::DateTime(x), Bson::DateTime(y)) => x.cmp(y),
        (Bson::Timestamp(x), Bson::Timestamp(y)) => {
            (x.time, x.increment).cmp(&(y.time, y.increment))
        }
        (Bson::Binary(x), Bson::Binary(y)) => x.bytes.cmp(&y.bytes),
        (Bson::Document(x), Bson::Document(y)) => {
            for ((ka, va), (kb, vb)) in x.iter().zip(y.iter()) {
                let o = ka.cmp(kb).then_with(|| compare(va, vb));
                if o != Ordering::Equal {
                    return o;
                }
            }
            x.len().cmp(&y.len())
        }
        (Bson::Array(x), Bson::Array(y)) => {
            for (va, vb) in x.iter().zip(y.iter()) {
                let o = compare(va, vb);
                if o != Ordering::Equal {
                    return o;
                }
            }
            x.len().cmp(&y.len())
        }
        _ if ra == 2 => num(a).partial_cmp(&num(b)).unwrap_or(Ordering::Equal),
        _ => Ordering::Equal,
    }
}

fn equal(a: &Bson, b: &Bson) -> bool {
    type_rank(a) == type_rank(b) && compare(a, b) == Ordering::Equal
}

/// Equality as queries see it: a missing field equals null, an array field matches an element.
/// Compiles a MongoDB regex with its options (`i m s x`); Rust's regex dialect, close to PCRE for simple patterns.
fn compile_regex(pattern: &str, options: &str) -> Result<regex::Regex, QueryError> {
    let flags: String = options.chars().filter(|c| "imsx".contains(*c)).collect();
    let full = if flags.is_empty() {
        pattern.to_string()
    } else {
        format!("(?{flags}){pattern}")
    };
    regex::Regex::new(&full).map_err(|e| QueryError {
        code: 51091,
        msg: format!("Regular expression is invalid: {e}"),
    })
}

fn regex_match(vals: &[Bson], re: &regex::Regex) -> bool {
    let hit = |v: &Bson| matches!(v, Bson::String(s) if re.is_match(s));
    vals.iter()
        .any(|v| hit(v) || matches!(v, Bson::Array(a) if a.iter().any(hit)))
}

fn eq_match(vals: &[Bson], target: &Bson) -> bool {
    if let Bson::RegularExpression(r) = target {
        return compile_regex(&r.pattern, &r.options).is_ok_and(|re| regex_match(vals, &re));
    }
    if vals.is_empty() {
        return matches!(target, Bson::Null);
    }
    vals.iter().any(|v| {
        equal(v, target) || matches!(v, Bson::Array(a) if a.iter().any(|e| equal(e, target)))
    })
}

fn cmp_match(vals: &[Bson], target: &Bson, pred: fn(Ordering) -> bool) -> bool {
    let ok = |v: &Bson| type_rank(v) == type_rank(target) && pred(compare(v, target));
    vals.iter()
        .any(|v| ok(v) || matches!(v, Bson::Array(a) if a.iter().any(ok)))
}

fn is_operator_doc(v: &Bson) -> Option<&Document> {
    match v {
        Bson::Document(d) if d.keys().next().is_some_and(|k| k.starts_with('$')) => Some(d),
        _ => None,
    }
}

pub fn matches(doc: &Document, filter: &Document) -> Result<bool, QueryError> {
    for (key, cond) in filter {
        let ok = match key.as_str() {
            "$and" | "$or" | "$nor" => {
                let arr = cond
                    .as_array()
                    .ok_or_else(|| bad(format!("{key} must be an array")))?;
                let mut results = Vec::new();
                for c in arr {
                    let c = c
                        .as_document()
                        .ok_or_else(|| bad(format!("{key} entries must be objects")))?;
                    results.push(matches(doc, c)?);
                }
                match key.as_str() {
                    "$and" => results.iter().all(|r| *r),
                    "$or" => results.iter().any(|r| *r),
                    _ => !results.iter().any(|r| *r),
                }
            }
            k if k.starts_with('$') => return Err(bad(format!("unknown top level operator: {k}"))),
            path => {
                let vals = path_values(doc, path);
                match is_operator_doc(cond) {
                    Some(ops) => field_ops(&vals, ops)?,
                    None => eq_match(&vals, cond),
                }
            }
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

fn field_ops(vals: &[Bson], ops: &Document) -> Result<bool, QueryError> {
    for (op, arg) in ops {
        let ok = match op.as_str() {
            "$eq" => eq_match(vals, arg),
            "$ne" => !eq_match(vals, arg),
            "$gt" => cmp_match(vals, arg, |o| o == Ordering::Greater),
            "$gte" => cmp_match(vals, arg, |o| o != Ordering::Less),
            "$lt" => cmp_match(vals, arg, |o| o == Ordering::Less),
            "$lte" => cmp_match(vals, arg, |o| o != Ordering::Greater),
            "$in" | "$nin" => {
                let arr = arg
                    .as_array()
                    .ok_or_else(|| bad(format!("{op} needs an array")))?;
                let hit = arr.iter().any(|t| eq_match(vals, t));
                if op == "$in" {
                    hit
                } else {
                    !hit
                }
            }
            "$regex" => {
                let (pattern, mut options) = match arg {
                    Bson::String(p) => (p.clone(), String::new()),
                    Bson::RegularExpression(r) => (r.pattern.clone(), r.options.clone()),
                    _ => return Err(bad("$regex has to be a string")),
                };
                if let Ok(o) = ops.get_str("$options") {
                    options = o.to_string();
                }
                regex_match(vals, &compile_regex(&pattern, &options)?)
            }
            "$options" => true, // read together with $regex
            "$size" => vals
                .iter()
                .any(|v| matches!(v, Bson::Array(a) if a.len() as f64 == num(arg))),
            "$all" => {
                let want = arg.as_array().ok_or_else(|| bad("$all needs an array"))?;
                !want.is_empty() && want.iter().all(|t| eq_match(vals, t))
            }
            "$elemMatch" => {
                let cond = arg
                    .as_document()
                    .ok_or_else(|| bad("$elemMatch needs an object"))?;
                let mut hit = false;
                for v in vals {
                    if let Bson::Array(a) = v {
                        for e in a {
                            // Operator conditions apply to the element itself; others treat it as a document.
                            hit |= match (e, is_operator_doc(arg)) {
                                (_, Some(ops)) => field_ops(std::slice::from_ref(e), ops)?,
                                (Bson::Document(ed), None) => matches(ed, cond)?,
                                _ => false,
                            };
                        }
                    }
                }
                hit
            }
            "$exists" => {
                let want = match arg {
                    Bson::Boolean(b) => *b,
                    other => num(other) != 0.0,
                };
                vals.is_empty() != want
            }
            "$not" => {
                let inner = arg
                    .as_document()
                    .ok_or_else(|| bad("$not needs an object"))?;
                !field_ops(vals, inner)?
            }
            other => return Err(bad(format!("unknown operator: {other}"))),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Sorts by a spec like {a: 1, "b.c": -1}; a missing field sorts as null.
pub fn sort_docs(docs: &mut [Document], spec: &Document) {
    docs.sort_by(|x, y| {
        for (k, dir) in spec {
            let a = get_path(x, k).cloned().unwrap_or(Bson::Null);
            let b = get_path(y, k).cloned().unwrap_or(Bson::Null);
            let mut o = compare(&a, &b);
            if num(dir) < 0.0 {
                o = o.reverse();
            }
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    });
}

fn truthy(v: &Bson) -> bool {
    match v {
        Bson::Boolean(b) => *b,
        Bson::Null => false,
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) => num(v) != 0.0,
        _ => true,
    }
}

/// Simple inclusion or exclusion projection on (dotted) field names; `_id` is kept unless excluded.
pub fn project(doc: &Document, proj: &Document) -> Document {
    if proj.is_empty() {
        return doc.clone();
    }
    let inclusion = proj.iter().any(|(k, v)| k != "_id" && truthy(v));
    if inclusion {
        let mut out = Document::new();
        if proj.get("_id").is_none_or(truthy) {
            if let Some(id) = doc.get("_id") {
                out.insert("_id", id.clone());
            }
        }
        for (k, v) in proj {
            if k == "_id" || !truthy(v) {
                continue;
            }
            if let Some(val) = get_path(doc, k) {
                set_path(&mut out, k, val.clone());
            }
        }
        out
    } else {
        let mut out = doc.clone();
        for (k, _) in proj {
            unset_path(&mut out, k);
        }
        out
    }
}

pub fn set_path(doc: &mut Document, path: &str, val: Bson) {
    match path.split_once('.') {
        None => {
            doc.insert(path, val);
        }
        Some((head, rest)) => {
            if !matches!(doc.get(head), Some(Bson::Document(_))) {
                doc.insert(head, Document::new());
            }
            if let Some(Bson::Document(d)) = doc.get_mut(head) {
                set_path(d, rest, val);
            }
        }
    }
}

pub fn unset_path(doc: &mut Document, path: &str) {
    match path.split_once('.') {
        None => {
            doc.remove(path);
        }
        Some((head, rest)) => {
            if let Some(Bson::Document(d)) = doc.get_mut(head) {
                unset_path(d, rest);
            }
        }
    }
}

pub fn is_operator_update(update: &Document) -> bool {
    update.keys().next().is_some_and(|k| k.starts_with('$'))
}

/// Applies an update document (operators or a replacement) to `doc`.
pub fn apply_update(
    doc: &mut Document,
    update: &Document,
    inserting: bool,
) -> Result<(), QueryError> {
    if !is_operator_update(update) {
        let id = doc.get("_id").cloned();
        *doc = update.clone();
        if let (Some(id), None) = (id, doc.get("_id")) {
            let mut with_id = doc! {"_id": id};
            with_id.extend(doc.clone());
            *doc = with_id;
        }
        return Ok(());
    }
    for (op, fields) in update {
        let fields = fields
            .as_document()
            .ok_or_else(|| bad(format!("{op} needs an object")))?;
        for (path, val) in fields {
            match op.as_str() {
                "$set" => set_path(doc, path, val.clone()),
                "$setOnInsert" => {
                    if inserting {
                        set_path(doc, path, val.clone())
                    }
                }
                "$unset" => unset_path(doc, path),
                "$inc" => {
                    let cur = get_path(doc, path).cloned().unwrap_or(Bson::Int32(0));
                    let new = match (&cur, val) {
                        (Bson::Int32(a), Bson::Int32(b)) => a
                            .checked_add(*b)
                            .map(Bson::Int32)
                            .unwrap_or(Bson::Int64(*a as i64 + *b as i64)),
                        (Bson::Int32(_) | Bson::Int64(_), Bson::Int32(_) | Bson::Int64(_)) => {
                            Bson::Int64(num(&cur) as i64 + num(val) as i64)
                        }
                        _ if type_rank(&cur) == 2 && type_rank(val) == 2 => {
                            Bson::Double(num(&cur) + num(val))
                        }
                        _ => {
                            return Err(QueryError {
                                code: 14,
                                msg: format!(
                                    "Cannot apply $inc to a value of non-numeric type at '{path}'"
                                ),
                            })
                        }
                    };
                    set_path(doc, path, new)
                }
                "$push" | "$addToSet" => {
                    let items = match val {
                        Bson::Document(d) if d.contains_key("$each") => d
                            .get_array("$each")
                            .map_err(|_| bad("$each needs an array"))?
                            .clone(),
                        v => vec![v.clone()],
                    };
                    let mut arr = match get_path(doc, path) {
                        None => Vec::new(),
                        Some(Bson::Array(a)) => a.clone(),
                        Some(_) => {
                            return Err(QueryError {
                                code: 2,
                                msg: format!("The field '{path}' must be an array"),
                            })
                        }
                    };
                    for item in items {
                        if op == "$push" || !arr.iter().any(|e| equal(e, &item)) {
                            arr.push(item);
                        }
                    }
                    set_path(doc, path, Bson::Array(arr))
                }
                "$pull" => {
                    if let Some(Bson::Array(a)) = get_path(doc, path) {
                        let kept: Vec<Bson> =
                            a.iter().filter(|e| !equal(e, val)).cloned().collect();
                        set_path(doc, path, Bson::Array(kept))
                    }
                }
                other => {
                    return Err(QueryError {
                        code: 9,
                        msg: format!("Unknown modifier: {other}"),
                    })
                }
            }
        }
    }
    Ok(())
}

/// The document an upsert starts from: the filter's equality conditions.
pub fn upsert_seed(filter: &Document) -> Document {
    let mut out = Document::new();
    for (k, v) in filter {
        if k.starts_with('$') {
            continue;
        }
        match is_operator_doc(v) {
            Some(ops) => {
                if let Some(eq) = ops.get("$eq") {
                    set_path(&mut out, k, eq.clone())
                }
            }
            None => set_path(&mut out, k, v.clone()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::Regex;

    #[test]
    fn filters() {
        let d = doc! {"_id": 1, "title": "Hello World", "tags": ["x", "y"], "n": 5, "sub": [{"k": 2}, {"k": 3}]};
        let m = |f: Document| matches(&d, &f).unwrap();
        assert!(m(doc! {"title": {"$regex": "^hello", "$options": "i"}}));
        assert!(!m(doc! {"title": {"$regex": "^hello"}}));
        assert!(m(
            doc! {"title": Bson::RegularExpression(Regex { pattern: "World$".into(), options: String::new() })}
        ));
        assert!(m(doc! {"tags": "y", "n": {"$gt": 4.5, "$lte": 5}}));
        assert!(m(doc! {"sub.k": 3, "missing": {"$exists": false}}));
        assert!(m(doc! {"missing": null, "n": {"$nin": [1, 2]}}));
        assert!(!m(doc! {"$or": [{"n": 1}, {"tags": "z"}]}));
        assert!(matches(&d, &doc! {"title": {"$regex": "("}}).is_err());
        assert!(m(doc! {"tags": {"$size": 2, "$all": ["y", "x"]}}));
        assert!(m(doc! {"sub": {"$elemMatch": {"k": {"$gt": 2}}}}));
        assert!(!m(doc! {"sub": {"$elemMatch": {"k": {"$gt": 3}}}}));
        assert!(m(doc! {"tags": {"$elemMatch": {"$eq": "x"}}}));
    }

    #[test]
    fn updates() {
        let mut d = doc! {"_id": 1, "a": {"b": 1}, "l": [1]};
        apply_update(&mut d, &doc! {"$set": {"a.c": "x"}, "$inc": {"a.b": 2, "z": 1}, "$push": {"l": 2}, "$unset": {"nope": ""}}, false).unwrap();
        assert_eq!(
            d,
            doc! {"_id": 1, "a": {"b": 3, "c": "x"}, "l": [1, 2], "z": 1}
        );
        apply_update(&mut d, &doc! {"only": true}, false).unwrap();
        assert_eq!(d, doc! {"_id": 1, "only": true});
    }
}
