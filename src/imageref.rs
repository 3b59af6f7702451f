//! Image references: parse, normalize and display `[host[:port]/]path[:tag][@algo:hex]`.
//!
//! The grammar is the one of `distribution/reference`: lowercase path components joined
//! by `/`, each made of `[a-z0-9]+` runs separated by `.`, `_`, `__` or one or more `-`;
//! a tag `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`; a digest `sha256:<64 hex>` or
//! `sha512:<128 hex>`. The first component is a registry host when it contains `.` or
//! `:`, is `localhost`, or has an uppercase letter (as Docker decides it).
//!
//! Normalization follows Docker: no host means `docker.io`, `index.docker.io` is
//! `docker.io`, and a one-component repository on Docker Hub gets `library/`. A
//! reference with both a tag and a digest keeps both: the registry ignores the tag, but
//! humans read it and repin looks it up.

use std::fmt;
use std::str::FromStr;

/// The registry host Docker uses when a reference names none.
pub const DOCKER_HUB: &str = "docker.io";

/// The tag a reference that names none is looked up by (and written with, when repin
/// pins it).
pub const DEFAULT_TAG: &str = "latest";

/// Longest repository name (host included) distribution accepts.
const MAX_NAME_LEN: usize = 255;
/// Longest tag distribution accepts.
const MAX_TAG_LEN: usize = 128;

/// A parsed, normalized image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageRef {
    /// Normalized registry host, with port when one was given (`docker.io`, `ghcr.io`,
    /// `localhost:5000`).
    pub registry: String,
    /// Normalized repository path (`library/nginx`, `acme/app`).
    pub repository: String,
    /// The tag as written, if any.
    pub tag: Option<String>,
    /// The digest, if the reference is pinned.
    pub digest: Option<Digest>,
}

/// A content digest: algorithm and lowercase hex of exactly the algorithm's length.
///
/// The fields are private so that no value breaks that rule: a `Digest` comes only from
/// [`str::parse`] (the reference grammar's check) or from hashing bytes
/// ([`Digest::sha256_of`]). Every digest a registry supplies becomes one at the registry
/// client, so nothing else can reach a file.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: DigestAlgorithm,
    /// Lowercase hex of the hash; its length matches the algorithm.
    hex: String,
}

/// The digest algorithms distribution registries use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DigestAlgorithm {
    /// SHA-256: 64 lowercase hex digits.
    Sha256,
    /// SHA-512: 128 lowercase hex digits.
    Sha512,
}

impl DigestAlgorithm {
    /// The name as it appears in a digest string.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Sha512 => "sha512",
        }
    }

    /// Hex characters in a digest of this algorithm.
    #[must_use]
    pub fn hex_len(self) -> usize {
        match self {
            Self::Sha256 => 64,
            Self::Sha512 => 128,
        }
    }
}

/// A platform as Docker writes it: `os/architecture[/variant]`.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Platform {
    /// Operating system (`linux`).
    pub os: String,
    /// CPU architecture (`amd64`, `arm64`).
    pub architecture: String,
    /// CPU variant (`v7`), if any.
    pub variant: Option<String>,
}

/// Why a string is not an image reference. Each variant names the part at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Nothing to parse.
    #[error("empty reference")]
    Empty,
    #[error("invalid registry host {host:?}: {why}")]
    /// The registry host is not a valid host.
    InvalidHost {
        /// The host as written.
        host: String,
        /// Which rule it breaks.
        why: &'static str,
    },
    /// A path component breaks the grammar.
    #[error("invalid repository path component {component:?}: {why}")]
    InvalidComponent {
        /// The component as written.
        component: String,
        /// Which rule it breaks.
        why: &'static str,
    },
    #[error("repository name is {len} characters long, the limit is {MAX_NAME_LEN}")]
    /// The name is longer than 255 characters.
    NameTooLong {
        /// Its length in characters.
        len: usize,
    },
    #[error("invalid tag {tag:?}: {why}")]
    /// The tag breaks the grammar (`[\w][\w.-]{0,127}`).
    InvalidTag {
        /// The tag as written.
        tag: String,
        /// Which rule it breaks.
        why: &'static str,
    },
    #[error("invalid digest {digest:?}: {why}")]
    /// The digest is not `algorithm:hex` of a known algorithm and length.
    InvalidDigest {
        /// The digest as written.
        digest: String,
        /// Which rule it breaks.
        why: &'static str,
    },
    #[error("invalid platform {platform:?}: expected os/architecture[/variant]")]
    /// Not `os/arch[/variant]`.
    InvalidPlatform {
        /// The platform as written.
        platform: String,
    },
}

