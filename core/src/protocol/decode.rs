//! Decoding a client's text frame: a [`Command`], plain text, or a rejection with its
//! error code.
//!
//! Two passes over the text, neither of which builds a JSON tree. The first reads the
//! envelope, `type` and `ref`, borrowing both and skipping every other field. The second
//! deserializes the command's fields straight into the variant that `type` named. This is
//! why [`Command`] is externally tagged for serde although its wire form has a `type`
//! field: serde's internally tagged enums (`#[serde(tag = "type")]`) buffer the whole
//! object into an intermediate tree first, which cost more than the rest of decoding.

use std::borrow::Cow;

use serde::{
    de::{self, DeserializeSeed, EnumAccess, IgnoredAny, IntoDeserializer, VariantAccess, Visitor},
    forward_to_deserialize_any, Deserialize, Deserializer,
};

use super::{ErrorCode, Inbound, ProtocolError, Ref, MAX_REF_CHARS};
use crate::cmd::Command;

/// Decodes one text frame.
///
/// Text that is not JSON, or JSON that is not an object, is [`Inbound::Plain`] — except
/// text that starts with `{`, which is clearly a command attempt and gets `bad_json`.
pub fn decode(text: &str) -> Inbound {
    // Only an object can be a command; anything else is plain text to echo. This also
    // skips JSON parsing entirely for what people type into a terminal client.
    if !text.trim_start().starts_with('{') {
        return Inbound::Plain(text.to_owned());
    }
    let envelope: Envelope = match serde_json::from_str(text) {
        Ok(envelope) => envelope,
        Err(err) => return rejected(None, ErrorCode::BadJson, format!("invalid JSON: {err}")),
    };
    // `ref` first, so that even a rejected command's error carries it.
    let reference = match envelope.reference {
        Field::Missing | Field::Null => None,
        Field::Text(raw) => match Ref::parse(&raw) {
            Ok(reference) => Some(reference),
            Err(err) => {
                return Inbound::Rejected {
                    reference: None,
                    error: err.into(),
                }
            }
        },
        Field::Other => {
            return rejected(
                None,
                ErrorCode::BadJson,
                format!("ref must be a string of at most {MAX_REF_CHARS} characters"),
            )
        }
    };
    let kind = match envelope.kind {
        Field::Text(kind) => kind,
        Field::Missing => {
            return rejected(reference, ErrorCode::MissingField, "missing field `type`")
        }
        Field::Null | Field::Other => {
            return rejected(
                reference,
                ErrorCode::BadJson,
                "type must be a string: the name of a command",
            )
        }
    };
    let mut body = serde_json::Deserializer::from_str(text);
    match Command::deserialize(Tagged {
        kind: &kind,
        body: &mut body,
    }) {
        Ok(command) => Inbound::Command { reference, command },
        Err(err) => Inbound::Rejected {
            reference,
            error: classify(&without_position(&err)),
        },
    }
}

fn rejected(reference: Option<Ref>, code: ErrorCode, message: impl Into<String>) -> Inbound {
    Inbound::Rejected {
        reference,
        error: ProtocolError::new(code, message),
    }
}

/// The two fields every command may have; the others are skipped without being parsed
/// into anything.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Field<'a>,
    #[serde(rename = "ref", default, borrow)]
    reference: Field<'a>,
}

/// One envelope field, whatever JSON it holds; a string is borrowed from the frame
/// unless it has escapes.
#[derive(Default)]
enum Field<'a> {
    #[default]
    Missing,
    Null,
    Text(Cow<'a, str>),
    Other,
}

impl<'de: 'a, 'a> Deserialize<'de> for Field<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(FieldVisitor)
    }
}

struct FieldVisitor;

impl<'de> Visitor<'de> for FieldVisitor {
    type Value = Field<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Field::Text(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Field::Text(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Field::Text(Cow::Owned(v)))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Field::Null)
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Field::Null)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Field::Other)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Field::Other)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Field::Other)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Field::Other)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Field::Other)
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Field::Other)
    }
}

/// Presents `{"type": kind, ...fields}` to serde as the externally tagged
/// `{kind: {...fields}}`: the variant comes from `kind`, its fields from the whole
/// object (where `type` and `ref` are unknown fields, ignored).
struct Tagged<'a, 'de> {
    kind: &'a str,
    body: &'a mut serde_json::Deserializer<serde_json::de::StrRead<'de>>,
}

impl<'de> Deserializer<'de> for Tagged<'_, 'de> {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_enum(self)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
        byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map
        struct enum identifier ignored_any
    }
}

impl<'de> EnumAccess<'de> for Tagged<'_, 'de> {
    type Error = serde_json::Error;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self), Self::Error> {
        // An unknown `type` fails here with serde's "unknown variant" message.
        let variant = seed.deserialize(self.kind.into_deserializer())?;
        Ok((variant, self))
    }
}

impl<'de> VariantAccess<'de> for Tagged<'_, 'de> {
    type Error = serde_json::Error;

