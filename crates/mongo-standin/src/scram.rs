//! SCRAM-SHA-256 (RFC 5802 / RFC 7677) as MongoDB uses it: credentials are stored as
//! salt + iteration count + StoredKey + ServerKey, never the password.
//! Passwords are taken as given (no SASLprep beyond ASCII).

use base64::{engine::general_purpose::STANDARD as B64, Engine};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

pub const ITERATIONS: u32 = 15000;

#[derive(Clone, Debug, PartialEq)]
pub struct Credentials {
    pub salt: Vec<u8>,
    pub iterations: u32,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

pub fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("hmac accepts any key length");
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

pub fn salted_password(password: &str, salt: &[u8], iterations: u32) -> Vec<u8> {
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, iterations, &mut out);
    out.to_vec()
}

pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    rand::thread_rng().fill_bytes(&mut v);
    v
}

pub fn nonce() -> String {
    B64.encode(random_bytes(24))
}

impl Credentials {
    pub fn new(password: &str) -> Self {
        let salt = random_bytes(28);
        let salted = salted_password(password, &salt, ITERATIONS);
        let client_key = hmac(&salted, b"Client Key");
        Credentials {
            stored_key: Sha256::digest(&client_key).to_vec(),
            server_key: hmac(&salted, b"Server Key"),
            salt,
            iterations: ITERATIONS,
        }
    }
}

/// Parses `a=1,b=2` SCRAM attribute lists.
pub fn attrs(msg: &str) -> Vec<(char, String)> {
    msg.split(',')
        .filter_map(|p| {
            let mut c = p.chars();
            let k = c.next()?;
            (c.next() == Some('=')).then(|| (k, p[2..].to_string()))
        })
        .collect()
}

pub fn attr(msg: &str, key: char) -> Option<String> {
    attrs(msg)
        .into_iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

pub fn decode_name(n: &str) -> String {
    n.replace("=2C", ",").replace("=3D", "=")
}

pub fn encode_name(n: &str) -> String {
    n.replace('=', "=3D").replace(',', "=2C")
}

/// Server side of one conversation after client-first: remembers what the proof is checked against.
pub struct ServerConversation {
    pub user: String,
    pub client_first_bare: String,
    pub server_first: String,
    pub nonce: String,
    pub creds: Credentials,
    pub done: bool,
}

impl ServerConversation {
    /// Returns the server-final message ("v=...") when the proof is right.
    pub fn verify_final(&self, client_final: &str) -> Option<String> {
        let proof = attr(client_final, 'p')?;
        if attr(client_final, 'r').as_deref() != Some(self.nonce.as_str()) {
            return None;
        }
        let without_proof = client_final.rsplit_once(",p=")?.0;
        let auth_message = format!(
            "{},{},{}",
            self.client_first_bare, self.server_first, without_proof
        );
        let proof = B64.decode(proof).ok()?;
        let client_sig = hmac(&self.creds.stored_key, auth_message.as_bytes());
        if proof.len() != client_sig.len() {
            return None;
        }
        let client_key: Vec<u8> = proof.iter().zip(&client_sig).map(|(a, b)| a ^ b).collect();
        if Sha256::digest(&client_key).as_slice() != self.creds.stored_key.as_slice() {
            return None;
        }
        let server_sig = hmac(&self.creds.server_key, auth_message.as_bytes());
        Some(format!("v={}", B64.encode(server_sig)))
    }
}

/// Client side: builds client-final from server-first and checks server-final.
pub struct ClientConversation {
    pub client_first_bare: String,
    pub nonce: String,
    pub password: String,
    server_key: Vec<u8>,
    auth_message: String,
}

impl ClientConversation {
    pub fn new(user: &str, password: &str) -> Self {
        let nonce = nonce();
        ClientConversation {
            client_first_bare: format!("n={},r={}", encode_name(user), nonce),
            nonce,
            password: password.to_string(),
            server_key: Vec::new(),
            auth_message: String::new(),
        }
    }
    pub fn client_first(&self) -> String {
        format!("n,,{}", self.client_first_bare)
    }
    pub fn client_final(&mut self, server_first: &str) -> anyhow::Result<String> {
        let r =
            attr(server_first, 'r').ok_or_else(|| anyhow::anyhow!("server-first without nonce"))?;
        anyhow::ensure!(
            r.starts_with(&self.nonce),
            "server nonce does not extend ours"
        );
        let salt = B64.decode(attr(server_first, 's').unwrap_or_default())?;
        let iterations: u32 = attr(server_first, 'i').unwrap_or_default().parse()?;
        let salted = salted_password(&self.password, &salt, iterations);
        let client_key = hmac(&salted, b"Client Key");
        let stored_key = Sha256::digest(&client_key);
        self.server_key = hmac(&salted, b"Server Key");
        let without_proof = format!("c=biws,r={r}");
        self.auth_message = format!(
            "{},{},{}",
            self.client_first_bare, server_first, without_proof
        );
        let sig = hmac(&stored_key, self.auth_message.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&sig).map(|(a, b)| a ^ b).collect();
        Ok(format!("{without_proof},p={}", B64.encode(proof)))
    }
    pub fn check_server_final(&self, server_final: &str) -> anyhow::Result<()> {
        let expected = B64.encode(hmac(&self.server_key, self.auth_message.as_bytes()));
        anyhow::ensure!(
            attr(server_final, 'v').as_deref() == Some(expected.as_str()),
            "server signature mismatch"
        );
        Ok(())
    }
}
