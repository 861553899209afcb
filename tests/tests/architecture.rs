//! The import rules of ARCHITECTURE.md, checked on the source: the floors of each crate (an arrow
//! from a module to one on a higher floor is refused), no circle between sibling modules at any
//! depth, no I/O in core, nothing above `nn` imported by it, nothing of core imported by the
//! kernels crate. The rules run on the tree as it is (no violation) and on copies with planted
//! violations (each one reported), so the check itself is tested.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Source files by path relative to the workspace (`core/src/nn/mod.rs`), their text.
type Tree = BTreeMap<String, String>;

const CRATES: [&str; 4] = ["core", "shaders", "native", "web"];

/// Each crate's top-level modules by floor, lowest first: a module may import its own floor and
/// those below. A module missing from the list is reported, so a new one gets a floor on purpose.
const FLOORS: [(&str, &[&[&str]]); 3] = [
    (
        "core",
        &[
            &["error"],
            &["readback", "device", "tokenizer", "nn", "quality"],
            &["hf"],
            &["models"],
            &["footprint", "objectives", "parallel", "parity", "generate"],
            &["eval", "attention_maps", "train"],
            &["finetune"],
        ],
    ),
    ("native", &[&["faults", "overrides", "report"], &["distributed"], &["backend"], &["storage"], &["commands"]]),
    ("shaders", &[&["device", "plumbing"], &["memory", "attention"], &["cpu"]]),
];

/// What `core::nn` may import of core (it sits under every model).
const NN_MAY_IMPORT: [&str; 3] = ["nn", "error", "readback"];

/// I/O that core never does: files, sockets, processes, the terminal.
const CORE_IO: [&str; 9] = [
    "std::fs",
    "std::net",
    "std::process",
    "std::io::stdin",
    "std::io::stdout",
    "std::io::stderr",
    "println!",
    "eprintln!",
    "print!(",
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn load() -> Tree {
    fn walk(dir: &Path, root: &Path, out: &mut Tree) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, root, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
                out.insert(rel, std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    let root = workspace();
    let mut tree = Tree::new();
    for krate in CRATES {
        walk(&root.join(krate).join("src"), &root, &mut tree);
    }
    tree
}

/// A file's module path within its crate: `core/src/nn/mod.rs` → `["nn"]`, `lib.rs` → `[]`.
fn module_of(path: &str) -> (String, Vec<String>) {
    let (krate, rest) = path.split_once("/src/").unwrap();
    let mut parts: Vec<String> = rest.trim_end_matches(".rs").split('/').map(String::from).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        parts.pop();
    }
    (krate.to_string(), parts)
}

/// The code of a file without comments, string and char literals, and its test module.
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    let (b, mut out, mut i) = (text.as_bytes(), String::new(), 0);
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            i += 2;
            while i < b.len() && !b[i..].starts_with(b"*/") {
                i += 1;
            }
            i += 2;
        } else if b[i] == b'"' || (b[i] == b'r' && b.get(i + 1).is_some_and(|c| *c == b'"' || *c == b'#')) {
            // A string (raw ones with their hashes): skipped to its closing quote.
            let mut hashes = 0;
            if b[i] == b'r' {
                i += 1;
                while b[i] == b'#' {
                    hashes += 1;
                    i += 1;
                }
            }
            i += 1;
            let close: Vec<u8> = std::iter::once(b'"').chain(std::iter::repeat_n(b'#', hashes)).collect();
            while i < b.len() && !b[i..].starts_with(&close) {
                i += if b[i] == b'\\' && hashes == 0 { 2 } else { 1 };
            }
            i += close.len();
            out.push_str("\"\"");
        } else if b[i] == b'\'' && b.get(i + 2) == Some(&b'\'') {
            i += 3; // 'c'
        } else if b[i] == b'\'' && b.get(i + 1) == Some(&b'\\') {
            i += 2;
            while i < b.len() && b[i] != b'\'' {
                i += 1;
            }
            i += 1;
        } else {
            let start = i;
            i += 1;
            while i < b.len() && !b"/\"'r".contains(&b[i]) {
                i += 1;
            }
            out.push_str(&text[start..i]);
        }
    }
    out
}

