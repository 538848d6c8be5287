//! The profile format (format 1). Values that have a shape of their own (names, URLs, sha256
//! sums, ports) are checked while parsing, so their errors carry the YAML position; checks that
//! relate several fields run in `Profile::check`.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// A lowercase name usable as a Linux user, unit name and hostname part: `[a-z][a-z0-9-]*`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Name(String);

impl Name {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub fn check_name(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 32
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid name `{}`: expected lowercase letters, digits and '-', starting with a letter, at most 32 characters",
            crate::escape::shown(s)
        ))
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        check_name(&s).map_err(serde::de::Error::custom)?;
        Ok(Name(s))
    }
}

/// A question or secret key, as written in answers files: `[a-z][a-z0-9_]*`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Key(String);

impl Key {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let ok = s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.len() <= 40
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if ok {
            Ok(Key(s))
        } else {
            Err(serde::de::Error::custom(format!(
                "invalid key `{s}`: expected lowercase letters, digits and '_', starting with a letter"
            )))
        }
    }
}

/// A Debian package name (Debian policy: lowercase letters, digits, `+`, `-`, `.`, starting
/// with a letter or digit): it reaches apt-get as one argument, never as shell text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct DebPackage(String);

impl DebPackage {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for DebPackage {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let ok = s.len() >= 2
            && s.len() <= 64
            && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && s.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '+' | '-' | '.')
            });
        if ok {
            Ok(DebPackage(s))
        } else {
            Err(serde::de::Error::custom(format!(
                "invalid Debian package name `{}`: expected lowercase letters, digits, '+', '-' and '.'",
                crate::escape::shown(&s)
            )))
        }
    }
}

/// A lowercase hex SHA-256 sum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Sha256(String);

impl Sha256 {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Sha256 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.len() == 64 && s.chars().all(|c| c.is_ascii_hexdigit()) {
            Ok(Sha256(s.to_ascii_lowercase()))
        } else {
            Err(serde::de::Error::custom(format!(
                "invalid sha256 `{s}`: expected 64 hexadecimal characters (the output of `sha256sum FILE`)"
            )))
        }
    }
}

/// An http(s) URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct HttpUrl(String);

impl HttpUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for HttpUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match url::Url::parse(&s) {
            Ok(u) if (u.scheme() == "https" || u.scheme() == "http") && u.host().is_some() => {
                Ok(HttpUrl(s))
            }
            _ => Err(serde::de::Error::custom(format!(
                "invalid URL `{s}`: expected an http:// or https:// URL with a host"
            ))),
        }
    }
}

/// A TCP port above the privileged range (components never run as root).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Port(u16);

impl Port {
    pub fn get(self) -> u16 {
        self.0
    }
}

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = u32::deserialize(d)?;
        if (1024..=65535).contains(&n) {
            Ok(Port(n as u16))
        } else {
            Err(serde::de::Error::custom(format!(
                "invalid port {n}: expected 1024..65535 (components run unprivileged)"
            )))
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The profile format version; this build reads format 1.
    pub format: u32,
    pub name: Name,
    pub title: String,
    pub description: String,
    #[serde(default)]
    pub links: BTreeMap<String, HttpUrl>,
    /// Where the app announces its newest release (a JSON document): `update --check` says
    /// when upstream is ahead of the releases this profile pins.
    #[serde(default)]
    pub upstream: Option<Upstream>,
    pub resources: Resources,
    pub os: OsChoice,
    pub versions: Vec<Release>,
    #[serde(default)]
    pub questions: Vec<QuestionDef>,
    #[serde(default)]
    pub secrets: Vec<SecretDef>,
    pub databases: Databases,
    /// Servers the app uses besides its database (a Redis cache or queue), each set up, dumped,
    /// restored and checked by its adapter in `src/service/`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<ServiceDef>,
    /// Debian packages the app needs in its container, installed with nginx and the
    /// database's packages from the container's Debian mirror.
    #[serde(default)]
    pub packages: Vec<DebPackage>,
    /// Extra apt repositories (a vendor's, Debian's backports), added before `packages:` and
    /// the runtimes are installed, each checked against the signing key in a file of the profile.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub apt_sources: Vec<AptSource>,
    /// Language runtimes from Debian (`node`, `python`), besides those the components'
    /// install kinds need anyway.
    #[serde(default)]
    pub runtimes: Vec<Runtime>,
    pub components: Vec<Component>,
    pub nginx: Nginx,
    pub backup: BackupDef,
    #[serde(default)]
    pub migrations: Option<Migrations>,
    #[serde(default)]
    pub update: UpdatePolicy,
    /// A script run once in the container after the app first answers its health check (create
    /// the admin account, mint an API token). Its `KEY=VALUE` stdout lines for `outputs` become
    /// instance secrets, available to templates rendered after it.
    #[serde(default)]
    pub bootstrap: Option<Bootstrap>,
    /// Which questions play the parts the engine needs (format 2; format 1 profiles get them
    /// from the conventional keys when loaded).
    #[serde(default)]
    pub roles: Roles,
    /// Where its templates are read (set by the loader, never from the YAML).
    #[serde(skip)]
    pub assets: super::Assets,
}

/// The parts some questions play for the engine: it reads values through these, never by a key
/// name of its own.
#[derive(Debug, Clone, Deserialize, Serialize, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Roles {
    /// The `url` question whose answer is the public URL: nginx's `server_name`, the ACME
    /// domain, the link printed after install, the redirect from names the instance had before.
    #[serde(default)]
    pub public_url: Option<Key>,
    /// The `email` question holding the admin's email: the ACME contact's default.
    #[serde(default)]
    pub admin_email: Option<Key>,
    /// The `integer` question (MiB) that sets nginx's `client_max_body_size` (templates see it as
    /// `upload_limit_mib`).
    #[serde(default)]
    pub upload_limit_mib: Option<Key>,
}

