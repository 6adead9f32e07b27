//! The floors both crates are built on (see `ARCHITECTURE.md`): every `crate::` path in the core
//! (`src/`), in the web crate's library (`app/src/lib.rs` and its modules) and in the `pawfile` binary
//! (`app/src/main.rs`, `app/src/cli/`) runs from a floor to the same floor or one below it, and no modules reach each other in a circle. A path counts wherever it is written: a `use`,
//! a type, an expression, a macro's tokens (`view!`); code under `#[cfg(test)]` and paths to a module's
//! own ancestors (a child using its parent's facade) do not.

use proc_macro2::{TokenStream, TokenTree};
use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};
use syn::visit::Visit;

/// The core's floors, lowest first. A module is on the floor of the longest prefix listed here.
const CORE: &[(&str, &[&str])] = &[
    ("vocabulary", &["domain", "clock", "net", "files"]),
    ("errors", &["error"]),
    ("outside world", &["storage", "db", "mail", "metrics"]),
    ("services", &["audit", "access", "rate_limit", "health"]),
    (
        "pets, records and documents",
        &["pets", "claim", "records", "documents", "home", "usage"],
    ),
    (
        "accounts and backups",
        &[
            "auth", "account", "deletion", "backup", "recovery", "admin", "alerts", "demo",
        ],
    ),
    ("scrape-time gauges", &["metrics::gauges"]),
    ("background tasks", &["tasks"]),
    ("settings", &["config"]),
    ("test support", &["testing"]),
    ("crate root", &[""]),
];

/// The `pawfile` binary's floors (a crate of its own, above both), lowest first.
const BINARY: &[(&str, &[&str])] = &[("commands", &["cli"]), ("crate root", &[""])];

/// The web crate's floors, lowest first.
const WEB: &[(&str, &[&str])] = &[
    ("errors", &["error"]),
    ("state", &["state"]),
    ("HTTP plumbing", &["http"]),
    (
        "server functions and document routes",
        &["api", "http::documents"],
    ),
    ("pages", &["feedback", "auth_state", "pages", "app"]),
    ("API description", &["http::openapi"]),
    ("start-up", &["startup"]),
    ("crate root", &[""]),
];

#[test]
fn the_core_floors_run_one_way() {
    check(&root().join("src/lib.rs"), CORE);
}

#[test]
fn the_web_floors_run_one_way() {
    check(&root().join("app/src/lib.rs"), WEB);
}

