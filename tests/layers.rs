//! The shape of src/: a stack whose imports only run downwards, no circle of
//! imports between files, and `mod.rs` files that only tell their module's story
//! and list its parts. Read from the source text (`crate::`, `super::` and a
//! `mod.rs`'s own `pub use child::…` paths), so it stays so without a build tool.
//!
//! An import of an item a `mod.rs` re-exports counts as an import of the file
//! that defines it: `use super::Thing` in a sibling is not a circle through the
//! parent's `pub use`. Inline modules (`mod tests { … }`) are read as children
//! of their file. Intra-doc links and comments are not imports.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The stack, bottom first: a module may import only from lower ranks.
const RANKS: &[(&str, u8)] = &[
    ("telemetry", 0),
    ("shutdown", 0),
    ("ids", 0),
    ("locks", 0),
    ("bodies", 0),
    ("files", 0),
    ("resources", 1),
    ("pki", 1),
    ("config", 2),
    ("store", 2),
    ("auth", 3),
    ("leader", 3),
    ("mesh", 4),
    ("provisioner", 4),
    ("controllers", 5),
    ("state", 6),
    ("osb", 7),
    ("resource_api", 7),
    ("ingress", 7),
    ("connector", 7),
    ("console", 7),
    ("server", 8),
    ("cli", 8),
];

type ModPath = Vec<String>;

#[derive(Debug)]
struct SourceFile {
    module: ModPath,
    is_mod_rs: bool,
    text: String,
}

/// The crate as the checks see it: files by module path.
struct Crate {
    files: BTreeMap<ModPath, SourceFile>,
}

impl Crate {
    fn read(src: &Path) -> Crate {
        let mut files = BTreeMap::new();
        let mut pending = vec![src.to_path_buf()];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).expect("read src/") {
                let path = entry.expect("dir entry").path();
                if path.is_dir() {
                    pending.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let relative = path.strip_prefix(src).expect("under src/").to_path_buf();
                    if let Some(file) = source_file(&relative, read(&path)) {
                        files.insert(file.module.clone(), file);
                    }
                }
            }
        }
        Crate { files }
    }

    fn from_texts(texts: &[(&str, &str)]) -> Crate {
        let files = texts
            .iter()
            .filter_map(|(path, text)| source_file(Path::new(path), text.to_string()))
            .map(|file| (file.module.clone(), file))
            .collect();
        Crate { files }
    }

    /// The file an absolute path names: its longest module prefix, or, for an item
    /// a `mod.rs` re-exports, the file that defines it.
    fn resolve(&self, path: &[String], hops: usize) -> Option<ModPath> {
        let split = (0..=path.len())
            .rev()
            .find(|&n| self.files.contains_key(&path[..n]))?;
        let (module, rest) = path.split_at(split);
        let file = &self.files[module];
        if let (true, true, Some(name)) = (file.is_mod_rs, hops < 8, rest.first()) {
            for (exported, target) in reexports(file) {
                if &exported == name {
                    let mut target = absolute(&file.module, &target, self)?;
                    target.extend(rest[1..].iter().cloned());
                    return self.resolve(&target, hops + 1);
                }
            }
        }
        Some(module.to_vec())
    }

    /// Every file each file imports from (other than itself).
    fn imports(&self) -> BTreeMap<ModPath, BTreeSet<ModPath>> {
        let mut graph = BTreeMap::new();
        for (module, file) in &self.files {
            let mut targets = BTreeSet::new();
            for (scope, path) in referenced_paths(file) {
                let Some(path) = absolute(&scope, &path, self) else {
                    continue;
                };
                if let Some(target) = self.resolve(&path, 0)
                    && &target != module
                    && !target.is_empty()
                {
                    targets.insert(target);
                }
            }
            graph.insert(module.clone(), targets);
        }
        graph
    }

    fn has_child(&self, module: &[String], name: &str) -> bool {
        let mut child = module.to_vec();
        child.push(name.to_string());
        self.files.contains_key(&child)
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn source_file(relative: &Path, text: String) -> Option<SourceFile> {
    let mut module: ModPath = relative
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let last = module.last().cloned().unwrap_or_default();
    if module.len() == 1 && last == "main" {
        return None; // the binary imports the library as `meshbroker::`
    }
    let is_mod_rs = last == "mod" || (module.len() == 1 && last == "lib");
    if is_mod_rs {
        module.pop();
    }
    Some(SourceFile {
        module,
        is_mod_rs,
        text,
    })
}

/// The code of a file without comments, each line with the module it is in.
fn code_lines(file: &SourceFile) -> Vec<(ModPath, String)> {
    let mut scope = file.module.clone();
    let mut lines = Vec::new();
    for line in file.text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("//") {
            continue;
        }
        let code = match trimmed.find(" //") {
            Some(at) if !trimmed[..at].contains('"') => &trimmed[..at],
            _ => trimmed,
        };
        if let Some(name) = inline_module(code) {
            // Inline modules sit at the end of their files (tests), so everything
            // after the opening line belongs to them.
            scope = file.module.clone();
            scope.push(name);
            continue;
        }
        lines.push((scope.clone(), code.to_string()));
    }
    lines
}

