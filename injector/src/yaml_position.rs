//! Where each field of a YAML document starts, keyed by the path the config
//! validation names (`containers[0].ports[1].containerPort`), so a problem
//! found after parsing still points at a line. serde_yaml's `Value` keeps no
//! positions, so the text is read a second time with yaml-rust2's event
//! parser, which reports a marker for every node.

use std::collections::BTreeMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// Line and column (both from 1) of every key and sequence item of the first
/// document. Empty when the text does not parse (the caller reports that).
#[derive(Debug, Default)]
pub struct Positions(BTreeMap<String, (usize, usize)>);

impl Positions {
    pub fn of(text: &str) -> Positions {
        let mut rec = Recorder::default();
        if Parser::new_from_str(text).load(&mut rec, false).is_err() {
            return Positions::default();
        }
        Positions(rec.out)
    }

    /// Where `path` starts; for a field the document lacks (a required one
    /// left out), where its nearest ancestor starts.
    pub fn find(&self, path: &str) -> Option<(usize, usize)> {
        let mut cur = path;
        loop {
            if let Some(p) = self.0.get(cur) {
                return Some(*p);
            }
            if cur.is_empty() {
                return None;
            }
            cur = parent(cur);
        }
    }
}

/// `a.b[2]` -> `a.b`, `a.b` -> `a`, `a` -> ``.
fn parent(path: &str) -> &str {
    match path.rfind(['.', '[']) {
        Some(i) => &path[..i],
        None => "",
    }
}

enum Frame {
    /// `key` is the key whose value comes next; `None` while a key is due.
    Map {
        key: Option<String>,
    },
    Seq {
        index: usize,
    },
}

struct Open {
    frame: Frame,
    path: String,
    /// A collection used as a mapping key (rare, `? [a, b]: c`): when it
    /// ends, the parent mapping still waits for that key's value.
    is_key: bool,
    /// A mapping's own path, recorded at its first key: yaml-rust2 marks a
    /// block mapping's start at the `:` after that key, not where it begins.
    /// (An empty mapping, having no first key, falls back to that mark.)
    unplaced: Option<(String, (usize, usize))>,
}

#[derive(Default)]
struct Recorder {
    stack: Vec<Open>,
    out: BTreeMap<String, (usize, usize)>,
    done: bool,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

impl Recorder {
    fn node(&mut self, mark: Marker, scalar: Option<String>, opens: Option<Frame>) {
        let pos = (mark.line(), mark.col() + 1);
        let key_due = matches!(
            self.stack.last(),
            Some(Open {
                frame: Frame::Map { key: None },
                ..
            })
        );
        if key_due {
            let k = scalar.unwrap_or_else(|| "?".into());
            if let Some((own, _)) = self.stack.last_mut().and_then(|o| o.unplaced.take()) {
                self.out.entry(own).or_insert(pos);
            }
            if let Some(Open {
                frame: Frame::Map { key },
                path,
                ..
            }) = self.stack.last_mut()
            {
                self.out.entry(join(path, &k)).or_insert(pos);
                *key = Some(k);
            }
            if let Some(frame) = opens {
                self.stack.push(Open {
                    frame,
                    path: "?".into(),
                    is_key: true,
                    unplaced: None,
                });
            }
            return;
        }
        let path = match self.stack.last() {
            None => String::new(),
            Some(Open {
                frame: Frame::Map { key },
                path,
                ..
            }) => join(path, key.as_deref().unwrap_or("?")),
            Some(Open {
                frame: Frame::Seq { index },
                path,
                ..
            }) => format!("{path}[{index}]"),
        };
        // A mapping value keeps its key's position (recorded above); a
        // sequence item and the root get their own, a mapping's at its
        // first key.
        match opens {
            Some(frame) => {
                let unplaced = match frame {
                    Frame::Map { .. } => Some((path.clone(), pos)),
                    Frame::Seq { .. } => {
                        self.out.entry(path.clone()).or_insert(pos);
                        None
                    }
                };
                self.stack.push(Open {
                    frame,
                    path,
                    is_key: false,
                    unplaced,
                })
            }
            None => {
                self.out.entry(path).or_insert(pos);
                self.value_done()
            }
        }
    }

    fn value_done(&mut self) {
        match self.stack.last_mut() {
            Some(Open {
                frame: Frame::Map { key },
                ..
            }) => *key = None,
            Some(Open {
                frame: Frame::Seq { index },
                ..
            }) => *index += 1,
            None => {}
        }
    }
}

impl MarkedEventReceiver for Recorder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.done {
            return;
        }
        match ev {
            Event::Scalar(v, ..) => self.node(mark, Some(v), None),
            Event::Alias(_) => self.node(mark, None, None),
            Event::SequenceStart(..) => self.node(mark, None, Some(Frame::Seq { index: 0 })),
            Event::MappingStart(..) => self.node(mark, None, Some(Frame::Map { key: None })),
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some(open) = self.stack.pop() {
                    if let Some((own, start)) = open.unplaced {
                        self.out.entry(own).or_insert(start);
                    }
                    if !open.is_key {
                        self.value_done();
                    }
                }
            }
            Event::DocumentEnd => self.done = true,
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentStart => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\
containers:
  - name: envoy
    image: e
    ports:
      - containerPort: 10000
      - {containerPort: 9901, name: admin}
policy:
  enabled: true
volumes: []
";

    #[test]
    fn keys_and_items_have_their_lines_and_columns() {
        let p = Positions::of(DOC);
        assert_eq!(p.find("containers"), Some((1, 1)));
        assert_eq!(p.find("containers[0]"), Some((2, 5)));
        assert_eq!(p.find("containers[0].name"), Some((2, 5)));
        assert_eq!(p.find("containers[0].image"), Some((3, 5)));
        assert_eq!(p.find("containers[0].ports[0].containerPort"), Some((5, 9)));
        assert_eq!(p.find("containers[0].ports[1]"), Some((6, 10)));
        assert_eq!(p.find("containers[0].ports[1].name"), Some((6, 31)));
        assert_eq!(p.find("policy.enabled"), Some((8, 3)));
        assert_eq!(p.find("volumes"), Some((9, 1)));
    }

    #[test]
    fn an_absent_field_points_at_its_nearest_ancestor() {
        let p = Positions::of(DOC);
        assert_eq!(p.find("containers[0].resources.limits"), Some((2, 5)));
        assert_eq!(p.find("policy.ignoredNamespaces[3]"), Some((7, 1)));
        assert_eq!(p.find("nowhere"), Some((1, 1)), "the document itself");
    }

    #[test]
    fn a_complex_key_does_not_derail_the_paths_after_it() {
        let p = Positions::of("? [a, b]\n: c\nafter: 1\n");
        assert_eq!(p.find("after"), Some((3, 1)));
    }

    #[test]
    fn an_empty_mapping_item_still_has_a_position() {
        let p = Positions::of("volumes:\n  - {}\n  - name: v\n");
        assert_eq!(p.find("volumes[0]").map(|(l, _)| l), Some(2));
        assert_eq!(p.find("volumes[1].name"), Some((3, 5)));
    }

    #[test]
    fn text_that_does_not_parse_has_no_positions() {
        assert_eq!(Positions::of("a: [1, 2\n").find("a"), None);
    }
}
