//! Hearth's errors. Each renders as one line that names the problem and, where there is one, the fix.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    /// A `config.json` that does not parse or does not describe a supported model.
    #[error("config: {0}")]
    Config(String),
    /// A weights file that does not parse or does not fit the config.
    #[error("weights: {0}")]
    Weights(String),
    /// Inputs (token ids, labels, masks) that do not fit the model.
    #[error("input: {0}")]
    Input(String),
    /// A loss or gradient that is NaN or infinite.
    #[error("non-finite {what} at step {step}; lower lr, enable grad_clip, or check the data")]
    NonFinite { step: u64, what: String },
    /// The file system said no: a file that cannot be read, a folder that cannot be created, a
    /// write that failed (a full disk, no permission). `action` says what was tried ("read",
    /// "write", "create"); wrap it with [`Error::in_file`] to name the file.
    #[error("cannot {action} it ({source})")]
    Io { action: &'static str, source: std::io::Error },
    /// The device failed under a run: a read back that did not complete, a lost or exhausted GPU.
    #[error("device: {0}")]
    Device(String),
    /// Data-parallel training: a peer, the rendezvous or the ranks' agreement failed.
    #[error("distributed: {0}")]
    Distributed(String),
    /// A request declined as it stands (it would overwrite a run, or not fit the machine), with the
    /// ways on.
    #[error("{0}")]
    Refused(String),
    /// Any of the above, with the file it came from.
    #[error("{path}: {source}")]
    InFile { path: String, source: Box<Error> },
}

impl Error {
    /// Names the file an error came from.
    pub fn in_file(self, path: impl std::fmt::Display) -> Self {
        Error::InFile { path: path.to_string(), source: Box::new(self) }
    }
}

/// `Error::Io` for `action` on `path`, for `map_err`: `fs::read(p).map_err(io("read", p.display()))`.
pub fn io(action: &'static str, path: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Io { action, source }.in_file(path)
}

pub type Result<T> = std::result::Result<T, Error>;
