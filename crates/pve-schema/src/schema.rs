//! Loading apidata.json and routing concrete request paths to endpoints, the way
//! PVE::RESTHandler::find_handler does (percent-decode, split on '/', `{param}` = one `\S+` segment).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::LoadError;
use crate::model::{truthy, ParamSet, Prop};

/// The two schema dumps shipped in shared/pve-api.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PveMajor {
    V8,
    V9,
}

impl PveMajor {
    pub fn file_name(self) -> &'static str {
        match self {
            PveMajor::V8 => "apidata.json",
            PveMajor::V9 => "apidata-pve9.json",
        }
    }
}

/// Subtrees registered with `fragmentDelimiter => ''`: everything below them is ONE path
/// fragment, because volume IDs contain '/'. The schema does not record this; pve-storage does.
const WHOLE_REST_PREFIXES: &[&str] = &["/nodes/{node}/storage/{storage}/content"];

/// One API method on one path template.
#[derive(Debug)]
pub struct Endpoint {
    pub method: String,
    /// The path template, e.g. "/nodes/{node}/lxc/{vmid}/config".
    pub path: String,
    /// The Perl handler name, e.g. "create_vm".
    pub name: String,
    pub description: String,
    pub permissions: Value,
    pub protected: bool,
    pub allowtoken: bool,
    pub returns: Value,
    /// Name of the parameter the call is proxied by (usually "node").
    pub proxyto: Option<String>,
    /// The raw `parameters` object from the schema file.
    pub parameters: Value,
    pub(crate) params: ParamSet,
}

impl Endpoint {
    /// Names of the parameters the schema declares, with indexed ones as `net[n]`.
    pub fn parameter_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.params.props.keys().cloned().collect();
        names.extend(self.params.indexed.keys().map(|b| format!("{b}[n]")));
        names.sort();
        names
    }

    /// The raw schema of one parameter, looked up by its wire name ("net3" finds `net[n]`).
    pub fn parameter(&self, wire_name: &str) -> Option<&Value> {
        let props = self.parameters.get("properties")?;
        if self.params.props.contains_key(wire_name) {
            return props.get(wire_name);
        }
        let (base, _) = crate::check::indexed_prop(&self.params, wire_name, &self.path)?;
        props.get(format!("{base}[n]"))
    }
}

#[derive(Debug, Default)]
struct RouteNode {
    literals: HashMap<String, RouteNode>,
    param: Option<(String, Box<RouteNode>)>,
    methods: HashMap<String, usize>,
    whole_rest: bool,
}

/// One loaded apidata.json: the endpoints and a routing tree over their path templates.
#[derive(Debug)]
pub struct Schema {
    pub(crate) endpoints: Vec<Endpoint>,
    by_template: HashMap<(String, String), usize>,
    routes: RouteNode,
    source: PathBuf,
}