    /// A command without fields (`rooms`): the rest of the object is not looked at;
    /// the envelope pass has already checked that it is valid JSON.
    fn unit_variant(self) -> Result<(), Self::Error> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, Self::Error> {
        seed.deserialize(self.body)
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.body.deserialize_seq(visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.body.deserialize_struct("", fields, visitor)
    }
}

/// serde_json's message without its " at line L column C" suffix: clients send one line
/// of JSON, and our own messages must come through verbatim.
fn without_position(err: &serde_json::Error) -> String {
    let message = err.to_string();
    if err.line() == 0 {
        return message;
    }
    let suffix = format!(" at line {} column {}", err.line(), err.column());
    message
        .strip_suffix(&suffix)
        .map(str::to_owned)
        .unwrap_or(message)
}

/// Turns serde's description of a failed decode into the protocol's error code.
///
/// serde reports missing fields and unknown tags with fixed phrases, and our own
/// validated types prefix their message with their code (see
/// [`ValidationError`](super::ValidationError)).
fn classify(serde_message: &str) -> ProtocolError {
    if let Some((code, message)) = serde_message.split_once(": ") {
        if let Ok(code) = code.parse::<ErrorCode>() {
            return ProtocolError::new(code, message);
        }
    }
    let code = if serde_message.starts_with("missing field") {
        ErrorCode::MissingField
    } else if serde_message.starts_with("unknown variant") {
        ErrorCode::UnknownType
    } else {
        ErrorCode::BadJson
    };
    ProtocolError::new(code, serde_message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        cmd::{Echo, ListRooms, Whisper},
        protocol::MemberId,
    };

    fn code_of(text: &str) -> ErrorCode {
        match decode(text) {
            Inbound::Rejected { error, .. } => error.code,
            other => panic!("expected a rejection for {text}, got {other:?}"),
        }
    }

    #[test]
    fn type_must_be_a_string() {
        assert_eq!(code_of(r#"{"type":null}"#), ErrorCode::BadJson);
        assert_eq!(code_of(r#"{"type":5}"#), ErrorCode::BadJson);
        assert_eq!(code_of(r#"{"type":{"a":1}}"#), ErrorCode::BadJson);
        assert_eq!(code_of(r#"{"text":"x"}"#), ErrorCode::MissingField);
    }

    #[test]
    fn escaped_strings_and_unknown_fields_decode() {
        assert_eq!(
            decode(r#"{"type":"ec\u0068o","text":"a\"b","ref":"r\u0031","x":[1,{"y":null}]}"#),
            Inbound::Command {
                reference: Some(Ref::parse("r1").unwrap()),
                command: Command::Echo(Echo {
                    text: "a\"b".into()
                }),
            }
        );
        assert_eq!(
            decode(r#"{"extra":{"nested":[true,false]},"type":"rooms"}"#),
            Inbound::Command {
                reference: None,
                command: Command::Rooms(ListRooms::default()),
            }
        );
    }

    #[test]
    fn unknown_types_name_the_known_ones() {
        match decode(r#"{"type":"dance","ref":"r"}"#) {
            Inbound::Rejected { reference, error } => {
                assert_eq!(reference.unwrap().as_str(), "r");
                assert_eq!(error.code, ErrorCode::UnknownType);
                assert!(error.message.contains("`say`"), "{}", error.message);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_field_of_the_wrong_type_is_bad_json_with_the_ref() {
        match decode(r#"{"type":"say","room":"a","text":7,"ref":"q"}"#) {
            Inbound::Rejected { reference, error } => {
                assert_eq!(reference.unwrap().as_str(), "q");
                assert_eq!(error.code, ErrorCode::BadJson);
                assert!(!error.message.contains("line 1"), "{}", error.message);
            }
            other => panic!("{other:?}"),
        }
    }

    fn rejected_code(text: &str) -> ErrorCode {
        match decode(text) {
            Inbound::Rejected { error, .. } => error.code,
            other => panic!("expected a rejection for {text}, got {other:?}"),
        }
    }

    #[test]
    fn decodes_every_command() {
        let cases = [
            (
                r#"{"type":"echo","text":"hi"}"#,
                Command::Echo(Echo { text: "hi".into() }),
            ),
            (r#"{"type":"rooms"}"#, Command::Rooms(ListRooms::default())),
            (
                r#"{"type":"whisper","to":"7","text":"psst"}"#,
                Command::Whisper(Whisper {
                    to: MemberId(7),
                    text: "psst".into(),
                }),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(
                decode(text),
                Inbound::Command {
                    reference: None,
                    command: expected
                }
            );
        }
    }

    #[test]
    fn maps_failures_to_codes() {
        assert_eq!(rejected_code(r#"{"type":"join"}"#), ErrorCode::MissingField);
        assert_eq!(rejected_code(r#"{"room":"a"}"#), ErrorCode::MissingField);
        assert_eq!(rejected_code(r#"{"type":"dance"}"#), ErrorCode::UnknownType);
        assert_eq!(
            rejected_code(r#"{"type":"join","room":"a b"}"#),
            ErrorCode::InvalidRoom
        );
        assert_eq!(
            rejected_code(r#"{"type":"join","room":5}"#),
            ErrorCode::BadJson
        );
        assert_eq!(
            rejected_code(r#"{"type":"rename","name":"  "}"#),
            ErrorCode::InvalidName
        );
        assert_eq!(
            rejected_code(r#"{"type":"whisper","to":"x","text":""}"#),
            ErrorCode::UnknownMember
        );
        assert_eq!(rejected_code(r#"{"type":"join","#), ErrorCode::BadJson);
        assert_eq!(
            rejected_code(r#"{"type":"rooms","ref":7}"#),
            ErrorCode::BadJson
        );
    }

    #[test]
    fn non_objects_are_plain_text() {
        assert_eq!(decode("hello"), Inbound::Plain("hello".into()));
        assert_eq!(decode("[1,2]"), Inbound::Plain("[1,2]".into()));
        assert_eq!(decode("42"), Inbound::Plain("42".into()));
    }

    #[test]
    fn ref_is_kept_even_when_the_command_fails() {
        match decode(r#"{"type":"dance","ref":"r1"}"#) {
            Inbound::Rejected { reference, .. } => assert_eq!(reference.unwrap().as_str(), "r1"),
            other => panic!("{other:?}"),
        }
    }
}
