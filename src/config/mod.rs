//! Configuration: the repository config (untrusted, committed by anyone who can push to
//! the repository) and the service config (trusted, written by whoever runs repin).
//!
//! Both are TOML, parsed with the `toml` crate into raw tables (unknown keys refused,
//! values kept with their spans), then checked into [`RepoConfig`] / [`ServiceConfig`].
//! Every problem is a [`Diagnostic`] naming file, line and column, with a suggestion for
//! a misspelt key. A file with any problem yields no config at all: it is never
//! half-applied.
//!
//! The repository config can set update rules only. Credentials, registry hosts (which
//! receive credentials), mirrors, insecure hosts, the state file and anything about where
//! repin pushes exist only in the service config; naming them in a repository config is
//! an error ([`FORBIDDEN_IN_REPO`]).
//!
//! Precedence, in one sentence: settings resolve from built-in defaults, then the service
//! config's `[update]` and `[[rule]]`s, then the repository's `[update]`, then the
//! repository's `[[rule]]`s top to bottom, and each layer overrides only the keys it
//! sets, so for any key the last matching layer that sets it wins.

pub mod diag;
pub mod serve;
pub mod settings;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::Serialize;
use toml::Spanned;

pub use diag::Diagnostic;
use diag::Diagnostics;
pub use serve::ServeConfig;
use settings::{RawUpdate, Settings, raw_settings};

use crate::imageref::ImageRef;
use crate::scan::Format;

/// Where a repository config may live, in the order they are looked for.
pub const REPO_CONFIG_NAMES: [&str; 3] = [".github/repin.toml", ".repin.toml", "repin.toml"];

/// Keys a repository config may never hold, at any depth.
pub const FORBIDDEN_IN_REPO: [&str; 16] = [
    "registries",
    "registry",
    "credentials",
    "password",
    "password_env",
    "username",
    "username_env",
    "token",
    "auth",
    "docker_config",
    "mirror",
    "insecure",
    "state",
    "github",
    "forge",
    "remote",
];

/// Why a config could not be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The message is the whole story (no `source`, so `{:#}` does not say it twice).
    #[error("{path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// Why it could not be read.
        reason: std::io::Error,
    },
    /// The config does not hold: every diagnostic found, each `file:line:column: why`.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Diagnostic>),
}

raw_settings!(
    /// `[[rule]]`: settings for the references a rule matches.
    RawRule {
        /// Normalized image globs (`ghcr.io/acme/*`, `docker.io/library/node`).
        images: Vec<Spanned<String>>,
        /// Path globs, relative to the repository root.
        paths: Vec<Spanned<String>>,
        /// Tag globs.
        tags: Vec<Spanned<String>>,
    }
);

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScan {
    #[serde(default)]
    include: Vec<Spanned<String>>,
    #[serde(default)]
    exclude: Vec<Spanned<String>>,
    formats: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    extra: Vec<RawExtra>,
    #[serde(default)]
    read_as: BTreeMap<String, Vec<Spanned<String>>>,
}

/// One `[scan] extra` entry: `{ paths = [...] }`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExtra {
    paths: Vec<Spanned<String>>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRepo {
    #[serde(default)]
    scan: RawScan,
    #[serde(default)]
    update: RawUpdate,
    #[serde(default)]
    rule: Vec<RawRule>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegistry {
    mirror: Option<Spanned<String>>,
    insecure: Option<bool>,
    username_env: Option<String>,
    password_env: Option<String>,
    docker_config: Option<String>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    per_registry: Option<Spanned<usize>>,
}

/// `[github]` in the service config: how the bot works on GitHub.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitHubConfig {
    /// The API base URL (GitHub Enterprise Server: `https://HOST/api/v3`).
    pub api_url: Option<String>,
    /// Repository globs an App run is limited to (`acme/*`); empty means all.
    #[serde(default)]
    pub repositories: Vec<String>,
    /// Make commits through the Git Data API, so GitHub signs them.
    pub commit_via_api: Option<bool>,
    /// At most this many open repin pull requests per repository.
    pub max_open: Option<usize>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    #[serde(default)]
    github: GitHubConfig,
    #[serde(default)]
    serve: serve::RawServe,
    state: Option<String>,
    docker_config: Option<String>,
    #[serde(default)]
    registries: BTreeMap<String, RawRegistry>,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    update: RawUpdate,
    #[serde(default)]
    rule: Vec<RawRule>,
}

