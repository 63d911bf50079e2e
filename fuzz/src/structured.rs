//! The structure-aware target's input: one of the seed payloads (fuzz/corpus/validate,
//! made from the e2e fixtures) and edits that the fuzzer's bytes choose. Each edit picks
//! a path among every value of the payload as it stands (the request, the settings and
//! the `serviceAccount` the lookup answers with) and replaces, inserts, removes or copies
//! a value there, with strings from the policy's own vocabulary or arbitrary ones.

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use serde_json::{Map, Number, Value};
use std::borrow::Cow;
use std::sync::OnceLock;

/// The seed payloads, in file name order (build.rs).
pub const BASES: &[&str] = include!(concat!(env!("OUT_DIR"), "/bases.rs"));

/// Strings the policy reads or writes, so that edits reach its decisions.
const WORDS: &[&str] = &[
    "",
    "true",
    "false",
    "Pod",
    "CREATE",
    "UPDATE",
    "cert-manager.io",
    "Certificate",
    "CertificateRequest",
    "serviceAccount",
    "metadata",
    "annotations",
    "labels",
    "spec",
    "containers",
    "initContainers",
    "volumes",
    "volumeMounts",
    "mountPath",
    "env",
    "name",
    "value",
    "valueFrom",
    "restartPolicy",
    "Always",
    "hostNetwork",
    "serviceAccountName",
    "nodeSelector",
    "kubernetes.io/os",
    "windows",
    "csi",
    "driver",
    "csi.cert-manager.io",
    "volumeAttributes",
    "csi.cert-manager.io/issuer-name",
    "csi.cert-manager.io/uri-sans",
    "iamra-workload",
    "projected",
    "iamra-credential-helper",
    "iamra-credentials",
    "aws-iam-token",
    "/var/run/secrets/iamra.aws",
    "/var/run/secrets/eks.amazonaws.com/serviceaccount",
    "iamra.aws/role-arn",
    "iamra.aws/signing-profile-arn",
    "iamra.aws/session-name",
    "iamra.aws/token-duration",
    "iamra.aws/audience",
    "iamra.aws/log-level",
    "iamra.aws/region",
    "iamra.aws/injected",
    "iamra.aws/config-hash",
    "iamra.aws/warnings",
    "iamra.aws/typo",
    "eks.amazonaws.com/role-arn",
    "eks.amazonaws.com/audience",
    "eks.amazonaws.com/sts-regional-endpoints",
    "eks.amazonaws.com/token-expiration",
    "eks.amazonaws.com/skip-containers",
    "eks.amazonaws.com/skip-pod-identity-webhook",
    "arn:aws:iam::123456789012:role/app",
    "arn:aws:rolesanywhere:eu-west-1:123456789012:profile/0b9a1b52-1c1f-4a7e-9d0f-2f3c4d5e6f70",
    "arn:aws:rolesanywhere:eu-west-1:123456789012:trust-anchor/8f0c2a7e-5b4d-4c3a-9e1f-0a1b2c3d4e5f",
    "eu-west-1",
    "us-east-1",
    "1h",
    "900",
    "43200",
    "3600s",
    "debug",
    "sts.amazonaws.com",
    "NO_PROXY",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "127.0.0.1",
    "localhost,.svc",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
    "http://127.0.0.1:9911",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_STS_REGIONAL_ENDPOINTS",
    "AWS_ACCESS_KEY_ID",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "mode",
    "guard",
    "readServiceAccounts",
    "annotationPrefix",
    "sidecar",
    "native",
    "port",
    "irsa",
    "region",
];

#[derive(Arbitrary, Debug)]
pub struct Case {
    base: u8,
    edits: Vec<Edit>,
}

#[derive(Arbitrary, Debug)]
enum Edit {
    /// Replaces the value at a path.
    Set {
        at: u16,
        value: Node,
    },
    /// Adds `value` under `key` to the object at a path, or appends it to the array.
    Insert {
        at: u16,
        key: Text,
        value: Node,
    },
    Remove {
        at: u16,
    },
    /// Adds a copy of the value at `from` to the object or array at `to`.
    Copy {
        from: u16,
        to: u16,
    },
}

#[derive(Arbitrary, Debug)]
enum Node {
    Null,
    Bool(bool),
    Int(i64),
    Big(u64),
    Float(f64),
    Text(Text),
    Array,
    Object,
    Env { name: Text, value: Text },
    Named { name: Text },
    Account { annotations: Vec<(Text, Text)> },
}

#[derive(Arbitrary, Debug)]
enum Text {
    Word(u8),
    Any(String),
    /// A word repeated: long values, up to 255 times, and one time in 64 up to 4,080
    /// times (to 380 KB): every byte of a payload is read several times per execution,
    /// so huge values in every other edit cost most of the target's speed.
    Repeat {
        word: u8,
        times: u8,
        scale: u8,
    },
}

