//! The admission payload as a tree over its own JSON text. policy-server serves every
//! request in a new instance, so what a request costs is reading the pod and writing it
//! back: as a `serde_json::Value` that was a `String` per key and value and a B-tree per
//! object, and every byte written again. Here strings without escapes borrow the text,
//! objects are lists, and a node the policy did not edit is written back as the text it
//! was read from. The payload is read once, by this reader alone, as strictly as
//! serde_json reads it (the same syntax, a key given twice is the last one, numbers out
//! of `f64`'s range and lone surrogates refused): a first pass by serde_json to check the
//! syntax cost as much as building the tree. The settings are read from the same tree,
//! by serde through [`de`].

use serde_json::Value;
use std::borrow::Cow;
use std::cmp::Ordering;

mod de;
pub use de::Failure;

/// serde_json's nesting limit (its 128 counts the level it refuses), for the whole payload.
const DEPTH: usize = 127;

/// Objects with more entries get an index sorted by key: a pod may carry thousands of
/// annotations, and each rule looks some up.
const INDEXED: usize = 16;
/// The room a non-empty array or object starts with: allocated at once, not grown from
/// none at its first item (`Vec`'s growth path cost every one of them about 100
/// instructions more).
const FIRST_ROOM: usize = 4;

#[derive(Debug, Clone, Default)]
pub struct Json<'a> {
    /// The node's text in the request while it is unchanged, written back as it is;
    /// empty once edited, and for nodes the policy made.
    text: &'a str,
    kind: Kind<'a>,
}

pub type Entry<'a> = (Cow<'a, str>, Json<'a>);

#[derive(Debug, Clone, Default)]
enum Kind<'a> {
    #[default]
    Null,
    Bool(bool),
    Number(&'a str),
    String(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    /// The entries in the text's order, a repeated key's earlier entries dropped, and
    /// for large objects their positions sorted by key.
    Object(Vec<Entry<'a>>, Option<Vec<u32>>),
    /// A value the policy built (a volume, an env entry): only written. Boxed: inline,
    /// it made every node of the tree 8 bytes larger.
    Made(Box<Value>),
    /// A value the policy wrote as JSON text (the sidecar and its volume, `emit`).
    Rendered(Vec<u8>),
}

/// What a missing node reads as.
pub static NULL: Json<'static> = Json {
    text: "",
    kind: Kind::Null,
};

/// Equal values, as `serde_json::Value`s are: whatever their text (escapes, spacing).
impl PartialEq for Json<'_> {
    fn eq(&self, other: &Self) -> bool {
        match (&self.kind, &other.kind) {
            (Kind::Null, Kind::Null) => true,
            (Kind::Bool(a), Kind::Bool(b)) => a == b,
            (Kind::Number(a), Kind::Number(b)) => number(a) == number(b),
            (Kind::String(a), Kind::String(b)) => a == b,
            (Kind::Array(a), Kind::Array(b)) => a == b,
            (Kind::Object(a, _), Kind::Object(b, _)) => {
                a.len() == b.len() && a.iter().all(|(k, v)| other.get(k) == Some(v))
            }
            (Kind::Made(a), Kind::Made(b)) => a == b,
            (Kind::Rendered(a), Kind::Rendered(b)) => a == b,
            _ => false,
        }
    }
}

/// A number's text as an `i64`, as serde_json's `Number::as_i64` reads it. The text is
/// in JSON's number grammar, where core's integer parse agrees with serde_json (a test
/// checks) but on `-0`, which serde_json reads as a float: not a serde_json deserializer
/// per number.
fn integer(text: &str) -> Option<i64> {
    match text {
        "-0" => None,
        _ => text.parse().ok(),
    }
}

/// A number as `serde_json::Value` holds it.
fn number(text: &str) -> Option<serde_json::Number> {
    serde_json::from_str(text).ok()
}

impl<'a> Json<'a> {
    /// Reads `text`, one JSON value; an error says what is wrong and at which byte.
    pub fn parse(text: &'a str) -> Result<Json<'a>, String> {
        let mut reader = Reader { text, at: 0 };
        let value = reader.value(0)?;
        reader.space();
        if reader.at != text.len() {
            return Err(reader.invalid("trailing characters"));
        }
        Ok(value)
    }

    /// The node's text as it was read; `None` once edited, and for nodes the policy made.
    pub fn text(&self) -> Option<&'a str> {
        Some(self.text).filter(|t| !t.is_empty())
    }

