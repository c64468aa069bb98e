//! What a command may write as its output file: never its input, a link, a device or a file
//! inside a run directory; an existing file only with `--force`.

use std::path::Path;

use crate::checkpoint::{Existing, existing_run};
use crate::error::{Error, Result};

/// Check that a command may write its output file `out`: not a symbolic link, not a folder or
/// device, not one of `inputs`, not inside a run directory, and, when it exists, only with
/// `force`.
pub fn check_output(out: &Path, inputs: &[&Path], force: bool) -> Result<()> {
    let name = out.to_string_lossy().to_ascii_lowercase();
    if name.ends_with(".gz")
        && crate::config::format_from_extension(out) == Some(crate::config::FileFormat::Parquet)
    {
        return Err(Error::Usage(format!(
            "--out {}: Parquet is compressed inside the file, not by gzip around it\n  hint: name it `.parquet`",
            out.display()
        )));
    }
    let refuse = |why: String, hint: &str| {
        Err(Error::Usage(format!(
            "--out {}: {why}\n  hint: {hint}",
            out.display()
        )))
    };
    if let Ok(meta) = std::fs::symlink_metadata(out) {
        if meta.file_type().is_symlink() {
            return refuse(
                "is a symbolic link".into(),
                "name the file itself, not a link to it",
            );
        }
        if !meta.is_file() {
            return refuse(
                "exists and is not a regular file".into(),
                "choose a file name",
            );
        }
        let same =
            |input: &Path| std::fs::canonicalize(input).ok() == std::fs::canonicalize(out).ok();
        if inputs.iter().any(|i| same(i)) {
            return refuse(
                "is an input of this command".into(),
                "write the output to another file",
            );
        }
        if !force {
            return refuse(
                "exists".into(),
                "add --force to replace it, or choose another file",
            );
        }
    }
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    if existing_run(&parent).is_ok_and(|e| {
        matches!(
            e,
            Some(Existing::Finished | Existing::Unfinished | Existing::Abandoned)
        )
    }) {
        return refuse(
            format!("lies inside the run directory {}", parent.display()),
            "a run directory holds only what `train` wrote (its manifest covers it); write elsewhere",
        );
    }
    Ok(())
}

/// Refuse an input file given on the command line that does not exist, saying where relative
/// paths start (`flag`: how the command names it, e.g. `--data`).
pub fn input_exists(flag: &str, path: &Path) -> Result<()> {
    // A directory or a glob of parts is read as one file (`source::source_files`).
    if path.exists()
        || (crate::source::is_pattern(path) && crate::source::source_files(path).is_ok())
    {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "{flag} {}: no such file\n  hint: the path is relative to the current directory ({})",
        path.display(),
        std::env::current_dir().map_or("?".into(), |d| d.display().to_string())
    )))
}
