//! A server's answer to a request of the link, kept as the server wrote it.
//!
//! Every bridged call ends in one. Only its envelope is read (`Envelope`);
//! the caller's id takes the link's in place, in the bytes, when the answer
//! goes out as JSON. Reading it whole into a `Value` and writing it out again
//! cost about 5% of the host's CPU per bridged call (`make bench`).

use serde::de::{Deserialize, Deserializer, IgnoredAny};
use serde_json::value::RawValue;
use serde_json::Value;
use std::ops::Range;

/// What the link needs of a message to route it, borrowed from its line.
#[derive(serde::Deserialize)]
pub(super) struct Envelope<'a> {
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(default)]
    method: Present,
    #[serde(default)]
    result: Present,
    #[serde(default)]
    error: Present,
}

/// Whether a member is there at all (`null` included, as in a `Value`).
#[derive(Default)]
struct Present(bool);

impl<'de> Deserialize<'de> for Present {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        IgnoredAny::deserialize(deserializer).map(|_| Present(true))
    }
}

impl<'a> Envelope<'a> {
    /// The envelope of a JSON object; `None` for anything else.
    pub(super) fn read(line: &'a [u8]) -> Option<Envelope<'a>> {
        // JSON is UTF-8 throughout, which skipping a member does not check.
        let text = std::str::from_utf8(line).ok()?;
        // A struct would also take an array, member by member.
        if !text.trim_start().starts_with('{') {
            return None;
        }
        serde_json::from_str(text).ok()
    }

    /// A request or a notification.
    pub(super) fn has_method(&self) -> bool {
        self.method.0
    }

    /// A result or an error.
    pub(super) fn is_answer(&self) -> bool {
        self.result.0 || self.error.0
    }

    /// The id, when it is one of the link's (a number).
    pub(super) fn link_id(&self) -> Option<u64> {
        self.id?.get().parse().ok()
    }

    /// Where the id's value lies in `line` (empty when there is none).
    pub(super) fn id_span(&self, line: &[u8]) -> Range<usize> {
        match self.id {
            Some(id) => {
                let start = id.get().as_ptr() as usize - line.as_ptr() as usize;
                start..start + id.get().len()
            }
            None => 0..0,
        }
    }
}

/// An answer, and the id of the caller it goes back to.
pub struct Answer {
    line: Vec<u8>,
    /// The link's id, in `line`.
    id: Range<usize>,
    caller_id: Value,
}

impl Answer {
    pub(super) fn new(line: Vec<u8>, id: Range<usize>) -> Answer {
        Answer { line, id, caller_id: Value::Null }
    }

    pub(super) fn for_caller(self, caller_id: Value) -> Answer {
        Answer { caller_id, ..self }
    }

    /// The answer as a message, under the caller's id.
    pub fn into_message(self) -> Value {
        let mut message: Value = serde_json::from_slice(&self.line).unwrap_or_default();
        message["id"] = self.caller_id;
        message
    }

    /// The answer as JSON text, under the caller's id.
    pub fn into_json(self) -> Vec<u8> {
        let caller_id = self.caller_id.to_string();
        let mut json = Vec::with_capacity(self.line.len() + caller_id.len());
        json.extend_from_slice(&self.line[..self.id.start]);
        json.extend_from_slice(caller_id.as_bytes());
        json.extend_from_slice(&self.line[self.id.end..]);
        json
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answer(line: &str, caller_id: Value) -> Answer {
        let envelope = Envelope::read(line.as_bytes()).expect("an object");
        Answer::new(line.into(), envelope.id_span(line.as_bytes())).for_caller(caller_id)
    }

    #[test]
    fn envelopes_say_what_a_message_is() {
        fn read(line: &str) -> Option<Envelope<'_>> {
            Envelope::read(line.as_bytes())
        }
        let answer = read(r#"{"jsonrpc":"2.0","id":7,"result":{"content":[]}}"#).unwrap();
        assert!(answer.is_answer() && !answer.has_method());
        assert_eq!(answer.link_id(), Some(7));
        let null_result = read(r#"{"jsonrpc":"2.0","id":8,"result":null}"#).unwrap();
        assert!(null_result.is_answer(), "a null result is still a result");
        let error = read(r#" {"id":9,"error":{"code":-1,"message":"no"}}"#).unwrap();
        assert!(error.is_answer());
        let request = read(r#"{"jsonrpc":"2.0","id":"s-1","method":"sampling/createMessage"}"#).unwrap();
        assert!(request.has_method() && !request.is_answer());
        assert_eq!(request.link_id(), None, "not one of the link's ids");
        assert_eq!(read(r#"{"id":"7","result":{}}"#).unwrap().link_id(), None, "a string id is not the link's");
        for not_a_message in ["[7, 1, 2, 3]", "\"text\"", "12", "{\"id\": 1,", "not json"] {
            assert!(read(not_a_message).is_none(), "{not_a_message}");
        }
        let not_utf8 = b"{\"id\":1,\"result\":{\"text\":\"\xff\xfe\"}}";
        assert!(Envelope::read(not_utf8).is_none(), "not UTF-8, so not JSON");
    }

    #[test]
    fn answers_go_back_under_the_callers_id() {
        let line = r#"{"jsonrpc":"2.0","id":41,"result":{"content":[{"type":"text","text":"id 41"}]}}"#;
        let expected = json!({"jsonrpc": "2.0", "id": "client-1",
                              "result": {"content": [{"type": "text", "text": "id 41"}]}});
        let as_json = answer(line, json!("client-1")).into_json();
        assert_eq!(serde_json::from_slice::<Value>(&as_json).unwrap(), expected);
        assert_eq!(answer(line, json!("client-1")).into_message(), expected);
        let spaced = answer(r#"{ "id" : 5 , "result" : 1 }"#, json!(12)).into_json();
        assert_eq!(String::from_utf8(spaced).unwrap(), r#"{ "id" : 12 , "result" : 1 }"#);
    }
}
