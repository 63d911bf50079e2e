//! Oracle 5's JSON reader: independent of serde_json (numbers through Rust's correctly
//! rounded `f64` parsing), reading bytes rather than `char`s (tinyjson's parser, which
//! it replaced, took a third of an execution), into values that borrow their strings
//! from the text unless they hold escapes: allocating every key and string, into a hash
//! map per object, was half of its cost.

use std::borrow::Cow;
use std::fmt;

/// A JSON value as [`read`] reads it.
#[derive(Debug, PartialEq)]
pub enum Json<'a> {
    Null,
    Bool(bool),
    Number(f64),
    String(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    /// Sorted by key, each key once, so that equal objects are equal entry by entry.
    Object(Vec<(Cow<'a, str>, Json<'a>)>),
}

impl<'a> Json<'a> {
    /// The value of `key` in an object.
    pub fn get(&self, key: &str) -> Option<&Json<'a>> {
        match self {
            Json::Object(entries) => entries
                .binary_search_by(|(k, _)| k.as_ref().cmp(key))
                .ok()
                .map(|i| &entries[i].1),
            _ => None,
        }
    }
}

/// JSON text, but strings written as Rust writes them: for messages only.
impl fmt::Display for Json<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Json::Null => f.write_str("null"),
            Json::Bool(b) => write!(f, "{b}"),
            // The shortest form that reads back as the same `f64`.
            Json::Number(n) => write!(f, "{n:?}"),
            Json::String(s) => write!(f, "{s:?}"),
            Json::Array(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    write!(f, "{}{item}", if i == 0 { "" } else { "," })?;
                }
                f.write_str("]")
            }
            Json::Object(entries) => {
                f.write_str("{")?;
                for (i, (key, value)) in entries.iter().enumerate() {
                    write!(f, "{}{key:?}:{value}", if i == 0 { "" } else { "," })?;
                }
                f.write_str("}")
            }
        }
    }
}

/// `text` as one JSON value, or why it is not one.
pub fn read(text: &str) -> Result<Json<'_>, String> {
    let mut reader = Reader { text, at: 0 };
    let value = reader.value()?;
    reader.space();
    match reader.at == text.len() {
        true => Ok(value),
        false => Err(reader.error("text after the value")),
    }
}

/// Bytes that end a run of plain string content: a quote, a backslash, a control byte.
const STOPS: [bool; 256] = {
    let mut stops = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        stops[b] = true;
        b += 1;
    }
    stops[b'"' as usize] = true;
    stops[b'\\' as usize] = true;
    stops
};

