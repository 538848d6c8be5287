//! Passwords, login sessions and API tokens.
//! Sessions are signed with service.secret (HMAC-SHA256) instead of Vikunja's JWT, which keeps the
//! property Launch cares about: they survive a restart only if the secret does.

use hmac::{Mac, SimpleHmac};
use rand::RngCore;
use sha2::{Digest, Sha256};

type HmacSha256 = SimpleHmac<Sha256>;

/// Vikunja uses bcrypt too; cost 10 keeps `user create` and login quick in tests.
const BCRYPT_COST: u32 = 10;
const SESSION_PREFIX: &str = "fxs1";

pub fn hash_password(password: &str) -> anyhow::Result<String> {
    Ok(bcrypt::hash(password, BCRYPT_COST)?)
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    bcrypt::verify(password, hash).unwrap_or(false)
}

pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// A new `tk_...` token and the hash that is stored (the token itself never is).
pub fn new_api_token() -> (String, String) {
    let token = format!("tk_{}", random_hex(20));
    let hash = hash_token(&token);
    (token, hash)
}

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn mac(secret: &[u8]) -> anyhow::Result<HmacSha256> {
    <HmacSha256 as Mac>::new_from_slice(secret)
        .map_err(|_| anyhow::anyhow!("service.secret cannot key an HMAC"))
}

/// `fxs1.<user id>.<expiry unix seconds>.<hex mac>`
pub fn issue_session(secret: &[u8], user_id: i64, expires_unix: i64) -> anyhow::Result<String> {
    let payload = format!("{SESSION_PREFIX}.{user_id}.{expires_unix}");
    let mut m = mac(secret)?;
    m.update(payload.as_bytes());
    Ok(format!(
        "{payload}.{}",
        hex::encode(m.finalize().into_bytes())
    ))
}

/// The user id of a valid, unexpired session token.
pub fn verify_session(secret: &[u8], token: &str, now_unix: i64) -> Option<i64> {
    let (payload, signature) = token.rsplit_once('.')?;
    let signature = hex::decode(signature).ok()?;
    let mut m = mac(secret).ok()?;
    m.update(payload.as_bytes());
    m.verify_slice(&signature).ok()?;
    let mut parts = payload.split('.');
    if parts.next()? != SESSION_PREFIX {
        return None;
    }
    let user_id: i64 = parts.next()?.parse().ok()?;
    let expires: i64 = parts.next()?.parse().ok()?;
    (parts.next().is_none() && expires > now_unix).then_some(user_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_verify_only_with_their_secret_and_before_expiry() {
        let token = issue_session(b"secret-a", 7, 1_000).unwrap();
        assert_eq!(verify_session(b"secret-a", &token, 999), Some(7));
        assert_eq!(verify_session(b"secret-b", &token, 999), None);
        assert_eq!(verify_session(b"secret-a", &token, 1_000), None);
        let forged = token.replace("fxs1.7.", "fxs1.8.");
        assert_eq!(verify_session(b"secret-a", &forged, 999), None);
    }

    #[test]
    fn api_tokens_look_like_vikunjas_and_only_their_hash_matches() {
        let (token, hash) = new_api_token();
        assert!(token.starts_with("tk_") && token.len() == 43);
        assert_eq!(hash_token(&token), hash);
        assert_ne!(hash, token);
    }

    #[test]
    fn passwords_verify() {
        let hash = hash_password("correct horse").unwrap();
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("wrong horse", &hash));
    }
}
