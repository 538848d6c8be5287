//! TLS trust for the PVE API: system roots, the cluster CA file, a pinned SHA-256
//! fingerprint (PVE nodes use self-signed certificates) or, only when asked, no checks.
//! A failed check records the server's fingerprint so the error can tell how to pin it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};

use super::error::PveError;

/// SHA-256 of a DER certificate, shown like PVE does: `AB:CD:...` in upper case.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    pub fn of_der(der: &[u8]) -> Self {
        Fingerprint(Sha256::digest(der).into())
    }
}

impl FromStr for Fingerprint {
    type Err = PveError;

    /// Accepts upper or lower case, with or without `:` separators.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let compact: String = s.trim().chars().filter(|c| *c != ':').collect();
        let bytes = hex::decode(&compact).map_err(|e| PveError::InvalidFingerprint {
            value: s.to_string(),
            problem: format!("not hex: {e}"),
        })?;
        let arr: [u8; 32] =
            bytes
                .try_into()
                .map_err(|b: Vec<u8>| PveError::InvalidFingerprint {
                    value: s.to_string(),
                    problem: format!("a SHA-256 fingerprint has 32 bytes, this has {}", b.len()),
                })?;
        Ok(Fingerprint(arr))
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// How the server certificate is checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TlsMode {
    /// The host's CA bundle (for nodes with an ACME / public certificate).
    SystemRoots,
    /// A PEM file with the CA, e.g. a copy of the node's `/etc/pve/pve-root-ca.pem`.
    CaFile(PathBuf),
    /// Accept exactly the certificate with this SHA-256 fingerprint.
    Pinned(Fingerprint),
    /// No checks at all. Only when the user asks; print [`TlsMode::warning`] every run.
    Insecure,
}

impl TlsMode {
    /// The text to print on every run in this mode, if any.
    pub fn warning(&self) -> Option<&'static str> {
        match self {
            TlsMode::Insecure => Some(
                "warning: TLS certificate checks are OFF (--insecure): anyone on the network path can \
                 impersonate the node and capture the API token\n\
                 help: pin the node's certificate instead: --fingerprint AB:CD:... \
                 (`pvenode cert info` on the node shows it)",
            ),
            _ => None,
        }
    }
}

/// What the verifier saw when it refused a certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum CertFailure {
    Untrusted {
        fingerprint: Fingerprint,
    },
    Mismatch {
        expected: Fingerprint,
        actual: Fingerprint,
    },
}

pub(crate) type FailureSlot = Arc<Mutex<Option<CertFailure>>>;

enum Check {
    WebPki(Arc<WebPkiServerVerifier>),
    Pinned(Fingerprint),
    Insecure,
}

struct Verifier {
    check: Check,
    provider: Arc<CryptoProvider>,
    last_failure: FailureSlot,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match &self.check {
            Check::WebPki(_) => "webpki".to_string(),
            Check::Pinned(fp) => format!("pinned {fp}"),
            Check::Insecure => "insecure".to_string(),
        };
        write!(f, "Verifier({mode})")
    }
}

impl Verifier {
    fn record(&self, failure: CertFailure) {
        let mut slot = self.last_failure.lock().unwrap_or_else(|p| p.into_inner());
        *slot = Some(failure);
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let actual = Fingerprint::of_der(end_entity.as_ref());
        match &self.check {
            Check::WebPki(inner) => inner
                .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
                .inspect_err(|_| {
                    self.record(CertFailure::Untrusted {
                        fingerprint: actual,
                    })
                }),
            // A pin names one exact certificate, which says more than any name or expiry
            // check could; PVE's self-signed node certificates are the reason pins exist.
            Check::Pinned(expected) if *expected == actual => Ok(ServerCertVerified::assertion()),
            Check::Pinned(expected) => {
                self.record(CertFailure::Mismatch {
                    expected: *expected,
                    actual,
                });
                Err(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::ApplicationVerificationFailure,
                ))
            }
            Check::Insecure => Ok(ServerCertVerified::assertion()),
        }
    }

    // Handshake signatures are always checked, pinned or not: they prove the server
    // holds the key of the certificate it showed.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The rustls client configuration for `mode`; refusals are written to `slot`.
pub(crate) fn client_config(
    mode: &TlsMode,
    slot: FailureSlot,
) -> Result<rustls::ClientConfig, PveError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let webpki = |roots: RootCertStore| {
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| PveError::TlsSetup {
                reason: format!("cannot build the certificate verifier: {e}"),
                help: "check the CA certificates".into(),
            })
    };
    let check = match mode {
        TlsMode::SystemRoots => Check::WebPki(webpki(system_roots()?)?),
        TlsMode::CaFile(path) => Check::WebPki(webpki(roots_from_file(path)?)?),
        TlsMode::Pinned(fp) => Check::Pinned(*fp),
        TlsMode::Insecure => Check::Insecure,
    };
    let verifier = Verifier {
        check,
        provider: provider.clone(),
        last_failure: slot,
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| PveError::TlsSetup {
            reason: e.to_string(),
            help: "this is a bug in Launch's TLS setup; please report it".into(),
        })?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(config)
}

fn roots_from_file(path: &Path) -> Result<RootCertStore, PveError> {
    let setup = |reason: String| {
        PveError::TlsSetup {
        reason,
        help: format!(
            "copy the cluster CA from the node (`/etc/pve/pve-root-ca.pem`) to {} or pin the fingerprint instead",
            path.display()
        ),
    }
    };
    let pem = std::fs::read(path)
        .map_err(|e| setup(format!("cannot read CA file {}: {e}", path.display())))?;
    let mut roots = RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        let cert = cert.map_err(|e| setup(format!("{} is not valid PEM: {e}", path.display())))?;
        roots.add(cert).map_err(|e| {
            setup(format!(
                "{} holds an unusable certificate: {e}",
                path.display()
            ))
        })?;
    }
    if roots.is_empty() {
        return Err(setup(format!(
            "{} holds no PEM certificate",
            path.display()
        )));
    }
    Ok(roots)
}

// Written by hand instead of adding rustls-native-certs: on Linux that crate reads the
// same bundle files (SSL_CERT_FILE first), which is all we need here.
const BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

fn system_roots() -> Result<RootCertStore, PveError> {
    let from_env = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from);
    let candidates = from_env
        .into_iter()
        .chain(BUNDLES.iter().map(PathBuf::from));
    let mut roots = RootCertStore::empty();
    for path in candidates {
        let Ok(pem) = std::fs::read(&path) else {
            continue;
        };
        let mut reader = pem.as_slice();
        roots.add_parsable_certificates(rustls_pemfile::certs(&mut reader).filter_map(Result::ok));
        if !roots.is_empty() {
            return Ok(roots);
        }
    }
    Err(PveError::TlsSetup {
        reason: "no system CA certificates found".into(),
        help: "install the `ca-certificates` package, or use the node's CA file or a pinned fingerprint".into(),
    })
}