impl Schema {
    pub fn load(path: &Path) -> Result<Schema, LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let tree: Value = serde_json::from_slice(&bytes).map_err(|source| LoadError::Json {
            path: path.to_path_buf(),
            source,
        })?;
        Schema::from_tree(tree, path)
    }

    pub fn load_shared(v: PveMajor) -> Result<Schema, LoadError> {
        let path = find_schema_file(v).ok_or_else(|| LoadError::NotFound {
            file: v.file_name(),
            searched: search_roots().into_iter().map(|(d, _)| d).collect(),
        })?;
        Schema::load(&path)
    }

    fn from_tree(tree: Value, path: &Path) -> Result<Schema, LoadError> {
        let shape = |detail: &str| LoadError::Shape {
            path: path.to_path_buf(),
            detail: detail.to_string(),
        };
        let Value::Array(roots) = tree else {
            return Err(shape("the top level is not an array"));
        };
        let mut schema = Schema {
            endpoints: Vec::new(),
            by_template: HashMap::new(),
            routes: RouteNode::default(),
            source: path.to_path_buf(),
        };
        // Explicit stack instead of recursion: the tree depth is small, but this is bounded anyway.
        let mut stack: Vec<Value> = roots;
        while let Some(mut node) = stack.pop() {
            let Some(obj) = node.as_object_mut() else {
                return Err(shape("a tree node is not an object"));
            };
            if let Some(Value::Array(children)) = obj.remove("children") {
                stack.extend(children);
            }
            let Some(template) = obj.get("path").and_then(Value::as_str).map(str::to_string) else {
                return Err(shape("a tree node has no \"path\""));
            };
            let Some(Value::Object(info)) = obj.remove("info") else {
                continue;
            };
            for (method, mut def) in info {
                let Some(d) = def.as_object_mut() else {
                    return Err(shape("an \"info\" entry is not an object"));
                };
                let parameters = d.remove("parameters").unwrap_or(Value::Null);
                let endpoint = Endpoint {
                    params: ParamSet::from_json(Some(&parameters)),
                    name: d
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    description: d
                        .get("description")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    permissions: d.remove("permissions").unwrap_or(Value::Null),
                    protected: truthy(d.get("protected")),
                    // RESTHandler defaults allowtoken to 1 when a method does not set it.
                    allowtoken: d.get("allowtoken").is_none_or(|a| truthy(Some(a))),
                    returns: d.remove("returns").unwrap_or(Value::Null),
                    proxyto: d.get("proxyto").and_then(Value::as_str).map(str::to_string),
                    parameters,
                    method: method.clone(),
                    path: template.clone(),
                };
                schema.insert(endpoint);
            }
        }
        if schema.endpoints.is_empty() {
            return Err(shape("it defines no endpoints"));
        }
        Ok(schema)
    }

    fn insert(&mut self, endpoint: Endpoint) {
        let idx = self.endpoints.len();
        let mut node = &mut self.routes;
        let mut prefix = String::new();
        for seg in endpoint.path.split('/').filter(|s| !s.is_empty()) {
            prefix.push('/');
            prefix.push_str(seg);
            node = match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(inner) => {
                    // `{name:regex}` is legal in RESTHandler; the dumps only use `{name}`.
                    let name = inner.split(':').next().unwrap_or(inner).to_string();
                    &mut node.param.get_or_insert_with(|| (name, Box::default())).1
                }
                None => node.literals.entry(seg.to_string()).or_default(),
            };
            if WHOLE_REST_PREFIXES.contains(&prefix.as_str()) {
                node.whole_rest = true;
            }
        }
        node.methods.insert(endpoint.method.clone(), idx);
        self.by_template
            .insert((endpoint.method.clone(), endpoint.path.clone()), idx);
        self.endpoints.push(endpoint);
    }

    /// Resolves a decoded concrete path; returns the endpoint and the `{param}` values.
    pub(crate) fn route(
        &self,
        method: &str,
        decoded: &str,
    ) -> Option<(&Endpoint, BTreeMap<String, String>)> {
        let mut segs: Vec<String> = decoded
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let mut params = BTreeMap::new();
        let mut node = &self.routes;
        let mut i = 0;
        while i < segs.len() {
            let seg = &segs[i];
            node = if let Some(child) = node.literals.get(seg.as_str()) {
                child
            } else if let Some((name, child)) = &node.param {
                // RESTHandler's default parameter regex is \S+.
                if seg.chars().any(char::is_whitespace) {
                    return None;
                }
                params.insert(name.clone(), seg.clone());
                child
            } else {
                return None;
            };
            if node.whole_rest && segs.len() - i - 1 > 1 {
                let rest = segs.split_off(i + 1).join("/");
                segs.push(rest);
            }
            i += 1;
        }
        let idx = *node.methods.get(method)?;
        self.endpoints.get(idx).map(|e| (e, params))
    }

    pub fn endpoint(&self, method: &str, template: &str) -> Option<&Endpoint> {
        let idx = *self
            .by_template
            .get(&(method.to_string(), template.to_string()))?;
        self.endpoints.get(idx)
    }

    pub fn endpoint_count(&self) -> usize {
        self.endpoints.len()
    }

    /// All endpoints, in no particular order.
    pub fn endpoints(&self) -> impl Iterator<Item = &Endpoint> {
        self.endpoints.iter()
    }

    /// The file this schema was loaded from.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// Every (endpoint, parameter path, Perl pattern, translation error) whose pattern does not
    /// compile after translation. Empty for the shipped schemas; used by tests and diagnostics.
    pub fn untranslatable_patterns(&self) -> Vec<(String, String)> {
        let mut bad = Vec::new();
        for ep in &self.endpoints {
            let mut pats = Vec::new();
            ep.params
                .props
                .values()
                .chain(ep.params.indexed.values())
                .for_each(|p| p.patterns(&mut pats));
            for pat in pats {
                if pat.regex().is_none() {
                    bad.push((format!("{} {}", ep.method, ep.path), pat.source.clone()));
                }
            }
        }
        bad
    }

    /// Every named format the request schemas use (base names without -list/-opt), sorted.
    pub fn named_formats(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for ep in &self.endpoints {
            let mut fmts = Vec::new();
            ep.params
                .props
                .values()
                .chain(ep.params.indexed.values())
                .for_each(|p: &Prop| p.formats(&mut fmts));
            for f in fmts {
                let base = f
                    .strip_suffix("-list")
                    .or_else(|| f.strip_suffix("-opt"))
                    .unwrap_or(f);
                names.push(base.to_string());
            }
        }
        names.sort();
        names.dedup();
        names
    }
}

/// Finds `shared/pve-api/<file>`: `$PVE_SCHEMA_DIR/<file>` first, then for each of
/// (CARGO_MANIFEST_DIR at compile time, the current dir, the executable's dir) walks up the
/// ancestors looking for `shared/pve-api/<file>`.
pub fn find_schema_file(v: PveMajor) -> Option<PathBuf> {
    search_roots().into_iter().find_map(|(dir, walk_up)| {
        if !walk_up {
            let candidate = dir.join(v.file_name());
            return candidate.is_file().then_some(candidate);
        }
        dir.ancestors()
            .map(|a| a.join("shared").join("pve-api").join(v.file_name()))
            .find(|c| c.is_file())
    })
}

/// (directory, whether to walk up its ancestors)
fn search_roots() -> Vec<(PathBuf, bool)> {
    let mut roots = Vec::new();
    if let Some(dir) = std::env::var_os("PVE_SCHEMA_DIR").filter(|d| !d.is_empty()) {
        roots.push((PathBuf::from(dir), false));
    }
    roots.push((PathBuf::from(env!("CARGO_MANIFEST_DIR")), true));
    if let Ok(cwd) = std::env::current_dir() {
        roots.push((cwd, true));
    }
    if let Some(exe_dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        roots.push((exe_dir, true));
    }
    roots
}