    /// A value the policy built, to add to the tree.
    pub fn made(value: Value) -> Json<'a> {
        Json {
            text: "",
            kind: Kind::Made(Box::new(value)),
        }
    }

    /// A value the policy wrote as JSON text, to add to the tree as it is.
    pub fn rendered(text: Vec<u8>) -> Json<'a> {
        Json {
            text: "",
            kind: Kind::Rendered(text),
        }
    }

    pub fn string(s: String) -> Json<'a> {
        Json {
            text: "",
            kind: Kind::String(Cow::Owned(s)),
        }
    }

    pub fn empty_object() -> Json<'a> {
        Json {
            text: "",
            kind: Kind::Object(Vec::new(), None),
        }
    }

    pub fn empty_array() -> Json<'a> {
        Json {
            text: "",
            kind: Kind::Array(Vec::new()),
        }
    }

    /// A value the policy built, read as the request's values are (a planned container
    /// the plan reads as it reads the pod's).
    pub fn view(value: &'a Value) -> Json<'a> {
        let kind = match value {
            Value::Null => Kind::Null,
            Value::Bool(b) => Kind::Bool(*b),
            Value::Number(_) => Kind::Made(Box::new(value.clone())),
            Value::String(s) => Kind::String(Cow::Borrowed(s)),
            Value::Array(items) => Kind::Array(items.iter().map(Json::view).collect()),
            Value::Object(map) => {
                let mut entries: Vec<Entry<'a>> = map
                    .iter()
                    .map(|(k, v)| (Cow::Borrowed(k.as_str()), Json::view(v)))
                    .collect();
                let index = unique(&mut entries);
                Kind::Object(entries, index)
            }
        };
        Json { text: "", kind }
    }

    /// The entry `key` of an object, as `Value::get` finds it.
    pub fn get(&self, key: &str) -> Option<&Json<'a>> {
        let Kind::Object(entries, index) = &self.kind else {
            return None;
        };
        let at = match index {
            Some(index) => index
                .binary_search_by(|&i| entries[i as usize].0.as_ref().cmp(key))
                .ok()
                .map(|i| index[i] as usize),
            None => entries.iter().position(|(k, _)| same(k, key)),
        };
        at.map(|i| &entries[i].1)
    }

    /// The entry `<prefix>/<name>` of an object, found without building the key: a
    /// request reads several of the policy's annotations, and a key built for each was
    /// an allocation and two copies.
    pub fn get_under(&self, prefix: &str, name: &str) -> Option<&Json<'a>> {
        let Kind::Object(entries, index) = &self.kind else {
            return None;
        };
        let parts = [prefix.as_bytes(), b"/", name.as_bytes()];
        let len = prefix.len() + 1 + name.len();
        let at = match index {
            Some(index) => index
                .binary_search_by(|&i| joined_cmp(entries[i as usize].0.as_bytes(), parts))
                .ok()
                .map(|i| index[i] as usize),
            None => entries.iter().position(|(k, _)| {
                let k = k.as_bytes();
                k.len() == len
                    && k[prefix.len()] == b'/'
                    && same_bytes(&k[..prefix.len()], prefix.as_bytes())
                    && same_bytes(&k[prefix.len() + 1..], name.as_bytes())
            }),
        };
        at.map(|i| &entries[i].1)
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Json<'a>]> {
        match &self.kind {
            Kind::Array(items) => Some(items),
            _ => None,
        }
    }

    /// An object's entries, each key once.
    pub fn as_object(&self) -> Option<&[Entry<'a>]> {
        match &self.kind {
            Kind::Object(entries, _) => Some(entries),
            _ => None,
        }
    }

    /// An object's keys; none for anything else.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.as_object().into_iter().flatten().map(|(k, _)| &**k)
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self.kind {
            Kind::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match &self.kind {
            Kind::Number(n) => integer(n),
            Kind::Made(v) => v.as_i64(),
            _ => None,
        }
    }

    /// What the node is, for messages.
    pub fn type_name(&self) -> &'static str {
        match &self.kind {
            Kind::Null => "null",
            Kind::Bool(_) => "a bool",
            Kind::Number(_) => "a number",
            Kind::String(_) => "a string",
            Kind::Array(_) => "an array",
            Kind::Object(..) => "an object",
            Kind::Made(v) => match **v {
                Value::Null => "null",
                Value::Bool(_) => "a bool",
                Value::Number(_) => "a number",
                Value::String(_) => "a string",
                Value::Array(_) => "an array",
                Value::Object(_) => "an object",
            },
            Kind::Rendered(_) => "a value the policy wrote",
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.kind, Kind::Null)
    }

    pub fn is_string(&self) -> bool {
        matches!(self.kind, Kind::String(_))
    }

    pub fn is_array(&self) -> bool {
        matches!(self.kind, Kind::Array(_))
    }

    pub fn is_object(&self) -> bool {
        matches!(self.kind, Kind::Object(..))
    }

    /// The entries of an object, to edit: the node is then written entry by entry.
    pub fn entries_mut(&mut self) -> Option<&mut Vec<Entry<'a>>> {
        self.unmade();
        match &mut self.kind {
            Kind::Object(entries, index) => {
                self.text = "";
                *index = None;
                Some(entries)
            }
            _ => None,
        }
    }

    /// The items of an array, to edit: the node is then written item by item.
    pub fn items_mut(&mut self) -> Option<&mut Vec<Json<'a>>> {
        self.unmade();
        match &mut self.kind {
            Kind::Array(items) => {
                self.text = "";
                Some(items)
            }
            _ => None,
        }
    }

    /// A made object or array as a node of the tree, its entries or items made values,
    /// so that it is edited as the request's are: the patch edits a container it adds
    /// (the VM's token server gets IRSA's env and mount).
    fn unmade(&mut self) {
        let Kind::Made(made) = &mut self.kind else {
            return;
        };
        let kind = match &mut **made {
            Value::Object(map) => Kind::Object(
                std::mem::take(map)
                    .into_iter()
                    .map(|(k, v)| (Cow::Owned(k), Json::made(v)))
                    .collect(),
                None,
            ),
            Value::Array(items) => {
                Kind::Array(std::mem::take(items).into_iter().map(Json::made).collect())
            }
            _ => return,
        };
        self.kind = kind;
    }

    /// Writes the node as JSON: its text where it has one.
    pub fn write(&self, out: &mut Vec<u8>) {
        if !self.text.is_empty() {
            out.extend_from_slice(self.text.as_bytes());
            return;
        }
        match &self.kind {
            Kind::Null => out.extend_from_slice(b"null"),
            Kind::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            Kind::Number(n) => out.extend_from_slice(n.as_bytes()),
            Kind::String(s) => string(out, s),
            Kind::Array(items) => list(out, items, |out, item| item.write(out)),
            Kind::Object(entries, _) => {
                entries_to(out, entries.iter().map(|(k, v)| (&**k, v)), |out, v| {
                    v.write(out)
                })
            }
            Kind::Made(v) => value(out, v),
            Kind::Rendered(text) => out.extend_from_slice(text),
        }
    }

    /// The node as JSON text.
    #[cfg(test)]
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.text.len().max(256));
        self.write(&mut out);
        out
    }
}

/// The value under `key` in an object's `entries`, made `fresh()` when absent or when
/// it does not `fit`.
fn slot<'e, 'a>(
    entries: &'e mut Vec<Entry<'a>>,
    key: &'static str,
    fresh: fn() -> Json<'a>,
    fits: fn(&Json<'a>) -> bool,
) -> &'e mut Json<'a> {
    let at = match entries.iter().rposition(|(k, _)| same(k, key)) {
        Some(at) => at,
        None => {
            entries.push((Cow::Borrowed(key), fresh()));
            entries.len() - 1
        }
    };
    let slot = &mut entries[at].1;
    slot.unmade();
    if !fits(slot) {
        *slot = fresh();
    }
    slot
}

/// The array under `key`, created when absent or not an array, to edit.
pub fn array_in<'e, 'a>(
    entries: &'e mut Vec<Entry<'a>>,
    key: &'static str,
) -> &'e mut Vec<Json<'a>> {
    match slot(entries, key, Json::empty_array, Json::is_array).items_mut() {
        Some(items) => items,
        None => unreachable!("just made an array"),
    }
}

/// The object under `key`, created when absent or not an object, to edit.
pub fn object_in<'e, 'a>(
    entries: &'e mut Vec<Entry<'a>>,
    key: &'static str,
) -> &'e mut Vec<Entry<'a>> {
    match slot(entries, key, Json::empty_object, Json::is_object).entries_mut() {
        Some(entries) => entries,
        None => unreachable!("just made an object"),
    }
}

/// The value of `key` taken out of an object, which is then written entry by entry;
/// null when it has none.
pub fn take<'a>(node: &mut Json<'a>, key: &str) -> Json<'a> {
    node.entries_mut()
        .and_then(|entries| entries.iter_mut().find(|(k, _)| same(k, key)))
        .map(|(_, value)| std::mem::take(value))
        .unwrap_or_default()
}

