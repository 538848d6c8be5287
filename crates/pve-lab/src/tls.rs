//! The node's TLS identity, kept in the state dir like PVE's `/etc/pve/pve-root-ca.pem` and
//! `pve-ssl.pem`, and a client that trusts exactly one certificate by its SHA-256 fingerprint,
//! the way PVE clients pin a node (`--fingerprint AB:CD:...`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};

use crate::fsutil::write_file_atomic;

/// Paths of the node's certificate material inside the state dir.
pub struct CertPaths {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub fingerprint: PathBuf,
}

impl CertPaths {
    pub fn new(state: &Path) -> CertPaths {
        CertPaths {
            ca: state.join("ca.pem"),
            cert: state.join("pve-ssl.pem"),
            key: state.join("pve-ssl.key"),
            fingerprint: state.join("fingerprint"),
        }
    }
}

/// The node certificate as the server uses it.
pub struct NodeCert {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    /// PVE style: upper-case hex pairs joined by `:`.
    pub fingerprint: String,
}

#[derive(Debug, thiserror::Error)]
pub enum FingerprintError {
    #[error(
        "fingerprint '{0}' is not a SHA-256 fingerprint\nhelp: use 32 hex byte pairs separated by ':', as in STATE/fingerprint (AB:CD:...)"
    )]
    Malformed(String),
}

/// `AB:CD:...` of the SHA-256 of a DER certificate.
pub fn fingerprint_of(der: &[u8]) -> String {
    let digest = Sha256::digest(der);
    digest
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Accepts `AB:CD:..`, lower case, and the bare 64-hex form.
pub fn parse_fingerprint(s: &str) -> Result<[u8; 32], FingerprintError> {
    let hexed: String = s.trim().chars().filter(|c| *c != ':').collect();
    let bytes = hex::decode(&hexed).map_err(|_| FingerprintError::Malformed(s.to_string()))?;
    bytes
        .try_into()
        .map_err(|_| FingerprintError::Malformed(s.to_string()))
}

/// Loads the node certificate, creating a CA and a node certificate signed by it on first use.
pub fn ensure_node_cert(state: &Path) -> Result<NodeCert> {
    let paths = CertPaths::new(state);
    if !(paths.cert.exists() && paths.key.exists() && paths.ca.exists()) {
        generate(&paths)?;
    }
    load(&paths)
}

fn generate(paths: &CertPaths) -> Result<()> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate().context("generating the lab CA key")?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Proxmox Virtual Environment (pve-lab)");
    ca_params
        .distinguished_name
        .push(DnType::OrganizationName, "PVE Cluster Manager CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key)?;

    let node_key = KeyPair::generate().context("generating the node key")?;
    let mut params = CertificateParams::new(vec![
        "127.0.0.1".to_string(),
        "localhost".to_string(),
        "pve".to_string(),
    ])?;
    params
        .distinguished_name
        .push(DnType::CommonName, "pve.lab");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "PVE Cluster Node");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let issuer = Issuer::new(ca_params, &ca_key);
    let node_cert = params.signed_by(&node_key, &issuer)?;

    write_file_atomic(&paths.ca, ca_cert.pem().as_bytes(), 0o644)?;
    write_file_atomic(&paths.key, node_key.serialize_pem().as_bytes(), 0o600)?;
    write_file_atomic(&paths.cert, node_cert.pem().as_bytes(), 0o644)?;
    Ok(())
}

fn load(paths: &CertPaths) -> Result<NodeCert> {
    let cert = CertificateDer::from_pem_file(&paths.cert)
        .with_context(|| format!("reading {}", paths.cert.display()))?;
    let ca = CertificateDer::from_pem_file(&paths.ca)
        .with_context(|| format!("reading {}", paths.ca.display()))?;
    let key = PrivateKeyDer::from_pem_file(&paths.key)
        .with_context(|| format!("reading {}", paths.key.display()))?;
    let fingerprint = fingerprint_of(cert.as_ref());
    write_file_atomic(
        &paths.fingerprint,
        format!("{fingerprint}\n").as_bytes(),
        0o644,
    )?;
    Ok(NodeCert {
        chain: vec![cert, ca],
        key,
        fingerprint,
    })
}

/// The ring provider: the workspace compiles rustls with ring only, so it is named explicitly
/// instead of relying on a process-wide default.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

pub fn server_config(cert: &NodeCert) -> Result<rustls::ServerConfig> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(cert.chain.clone(), cert.key.clone_key())
        .context("building the TLS server config")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Trusts exactly the certificate whose SHA-256 matches, whatever its issuer or name: what
/// PVE clients do with a node fingerprint. Signatures are still verified, so a peer must hold
/// the certificate's key. Hand-written because no maintained crate offers cert pinning for rustls.
#[derive(Debug)]
pub struct PinnedCert {
    pin: [u8; 32],
    provider: Arc<CryptoProvider>,
}

impl PinnedCert {
    pub fn new(fingerprint: &str) -> Result<PinnedCert, FingerprintError> {
        Ok(PinnedCert {
            pin: parse_fingerprint(fingerprint)?,
            provider: provider(),
        })
    }
}

impl ServerCertVerifier for PinnedCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
        if got == self.pin {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "server certificate fingerprint {} does not match the pinned one",
                fingerprint_of(end_entity.as_ref())
            )))
        }
    }

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

pub fn pinned_client_config(fingerprint: &str) -> Result<rustls::ClientConfig> {
    let verifier = Arc::new(PinnedCert::new(fingerprint)?);
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(config)
}

/// A blocking HTTPS client that only talks to the server holding the pinned certificate.
pub fn pinned_client(
    fingerprint: &str,
    timeout: std::time::Duration,
) -> Result<reqwest::blocking::Client> {
    reqwest::blocking::Client::builder()
        .use_preconfigured_tls(pinned_client_config(fingerprint)?)
        .timeout(timeout)
        .build()
        .context("building the HTTPS client")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_round_trip() {
        let fp = fingerprint_of(b"hello");
        assert_eq!(fp.len(), 32 * 3 - 1);
        assert_eq!(
            parse_fingerprint(&fp).unwrap().to_vec(),
            Sha256::digest(b"hello").to_vec()
        );
        assert!(parse_fingerprint("AB:CD").is_err());
        assert!(parse_fingerprint("zz").is_err());
    }
}
