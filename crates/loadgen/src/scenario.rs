//! `--scenario FILE`: the requests of any app, described as data (JSON), so launch-load drives
//! apps that are not Vikunja-shaped. A worker writes `write` every `--write-every` requests and
//! otherwise reads: alternately one of `reads` and the last item it wrote (`read_back`), so an
//! acknowledged write that is lost shows up as a failed read. `{worker}` and `{n}` in paths and
//! bodies make every write's item its own. The password of `auth` comes from the environment
//! variable it names, never from argv: `{"user", "password_env"}` is HTTP basic auth,
//! `{"bearer_env"}` sends `Authorization: Bearer TOKEN` (an app whose login hands out a token:
//! the caller logs in and passes the token).
//!
//! ```json
//! { "auth": { "user": "admin", "password_env": "LAUNCH_LOAD_PASSWORD" },
//!   "setup": [ { "method": "MKCALENDAR", "path": "/admin/load-{worker}/", "expect": [201, 405] } ],
//!   "reads": [ { "method": "PROPFIND", "path": "/admin/", "headers": { "Depth": "1" }, "expect": [207] } ],
//!   "write": { "method": "PUT", "path": "/admin/load-{worker}/{n}.ics", "body": "...",
//!              "headers": { "Content-Type": "text/calendar" }, "expect": [201] },
//!   "read_back": { "method": "GET", "path": "/admin/load-{worker}/{n}.ics", "expect": [200] } }
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    #[serde(default)]
    pub auth: Option<Auth>,
    /// Run once per worker before the loop (e.g. create the worker's collection).
    #[serde(default)]
    pub setup: Vec<Request>,
    pub reads: Vec<Request>,
    pub write: Request,
    #[serde(default)]
    pub read_back: Option<Request>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Auth {
    Basic(BasicAuth),
    Bearer(BearerAuth),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    pub user: String,
    pub password_env: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BearerAuth {
    pub bearer_env: String,
}

/// The credentials a scenario's requests carry, read from the environment.
#[derive(Debug, Clone)]
pub enum Credentials {
    Basic(String, String),
    Bearer(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Statuses that count as success.
    pub expect: Vec<u16>,
}

impl Request {
    fn fill(text: &str, worker: usize, n: u64) -> String {
        text.replace("{worker}", &worker.to_string())
            .replace("{n}", &n.to_string())
    }

    pub fn path_for(&self, worker: usize, n: u64) -> String {
        Self::fill(&self.path, worker, n)
    }

    /// The request, built for `worker`'s `n`th item.
    pub fn build(
        &self,
        http: &reqwest::blocking::Client,
        base: &str,
        auth: Option<&Credentials>,
        worker: usize,
        n: u64,
    ) -> anyhow::Result<reqwest::blocking::RequestBuilder> {
        let method = reqwest::Method::from_bytes(self.method.as_bytes())?;
        let mut r = http.request(method, format!("{base}{}", self.path_for(worker, n)));
        for (k, v) in &self.headers {
            r = r.header(k, v);
        }
        if let Some(b) = &self.body {
            r = r.body(Self::fill(b, worker, n));
        }
        match auth {
            Some(Credentials::Basic(u, p)) => r = r.basic_auth(u, Some(p)),
            Some(Credentials::Bearer(t)) => r = r.bearer_auth(t),
            None => {}
        }
        Ok(r)
    }
}

impl Scenario {
    pub fn load(path: &std::path::Path) -> anyhow::Result<Scenario> {
        let text = std::fs::read_to_string(path)?;
        let s: Scenario =
            serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        anyhow::ensure!(!s.reads.is_empty(), "{}: `reads` is empty", path.display());
        Ok(s)
    }

    /// The credentials, the password read from the environment.
    pub fn credentials(&self) -> anyhow::Result<Option<Credentials>> {
        let var =
            |name: &str| std::env::var(name).map_err(|_| anyhow::anyhow!("{name} is not set"));
        Ok(match &self.auth {
            None => None,
            Some(Auth::Basic(a)) => Some(Credentials::Basic(a.user.clone(), var(&a.password_env)?)),
            Some(Auth::Bearer(a)) => Some(Credentials::Bearer(var(&a.bearer_env)?)),
        })
    }
}