/// A list of globs; empty matches everything. Checked when the config is read; the
/// matching automaton is built on first use only, so the globs of many rules can be
/// compiled once, together, by [`Rules`] instead of one automaton per rule.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    /// The patterns as written.
    pub patterns: Vec<String>,
    globs: Vec<Glob>,
    set: std::sync::OnceLock<Option<GlobSet>>,
}

fn glob(pattern: &str) -> Result<Glob, globset::Error> {
    globset::GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
}

impl Matcher {
    fn check(patterns: &[Spanned<String>], what: &str, diags: &mut Diagnostics<'_>) -> Self {
        let mut globs = Vec::with_capacity(patterns.len());
        for p in patterns {
            match glob(p.get_ref()) {
                Ok(g) => globs.push(g),
                Err(e) => diags.error(
                    Some(p.span()),
                    format!("invalid {what} glob {:?}: {}", p.get_ref(), e.kind()),
                ),
            }
        }
        Self {
            patterns: patterns.iter().map(|p| p.get_ref().clone()).collect(),
            globs,
            set: std::sync::OnceLock::new(),
        }
    }

    /// A matcher from patterns known to be valid (tests, defaults).
    ///
    /// # Panics
    /// On an invalid pattern.
    #[must_use]
    pub fn of(patterns: &[&str]) -> Self {
        Self {
            patterns: patterns.iter().map(|p| (*p).to_owned()).collect(),
            globs: patterns
                .iter()
                .map(|p| glob(p).expect("valid glob"))
                .collect(),
            set: std::sync::OnceLock::new(),
        }
    }

    /// Whether `candidate` matches (`None`, no value: matches only when there are no
    /// patterns).
    #[must_use]
    pub fn matches(&self, candidate: Option<&str>) -> bool {
        if self.is_all() {
            return true;
        }
        let set = self.set.get_or_init(|| {
            let mut builder = GlobSetBuilder::new();
            for g in &self.globs {
                builder.add(g.clone());
            }
            builder.build().ok()
        });
        match (set, candidate) {
            (Some(set), Some(c)) => set.is_match(c),
            _ => false,
        }
    }

    fn is_all(&self) -> bool {
        self.patterns.is_empty()
    }
}

/// Every layer's globs of one kind (images, paths or tags) in one automaton, with the
/// layer each glob belongs to: one compile per config, one match per reference.
#[derive(Debug, Clone, Default)]
struct KindIndex {
    set: GlobSet,
    /// The layer of each glob in `set`.
    owner: Vec<usize>,
}

impl KindIndex {
    fn build<'a>(lists: impl Iterator<Item = &'a Matcher>) -> Self {
        let mut builder = GlobSetBuilder::new();
        let mut owner = Vec::new();
        for (layer, matcher) in lists.enumerate() {
            for g in &matcher.globs {
                builder.add(g.clone());
                owner.push(layer);
            }
        }
        Self {
            set: builder.build().unwrap_or_else(|_| GlobSet::empty()),
            owner,
        }
    }

    /// Marks in `hits` the layers with a glob matching `candidate`.
    fn mark(&self, candidate: Option<&str>, hits: &mut [bool]) {
        if let Some(c) = candidate {
            for i in self.set.matches(c) {
                hits[self.owner[i]] = true;
            }
        }
    }
}

/// One layer of settings and what it applies to.
#[derive(Debug, Clone, Default)]
pub struct Rule {
    /// Where it comes from, for messages (`.repin.toml [[rule]] 2`).
    pub origin: String,
    /// Image globs (normalized names: `docker.io/library/node`).
    pub images: Matcher,
    /// Path globs, relative to the repository root.
    pub paths: Matcher,
    /// Tag globs.
    pub tags: Matcher,
    /// What the rule sets.
    pub settings: Settings,
}

impl Rule {
    fn from_raw(raw: &RawRule, origin: String, diags: &mut Diagnostics<'_>) -> Self {
        Self {
            origin,
            images: Matcher::check(&raw.images, "image", diags),
            paths: Matcher::check(&raw.paths, "path", diags),
            tags: Matcher::check(&raw.tags, "tag", diags),
            settings: raw.settings(diags),
        }
    }

    fn everything(origin: String, settings: Settings) -> Self {
        Self {
            origin,
            settings,
            ..Self::default()
        }
    }

    /// Whether the rule applies to a reference at `path` naming `image` (normalized
    /// `registry/repository`) and `tag` (`latest` when none is written).
    #[must_use]
    pub fn matches(&self, path: &str, image: Option<&str>, tag: Option<&str>) -> bool {
        self.paths.matches(Some(path)) && self.images.matches(image) && self.tags.matches(tag)
    }
}

