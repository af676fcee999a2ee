//! A small JSON parser that records the line and column of every value.
//!
//! serde_json drops positions, and rules must point at lines, so JSON
//! templates are parsed here into the same [`Node`] model as YAML.

use super::{Key, Node, Pos, Value, normalise_intrinsic};

type Res<T> = Result<T, (Pos, String)>;

pub(super) fn parse(source: &str) -> Res<Node> {
    let mut p = Parser {
        chars: source.chars().collect(),
        i: 0,
        line: 1,
        col: 1,
    };
    if p.peek() == Some('\u{feff}') {
        p.bump();
    }
    p.ws();
    let node = p.value(0)?;
    p.ws();
    if p.peek().is_some() {
        return Err((
            p.pos(),
            "unexpected trailing characters after the JSON value".into(),
        ));
    }
    Ok(node)
}

struct Parser {
    chars: Vec<char>,
    i: usize,
    line: usize,
    col: usize,
}

impl Parser {
    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            col: self.col,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.i).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.i += 1;
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t' | '\n' | '\r')) {
            self.bump();
        }
    }

    fn expect(&mut self, want: char) -> Res<()> {
        match self.peek() {
            Some(c) if c == want => {
                self.bump();
                Ok(())
            }
            Some(c) => Err((self.pos(), format!("expected '{want}', found '{c}'"))),
            None => Err((self.pos(), format!("expected '{want}', found end of file"))),
        }
    }

    fn value(&mut self, depth: usize) -> Res<Node> {
        if depth > 256 {
            return Err((self.pos(), "JSON nested too deeply".into()));
        }
        let pos = self.pos();
        match self.peek() {
            Some('{') => self.object(depth),
            Some('[') => {
                self.bump();
                let mut items = Vec::new();
                self.ws();
                if self.peek() == Some(']') {
                    self.bump();
                    return Ok(Node::new(pos, Value::Seq(items)));
                }
                loop {
                    self.ws();
                    items.push(self.value(depth + 1)?);
                    self.ws();
                    match self.bump() {
                        Some(',') => continue,
                        Some(']') => break,
                        _ => return Err((self.pos(), "expected ',' or ']' in array".into())),
                    }
                }
                Ok(Node::new(pos, Value::Seq(items)))
            }
            Some('"') => Ok(Node::new(pos, Value::Str(self.string()?))),
            Some('t') => self.word("true", Value::Bool(true)),
            Some('f') => self.word("false", Value::Bool(false)),
            Some('n') => self.word("null", Value::Null),
            Some(c) if c == '-' || c.is_ascii_digit() => self.number(),
            Some(c) => Err((pos, format!("unexpected character '{c}'"))),
            None => Err((pos, "unexpected end of file".into())),
        }
    }

    fn object(&mut self, depth: usize) -> Res<Node> {
        let pos = self.pos();
        self.bump();
        let mut entries = Vec::new();
        self.ws();
        if self.peek() == Some('}') {
            self.bump();
            return Ok(Node::new(pos, Value::Map(entries)));
        }
        loop {
            self.ws();
            let kpos = self.pos();
            if self.peek() != Some('"') {
                return Err((kpos, "expected a string key in object".into()));
            }
            let name = self.string()?;
            // CloudFormation rejects duplicate keys; name both places like cfn-lint.
            if let Some((first, _)) = entries.iter().find(|(k, _): &&(Key, Node)| k.name == name) {
                return Err((
                    kpos,
                    format!(
                        "duplicate key \"{name}\" (first at line {}, again at line {})",
                        first.pos.line, kpos.line
                    ),
                ));
            }
            self.ws();
            self.expect(':')?;
            self.ws();
            let v = self.value(depth + 1)?;
            entries.push((Key { name, pos: kpos }, v));
            self.ws();
            match self.bump() {
                Some(',') => continue,
                Some('}') => break,
                _ => return Err((self.pos(), "expected ',' or '}' in object".into())),
            }
        }
        Ok(normalise_intrinsic(pos, entries))
    }

    fn word(&mut self, w: &str, v: Value) -> Res<Node> {
        let pos = self.pos();
        for want in w.chars() {
            if self.bump() != Some(want) {
                return Err((pos, format!("invalid literal, expected '{w}'")));
            }
        }
        Ok(Node::new(pos, v))
    }

    fn number(&mut self) -> Res<Node> {
        let pos = self.pos();
        let mut s = String::new();
        while let Some(c) = self.peek() {
            if c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E') {
                s.push(c);
                self.bump();
            } else {
                break;
            }
        }
        if let Ok(i) = s.parse::<i64>() {
            return Ok(Node::new(pos, Value::Int(i)));
        }
        s.parse::<f64>()
            .map(|f| Node::new(pos, Value::Float(f)))
            .map_err(|_| (pos, format!("invalid number '{s}'")))
    }

    fn hex4(&mut self) -> Res<u32> {
        let mut v = 0u32;
        for _ in 0..4 {
            let pos = self.pos();
            let d = self
                .bump()
                .and_then(|c| c.to_digit(16))
                .ok_or((pos, "invalid \\u escape".to_string()))?;
            v = v * 16 + d;
        }
        Ok(v)
    }

    fn string(&mut self) -> Res<String> {
        let start = self.pos();
        self.bump();
        let mut out = String::new();
        loop {
            let pos = self.pos();
            match self.bump() {
                None => return Err((start, "unterminated string".into())),
                Some('"') => return Ok(out),
                Some('\\') => match self.bump() {
                    Some('"') => out.push('"'),
                    Some('\\') => out.push('\\'),
                    Some('/') => out.push('/'),
                    Some('b') => out.push('\u{8}'),
                    Some('f') => out.push('\u{c}'),
                    Some('n') => out.push('\n'),
                    Some('r') => out.push('\r'),
                    Some('t') => out.push('\t'),
                    Some('u') => {
                        let hi = self.hex4()?;
                        let code = if (0xD800..0xDC00).contains(&hi) {
                            if self.bump() != Some('\\') || self.bump() != Some('u') {
                                return Err((pos, "unpaired surrogate in \\u escape".into()));
                            }
                            let lo = self.hex4()?;
                            0x10000 + ((hi - 0xD800) << 10) + (lo.wrapping_sub(0xDC00) & 0x3FF)
                        } else {
                            hi
                        };
                        out.push(
                            char::from_u32(code).ok_or((pos, "invalid \\u escape".to_string()))?,
                        );
                    }
                    _ => return Err((pos, "invalid escape in string".into())),
                },
                Some(c) if (c as u32) < 0x20 => {
                    return Err((pos, "control character in string".into()));
                }
                Some(c) => out.push(c),
            }
        }
    }
}
