//! The REST transport: `https://HOST:8006/api2/json` over reqwest (blocking) + rustls,
//! with API-token or ticket authentication (CSRF header on writes, renewal before the
//! ticket's 2 h lifetime ends) and PVE's error statuses mapped to `PveError`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::blocking::{Client as HttpClient, Response};
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, COOKIE};
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use super::auth::{Auth, Secret};
use super::clock::{Clock, SystemClock};
use super::error::PveError;
use super::requests::{self, ApiRequest, Method};
use super::tls::{self, CertFailure, FailureSlot, TlsMode};
use super::Transport;

/// Tickets live 2 h; renewing at 1 h 45 leaves room for clock skew and slow calls.
pub const TICKET_RENEW_AFTER: Duration = Duration::from_secs(105 * 60);

const DEFAULT_PORT: u16 = 8006;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
// Listing templates or storage content on a busy node can take a while.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Blocking (reqwest's blocking client runs its own runtime thread): call it from plain
/// threads, never from inside an async task.
pub struct HttpsTransport {
    base: Url,
    host: String,
    http: HttpClient,
    auth: AuthState,
    cert_failure: FailureSlot,
    clock: Arc<dyn Clock>,
}

enum AuthState {
    Token(HeaderValue),
    Ticket {
        username: String,
        password: Secret,
        session: Mutex<Option<Session>>,
    },
}

#[derive(Clone)]
struct Session {
    ticket: Secret,
    csrf: Secret,
    obtained: Instant,
}

#[derive(Deserialize)]
struct TicketReply {
    ticket: Option<String>,
    #[serde(rename = "CSRFPreventionToken")]
    csrf: Option<String>,
    #[serde(rename = "NeedTFA", default, deserialize_with = "super::de::bool")]
    need_tfa: bool,
}

impl std::fmt::Debug for HttpsTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let auth = match &self.auth {
            AuthState::Token(_) => "token".to_string(),
            AuthState::Ticket { username, .. } => format!("ticket for {username}"),
        };
        f.debug_struct("HttpsTransport")
            .field("base", &self.base.as_str())
            .field("auth", &auth)
            .finish()
    }
}