/// `[scan]`: which files and formats count.
#[derive(Debug, Clone, Default)]
pub struct ScanRules {
    /// Only paths matching these (empty: all).
    pub include: Matcher,
    /// Never paths matching these.
    pub exclude: Matcher,
    /// `None`: every format.
    pub formats: Option<Vec<Format>>,
    /// Paths the opt-in scanner reads (`[scan] extra`; none when empty).
    pub extra: Matcher,
    /// `[scan.read_as]`: a format and the paths it reads whatever their names
    /// (`"helm-values" = ["envs/**/*.yaml"]`), by format name.
    pub read_as: Vec<(Format, Matcher)>,
}

impl ScanRules {
    /// Whether a path is inside the scanned set (included, not excluded).
    #[must_use]
    pub fn path_included(&self, path: &str) -> bool {
        self.include.matches(Some(path))
            && (self.exclude.is_all() || !self.exclude.matches(Some(path)))
    }

    /// The format the config names for `path`: `[scan.read_as]`'s, else the opt-in
    /// scanner's when `[scan] extra` lists it.
    #[must_use]
    pub fn reader_for(&self, path: &str) -> Option<Format> {
        self.read_as
            .iter()
            .find(|(_, paths)| paths.matches(Some(path)))
            .map(|(format, _)| *format)
            .or_else(|| self.extra_reads(path).then_some(crate::scan::extra::FORMAT))
    }

    /// Whether `[scan] extra` lists `path` for the opt-in scanner.
    #[must_use]
    pub fn extra_reads(&self, path: &str) -> bool {
        !self.extra.patterns.is_empty() && self.extra.matches(Some(path))
    }

    /// Whether `[scan] formats` (unset: all) includes `format`.
    #[must_use]
    pub fn format_enabled(&self, format: Format) -> bool {
        self.formats.as_ref().is_none_or(|f| f.contains(&format))
    }
}

/// A checked repository config.
#[derive(Debug, Clone, Default)]
pub struct RepoConfig {
    /// The file it came from (`None`: defaults, no file).
    pub file: Option<String>,
    /// `[scan]`: which files and formats count.
    pub scan: ScanRules,
    /// `[update]`: settings for every reference.
    pub update: Settings,
    /// `[[rule]]`s, in file order (later ones win).
    pub rules: Vec<Rule>,
}

/// How to reach one registry (service config only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryConfig {
    /// Look the registry's images up through this host; files keep the original name.
    pub mirror: Option<String>,
    /// Reach the registry over plain HTTP.
    pub insecure: bool,
    /// Names of environment variables holding the credentials (never the values).
    pub username_env: Option<String>,
    /// The variable holding the password.
    pub password_env: Option<String>,
    /// Docker's config file for credentials.
    pub docker_config: Option<PathBuf>,
}

/// A checked service config.
#[derive(Debug, Clone, Default)]
pub struct ServiceConfig {
    /// The file it came from.
    pub file: Option<String>,
    /// The state store (first-seen digests, schedule anchors).
    pub state: Option<PathBuf>,
    /// Docker's config file for credentials.
    pub docker_config: Option<PathBuf>,
    /// `[registries."HOST"]`.
    pub registries: BTreeMap<String, RegistryConfig>,
    /// `[limits] per_registry`: concurrent requests per registry.
    pub per_registry: Option<usize>,
    /// `[update]`: settings for every reference.
    pub update: Settings,
    /// `[[rule]]`s, in file order (later ones win).
    pub rules: Vec<Rule>,
    /// `[github]`.
    pub github: GitHubConfig,
    /// `[serve]`.
    pub serve: ServeConfig,
}

/// The largest repository config repin reads: rules, not data. A larger one is an error
/// (untrusted input stays cheap).
pub const MAX_REPO_CONFIG_BYTES: u64 = 256 * 1024;

/// A repository config found: its path under the root (`/`-separated) and its text.
pub type RepoConfigFile = (String, String);