#[test]
fn the_binary_floors_run_one_way() {
    check(&root().join("app/src/main.rs"), BINARY);
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One path to something of this crate: how it starts as written, and the module it names.
struct Use {
    written: Vec<String>,
    target: String,
}

/// The first line of `text` that mentions the module `written` names (spans carry no lines here:
/// proc-macro2's span-locations would build the Leptos stack a second time).
fn line_of(text: &str, written: &[String]) -> usize {
    let word = match written.first().map(String::as_str) {
        Some("crate" | "self" | "super") => written
            .iter()
            .find(|segment| !matches!(segment.as_str(), "crate" | "self" | "super")),
        _ => written.first(),
    };
    let Some(word) = word else { return 0 };
    let is_word = |line: &str| {
        line.match_indices(word.as_str()).any(|(at, _)| {
            let before = line[..at].chars().next_back();
            let after = line[at + word.len()..].chars().next();
            !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
                && !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
        })
    };
    text.lines()
        .position(|line| !line.trim_start().starts_with("//") && is_word(line))
        .map_or(0, |index| index + 1)
}

fn check(crate_root: &Path, floors: &[(&str, &[&str])]) {
    let modules = modules(crate_root);
    assert!(
        modules.len() > 5,
        "found only {} modules from {}",
        modules.len(),
        crate_root.display()
    );
    let floor_of = |module: &str| -> Option<usize> {
        floors
            .iter()
            .enumerate()
            .flat_map(|(floor, (_, prefixes))| prefixes.iter().map(move |prefix| (floor, *prefix)))
            // The crate root's floor holds the root alone: a module left off the lists is on none.
            .filter(|(_, prefix)| {
                if prefix.is_empty() {
                    module.is_empty()
                } else {
                    is_within(module, prefix)
                }
            })
            .max_by_key(|(_, prefix)| prefix.len())
            .map(|(floor, _)| floor)
    };

    let mut problems = Vec::new();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, source) in &modules {
        let file = &source.file;
        let Some(from) = floor_of(module) else {
            problems.push(format!("{}: module `{module}` is on no floor", file.display()));
            continue;
        };
        for used in uses(module, &source.syntax, &modules) {
            let Some(target) = resolve(&used.target, &modules) else {
                continue;
            };
            if target == *module || is_within(module, &target) {
                continue;
            }
            if !edges.entry(module.clone()).or_default().insert(target.clone()) {
                continue; // reported at its first use
            }
            if let Some(to) = floor_of(&target)
                && to > from
            {
                problems.push(format!(
                    "{}:{}: `{module}` ({}) uses `{target}` ({}), a higher floor",
                    file.display(),
                    line_of(&source.text, &used.written),
                    floors[from].0,
                    floors[to].0
                ));
            }
        }
    }
    for circle in circles(&edges) {
        problems.push(format!("modules in a circle: {}", circle.join(", ")));
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// Whether `module` is `ancestor` or inside it (`""` is the crate root, which holds everything).
fn is_within(module: &str, ancestor: &str) -> bool {
    ancestor.is_empty()
        || module == ancestor
        || module
            .strip_prefix(ancestor)
            .is_some_and(|rest| rest.starts_with("::"))
}

/// A module's file, read and parsed once.
struct Source {
    file: PathBuf,
    text: String,
    syntax: syn::File,
}

/// Every module of the crate whose root is `root` (`lib.rs` or `main.rs`), found by following its
/// `mod` declarations (`a::b` for `a/b.rs` or `a/b/mod.rs`), with its source. Test-only modules are
/// left out; modules written inline belong to their file.
fn modules(root: &Path) -> BTreeMap<String, Source> {
    let mut found = BTreeMap::new();
    let mut pending = vec![(String::new(), root.to_path_buf())];
    while let Some((module, file)) = pending.pop() {
        let text = std::fs::read_to_string(&file).unwrap_or_else(|err| panic!("{}: {err}", file.display()));
        let syntax = syn::parse_file(&text).unwrap_or_else(|err| panic!("{}: {err}", file.display()));
        let dir = match file.file_stem().and_then(|stem| stem.to_str()) {
            Some("lib" | "main" | "mod") => file.parent().unwrap().to_path_buf(),
            _ => file.with_extension(""),
        };
        for item in &syntax.items {
            let syn::Item::Mod(declared) = item else { continue };
            if declared.content.is_some() || is_test_only(&declared.attrs) {
                continue;
            }
            let name = declared.ident.to_string();
            let child = [dir.join(format!("{name}.rs")), dir.join(&name).join("mod.rs")]
                .into_iter()
                .find(|candidate| candidate.exists())
                .unwrap_or_else(|| panic!("{}: no file for `mod {name}`", file.display()));
            let path = if module.is_empty() {
                name
            } else {
                format!("{module}::{name}")
            };
            pending.push((path, child));
        }
        found.insert(module, Source { file, text, syntax });
    }
    found
}

/// The module a path names: its longest prefix that is a module.
fn resolve(path: &str, modules: &BTreeMap<String, Source>) -> Option<String> {
    let mut candidate = path;
    loop {
        if modules.contains_key(candidate) {
            return Some(candidate.to_owned());
        }
        candidate = &candidate[..candidate.rfind("::")?];
    }
}

/// Every path in `syntax` (module `module`) that names something of this crate.
fn uses(module: &str, syntax: &syn::File, modules: &BTreeMap<String, Source>) -> Vec<Use> {
    let mut collector = Collector {
        module,
        modules,
        found: Vec::new(),
    };
    collector.visit_file(syntax);
    collector.found
}

struct Collector<'a> {
    module: &'a str,
    modules: &'a BTreeMap<String, Source>,
    found: Vec<Use>,
}

impl Collector<'_> {
    /// Records `segments` (as written in this module) if they name something of this crate.
    fn record(&mut self, segments: &[String]) {
        let Some(first) = segments.first() else { return };
        let mut base: Vec<&str> = if self.module.is_empty() {
            Vec::new()
        } else {
            self.module.split("::").collect()
        };
        let rest = match first.as_str() {
            "crate" => {
                base.clear();
                &segments[1..]
            }
            "self" => &segments[1..],
            "super" => {
                let supers = segments.iter().take_while(|segment| *segment == "super").count();
                base.truncate(base.len().saturating_sub(supers));
                &segments[supers..]
            }
            // A child module named without `self::`.
            child if self.modules.contains_key(&join(&base, &[child.to_owned()])) => segments,
            _ => return,
        };
        self.found.push(Use {
            written: segments.to_vec(),
            target: join(&base, rest),
        });
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(path) => {
                prefix.push(path.ident.to_string());
                self.use_tree(prefix, &path.tree);
                prefix.pop();
            }
            syn::UseTree::Name(name) => {
                let mut full = prefix.clone();
                if name.ident != "self" {
                    full.push(name.ident.to_string());
                }
                self.record(&full);
            }
            syn::UseTree::Rename(rename) => {
                let mut full = prefix.clone();
                full.push(rename.ident.to_string());
                self.record(&full);
            }
            syn::UseTree::Glob(_) => self.record(prefix),
            syn::UseTree::Group(group) => {
                for tree in &group.items {
                    self.use_tree(prefix, tree);
                }
            }
        }
    }

    /// `crate::a::b` sequences in a macro's tokens.
    fn tokens(&mut self, tokens: TokenStream) {
        let tokens: Vec<TokenTree> = tokens.into_iter().collect();
        for (index, token) in tokens.iter().enumerate() {
            match token {
                TokenTree::Group(group) => self.tokens(group.stream()),
                TokenTree::Ident(ident) if ident == "crate" => {
                    let mut segments = vec!["crate".to_owned()];
                    let mut next = index + 1;
                    while let (
                        Some(TokenTree::Punct(a)),
                        Some(TokenTree::Punct(b)),
                        Some(TokenTree::Ident(name)),
                    ) = (tokens.get(next), tokens.get(next + 1), tokens.get(next + 2))
                    {
                        if a.as_char() != ':' || b.as_char() != ':' {
                            break;
                        }
                        segments.push(name.to_string());
                        next += 3;
                    }
                    self.record(&segments);
                }
                _ => {}
            }
        }
    }
}

