//! Credentials for the PVE API: API tokens (read from a 0600 file or an environment
//! variable, never from argv) and user/password tickets. Both redact their secret in
//! `Debug`/`Display`, so logging a value can never leak it.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use super::error::PveError;

/// The environment variable an API token may come from.
pub const TOKEN_ENV_VAR: &str = "LAUNCH_PVE_TOKEN";

/// A secret string; `Debug` and `Display` print `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(s)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_string())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// `USER@REALM!TOKENID=SECRET`, as `pveum user token add` prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// `user@realm`.
    pub user: String,
    pub token_id: String,
    secret: Secret,
}

impl ApiToken {
    pub fn new(user: &str, token_id: &str, secret: Secret) -> Result<Self, PveError> {
        let bad = |problem: &str| PveError::InvalidToken {
            id: Some(format!("{user}!{token_id}")),
            problem: problem.to_string(),
        };
        let Some((name, realm)) = user.rsplit_once('@') else {
            return Err(bad("the user has no realm (`@pve`, `@pam`...)"));
        };
        if name.is_empty()
            || realm.is_empty()
            || user.chars().any(|c| c.is_whitespace() || c == '!')
        {
            return Err(bad("the user must look like `name@realm`"));
        }
        if token_id.is_empty()
            || !token_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(bad("the token id must be letters, digits, `-`, `_` or `.`"));
        }
        let s = secret.expose();
        if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("the secret is empty or contains spaces"));
        }
        Ok(ApiToken {
            user: user.to_string(),
            token_id: token_id.to_string(),
            secret,
        })
    }

    /// `user@realm!tokenid`: the identity PVE's ACLs name.
    pub fn full_id(&self) -> String {
        format!("{}!{}", self.user, self.token_id)
    }

    pub fn secret(&self) -> &Secret {
        &self.secret
    }

    /// The `Authorization` header value.
    pub fn header_value(&self) -> String {
        format!(
            "PVEAPIToken={}!{}={}",
            self.user,
            self.token_id,
            self.secret.expose()
        )
    }

    /// Reads a token file; refuses one that group or others can read, as the secret
    /// grants API access. Surrounding whitespace and a `PVEAPIToken=` prefix are ignored.
    pub fn from_file(path: &Path) -> Result<Self, PveError> {
        use std::os::unix::fs::PermissionsExt;
        let file_err = |e: std::io::Error| PveError::TokenFile {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        let meta = std::fs::metadata(path).map_err(file_err)?;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(PveError::TokenFileMode {
                path: path.to_path_buf(),
                mode,
            });
        }
        let text = std::fs::read_to_string(path).map_err(file_err)?;
        text.parse()
    }

    /// Reads the token from `var` (normally [`TOKEN_ENV_VAR`]); `Ok(None)` when unset.
    pub fn from_env(var: &str) -> Result<Option<Self>, PveError> {
        match std::env::var(var) {
            Ok(v) if v.trim().is_empty() => Ok(None),
            Ok(v) => v.parse().map(Some),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err(PveError::InvalidToken {
                id: None,
                problem: format!("${var} is not valid UTF-8"),
            }),
        }
    }
}

impl FromStr for ApiToken {
    type Err = PveError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let s = s.strip_prefix("PVEAPIToken=").unwrap_or(s);
        // PVE splits at the last '=' too; everything before it is safe to show in errors.
        let Some((id, secret)) = s.rsplit_once('=') else {
            return Err(PveError::InvalidToken {
                id: None,
                problem: "no `=SECRET` part found".into(),
            });
        };
        let Some((user, token_id)) = id.split_once('!') else {
            return Err(PveError::InvalidToken {
                id: Some(id.to_string()),
                problem: "no `!TOKENID` after the user".into(),
            });
        };
        ApiToken::new(user, token_id, Secret::new(secret))
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiToken({}!{}=<redacted>)", self.user, self.token_id)
    }
}

impl fmt::Display for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}!{}=<redacted>", self.user, self.token_id)
    }
}

/// How the HTTPS transport authenticates.
#[derive(Clone, Debug)]
pub enum Auth {
    Token(ApiToken),
    /// Log in with `POST /access/ticket`; `username` is `user@realm`.
    Ticket {
        username: String,
        password: Secret,
    },
}