/// The repository config under `root`: the first of [`REPO_CONFIG_NAMES`] that is a
/// regular file reached without following links ([`crate::rooted`]), its text, and a
/// warning for every other candidate that exists: a link (never followed), a folder or
/// FIFO, an unreadable file, or a second config.
///
/// # Errors
/// [`Error::Invalid`] (with file, line and column) for a config that is too large or
/// not UTF-8.
pub fn find_repo_config(root: &Path) -> Result<(Option<RepoConfigFile>, Vec<String>), Error> {
    let mut chosen: Option<(String, String)> = None;
    let mut warnings = Vec::new();
    let root = crate::rooted::open_root(root).map_err(|e| Error::Read {
        path: root.display().to_string(),
        reason: e.into_io(),
    })?;
    for name in REPO_CONFIG_NAMES {
        let bytes = match crate::rooted::read(&root, Path::new(name), MAX_REPO_CONFIG_BYTES) {
            Ok(bytes) => bytes,
            Err(crate::rooted::Error::Missing) => continue,
            Err(crate::rooted::Error::TooLarge { limit }) => {
                return Err(Error::Invalid(vec![Diagnostic {
                    file: name.to_owned(),
                    line: 1,
                    column: 1,
                    message: format!(
                        "a repository config is limited to {} KiB (it holds rules, not data)",
                        limit / 1024
                    ),
                    suggestion: None,
                }]));
            }
            Err(e) => {
                warnings.push(format!("{name}: {e}; this repository config is ignored"));
                continue;
            }
        };
        if let Some((first, _)) = &chosen {
            warnings.push(format!(
                "several repository configs: {first} and {name}; using {first}"
            ));
            continue;
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            let bytes = e.as_bytes();
            let valid = e.utf8_error().valid_up_to();
            let before = &bytes[..valid];
            let line = before.iter().filter(|b| **b == b'\n').count() + 1;
            let line_start = before
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(0, |i| i + 1);
            let column = String::from_utf8_lossy(&before[line_start..])
                .chars()
                .count()
                + 1;
            Error::Invalid(vec![Diagnostic {
                file: name.to_owned(),
                line,
                column,
                message: "not UTF-8".to_owned(),
                suggestion: None,
            }])
        })?;
        chosen = Some((name.to_owned(), text));
    }
    Ok((chosen, warnings))
}

/// Flags keys a repository config may not hold, anywhere in the document.
fn forbidden_keys(text: &str, diags: &mut Diagnostics<'_>) {
    fn walk(table: &toml::de::DeTable<'_>, diags: &mut Diagnostics<'_>) {
        for (key, value) in table {
            if FORBIDDEN_IN_REPO.contains(&key.get_ref().as_ref()) {
                diags.error(
                    Some(key.span()),
                    format!(
                        "`{}` cannot be set in a repository config: credentials, registry hosts and where repin pushes belong in the service config",
                        key.get_ref()
                    ),
                );
            }
            visit(value.get_ref(), diags);
        }
    }
    fn visit(value: &toml::de::DeValue<'_>, diags: &mut Diagnostics<'_>) {
        match value {
            toml::de::DeValue::Table(t) => walk(t, diags),
            toml::de::DeValue::Array(a) => a.iter().for_each(|v| visit(v.get_ref(), diags)),
            _ => {}
        }
    }
    if let Ok(table) = toml::de::DeTable::parse(text) {
        walk(table.get_ref(), diags);
    }
}

/// Checks a config's `[update]` and `[[rule]]`s.
fn layers(
    file: &str,
    update: &RawUpdate,
    rules: &[RawRule],
    diags: &mut Diagnostics<'_>,
) -> (Settings, Vec<Rule>) {
    let update = update.settings(diags);
    let rules = rules
        .iter()
        .enumerate()
        .map(|(i, r)| Rule::from_raw(r, format!("{file} [[rule]] {}", i + 1), diags))
        .collect();
    (update, rules)
}