/// A repository in a registry (`ghcr.io` + `acme/app`), the distribution spec's
/// `<name>` with its registry. Displays as `ghcr.io/acme/app`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepositoryName {
    /// Normalized host (`docker.io`, `ghcr.io`, `localhost:5000`).
    pub registry: String,
    /// The path in the registry (`library/nginx`, `acme/app`).
    pub repository: String,
}

impl RepositoryName {
    /// A repository name from its parts, as given (normalized already).
    #[must_use]
    pub fn new(registry: &str, repository: &str) -> Self {
        Self {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
        }
    }
}

impl fmt::Display for RepositoryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)
    }
}

impl ImageRef {
    /// The repository this reference names, with its registry.
    #[must_use]
    pub fn name(&self) -> RepositoryName {
        RepositoryName::new(&self.registry, &self.repository)
    }

    /// Parses and normalizes a reference.
    ///
    /// # Errors
    /// [`ParseError`] naming the part (host, path component, tag, digest) that breaks the
    /// grammar and why.
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        if input.is_empty() {
            return Err(ParseError::Empty);
        }
        let (rest, digest) = match input.split_once('@') {
            Some((rest, digest)) => (rest, Some(digest.parse::<Digest>()?)),
            None => (input, None),
        };
        // A tag follows the last ':' that comes after the last '/'; a ':' before that
        // separates a host from its port.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let i = last_slash + i;
                (&rest[..i], Some(&rest[i + 1..]))
            }
            None => (rest, None),
        };
        if let Some(tag) = tag {
            check_tag(tag)?;
        }
        if name.is_empty() {
            return Err(ParseError::Empty);
        }
        if name.len() > MAX_NAME_LEN {
            return Err(ParseError::NameTooLong { len: name.len() });
        }
        let (host, path) = match name.split_once('/') {
            Some((first, path)) if is_host(first) => (Some(first), path),
            _ => (None, name),
        };
        if let Some(host) = host {
            check_host(host)?;
        }
        for component in path.split('/') {
            check_component(component)?;
        }
        let registry = match host {
            None | Some("index.docker.io" | "registry-1.docker.io") => DOCKER_HUB.to_owned(),
            Some(host) => host.to_owned(),
        };
        let repository = if registry == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_owned()
        };
        Ok(Self {
            registry,
            repository,
            tag: tag.map(str::to_owned),
            digest,
        })
    }

    /// The tag written, else [`DEFAULT_TAG`]: the tag the reference is looked up by.
    #[must_use]
    pub fn tag_or_default(&self) -> &str {
        self.tag.as_deref().unwrap_or(DEFAULT_TAG)
    }

    /// The reference without the Docker Hub defaults a person would leave out
    /// (`docker.io/library/nginx:1` → `nginx:1`).
    #[must_use]
    pub fn familiar(&self) -> String {
        let first = self.repository.split('/').next().unwrap_or_default();
        let mut out = if self.registry == DOCKER_HUB && !is_host(first) {
            self.repository
                .strip_prefix("library/")
                .unwrap_or(&self.repository)
                .to_owned()
        } else {
            self.name().to_string()
        };
        self.push_suffix(&mut out);
        out
    }

    fn push_suffix(&self, out: &mut String) {
        if let Some(tag) = &self.tag {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            out.push('@');
            out.push_str(&digest.to_string());
        }
    }
}

/// Fully qualified form: `docker.io/library/nginx:1.27@sha256:…`. Parsing it gives the
/// same [`ImageRef`] back.
impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = self.name().to_string();
        self.push_suffix(&mut out);
        f.write_str(&out)
    }
}

impl FromStr for ImageRef {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Digest {
    /// The SHA-256 digest of `bytes`.
    #[must_use]
    pub fn sha256_of(bytes: &[u8]) -> Self {
        Self::of(DigestAlgorithm::Sha256, bytes)
    }

