//! The README's "## Layout" section against the disk, both ways: every room
//! it lists exists, and every room on disk is listed.
//!
//! A *room* is a top-level directory of the repository (hidden ones and those
//! `.gitignore` names, such as `target/`, excepted), and a top-level module of
//! a workspace crate: each file or directory directly under `<crate>/src/`
//! except `lib.rs` (the crate's own line describes it), with `src/bin/` listed
//! binary by binary. The README may list more (a test directory, a file at the
//! root); those must exist too.
//!
//! Its own test binary, std only, so that it builds in seconds and needs no
//! server: the README is a map, and a map that names rooms that moved is worse
//! than none. The failure names each room to add or remove.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

#[test]
fn the_readme_layout_lists_every_room_and_only_rooms_that_exist() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the e2e crate sits in the workspace root")
        .to_path_buf();
    let readme = fs::read_to_string(root.join("README.md")).expect("README.md is readable");

    let report = check(&root, &readme).expect("README.md and the workspace are readable");

    assert!(report.is_empty(), "{report}");
}

/// What differs between the README's list and the disk.
#[derive(Debug, Default)]
struct Report {
    /// Rooms on disk the README does not list.
    unlisted: Vec<String>,
    /// Lines of the README naming something that is not on disk, each with a
    /// hint when a near name is (`app.rs` listed, `app/` on disk).
    missing: Vec<(String, Option<String>)>,
    /// Paths listed twice.
    duplicates: Vec<String>,
}

impl Report {
    fn is_empty(&self) -> bool {
        self.unlisted.is_empty() && self.missing.is_empty() && self.duplicates.is_empty()
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "README.md \"## Layout\" does not match the disk (a room: every top-level directory, and \
             every file or directory directly under <crate>/src/ except lib.rs, src/bin/ file by file)"
        )?;
        if !self.unlisted.is_empty() {
            writeln!(
                f,
                "  on disk, not in the README (add a line `<path>  <what it holds>`):"
            )?;
            for path in &self.unlisted {
                writeln!(f, "    {path}")?;
            }
        }
        if !self.missing.is_empty() {
            writeln!(f, "  in the README, not on disk (remove or fix the line):")?;
            for (path, hint) in &self.missing {
                match hint {
                    Some(on_disk) => writeln!(f, "    {path}  (on disk: {on_disk})")?,
                    None => writeln!(f, "    {path}")?,
                }
            }
        }
        if !self.duplicates.is_empty() {
            writeln!(f, "  listed more than once:")?;
            for path in &self.duplicates {
                writeln!(f, "    {path}")?;
            }
        }
        Ok(())
    }
}

/// Compares the layout section of `readme` with the workspace at `root`.
fn check(root: &Path, readme: &str) -> io::Result<Report> {
    let listed = match layout_paths(readme) {
        Ok(listed) => listed,
        Err(problem) => return Err(io::Error::new(io::ErrorKind::InvalidData, problem)),
    };
    let on_disk = rooms_on_disk(root)?;

    let mut report = Report::default();
    let mut seen = BTreeSet::new();
    for path in &listed {
        if !seen.insert(path.clone()) {
            report.duplicates.push(path.clone());
        }
    }
    for room in &on_disk {
        if !seen.contains(room) {
            report.unlisted.push(room.clone());
        }
    }
    for path in &seen {
        if !exists_as_listed(root, path) {
            report
                .missing
                .push((path.clone(), near_name_on_disk(root, path)));
        }
    }
    Ok(report)
}

/// The first token of every non-empty line of the first code block after the
/// `## Layout` heading. A path ending in `/` names a directory.
fn layout_paths(readme: &str) -> Result<Vec<String>, String> {
    let mut lines = readme
        .lines()
        .skip_while(|line| line.trim_end() != "## Layout");
    if lines.next().is_none() {
        return Err("README.md has no \"## Layout\" heading".to_owned());
    }
    let mut lines = lines
        .take_while(|line| !line.starts_with("## "))
        .skip_while(|line| !line.starts_with("```"));
    if lines.next().is_none() {
        return Err("README.md's \"## Layout\" section has no ``` code block".to_owned());
    }
    let mut paths = Vec::new();
    for line in lines {
        if line.starts_with("```") {
            return Ok(paths);
        }
        if let Some(path) = line.split_whitespace().next() {
            paths.push(path.to_owned());
        }
    }
    Err("README.md's \"## Layout\" code block is not closed".to_owned())
}

