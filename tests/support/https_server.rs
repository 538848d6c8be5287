//! A real HTTPS server on 127.0.0.1 for client tests: a fresh rcgen CA signs a server
//! certificate (like PVE's pve-root-ca / pve-ssl.pem), every request is recorded, and a
//! plain closure decides each answer. Runs axum over rustls in its own tokio runtime.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use axum_server::tls_rustls::RustlsConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// Raw query string, without `?` (empty when none).
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RecordedRequest {
    /// First header with this (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn query_pairs(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .into_owned()
            .collect()
    }

    pub fn form(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(&self.body)
            .into_owned()
            .collect()
    }

    /// Parameters where PVE reads them: the query for GET/DELETE, the body otherwise.
    pub fn params(&self) -> Vec<(String, String)> {
        match self.method.as_str() {
            "GET" | "DELETE" => self.query_pairs(),
            _ => self.form(),
        }
    }

    pub fn param(&self, key: &str) -> Option<String> {
        self.params()
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// The path after `/api2/json`.
    pub fn api_path(&self) -> &str {
        self.path.strip_prefix("/api2/json").unwrap_or(&self.path)
    }

    /// `"POST /nodes/pve/lxc"` (the API path, without `/api2/json`).
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.api_path())
    }
}

/// What the server answers.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Reply {
    /// 200 `{"data": data}`.
    pub fn data(data: serde_json::Value) -> Reply {
        Reply {
            status: 200,
            body: serde_json::json!({ "data": data }).to_string().into_bytes(),
        }
    }

    /// An error as PVE >= 8.3 sends it: `{"data":null,"message":"...\n","errors":{...}}`.
    pub fn pve_error(status: u16, message: &str, errors: Option<serde_json::Value>) -> Reply {
        let mut body = serde_json::json!({ "data": null, "message": format!("{message}\n") });
        if let Some(e) = errors {
            body["errors"] = e;
        }
        Reply {
            status,
            body: body.to_string().into_bytes(),
        }
    }

    /// A status with an empty body (PVE's 401).
    pub fn empty(status: u16) -> Reply {
        Reply {
            status,
            body: Vec::new(),
        }
    }
}

/// The certificates a test server presents.
pub struct TestPki {
    pub ca_pem: String,
    pub server_der: Vec<u8>,
    server_key_der: Vec<u8>,
    /// SHA-256 of the server certificate, `AB:CD:...`.
    pub fingerprint: String,
}

impl TestPki {
    /// A fresh CA and a server certificate for 127.0.0.1 and localhost.
    pub fn generate() -> TestPki {
        Self::generate_for(&[])
    }

    /// The same, with more names or addresses in the server certificate.
    pub fn generate_for(extra_names: &[String]) -> TestPki {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "Launch Test Root CA");
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA cert");
        let issuer = Issuer::new(ca_params, ca_key);

        let key = KeyPair::generate().expect("server key");
        let mut names = vec!["127.0.0.1".to_string(), "localhost".to_string()];
        names.extend(extra_names.iter().cloned());
        let mut params = CertificateParams::new(names).expect("server params");
        params
            .distinguished_name
            .push(DnType::CommonName, "pve-test");
        let cert = params.signed_by(&key, &issuer).expect("server cert");
        let server_der = cert.der().to_vec();
        TestPki {
            ca_pem: ca_cert.pem(),
            fingerprint: fingerprint_of(&server_der),
            server_der,
            server_key_der: key.serialize_der(),
        }
    }

    /// Writes the CA as PEM into `dir` and returns the path.
    pub fn write_ca(&self, dir: &Path) -> PathBuf {
        let p = dir.join("pve-root-ca.pem");
        std::fs::write(&p, &self.ca_pem).expect("write CA file");
        p
    }
}

pub fn fingerprint_of(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

type Handler = dyn Fn(&RecordedRequest) -> Reply + Send + Sync + 'static;

pub struct HttpsServer {
    pub addr: SocketAddr,
    pub pki: TestPki,
    requests: Arc<Mutex<Vec<RecordedRequest>>>,
    handle: axum_server::Handle<SocketAddr>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl HttpsServer {
    /// Starts serving on 127.0.0.1 (a free port); `handler` answers every request.
    pub fn start<F>(handler: F) -> HttpsServer
    where
        F: Fn(&RecordedRequest) -> Reply + Send + Sync + 'static,
    {
        Self::start_on(std::net::Ipv4Addr::LOCALHOST, handler)
    }

    /// Starts serving on `ip` (a free port), its certificate naming `ip` too: e.g. the lab
    /// bridge's address, for a client inside a lab container.
    pub fn start_on<F>(ip: std::net::Ipv4Addr, handler: F) -> HttpsServer
    where
        F: Fn(&RecordedRequest) -> Reply + Send + Sync + 'static,
    {
        let extra: Vec<String> = if ip.is_loopback() {
            Vec::new()
        } else {
            vec![ip.to_string()]
        };
        Self::start_at(SocketAddr::from((ip, 0)), &extra, handler)
    }

    /// Starts serving on `addr` (port 0: a free one) with a certificate that names `names`
    /// besides 127.0.0.1 and localhost, e.g. a public API's host name a container is pointed
    /// at the stand-in for.
    pub fn start_at<F>(addr: SocketAddr, names: &[String], handler: F) -> HttpsServer
    where
        F: Fn(&RecordedRequest) -> Reply + Send + Sync + 'static,
    {
        let pki = TestPki::generate_for(names);
        let handler: Arc<Handler> = Arc::new(handler);
        let requests = Arc::new(Mutex::new(Vec::new()));

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(pki.server_der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.server_key_der.clone())),
            )
            .expect("server TLS config");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];

        let listener = std::net::TcpListener::bind(addr).expect("bind the port");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let addr = listener.local_addr().expect("local addr");

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let handle = axum_server::Handle::new();
        let recorded = requests.clone();
        let app = Router::new().fallback(move |req: Request| {
            let handler = handler.clone();
            let recorded = recorded.clone();
            async move { serve_one(req, handler, recorded).await }
        });
        let server = {
            let _guard = runtime.enter();
            axum_server::from_tcp_rustls(listener, RustlsConfig::from_config(Arc::new(config)))
                .expect("server from listener")
                .handle(handle.clone())
        };
        runtime.spawn(async move {
            // Errors here surface as failed client calls in the test itself.
            let _ = server.serve(app.into_make_service()).await;
        });
        HttpsServer {
            addr,
            pki,
            requests,
            handle,
            runtime: Some(runtime),
        }
    }

    /// `127.0.0.1:PORT`, as a PVE host argument.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    pub fn fingerprint(&self) -> &str {
        &self.pki.fingerprint
    }

    /// Everything received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn clear(&self) {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

async fn serve_one(
    req: Request,
    handler: Arc<Handler>,
    recorded: Arc<Mutex<Vec<RecordedRequest>>>,
) -> Response {
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, 16 * 1024 * 1024).await {
        Ok(b) => b.to_vec(),
        Err(e) => return (StatusCode::BAD_REQUEST, format!("body: {e}")).into_response(),
    };
    let rec = RecordedRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or_default().to_string(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
    };
    recorded
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(rec.clone());
    let reply = handler(&rec);
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json;charset=UTF-8")
        .body(Body::from(reply.body))
        .unwrap_or_else(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response())
}