    /// The digest of `bytes` under `algorithm`.
    #[must_use]
    pub fn of(algorithm: DigestAlgorithm, bytes: &[u8]) -> Self {
        use sha2::Digest as _;
        let hash: Vec<u8> = match algorithm {
            DigestAlgorithm::Sha256 => sha2::Sha256::digest(bytes).to_vec(),
            DigestAlgorithm::Sha512 => sha2::Sha512::digest(bytes).to_vec(),
        };
        let mut hex = String::with_capacity(hash.len() * 2);
        for b in hash {
            hex.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
            hex.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
        }
        Self { algorithm, hex }
    }

    /// Whether `bytes` hash to this digest (under its own algorithm).
    #[must_use]
    pub fn matches(&self, bytes: &[u8]) -> bool {
        Self::of(self.algorithm, bytes) == *self
    }

    /// The digest's algorithm.
    #[must_use]
    pub fn algorithm(&self) -> DigestAlgorithm {
        self.algorithm
    }

    /// The hash as lowercase hex (without the `algorithm:` prefix).
    #[must_use]
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The first `n` hex characters, for people (`1a2b3c4d5e6f`).
    #[must_use]
    pub fn short(&self, n: usize) -> &str {
        &self.hex[..n.min(self.hex.len())]
    }
}

/// A value from outside (a registry header, a JSON field) shortened for an error
/// message: at most 80 characters, control characters escaped, so that a hostile value
/// can neither flood a log line nor break it.
#[must_use]
pub fn shorten(value: &str) -> String {
    const MAX: usize = 80;
    let mut out: String = value.chars().take(MAX).collect::<String>();
    out = format!("{out:?}");
    if value.chars().nth(MAX).is_some() {
        out.push('…');
    }
    out
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.name(), self.hex)
    }
}

impl FromStr for Digest {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why| ParseError::InvalidDigest {
            digest: s.to_owned(),
            why,
        };
        let (algorithm, hex) = s.split_once(':').ok_or_else(|| bad("missing ':'"))?;
        let algorithm = match algorithm {
            "sha256" => DigestAlgorithm::Sha256,
            "sha512" => DigestAlgorithm::Sha512,
            _ => return Err(bad("algorithm must be sha256 or sha512")),
        };
        if !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(bad("hash must be lowercase hex"));
        }
        if hex.len() != algorithm.hex_len() {
            return Err(bad(match algorithm {
                DigestAlgorithm::Sha256 => "sha256 needs 64 hex characters",
                DigestAlgorithm::Sha512 => "sha512 needs 128 hex characters",
            }));
        }
        Ok(Self {
            algorithm,
            hex: hex.to_owned(),
        })
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ParseError::InvalidPlatform {
            platform: s.to_owned(),
        };
        let part_ok = |p: &str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        };
        let parts: Vec<&str> = s.split('/').collect();
        if !(2..=3).contains(&parts.len()) || !parts.iter().all(|p| part_ok(p)) {
            return Err(bad());
        }
        Ok(Self {
            os: parts[0].to_ascii_lowercase(),
            architecture: parts[1].to_ascii_lowercase(),
            variant: parts.get(2).map(|v| v.to_ascii_lowercase()),
        })
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Deserialized through the same check as [`str::parse`].
impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Docker's rule for "is the first path component a registry host".
fn is_host(first: &str) -> bool {
    first.contains(['.', ':'])
        || first == "localhost"
        || first.bytes().any(|b| b.is_ascii_uppercase())
}

fn check_host(host: &str) -> Result<(), ParseError> {
    let bad = |why| ParseError::InvalidHost {
        host: host.to_owned(),
        why,
    };
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        // IPv6 literal: [addr] or [addr]:port
        let (addr, after) = rest.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
        if addr.is_empty() || !addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return Err(bad("not an IPv6 address"));
        }
        match after {
            "" => return Ok(()),
            _ => match after.strip_prefix(':') {
                Some(port) => (None, Some(port)),
                None => return Err(bad("unexpected text after ']'")),
            },
        }
    } else {
        match host.split_once(':') {
            Some((name, port)) => (Some(name), Some(port)),
            None => (Some(host), None),
        }
    };
    if let Some(port) = port
        && (port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(bad("port must be 1 to 5 digits"));
    }
    if let Some(name) = name {
        for label in name.split('.') {
            let bytes = label.as_bytes();
            if bytes.is_empty() {
                return Err(bad("empty host label"));
            }
            if !bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
            {
                return Err(bad("host labels allow only letters, digits and '-'"));
            }
            if bytes[0] == b'-' || bytes[bytes.len() - 1] == b'-' {
                return Err(bad("host labels cannot start or end with '-'"));
            }
        }
    }
    Ok(())
}