/// A payload's value. The seeds' values are built once and kept for the process, and an
/// edited payload shares every part of its seed that its edits leave alone (copy on
/// write); its leaves are held as serde_json writes them. Cloning a seed's
/// `serde_json::Value`, serialising it and dropping it took about a sixth of an execution
/// (natively; more under ASan, whose allocations cost more).
///
/// Arrays and objects keep the count of the values they hold (themselves included): each
/// edit picks among all the payload's values, and counting them afresh took another 8%.
#[derive(Clone, Debug)]
enum Tree {
    /// A number, string, bool or null, as serde_json writes it.
    Leaf(Cow<'static, str>),
    Array {
        items: Cow<'static, [Tree]>,
        size: usize,
    },
    /// Sorted by key, each key once, as in a `serde_json::Map`: the values' order (the
    /// edits' paths) and the text are those of the `Value` the payload was built as before.
    Object {
        entries: Cow<'static, [(Cow<'static, str>, Tree)]>,
        size: usize,
    },
}

/// [`BASES`], read once and kept for the process, so that a payload borrows their parts.
fn bases() -> &'static [Tree] {
    static TREES: OnceLock<Vec<Tree>> = OnceLock::new();
    TREES.get_or_init(|| {
        BASES
            .iter()
            .map(|base| {
                Tree::from(serde_json::from_str::<Value>(base).expect("a seed payload is JSON"))
                    .leak()
            })
            .collect()
    })
}

impl Case {
    /// The payload's text: the chosen seed with the edits applied.
    pub fn payload(&self) -> Vec<u8> {
        let mut doc = bases()[usize::from(self.base) % BASES.len()].clone();
        for edit in &self.edits {
            edit.apply(&mut doc);
        }
        let mut text = Vec::new();
        doc.write(&mut text);
        text
    }
}

impl Edit {
    fn apply(&self, doc: &mut Tree) {
        let count = doc.size();
        let pick = |doc: &Tree, at: u16| {
            let mut k = usize::from(at) % count;
            let mut path = Vec::new();
            doc.nth(&mut k, &mut path);
            path
        };
        match self {
            Edit::Set { at, value } => doc.change(&pick(doc, *at), |v| *v = value.build()),
            Edit::Insert { at, key, value } => {
                let path = pick(doc, *at);
                doc.change(&path, |v| v.add(key.build(), value.build()))
            }
            Edit::Remove { at } => {
                let mut path = pick(doc, *at);
                if let Some(last) = path.pop() {
                    doc.change(&path, |parent| match parent {
                        Tree::Object { entries, .. } => {
                            entries.to_mut().remove(last);
                        }
                        Tree::Array { items, .. } => {
                            items.to_mut().remove(last);
                        }
                        Tree::Leaf(_) => {}
                    });
                }
            }
            Edit::Copy { from, to } => {
                let from = pick(doc, *from);
                let to = pick(doc, *to);
                // The copied value's key, when it is an object's entry.
                let key = match from.split_last() {
                    Some((&last, parent)) => match doc.at(parent) {
                        Tree::Object { entries, .. } => entries[last].0.to_string(),
                        _ => String::new(),
                    },
                    None => String::new(),
                };
                let value = doc.at(&from).clone();
                doc.change(&to, |v| v.add(key, value));
            }
        }
    }
}

impl Node {
    fn build(&self) -> Tree {
        Tree::from(match self {
            Node::Null => Value::Null,
            Node::Bool(b) => Value::Bool(*b),
            Node::Int(i) => Value::from(*i),
            Node::Big(u) => Value::from(*u),
            // JSON has no NaN or infinity.
            Node::Float(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Node::Text(t) => Value::String(t.build()),
            Node::Array => Value::Array(Vec::new()),
            Node::Object => Value::Object(Map::new()),
            Node::Env { name, value } => {
                serde_json::json!({"name": name.build(), "value": value.build()})
            }
            Node::Named { name } => serde_json::json!({"name": name.build()}),
            Node::Account { annotations } => {
                let annotations: Map<String, Value> = annotations
                    .iter()
                    .map(|(k, v)| (k.build(), Value::String(v.build())))
                    .collect();
                serde_json::json!({"metadata": {"annotations": annotations}})
            }
        })
    }
}

impl Text {
    fn build(&self) -> String {
        let word = |i: u8| WORDS[usize::from(i) % WORDS.len()];
        match self {
            Text::Word(i) => word(*i).to_owned(),
            Text::Any(s) => s.clone(),
            Text::Repeat {
                word: i,
                times,
                scale,
            } => {
                let scale = if scale % 64 == 0 { 16 } else { 1 };
                word(*i).repeat(usize::from(*times) * scale)
            }
        }
    }
}

impl From<Value> for Tree {
    fn from(value: Value) -> Self {
        match value {
            Value::Array(items) => Tree::Array {
                items: items.into_iter().map(Tree::from).collect(),
                size: 0,
            },
            Value::Object(map) => Tree::Object {
                entries: map
                    .into_iter()
                    .map(|(key, value)| (Cow::Owned(key), Tree::from(value)))
                    .collect(),
                size: 0,
            },
            leaf => return Tree::Leaf(Cow::Owned(leaf.to_string())),
        }
        .counted()
    }
}

impl Tree {
    /// `self` kept for the process, every part borrowed, so that a clone of it or of any
    /// of its parts copies no more than the parts' addresses.
    fn leak(self) -> Tree {
        match self {
            Tree::Leaf(text) => Tree::Leaf(Cow::Borrowed(text.into_owned().leak())),
            Tree::Array { items, size } => Tree::Array {
                items: Cow::Borrowed(
                    items
                        .into_owned()
                        .into_iter()
                        .map(Tree::leak)
                        .collect::<Vec<_>>()
                        .leak(),
                ),
                size,
            },
            Tree::Object { entries, size } => Tree::Object {
                entries: Cow::Borrowed(
                    entries
                        .into_owned()
                        .into_iter()
                        .map(|(key, value)| {
                            (Cow::Borrowed(&*key.into_owned().leak()), value.leak())
                        })
                        .collect::<Vec<_>>()
                        .leak(),
                ),
                size,
            },
        }
    }