/// A part a question plays (see [`Roles`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    PublicUrl,
    AdminEmail,
    UploadLimitMib,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::PublicUrl, Role::AdminEmail, Role::UploadLimitMib];

    pub fn field(self) -> &'static str {
        match self {
            Role::PublicUrl => "public_url",
            Role::AdminEmail => "admin_email",
            Role::UploadLimitMib => "upload_limit_mib",
        }
    }

    /// The question kind a question in this part must have.
    pub fn kind(self) -> QuestionKind {
        match self {
            Role::PublicUrl => QuestionKind::Url,
            Role::AdminEmail => QuestionKind::Email,
            Role::UploadLimitMib => QuestionKind::Integer,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Bootstrap {
    /// A shell script template in the profile's directory.
    pub script: String,
    /// The step's title in progress output ("Creating the admin account").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default)]
    pub outputs: Vec<Key>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Sizing {
    pub cores: u32,
    pub memory_mib: u64,
    pub disk_gib: u32,
    #[serde(default)]
    pub swap_mib: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    pub minimum: Sizing,
    pub default: Sizing,
    /// Free disk an update needs in the container beyond the app's data (MiB).
    #[serde(default = "default_update_free_mib")]
    pub update_free_mib: u64,
}

fn default_update_free_mib() -> u64 {
    2048
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub enum Os {
    #[serde(rename = "debian-12")]
    Debian12,
    #[serde(rename = "debian-13")]
    Debian13,
}

impl Os {
    pub fn label(self) -> &'static str {
        match self {
            Os::Debian12 => "debian-12",
            Os::Debian13 => "debian-13",
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OsChoice {
    pub default: Os,
    pub supported: Vec<Os>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    #[default]
    Stable,
    Unstable,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Release {
    pub version: String,
    #[serde(default)]
    pub channel: Channel,
    /// Per architecture (`amd64`, `arm64`): where to download and the sum to check (apps
    /// installed from the release's archive; pip and npm apps come from their registry).
    #[serde(default)]
    pub artifacts: BTreeMap<String, Artifact>,
    /// The source commit of a build from the app's main branch (unstable channel), shown by
    /// `update --check`.
    #[serde(default)]
    pub commit: Option<String>,
    /// The app's source archive, for a main component of `kind: source`: downloaded and
    /// checked on the host like an artifact, then built in the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceArchive>,
    /// Components that must move together with this release: the lowest version of each that
    /// works with it (`mcp: 0.10.0`). An update to this release is refused while an installed
    /// component is older.
    #[serde(default)]
    pub requires: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ArchiveFormat {
    Zip,
    #[serde(rename = "tar.gz")]
    TarGz,
    Binary,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Artifact {
    pub url: HttpUrl,
    pub sha256: Sha256,
    pub format: ArchiveFormat,
    /// The executable's name inside the archive (for zip and tar.gz).
    #[serde(default)]
    pub binary: Option<String>,
}

/// A release's source archive (architecture-independent): where to download it, the sum to
/// check, and its format (`tar.gz` unless said).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SourceArchive {
    pub url: HttpUrl,
    pub sha256: Sha256,
    #[serde(default = "tar_gz")]
    pub format: ArchiveFormat,
}

fn tar_gz() -> ArchiveFormat {
    ArchiveFormat::TarGz
}

impl SourceArchive {
    /// The archive as the release cache fetches and checks it.
    pub fn artifact(&self) -> Artifact {
        Artifact {
            url: self.url.clone(),
            sha256: self.sha256.clone(),
            format: self.format,
            binary: None,
        }
    }
}

/// An apt repository a profile adds (`apt_sources:`), written as a deb822 file with its own
/// keyring. Every value is checked while parsing: they are written into apt's config.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AptSource {
    /// Names the files: `/etc/apt/sources.list.d/launch-NAME.sources` and
    /// `/etc/apt/keyrings/launch-NAME.asc`.
    pub name: Name,
    pub uri: AptUri,
    pub suites: Vec<AptWord>,
    pub components: Vec<AptWord>,
    /// A file of the profile holding the repository's ASCII-armored public signing key.
    pub key: String,
}

/// An apt repository's http(s) URI: one token of printable ASCII (no space, no line break),
/// with a host, without credentials, query or fragment (the sources file is world-readable).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct AptUri(String);

impl AptUri {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for AptUri {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let printable = !s.is_empty() && s.len() <= 512 && s.chars().all(|c| c.is_ascii_graphic());
        let ok = printable
            && match url::Url::parse(&s) {
                Ok(u) => {
                    matches!(u.scheme(), "http" | "https")
                        && u.host().is_some()
                        && u.username().is_empty()
                        && u.password().is_none()
                        && u.query().is_none()
                        && u.fragment().is_none()
                }
                Err(_) => false,
            };
        if ok {
            Ok(AptUri(s))
        } else {
            Err(serde::de::Error::custom(format!(
                "invalid apt URI `{}`: expected an http:// or https:// URL with a host, without spaces, line breaks, credentials, query or fragment",
                crate::escape::shown(&s)
            )))
        }
    }
}

/// An apt suite or component (`bookworm`, `stable`, `main`, `non-free-firmware`): one word.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct AptWord(String);

impl AptWord {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for AptWord {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.starts_with(|c: char| c.is_ascii_alphanumeric())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+' | '~' | '/'))
            // A vendor's suite may have path parts (`bookworm/mongodb-org/8.0`), never empty or `..`.
            && s.split('/').all(|part| !part.is_empty() && part != "." && part != "..");
        if ok {
            Ok(AptWord(s))
        } else {
            Err(serde::de::Error::custom(format!(
                "invalid apt suite or component `{}`: expected one word of letters, digits, '.', '_', '-', '+', '~' and '/' between parts (no spaces, line breaks, empty or `..` parts)",
                crate::escape::shown(&s)
            )))
        }
    }
}

/// One command of a source build: a shell line (`npm ci && npm run build`, run by `sh -ec`) or
/// an argv list (`[make, -j2]`). Profile text only: no answer or secret ever reaches it.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum BuildCommand {
    Shell(String),
    Argv(Vec<String>),
}

impl BuildCommand {
    /// The argv that runs it (after the user and environment set by the build).
    pub fn argv(&self) -> Vec<String> {
        match self {
            BuildCommand::Shell(line) => vec!["/bin/sh".into(), "-ec".into(), line.clone()],
            BuildCommand::Argv(argv) => argv.clone(),
        }
    }

    /// As messages show it.
    pub fn shown(&self) -> String {
        match self {
            BuildCommand::Shell(line) => crate::escape::shown(line),
            BuildCommand::Argv(argv) => crate::escape::shown(&argv.join(" ")),
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum QuestionKind {
    Text,
    /// A login name: 1 to 64 of letters, digits, `.`, `_`, `@`, `-`, not starting with `-` or
    /// `.` (safe in htpasswd-style files, CSVs and command lines an app's tools take).
    Username,
    Url,
    Email,
    Bool,
    Integer,
    Timezone,
    Choice,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct QuestionDef {
    pub key: Key,
    pub prompt: String,
    pub kind: QuestionKind,
    #[serde(default)]
    pub default: Option<String>,
    #[serde(default)]
    pub help: Option<String>,
    #[serde(default)]
    pub secret: bool,
    /// Asked in the Advanced wizard only (Default mode takes the default).
    #[serde(default)]
    pub advanced: bool,
    #[serde(default)]
    pub choices: Vec<String>,
    #[serde(default)]
    pub min: Option<i64>,
    #[serde(default)]
    pub max: Option<i64>,
    /// Asked at install only: the app keeps the value in its own data afterwards (an admin
    /// account's email), so `reconfigure` refuses it and says what to do instead.
    #[serde(default)]
    pub install_only: bool,
    /// With `install_only`: how to change it after install (shown when reconfigure refuses).
    #[serde(default)]
    pub after_install: Option<String>,
    /// The answer may not be empty when every question named here has the answer given
    /// (`{use_rag: "true", rag_embeddings_provider: openai}`): install refuses it (exit 2,
    /// before anything is made), and the wizard asks it then, in every mode.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub required_when: BTreeMap<Key, String>,
}

impl QuestionDef {
    /// Whether the answers make this question's answer necessary (see `required_when`).
    pub fn required_by(&self, answers: &BTreeMap<String, String>) -> bool {
        !self.required_when.is_empty()
            && self
                .required_when
                .iter()
                .all(|(k, v)| answers.get(k.as_str()).map(|a| a.trim()) == Some(v.as_str()))
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SecretKind {
    /// Random bytes as lowercase hex.
    Hex,
    /// Random alphanumeric characters.
    Alnum,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SecretDef {
    pub key: Key,
    pub kind: SecretKind,
    /// Bytes for hex, characters for alnum.
    pub length: u32,
    /// Generated once at install and kept across updates and restores.
    #[serde(default = "yes")]
    pub keep: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum DatabaseKind {
    /// A files-only app: its data is the paths under `backup.paths`.
    None,
    Sqlite,
    Postgres,
    Mariadb,
    Mongodb,
    ExternalPostgres,
    ExternalMariadb,
    ExternalMongodb,
}

impl DatabaseKind {
    pub const ALL: [DatabaseKind; 8] = [
        DatabaseKind::None,
        DatabaseKind::Sqlite,
        DatabaseKind::Postgres,
        DatabaseKind::Mariadb,
        DatabaseKind::Mongodb,
        DatabaseKind::ExternalPostgres,
        DatabaseKind::ExternalMariadb,
        DatabaseKind::ExternalMongodb,
    ];

    /// A database server (local or external) rather than files in the data directory.
    pub fn is_server(self) -> bool {
        !matches!(self, DatabaseKind::None | DatabaseKind::Sqlite)
    }

    pub fn label(self) -> &'static str {
        match self {
            DatabaseKind::None => "none",
            DatabaseKind::Sqlite => "sqlite",
            DatabaseKind::Postgres => "postgres",
            DatabaseKind::Mariadb => "mariadb",
            DatabaseKind::ExternalPostgres => "external-postgres",
            DatabaseKind::ExternalMariadb => "external-mariadb",
            DatabaseKind::Mongodb => "mongodb",
            DatabaseKind::ExternalMongodb => "external-mongodb",
        }
    }
}

/// A kind of service an app can use besides its database.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
pub enum ServiceKind {
    Redis,
    Meilisearch,
    /// PostgreSQL with the pgvector extension: a vector store (a retrieval API's).
    Pgvector,
}

impl ServiceKind {
    pub const ALL: [ServiceKind; 3] = [
        ServiceKind::Redis,
        ServiceKind::Meilisearch,
        ServiceKind::Pgvector,
    ];

    pub fn label(self) -> &'static str {
        match self {
            ServiceKind::Redis => "redis",
            ServiceKind::Meilisearch => "meilisearch",
            ServiceKind::Pgvector => "pgvector",
        }
    }
}

/// A service the app uses: always, or when the `bool` question `when` is answered yes.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ServiceDef {
    pub kind: ServiceKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<Key>,
    /// For a server that is not in Debian (Meilisearch): its release binary, pinned by the
    /// profile, downloaded and checked on the host like an app's release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<ServiceRelease>,
}

/// A service's own release: its version and, per architecture (`amd64`, `arm64`), where to
/// download it and the sum to check.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ServiceRelease {
    pub version: String,
    pub artifacts: BTreeMap<String, Artifact>,
}

impl ServiceDef {
    /// Whether an instance with these settings uses it.
    pub fn enabled(&self, settings: &BTreeMap<String, String>) -> bool {
        match &self.when {
            None => true,
            Some(k) => settings.get(k.as_str()).is_some_and(|v| v == "true"),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Databases {
    pub default: DatabaseKind,
    pub supported: Vec<DatabaseKind>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum InstallMethod {
    /// The profile's release artifact, downloaded and checked on the host, pushed into the CT:
    /// the one executable `binary`, or with `strip_components` the whole archive (an app
    /// shipped as a directory) with that many leading path parts removed, `binary` then being
    /// the executable's path inside it (`bin/myapp`).
    Release {
        binary: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        strip_components: Option<u32>,
    },
    /// A Python package from PyPI, pinned, in its own venv. The main component's version is the
    /// release's (`versions[].version`); an extra component pins its own `version`.
    Pip {
        package: PackageName,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<String>,
        /// The console script to run (`venv/bin/NAME`); the package's name by default.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        entry_point: Option<String>,
    },
    /// A package from the npm registry with its dependency tree, installed by npm in the
    /// release directory; with `lockfile` (a file of the profile, `{version}` replaced), the
    /// tree is exactly the lockfile's (`npm ci`).
    Npm {
        package: PackageName,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<String>,
        /// The executable under `node_modules/.bin/`; the package's name (without scope) by default.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bin: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lockfile: Option<String>,
    },
    /// The release's source archive (`versions[].source`), checked on the host, unpacked
    /// without its first `strip_components` path parts (1 by default) into the release
    /// directory and built there by the `build` commands, as the component's user, before any
    /// write is held. `entry` is the executable the unit runs, relative to the release
    /// directory. The build's memory and free disk (MiB) are checked before it starts. An
    /// extra component pins its own `version` and `source` and is built in its own directory
    /// (`/opt/PROFILE/NAME-venv`, the template's `venv`).
    Source {
        entry: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<SourceArchive>,
        #[serde(default = "one")]
        strip_components: u32,
        #[serde(default)]
        build: Vec<BuildCommand>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        build_memory_mib: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        build_disk_mib: Option<u64>,
    },
}

fn one() -> u32 {
    1
}

impl InstallMethod {
    /// The executable, relative to the release directory (`myapp`, `venv/bin/myapp`,
    /// `node_modules/.bin/myapp`).
    pub fn entry(&self) -> String {
        match self {
            InstallMethod::Release { binary, .. } => binary.clone(),
            InstallMethod::Pip {
                package,
                entry_point,
                ..
            } => format!(
                "venv/bin/{}",
                entry_point.as_deref().unwrap_or(package.as_str())
            ),
            InstallMethod::Npm { package, bin, .. } => format!(
                "node_modules/.bin/{}",
                bin.as_deref().unwrap_or_else(|| package
                    .as_str()
                    .rsplit('/')
                    .next()
                    .unwrap_or_default())
            ),
            InstallMethod::Source { entry, .. } => entry.clone(),
        }
    }

    /// The runtime it needs in the container.
    pub fn runtime(&self) -> Option<Runtime> {
        match self {
            // A source build names what it needs itself (`runtimes:`, `packages:`).
            InstallMethod::Release { .. } | InstallMethod::Source { .. } => None,
            InstallMethod::Pip { .. } => Some(Runtime::Python),
            InstallMethod::Npm { .. } => Some(Runtime::Node),
        }
    }

    /// The package version of a release (`v1.2.0` → `1.2.0` for registries).
    pub fn package_version(release: &str) -> &str {
        match release.strip_prefix('v') {
            Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => rest,
            _ => release,
        }
    }
}

/// A language runtime from Debian's packages (NodeSource and python.org are not needed: the
/// Debian release's Node.js and Python are what the container gets).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    Node,
    Python,
}

impl Runtime {
    pub fn packages(self) -> &'static [&'static str] {
        match self {
            Runtime::Node => &["nodejs", "npm"],
            Runtime::Python => &["python3", "python3-venv"],
        }
    }
}

/// A PyPI or npm package name (`myapp`, `my-app`, `@scope/name`): it reaches pip and npm
/// as one argument.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct PackageName(String);

impl PackageName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PackageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PackageName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let (scope, name) = match s.strip_prefix('@').and_then(|r| r.split_once('/')) {
            Some((scope, name)) => (Some(scope), name),
            None => (None, s.as_str()),
        };
        let part = |p: &str| {
            !p.is_empty()
                && p.len() <= 100
                && p.starts_with(|c: char| c.is_ascii_alphanumeric())
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        if part(name) && scope.is_none_or(part) {
            Ok(PackageName(s))
        } else {
            Err(serde::de::Error::custom(format!(
                "invalid package name `{}`: expected letters, digits, '-', '_' and '.' (npm: optionally @scope/name)",
                crate::escape::shown(&s)
            )))
        }
    }
}

/// A version as registries write it (`3.2.3`, `4.0.0-beta.1`, `1.0+local`): no spaces, no
/// shell or URL syntax.
pub fn check_package_version(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 64
        && v.starts_with(|c: char| c.is_ascii_alphanumeric())
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | '!' | '_'))
}

/// How a component's health is checked, in one of three forms: HTTP (`path`, the answer's
/// status and optionally its body or a JSON field), TCP (`tcp: true`: its port accepts a
/// connection) or a command run in the container as the component's user (healthy on exit 0).
/// Which fields are present says the form; `Profile::check` refuses two forms at once.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Health {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default = "default_status")]
    pub expect_status: u16,
    /// A text the HTTP answer's body must contain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// A field of the HTTP answer's JSON body and the value it must hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<JsonMatch>,
    /// The component's port accepts a TCP connection.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tcp: bool,
    /// Runs in the container as the component's user, as argv (never through a shell);
    /// `{port}` in an argument is the slot's port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Where the running version can be read, for the update gate.
    #[serde(default)]
    pub version: Option<VersionProbe>,
    #[serde(default = "default_interval")]
    pub interval_s: u32,
    #[serde(default = "default_timeout")]
    pub timeout_s: u32,
    #[serde(default = "default_deadline")]
    pub deadline_s: u32,
}

/// `json: {field: status, equals: ok}`: the dotted path of a field and the value it holds.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JsonMatch {
    pub field: String,
    pub equals: serde_json::Value,
}

/// The form of a health check, as `Health` describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthCheck<'a> {
    Http {
        path: &'a str,
        status: u16,
        body: Option<&'a str>,
        json: Option<&'a JsonMatch>,
    },
    Tcp,
    Command(&'a [String]),
}

impl Health {
    /// The check's form. A profile that passed `Profile::check` has exactly one; otherwise
    /// HTTP wins, then TCP (and an empty HTTP path is `/`).
    pub fn check(&self) -> HealthCheck<'_> {
        match (&self.path, self.tcp, &self.command) {
            (Some(p), _, _) => HealthCheck::Http {
                path: p,
                status: self.expect_status,
                body: self.body.as_deref(),
                json: self.json.as_ref(),
            },
            (None, true, _) => HealthCheck::Tcp,
            (None, false, Some(c)) => HealthCheck::Command(c),
            (None, false, None) => HealthCheck::Http {
                path: "/",
                status: self.expect_status,
                body: self.body.as_deref(),
                json: self.json.as_ref(),
            },
        }
    }

    /// `http`, `tcp` or `command`: the form's name, as status reports it.
    pub fn kind(&self) -> &'static str {
        match self.check() {
            HealthCheck::Http { .. } => "http",
            HealthCheck::Tcp => "tcp",
            HealthCheck::Command(_) => "command",
        }
    }
}

/// The value at a dotted path (`version`, `info.version`, `releases.0.tag`) of a JSON value;
/// a number segment indexes an array.
pub fn json_at<'a>(json: &'a serde_json::Value, dotted: &str) -> &'a serde_json::Value {
    let mut v = json;
    for seg in dotted.split('.') {
        v = match seg.parse::<usize>() {
            Ok(i) if v.is_array() => &v[i],
            _ => &v[seg],
        };
    }
    v
}

/// A JSON scalar as text (`"1.2"` and `1.2` both read `1.2`); `None` for objects, arrays, null.
pub fn json_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl JsonMatch {
    /// Whether `body` is JSON holding `equals` at `field`; the reason when not.
    pub fn matches(&self, body: &str) -> Result<(), String> {
        let json: serde_json::Value = serde_json::from_str(body.trim())
            .map_err(|e| format!("the answer is not JSON: {e}"))?;
        let found = json_at(&json, &self.field);
        if found == &self.equals
            || (json_text(found).is_some() && json_text(found) == json_text(&self.equals))
        {
            Ok(())
        } else {
            Err(format!(
                "`{}` is {found}, expected {}",
                self.field, self.equals
            ))
        }
    }
}

fn default_status() -> u16 {
    200
}
fn default_interval() -> u32 {
    1
}
fn default_timeout() -> u32 {
    5
}
fn default_deadline() -> u32 {
    60
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    pub latest: HttpUrl,
    /// The JSON field holding the version (`tag_name` for GitHub releases).
    pub field: String,
}

/// Where the running version is read: an HTTP path on the component, and in its answer a JSON
/// field (a dotted path: `version`, `info.version`, `releases.0.tag`) or a header; or a command
/// run in the container as the component's user, its trimmed output. `pattern` (a regex with
/// one group) picks the version out of that text (`^v?(.*)$`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VersionProbe {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// Argv run in the container as the component's user; `{port}` is the slot's port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
}

impl VersionProbe {
    /// What the probe reads, for messages: `JSON field `info.version` of /api/info`.
    pub fn describe(&self) -> String {
        match (&self.command, &self.field, &self.header) {
            (Some(c), _, _) => format!("the output of `{}`", shown_argv(c)),
            (None, Some(f), _) => format!("JSON field `{f}` of {}", self.http_path()),
            (None, None, Some(h)) => format!("header `{h}` of {}", self.http_path()),
            (None, None, None) => self.http_path().to_string(),
        }
    }

    /// How the version is read, in words: `command` or `HTTP`.
    pub fn kind(&self) -> &'static str {
        if self.command.is_some() {
            "command"
        } else {
            "HTTP"
        }
    }

    /// The HTTP path it reads (`/` when a command probe is asked).
    pub fn http_path(&self) -> &str {
        self.path.as_deref().unwrap_or("/")
    }

    /// The version in an HTTP answer (`headers` as `name: value` lines, `body` its text).
    pub fn extract(&self, headers: &str, body: &str) -> Result<String, String> {
        let path = self.http_path();
        let raw = if let Some(h) = &self.header {
            headers
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.trim()
                        .eq_ignore_ascii_case(h)
                        .then(|| v.trim().to_string())
                })
                .ok_or_else(|| format!("the answer of {path} has no header `{h}`"))?
        } else {
            let field = self.field.as_deref().unwrap_or("version");
            let json: serde_json::Value = serde_json::from_str(body.trim())
                .map_err(|e| format!("{path} did not answer JSON: {e}"))?;
            match json_at(&json, field) {
                v @ (serde_json::Value::String(_) | serde_json::Value::Number(_)) => {
                    json_text(v).unwrap_or_default()
                }
                _ => return Err(format!("the answer of {path} has no string at `{field}`")),
            }
        };
        self.pick(&raw)
    }

    /// The version in a command's output: trimmed, then `pattern`.
    pub fn extract_output(&self, stdout: &str) -> Result<String, String> {
        let raw = stdout.trim();
        if raw.is_empty() {
            return Err("the command printed nothing".into());
        }
        self.pick(raw)
    }

    fn pick(&self, raw: &str) -> Result<String, String> {
        match &self.pattern {
            None => Ok(raw.to_string()),
            Some(p) => {
                let re = regex::Regex::new(p).map_err(|e| format!("pattern: {e}"))?;
                re.captures(raw)
                    .and_then(|c| c.get(1).or_else(|| c.get(0)))
                    .map(|m| m.as_str().to_string())
                    .ok_or_else(|| format!("`{raw}` does not match the pattern `{p}`"))
            }
        }
    }
}