fn join(base: &[&str], rest: &[String]) -> String {
    base.iter()
        .copied()
        .chain(rest.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join("::")
}

fn is_test_only(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|attr| {
        attr.path().is_ident("cfg")
            && attr
                .meta
                .require_list()
                .is_ok_and(|list| list.tokens.to_string() == "test")
    })
}

impl<'ast> Visit<'ast> for Collector<'_> {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        let attrs: &[syn::Attribute] = match item {
            syn::Item::Const(item) => &item.attrs,
            syn::Item::Enum(item) => &item.attrs,
            syn::Item::Fn(item) => &item.attrs,
            syn::Item::Impl(item) => &item.attrs,
            syn::Item::Macro(item) => &item.attrs,
            syn::Item::Mod(item) => &item.attrs,
            syn::Item::Static(item) => &item.attrs,
            syn::Item::Struct(item) => &item.attrs,
            syn::Item::Trait(item) => &item.attrs,
            syn::Item::Type(item) => &item.attrs,
            syn::Item::Use(item) => &item.attrs,
            _ => &[],
        };
        if !is_test_only(attrs) {
            syn::visit::visit_item(self, item);
        }
    }

    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        self.use_tree(&mut Vec::new(), &item.tree);
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments: Vec<String> = path
            .segments
            .iter()
            .map(|segment| segment.ident.to_string())
            .collect();
        self.record(&segments);
        syn::visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.tokens(mac.tokens.clone());
        syn::visit::visit_macro(self, mac);
    }
}

/// The groups of modules that reach each other (Tarjan's strongly connected components of two or more).
fn circles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Search<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        found: Vec<Vec<String>>,
    }
    impl<'a> Search<'a> {
        fn visit(&mut self, node: &'a str) {
            let number = self.index.len();
            self.index.insert(node, number);
            self.low.insert(node, number);
            self.stack.push(node);
            for next in self.edges.get(node).into_iter().flatten() {
                if !self.index.contains_key(next.as_str()) {
                    self.visit(next);
                    let low = self.low[node].min(self.low[next.as_str()]);
                    self.low.insert(node, low);
                } else if self.stack.contains(&next.as_str()) {
                    let low = self.low[node].min(self.index[next.as_str()]);
                    self.low.insert(node, low);
                }
            }
            if self.low[node] == self.index[node] {
                let at = self.stack.iter().rposition(|member| *member == node).unwrap();
                let group: Vec<String> = self.stack.split_off(at).into_iter().map(str::to_owned).collect();
                if group.len() > 1 {
                    self.found.push(group);
                }
            }
        }
    }
    let mut search = Search {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for node in edges.keys() {
        if !search.index.contains_key(node.as_str()) {
            search.visit(node);
        }
    }
    search.found
}
