//! Maps YAML paths (`stages[1].label.column`) to their line and column, so checks made after parsing
//! can point at the exact spot in the user's file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

use crate::error::YamlSpot;

/// Line/column (1-based) of every key and sequence item of one YAML document.
pub struct Locator {
    file: PathBuf,
    spots: HashMap<String, (usize, usize)>,
}

enum Frame {
    /// Path of the mapping, and the key waiting for its value (if any).
    Map(String, Option<String>),
    /// Path of the sequence, and the index of the next item.
    Seq(String, usize),
}

struct Walker {
    stack: Vec<Frame>,
    spots: HashMap<String, (usize, usize)>,
}

fn join_key(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

impl Walker {
    /// The path of the node that starts now, consuming the parent's pending key or index.
    fn child_path(&mut self) -> Option<String> {
        let path = match self.stack.last_mut() {
            None => String::new(),
            Some(Frame::Map(p, key)) => join_key(p, &key.take()?),
            Some(Frame::Seq(p, i)) => {
                let path = format!("{p}[{i}]");
                *i += 1;
                path
            }
        };
        Some(path)
    }

    /// Record where `path` starts, unless a key already placed it.
    fn place(&mut self, path: Option<String>, mark: Marker) {
        if let Some(p) = path {
            self.spots.entry(p).or_insert((mark.line(), mark.col() + 1));
        }
    }
}

impl MarkedEventReceiver for Walker {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(value, ..) => {
                if let Some(Frame::Map(p, key @ None)) = self.stack.last_mut() {
                    // A mapping is placed at its first key (its start mark lags behind).
                    let (map_path, path) = (p.clone(), join_key(p, &value));
                    *key = Some(value);
                    self.place(Some(map_path), mark);
                    self.place(Some(path), mark);
                } else {
                    let path = self.child_path();
                    self.place(path, mark);
                }
            }
            Event::Alias(_) => {
                let path = self.child_path();
                self.place(path, mark);
            }
            Event::MappingStart(..) => {
                let path = self.child_path().unwrap_or_default();
                self.stack.push(Frame::Map(path, None));
            }
            Event::SequenceStart(..) => {
                let path = self.child_path();
                self.place(path.clone(), mark);
                self.stack.push(Frame::Seq(path.unwrap_or_default(), 0));
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

impl Locator {
    /// Index `text` (the contents of `file`). Text that does not parse gives an empty index:
    /// such a file is reported by the typed parser, which has its own positions.
    pub fn new(file: &Path, text: &str) -> Self {
        let mut walker = Walker {
            stack: Vec::new(),
            spots: HashMap::new(),
        };
        let mut parser = Parser::new_from_str(text);
        if parser.load(&mut walker, false).is_err() {
            walker.spots.clear();
        }
        Locator {
            file: file.to_path_buf(),
            spots: walker.spots,
        }
    }

    /// Line and column of `path` when the file writes that key or item itself.
    pub fn exact(&self, path: &str) -> Option<(usize, usize)> {
        self.spots.get(path).copied()
    }

    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The spot of `path`, or of its nearest ancestor that is written in the file
    /// (a key left to its default has no position of its own).
    pub fn spot(&self, path: &str) -> YamlSpot {
        let mut probe = path.to_string();
        loop {
            if let Some(&(line, column)) = self.spots.get(&probe) {
                return YamlSpot {
                    file: self.file.clone(),
                    line,
                    column,
                    path: path.to_string(),
                };
            }
            match probe.rfind(['.', '[']) {
                Some(cut) => probe.truncate(cut),
                None => {
                    return YamlSpot {
                        file: self.file.clone(),
                        line: 1,
                        column: 1,
                        path: path.to_string(),
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str =
        "name: x\nstages:\n  - name: click\n    label:\n      column: y\n  - name: buy\n";

    #[test]
    fn finds_keys_and_items() {
        let l = Locator::new(Path::new("p.yaml"), DOC);
        let s = l.spot("stages[0].label.column");
        assert_eq!((s.line, s.column), (5, 7));
        let s = l.spot("stages[1].name");
        assert_eq!((s.line, s.column), (6, 5));
        let s = l.spot("name");
        assert_eq!((s.line, s.column), (1, 1));
    }

    #[test]
    fn falls_back_to_nearest_written_ancestor() {
        let l = Locator::new(Path::new("p.yaml"), DOC);
        let s = l.spot("stages[1].tower.hidden");
        assert_eq!((s.line, s.column), (6, 5));
        assert_eq!(s.path, "stages[1].tower.hidden");
    }
}