/// Parses and checks a repository config's text. `file` names it in diagnostics.
///
/// # Errors
/// [`Error::Invalid`] with every diagnostic found.
pub fn parse_repo(file: &str, text: &str) -> Result<RepoConfig, Error> {
    let mut diags = Diagnostics::new(file, text);
    forbidden_keys(text, &mut diags);
    let forbidden = diags.list.len();
    let raw: RawRepo = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            // A forbidden key is also an unknown one; say it once, the specific way.
            if forbidden == 0 {
                diags.toml(&e);
            }
            return Err(Error::Invalid(diags.into_sorted()));
        }
    };
    let formats = raw.scan.formats.as_ref().map(|list| {
        list.iter()
            .filter_map(|f| {
                if let Some(format) = Format::named(f.get_ref()) {
                    Some(format)
                } else {
                    let other = f.get_ref();
                    let suggestion = diag::closest(other, &Format::names());
                    diags.error_with(
                        Some(f.span()),
                        format!("unknown format {other:?}"),
                        suggestion,
                    );
                    None
                }
            })
            .collect()
    });
    let scan = ScanRules {
        include: Matcher::check(&raw.scan.include, "include", &mut diags),
        exclude: Matcher::check(&raw.scan.exclude, "exclude", &mut diags),
        formats,
        extra: {
            let paths: Vec<Spanned<String>> = raw
                .scan
                .extra
                .iter()
                .flat_map(|e| e.paths.iter().cloned())
                .collect();
            Matcher::check(&paths, "extra", &mut diags)
        },
        read_as: raw
            .scan
            .read_as
            .iter()
            .filter_map(|(name, paths)| {
                let Some(format) = Format::named(name) else {
                    let suggestion = diag::closest(name, &Format::names());
                    let at = paths.first().map(Spanned::span);
                    diags.error_with(
                        at,
                        format!("unknown format {name:?} in [scan.read_as]"),
                        suggestion,
                    );
                    return None;
                };
                // An empty list would match every path.
                (!paths.is_empty()).then(|| (format, Matcher::check(paths, "read_as", &mut diags)))
            })
            .collect(),
    };
    let (update, rules) = layers(file, &raw.update, &raw.rule, &mut diags);
    if diags.list.is_empty() {
        Ok(RepoConfig {
            file: Some(file.to_owned()),
            scan,
            update,
            rules,
        })
    } else {
        Err(Error::Invalid(diags.into_sorted()))
    }
}

/// Loads the repository config under `root` (defaults when there is none), with the
/// warnings of [`find_repo_config`].
///
/// # Errors
/// [`Error::Invalid`], every diagnostic naming the file relative to `root`.
pub fn load_repo(root: &Path) -> Result<(RepoConfig, Vec<String>), Error> {
    let (found, warnings) = find_repo_config(root)?;
    let Some((file, text)) = found else {
        return Ok((RepoConfig::default(), warnings));
    };
    parse_repo(&file, &text).map(|c| (c, warnings))
}

/// Parses and checks a service config's text.
///
/// # Errors
/// [`Error::Invalid`] with every diagnostic found.
pub fn parse_service(file: &str, text: &str) -> Result<ServiceConfig, Error> {
    let mut diags = Diagnostics::new(file, text);
    let raw: RawService = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            diags.toml(&e);
            return Err(Error::Invalid(diags.into_sorted()));
        }
    };
    let registries = raw
        .registries
        .iter()
        .map(|(host, r)| {
            let mirror = r.mirror.as_ref().and_then(|m| {
                let ok = ImageRef::parse(&format!("{}/x", m.get_ref()))
                    .is_ok_and(|i| i.registry == *m.get_ref());
                if ok {
                    Some(m.get_ref().clone())
                } else {
                    diags.error(
                        Some(m.span()),
                        format!("invalid mirror host {:?}", m.get_ref()),
                    );
                    None
                }
            });
            let config = RegistryConfig {
                mirror,
                insecure: r.insecure.unwrap_or(false),
                username_env: r.username_env.clone(),
                password_env: r.password_env.clone(),
                docker_config: r.docker_config.as_ref().map(PathBuf::from),
            };
            (host.clone(), config)
        })
        .collect();
    let per_registry = raw.limits.per_registry.as_ref().and_then(|n| {
        if *n.get_ref() == 0 {
            diags.error(Some(n.span()), "per_registry must be at least 1");
            None
        } else {
            Some(*n.get_ref())
        }
    });
    let (update, rules) = layers(file, &raw.update, &raw.rule, &mut diags);
    let serve = raw.serve.check(&mut diags);
    if diags.list.is_empty() {
        Ok(ServiceConfig {
            file: Some(file.to_owned()),
            state: raw.state.map(PathBuf::from),
            docker_config: raw.docker_config.map(PathBuf::from),
            registries,
            per_registry,
            update,
            rules,
            github: raw.github,
            serve,
        })
    } else {
        Err(Error::Invalid(diags.into_sorted()))
    }
}

/// Loads a service config file.
///
/// # Errors
/// [`Error::Read`] and [`Error::Invalid`].
pub fn load_service(path: &Path) -> Result<ServiceConfig, Error> {
    // The service config is the operator's, trusted: read as named (links followed).
    let text = std::fs::read_to_string(path).map_err(|reason| Error::Read {
        path: path.display().to_string(),
        reason,
    })?;
    parse_service(&path.display().to_string(), &text)
}

/// What `repin config check` shows: both configs valid, the rules they make together,
/// and the repository config's warnings.
#[derive(Debug)]
pub struct Checked {
    /// `[[rule]]`s, in file order (later ones win).
    pub rules: Rules,
    /// The repository config.
    pub repo: RepoConfig,
    /// The repository config's warnings (links, other candidates).
    pub warnings: Vec<String>,
}