fn inline_module(code: &str) -> Option<String> {
    let rest = code
        .strip_prefix("pub mod ")
        .or_else(|| code.strip_prefix("mod "))?;
    let name = rest.strip_suffix(" {")?;
    name.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_')
        .then(|| name.to_string())
}

/// Paths as written (`crate::…`, `super::…`, or a `use` of a child module),
/// each with the module it is written in; `{…}` groups expanded.
fn referenced_paths(file: &SourceFile) -> Vec<(ModPath, ModPath)> {
    let mut found = Vec::new();
    let lines = code_lines(file);
    // Paths may span lines (`use crate::x::{\n A,\n B,\n};`): scan each
    // module's code as one text.
    let mut blobs: Vec<(ModPath, String)> = Vec::new();
    for (scope, code) in &lines {
        match blobs.last_mut() {
            Some((last, blob)) if last == scope => {
                blob.push(' ');
                blob.push_str(code);
            }
            _ => blobs.push((scope.clone(), code.clone())),
        }
    }
    for (scope, blob) in &blobs {
        for start in ["crate::", "super::"] {
            for (at, _) in blob.match_indices(start) {
                let before = blob[..at].chars().next_back();
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                    continue;
                }
                for path in expand(&blob[at..]) {
                    found.push((scope.clone(), path));
                }
            }
        }
        // `use child::…` (a mod.rs naming its own children).
        for statement in blob.split(';') {
            let statement = statement.trim();
            let Some(body) = ["use ", "pub use ", "pub(crate) use "]
                .iter()
                .find_map(|p| statement.strip_prefix(p))
            else {
                continue;
            };
            for path in expand(body) {
                if !matches!(path[0].as_str(), "crate" | "super" | "self") {
                    found.push((scope.clone(), path));
                }
            }
        }
    }
    found
}

/// `a::{b, c::{d, self}}` → [a,b], [a,c,d], [a,c]. Stops at the first character
/// that cannot be part of a path.
fn expand(text: &str) -> Vec<ModPath> {
    let mut out = Vec::new();
    expand_into(text, Vec::new(), &mut out);
    out
}

fn expand_into(text: &str, prefix: ModPath, out: &mut Vec<ModPath>) {
    let mut path = prefix;
    let mut rest = text;
    loop {
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let segment = &rest[..end];
        rest = &rest[end..];
        if segment == "self" {
            out.push(path);
            return;
        }
        if !segment.is_empty() {
            path.push(segment.to_string());
        }
        if let Some(after) = rest.strip_prefix("::") {
            if let Some(group) = after.strip_prefix('{') {
                for part in split_group(group) {
                    expand_into(part.trim(), path.clone(), out);
                }
                return;
            }
            rest = after;
            continue;
        }
        if !segment.is_empty() && segment != "*" {
            out.push(path);
        }
        return;
    }
}

