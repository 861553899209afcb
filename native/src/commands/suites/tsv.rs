//! Tab-separated files as GLUE distributes them: no quoting (sentences hold raw quotes), a header
//! row unless told otherwise, rows of any length (checked by the reader that knows the layout).

use std::path::Path;

use hearth_core::Error;

pub struct Table {
    pub header: Vec<String>,
    /// `(line number, fields)`.
    pub rows: Vec<(usize, Vec<String>)>,
}

impl Table {
    pub fn column(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name)
    }
}

pub fn read(path: &Path, header: bool) -> Result<Table, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Input(format!("cannot read it ({e})")).in_file(path.display()))?;
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l.trim_end_matches('\r')));
    let header = if header {
        lines.next().map(|(_, l)| l.split('\t').map(String::from).collect()).unwrap_or_default()
    } else {
        Vec::new()
    };
    let rows = lines
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i, l.split('\t').map(String::from).collect()))
        .collect();
    Ok(Table { header, rows })
}