/// Checks the service config at `service` (an empty path counts as none) and the
/// repository config at `path` (a repository folder, where it is looked for, or a
/// config file), and layers them.
///
/// # Errors
/// Every error found, the service config's first.
pub fn check(service: Option<&Path>, path: &Path) -> Result<Checked, Vec<Error>> {
    let service = service
        .filter(|p| !p.as_os_str().is_empty())
        .map(load_service)
        .transpose();
    let repo = if path.is_file() {
        std::fs::read_to_string(path)
            .map_err(|reason| Error::Read {
                path: path.display().to_string(),
                reason,
            })
            .and_then(|text| parse_repo(&path.display().to_string(), &text))
            .map(|c| (c, Vec::new()))
    } else {
        load_repo(path)
    };
    match (service, repo) {
        (Ok(service), Ok((repo, warnings))) => Ok(Checked {
            rules: Rules::new(service.as_ref(), &repo),
            repo,
            warnings,
        }),
        (service, repo) => Err(service.err().into_iter().chain(repo.err()).collect()),
    }
}

/// The rules in force for one repository: every layer, in precedence order.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// `[scan]`: which files and formats count.
    pub scan: ScanRules,
    /// Lowest precedence first.
    pub layers: Vec<Rule>,
    /// The layers' globs, compiled once per kind.
    images: KindIndex,
    paths: KindIndex,
    tags: KindIndex,
}

/// Effective settings with the defaults filled in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Effective {
    /// Leave the reference alone.
    pub ignore: bool,
    /// Add a digest to a tag-only reference.
    pub pin: bool,
    /// How long a new digest must have been seen before it is proposed.
    #[serde(serialize_with = "serialize_secs")]
    pub min_age: std::time::Duration,
    /// When changes may be proposed.
    pub schedule: Option<settings::Schedule>,
    /// The change set's name: the group, else the image (`registry/repository`).
    pub group: Option<String>,
    /// Digests never proposed.
    pub ignore_digests: Vec<crate::imageref::Digest>,
    /// The tag a pin without one follows.
    pub follow_tag: Option<String>,
    /// How its pull request is made.
    pub pr: settings::PrSettings,
}

fn serialize_secs<S: serde::Serializer>(d: &std::time::Duration, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_duration(*d))
}

impl Rules {
    /// The layers in precedence order: defaults, the service config's `[update]` and
    /// rules, then the repository's `[update]` and rules.
    #[must_use]
    pub fn new(service: Option<&ServiceConfig>, repo: &RepoConfig) -> Self {
        let mut layers = Vec::new();
        if let Some(service) = service {
            let file = service
                .file
                .clone()
                .unwrap_or_else(|| "service config".into());
            layers.push(Rule::everything(
                format!("{file} [update]"),
                service.update.clone(),
            ));
            layers.extend(service.rules.iter().cloned());
        }
        let file = repo
            .file
            .clone()
            .unwrap_or_else(|| "repository config".into());
        layers.push(Rule::everything(
            format!("{file} [update]"),
            repo.update.clone(),
        ));
        layers.extend(repo.rules.iter().cloned());
        Self {
            scan: repo.scan.clone(),
            images: KindIndex::build(layers.iter().map(|l| &l.images)),
            paths: KindIndex::build(layers.iter().map(|l| &l.paths)),
            tags: KindIndex::build(layers.iter().map(|l| &l.tags)),
            layers,
        }
    }