/// The comma-separated parts of a `{…}` group up to its closing brace.
fn split_group(group: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (at, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                parts.push(&group[start..at]);
                return parts;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&group[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    parts.push(&group[start..]);
    parts
}

/// A path as written in `scope`, made absolute; None for other crates' paths.
fn absolute(scope: &[String], path: &[String], krate: &Crate) -> Option<ModPath> {
    let mut base = scope.to_vec();
    let mut segments = path.iter().peekable();
    match segments.peek().map(|s| s.as_str()) {
        Some("crate") => {
            base.clear();
            segments.next();
        }
        Some("super") => {
            while segments.peek().is_some_and(|s| s.as_str() == "super") {
                segments.next();
                base.pop()?;
            }
        }
        Some("self") => {
            segments.next();
        }
        Some(first) if krate.has_child(scope, first) => {}
        _ => return None,
    }
    base.extend(segments.cloned());
    Some(base)
}

/// A mod.rs's `pub use child::…::Name` lines: (Name, the path as written).
fn reexports(file: &SourceFile) -> Vec<(String, ModPath)> {
    referenced_paths(file)
        .into_iter()
        .filter(|(scope, _)| scope == &file.module)
        .filter_map(|(_, path)| Some((path.last()?.clone(), path)))
        .collect()
}

fn rank(module: &[String]) -> Option<u8> {
    let top = module.first()?;
    RANKS.iter().find(|(name, _)| name == top).map(|(_, r)| *r)
}

fn shown(module: &[String]) -> String {
    if module.is_empty() {
        "crate".into()
    } else {
        module.join("::")
    }
}

/// Imports that run up the stack or sideways between wings of one rank.
fn upward_imports(graph: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> Vec<String> {
    let mut problems = Vec::new();
    for (from, targets) in graph {
        for to in targets {
            if from.first() == to.first() || from.is_empty() {
                continue;
            }
            match (rank(from), rank(to)) {
                (Some(a), Some(b)) if a > b => {}
                (Some(_), Some(_)) => problems.push(format!(
                    "{} imports {} (not below it in the stack)",
                    shown(from),
                    shown(to)
                )),
                _ => problems.push(format!(
                    "{} → {}: a top-level module missing from RANKS",
                    shown(from),
                    shown(to)
                )),
            }
        }
    }
    problems
}

/// Groups of files that import each other in a circle (Tarjan's algorithm).
fn circles(graph: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> Vec<Vec<ModPath>> {
    struct Walk<'g> {
        graph: &'g BTreeMap<ModPath, BTreeSet<ModPath>>,
        index: BTreeMap<&'g ModPath, usize>,
        low: BTreeMap<&'g ModPath, usize>,
        stack: Vec<&'g ModPath>,
        on_stack: BTreeSet<&'g ModPath>,
        found: Vec<Vec<ModPath>>,
    }
    impl<'g> Walk<'g> {
        fn visit(&mut self, node: &'g ModPath) {
            let at = self.index.len();
            self.index.insert(node, at);
            self.low.insert(node, at);
            self.stack.push(node);
            self.on_stack.insert(node);
            for next in self.graph.get(node).into_iter().flatten() {
                if !self.graph.contains_key(next) {
                    continue;
                }
                if !self.index.contains_key(next) {
                    self.visit(next);
                    let low = self.low[node].min(self.low[next]);
                    self.low.insert(node, low);
                } else if self.on_stack.contains(next) {
                    let low = self.low[node].min(self.index[next]);
                    self.low.insert(node, low);
                }
            }
            if self.low[node] == self.index[node] {
                let mut group = Vec::new();
                while let Some(member) = self.stack.pop() {
                    self.on_stack.remove(member);
                    group.push(member.clone());
                    if member == node {
                        break;
                    }
                }
                if group.len() > 1 {
                    group.sort();
                    self.found.push(group);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for node in graph.keys() {
        if !walk.index.contains_key(node) {
            walk.visit(node);
        }
    }
    walk.found
}

/// A `mod.rs` line that is more than doc, blank, `mod` or `pub use`.
fn mod_rs_extras(file: &SourceFile) -> Vec<String> {
    let mut extras = Vec::new();
    let mut in_use = false;
    for line in file.text.lines() {
        let line = line.trim();
        let allowed = in_use
            || line.is_empty()
            || line.starts_with("//!")
            || line == "#[cfg(test)]"
            || ["mod ", "pub mod ", "pub(crate) mod "]
                .iter()
                .any(|p| line.starts_with(p) && line.ends_with(';'))
            || ["pub use ", "pub(crate) use "]
                .iter()
                .any(|p| line.starts_with(p));
        if !allowed {
            extras.push(line.to_string());
        }
        if line.starts_with("pub use ") || line.starts_with("pub(crate) use ") || in_use {
            in_use = !line.ends_with(';');
        }
    }
    extras
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn imports_only_run_down_the_stack() {
    let krate = Crate::read(&src());
    let problems = upward_imports(&krate.imports());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn no_files_import_each_other_in_a_circle() {
    let krate = Crate::read(&src());
    let found = circles(&krate.imports());
    let shown: Vec<String> = found
        .iter()
        .map(|group| {
            group
                .iter()
                .map(|m| shown(m))
                .collect::<Vec<_>>()
                .join(" ↔ ")
        })
        .collect();
    assert!(shown.is_empty(), "{shown:#?}");
}

#[test]
fn mod_rs_files_only_name_their_parts() {
    let krate = Crate::read(&src());
    let mut problems = Vec::new();
    for file in krate.files.values().filter(|f| f.is_mod_rs) {
        for extra in mod_rs_extras(file) {
            problems.push(format!("{}: {extra}", shown(&file.module)));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_top_level_module_has_a_rank() {
    let krate = Crate::read(&src());
    let unranked: Vec<String> = krate
        .files
        .keys()
        .filter(|m| !m.is_empty() && rank(m).is_none())
        .map(|m| shown(m))
        .collect();
    assert!(unranked.is_empty(), "add to RANKS: {unranked:?}");
}

// The checks themselves, on small crates written here.

fn module(path: &str) -> ModPath {
    path.split("::").map(str::to_string).collect()
}

#[test]
fn the_check_sees_an_import_up_the_stack() {
    let krate = Crate::from_texts(&[
        ("lib.rs", "pub mod store;\npub mod server;\n"),
        ("store.rs", "use crate::server::{Thing, other::Deep};\n"),
        ("server.rs", "pub struct Thing;\n"),
    ]);
    let problems = upward_imports(&krate.imports());
    assert_eq!(
        problems,
        ["store imports server (not below it in the stack)"]
    );
}

#[test]
fn the_check_sees_a_circle_and_follows_reexports() {
    let krate = Crate::from_texts(&[
        (
            "mesh/mod.rs",
            "mod a;\nmod b;\nmod c;\npub use a::A;\npub use c::{C, D};\n",
        ),
        ("mesh/a.rs", "use super::b::B;\npub struct A;\n"),
        ("mesh/b.rs", "use super::A;\npub struct B;\n"),
        ("mesh/c.rs", "use super::A;\nfn f() { super::b::B; }\n"),
    ]);
    let graph = krate.imports();
    assert_eq!(
        graph[&module("mesh::c")],
        [module("mesh::a"), module("mesh::b")].into()
    );
    assert_eq!(
        circles(&graph),
        [vec![module("mesh::a"), module("mesh::b")]]
    );
}

#[test]
fn an_inline_test_module_imports_its_own_file() {
    let krate = Crate::from_texts(&[
        ("mesh/mod.rs", "mod a;\nmod b;\n"),
        (
            "mesh/a.rs",
            "pub struct A;\n#[cfg(test)]\nmod tests {\n    use super::A;\n    use crate::mesh::b::B;\n}\n",
        ),
        (
            "mesh/b.rs",
            "use super::a::A; // a comment naming crate::mesh::a\n",
        ),
    ]);
    let graph = krate.imports();
    assert_eq!(graph[&module("mesh::a")], [module("mesh::b")].into());
    assert_eq!(circles(&graph).len(), 1, "a's tests import b, b imports a");
}

#[test]
fn a_mod_rs_with_code_is_named() {
    let krate = Crate::from_texts(&[(
        "mesh/mod.rs",
        "//! Story.\n\nmod a;\npub use a::{\n    A,\n    B,\n};\n\npub struct Settings;\n",
    )]);
    assert_eq!(
        mod_rs_extras(&krate.files[&module("mesh")]),
        ["pub struct Settings;"]
    );
}
