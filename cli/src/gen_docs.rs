//! `skywire gen-docs --out DIR` (hidden): man pages and shell completions generated from the
//! real clap command tree (`<Cli as CommandFactory>::command()`), so a new command gets its page
//! and its completions without an edit here. Used by `packaging/build-deb.sh`.
//!
//! Layout under DIR:
//! - `man/`: one roff page per visible command (clap_mangen), named after the command path:
//!   `skywire.1`, `skywire-cli.1`, ..., `skywire-cli-pty-fs-mount.1`. Hidden commands (this one,
//!   aliases) get none.
//! - `completions/`: `skywire.bash`, `_skywire` (zsh) and `skywire.fish` (clap_complete).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, CommandFactory};
use clap_complete::Shell;

/// Shells we write completions for (the file names are clap_complete's).
const SHELLS: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];

/// `skywire gen-docs`.
#[derive(Debug, Args)]
pub struct GenDocsArgs {
    /// Output directory (created if missing): man pages go to DIR/man/, shell completions to
    /// DIR/completions/. Existing files of the same name are replaced.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// Writes the man pages and completions of the `skywire` command tree under `args.out`.
pub fn run(args: &GenDocsArgs) -> Result<()> {
    let cmd = crate::Cli::command();
    let pages = write_man_pages(cmd.clone(), &args.out.join("man"))?;
    let completions = write_completions(cmd, &args.out.join("completions"))?;
    eprintln!(
        "wrote {} man pages to {} and {} completion files to {}",
        pages.len(),
        args.out.join("man").display(),
        completions.len(),
        args.out.join("completions").display()
    );
    Ok(())
}

/// One page per visible command, the root included; returns the files written.
fn write_man_pages(cmd: clap::Command, dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    // `help` is clap's pseudo-command, not ours; building sets every subcommand's display name
    // (`skywire-cli-pty`), which clap_mangen uses for the page title and file name.
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    // Footer of every page: the program and its version, not the subcommand's own name.
    let source = format!(
        "{} {}",
        cmd.get_name(),
        cmd.get_version().unwrap_or_default()
    );
    let mut written = Vec::new();
    let mut stack = vec![cmd];
    while let Some(cmd) = stack.pop() {
        stack.extend(cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
        let man = clap_mangen::Man::new(cmd)
            .source(source.clone())
            .manual("skywire manual");
        let path = man
            .generate_to(dir)
            .with_context(|| format!("writing {} in {}", man.get_filename(), dir.display()))?;
        written.push(path);
    }
    written.sort();
    Ok(written)
}

/// Completion scripts for [`SHELLS`]; returns the files written.
fn write_completions(mut cmd: clap::Command, dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = cmd.get_name().to_owned();
    SHELLS
        .iter()
        .map(|&shell| {
            clap_complete::generate_to(shell, &mut cmd, &name, dir)
                .with_context(|| format!("writing the {shell} completions in {}", dir.display()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// Every visible command path of the tree, joined with `-` (`skywire-cli-pty-fs-mount`).
    fn visible_paths(cmd: &clap::Command, prefix: &str, out: &mut Vec<String>) {
        let name = if prefix.is_empty() {
            cmd.get_name().to_owned()
        } else {
            format!("{prefix}-{}", cmd.get_name())
        };
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            visible_paths(sub, &name, out);
        }
        out.push(name);
    }

    #[test]
    fn one_page_per_visible_command_and_none_for_hidden_ones() {
        let dir = tempfile::tempdir().unwrap();
        let pages = write_man_pages(crate::Cli::command(), dir.path()).unwrap();
        let mut want = Vec::new();
        visible_paths(&crate::Cli::command(), "", &mut want);
        let mut got: Vec<String> = pages
            .iter()
            .map(|p| {
                let f = p.file_name().unwrap().to_str().unwrap();
                f.strip_suffix(".1").unwrap().to_owned()
            })
            .collect();
        want.sort();
        got.sort();
        assert_eq!(got, want);
        assert!(got.iter().any(|p| p == "skywire-cli-pty-fs-mount"));
        assert!(
            !got.iter()
                .any(|p| p.contains("gen-docs") || p.contains("sshd"))
        );
        let page = std::fs::read_to_string(dir.path().join("skywire-cli-pty-fs-mount.1")).unwrap();
        assert!(page.contains(".TH skywire-cli-pty-fs-mount 1 "), "{page}");
        let footer = format!(
            "\"skywire {}\" \"skywire manual\"",
            env!("CARGO_PKG_VERSION")
        );
        assert!(page.contains(&footer), "{page}");
        assert!(
            page.contains(".SH NAME\nskywire\\-cli\\-pty\\-fs\\-mount \\- "),
            "{page}"
        );
    }
}
