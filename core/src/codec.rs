//! Serde helpers shared by the wire inputs, the state documents and the errors: secrets in
//! and out, internally tagged values read without serde's buffer, and serde messages with
//! input values removed (they may be secrets).

use serde::{Deserialize, Deserializer, Serializer, de};
use serde_json::Value;

use crate::error::ErrorCode;
use crate::secret::Secret;

/// An internally tagged JSON value (`{"type": "x", ...fields}`, or `["x", ...fields]`) split
/// like serde's internally tagged derive splits it, for a derived externally tagged enum
/// (`remote` mirror) to read: same accepted shapes, same error messages, no `Content` buffer.
pub(crate) struct Tagged {
    tag: Value,
    rest: Value,
    /// Whether an integer tag names a variant by index, as when the tagged value was itself
    /// buffered by an enclosing internally tagged enum (how `refresh_result`'s `result`
    /// was always read).
    index_tags: bool,
}

impl Tagged {
    /// Splits `value`: the `type` field of an object (the other fields, in order, are the
    /// rest), or the first element of an array; `expecting` names the enum in the error
    /// for any other value.
    pub(crate) fn split(
        value: Value,
        expecting: &'static str,
        index_tags: bool,
    ) -> Result<Self, serde_json::Error> {
        let (tag, rest) = match value {
            Value::Object(map) => {
                let mut tag = None;
                let mut rest = serde_json::Map::with_capacity(map.len());
                for (key, value) in map {
                    if key == "type" {
                        tag = Some(value);
                    } else {
                        rest.insert(key, value);
                    }
                }
                (tag, Value::Object(rest))
            }
            Value::Array(items) => {
                let mut items = items.into_iter();
                (items.next(), Value::Array(items.collect()))
            }
            other => {
                let Err(e) = other.deserialize_any(Refuse(expecting));
                return Err(e);
            }
        };
        let tag = tag.ok_or_else(|| de::Error::missing_field("type"))?;
        Ok(Self {
            tag,
            rest,
            index_tags,
        })
    }
}

/// A visitor that accepts nothing: its errors name `.0` as what was expected.
struct Refuse(&'static str);

impl de::Visitor<'_> for Refuse {
    type Value = std::convert::Infallible;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl<'de> Deserializer<'de> for &'de Tagged {
    type Error = serde_json::Error;

    fn deserialize_any<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_enum(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum
        identifier ignored_any
    }
}

impl<'de> de::EnumAccess<'de> for &'de Tagged {
    type Error = serde_json::Error;
    type Variant = Rest<'de>;

    fn variant_seed<S: de::DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Rest<'de>), Self::Error> {
        let variant = match &self.tag {
            // A buffered integer tag is a variant index (serde's `Content` identifiers).
            Value::Number(n) if self.index_tags && n.is_u64() => seed.deserialize(
                de::value::U64Deserializer::new(n.as_u64().unwrap_or_default()),
            )?,
            tag => seed.deserialize(tag)?,
        };
        Ok((variant, Rest(&self.rest)))
    }
}

/// The fields after the tag: an object, or the array after the tag element (read as
/// serde's buffer reads a sequence: fields by position, leftovers refused). Read by
/// reference, as state documents are: one set of field-type instantiations for both.
pub(crate) struct Rest<'a>(&'a Value);

impl<'de> de::VariantAccess<'de> for Rest<'de> {
    type Error = serde_json::Error;

    /// Internally tagged unit variants ignore any other field, but not array elements.
    fn unit_variant(self) -> Result<(), Self::Error> {
        match self.0 {
            Value::Array(items) => de::value::SeqDeserializer::new(items.iter()).end(),
            _ => Ok(()),
        }
    }

    fn newtype_variant_seed<T: de::DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, Self::Error> {
        match self.0 {
            Value::Array(items) => seed.deserialize(de::value::SeqDeserializer::new(items.iter())),
            rest => seed.deserialize(rest),
        }
    }

    fn tuple_variant<V: de::Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.struct_variant(&[], visitor)
    }

    fn struct_variant<V: de::Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Array(items) => {
                de::value::SeqDeserializer::new(items.iter()).deserialize_any(visitor)
            }
            rest => rest.deserialize_any(visitor),
        }
    }
}

/// `T` read from a JSON value, refused with `invalid_input` naming no value (what
/// [`sanitize_serde_error`] keeps of serde's message).
pub(crate) fn from_value<T: de::DeserializeOwned>(value: Value) -> crate::Result<T> {
    T::deserialize(value).map_err(|e| {
        let why = sanitize_serde_error(&e);
        crate::Error::new(ErrorCode::InvalidInput, format!("invalid input: {why}"))
    })
}

/// A serde error's message with every quoted value removed (values may be secrets).
pub(crate) fn sanitize_serde_error(error: &impl std::fmt::Display) -> String {
    // serde quotes strings with `"`, and other values (an unknown variant, a number, a
    // bool, a char) with backticks after these words; backticks elsewhere name what was
    // expected (`api_key` or `oauth`) and are kept.
    const BACKTICK_VALUE_AFTER: [&str; 5] = [
        "variant ",
        "integer ",
        "floating point ",
        "boolean ",
        "character ",
    ];
    let text = error.to_string();
    let mut out = String::with_capacity(text.len().min(300));
    let mut closing: Option<char> = None;
    for ch in text.chars() {
        match (ch, closing) {
            ('"', None) => {
                closing = Some('"');
                out.push_str("\"…");
            }
            ('`', None) if BACKTICK_VALUE_AFTER.iter().any(|w| out.ends_with(w)) => {
                closing = Some('`');
                out.push_str("`…");
            }
            (c, Some(close)) if c == close => {
                closing = None;
                out.push(c);
            }
            (_, Some(_)) => {}
            (c, None) => out.push(c),
        }
        if out.len() > 300 {
            out.push('…');
            break;
        }
    }
    out
}

/// Serialises an optional secret as its text (state documents and `reveal` only).
pub(crate) fn ser_secret<S: Serializer>(
    secret: &Option<Secret>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match secret {
        Some(secret) => serializer.serialize_str(secret.expose()),
        None => serializer.serialize_none(),
    }
}

/// Deserialises an optional secret; empty strings count as absent.
pub(crate) fn de_secret<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Secret>, D::Error> {
    let text: Option<String> = Option::deserialize(deserializer)?;
    Ok(text.filter(|t| !t.is_empty()).map(Secret::new))
}

/// Deserialises a required secret.
pub(crate) fn de_secret_required<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Secret, D::Error> {
    String::deserialize(deserializer).map(Secret::new)
}