impl HttpsTransport {
    /// `host` is a name or address, optionally with `:port` (default 8006); IPv6 in
    /// brackets when a port follows (`[fd00::2]:8006`).
    pub fn new(host: &str, auth: Auth, tls: TlsMode) -> Result<Self, PveError> {
        let base = base_url(host)?;
        let host_port = format!(
            "{}:{}",
            base.host_str().unwrap_or_default(),
            base.port_or_known_default().unwrap_or(DEFAULT_PORT)
        );
        let cert_failure: FailureSlot = Arc::new(Mutex::new(None));
        let tls_config = tls::client_config(&tls, cert_failure.clone())?;
        let http = HttpClient::builder()
            .use_preconfigured_tls(tls_config)
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            // PVE never redirects API calls; following one would resend credentials.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("launch-tui/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| PveError::TlsSetup {
                reason: format!("cannot build the HTTP client: {}", error_chain(&e)),
                help: "this is a bug in Launch's HTTP setup; please report it".into(),
            })?;
        let auth = match auth {
            Auth::Token(t) => {
                let mut v = HeaderValue::from_str(&t.header_value()).map_err(|_| {
                    PveError::InvalidToken {
                        id: Some(t.full_id()),
                        problem: "the token contains characters not allowed in an HTTP header"
                            .into(),
                    }
                })?;
                v.set_sensitive(true);
                AuthState::Token(v)
            }
            Auth::Ticket { username, password } => AuthState::Ticket {
                username,
                password,
                session: Mutex::new(None),
            },
        };
        Ok(HttpsTransport {
            base,
            host: host_port,
            http,
            auth,
            cert_failure,
            clock: Arc::new(SystemClock),
        })
    }

    /// Replaces the clock used for ticket age.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// `https://host:port/api2/json`.
    pub fn base_url(&self) -> &str {
        self.base.as_str()
    }

    fn url_for(&self, path: &str) -> Result<Url, PveError> {
        let joined = format!("{}{}", self.base.as_str().trim_end_matches('/'), path);
        Url::parse(&joined).map_err(|e| PveError::InvalidInput {
            what: "API path",
            value: path.to_string(),
            problem: e.to_string(),
            help: "API paths look like /nodes/pve/lxc".into(),
        })
    }

    fn current_session(&self) -> Result<Option<Session>, PveError> {
        let AuthState::Ticket {
            username,
            password,
            session,
        } = &self.auth
        else {
            return Ok(None);
        };
        let mut guard = session.lock().unwrap_or_else(|p| p.into_inner());
        let now = self.clock.now();
        let fresh = match guard.as_ref() {
            Some(s) if now.saturating_duration_since(s.obtained) < TICKET_RENEW_AFTER => {
                return Ok(Some(s.clone()))
            }
            Some(s) => match self.login(username, &s.ticket) {
                Ok(fresh) => fresh,
                // The ticket may have expired outright (laptop asleep): log in again.
                Err(PveError::LoginFailed { .. }) => self.login(username, password)?,
                Err(e) => return Err(e),
            },
            None => self.login(username, password)?,
        };
        *guard = Some(fresh.clone());
        Ok(Some(fresh))
    }

    fn forget_session(&self) {
        if let AuthState::Ticket { session, .. } = &self.auth {
            *session.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }
    }

    fn login(&self, username: &str, password: &Secret) -> Result<Session, PveError> {
        let req = requests::access_ticket(username, password);
        let obtained = self.clock.now();
        let data = match self.send(&req, None) {
            Ok(d) => d,
            Err(PveError::Unauthorized { message, .. }) => {
                return Err(PveError::LoginFailed {
                    username: username.to_string(),
                    message,
                })
            }
            Err(e) => return Err(e),
        };
        let reply: TicketReply = serde_json::from_value(data).map_err(|e| PveError::Decode {
            method: req.method,
            path: req.path.clone(),
            reason: e.to_string(),
        })?;
        if reply.need_tfa {
            return Err(PveError::LoginFailed {
                username: username.to_string(),
                message: "the account needs a second factor (TFA)".into(),
            });
        }
        match (reply.ticket, reply.csrf) {
            (Some(t), Some(c)) => Ok(Session {
                ticket: Secret::new(t),
                csrf: Secret::new(c),
                obtained,
            }),
            _ => Err(PveError::Decode {
                method: req.method,
                path: req.path,
                reason: "the login answer has no ticket or CSRFPreventionToken".into(),
            }),
        }
    }

    fn send(&self, req: &ApiRequest, session: Option<&Session>) -> Result<Value, PveError> {
        let mut url = self.url_for(&req.path)?;
        let shown_url = url.as_str().to_string();
        let is_query = matches!(req.method, Method::Get | Method::Delete);
        if is_query && !req.params.is_empty() {
            url.query_pairs_mut().extend_pairs(req.params.iter());
        }
        let method = match req.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Delete => reqwest::Method::DELETE,
        };
        let mut rb = self.http.request(method, url);
        if !is_query {
            let body = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(req.params.iter())
                .finish();
            rb = rb
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(body);
        }
        match (&self.auth, session) {
            (AuthState::Token(v), _) => rb = rb.header(AUTHORIZATION, v.clone()),
            (AuthState::Ticket { .. }, Some(s)) => {
                let mut cookie =
                    HeaderValue::from_str(&format!("PVEAuthCookie={}", s.ticket.expose()))
                        .map_err(|_| self.bad_ticket(req))?;
                cookie.set_sensitive(true);
                rb = rb.header(COOKIE, cookie);
                if req.method != Method::Get {
                    let mut csrf =
                        HeaderValue::from_str(s.csrf.expose()).map_err(|_| self.bad_ticket(req))?;
                    csrf.set_sensitive(true);
                    rb = rb.header("CSRFPreventionToken", csrf);
                }
            }
            (AuthState::Ticket { .. }, None) => {}
        }
        self.take_cert_failure();
        let resp = rb
            .send()
            .map_err(|e| self.transport_error(&shown_url, &e))?;
        self.read_response(req, resp)
    }

    fn bad_ticket(&self, req: &ApiRequest) -> PveError {
        PveError::Decode {
            method: req.method,
            path: "/access/ticket".into(),
            reason: format!(
                "the ticket for {} {} cannot be sent as an HTTP header",
                req.method, req.path
            ),
        }
    }

    fn take_cert_failure(&self) -> Option<CertFailure> {
        self.cert_failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    fn transport_error(&self, url: &str, e: &reqwest::Error) -> PveError {
        match self.take_cert_failure() {
            Some(CertFailure::Untrusted { fingerprint }) => PveError::UnknownCertificate {
                host: self.host.clone(),
                fingerprint,
            },
            Some(CertFailure::Mismatch { expected, actual }) => PveError::FingerprintMismatch {
                host: self.host.clone(),
                expected,
                actual,
            },
            None if e.is_timeout() => PveError::Timeout {
                url: url.to_string(),
                after: REQUEST_TIMEOUT,
            },
            None => PveError::Connect {
                url: url.to_string(),
                reason: error_chain(e),
            },
        }
    }

    fn read_response(&self, req: &ApiRequest, resp: Response) -> Result<Value, PveError> {
        let status = resp.status();
        let reason = status.canonical_reason().unwrap_or("").to_string();
        let body = resp.bytes().map_err(|e| PveError::Connect {
            url: self.base.as_str().to_string(),
            reason: format!(
                "reading the answer to {} {}: {}",
                req.method,
                req.path,
                error_chain(&e)
            ),
        })?;
        let decode = |reason: String| PveError::Decode {
            method: req.method,
            path: req.path.clone(),
            reason,
        };
        if status.is_success() {
            if body.is_empty() {
                return Ok(Value::Null);
            }
            let mut v: Value =
                serde_json::from_slice(&body).map_err(|e| decode(format!("not JSON: {e}")))?;
            return Ok(v.get_mut("data").map(Value::take).unwrap_or(Value::Null));
        }
        // PVE >= 8.3 repeats its status text as `message` in a JSON body (the reason
        // phrase carries it too, but reqwest exposes only the canonical one).
        let json: Option<Value> = serde_json::from_slice(&body).ok();
        let message = json
            .as_ref()
            .and_then(|j| j.get("message"))
            .and_then(Value::as_str)
            .map(|m| m.trim().to_string())
            .filter(|m| !m.is_empty())
            .unwrap_or(reason);
        let errors: BTreeMap<String, String> = json
            .as_ref()
            .and_then(|j| j.get("errors"))
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        let text = v
                            .as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string());
                        (k.clone(), text.trim_end().to_string())
                    })
                    .collect()
            })
            .unwrap_or_default();
        Err(PveError::from_status(
            status.as_u16(),
            req.method,
            &req.path,
            &message,
            errors,
        ))
    }
}