/// The module paths a file names (`crate::a::b`, `super::c`, `self::d`, with `{…}` groups
/// expanded), each resolved to the deepest module of `modules` it reaches.
fn imports(code: &str, here: &[String], modules: &BTreeSet<Vec<String>>) -> BTreeSet<Vec<String>> {
    let mut found = BTreeSet::new();
    let bytes = code.as_bytes();
    for start in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(pos) = code[from..].find(start) {
            let at = from + pos;
            from = at + start.len();
            if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_' || bytes[at - 1] == b':') {
                continue;
            }
            let mut base: Vec<String> = match start {
                "crate::" => Vec::new(),
                "self::" => here.to_vec(),
                _ => here[..here.len().saturating_sub(1)].to_vec(),
            };
            let mut rest = &code[at + start.len()..];
            while let Some(r) = rest.strip_prefix("super::") {
                base.pop();
                rest = r;
            }
            for path in expand(rest) {
                let mut full = base.clone();
                full.extend(path);
                while !full.is_empty() && !modules.contains(&full) {
                    full.pop();
                }
                found.insert(full);
            }
        }
    }
    found
}

/// The paths at the start of `rest`: `a::b::C` → `[[a, b, C]]`, `{a, b::{c, d}}` → all of them.
fn expand(rest: &str) -> Vec<Vec<String>> {
    let ident: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
    if ident.is_empty() {
        let Some(inner) = rest.strip_prefix('{') else { return vec![Vec::new()] };
        let (mut depth, mut items, mut item) = (0, Vec::new(), String::new());
        for c in inner.chars() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => break,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    items.push(std::mem::take(&mut item));
                    continue;
                }
                _ => {}
            }
            item.push(c);
        }
        items.push(item);
        return items.iter().flat_map(|i| expand(i.trim())).collect();
    }
    let after = &rest[ident.len()..];
    match after.strip_prefix("::") {
        Some(more) => expand(more).into_iter().map(|p| std::iter::once(ident.clone()).chain(p).collect()).collect(),
        None => vec![vec![ident]],
    }
}

/// Every violation in `tree`, one line each.
fn violations(tree: &Tree) -> Vec<String> {
    let mut out = Vec::new();
    let mut modules: BTreeMap<String, BTreeSet<Vec<String>>> = BTreeMap::new();
    for path in tree.keys() {
        let (krate, module) = module_of(path);
        modules.entry(krate).or_default().insert(module);
    }
    // Arrows between modules of a crate, as (from, to) module paths.
    let mut arrows: BTreeMap<String, BTreeSet<(Vec<String>, Vec<String>)>> = BTreeMap::new();
    for (path, text) in tree {
        let (krate, here) = module_of(path);
        let code = code(text);
        for target in imports(&code, &here, &modules[&krate]) {
            arrows.entry(krate.clone()).or_default().insert((here.clone(), target));
        }
        let named = |what: &str| code.contains(what);
        if krate == "core" {
            for io in CORE_IO.iter().filter(|io| named(io)) {
                out.push(format!("{path}: core does no I/O, and this file uses {io}"));
            }
        }
        if krate == "shaders" && named("hearth_core") {
            out.push(format!("{path}: the kernels crate imports nothing of core"));
        }
        if krate == "core" && (named("hearth_web") || named("hearth::")) {
            out.push(format!("{path}: core never imports a front end"));
        }
    }
    for (krate, arrows) in &arrows {
        let floor_of = |m: &str| {
            FLOORS.iter().find(|(k, _)| k == krate).and_then(|(_, floors)| floors.iter().position(|f| f.contains(&m)))
        };
        let has_floors = FLOORS.iter().any(|(k, _)| k == krate);
        for top in modules[krate].iter().filter(|m| m.len() == 1) {
            if has_floors && floor_of(&top[0]).is_none() {
                out.push(format!(
                    "{krate}: module {} has no floor in the import rules (tests/tests/architecture.rs)",
                    top[0]
                ));
            }
        }
        // Sibling arrows: between the two children of the nearest common ancestor.
        let mut siblings: BTreeMap<Vec<String>, BTreeSet<(String, String)>> = BTreeMap::new();
        for (from, to) in arrows {
            let common = from.iter().zip(to).take_while(|(a, b)| a == b).count();
            if common == from.len() || common == to.len() {
                continue; // within a module, or between a module and its own parts
            }
            let (a, b) = (from[common].clone(), to[common].clone());
            if krate == "core" && from[0] == "nn" && !NN_MAY_IMPORT.contains(&to[0].as_str()) {
                out.push(format!(
                    "core::{}: nn imports nothing above it, and this imports core::{}",
                    from.join("::"),
                    to.join("::")
                ));
            }
            if common == 0
                && let (Some(fa), Some(fb)) = (floor_of(&a), floor_of(&b))
                && fb > fa
            {
                out.push(format!(
                    "{krate}::{} imports {krate}::{}: an arrow up a floor",
                    from.join("::"),
                    to.join("::")
                ));
            }
            siblings.entry(from[..common].to_vec()).or_default().insert((a, b));
        }
        for (parent, edges) in siblings {
            for cycle in circles(&edges) {
                let at = if parent.is_empty() { krate.clone() } else { format!("{krate}::{}", parent.join("::")) };
                out.push(format!("{at}: an import circle {}", cycle.join(" → ")));
            }
        }
    }
    out
}