fn check_component(component: &str) -> Result<(), ParseError> {
    let bad = |why| ParseError::InvalidComponent {
        component: component.to_owned(),
        why,
    };
    let bytes = component.as_bytes();
    if bytes.is_empty() {
        return Err(bad("empty path component"));
    }
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.iter().any(u8::is_ascii_uppercase) {
        return Err(bad("repository names must be lowercase"));
    }
    if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return Err(bad("must start and end with a lowercase letter or digit"));
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        // A separator run: '.', '_', '__', or one or more '-'.
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &component[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|b| b == b'-');
        if !ok {
            return Err(if sep.bytes().all(|b| matches!(b, b'.' | b'_' | b'-')) {
                bad("separators are '.', '_', '__' or a run of '-'")
            } else {
                bad("only lowercase letters, digits, '.', '_' and '-' are allowed")
            });
        }
    }
    Ok(())
}

/// Checks a tag against the grammar (`[\w][\w.-]{0,127}`).
///
/// # Errors
/// [`ParseError::InvalidTag`] naming the rule it breaks.
pub fn check_tag(tag: &str) -> Result<(), ParseError> {
    let bad = |why| ParseError::InvalidTag {
        tag: tag.to_owned(),
        why,
    };
    let bytes = tag.as_bytes();
    let word = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_';
    match bytes.first() {
        None => Err(bad("empty tag")),
        Some(b) if !word(b) => Err(bad("must start with a letter, digit or '_'")),
        Some(_) if bytes.len() > MAX_TAG_LEN => Err(bad("longer than 128 characters")),
        Some(_) if !bytes.iter().all(|b| word(b) || *b == b'.' || *b == b'-') => {
            Err(bad("only letters, digits, '_', '.' and '-' are allowed"))
        }
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn normalizes_like_docker() {
        let cases = [
            ("nginx", "docker.io", "library/nginx", None),
            ("nginx:1.27", "docker.io", "library/nginx", Some("1.27")),
            ("index.docker.io/nginx", "docker.io", "library/nginx", None),
            (
                "docker.io/bitnami/redis:7",
                "docker.io",
                "bitnami/redis",
                Some("7"),
            ),
            ("ghcr.io/acme/app:v1", "ghcr.io", "acme/app", Some("v1")),
            ("localhost/app", "localhost", "app", None),
            ("localhost:5000/a/b:t", "localhost:5000", "a/b", Some("t")),
            ("Registry/app", "Registry", "app", None),
            (
                "quay.io/a__b/c-d--e/f.g",
                "quay.io",
                "a__b/c-d--e/f.g",
                None,
            ),
            ("[::1]:5000/app:1", "[::1]:5000", "app", Some("1")),
        ];
        for (input, registry, repository, tag) in cases {
            let r = ImageRef::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.registry, registry, "{input}");
            assert_eq!(r.repository, repository, "{input}");
            assert_eq!(r.tag.as_deref(), tag, "{input}");
        }
    }

    #[test]
    fn tag_and_digest_together() {
        let r = ImageRef::parse(&format!("node:20@{D}")).unwrap();
        assert_eq!(r.tag.as_deref(), Some("20"));
        assert_eq!(r.digest.unwrap().to_string(), D);
        let r = ImageRef::parse(&format!("localhost:5000/app@{D}")).unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.registry, "localhost:5000");
    }

    #[test]
    fn sha512_digest() {
        let hex = "ab".repeat(64);
        let r = ImageRef::parse(&format!("app@sha512:{hex}")).unwrap();
        assert_eq!(r.digest.unwrap().algorithm(), DigestAlgorithm::Sha512);
    }

    #[test]
    fn errors_name_the_part() {
        let cases = [
            ("", "empty reference"),
            (
                "Nginx/App",
                "invalid repository path component \"App\": repository names must be lowercase",
            ),
            ("nginx:", "invalid tag \"\": empty tag"),
            (
                "nginx:-x",
                "invalid tag \"-x\": must start with a letter, digit or '_'",
            ),
            (
                "nginx@sha256:abcdef",
                "invalid digest \"sha256:abcdef\": sha256 needs 64 hex characters",
            ),
            (
                "nginx@sha256:${HASH}",
                "invalid digest \"sha256:${HASH}\": hash must be lowercase hex",
            ),
            (
                "nginx@md5:00",
                "invalid digest \"md5:00\": algorithm must be sha256 or sha512",
            ),
            ("nginx@", "invalid digest \"\": missing ':'"),
            (
                "a..b",
                "invalid repository path component \"a..b\": separators are '.', '_', '__' or a run of '-'",
            ),
            (
                "a___b",
                "invalid repository path component \"a___b\": separators are '.', '_', '__' or a run of '-'",
            ),
            (
                "-a",
                "invalid repository path component \"-a\": must start and end with a lowercase letter or digit",
            ),
            (
                "a//b",
                "invalid repository path component \"\": empty path component",
            ),
            (
                "host:99999999/a",
                "invalid registry host \"host:99999999\": port must be 1 to 5 digits",
            ),
            (
                "-bad.io/a",
                "invalid registry host \"-bad.io\": host labels cannot start or end with '-'",
            ),
            (
                "my.io/",
                "invalid repository path component \"\": empty path component",
            ),
            (
                "ex ample",
                "invalid repository path component \"ex ample\": only lowercase letters, digits, '.', '_' and '-' are allowed",
            ),
        ];
        for (input, message) in cases {
            let err = ImageRef::parse(input).expect_err(input);
            assert_eq!(err.to_string(), message, "{input}");
        }
        let long_tag = format!("a:{}", "x".repeat(129));
        assert!(matches!(
            ImageRef::parse(&long_tag),
            Err(ParseError::InvalidTag { .. })
        ));
        let long_name = "a/".repeat(130) + "a";
        assert!(matches!(
            ImageRef::parse(&long_name),
            Err(ParseError::NameTooLong { .. })
        ));
    }

    #[test]
    fn familiar_drops_hub_defaults() {
        let r = ImageRef::parse(&format!("docker.io/library/node:20@{D}")).unwrap();
        assert_eq!(r.familiar(), format!("node:20@{D}"));
        assert_eq!(r.to_string(), format!("docker.io/library/node:20@{D}"));
        let r = ImageRef::parse("ghcr.io/a/b").unwrap();
        assert_eq!(r.familiar(), "ghcr.io/a/b");
    }

    #[test]
    fn platforms() {
        let p: Platform = "linux/arm64/v8".parse().unwrap();
        assert_eq!(p.variant.as_deref(), Some("v8"));
        assert_eq!(p.to_string(), "linux/arm64/v8");
        assert!("linux".parse::<Platform>().is_err());
        assert!("linux//x".parse::<Platform>().is_err());
        assert!("$BUILDPLATFORM".parse::<Platform>().is_err());
    }

    fn component() -> impl Strategy<Value = String> {
        "[a-z0-9]{1,5}((\\.|_|__|-{1,3})[a-z0-9]{1,5}){0,2}"
    }

    fn reference() -> impl Strategy<Value = String> {
        (
            prop::option::of("(localhost|[a-z]{1,8}\\.(io|com))(:[0-9]{1,5})?"),
            prop::collection::vec(component(), 1..4),
            prop::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}"),
            prop::option::of("[0-9a-f]{64}"),
        )
            .prop_map(|(host, path, tag, hex)| {
                // Without a host, a first component with '.' would be read as one.
                let host = host.or_else(|| {
                    (path.len() > 1 && path[0].contains('.')).then(|| "docker.io".to_owned())
                });
                let mut s = host.map(|h| h + "/").unwrap_or_default();
                s.push_str(&path.join("/"));
                if let Some(tag) = tag {
                    s = s + ":" + &tag;
                }
                if let Some(hex) = hex {
                    s = s + "@sha256:" + &hex;
                }
                s
            })
    }

    proptest! {
        #[test]
        fn display_round_trips(input in reference()) {
            let r = ImageRef::parse(&input).unwrap();
            prop_assert_eq!(ImageRef::parse(&r.to_string()).unwrap(), r.clone());
            prop_assert_eq!(ImageRef::parse(&r.familiar()).unwrap(), r);
        }

        #[test]
        fn never_panics(input in "\\PC{0,80}") {
            let _ = ImageRef::parse(&input);
        }
    }
}