/// An argv as a user reads it in a message, control characters shown escaped.
pub fn shown_argv(argv: &[String]) -> String {
    argv.iter()
        .map(|a| crate::escape::shown(a))
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileDef {
    /// A template under `assets/`.
    pub template: String,
    /// Where it goes in the container.
    pub path: String,
    /// Octal, as a string: "0640".
    #[serde(default = "default_mode")]
    pub mode: String,
    #[serde(default)]
    pub owner: Option<String>,
    /// Written only when absent: a starting point the admin then owns (an app's own
    /// configuration file). Update, reconfigure and restore never replace it, status does not
    /// report its edits as drift; list it in `backup.config` to keep it in backups.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub seed: bool,
}

impl FileDef {
    /// In a path, the slot the file belongs to: one file per slot, rendered with that slot's
    /// context (a slot's own database, say), read by that slot's unit only.
    pub const SLOT: &'static str = "{slot}";

    pub fn per_slot(&self) -> bool {
        self.path.contains(Self::SLOT)
    }

    /// Where the file goes for `slot` (the main component's; the others have no slot).
    pub fn path_in(&self, slot: Option<crate::instance::Slot>) -> String {
        self.path.replace(
            Self::SLOT,
            slot.unwrap_or(crate::instance::Slot::Blue).as_str(),
        )
    }
}

fn default_mode() -> String {
    "0644".into()
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Component {
    pub name: Name,
    pub description: String,
    /// A boolean question that switches this component on (`mcp`); absent means always.
    #[serde(default)]
    pub when: Option<Key>,
    pub install: InstallMethod,
    /// The unprivileged system user it runs as.
    pub user: Name,
    pub port: Port,
    /// The second slot's port, for components that take part in blue-green updates.
    #[serde(default)]
    pub green_port: Option<Port>,
    /// The nginx location that serves it (`/` or `/mcp`); empty for an extra component that
    /// only the app reaches, on loopback (an internal API nginx does not serve).
    #[serde(default)]
    pub location: String,
    pub health: Health,
    /// The systemd unit template under `assets/`.
    pub unit: String,
    #[serde(default)]
    pub files: Vec<FileDef>,
    /// Seconds a stopping slot gets to finish in-flight requests.
    #[serde(default = "default_drain")]
    pub drain_s: u32,
}

fn default_drain() -> u32 {
    10
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Nginx {
    /// The site template under `assets/`.
    pub site: String,
    /// The question whose answer (MiB) sets `client_max_body_size` and the app's upload limit.
    #[serde(default)]
    pub upload_limit_question: Option<Key>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BackupDef {
    /// Directories (or files) holding uploaded files and attachments, relative to the active
    /// slot's data directory (`/var/lib/PROFILE/SLOT`), e.g. `files`.
    #[serde(default)]
    pub paths: Vec<String>,
    /// Config files (absolute paths in the container) that a faithful restore needs (they may
    /// hold secrets). Files Launch renders from templates are re-rendered from the restored
    /// instance record; others are put back with the owner and mode given here (never the
    /// archive's). Missing ones are skipped; a restore writes no other path.
    #[serde(default)]
    pub config: Vec<ConfigFileDef>,
    /// The SQLite database file, relative to the data directory, for instances on SQLite.
    #[serde(default)]
    pub sqlite_file: Option<String>,
}

/// One `backup.config` entry: a path, or a path with the owner and mode a restore gives it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum ConfigFileDef {
    Path(String),
    Full(ConfigFileSpec),
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFileSpec {
    pub path: String,
    /// `user` or `user:group`; root:root when absent.
    #[serde(default)]
    pub owner: Option<String>,
    /// Octal, as a string: "0640"; 0600 when absent (config files may hold secrets).
    #[serde(default)]
    pub mode: Option<String>,
}

impl ConfigFileDef {
    pub fn path(&self) -> &str {
        match self {
            ConfigFileDef::Path(p) => p,
            ConfigFileDef::Full(s) => &s.path,
        }
    }
    /// (user, group) a restore gives the file.
    pub fn owner(&self) -> (String, String) {
        let o = match self {
            ConfigFileDef::Full(ConfigFileSpec { owner: Some(o), .. }) => o.as_str(),
            _ => "root",
        };
        match o.split_once(':') {
            Some((u, g)) => (u.to_string(), g.to_string()),
            None => (o.to_string(), o.to_string()),
        }
    }
    /// The mode a restore gives the file (never setuid, setgid or sticky).
    pub fn mode(&self) -> u32 {
        match self {
            ConfigFileDef::Full(ConfigFileSpec { mode: Some(m), .. }) => {
                u32::from_str_radix(m, 8).unwrap_or(0o600) & 0o777
            }
            _ => 0o600,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Migrations {
    /// The app migrates its database when it starts (so a green slot needs its own copy).
    pub on_start: bool,
    #[serde(default)]
    pub command: Vec<String>,
    /// The app's own export of its whole state to one file (`{file}` is replaced), run with
    /// the slot's environment; with `import`, it moves the data to another database kind.
    #[serde(default)]
    pub export: Vec<String>,
    /// Loads such a file into the configured database (`{file}` is replaced).
    #[serde(default)]
    pub import: Vec<String>,
    /// A line the import reads on its standard input (a confirmation it asks for).
    #[serde(default)]
    pub import_input: Option<String>,
    /// The export's file name (`{file}`), e.g. `export.zip`; `{dir}` is the private
    /// directory launch-tui gives the export.
    #[serde(default)]
    pub export_file: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct UpdatePolicy {
    /// Seconds health is watched after the switch.
    #[serde(default)]
    pub watch_s: Option<u32>,
    /// Releases kept on disk for rollback.
    #[serde(default)]
    pub keep_releases: Option<u32>,
    /// How long nginx holds a write during an update's hold before it answers 503 with
    /// `Retry-After` (seconds; 30 by default).
    #[serde(default)]
    pub hold_max_wait_s: Option<u32>,
    /// Methods that cannot write and so pass during the hold (GET, HEAD, OPTIONS by default;
    /// a WebDAV app adds PROPFIND).
    #[serde(default)]
    pub safe_methods: Option<Vec<String>>,
}

impl UpdatePolicy {
    pub const DEFAULT_HOLD_MAX_WAIT_S: u32 = 30;

    pub fn hold_max_wait_s(&self) -> u32 {
        self.hold_max_wait_s
            .unwrap_or(Self::DEFAULT_HOLD_MAX_WAIT_S)
    }

    pub fn safe_methods(&self) -> Vec<String> {
        self.safe_methods
            .clone()
            .unwrap_or_else(|| ["GET", "HEAD", "OPTIONS"].map(String::from).to_vec())
    }
}

/// Keys launch-tui keeps in an instance's settings besides the container's: a question may not
/// use them.
pub const RESERVED_KEYS: &[&str] = &["old_hosts", "app_url", "version", "name"];

/// A problem found by `Profile::check`, located by its field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub path: String,
    pub message: String,
    pub help: String,
}

impl Profile {
    pub fn question(&self, key: &str) -> Option<&QuestionDef> {
        self.questions.iter().find(|q| q.key.as_str() == key)
    }

    /// The question playing `role`, if the profile has one.
    pub fn role_key(&self, role: Role) -> Option<&str> {
        let r = &self.roles;
        match role {
            Role::PublicUrl => r.public_url.as_ref(),
            Role::AdminEmail => r.admin_email.as_ref(),
            Role::UploadLimitMib => r.upload_limit_mib.as_ref(),
        }
        .map(Key::as_str)
    }

    /// The value an instance's settings give the question playing `role`.
    pub fn role_value<'a>(
        &self,
        role: Role,
        settings: &'a BTreeMap<String, String>,
    ) -> Option<&'a str> {
        settings.get(self.role_key(role)?).map(String::as_str)
    }

    /// Format 1 profiles name no roles: they are the conventional keys, when asked.
    pub(crate) fn fill_format1_roles(&mut self) {
        let key = |k: &str| Key(k.to_string());
        if self.roles.public_url.is_none() && self.question("public_url").is_some() {
            self.roles.public_url = Some(key("public_url"));
        }
        if self.roles.admin_email.is_none() && self.question("admin_email").is_some() {
            self.roles.admin_email = Some(key("admin_email"));
            if let Some(q) = self
                .questions
                .iter_mut()
                .find(|q| q.key.as_str() == "admin_email")
            {
                q.install_only = true;
            }
        }
        if self.roles.upload_limit_mib.is_none() {
            self.roles.upload_limit_mib = self.nginx.upload_limit_question.clone();
        }
    }

    pub fn release(&self, version: &str) -> Option<&Release> {
        self.versions.iter().find(|r| r.version == version)
    }

    /// The newest stable release: the last stable one listed.
    pub fn latest(&self, channel: Channel) -> Option<&Release> {
        self.versions.iter().rev().find(|r| r.channel == channel)
    }

    /// Checks that relate fields to each other. `asset_exists` says whether a template exists.
    pub fn check(&self, asset_exists: &dyn Fn(&str) -> bool) -> Vec<Issue> {
        let mut out = Vec::new();
        let mut issue = |path: String, message: String, help: &str| {
            out.push(Issue {
                path,
                message,
                help: help.to_string(),
            })
        };
        if !(1..=2).contains(&self.format) {
            issue(
                "format".into(),
                format!("unknown profile format {}", self.format),
                "this version of launch-tui reads formats 1 and 2 (`format: 2`)",
            );
        }
        let (min, def) = (&self.resources.minimum, &self.resources.default);
        for (field, lo, hi) in [
            ("cores", min.cores as u64, def.cores as u64),
            ("memory_mib", min.memory_mib, def.memory_mib),
            ("disk_gib", min.disk_gib as u64, def.disk_gib as u64),
        ] {
            if hi < lo {
                issue(
                    format!("resources.default.{field}"),
                    format!("default {hi} is below the minimum {lo}"),
                    "raise the default or lower the minimum",
                );
            }
            if lo == 0 {
                issue(
                    format!("resources.minimum.{field}"),
                    "must be at least 1".into(),
                    "set a positive minimum",
                );
            }
        }
        for (i, m) in self.update.safe_methods().iter().enumerate() {
            // Printed into the site's Lua as a table key: an HTTP method token only.
            if m.is_empty() || m.len() > 20 || !m.bytes().all(|b| b.is_ascii_uppercase()) {
                issue(
                    format!("update.safe_methods[{i}]"),
                    format!("`{m}` is not an HTTP method"),
                    "list methods in capitals, e.g. [GET, HEAD, OPTIONS, PROPFIND]",
                );
            }
        }
        if self.update.hold_max_wait_s() == 0 || self.update.hold_max_wait_s() > 600 {
            issue(
                "update.hold_max_wait_s".into(),
                format!("{} s is outside 1..600", self.update.hold_max_wait_s()),
                "held writes wait at most this long; 30 s is the default",
            );
        }
        if !self.os.supported.contains(&self.os.default) {
            issue(
                "os.default".into(),
                format!("{} is not in os.supported", self.os.default.label()),
                "add it to os.supported or pick a supported default",
            );
        }
        if self.versions.is_empty() {
            issue(
                "versions".into(),
                "no versions listed".into(),
                "list at least one release with its artifacts",
            );
        }
        let main_kind = self.components.first().map(|c| &c.install);
        let from_release = matches!(main_kind, Some(InstallMethod::Release { .. }));
        for (i, r) in self.versions.iter().enumerate() {
            if !from_release && !check_package_version(InstallMethod::package_version(&r.version)) {
                issue(
                    format!("versions[{i}].version"),
                    format!("`{}` is not a package version", r.version),
                    "write the version as the registry does, e.g. 3.2.3",
                );
            }
            if let Some(InstallMethod::Npm {
                lockfile: Some(l), ..
            }) = main_kind
            {
                let name = l.replace("{version}", &r.version);
                if !asset_exists(&name) {
                    issue(
                        "components[0].install.lockfile".into(),
                        format!("the lockfile `{name}` of {} is not in the profile's directory", r.version),
                        "add the package-lock.json npm wrote for this version (npm install PACKAGE@VERSION --package-lock-only)",
                    );
                }
            }
            if r.artifacts.is_empty() && from_release {
                issue(
                    format!("versions[{i}].artifacts"),
                    format!("release {} has no artifacts", r.version),
                    "add at least `amd64: {url, sha256, format}`",
                );
            }
            for (arch, a) in &r.artifacts {
                if !["amd64", "arm64"].contains(&arch.as_str()) {
                    issue(
                        format!("versions[{i}].artifacts.{arch}"),
                        format!("unknown architecture `{arch}`"),
                        "use amd64 or arm64 (Proxmox VE's architectures)",
                    );
                }
                if a.format != ArchiveFormat::Binary && a.binary.is_none() {
                    issue(
                        format!("versions[{i}].artifacts.{arch}"),
                        "an archive needs `binary`: the executable's name inside it".into(),
                        "add `binary: NAME`",
                    );
                }
            }
            for name in r.requires.keys() {
                if !self
                    .components
                    .iter()
                    .skip(1)
                    .any(|c| c.name.as_str() == name)
                {
                    issue(
                        format!("versions[{i}].requires.{name}"),
                        format!("`{name}` is not one of the profile's extra components"),
                        "name a component listed after the first under `components:`",
                    );
                }
            }
            match (main_kind, &r.source) {
                (Some(InstallMethod::Source { .. }), None) => issue(
                    format!("versions[{i}]"),
                    format!("release {} has no `source`", r.version),
                    "add `source: {url, sha256}`: the source archive of this version and its sum",
                ),
                (Some(InstallMethod::Source { .. }), Some(src)) => {
                    if src.format == ArchiveFormat::Binary {
                        issue(
                            format!("versions[{i}].source.format"),
                            "a source archive is a tree, not one binary".into(),
                            "use format: tar.gz (the default) or zip",
                        );
                    }
                }
                (_, None) => {}
                (_, Some(_)) => issue(
                    format!("versions[{i}].source"),
                    "only a main component of `kind: source` builds from a source archive".into(),
                    "remove `source`, or install the app with `kind: source`",
                ),
            }
            if self.versions[..i].iter().any(|o| o.version == r.version) {
                issue(
                    format!("versions[{i}].version"),
                    format!("version {} is listed twice", r.version),
                    "remove the duplicate",
                );
            }
        }
        if !self.databases.supported.contains(&self.databases.default) {
            issue(
                "databases.default".into(),
                format!(
                    "{} is not in databases.supported",
                    self.databases.default.label()
                ),
                "add it to databases.supported",
            );
        }
        for (i, svc) in self.services.iter().enumerate() {
            if self.services[..i].iter().any(|o| o.kind == svc.kind) {
                issue(
                    format!("services[{i}].kind"),
                    format!("service {} is listed twice", svc.kind.label()),
                    "list each service once",
                );
            }
            if let Some(k) = &svc.when {
                if self
                    .question(k.as_str())
                    .is_none_or(|q| q.kind != QuestionKind::Bool)
                {
                    issue(
                        format!("services[{i}].when"),
                        format!("`{k}` is not a `bool` question of this profile"),
                        "name a question with `kind: bool`, or remove `when` to always use it",
                    );
                }
            }
            let needs_release = crate::service::adapter(svc.kind).binary().is_some();
            match (&svc.release, needs_release) {
                (None, true) => issue(
                    format!("services[{i}].release"),
                    format!(
                        "{} is not in Debian: the profile must pin its release",
                        svc.kind.label()
                    ),
                    "add `release: {version, artifacts: {amd64: {url, sha256, format: binary}}}`",
                ),
                (Some(_), false) => issue(
                    format!("services[{i}].release"),
                    format!(
                        "{} comes from Debian's packages: a release is not used",
                        svc.kind.label()
                    ),
                    "remove `release`",
                ),
                (Some(rel), true) => {
                    let v = &rel.version;
                    if v.is_empty()
                        || v.len() > 64
                        || !v
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
                        || v.starts_with('.')
                    {
                        issue(
                            format!("services[{i}].release.version"),
                            format!("`{}` is not a version", crate::escape::shown(v)),
                            "use letters, digits, `.`, `-` and `_`, e.g. `v1.35.1`",
                        );
                    }
                    if rel.artifacts.is_empty() {
                        issue(
                            format!("services[{i}].release.artifacts"),
                            "no artifacts".into(),
                            "give at least `amd64: {url, sha256, format: binary}`",
                        );
                    }
                    for (arch, a) in &rel.artifacts {
                        if !matches!(arch.as_str(), "amd64" | "arm64") {
                            issue(
                                format!("services[{i}].release.artifacts.{arch}"),
                                format!("`{}` is not an architecture", crate::escape::shown(arch)),
                                "use `amd64` or `arm64`",
                            );
                        }
                        if a.format != ArchiveFormat::Binary && a.binary.is_none() {
                            issue(
                                format!("services[{i}].release.artifacts.{arch}.binary"),
                                "an archive needs the executable's name inside it".into(),
                                "add `binary: NAME`, or use `format: binary`",
                            );
                        }
                    }
                }
                (None, false) => {}
            }
        }
        for (i, s) in self.secrets.iter().enumerate() {
            if crate::service::SECRET_KEYS.contains(&s.key.as_str())
                || s.key.as_str() == "db_password"
            {
                issue(
                    format!("secrets[{i}].key"),
                    format!("`{}` is reserved: launch-tui generates it itself", s.key),
                    "give the secret another key",
                );
            }
        }
        for (i, q) in self.questions.iter().enumerate() {
            if q.kind == QuestionKind::Choice && q.choices.is_empty() {
                issue(
                    format!("questions[{i}].choices"),
                    "a choice question needs choices".into(),
                    "list the choices",
                );
            }
            if let (Some(d), QuestionKind::Choice) = (&q.default, q.kind) {
                if !q.choices.contains(d) {
                    issue(
                        format!("questions[{i}].default"),
                        format!("default `{d}` is not one of the choices"),
                        "make the default one of the choices",
                    );
                }
            }
            if self.questions[..i].iter().any(|o| o.key == q.key) {
                issue(
                    format!("questions[{i}].key"),
                    format!("question `{}` is defined twice", q.key),
                    "give each question its own key",
                );
            }
        }
        for (i, c) in self.backup.config.iter().enumerate() {
            let path = c.path();
            if !path.starts_with('/')
                || path[1..]
                    .split('/')
                    .any(|p| p.is_empty() || p == "." || p == "..")
            {
                issue(
                    format!("backup.config[{i}]"),
                    format!("`{path}` is not a plain absolute path"),
                    "give the file's absolute path in the container, without `.`/`..`",
                );
            }
            if let ConfigFileDef::Full(spec) = c {
                let name_ok = |n: &str| {
                    !n.is_empty()
                        && n.chars()
                            .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '-'))
                };
                if let Some(o) = &spec.owner {
                    let (u, g) = o.split_once(':').unwrap_or((o, o));
                    if !name_ok(u) || !name_ok(g) {
                        issue(
                            format!("backup.config[{i}].owner"),
                            format!("`{o}` is not a user or user:group name"),
                            "use names such as `root` or `app:app`",
                        );
                    }
                }
                if let Some(m) = &spec.mode {
                    if u32::from_str_radix(m, 8).map_or(true, |v| v > 0o777) {
                        issue(
                            format!("backup.config[{i}].mode"),
                            format!("`{m}` is not a file mode (setuid, setgid and sticky bits are not allowed)"),
                            "use an octal mode such as \"0640\"",
                        );
                    }
                }
            }
        }
        let mut ports = BTreeMap::new();
        for (i, c) in self.components.iter().enumerate() {
            for (field, p) in [("port", Some(c.port)), ("green_port", c.green_port)] {
                if let Some(p) = p {
                    if let Some(other) = ports.insert(p, c.name.to_string()) {
                        issue(
                            format!("components[{i}].{field}"),
                            format!("port {} is also used by component `{other}`", p.get()),
                            "give every component and slot its own port",
                        );
                    }
                }
            }
            if let Some(w) = &c.when {
                match self.question(w.as_str()) {
                    Some(q) if q.kind == QuestionKind::Bool => {}
                    _ => issue(
                        format!("components[{i}].when"),
                        format!("`{w}` is not a yes/no question of this profile"),
                        "name a question with `kind: bool`",
                    ),
                }
            }
            if !c.location.starts_with('/') && (i == 0 || !c.location.is_empty()) {
                issue(
                    format!("components[{i}].location"),
                    format!("`{}` is not a path", c.location),
                    if i == 0 {
                        "use an nginx location such as /"
                    } else {
                        "use an nginx location such as /mcp, or leave it out for a component only the app reaches"
                    },
                );
            }
            let plain = |s: &str| {
                !s.is_empty()
                    && s.chars()
                        .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '-' | '_'))
            };
            if let (
                InstallMethod::Release {
                    strip_components: Some(_),
                    ..
                },
                0,
            ) = (&c.install, i)
            {
                for (v, r) in self.versions.iter().enumerate() {
                    for (arch, a) in &r.artifacts {
                        if a.format == ArchiveFormat::Binary {
                            issue(
                                format!("versions[{v}].artifacts.{arch}.format"),
                                "a plain binary is not a tree, but the install sets `strip_components`".into(),
                                "ship a zip or tar.gz, or remove `strip_components`",
                            );
                        }
                    }
                }
            }
            match (&c.install, i) {
                (InstallMethod::Release { .. }, 0) => {}
                (InstallMethod::Release { .. }, 1..) => issue(
                    format!("components[{i}].install"),
                    "an extra component cannot be installed from the app's release".into(),
                    "use kind: pip or kind: npm with a pinned version, kind: source with its own `version` and `source`, or make it the first component",
                ),
                (
                    InstallMethod::Source {
                        build_memory_mib,
                        build_disk_mib,
                        version,
                        source,
                        ..
                    },
                    _,
                ) => {
                    match (i, version, source) {
                        (0, None, None) | (1.., Some(_), Some(_)) => {}
                        (0, ..) => issue(
                            format!("components[{i}].install"),
                            "the app's own source comes from `versions[].source`, not the component".into(),
                            "remove `version` and `source` from the first component's install",
                        ),
                        _ => issue(
                            format!("components[{i}].install"),
                            "an extra component built from source pins its own `version` and `source: {url, sha256}`".into(),
                            "add both (the version is a plain word such as v0.9.0)",
                        ),
                    }
                    if let Some(v) = version {
                        if !plain(v) {
                            issue(
                                format!("components[{i}].install.version"),
                                format!("`{v}` is not a plain version word"),
                                "letters, digits, `.`, `-` and `_`, e.g. v0.9.0",
                            );
                        }
                    }
                    for (field, v) in [
                        ("build_memory_mib", build_memory_mib),
                        ("build_disk_mib", build_disk_mib),
                    ] {
                        if v.is_none_or(|v| v == 0) {
                            issue(
                                format!("components[{i}].install"),
                                format!("a source build needs `{field}` (MiB, at least 1)"),
                                "say what the build needs: `build_memory_mib` (the install refuses a container with less memory) and `build_disk_mib` (free disk checked before every build)",
                            );
                        }
                    }
                    if let Some(m) = build_memory_mib {
                        if *m > self.resources.default.memory_mib {
                            issue(
                                "resources.default.memory_mib".into(),
                                format!(
                                    "{} MiB is below the build's `build_memory_mib` of {m} MiB",
                                    self.resources.default.memory_mib
                                ),
                                "raise the default memory, or lower build_memory_mib",
                            );
                        }
                    }
                }
                (
                    InstallMethod::Pip { version, .. } | InstallMethod::Npm { version, .. },
                    0,
                ) if version.is_some() => issue(
                    format!("components[{i}].install.version"),
                    "the app's own version comes from `versions:`".into(),
                    "remove it, and list the versions under `versions:`",
                ),
                (
                    InstallMethod::Pip { version, .. } | InstallMethod::Npm { version, .. },
                    _,
                ) if i > 0 && version.as_deref().is_none_or(|v| !check_package_version(v)) => {
                    issue(
                        format!("components[{i}].install.version"),
                        "an extra component pins its version".into(),
                        "add `version: X.Y.Z`",
                    )
                }
                _ => {}
            }
            if let InstallMethod::Pip {
                entry_point: Some(e),
                ..
            }
            | InstallMethod::Npm { bin: Some(e), .. } = &c.install
            {
                if !plain(e) {
                    issue(
                        format!("components[{i}].install"),
                        format!("`{e}` is not a plain executable name"),
                        "name the executable only, e.g. myapp",
                    );
                }
            }
            if let InstallMethod::Source {
                entry,
                strip_components,
                build,
                ..
            } = &c.install
            {
                if entry.is_empty()
                    || entry
                        .split('/')
                        .any(|s| s.is_empty() || s == "." || s == "..")
                    || entry.chars().any(|ch| ch.is_control() || ch == ' ')
                {
                    issue(
                        format!("components[{i}].install.entry"),
                        format!("`{}` is not a plain path", crate::escape::shown(entry)),
                        "name the executable the build leaves, relative to the release directory, e.g. bin/myapp",
                    );
                }
                if *strip_components > 8 {
                    issue(
                        format!("components[{i}].install.strip_components"),
                        format!("{strip_components} leading path parts"),
                        "source archives hold their tree under one top directory: 1 (the default), or 0",
                    );
                }
                for (j, b) in build.iter().enumerate() {
                    let parts: Vec<&String> = match b {
                        BuildCommand::Shell(l) => vec![l],
                        BuildCommand::Argv(a) => a.iter().collect(),
                    };
                    if parts.first().is_none_or(|p| p.trim().is_empty())
                        || parts.iter().any(|p| p.contains('\0'))
                    {
                        issue(
                            format!("components[{i}].install.build[{j}]"),
                            "an empty command, or one with a NUL character".into(),
                            "write a shell line (`npm ci && npm run build`) or an argv list ([make, -j2])",
                        );
                    }
                }
            }
            if let InstallMethod::Release { binary, .. } = &c.install {
                if binary.is_empty()
                    || binary
                        .split('/')
                        .any(|s| s.is_empty() || s == "." || s == "..")
                {
                    issue(
                        format!("components[{i}].install.binary"),
                        format!("`{binary}` is not a plain path"),
                        "name the executable, e.g. myapp",
                    );
                }
            }
            check_health(&c.health, i, &mut issue);
            let mut templates = vec![(format!("components[{i}].unit"), c.unit.clone())];
            for (j, f) in c.files.iter().enumerate() {
                templates.push((
                    format!("components[{i}].files[{j}].template"),
                    f.template.clone(),
                ));
                if u32::from_str_radix(&f.mode, 8).map_or(true, |m| m > 0o7777) {
                    issue(
                        format!("components[{i}].files[{j}].mode"),
                        format!("`{}` is not an octal file mode", f.mode),
                        "write it like \"0640\"",
                    );
                }
                let bare = f.path.replace(FileDef::SLOT, "");
                let field = format!("components[{i}].files[{j}].path");
                if !f.path.starts_with('/') || bare.contains(['{', '}']) {
                    issue(
                        field,
                        format!("`{}` is not an absolute path (`{{slot}}` is the only placeholder)", f.path),
                        "write it like /etc/myapp/myapp.env, or /etc/myapp/db-{slot}.env for one file per slot",
                    );
                } else if f.per_slot() && (i > 0 || f.seed) {
                    issue(
                        field,
                        format!(
                            "`{}` is a file per slot, but {}",
                            f.path,
                            if f.seed {
                                "a seeded file is the admin's, one for both slots"
                            } else {
                                "only the main component runs in slots"
                            }
                        ),
                        "drop `{slot}` from the path",
                    );
                }
            }
            for (path, t) in templates {
                if !asset_exists(&t) {
                    issue(
                        path,
                        format!("template `{t}` is not in the profile's directory"),
                        "add the file next to profile.yaml or fix the name",
                    );
                }
            }
        }
        for (i, a) in self.apt_sources.iter().enumerate() {
            if self.apt_sources[..i].iter().any(|o| o.name == a.name) {
                issue(
                    format!("apt_sources[{i}].name"),
                    format!("apt source `{}` is listed twice", a.name),
                    "give each source its own name",
                );
            }
            for (field, words) in [("suites", &a.suites), ("components", &a.components)] {
                if words.is_empty() {
                    issue(
                        format!("apt_sources[{i}].{field}"),
                        format!("apt source `{}` lists no {field}", a.name),
                        "list at least one, e.g. suites: [bookworm], components: [main]",
                    );
                }
            }
            if !asset_exists(&a.key) {
                issue(
                    format!("apt_sources[{i}].key"),
                    format!(
                        "the key file `{}` is not in the profile's directory",
                        crate::escape::shown(&a.key)
                    ),
                    "add the repository's ASCII-armored public key next to profile.yaml (gpg --armor --export KEYID > NAME.asc)",
                );
            }
        }
        if self.components.is_empty() {
            issue(
                "components".into(),
                "no components".into(),
                "describe at least the app's main component",
            );
        }
        if let Some(b) = &self.bootstrap {
            if !asset_exists(&b.script) {
                issue(
                    "bootstrap.script".into(),
                    format!("template `{}` is not in the profile's directory", b.script),
                    "add the file next to profile.yaml or fix the name",
                );
            }
        }
        if !asset_exists(&self.nginx.site) {
            issue(
                "nginx.site".into(),
                format!(
                    "template `{}` is not in the profile's directory",
                    self.nginx.site
                ),
                "add the file next to profile.yaml or fix the name",
            );
        }
        for role in Role::ALL {
            let Some(k) = self.role_key(role) else {
                if role == Role::PublicUrl && self.format >= 2 {
                    issue(
                        "roles.public_url".into(),
                        "no question is the public URL".into(),
                        "add a `kind: url` question and name it: roles: { public_url: KEY }",
                    );
                }
                continue;
            };
            match self.question(k) {
                Some(q) if q.kind == role.kind() => {}
                _ => issue(
                    format!("roles.{}", role.field()),
                    format!("`{k}` is not a {:?} question of this profile", role.kind())
                        .to_lowercase(),
                    &format!(
                        "name a question with `kind: {}`",
                        format!("{:?}", role.kind()).to_lowercase()
                    ),
                ),
            }
        }
        for (i, q) in self.questions.iter().enumerate() {
            if crate::install::settings::CONTAINER_KEYS.contains(&q.key.as_str())
                || RESERVED_KEYS.contains(&q.key.as_str())
            {
                issue(
                    format!("questions[{i}].key"),
                    format!("`{}` is reserved: launch-tui sets it itself", q.key),
                    "give the question another key",
                );
            }
            if q.after_install.is_some() && !q.install_only {
                issue(
                    format!("questions[{i}].after_install"),
                    "`after_install` without `install_only: true`".into(),
                    "add `install_only: true` or remove `after_install`",
                );
            }
            for (k, v) in &q.required_when {
                let ok = match self.question(k.as_str()) {
                    Some(o) if o.key == q.key => false,
                    Some(o) if o.kind == QuestionKind::Bool => v == "true" || v == "false",
                    Some(o) if o.kind == QuestionKind::Choice => o.choices.contains(v),
                    _ => false,
                };
                if !ok {
                    issue(
                        format!("questions[{i}].required_when.{k}"),
                        format!("`{k}: {v}` is not an answer of another yes/no or choice question of this profile"),
                        "name a `bool` question with \"true\" or \"false\", or a `choice` question with one of its choices",
                    );
                }
            }
        }
        if let Some(q) = &self.nginx.upload_limit_question {
            if self
                .question(q.as_str())
                .is_none_or(|q| q.kind != QuestionKind::Integer)
            {
                issue(
                    "nginx.upload_limit_question".into(),
                    format!("`{q}` is not an integer question of this profile"),
                    "name a question with `kind: integer`",
                );
            }
        }
        out
    }
}

/// An argv a profile runs in the container: at least a program, no empty program, no control
/// characters (they would hide what runs in messages and logs).
fn argv_problem(argv: &[String]) -> Option<String> {
    match argv.first() {
        None => return Some("an empty command".into()),
        Some(p) if p.trim().is_empty() => return Some("the command's program is empty".into()),
        _ => {}
    }
    argv.iter()
        .position(|a| a.chars().any(char::is_control))
        .map(|j| {
            format!(
                "argument {j} (`{}`) holds a control character",
                crate::escape::shown(&argv[j])
            )
        })
}

/// The rules of `health`: exactly one form; `body` and `json` only with HTTP; commands sound.
fn check_health(h: &Health, i: usize, issue: &mut impl FnMut(String, String, &str)) {
    let at = format!("components[{i}].health");
    let forms: Vec<&str> = [
        ("path", h.path.is_some()),
        ("tcp", h.tcp),
        ("command", h.command.is_some()),
    ]
    .into_iter()
    .filter_map(|(n, on)| on.then_some(n))
    .collect();
    if forms.len() != 1 {
        issue(
            at.clone(),
            if forms.is_empty() {
                "no health check: none of `path`, `tcp: true`, `command`".into()
            } else {
                format!("{} at once: a check has one form", forms.join(" and "))
            },
            "write one of: `path: /health` (HTTP), `tcp: true`, or `command: [PROGRAM, ARG...]`",
        );
    }
    if h.path.is_none() {
        for (field, on) in [
            ("body", h.body.is_some()),
            ("json", h.json.is_some()),
            ("expect_status", h.expect_status != default_status()),
        ] {
            if on {
                issue(
                    format!("{at}.{field}"),
                    format!("`{field}` checks an HTTP answer, but the check has no `path`"),
                    "add `path:` (an HTTP check), or remove it",
                );
            }
        }
    }
    if let Some(p) = &h.path {
        if !p.starts_with('/') || p.chars().any(char::is_control) {
            issue(
                format!("{at}.path"),
                format!("`{}` is not a path", crate::escape::shown(p)),
                "use a path such as /health",
            );
        }
    }
    if h.body.as_deref().is_some_and(str::is_empty) {
        issue(
            format!("{at}.body"),
            "an empty text matches every answer".into(),
            "write a text the healthy answer contains, or remove `body`",
        );
    }
    if let Some(j) = &h.json {
        if j.field.is_empty() || j.field.split('.').any(str::is_empty) {
            issue(
                format!("{at}.json.field"),
                format!(
                    "`{}` is not a dotted field path",
                    crate::escape::shown(&j.field)
                ),
                "write a path such as status or checks.db.state",
            );
        }
    }
    if let Some(c) = &h.command {
        if let Some(why) = argv_problem(c) {
            issue(
                format!("{at}.command"),
                why,
                "list the program and its arguments: [pg_isready, -q]; for shell syntax write [sh, -c, '...'] yourself",
            );
        }
    }
    if h.timeout_s == 0 || h.deadline_s == 0 {
        issue(
            at.clone(),
            "`timeout_s` and `deadline_s` must be at least 1".into(),
            "give each try and the whole wait some seconds",
        );
    }
    if let Some(v) = &h.version {
        if v.path.is_some() == v.command.is_some() {
            issue(
                format!("{at}.version"),
                "the version is read from a `path` or a `command`, one of them".into(),
                "write `path: /api/version` with `field` or `header`, or `command: [PROGRAM, ARG...]`",
            );
        }
        if v.field.is_some() && v.header.is_some() {
            issue(
                format!("{at}.version"),
                "both `field` and `header`".into(),
                "read the version from one of them",
            );
        }
        if v.command.is_some() && (v.field.is_some() || v.header.is_some()) {
            issue(
                format!("{at}.version"),
                "`field` and `header` read an HTTP answer, not a command's output".into(),
                "remove them; `pattern` picks the version out of the output",
            );
        }
        if let Some(p) = &v.pattern {
            if let Err(e) = regex::Regex::new(p) {
                issue(
                    format!("{at}.version.pattern"),
                    format!("not a regular expression: {e}"),
                    "write a regex with one group around the version, e.g. ^v?(.+)$",
                );
            }
        }
        if let Some(p) = &v.path {
            if !p.starts_with('/') {
                issue(
                    format!("{at}.version.path"),
                    format!("`{p}` is not a path"),
                    "use a path such as /api/info",
                );
            }
        }
        if let Some(c) = &v.command {
            if let Some(why) = argv_problem(c) {
                issue(
                    format!("{at}.version.command"),
                    why,
                    "list the program and its arguments: [myapp, --version]",
                );
            }
        }
    }
}
