//! Replay of a host-capabilities session recorded by
//! `kwctl run --record-host-capabilities-interactions`.
//!
//! The session file is a YAML list of exchanges; each holds the request as a
//! YAML document (policy-evaluator's `CallbackRequestType`, e.g.
//! `!KubernetesGetResource`) and either a `Success` payload or an `Error`
//! message. Like kwctl, replay is strictly in order: every guest request takes
//! the next exchange, and a request that differs from the recorded one, or one
//! made after the session is used up, is answered with an error.

use std::collections::{BTreeSet, VecDeque};
use std::path::Path;

use anyhow::{anyhow, Context, Result};
use serde::Deserialize;

/// The host request this runner can replay (the only one the policy makes), named
/// and shaped as policy-evaluator's `CallbackRequestType` variant so recorded
/// sessions parse; a session with any other request is refused.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub enum HostRequest {
    KubernetesGetResource {
        api_version: String,
        kind: String,
        name: String,
        namespace: Option<String>,
        disable_cache: bool,
        #[serde(default)]
        field_masks: Option<BTreeSet<String>>,
    },
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type")]
enum RecordedResponse {
    Success { payload: String },
    Error { message: String },
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type")]
enum RecordedExchange {
    Exchange {
        request: String,
        response: RecordedResponse,
    },
}

#[derive(Debug)]
struct Exchange {
    request: HostRequest,
    response: RecordedResponse,
}

/// The exchanges of one session, consumed front to back.
#[derive(Debug)]
pub struct Replay {
    exchanges: VecDeque<Exchange>,
}

impl Replay {
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "Cannot open host capabilities interactions file {}",
                path.display()
            )
        })?;
        Self::from_yaml(&text)
            .with_context(|| format!("cannot deserialize contents of {}", path.display()))
    }

    pub fn from_yaml(text: &str) -> Result<Self> {
        let recorded: Vec<RecordedExchange> = serde_norway::from_str(text)?;
        let exchanges = recorded
            .into_iter()
            .enumerate()
            .map(
                |(index, RecordedExchange::Exchange { request, response })| {
                    let request = serde_norway::from_str(&request).with_context(|| {
                        format!(
                            "exchange #{}: the recorded request is malformed or of a kind \
                         policy-runner cannot replay",
                            index + 1
                        )
                    })?;
                    Ok(Exchange { request, response })
                },
            )
            .collect::<Result<_>>()?;
        Ok(Replay { exchanges })
    }

    /// Answers `request` with the next recorded exchange: the recorded payload,
    /// or the recorded (or mismatch) error message.
    pub fn respond(&mut self, request: &HostRequest) -> Result<Vec<u8>> {
        let exchange = self
            .exchanges
            .pop_front()
            .ok_or_else(|| anyhow!("the list of recorded responses is empty"))?;
        if exchange.request != *request {
            return Err(anyhow!(
                "Replay error: unexpected request. Was expecting {:?}, got {:?} instead",
                exchange.request,
                request
            ));
        }
        match exchange.response {
            RecordedResponse::Success { payload } => Ok(payload.into_bytes()),
            RecordedResponse::Error { message } => Err(anyhow!(message)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SESSION: &str = r#"
- type: Exchange
  request: |
    !KubernetesGetResource
    api_version: v1
    kind: ServiceAccount
    name: app
    namespace: team-a
    disable_cache: false
  response:
    type: Success
    payload: '{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"app"}}'
- type: Exchange
  request: |
    !KubernetesGetResource
    api_version: v1
    kind: Namespace
    name: team-a
    namespace: null
    disable_cache: false
  response:
    type: Error
    message: Cannot find v1/Namespace named 'team-a' inside of namespace 'None'
"#;

    fn get(kind: &str, name: &str, namespace: Option<&str>) -> HostRequest {
        HostRequest::KubernetesGetResource {
            api_version: "v1".into(),
            kind: kind.into(),
            name: name.into(),
            namespace: namespace.map(Into::into),
            disable_cache: false,
            field_masks: None,
        }
    }

    #[test]
    fn exchanges_are_replayed_in_order() {
        let mut replay = Replay::from_yaml(SESSION).unwrap();
        let payload = replay
            .respond(&get("ServiceAccount", "app", Some("team-a")))
            .unwrap();
        assert!(String::from_utf8(payload)
            .unwrap()
            .contains("\"ServiceAccount\""));
        let err = replay
            .respond(&get("Namespace", "team-a", None))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Cannot find v1/Namespace named 'team-a' inside of namespace 'None'"
        );
        let err = replay
            .respond(&get("Namespace", "team-a", None))
            .unwrap_err();
        assert_eq!(err.to_string(), "the list of recorded responses is empty");
    }

    #[test]
    fn an_unexpected_request_is_an_error_and_consumes_the_exchange() {
        let mut replay = Replay::from_yaml(SESSION).unwrap();
        let err = replay
            .respond(&get("ServiceAccount", "other", Some("team-a")))
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("Replay error: unexpected request."),
            "{err}"
        );
        assert!(replay.respond(&get("Namespace", "team-a", None)).is_err());
    }

    #[test]
    fn malformed_sessions_are_refused() {
        assert!(Replay::from_yaml("not: a list").is_err());
        let unknown = "- type: Exchange\n  request: \"!SigstorePubKeyVerify\\nimage: x\\n\"\n  response:\n    type: Success\n    payload: ''\n";
        let err = Replay::from_yaml(unknown).unwrap_err();
        assert!(format!("{err:#}").contains("exchange #1"), "{err:#}");
        assert!(Replay::from_file(Path::new("/nonexistent/session.yml")).is_err());
    }
}