impl Transport for HttpsTransport {
    fn call(&self, req: &ApiRequest) -> Result<Value, PveError> {
        let session = self.current_session()?;
        match self.send(req, session.as_ref()) {
            // PVE rotates its ticket signing key daily, so a ticket can die before our own
            // renewal; PVE checks auth before acting, so sending the request again is safe.
            Err(PveError::Unauthorized { .. }) if session.is_some() => {
                self.forget_session();
                let session = self.current_session()?;
                self.send(req, session.as_ref())
            }
            other => other,
        }
    }
}

fn base_url(host: &str) -> Result<Url, PveError> {
    let bad = |problem: &str| PveError::InvalidHost {
        value: host.to_string(),
        problem: problem.to_string(),
    };
    let h = host.trim().trim_end_matches('/');
    if h.starts_with("http://") {
        return Err(bad("the PVE API is only served over https"));
    }
    let h = h.strip_prefix("https://").unwrap_or(h);
    if h.is_empty() || h.contains(['/', '?', '#', '@']) || h.chars().any(char::is_whitespace) {
        return Err(bad(
            "expected a host name or address, optionally with :port",
        ));
    }
    // A bare IPv6 address has several colons and no brackets.
    let authority = if h.matches(':').count() > 1 && !h.starts_with('[') {
        format!("[{h}]")
    } else {
        h.to_string()
    };
    let explicit_port = authority
        .rsplit_once(']')
        .map_or(authority.as_str(), |(_, rest)| rest)
        .contains(':');
    let mut url =
        Url::parse(&format!("https://{authority}/api2/json")).map_err(|e| bad(&e.to_string()))?;
    if !explicit_port {
        url.set_port(Some(DEFAULT_PORT))
            .map_err(|_| bad("cannot set the port"))?;
    }
    Ok(url)
}

/// The causes of an error, outermost first, without repeating reqwest's URL line.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        // hyper-util's wrapper line says nothing the next cause does not.
        if !text.starts_with("client error (") && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = s.source();
    }
    if parts.is_empty() {
        parts.push(e.to_string());
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_forms() {
        assert_eq!(
            base_url("pve.lan").unwrap().as_str(),
            "https://pve.lan:8006/api2/json"
        );
        assert_eq!(
            base_url("10.0.0.2:9443").unwrap().as_str(),
            "https://10.0.0.2:9443/api2/json"
        );
        assert_eq!(
            base_url("https://pve:8006/").unwrap().as_str(),
            "https://pve:8006/api2/json"
        );
        assert_eq!(
            base_url("fd00::2").unwrap().as_str(),
            "https://[fd00::2]:8006/api2/json"
        );
        assert_eq!(
            base_url("[fd00::2]:1").unwrap().as_str(),
            "https://[fd00::2]:1/api2/json"
        );
        assert_eq!(
            base_url("pve:443").unwrap().as_str(),
            "https://pve/api2/json"
        );
        for bad in ["", "http://pve", "pve/x", "root@pve", "pve:99999"] {
            let e = base_url(bad).unwrap_err();
            assert!(e.to_string().contains("help:"), "{bad}: {e}");
        }
    }
}
