//! `funnel export`: a finished run written as an ONNX model and its encoding sidecar.

use std::path::Path;

use super::output::check_output;
use crate::checkpoint::Run;
use crate::error::{Error, Result};
use crate::export::{self, sidecar_path};
use crate::fsutil::write_atomic;

/// The formats a run exports to.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(super) enum Format {
    /// ONNX, opset 17.
    Onnx,
}

pub(super) fn export(run: &Path, format: Format, out: &Path, force: bool) -> Result<()> {
    let Format::Onnx = format;
    let sidecar = sidecar_path(out);
    let weights = run.join(crate::checkpoint::WEIGHTS);
    for path in [out, sidecar.as_path()] {
        check_output(path, &[weights.as_path()], force)?;
    }
    let r = Run::open(run)?;
    let exported = export::onnx(&r)?;
    let text = serde_json::to_string_pretty(&exported.sidecar)
        .map_err(|e| Error::Internal(format!("sidecar JSON: {e}")))?;
    write_atomic(out, &exported.model)?;
    write_atomic(&sidecar, text.as_bytes())?;
    eprintln!(
        "wrote {} ({:.1} MiB, ONNX opset {}) and its encoding sidecar {}",
        out.display(),
        exported.model.len() as f64 / (1 << 20) as f64,
        crate::onnx::OPSET,
        sidecar.display()
    );
    Ok(())
}
