//! Finds the line of a field (`components[0].files[1].template`) in YAML text, so that checks
//! made after parsing can still point at a position. serde's YAML values carry no positions, so
//! this walks the block-style YAML that profiles are written in (hand-written: no maintained
//! crate gives serde values with spans). When a segment cannot be found, the deepest position
//! found so far is returned.

enum Seg {
    Key(String),
    Index(usize),
}

fn segments(path: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Seg::Key(key.to_string()));
        }
        for idx in rest.split('[').filter(|s| !s.is_empty()) {
            if let Ok(n) = idx.trim_end_matches(']').parse() {
                out.push(Seg::Index(n));
            }
        }
    }
    out
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

fn is_content(line: &str) -> bool {
    let t = line.trim_start();
    !t.is_empty() && !t.starts_with('#')
}

/// Returns (line, column), both 1-based.
pub fn locate(source: &str, path: &str) -> Option<(usize, usize)> {
    let lines: Vec<&str> = source.lines().collect();
    // The block we search in: lines [start, end) whose content is deeper than `parent`.
    let mut start = 0usize;
    let mut end = lines.len();
    let mut found: Option<(usize, usize)> = None;
    for seg in segments(path) {
        // The indentation of this block's entries is that of its first content line; a "- "
        // item's keys are indented past the dash.
        let first = (start..end).find(|&i| is_content(lines[i]))?;
        let base = indent(lines[first]);
        match seg {
            Seg::Key(k) => {
                // Inside a "- " item, its keys sit past the dash.
                let key_base = if lines[first].trim_start().starts_with("- ") {
                    base + 2
                } else {
                    base
                };
                let want = format!("{k}:");
                let hit = (start..end).find(|&i| {
                    let l = lines[i];
                    if !is_content(l) {
                        return false;
                    }
                    let t = l.trim_start();
                    let t2 = t.strip_prefix("- ").unwrap_or(t);
                    let ind = indent(l) + (t.len() - t2.len());
                    ind == key_base && t2.starts_with(&want)
                });
                let Some(i) = hit else { return found };
                let col = lines[i].find(&want).unwrap_or(0) + 1;
                found = Some((i + 1, col));
                let key_indent = col - 1;
                start = i + 1;
                // Children end at the next line indented less than the key, or as much but not
                // a "- " item (YAML lets a key's sequence items sit at the key's own indent).
                end = (start..end)
                    .find(|&j| {
                        let l = lines[j];
                        is_content(l)
                            && (indent(l) < key_indent
                                || (indent(l) == key_indent && !l.trim_start().starts_with("- ")))
                    })
                    .unwrap_or(end);
                // An inline value (`key: value`) is the position itself.
                if start == end || !lines[i][col - 1 + want.len()..].trim().is_empty() {
                    start = i;
                    end = i + 1;
                }
            }
            Seg::Index(n) => {
                let items: Vec<usize> = (start..end)
                    .filter(|&i| {
                        let l = lines[i];
                        l.trim_start().starts_with("- ") && indent(l) == base
                    })
                    .collect();
                let Some(&i) = items.get(n) else { return found };
                found = Some((i + 1, indent(lines[i]) + 1));
                let next = items.get(n + 1).copied().unwrap_or(end);
                start = i;
                end = next;
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::locate;

    const Y: &str = "\
name: x
resources:
  minimum:
    cores: 1
  default:
    cores: 0
components:
  - name: api
    files:
      - template: a
        path: /a
      - template: b
  - name: mcp
    when: nope
";

    #[test]
    fn finds_nested_keys_and_items() {
        assert_eq!(locate(Y, "name"), Some((1, 1)));
        assert_eq!(locate(Y, "resources.default.cores"), Some((6, 5)));
        assert_eq!(locate(Y, "components[1].when"), Some((14, 5)));
        assert_eq!(locate(Y, "components[0].files[1].template"), Some((12, 9)));
        assert_eq!(locate(Y, "components[1]"), Some((13, 3)));
    }

    #[test]
    fn missing_field_gives_deepest_known_position() {
        assert_eq!(locate(Y, "components[1].nothere"), Some((13, 3)));
    }
}