/// Every room the rule says must be listed.
fn rooms_on_disk(root: &Path) -> io::Result<BTreeSet<String>> {
    let ignored = gitignored_names(root)?;
    let mut rooms = BTreeSet::new();
    for (name, is_dir) in entries(root)? {
        if is_dir && !name.starts_with('.') && !ignored.contains(&name) {
            rooms.insert(format!("{name}/"));
        }
    }
    for member in workspace_members(root)? {
        let src = root.join(&member).join("src");
        if !src.is_dir() {
            continue;
        }
        for (name, is_dir) in entries(&src)? {
            match (name.as_str(), is_dir) {
                ("lib.rs", false) => {}
                ("bin", true) => {
                    for (binary, binary_is_dir) in entries(&src.join("bin"))? {
                        rooms.insert(room_path(
                            &format!("{member}/src/bin/{binary}"),
                            binary_is_dir,
                        ));
                    }
                }
                _ => {
                    rooms.insert(room_path(&format!("{member}/src/{name}"), is_dir));
                }
            }
        }
    }
    Ok(rooms)
}

fn room_path(path: &str, is_dir: bool) -> String {
    if is_dir {
        format!("{path}/")
    } else {
        path.to_owned()
    }
}

/// The names and kinds (directory or not) of a directory's entries.
fn entries(dir: &Path) -> io::Result<Vec<(String, bool)>> {
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        entries.push((
            entry.file_name().to_string_lossy().into_owned(),
            entry.file_type()?.is_dir(),
        ));
    }
    Ok(entries)
}

/// The plain names `.gitignore` lists (`/target`, `.cache/`): built or local
/// state, never a room. Patterns with wildcards or inner slashes are not
/// room names and are skipped.
fn gitignored_names(root: &Path) -> io::Result<BTreeSet<String>> {
    let text = match fs::read_to_string(root.join(".gitignore")) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => String::new(),
        Err(error) => return Err(error),
    };
    Ok(text
        .lines()
        .map(|line| line.trim().trim_start_matches('/').trim_end_matches('/'))
        .filter(|name| {
            !name.is_empty() && !name.starts_with('#') && !name.contains(['*', '/', '?', '['])
        })
        .map(str::to_owned)
        .collect())
}

/// `members = ["proto", "chat-service", ...]` of the root `Cargo.toml`, read
/// without a TOML parser: the list is one line, and the test fails loudly if
/// that ever changes.
fn workspace_members(root: &Path) -> io::Result<Vec<String>> {
    let manifest = fs::read_to_string(root.join("Cargo.toml"))?;
    let line = manifest
        .lines()
        .find(|line| line.trim_start().starts_with("members"))
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "the root Cargo.toml has no one-line `members = [...]`",
            )
        })?;
    Ok(line
        .split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect())
}

fn exists_as_listed(root: &Path, path: &str) -> bool {
    match path.strip_suffix('/') {
        Some(dir) => root.join(dir).is_dir(),
        None => root.join(path).is_file(),
    }
}

/// For a listed path that is not there, the same module under its other
/// spelling (`x.rs` ↔ `x/`), or the same name as the other kind.
fn near_name_on_disk(root: &Path, path: &str) -> Option<String> {
    let candidates: Vec<String> = match path.strip_suffix('/') {
        Some(dir) => vec![format!("{dir}.rs"), dir.to_owned()],
        None => match path.strip_suffix(".rs") {
            Some(module) => vec![format!("{module}/"), format!("{path}/")],
            None => vec![format!("{path}/")],
        },
    };
    candidates
        .into_iter()
        .find(|candidate| exists_as_listed(root, candidate))
}