    /// The settings for a reference: defaults overlaid by every matching layer in order.
    #[must_use]
    pub fn settings_for(&self, path: &str, image: Option<&ImageRef>) -> Effective {
        let name = image.map(|i| i.name().to_string());
        let tag = image.map(ImageRef::tag_or_default);
        // Per kind, which layers match: those without globs of that kind, and those
        // whose globs the one automaton found.
        let hits = |index: &KindIndex, kind: fn(&Rule) -> &Matcher, candidate: Option<&str>| {
            let mut hits: Vec<bool> = self.layers.iter().map(|l| kind(l).is_all()).collect();
            index.mark(candidate, &mut hits);
            hits
        };
        let images = hits(&self.images, |l| &l.images, name.as_deref());
        let paths = hits(&self.paths, |l| &l.paths, Some(path));
        let tags = hits(&self.tags, |l| &l.tags, tag);
        let mut merged = Settings::default();
        for (i, layer) in self.layers.iter().enumerate() {
            if images[i] && paths[i] && tags[i] {
                merged.overlay(&layer.settings);
            }
        }
        Effective {
            ignore: merged.ignore.unwrap_or(false),
            pin: merged.pin.unwrap_or(false),
            min_age: merged.min_age.unwrap_or_default(),
            schedule: merged.schedule,
            group: merged.group,
            ignore_digests: merged.ignore_digests.unwrap_or_default(),
            follow_tag: merged.follow_tag,
            pr: merged.pr,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diagnostics(text: &str) -> Vec<String> {
        match parse_repo(".repin.toml", text) {
            Ok(_) => Vec::new(),
            Err(Error::Invalid(list)) => list.iter().map(ToString::to_string).collect(),
            Err(e) => vec![e.to_string()],
        }
    }

    /// `follow_tag` must be a tag: a bad one is an error naming the line.
    #[test]
    fn follow_tag_is_a_tag() {
        assert!(diagnostics("[update]\nfollow_tag = \"3.20\"\n").is_empty());
        let bad = diagnostics("[update]\nfollow_tag = \"-bad tag\"\n");
        assert_eq!(bad.len(), 1, "{bad:?}");
        assert!(
            bad[0].contains(":2:") && bad[0].contains("invalid tag"),
            "{bad:?}"
        );
    }

    #[test]
    fn empty_config_is_valid() {
        let c = parse_repo(".repin.toml", "").unwrap();
        assert!(c.rules.is_empty());
        assert!(c.scan.path_included("any/where"));
    }

    #[test]
    fn precedence_last_matching_layer_wins_per_key() {
        let service = parse_service(
            "repin.toml",
            "[update]\nmin_age = \"7d\"\nlabels = [\"org\"]\n[[rule]]\nimages = [\"docker.io/library/*\"]\npin = true\n",
        )
        .unwrap();
        let repo = parse_repo(
            ".repin.toml",
            "[update]\nmin_age = \"1d\"\n[[rule]]\nimages = [\"docker.io/library/node\"]\ngroup = \"node\"\nmin_age = \"2h\"\n[[rule]]\npaths = [\"legacy/**\"]\nignore = true\n[[rule]]\nimages = [\"docker.io/library/node\"]\ntags = [\"18*\"]\nmin_age = \"0s\"\n",
        )
        .unwrap();
        let policy = Rules::new(Some(&service), &repo);
        let node = ImageRef::parse("node:20").unwrap();
        let s = policy.settings_for("Dockerfile", Some(&node));
        assert_eq!(s.min_age, std::time::Duration::from_secs(2 * 3600));
        assert_eq!(s.group.as_deref(), Some("node"));
        assert!(s.pin, "service rule for docker.io/library/* applies");
        assert_eq!(s.pr.labels, Some(vec!["org".to_owned()]));
        assert!(!s.ignore);
        let node18 = ImageRef::parse("node:18.20").unwrap();
        assert_eq!(
            policy.settings_for("Dockerfile", Some(&node18)).min_age,
            std::time::Duration::ZERO
        );
        assert!(policy.settings_for("legacy/Dockerfile", Some(&node)).ignore);
        let other = ImageRef::parse("ghcr.io/acme/app:1").unwrap();
        let s = policy.settings_for("Dockerfile", Some(&other));
        assert_eq!(s.min_age, std::time::Duration::from_secs(86400));
        assert!(!s.pin);
        assert_eq!(s.group, None);
    }

    #[test]
    fn scan_rules() {
        let c = parse_repo(
            ".repin.toml",
            "[scan]\ninclude = [\"deploy/**\", \"Dockerfile\"]\nexclude = [\"deploy/test/**\"]\nformats = [\"kubernetes\"]\n",
        )
        .unwrap();
        assert!(c.scan.path_included("deploy/app.yaml"));
        assert!(c.scan.path_included("Dockerfile"));
        assert!(!c.scan.path_included("deploy/test/x.yaml"));
        assert!(!c.scan.path_included("src/Dockerfile"));
        assert!(c.scan.format_enabled(crate::scan::kubernetes::FORMAT));
        assert!(!c.scan.format_enabled(crate::scan::compose::FORMAT));
    }

    #[test]
    fn forbidden_keys_are_refused_with_a_reason() {
        let d = diagnostics("[registries.\"ghcr.io\"]\npassword_env = \"X\"\n");
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(
            d[0].starts_with(".repin.toml:1:2: `registries` cannot be set in a repository config"),
            "{}",
            d[0]
        );
        assert!(
            d[1].starts_with(".repin.toml:2:1: `password_env` cannot be set"),
            "{}",
            d[1]
        );
        let d = diagnostics("[[rule]]\ntoken = \"abc\"\n");
        assert!(
            d[0].starts_with(".repin.toml:2:1: `token` cannot be set"),
            "{d:?}"
        );
    }

    #[test]
    fn several_config_files_warn_and_the_first_wins() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".github")).unwrap();
        std::fs::write(
            dir.path().join(".github/repin.toml"),
            "[update]\npin = true\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("repin.toml"), "[update]\npin = false\n").unwrap();
        let (config, warnings) = load_repo(dir.path()).unwrap();
        assert_eq!(config.file.as_deref(), Some(".github/repin.toml"));
        assert_eq!(config.update.pin, Some(true));
        assert_eq!(
            warnings,
            vec![
                "several repository configs: .github/repin.toml and repin.toml; using .github/repin.toml"
            ]
        );
    }