/// Sets `key` to `value`, in place of the entry there.
pub fn set<'a>(entries: &mut Vec<Entry<'a>>, key: Cow<'a, str>, value: Json<'a>) {
    match entries.iter_mut().rev().find(|(k, _)| same(k, &key)) {
        Some((_, slot)) => *slot = value,
        None => entries.push((key, value)),
    }
}

struct Reader<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Reader<'a> {
    /// Out of line: inlined, its formatting made every reading function's frame larger.
    #[cold]
    #[inline(never)]
    fn invalid(&self, what: &str) -> String {
        format!("{what} at byte {}", self.at)
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn space(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.at += 1;
        }
    }

    fn expect(&mut self, byte: u8, what: &str) -> Result<(), String> {
        self.space();
        if self.peek() != Some(byte) {
            return Err(self.invalid(what));
        }
        self.at += 1;
        Ok(())
    }

    fn value(&mut self, depth: usize) -> Result<Json<'a>, String> {
        self.space();
        let start = self.at;
        let kind = match self.peek() {
            Some(b'{') => self.object(depth)?,
            Some(b'[') => self.array(depth)?,
            Some(b'"') => Kind::String(self.string()?),
            Some(b't') => self.word("true", Kind::Bool(true))?,
            Some(b'f') => self.word("false", Kind::Bool(false))?,
            Some(b'n') => self.word("null", Kind::Null)?,
            Some(b'-' | b'0'..=b'9') => self.number()?,
            _ => return Err(self.invalid("expected a value")),
        };
        Ok(Json {
            text: &self.text[start..self.at],
            kind,
        })
    }

    fn word(&mut self, word: &str, kind: Kind<'a>) -> Result<Kind<'a>, String> {
        if !self.text[self.at..].starts_with(word) {
            return Err(self.invalid("expected a value"));
        }
        self.at += word.len();
        Ok(kind)
    }

    /// The digits from here on; how many.
    fn digits(&mut self) -> usize {
        let start = self.at;
        while let Some(b'0'..=b'9') = self.peek() {
            self.at += 1;
        }
        self.at - start
    }

    /// A number in JSON's grammar, refused as serde_json refuses it when out of `f64`'s
    /// range.
    fn number(&mut self) -> Result<Kind<'a>, String> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek() {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => _ = self.digits(),
            _ => return Err(self.invalid("expected a digit")),
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            if self.digits() == 0 {
                return Err(self.invalid("expected a digit after the decimal point"));
            }
        }
        let mut exponent = false;
        if let Some(b'e' | b'E') = self.peek() {
            exponent = true;
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            if self.digits() == 0 {
                return Err(self.invalid("expected a digit in the exponent"));
            }
        }
        let n = &self.text[start..self.at];
        // Without an exponent, fewer than 309 digits are always in range: most numbers
        // skip the conversion.
        if (exponent || n.len() > 300) && !n.parse::<f64>().is_ok_and(f64::is_finite) {
            return Err(format!("number out of range: {n}"));
        }
        Ok(Kind::Number(n))
    }

    /// A string: borrowed without escapes, else decoded by serde_json. Its plain runs
    /// are scanned eight bytes at a time. Inlined: a call's frame, for every key and
    /// string, cost more than scanning most of them.
    #[inline(always)]
    fn string(&mut self) -> Result<Cow<'a, str>, String> {
        let bytes = self.text.as_bytes();
        let start = self.at;
        // A local, not `self.at`: written back once, not at every word.
        let mut at = start + 1;
        let mut escaped = false;
        let end = loop {
            while let Some(chunk) = bytes.get(at..).and_then(<[u8]>::first_chunk::<8>) {
                let special = special(u64::from_le_bytes(*chunk));
                if special != 0 {
                    at += special.trailing_zeros() as usize / 8;
                    break;
                }
                at += 8;
            }
            match bytes.get(at) {
                Some(b'"') => break at,
                Some(b'\\') => {
                    escaped = true;
                    at += 2;
                }
                Some(&b) if b >= 0x20 => at += 1,
                found => {
                    self.at = at;
                    let what = match found {
                        Some(_) => "a control character in a string",
                        None => "unterminated string",
                    };
                    return Err(self.invalid(what));
                }
            }
        };
        self.at = end + 1;
        let text = if escaped {
            self.text.get(start..=end)
        } else {
            self.text.get(start + 1..end)
        };
        match text {
            Some(text) if escaped => decoded(text, start).map(Cow::Owned),
            Some(text) => Ok(Cow::Borrowed(text)),
            None => Err(self.invalid("unterminated string")),
        }
    }

    fn array(&mut self, depth: usize) -> Result<Kind<'a>, String> {
        let depth = self.deeper(depth)?;
        self.at += 1;
        self.space();
        if self.peek() == Some(b']') {
            self.at += 1;
            return Ok(Kind::Array(Vec::new()));
        }
        let mut items = Vec::with_capacity(FIRST_ROOM);
        loop {
            items.push(self.value(depth)?);
            self.space();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    return Ok(Kind::Array(items));
                }
                _ => return Err(self.invalid("expected , or ]")),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<Kind<'a>, String> {
        let depth = self.deeper(depth)?;
        self.at += 1;
        self.space();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(Kind::Object(Vec::new(), None));
        }
        let mut entries: Vec<Entry<'a>> = Vec::with_capacity(FIRST_ROOM);
        loop {
            self.space();
            if self.peek() != Some(b'"') {
                return Err(self.invalid("expected a key"));
            }
            let key = self.string()?;
            self.expect(b':', "expected :")?;
            entries.push((key, self.value(depth)?));
            self.space();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    break;
                }
                _ => return Err(self.invalid("expected , or }")),
            }
        }
        let index = unique(&mut entries);
        Ok(Kind::Object(entries, index))
    }

    fn deeper(&self, depth: usize) -> Result<usize, String> {
        if depth >= DEPTH {
            return Err(self.invalid("nested too deep"));
        }
        Ok(depth + 1)
    }
}