    /// The compact JSON text of `self`, as `serde_json::to_vec` writes the `Value`.
    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Tree::Leaf(text) => out.extend_from_slice(text.as_bytes()),
            Tree::Array { items, .. } => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    item.write(out);
                }
                out.push(b']');
            }
            Tree::Object { entries, .. } => {
                out.push(b'{');
                for (i, (key, value)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    serde_json::to_writer(&mut *out, key).expect("a string serialises");
                    out.push(b':');
                    value.write(out);
                }
                out.push(b'}');
            }
        }
    }

    /// The values under `self`, in order.
    fn children(&self) -> impl Iterator<Item = &Tree> {
        let (items, entries): (&[Tree], &[(Cow<str>, Tree)]) = match self {
            Tree::Leaf(_) => (&[], &[]),
            Tree::Array { items, .. } => (items, &[]),
            Tree::Object { entries, .. } => (&[], entries),
        };
        items.iter().chain(entries.iter().map(|(_, value)| value))
    }

    /// How many values `self` holds, itself included.
    fn size(&self) -> usize {
        match self {
            Tree::Leaf(_) => 1,
            Tree::Array { size, .. } | Tree::Object { size, .. } => *size,
        }
    }

    /// `self` with its count of values set from its children's.
    fn counted(mut self) -> Tree {
        self.recount();
        self
    }

    fn recount(&mut self) {
        let count = 1 + self.children().map(Tree::size).sum::<usize>();
        if let Tree::Array { size, .. } | Tree::Object { size, .. } = self {
            *size = count;
        }
    }

    /// The path (positions among each parent's values) to the `k`-th value of `self` in
    /// preorder (`self` is the 0th), built in `path`; true when found, else `k` is lowered
    /// by the values passed.
    fn nth(&self, k: &mut usize, path: &mut Vec<usize>) -> bool {
        if *k == 0 {
            return true;
        }
        *k -= 1;
        for (i, child) in self.children().enumerate() {
            let n = child.size();
            if *k < n {
                path.push(i);
                return child.nth(k, path);
            }
            *k -= n;
        }
        false
    }

    /// The value at `path`, which [`Tree::nth`] found.
    fn at(&self, path: &[usize]) -> &Tree {
        path.iter().fold(self, |value, &i| match value {
            Tree::Array { items, .. } => &items[i],
            Tree::Object { entries, .. } => &entries[i].1,
            Tree::Leaf(_) => unreachable!("a path goes through arrays and objects"),
        })
    }

    /// Changes the value at `path` by `f`, made the payload's own with the arrays and
    /// objects on the way (so that the seed stays as it is), whose counts it then updates.
    fn change(&mut self, path: &[usize], f: impl FnOnce(&mut Tree)) {
        match path.split_first() {
            None => f(self),
            Some((&i, rest)) => match self {
                Tree::Array { items, .. } => items.to_mut()[i].change(rest, f),
                Tree::Object { entries, .. } => entries.to_mut()[i].1.change(rest, f),
                Tree::Leaf(_) => unreachable!("a path goes through arrays and objects"),
            },
        }
        self.recount();
    }

    /// Adds `value` under `key` to an object (replacing the key's value, as
    /// `serde_json::Map::insert` does), or appends it to an array.
    fn add(&mut self, key: String, value: Tree) {
        match self {
            Tree::Object { entries, .. } => {
                let entries = entries.to_mut();
                match entries.binary_search_by(|(k, _)| k.as_ref().cmp(&key)) {
                    Ok(i) => entries[i].1 = value,
                    Err(i) => entries.insert(i, (Cow::Owned(key), value)),
                }
            }
            Tree::Array { items, .. } => items.to_mut().push(value),
            Tree::Leaf(_) => {}
        }
    }
}
