//! Named contexts, as kubeconfig has them: a server, its events listener and
//! a token under a name, one of them current, in a small file only its owner
//! may read (0600) — `$MESHBROKER_CONFIG`, else
//! `$XDG_CONFIG_HOME/meshbroker/config.json`, else `~/.config/meshbroker/config.json`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::failure::Failure;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Context {
    pub server: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Contexts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_context: Option<String>,
    #[serde(default)]
    pub contexts: BTreeMap<String, Context>,
}

/// Where the contexts live.
pub fn config_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("MESHBROKER_CONFIG") {
        return Some(PathBuf::from(path));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))?;
    Some(base.join("meshbroker").join("config.json"))
}

impl Contexts {
    /// The file's contexts; none when there is no file.
    pub fn load(path: &Path) -> Result<Self, Failure> {
        match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text)
                .map_err(|e| Failure::Usage(format!("{}: {e}", path.display()))),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(error) => Err(Failure::Usage(format!("{}: {error}", path.display()))),
        }
    }

    /// The context named, or the current one; None when there is none and none
    /// was named.
    pub fn chosen(&self, named: Option<&str>) -> Result<Option<&Context>, Failure> {
        match named {
            Some(name) => self.contexts.get(name).map(Some).ok_or_else(|| {
                let known: Vec<&str> = self.contexts.keys().map(String::as_str).collect();
                Failure::Usage(format!("no context {name:?}; known: {}", known.join(", ")))
            }),
            None => Ok(self
                .current_context
                .as_deref()
                .and_then(|name| self.contexts.get(name))),
        }
    }

    /// Writes the file readable by its owner only (a temporary file renamed
    /// over it, so a reader never sees half of it).
    pub fn save(&self, path: &Path) -> Result<(), Failure> {
        let failed = |e: std::io::Error| Failure::Usage(format!("{}: {e}", path.display()));
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(failed)?;
        }
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| Failure::Usage(format!("cannot write the contexts: {e}")))?;
        let partial = path.with_extension("json.partial");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&partial).map_err(failed)?;
        file.write_all(text.as_bytes()).map_err(failed)?;
        file.sync_all().map_err(failed)?;
        std::fs::rename(&partial, path).map_err(failed)
    }

    /// The contexts as a table, the current one marked.
    pub fn table(&self) -> Vec<Vec<String>> {
        let mut rows = vec![vec!["CURRENT".into(), "NAME".into(), "SERVER".into()]];
        for (name, context) in &self.contexts {
            let current = self.current_context.as_deref() == Some(name.as_str());
            rows.push(vec![
                if current { "*".into() } else { String::new() },
                name.clone(),
                context.server.clone(),
            ]);
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contexts_round_trip_owner_only_and_choose_by_name_or_current() {
        let dir = tempfile::tempdir().expect("directory");
        let path = dir.path().join("nested").join("config.json");
        let mut contexts = Contexts::load(&path).expect("no file is no contexts");
        assert!(contexts.chosen(None).expect("fine").is_none());
        let local = Context {
            server: "http://127.0.0.1:8080".into(),
            events: None,
            token: Some("secret".into()),
        };
        contexts.contexts.insert("local".into(), local.clone());
        contexts.current_context = Some("local".into());
        contexts.save(&path).expect("saved");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("file").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let loaded = Contexts::load(&path).expect("loaded");
        assert_eq!(loaded.chosen(None).expect("fine"), Some(&local));
        assert_eq!(loaded.chosen(Some("local")).expect("fine"), Some(&local));
        assert!(
            matches!(loaded.chosen(Some("prod")), Err(Failure::Usage(m)) if m.contains("local"))
        );
    }
}