/// A string with escapes (`text`, quotes included, at byte `start`), decoded by
/// serde_json: rare, so out of line.
#[cold]
#[inline(never)]
fn decoded(text: &str, start: usize) -> Result<String, String> {
    serde_json::from_str(text).map_err(|e| {
        // serde_json's message without its line and column, which are the string's.
        let e = e.to_string();
        let what = e.split(" at line").next().unwrap_or_default();
        format!("{what} in the string at byte {start}")
    })
}

/// Whether two keys are the same, compared eight bytes at a time: in wasm `==` on
/// strings calls a `memcmp` that compares byte by byte, and keys share long prefixes
/// (`iamra.aws/`).
fn same(a: &str, b: &str) -> bool {
    same_bytes(a.as_bytes(), b.as_bytes())
}

fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let word = |s: &[u8], at: usize| {
        s.get(at..)
            .and_then(<[u8]>::first_chunk::<8>)
            .map(|w| u64::from_le_bytes(*w))
    };
    if a.len() < 8 {
        return a.iter().zip(b).all(|(x, y)| x == y);
    }
    // Whole words, then the last eight bytes (overlapping the words before).
    let mut at = 0;
    while at + 8 < a.len() {
        if word(a, at) != word(b, at) {
            return false;
        }
        at += 8;
    }
    word(a, a.len() - 8) == word(b, a.len() - 8)
}

/// How `key` orders against the concatenation of `parts`, as `str`'s order would
/// against the joined key.
fn joined_cmp(key: &[u8], parts: [&[u8]; 3]) -> Ordering {
    let mut rest = key;
    for part in parts {
        let n = rest.len().min(part.len());
        match rest[..n].cmp(&part[..n]) {
            Ordering::Equal if n < part.len() => return Ordering::Less,
            Ordering::Equal => rest = &rest[n..],
            order => return order,
        }
    }
    if rest.is_empty() {
        Ordering::Equal
    } else {
        Ordering::Greater
    }
}

/// Drops the entries of a repeated key but its last, as serde_json keeps the last; for
/// a large object returns its positions sorted by key.
fn unique(entries: &mut Vec<Entry<'_>>) -> Option<Vec<u32>> {
    if entries.len() <= INDEXED {
        if repeats(entries) {
            let repeated = |i: usize, e: &[Entry]| e[i + 1..].iter().any(|(k, _)| same(k, &e[i].0));
            let mut i = 0;
            while i < entries.len() {
                if repeated(i, entries) {
                    entries.remove(i);
                } else {
                    i += 1;
                }
            }
        }
        return None;
    }
    let mut index: Vec<u32> = (0..entries.len() as u32).collect();
    // Stable: of equal keys, the last stays last.
    index.sort_by(|&a, &b| entries[a as usize].0.cmp(&entries[b as usize].0));
    let dropped: Vec<bool> = (0..index.len())
        .map(|i| {
            index
                .get(i + 1)
                .is_some_and(|&next| entries[next as usize].0 == entries[index[i] as usize].0)
        })
        .collect();
    if !dropped.iter().any(|d| *d) {
        return Some(index);
    }
    let mut keep = vec![true; entries.len()];
    for (i, d) in dropped.iter().enumerate() {
        if *d {
            keep[index[i] as usize] = false;
        }
    }
    let mut at = 0;
    entries.retain(|_| {
        at += 1;
        keep[at - 1]
    });
    unique(entries)
}

/// Whether a small object holds a key twice. Each key sets one bit of a mask, chosen
/// by its length and end bytes; only a key whose bit is already set is compared with
/// the keys before it. Comparing every pair was most of an object's reading.
fn repeats(entries: &[Entry<'_>]) -> bool {
    let mut seen = 0u64;
    for (i, (key, _)) in entries.iter().enumerate() {
        let bytes = key.as_bytes();
        let ends = |b: Option<&u8>| u32::from(b.copied().unwrap_or_default());
        let bit = 1u64
            << ((bytes.len() as u32)
                .wrapping_add(ends(bytes.first()) * 7)
                .wrapping_add(ends(bytes.last()) * 13)
                % 64);
        if seen & bit != 0 && entries[..i].iter().any(|(k, _)| same(k, key)) {
            return true;
        }
        seen |= bit;
    }
    false
}

/// A `serde_json::Value` as `serde_json::to_vec` writes it.
pub fn value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        // Numbers are rare in what the policy builds: serde_json's own formatting.
        Value::Number(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::String(s) => string(out, s),
        Value::Array(items) => list(out, items, value),
        Value::Object(map) => entries_to(out, map.iter().map(|(k, v)| (k.as_str(), v)), value),
    }
}

pub fn list<T>(out: &mut Vec<u8>, items: &[T], write: impl Fn(&mut Vec<u8>, &T)) {
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write(out, item);
    }
    out.push(b']');
}

pub fn entries_to<'k, T>(
    out: &mut Vec<u8>,
    items: impl Iterator<Item = (&'k str, T)>,
    write: impl Fn(&mut Vec<u8>, T),
) {
    out.push(b'{');
    for (i, (k, v)) in items.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        string(out, k);
        out.push(b':');
        write(out, v);
    }
    out.push(b'}');
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Which of the eight bytes of `w` (little-endian) are `byte`: a high bit set in each.
/// Only the lowest is sure (a borrow may mark a byte above it), which is all a search
/// for the first needs.
#[inline(always)]
pub fn bytes_equal(w: u64, byte: u8) -> u64 {
    let x = w ^ (ONES * u64::from(byte));
    x.wrapping_sub(ONES) & !x & HIGHS
}

/// Which of the eight bytes of `w` (little-endian) are control characters, `"` or `\`,
/// marked as [`bytes_equal`] marks them: the lowest is all the readers and writers need.
fn special(w: u64) -> u64 {
    let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGHS;
    below_space | bytes_equal(w, b'"') | bytes_equal(w, b'\\')
}

/// A JSON string, escaped as serde_json escapes it. Inlined, with `copy_clean`: in
/// wasm a call per string cost more than copying most strings.
#[inline(always)]
pub fn string(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    if !copy_clean(out, bytes) {
        escaped(out, bytes);
    }
    out.push(b'"');
}