/// A scratch workspace on disk, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("readme-layout-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("temp dir is writable");
        Self(dir)
    }

    fn file(&self, path: &str, text: &str) -> &Self {
        let path = self.0.join(path);
        fs::create_dir_all(path.parent().expect("a file has a parent")).expect("mkdir");
        fs::write(path, text).expect("write");
        self
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn scratch_workspace(name: &str) -> Scratch {
    let scratch = Scratch::new(name);
    scratch
        .file("Cargo.toml", "[workspace]\nmembers = [\"svc\", \"e2e\"]\n")
        .file(".gitignore", "/target\n.cache/\n*.log\n")
        .file("target/debug/x", "")
        .file(".cache/x", "")
        .file(".ci/run", "")
        .file("docs/a.md", "")
        .file("svc/src/lib.rs", "")
        .file("svc/src/main.rs", "")
        .file("svc/src/config.rs", "")
        .file("svc/src/grpc/mod.rs", "")
        .file("svc/src/bin/ctl.rs", "")
        .file("e2e/src/lib.rs", "")
        .file("e2e/tests/e2e/main.rs", "");
    scratch
}

const MATCHING: &str = "\
# X

## Layout

Some prose.

```
svc/                 the service
svc/src/bin/ctl.rs   the CLI
svc/src/config.rs    settings
svc/src/grpc/        handlers
svc/src/main.rs      the binary

e2e/                 tests
e2e/tests/e2e/       an extra line, checked for existence only
docs/                documents
```

## After
";

#[test]
fn a_matching_layout_passes_and_hidden_ignored_and_crate_roots_are_not_rooms() {
    let scratch = scratch_workspace("match");

    let report = check(&scratch.0, MATCHING).expect("readable");

    assert!(report.is_empty(), "{report}");
}

#[test]
fn a_room_on_disk_that_the_readme_omits_is_named() {
    let scratch = scratch_workspace("unlisted");
    scratch
        .file("svc/src/convert.rs", "")
        .file("deploy/prometheus.yml", "");

    let report = check(&scratch.0, MATCHING).expect("readable");

    assert_eq!(report.unlisted, ["deploy/", "svc/src/convert.rs"]);
    assert!(report.missing.is_empty(), "{report}");
    let message = report.to_string();
    assert!(message.contains("on disk, not in the README"), "{message}");
    assert!(message.contains("    svc/src/convert.rs\n"), "{message}");
}

#[test]
fn a_listed_room_that_is_not_on_disk_is_named_with_its_other_spelling() {
    let scratch = scratch_workspace("missing");
    scratch.file("svc/src/app/mod.rs", "");
    let readme = MATCHING
        .replace(
            "docs/                documents\n",
            "docs/                documents\nsvc/src/app.rs   harness\ndeploy/   dashboards\n",
        )
        .replace(
            "svc/src/grpc/        handlers\n",
            "svc/src/grpc.rs   handlers\n",
        );

    let report = check(&scratch.0, &readme).expect("readable");

    assert_eq!(report.unlisted, ["svc/src/app/", "svc/src/grpc/"]);
    assert_eq!(
        report.missing,
        [
            ("deploy/".to_owned(), None),
            ("svc/src/app.rs".to_owned(), Some("svc/src/app/".to_owned())),
            (
                "svc/src/grpc.rs".to_owned(),
                Some("svc/src/grpc/".to_owned())
            ),
        ]
    );
    let message = report.to_string();
    assert!(
        message.contains("    svc/src/app.rs  (on disk: svc/src/app/)\n"),
        "{message}"
    );
}

#[test]
fn a_path_listed_twice_and_a_missing_section_are_reported() {
    let scratch = scratch_workspace("twice");
    let readme = MATCHING.replace(
        "docs/                documents\n",
        "docs/                documents\nsvc/   again\n",
    );

    let report = check(&scratch.0, &readme).expect("readable");
    assert_eq!(report.duplicates, ["svc/"]);

    let error = check(&scratch.0, "# X\n\n## Files\n").expect_err("no layout section");
    assert!(error.to_string().contains("## Layout"), "{error}");
    let error = check(
        &scratch.0,
        "## Layout\n\ntext only\n\n## Next\n```\nsvc/\n```\n",
    )
    .expect_err("the code block belongs to another section");
    assert!(error.to_string().contains("no ``` code block"), "{error}");
}