struct Reader<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn error(&self, what: &str) -> String {
        format!("{what} at byte {}", self.at)
    }

    fn space(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        self.at += usize::from(found);
        found
    }

    fn expect(&mut self, byte: u8) -> Result<(), String> {
        match self.eat(byte) {
            true => Ok(()),
            false => Err(self.error(&format!("no {:?}", char::from(byte)))),
        }
    }

    fn value(&mut self) -> Result<Json<'a>, String> {
        self.space();
        match self.peek() {
            Some(b'{') => self.object(),
            Some(b'[') => self.array(),
            Some(b'"') => self.string().map(Json::String),
            Some(b't') => self.word("true", Json::Bool(true)),
            Some(b'f') => self.word("false", Json::Bool(false)),
            Some(b'n') => self.word("null", Json::Null),
            _ => self.number(),
        }
    }

    fn object(&mut self) -> Result<Json<'a>, String> {
        let mut entries = Vec::new();
        self.items(b'}', |reader| {
            reader.space();
            let key = reader.string()?;
            reader.space();
            reader.expect(b':')?;
            entries.push((key, reader.value()?));
            Ok(())
        })?;
        // A stable sort keeps repeated keys in text order; the last one counts, as in
        // serde_json (dedup_by removes `later` after its value moved into `kept`).
        entries.sort_by(|(a, _), (b, _)| a.cmp(b));
        entries.dedup_by(|later, kept| {
            let repeated = later.0 == kept.0;
            if repeated {
                std::mem::swap(later, kept);
            }
            repeated
        });
        Ok(Json::Object(entries))
    }

    fn array(&mut self) -> Result<Json<'a>, String> {
        let mut items = Vec::new();
        self.items(b']', |reader| {
            items.push(reader.value()?);
            Ok(())
        })?;
        Ok(Json::Array(items))
    }

    /// The comma-separated items after an opening bracket, up to `close`.
    fn items(
        &mut self,
        close: u8,
        mut item: impl FnMut(&mut Self) -> Result<(), String>,
    ) -> Result<(), String> {
        self.at += 1;
        self.space();
        if self.eat(close) {
            return Ok(());
        }
        loop {
            item(self)?;
            self.space();
            if !self.eat(b',') {
                return self.expect(close);
            }
        }
    }

    fn word(&mut self, word: &str, value: Json<'a>) -> Result<Json<'a>, String> {
        match self.text[self.at..].starts_with(word) {
            true => {
                self.at += word.len();
                Ok(value)
            }
            false => Err(self.error("not a value")),
        }
    }

    /// A string, borrowed from the text when it has no escape.
    fn string(&mut self) -> Result<Cow<'a, str>, String> {
        self.expect(b'"')?;
        let text = self.text;
        let bytes = text.as_bytes();
        let mut out = Cow::Borrowed("");
        loop {
            let start = self.at;
            while bytes.get(self.at).is_some_and(|&b| !STOPS[usize::from(b)]) {
                self.at += 1;
            }
            // Cut at ASCII bytes only, so on character boundaries.
            let run = &text[start..self.at];
            // Nothing read yet: borrow (an escape always adds a character).
            if out.is_empty() {
                out = Cow::Borrowed(run);
            } else {
                out.to_mut().push_str(run);
            }
            match self.peek() {
                Some(b'"') => {
                    self.at += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.at += 1;
                    let escaped = self.escape()?;
                    out.to_mut().push(escaped);
                }
                _ => return Err(self.error("an unterminated string or a control byte")),
            }
        }
    }

    fn escape(&mut self) -> Result<char, String> {
        let byte = self
            .peek()
            .ok_or_else(|| self.error("an escape at the end"))?;
        self.at += 1;
        Ok(match byte {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let first = self.hex4()?;
                let code = match first {
                    0xD800..=0xDBFF => {
                        self.expect(b'\\')?;
                        self.expect(b'u')?;
                        match self.hex4()? {
                            low @ 0xDC00..=0xDFFF => {
                                0x10000 + ((first - 0xD800) << 10) + (low - 0xDC00)
                            }
                            _ => return Err(self.error("a lone surrogate")),
                        }
                    }
                    0xDC00..=0xDFFF => return Err(self.error("a lone surrogate")),
                    _ => first,
                };
                char::from_u32(code).ok_or_else(|| self.error("not a character"))?
            }
            _ => return Err(self.error("an unknown escape")),
        })
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let digits = self.text.get(self.at..self.at + 4);
        let code = digits
            .filter(|d| d.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|d| u32::from_str_radix(d, 16).ok())
            .ok_or_else(|| self.error("a bad \\u escape"))?;
        self.at += 4;
        Ok(code)
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, read as the nearest `f64`.
    fn number(&mut self) -> Result<Json<'a>, String> {
        let start = self.at;
        self.eat(b'-');
        let int = self.digits();
        let leading_zero = int > 1 && self.text.as_bytes()[self.at - int] == b'0';
        if int == 0 || leading_zero {
            return Err(self.error("not a value"));
        }
        if self.eat(b'.') && self.digits() == 0 {
            return Err(self.error("no digits after the point"));
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            if self.digits() == 0 {
                return Err(self.error("no digits in the exponent"));
            }
        }
        let token = &self.text[start..self.at];
        token
            .parse()
            .map(Json::Number)
            .map_err(|e| self.error(&format!("{token}: {e}")))
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
        self.at - start
    }
}