/// The first eight bytes of `bytes` as a little-endian word; a shorter slice's padded
/// with `pad` above it. Read in at most two loads: copying a short slice into a buffer
/// is a `memory.copy` in wasm, a call into the runtime.
pub fn word(bytes: &[u8], pad: u8) -> u64 {
    if let Some(w) = bytes.first_chunk::<8>() {
        return u64::from_le_bytes(*w);
    }
    let n = bytes.len();
    // Two loads that overlap in the middle (or are the same bytes).
    let loaded = match (bytes.first_chunk::<4>(), bytes.last_chunk::<4>()) {
        (Some(low), Some(high)) => {
            u64::from(u32::from_le_bytes(*low))
                | u64::from(u32::from_le_bytes(*high)) << (8 * (n - 4))
        }
        _ => match (bytes.first_chunk::<2>(), bytes.last_chunk::<2>()) {
            (Some(low), Some(high)) => {
                u64::from(u16::from_le_bytes(*low))
                    | u64::from(u16::from_le_bytes(*high)) << (8 * (n - 2))
            }
            _ => bytes.first().map_or(0, |&b| u64::from(b)),
        },
    };
    loaded | (ONES * u64::from(pad)) << (8 * n)
}

/// Appends `bytes` when none of them needs escaping, eight at a time (as fixed-size
/// stores: in wasm a copy of unknown length is a call into the runtime); otherwise
/// appends nothing and says so.
#[inline(always)]
fn copy_clean(out: &mut Vec<u8>, bytes: &[u8]) -> bool {
    let start = out.len();
    let mut chunks = bytes.chunks_exact(8);
    for chunk in chunks.by_ref() {
        let w = word(chunk, b' ');
        if special(w) != 0 {
            out.truncate(start);
            return false;
        }
        out.extend_from_slice(&w.to_le_bytes());
    }
    let rest = chunks.remainder().len();
    if rest == 0 {
        return true;
    }
    // The last eight bytes, overlapping those written (or, in a short string, padded
    // with spaces): written whole, then the overlap or padding taken off.
    let (last, keep) = if bytes.len() >= 8 {
        out.truncate(out.len() - (8 - rest));
        (word(&bytes[bytes.len() - 8..], b' '), 8)
    } else {
        (word(bytes, b' '), rest)
    };
    if special(last) != 0 {
        out.truncate(start);
        return false;
    }
    out.extend_from_slice(&last.to_le_bytes());
    out.truncate(out.len() - (8 - keep));
    true
}

