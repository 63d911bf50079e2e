//! The structure-aware target's input: one of the seed payloads (fuzz/corpus/validate,
//! made from the e2e fixtures) and edits that the fuzzer's bytes choose. Each edit picks
//! a path among every value of the payload as it stands (the request, the settings and
//! the `serviceAccount` the lookup answers with) and replaces, inserts, removes or copies
//! a value there, with strings from the policy's own vocabulary or arbitrary ones.

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use serde_json::{Map, Number, Value};
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

/// One step of a path: an object key or an array index.
#[derive(Debug)]
enum Step {
    Key(String),
    Index(usize),
}

/// [`BASES`], parsed once: cloning a value costs a fraction of reading its text.
fn bases() -> &'static [Value] {
    static PARSED: OnceLock<Vec<Value>> = OnceLock::new();
    PARSED.get_or_init(|| {
        BASES
            .iter()
            .map(|base| serde_json::from_str(base).expect("a seed payload is JSON"))
            .collect()
    })
}

impl Case {
    /// The payload: the chosen seed with the edits applied.
    pub fn payload(&self) -> Value {
        let mut doc = bases()[usize::from(self.base) % BASES.len()].clone();
        for edit in &self.edits {
            edit.apply(&mut doc);
        }
        doc
    }
}

impl Edit {
    fn apply(&self, doc: &mut Value) {
        let count = size(doc);
        let pick = |doc: &Value, at: u16| {
            let mut k = usize::from(at) % count;
            let mut path = Vec::new();
            nth(doc, &mut k, &mut path);
            path
        };
        match self {
            Edit::Set { at, value } => *value_at(doc, &pick(doc, *at)) = value.build(),
            Edit::Insert { at, key, value } => {
                let path = pick(doc, *at);
                add(value_at(doc, &path), key.build(), value.build())
            }
            Edit::Remove { at } => {
                let mut path = pick(doc, *at);
                if let Some(last) = path.pop() {
                    match (value_at(doc, &path), last) {
                        (Value::Object(map), Step::Key(k)) => {
                            map.remove(&k);
                        }
                        (Value::Array(list), Step::Index(i)) => {
                            list.remove(i);
                        }
                        _ => {}
                    }
                }
            }
            Edit::Copy { from, to } => {
                let from = pick(doc, *from);
                let to = pick(doc, *to);
                let key = match from.last() {
                    Some(Step::Key(k)) => k.clone(),
                    _ => String::new(),
                };
                let value = value_at(doc, &from).clone();
                add(value_at(doc, &to), key, value);
            }
        }
    }
}

impl Node {
    fn build(&self) -> Value {
        match self {
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
        }
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

/// How many values `value` holds, itself included.
fn size(value: &Value) -> usize {
    1 + match value {
        Value::Object(map) => map.values().map(size).sum(),
        Value::Array(list) => list.iter().map(size).sum(),
        _ => 0,
    }
}

/// The path to the `k`-th value of `value` in preorder (the root is the 0th), built in
/// `path`; true when found, else `k` is lowered by the values passed.
fn nth(value: &Value, k: &mut usize, path: &mut Vec<Step>) -> bool {
    if *k == 0 {
        return true;
    }
    *k -= 1;
    let children: Box<dyn Iterator<Item = (Step, &Value)>> = match value {
        Value::Object(map) => Box::new(map.iter().map(|(key, v)| (Step::Key(key.clone()), v))),
        Value::Array(list) => Box::new(list.iter().enumerate().map(|(i, v)| (Step::Index(i), v))),
        _ => return false,
    };
    for (step, child) in children {
        let n = size(child);
        if *k < n {
            path.push(step);
            return nth(child, k, path);
        }
        *k -= n;
    }
    false
}

/// The value at `path`, which `nth` found in `doc`.
fn value_at<'a>(doc: &'a mut Value, path: &[Step]) -> &'a mut Value {
    path.iter().fold(doc, |v, step| match step {
        Step::Key(k) => &mut v[k.as_str()],
        Step::Index(i) => &mut v[*i],
    })
}

fn add(target: &mut Value, key: String, value: Value) {
    match target {
        Value::Object(map) => {
            map.insert(key, value);
        }
        Value::Array(list) => list.push(value),
        _ => {}
    }
}