    /// Files: a repository config is never read through a link, and every candidate
    /// that cannot be used is named in a warning.
    #[test]
    fn files_repository_config_never_through_a_link() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("repin.toml"), "[update]\npin = true\n").unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join(".github")).unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("repin.toml"),
            dir.path().join(".repin.toml"),
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("repin.toml")).unwrap();
        let (config, warnings) = load_repo(dir.path()).unwrap();
        assert_eq!(config.file, None);
        assert_eq!(config.update.pin, None);
        assert_eq!(
            warnings,
            vec![
                ".github/repin.toml: is a symbolic link (or lies under one); not followed; this repository config is ignored",
                ".repin.toml: is a symbolic link (or lies under one); not followed; this repository config is ignored",
                "repin.toml: is a folder, not a regular file; this repository config is ignored",
            ]
        );
    }

    /// The one automaton per kind gives the same layers as each rule's own globs.
    #[test]
    fn untrusted_input_stays_cheap_rules_compiled_once_agree_with_each_rule() {
        let repo = parse_repo(
            ".repin.toml",
            "[[rule]]\nimages = [\"ghcr.io/acme/*\", \"docker.io/library/node\"]\ngroup = \"a\"\n[[rule]]\npaths = [\"deploy/**\"]\ntags = [\"1*\"]\npin = true\n[[rule]]\nimages = [\"**\"]\npaths = [\"*.yaml\"]\nmin_age = \"1d\"\n[[rule]]\ntags = [\"latest\"]\nignore = true\n",
        )
        .unwrap();
        let policy = Rules::new(None, &repo);
        for path in [
            "Dockerfile",
            "deploy/a.yaml",
            "a.yaml",
            "deploy/x/Dockerfile",
        ] {
            for image in [
                None,
                Some("ghcr.io/acme/app:1"),
                Some("node:18"),
                Some("redis"),
            ] {
                let image = image.map(|i| ImageRef::parse(i).unwrap());
                let name = image.as_ref().map(|i| i.name().to_string());
                let tag = image.as_ref().map(ImageRef::tag_or_default);
                let mut naive = Settings::default();
                for layer in &policy.layers {
                    if layer.matches(path, name.as_deref(), tag) {
                        naive.overlay(&layer.settings);
                    }
                }
                let got = policy.settings_for(path, image.as_ref());
                assert_eq!(got.group, naive.group, "{path} {image:?}");
                assert_eq!(got.pin, naive.pin.unwrap_or(false), "{path} {image:?}");
                assert_eq!(
                    got.ignore,
                    naive.ignore.unwrap_or(false),
                    "{path} {image:?}"
                );
                assert_eq!(
                    got.min_age,
                    naive.min_age.unwrap_or_default(),
                    "{path} {image:?}"
                );
            }
        }
    }

    /// Config errors name the file (relative), line and column; oversized configs are a
    /// clear error, not a slow one.
    #[test]
    fn untrusted_input_stays_cheap_config_size_and_encoding() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".repin.toml"), b"[update]\n# caf\xe9\n").unwrap();
        let err = load_repo(dir.path()).unwrap_err().to_string();
        assert_eq!(err, ".repin.toml:2:6: not UTF-8");
        let big = "# padding\n".repeat(30_000);
        std::fs::write(dir.path().join(".repin.toml"), big).unwrap();
        let err = load_repo(dir.path()).unwrap_err().to_string();
        assert!(
            err.starts_with(".repin.toml:1:1: a repository config is limited to 256 KiB"),
            "{err}"
        );
    }
}