/// The circles of a graph, one per strongly connected component of more than one node (Tarjan),
/// each written from its first node back to it.
fn circles(edges: &BTreeSet<(String, String)>) -> Vec<Vec<String>> {
    let nodes: BTreeSet<&String> = edges.iter().flat_map(|(a, b)| [a, b]).collect();
    let mut next: BTreeMap<&String, Vec<&String>> = BTreeMap::new();
    for (a, b) in edges {
        next.entry(a).or_default().push(b);
    }
    // Reachability by depth-first search is enough at these sizes: a node is on a circle with
    // every node it reaches and that reaches it.
    let reach = |from: &String| {
        let (mut seen, mut stack) = (BTreeSet::new(), vec![from]);
        while let Some(n) = stack.pop() {
            for &m in next.get(n).into_iter().flatten() {
                if seen.insert(m) {
                    stack.push(m);
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&String, BTreeSet<&String>> = nodes.iter().map(|n| (*n, reach(n))).collect();
    let mut done = BTreeSet::new();
    let mut out = Vec::new();
    for n in &nodes {
        if done.contains(n) || !reaches[n].contains(n) {
            continue;
        }
        let component: Vec<String> = nodes
            .iter()
            .filter(|m| reaches[n].contains(*m) && reaches[*m].contains(*n))
            .map(|m| m.to_string())
            .collect();
        done.extend(nodes.iter().filter(|m| component.contains(m)).copied());
        out.push(component.iter().cloned().chain(std::iter::once(component[0].clone())).collect());
    }
    out
}

#[test]
fn the_tree_keeps_the_import_rules() {
    let tree = load();
    assert!(tree.len() > 100, "the sources are read: {}", tree.len());
    let found = violations(&tree);
    assert!(found.is_empty(), "import rules broken (ARCHITECTURE.md):\n{}", found.join("\n"));
}

#[test]
fn a_planted_violation_of_each_rule_is_reported() {
    let clean = load();
    let plant = |file: &str, line: &str| {
        let mut tree = clean.clone();
        // At the top: a file's test module (ignored) comes last.
        tree.get_mut(file).unwrap_or_else(|| panic!("{file}")).insert_str(0, line);
        violations(&tree)
    };
    let reported = |found: &[String], what: &str| found.iter().any(|v| v.contains(what));
    let cases: [(&str, &str, &[&str]); 6] = [
        // A layer importing a model: nn's rule, a floor up, and a circle (models imports nn).
        (
            "core/src/nn/mod.rs",
            "\nuse crate::models::ModelConfig;\n",
            &["nn imports nothing above it", "an arrow up a floor", "core: an import circle"],
        ),
        ("core/src/generate.rs", "\nfn leak() { let _ = std::fs::read(\"x\"); }\n", &["core does no I/O"]),
        (
            "core/src/eval/mod.rs",
            "\nfn say() { println!(\"hi\"); }\n",
            &["core does no I/O, and this file uses println!"],
        ),
        ("shaders/src/device.rs", "\nuse hearth_core::Error;\n", &["the kernels crate imports nothing of core"]),
        // Storage reaching up into a command: a floor up and a circle.
        (
            "native/src/storage/checkpoint.rs",
            "\nuse crate::commands::train;\n",
            &["native::storage::checkpoint imports native::commands::train", "native: an import circle"],
        ),
        // A circle between two siblings deeper down, on one floor.
        (
            "native/src/commands/eval.rs",
            "\nuse crate::commands::train::Args;\n",
            &["native::commands: an import circle"],
        ),
    ];
    for (file, line, expected) in cases {
        let found = plant(file, line);
        for what in expected {
            assert!(reported(&found, what), "planting {line:?} in {file}: expected {what:?} among {found:#?}");
        }
    }
    // A new top-level module must be given a floor.
    let mut tree = clean.clone();
    tree.insert("core/src/newcomer.rs".into(), "use crate::error::Error;\n".into());
    assert!(reported(&violations(&tree), "module newcomer has no floor"));
    // Comments, strings and test modules are not imports.
    let mut tree = clean;
    tree.get_mut("core/src/nn/mod.rs").unwrap().push_str(
        "\n// crate::models is documented here\nconst _S: &str = \"crate::train\";\n#[cfg(test)]\nmod tests {\n    use crate::models::ModelConfig;\n}\n",
    );
    let found = violations(&tree);
    assert!(found.is_empty(), "{found:#?}");
}