/// `bytes` with JSON escapes, byte by byte: the rare string with quotes, backslashes
/// or control characters.
fn escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => {
                out.extend_from_slice(&bytes[start..i]);
                let hex = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.extend_from_slice(&[hex[usize::from(b >> 4)], hex[usize::from(b & 0xf)]]);
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escape);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Request;
    use crate::testutil::value;
    use rstest::rstest;
    use serde_json::{json, Map};

    /// Every length a word is read from, with either padding, as bytes copied into a
    /// padded buffer make it.
    #[test]
    fn a_word_is_its_bytes_padded() {
        let bytes: Vec<u8> = (1..=10).collect();
        for len in 0..=bytes.len() {
            for pad in [0, b' '] {
                let mut expected = [pad; 8];
                let n = len.min(8);
                expected[..n].copy_from_slice(&bytes[..n]);
                assert_eq!(
                    word(&bytes[..len], pad),
                    u64::from_le_bytes(expected),
                    "{len} bytes"
                );
            }
        }
    }

    fn parsed(text: &str) -> Json<'_> {
        Json::parse(text).unwrap()
    }

    fn written(json: &Json) -> String {
        String::from_utf8(json.to_vec()).unwrap()
    }

    fn serde(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    #[rstest]
    #[case::zero("0")]
    #[case::negative_zero("-0")]
    #[case::port("8080")]
    #[case::smallest("-9223372036854775808")]
    #[case::largest("9223372036854775807")]
    #[case::just_over("9223372036854775808")]
    #[case::over_u64("18446744073709551616")]
    #[case::fraction("1.0")]
    #[case::exponent("1e3")]
    #[case::negative_exponent("-1E-2")]
    fn a_number_reads_as_i64_as_serde_json_reads_it(#[case] text: &str) {
        assert_eq!(parsed(text).as_i64(), serde(text).as_i64());
    }

    /// The tree read through its accessors as a `serde_json::Value`; numbers, which have
    /// no accessor but `as_i64`, through their text. Each entry of an object is found by
    /// `get` (the sorted index of a large one).
    fn read(json: &Json) -> Value {
        if json.is_null() {
            Value::Null
        } else if let Some(b) = json.as_bool() {
            Value::Bool(b)
        } else if let Some(s) = json.as_str() {
            Value::String(s.to_owned())
        } else if let Some(items) = json.as_array() {
            Value::Array(items.iter().map(read).collect())
        } else if let Some(entries) = json.as_object() {
            let mut map = Map::new();
            for (k, v) in entries {
                assert!(std::ptr::eq(json.get(k).unwrap(), v), "get({k:?})");
                assert_eq!(map.insert(k.to_string(), read(v)), None, "{k:?} twice");
            }
            Value::Object(map)
        } else {
            serde_json::from_slice(&json.to_vec()).unwrap()
        }
    }

    #[rstest]
    #[case::compact(r#"{"a":[1,2,{"b":null}],"c":true}"#)]
    #[case::whitespace("{\n  \"a\" : [ 1 , 2 ] ,\t\"b\":{ } ,\"c\" :\r\n\"\" }")]
    #[case::escapes(r#"{"\u0061":"\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00","b":"é😀"}"#)]
    #[case::numbers("[1e2,1E+2,-0,0.1000,1.7976931348623157e308,5e-324,3.141592653589793238462643383279,-12345678901234567890123,18446744073709551615]")]
    #[case::string(r#""a \"quoted\" word""#)]
    #[case::null("null")]
    #[case::false_("false")]
    #[case::number("-1.5e-3")]
    #[case::empties(r#"[{},[],"",{ },[ ]]"#)]
    fn the_text_is_written_back_as_it_was_and_read_as_serde_json_reads_it(#[case] text: &str) {
        let json = parsed(text);
        assert_eq!(written(&json), text);
        assert_eq!(read(&json), serde(text));
    }

    #[test]
    fn space_around_the_value_is_not_its_text() {
        let json = parsed(" \n[1, 2]\t ");
        assert_eq!(written(&json), "[1, 2]");
    }

    /// `dup` given three times (first, in the middle, last) and `k0` twice, around
    /// `n` other keys: small objects, and large ones with the sorted index.
    #[rstest]
    #[case::small(2)]
    #[case::at_the_limit(INDEXED - 4)]
    #[case::just_over_the_limit(INDEXED - 3)]
    #[case::indexed(40)]
    #[case::large(1000)]
    fn a_repeated_key_reads_as_its_last_value(#[case] n: usize) {
        let mut entries = vec![r#""dup":1"#.to_owned()];
        entries.extend((0..n).map(|i| format!(r#""k{i}":{i}"#)));
        entries.insert(n / 2, r#""dup":2"#.into());
        entries.push(r#""k0":"again""#.into());
        entries.push(r#""dup":3"#.into());
        let text = format!("{{{}}}", entries.join(","));
        let json = parsed(&text);
        assert_eq!(json.as_object().unwrap().len(), n + 1);
        assert_eq!(json.get("dup").and_then(Json::as_i64), Some(3));
        assert_eq!(json.get("k0").and_then(Json::as_str), Some("again"));
        assert_eq!(read(&json), serde(&text));
        // Unedited, the text with its repeats; edited, each key once, at its last place.
        assert_eq!(written(&json), text);
        let mut edited = json.clone();
        edited.entries_mut();
        let keys: Vec<&str> = edited.keys().collect();
        assert_eq!(keys[n - 1..], ["k0", "dup"]);
        assert_eq!(serde(&written(&edited)), serde(&text));
    }

    /// Keys out of order, some escaped: each found by `get`, absent ones not.
    #[rstest]
    #[case::small(INDEXED)]
    #[case::indexed(INDEXED + 1)]
    #[case::large(5000)]
    fn get_finds_every_key(#[case] n: usize) {
        let key = |i: usize| format!("key-{:05}", (i * 7919) % n);
        let entries: Vec<String> = (0..n)
            .map(|i| match i % 3 {
                0 => format!(r#""{}":{i}"#, key(i)),
                // An escaped key is decoded: the same key.
                _ => format!(r#""\u006b{}":{i}"#, &key(i)[1..]),
            })
            .collect();
        let text = format!("{{ {} }}", entries.join(" ,\n"));
        let json = parsed(&text);
        for i in 0..n {
            assert_eq!(
                json.get(&key(i)).and_then(Json::as_i64),
                Some(i as i64),
                "{}",
                key(i)
            );
        }
        for absent in ["", "key", "key-", "key-99999", "zzz", "\u{0}"] {
            assert!(json.get(absent).is_none(), "{absent:?}");
        }
        assert!(parsed("[1]").get("0").is_none() && parsed(r#""a""#).get("a").is_none());
        assert_eq!(read(&json), serde(&text));
    }

    /// `get_under(prefix, name)` finds what `get` finds of `<prefix>/<name>`, in small
    /// objects and indexed ones, for keys that share a prefix, a name, a slash or only
    /// bytes of a character.
    #[rstest]
    #[case::small(0)]
    #[case::indexed(INDEXED)]
    fn get_under_finds_the_joined_key(#[case] filler: usize) {
        let keys = [
            "iamra.aws/role-arn",
            "iamra.aws/role",
            "iamra.aws/role-arnx",
            "iamra.awsx/role-arn",
            "iamra.aws",
            "iamra.aws/",
            "/role-arn",
            "iamra.aws//role-arn",
            "a/b/c",
            "a/b",
            "a",
            "\u{e9}/\u{20ac}",
            "\u{20ac}x/y",
        ];
        let entries: Vec<String> = keys
            .iter()
            .map(|k| k.to_string())
            .chain((0..filler).map(|i| format!("filler-{i}")))
            .enumerate()
            .map(|(i, k)| format!("{}:{i}", serde_json::to_string(&k).unwrap()))
            .collect();
        let text = format!("{{{}}}", entries.join(","));
        let json = parsed(&text);
        let parts = [
            "",
            "a",
            "b",
            "a/b",
            "iamra.aws",
            "role-arn",
            "role",
            "/role-arn",
            "\u{e9}",
            "\u{20ac}",
            "\u{20ac}x",
            "y",
            "c",
            "\u{e9}/",
        ];
        for prefix in parts {
            for name in parts {
                let joined = format!("{prefix}/{name}");
                assert_eq!(
                    json.get_under(prefix, name).and_then(Json::as_i64),
                    json.get(&joined).and_then(Json::as_i64),
                    "{joined:?}"
                );
                for key in keys {
                    let order =
                        joined_cmp(key.as_bytes(), [prefix.as_bytes(), b"/", name.as_bytes()]);
                    assert_eq!(
                        order,
                        key.cmp(joined.as_str()),
                        "{key:?} against {joined:?}"
                    );
                }
            }
        }
        assert!(parsed("[1]").get_under("a", "b").is_none());
    }

    /// What serde_json refuses to read as a `Value`, the tree refuses: its syntax, and
    /// what it refuses beyond syntax.
    #[rstest]
    #[case::lone_leading_surrogate(r#"{"a":"\ud800"}"#)]
    #[case::lone_trailing_surrogate(r#"["\udc00x"]"#)]
    #[case::leading_surrogate_then_a_letter(r#""\ud83dx""#)]
    #[case::lone_surrogate_in_a_key(r#"{"\ud800":1}"#)]
    #[case::number_over_f64(r#"{"a":1e400}"#)]
    #[case::negative_number_over_f64("[-1e309]")]
    #[case::long_integer_over_f64(&format!("[1{}]", "0".repeat(400)))]
    #[case::trailing_characters("{} {}")]
    #[case::unterminated_string(r#"{"a":"b}"#)]
    #[case::unterminated_escape(r#""\"#)]
    #[case::missing_value(r#"{"a":}"#)]
    #[case::missing_comma("[1 2]")]
    #[case::missing_colon(r#"{"a" 1}"#)]
    #[case::key_not_a_string("{a:1}")]
    #[case::bare_word("nul")]
    #[case::empty("")]
    #[case::plus_sign("+1")]
    #[case::leading_dot(".5")]
    #[case::leading_zero("01")]
    #[case::negative_leading_zero("-01")]
    #[case::lone_minus("-")]
    #[case::trailing_dot("1.")]
    #[case::dot_before_exponent("1.e5")]
    #[case::empty_exponent("1e")]
    #[case::signed_empty_exponent("1e+")]
    #[case::hex("0x10")]
    #[case::raw_control_character("\"a\u{1}b\"")]
    #[case::raw_tab("\"a\tb\"")]
    #[case::raw_newline_in_a_long_key("{\"abcdefghijklmno\npq\":1}")]
    #[case::trailing_comma_in_an_array("[1,]")]
    #[case::trailing_comma_in_an_object(r#"{"a":1,}"#)]
    #[case::invalid_escape(r#""\x41""#)]
    #[case::short_unicode_escape(r#""\u12""#)]
    #[case::single_quotes("'a'")]
    #[case::mismatched_brackets("[1}")]
    fn text_serde_json_refuses_is_refused(#[case] text: &str) {
        assert!(serde_json::from_str::<Value>(text).is_err(), "serde_json");
        assert!(Json::parse(text).is_err());
    }

    /// The string scan reads eight bytes at a time: a quote, a backslash or a control
    /// character at each place of a word, and the end of the text at each place, read
    /// as serde_json reads them.
    #[test]
    fn strings_read_as_serde_json_reads_them_wherever_their_specials_fall() {
        for len in 0..20 {
            let plain = "é".repeat(len / 2) + &"a".repeat(len % 2);
            for special in [
                "\\\"", "\\\\", "\\n", "\u{1}", "\u{1f}", "\"", "\\u00e9", "\\",
            ] {
                for at in 0..=plain.len() {
                    if !plain.is_char_boundary(at) {
                        continue;
                    }
                    let text = format!("\"{}{special}{}\"", &plain[..at], &plain[at..]);
                    for text in [text.clone(), text[..text.len() - 1].to_owned()] {
                        let ours = Json::parse(&text);
                        match serde_json::from_str::<Value>(&text) {
                            Ok(v) => assert_eq!(read(&ours.unwrap()), v, "{text:?}"),
                            Err(_) => assert!(ours.is_err(), "{text:?}"),
                        }
                    }
                }
            }
        }
    }

    /// Errors say where.
    #[rstest]
    #[case::syntax(r#"{"a": [1, 2 3]}"#, "expected , or ] at byte 12")]
    #[case::control(r#"["ab	"]"#, "a control character in a string at byte 4")]
    #[case::escape(r#"{"a": "b\q"}"#, "invalid escape in the string at byte 6")]
    #[case::range("[1e999]", "number out of range: 1e999")]
    fn an_error_says_what_and_where(#[case] text: &str, #[case] message: &str) {
        assert_eq!(Json::parse(text).unwrap_err(), message);
    }

    #[rstest]
    #[case::arrays("[", "]")]
    #[case::objects(r#"{"a":"#, "}")]
    fn nesting_deeper_than_the_limit_is_refused(#[case] open: &str, #[case] close: &str) {
        let nested = |n: usize| format!("{}1{}", open.repeat(n), close.repeat(n));
        assert_eq!(written(&parsed(&nested(DEPTH))), nested(DEPTH));
        assert!(Json::parse(&nested(DEPTH + 1)).is_err());
        // serde_json's limit.
        assert!(serde_json::from_str::<Value>(&nested(DEPTH)).is_ok());
        assert!(serde_json::from_str::<Value>(&nested(DEPTH + 1)).is_err());
        // Refused at the limit, not by overflowing the stack.
        assert!(Json::parse(&open.repeat(100_000)).is_err());
        assert!(Json::parse(&nested(100_000)).is_err());
    }

    /// Edits through every way in: the edited nodes are written entry by entry, every
    /// other node as its text (spacing, escapes and numbers as they were).
    #[test]
    fn edits_are_written_and_untouched_nodes_keep_their_text() {
        let text = r#"{ "metadata" : {"name":"a\u0062c", "annotations": {"x": "1", "y" :"old"}},
            "spec": {"containers": [ {"name": "app", "env": [ {"name":"A" , "value":"1e2"} ]} , {"name" : "b"} ],
            "n": 1.50 }, "status": { "phase" : "Pending" } }"#;
        let mut pod = parsed(text);
        let root = pod.entries_mut().unwrap();
        let annotations = object_in(object_in(root, "metadata"), "annotations");
        set(annotations, Cow::Borrowed("y"), Json::string("new".into()));
        set(annotations, Cow::Borrowed("z\""), Json::string("\n".into()));
        let spec = object_in(root, "spec");
        let containers = array_in(spec, "containers");
        let app = containers[0].entries_mut().unwrap();
        array_in(app, "env").push(Json::made(json!({"name": "B", "value": "2"})));
        array_in(app, "volumeMounts").push(Json::made(json!({"name": "v", "readOnly": true})));
        array_in(spec, "volumes").push(Json::made(json!({"name": "v"})));
        assert_eq!(
            written(&pod),
            concat!(
                r#"{"metadata":{"name":"a\u0062c","annotations":{"x":"1","y":"new","z\"":"\n"}},"#,
                r#""spec":{"containers":[{"name":"app","env":[{"name":"A" , "value":"1e2"},"#,
                r#"{"name":"B","value":"2"}],"volumeMounts":[{"name":"v","readOnly":true}]},"#,
                r#"{"name" : "b"}],"n":1.50,"volumes":[{"name":"v"}]},"#,
                r#""status":{ "phase" : "Pending" }}"#
            )
        );
    }

    /// `array_in` and `object_in` make the slot when it is absent or of another kind, as
    /// the `serde_json::Map` edits did; `set` replaces a key's value where it stands.
    #[rstest]
    #[case::absent(
        r#"{"a": 1}"#,
        r#"{"a":1,"k":[0]}"#,
        r#"{"a":1,"k":{"0":0}}"#,
        r#"{"a":1,"k":0}"#
    )]
    #[case::null(
        r#"{"k": null, "a": 1}"#,
        r#"{"k":[0],"a":1}"#,
        r#"{"k":{"0":0},"a":1}"#,
        r#"{"k":0,"a":1}"#
    )]
    #[case::a_string(r#"{"k": "x"}"#, r#"{"k":[0]}"#, r#"{"k":{"0":0}}"#, r#"{"k":0}"#)]
    #[case::an_array(r#"{"k": [ 1 ]}"#, r#"{"k":[1,0]}"#, r#"{"k":{"0":0}}"#, r#"{"k":0}"#)]
    #[case::an_object(
        r#"{"k": { "1" : 1 }}"#,
        r#"{"k":[0]}"#,
        r#"{"k":{"1":1,"0":0}}"#,
        r#"{"k":0}"#
    )]
    #[case::repeated_key(
        r#"{"k": [1], "a": 1, "k": [2]}"#,
        r#"{"a":1,"k":[2,0]}"#,
        r#"{"a":1,"k":{"0":0}}"#,
        r#"{"a":1,"k":0}"#
    )]
    fn slots_are_made_as_needed(
        #[case] text: &str,
        #[case] with_array: &str,
        #[case] with_object: &str,
        #[case] with_set: &str,
    ) {
        let zero = || Json::made(json!(0));
        let mut json = parsed(text);
        array_in(json.entries_mut().unwrap(), "k").push(zero());
        assert_eq!(written(&json), with_array);
        let mut json = parsed(text);
        let object = object_in(json.entries_mut().unwrap(), "k");
        set(object, Cow::Borrowed("0"), zero());
        assert_eq!(written(&json), with_object);
        let mut json = parsed(text);
        set(json.entries_mut().unwrap(), Cow::Borrowed("k"), zero());
        assert_eq!(written(&json), with_set);
    }

    #[test]
    fn only_objects_and_arrays_are_edited() {
        for text in ["1", r#""a""#, "null", "true", "[]"] {
            let mut json = parsed(text);
            assert!(json.entries_mut().is_none(), "{text}");
            assert_eq!(written(&json), text);
        }
        for text in ["1", r#""a""#, "null", "true", "{}"] {
            let mut json = parsed(text);
            assert!(json.items_mut().is_none(), "{text}");
            assert_eq!(written(&json), text);
        }
    }

    /// A value the policy built, once in the tree, is edited as the request's values are.
    #[test]
    fn made_objects_and_arrays_are_edited_too() {
        let mut json = Json::made(json!({"b": [1], "a": {"x": 1}}));
        let entries = json.entries_mut().unwrap();
        array_in(entries, "b").push(Json::made(json!(2)));
        set(
            object_in(entries, "a"),
            Cow::Borrowed("y"),
            Json::made(json!(2)),
        );
        array_in(entries, "c").push(Json::made(json!(3)));
        assert_eq!(written(&json), r#"{"a":{"x":1,"y":2},"b":[1,2],"c":[3]}"#);
        let mut json = Json::made(json!([{"a": 1}]));
        json.items_mut().unwrap().push(Json::made(json!(2)));
        assert_eq!(written(&json), r#"[{"a":1},2]"#);
        assert!(Json::made(json!("s")).entries_mut().is_none());
    }

    /// Equality is `serde_json::Value`'s, whatever the text.
    #[rstest]
    #[case::spacing(r#"{"a":[1,2]}"#, r#"{ "a" : [ 1 , 2 ] }"#)]
    #[case::escapes(r#"{"ab":"c"}"#, r#"{"\u0061b":"\u0063"}"#)]
    #[case::key_order(r#"{"a":1,"b":2}"#, r#"{"b":2,"a":1}"#)]
    #[case::key_order_of_a_large_object(&large(false), &large(true))]
    #[case::repeated_key(r#"{"a":1,"a":2}"#, r#"{"a":2}"#)]
    #[case::float_spelling("1.5", "1.50")]
    #[case::exponent("1e2", "100.0")]
    #[case::integer_and_float("100", "1e2")]
    #[case::integer_and_float_point("1", "1.0")]
    #[case::different_values(r#"{"a":1}"#, r#"{"a":2}"#)]
    #[case::a_null_is_not_a_missing_key(r#"{"a":1}"#, r#"{"a":1,"b":null}"#)]
    #[case::same_length_other_keys(r#"{"a":1,"b":2}"#, r#"{"a":1,"c":2}"#)]
    #[case::array_order("[1,2]", "[2,1]")]
    #[case::kinds(r#""1""#, "1")]
    #[case::empties("[]", "{}")]
    fn equal_as_serde_json_values_are(#[case] a: &str, #[case] b: &str) {
        let equal = serde(a) == serde(b);
        assert_eq!(parsed(a) == parsed(b), equal);
        assert_eq!(parsed(b) == parsed(a), equal);
        let mut edited = parsed(a);
        let _ = edited.entries_mut();
        let _ = edited.items_mut();
        assert_eq!(edited, parsed(a));
        assert_eq!(edited == parsed(b), equal);
    }

    /// An object over the index's size, its keys in order or reversed.
    fn large(reversed: bool) -> String {
        let mut entries: Vec<String> = (0..40).map(|i| format!(r#""k{i:02}":{i}"#)).collect();
        if reversed {
            entries.reverse();
        }
        format!("{{{}}}", entries.join(","))
    }

    /// A view of a value the policy built reads as that value's text parsed, and is
    /// written as serde_json writes the value.
    #[rstest]
    #[case::container(json!({"name": "app", "image": "a\"b", "ports": [{"containerPort": 9911}, {"containerPort": 1.5}], "tty": true, "command": null, "env": []}))]
    #[case::large_object(serde(&large(true)))]
    #[case::scalars(json!([null, false, -7, 18_446_744_073_709_551_615_u64, 0.1, "é"]))]
    fn a_view_reads_as_the_parsed_text(#[case] v: Value) {
        let text = v.to_string();
        let (view, parsed) = (Json::view(&v), parsed(&text));
        assert_eq!(read(&view), read(&parsed));
        assert_eq!(read(&view), v);
        assert_eq!(written(&view), text);
        let port = |j: &Json| -> Option<Vec<Option<i64>>> {
            let ports = j.get("ports")?.as_array()?;
            Some(
                ports
                    .iter()
                    .map(|p| p.get("containerPort")?.as_i64())
                    .collect(),
            )
        };
        assert_eq!(port(&view), port(&parsed));
        assert_eq!(view.keys().collect::<Vec<_>>(), {
            let mut keys: Vec<&str> = parsed.keys().collect();
            keys.sort_unstable();
            keys
        });
    }

    /// The request's object, read over the payload's text.
    #[test]
    fn a_request_borrows_its_object() {
        let payload =
            r#"{"operation": "CREATE", "object": { "kind" : "Pod", "metadata": {"name": "a"} }}"#;
        let request = Request::read(parsed(payload)).unwrap();
        assert_eq!(
            written(&request.object),
            r#"{ "kind" : "Pod", "metadata": {"name": "a"} }"#
        );
        assert_eq!(
            value(&request.object),
            json!({"kind": "Pod", "metadata": {"name": "a"}})
        );
        // A string without escapes is the payload's own.
        let name = request.object.get("metadata").and_then(|m| m.get("name"));
        let name = name.and_then(Json::as_str).unwrap();
        assert!(payload.as_bytes().as_ptr_range().contains(&name.as_ptr()));
        assert_eq!(name, "a");
    }
}
