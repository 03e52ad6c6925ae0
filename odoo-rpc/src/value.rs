//! Serde helpers for Odoo's field values.
//!
//! Odoo reads an empty field as `false` (never `null`) for every type but
//! booleans and numbers. The helpers here turn exactly `false` and `null` into
//! `None`; any other mismatch stays an error (a string where an integer is
//! expected fails, it is not silently dropped).
//!
//! ```
//! use odoo_rpc::value::{Many2One, OdooOption};
//! use serde::Deserialize;
//!
//! #[derive(Deserialize)]
//! struct Partner {
//!     id: i64,
//!     name: String,
//!     // `false` when empty: use the wrapper...
//!     email: OdooOption<String>,
//!     // ...or the function (with `default` so a missing key is `None` too)
//!     #[serde(default, deserialize_with = "odoo_rpc::value::option")]
//!     parent_id: Option<Many2One>,
//!     #[serde(default, with = "odoo_rpc::value::date::option")]
//!     date: Option<chrono::NaiveDate>,
//!     // a boolean field's `false` is a real `false`: plain `bool`
//!     is_company: bool,
//! }
//!
//! let p: Partner = serde_json::from_str(
//!     r#"{"id": 7, "name": "Acme", "email": false, "parent_id": [3, "Holding"],
//!         "date": "2024-02-29", "is_company": false}"#,
//! ).unwrap();
//! assert_eq!(p.email.0, None);
//! assert_eq!(p.parent_id.unwrap().name.as_deref(), Some("Holding"));
//! assert!(!p.is_company);
//! ```

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};

use serde::de::value::{
    BoolDeserializer, BorrowedBytesDeserializer, BorrowedStrDeserializer, BytesDeserializer,
    F64Deserializer, I64Deserializer, MapAccessDeserializer, SeqAccessDeserializer,
    StrDeserializer, StringDeserializer, U64Deserializer,
};
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, Serializer};

/// Deserializes an `Option<T>` where `false` and `null` (and a missing key, with
/// `#[serde(default)]`) are `None`: `#[serde(default, deserialize_with =
/// "odoo_rpc::value::option")]`.
///
/// Do not use it for boolean fields: there `false` is a value, read it as `bool`.
///
/// # Errors
///
/// Any value other than `false`/`null` that `T` rejects.
pub fn option<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    option::deserialize(deserializer)
}

/// `#[serde(with = "odoo_rpc::value::option")]` for `Option<T>` fields: `false`
/// and `null` read as `None`, `None` is written as `false` (Odoo's empty value).
pub mod option {
    use super::{FalsyVisitor, PhantomData};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// `false` and `null` become `None`, anything else must be a `T`.
    ///
    /// # Errors
    ///
    /// Any value other than `false`/`null` that `T` rejects.
    pub fn deserialize<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        deserializer.deserialize_option(FalsyVisitor(PhantomData))
    }

    /// `None` is written as `false`, `Some(v)` as `v`.
    ///
    /// # Errors
    ///
    /// The serializer's errors.
    #[allow(clippy::ref_option)] // the signature serde's `with` requires
    pub fn serialize<S, T>(value: &Option<T>, serializer: S) -> Result<S::Ok, S::Error>
    where
        S: Serializer,
        T: Serialize,
    {
        match value {
            Some(v) => v.serialize(serializer),
            None => serializer.serialize_bool(false),
        }
    }
}

/// Visits any value; `false`, `null` and unit are `None`, everything else is
/// handed to `T` through a deserializer that replays the same value, without
/// buffering it.
struct FalsyVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for FalsyVisitor<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a value, or false/null for none")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        if v {
            T::deserialize(BoolDeserializer::<E>::new(true)).map(Some)
        } else {
            Ok(None)
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        T::deserialize(I64Deserializer::<E>::new(v)).map(Some)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        T::deserialize(U64Deserializer::<E>::new(v)).map(Some)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        T::deserialize(F64Deserializer::<E>::new(v)).map(Some)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        T::deserialize(StrDeserializer::<E>::new(v)).map(Some)
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        T::deserialize(BorrowedStrDeserializer::<E>::new(v)).map(Some)
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        T::deserialize(StringDeserializer::<E>::new(v)).map(Some)
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
        T::deserialize(BytesDeserializer::<E>::new(v)).map(Some)
    }

    fn visit_borrowed_bytes<E: de::Error>(self, v: &'de [u8]) -> Result<Self::Value, E> {
        T::deserialize(BorrowedBytesDeserializer::<E>::new(v)).map(Some)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        T::deserialize(SeqAccessDeserializer::new(seq)).map(Some)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map)).map(Some)
    }
}

/// An `Option` that reads Odoo's `false` (and `null`, and a missing key) as
/// `None` and writes `None` as `false`.
///
/// Use it for any non-boolean field that can be empty: `OdooOption<String>`,
/// `OdooOption<Many2One>`, `OdooOption<f64>`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OdooOption<T>(pub Option<T>);

impl<T> OdooOption<T> {
    /// The inner `Option`.
    #[must_use]
    pub fn into_option(self) -> Option<T> {
        self.0
    }
}

impl<T> Deref for OdooOption<T> {
    type Target = Option<T>;

    fn deref(&self) -> &Option<T> {
        &self.0
    }
}

impl<T> DerefMut for OdooOption<T> {
    fn deref_mut(&mut self) -> &mut Option<T> {
        &mut self.0
    }
}

impl<T> From<Option<T>> for OdooOption<T> {
    fn from(value: Option<T>) -> Self {
        Self(value)
    }
}

impl<T> From<OdooOption<T>> for Option<T> {
    fn from(value: OdooOption<T>) -> Self {
        value.0
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OdooOption<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        option::deserialize(deserializer).map(Self)
    }
}

impl<T: Serialize> Serialize for OdooOption<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        option::serialize(&self.0, serializer)
    }
}

/// A many2one value: `[id, "display name"]` as read by `read`/`search_read`, a
/// bare id (with `load: null`), or `{"id": .., "display_name": ..}` (`web_read`).
///
/// An empty many2one is `false`: read it as `OdooOption<Many2One>` or with
/// [`option()`]. Serializes as the bare id, the form `write` and `create` take.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Many2One {
    /// The related record's id.
    pub id: i64,
    /// Its display name, when the server sent one.
    pub name: Option<String>,
}

impl Serialize for Many2One {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(self.id)
    }
}

impl<'de> Deserialize<'de> for Many2One {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct M2oVisitor;

        impl<'de> Visitor<'de> for M2oVisitor {
            type Value = Many2One;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a many2one: [id, name] or an id (read false with OdooOption)")
            }

            fn visit_i64<E: de::Error>(self, id: i64) -> Result<Many2One, E> {
                Ok(Many2One { id, name: None })
            }

            fn visit_u64<E: de::Error>(self, id: u64) -> Result<Many2One, E> {
                let id = i64::try_from(id)
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(id), &self))?;
                Ok(Many2One { id, name: None })
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Many2One, A::Error> {
                let id: i64 = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let name: Option<OdooOption<String>> = seq.next_element()?;
                if seq.next_element::<IgnoredAny>()?.is_some() {
                    return Err(de::Error::invalid_length(3, &self));
                }
                Ok(Many2One {
                    id,
                    name: name.and_then(OdooOption::into_option),
                })
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Many2One, A::Error> {
                let mut id = None;
                let mut name = None;
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    match key.as_ref() {
                        "id" => id = Some(map.next_value::<i64>()?),
                        "display_name" | "name" => {
                            name = map.next_value::<OdooOption<String>>()?.0;
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                let id = id.ok_or_else(|| de::Error::missing_field("id"))?;
                Ok(Many2One { id, name })
            }
        }

        deserializer.deserialize_any(M2oVisitor)
    }
}

/// An x2many write command, for the value of a one2many/many2many field in
/// `create`/`write`. `V` is the values of a created/updated record.
///
/// Serializes to Odoo's triplets: `[0, 0, vals]`, `[1, id, vals]`, `[2, id, 0]`,
/// `[3, id, 0]`, `[4, id, 0]`, `[5, 0, 0]`, `[6, 0, ids]`.
#[derive(Clone, Debug, PartialEq)]
pub enum X2ManyCommand<V = serde_json::Value> {
    /// `[0, 0, vals]`: create a record and link it.
    Create(V),
    /// `[1, id, vals]`: update the linked record `id`.
    Update(i64, V),
    /// `[2, id, 0]`: delete the record `id` (and unlink it).
    Delete(i64),
    /// `[3, id, 0]`: unlink `id` without deleting it.
    Unlink(i64),
    /// `[4, id, 0]`: link the existing record `id`.
    Link(i64),
    /// `[5, 0, 0]`: unlink every record.
    Clear,
    /// `[6, 0, ids]`: replace the links with `ids`.
    Set(Vec<i64>),
}

impl<V: Serialize> Serialize for X2ManyCommand<V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Create(vals) => (0, 0, vals).serialize(serializer),
            Self::Update(id, vals) => (1, id, vals).serialize(serializer),
            Self::Delete(id) => (2, id, 0).serialize(serializer),
            Self::Unlink(id) => (3, id, 0).serialize(serializer),
            Self::Link(id) => (4, id, 0).serialize(serializer),
            Self::Clear => (5, 0, 0).serialize(serializer),
            Self::Set(ids) => (6, 0, ids).serialize(serializer),
        }
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for X2ManyCommand<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CommandVisitor<V>(PhantomData<V>);

        impl<'de, V: Deserialize<'de>> Visitor<'de> for CommandVisitor<V> {
            type Value = X2ManyCommand<V>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an x2many command [code, id, value]")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let code: u8 = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let id = |id: Option<OdooOption<i64>>| id.and_then(|i| i.0).unwrap_or_default();
                let command = match code {
                    0 => {
                        seq.next_element::<IgnoredAny>()?;
                        let vals = seq
                            .next_element()?
                            .ok_or_else(|| de::Error::invalid_length(2, &self))?;
                        X2ManyCommand::Create(vals)
                    }
                    1 => {
                        let record = id(seq.next_element()?);
                        let vals = seq
                            .next_element()?
                            .ok_or_else(|| de::Error::invalid_length(2, &self))?;
                        X2ManyCommand::Update(record, vals)
                    }
                    2..=4 => {
                        let record = id(seq.next_element()?);
                        seq.next_element::<IgnoredAny>()?;
                        match code {
                            2 => X2ManyCommand::Delete(record),
                            3 => X2ManyCommand::Unlink(record),
                            _ => X2ManyCommand::Link(record),
                        }
                    }
                    5 => {
                        seq.next_element::<IgnoredAny>()?;
                        seq.next_element::<IgnoredAny>()?;
                        X2ManyCommand::Clear
                    }
                    6 => {
                        seq.next_element::<IgnoredAny>()?;
                        let ids = seq
                            .next_element()?
                            .ok_or_else(|| de::Error::invalid_length(2, &self))?;
                        X2ManyCommand::Set(ids)
                    }
                    other => {
                        return Err(de::Error::invalid_value(
                            de::Unexpected::Unsigned(u64::from(other)),
                            &"a command code from 0 to 6",
                        ))
                    }
                };
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(command)
            }
        }

        deserializer.deserialize_seq(CommandVisitor(PhantomData))
    }
}

/// Odoo dates (`"YYYY-MM-DD"`) as `chrono::NaiveDate`:
/// `#[serde(with = "odoo_rpc::value::date")]`, or `date::option` for a field
/// that can be empty (`false`).
pub mod date {
    use chrono::NaiveDate;
    use serde::{Deserialize, Deserializer, Serializer};

    /// The wire format.
    pub const FORMAT: &str = "%Y-%m-%d";

    /// A `NaiveDate` read from Odoo's format.
    pub(crate) struct Repr(pub(crate) NaiveDate);

    impl<'de> Deserialize<'de> for Repr {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            super::parse_str(deserializer, "a date \"YYYY-MM-DD\"", |s| {
                NaiveDate::parse_from_str(s, FORMAT).ok()
            })
            .map(Repr)
        }
    }

    /// Writes `"YYYY-MM-DD"`.
    ///
    /// # Errors
    ///
    /// The serializer's errors.
    pub fn serialize<S: Serializer>(date: &NaiveDate, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&date.format(FORMAT))
    }

    /// Reads `"YYYY-MM-DD"`.
    ///
    /// # Errors
    ///
    /// Anything else, `false` included (use [`option`] for empty dates).
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<NaiveDate, D::Error> {
        Repr::deserialize(deserializer).map(|r| r.0)
    }

    /// `Option<NaiveDate>`: `false`/`null` are `None`, `None` is written `false`.
    pub mod option {
        use chrono::NaiveDate;
        use serde::{Deserializer, Serializer};

        /// Writes `"YYYY-MM-DD"` or `false`.
        ///
        /// # Errors
        ///
        /// The serializer's errors.
        #[allow(clippy::ref_option)] // the signature serde's `with` requires
        pub fn serialize<S: Serializer>(
            date: &Option<NaiveDate>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            match date {
                Some(date) => super::serialize(date, serializer),
                None => serializer.serialize_bool(false),
            }
        }

        /// Reads `"YYYY-MM-DD"`, `false` or `null`.
        ///
        /// # Errors
        ///
        /// Any other value.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<NaiveDate>, D::Error> {
            crate::value::option::deserialize::<D, super::Repr>(deserializer)
                .map(|d| d.map(|r| r.0))
        }
    }
}

/// Odoo datetimes (`"YYYY-MM-DD HH:MM:SS"`, always UTC) as
/// `chrono::DateTime<Utc>`: `#[serde(with = "odoo_rpc::value::datetime")]`, or
/// `datetime::option` for a field that can be empty. Fractional seconds are
/// accepted when reading.
pub mod datetime {
    use chrono::{DateTime, NaiveDateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    /// The wire format.
    pub const FORMAT: &str = "%Y-%m-%d %H:%M:%S";

    pub(crate) struct Repr(pub(crate) DateTime<Utc>);

    impl<'de> Deserialize<'de> for Repr {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            super::parse_str(deserializer, "a datetime \"YYYY-MM-DD HH:MM:SS\"", |s| {
                NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
                    .ok()
                    .map(|naive| naive.and_utc())
            })
            .map(Repr)
        }
    }

    /// Writes `"YYYY-MM-DD HH:MM:SS"` in UTC.
    ///
    /// # Errors
    ///
    /// The serializer's errors.
    pub fn serialize<S: Serializer>(
        datetime: &DateTime<Utc>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&datetime.format(FORMAT))
    }

    /// Reads `"YYYY-MM-DD HH:MM:SS"` as UTC.
    ///
    /// # Errors
    ///
    /// Anything else, `false` included (use [`option`] for empty datetimes).
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<DateTime<Utc>, D::Error> {
        Repr::deserialize(deserializer).map(|r| r.0)
    }

    /// `Option<DateTime<Utc>>`: `false`/`null` are `None`, `None` is written `false`.
    pub mod option {
        use chrono::{DateTime, Utc};
        use serde::{Deserializer, Serializer};

        /// Writes `"YYYY-MM-DD HH:MM:SS"` or `false`.
        ///
        /// # Errors
        ///
        /// The serializer's errors.
        #[allow(clippy::ref_option)] // the signature serde's `with` requires
        pub fn serialize<S: Serializer>(
            datetime: &Option<DateTime<Utc>>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            match datetime {
                Some(datetime) => super::serialize(datetime, serializer),
                None => serializer.serialize_bool(false),
            }
        }

        /// Reads `"YYYY-MM-DD HH:MM:SS"`, `false` or `null`.
        ///
        /// # Errors
        ///
        /// Any other value.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<DateTime<Utc>>, D::Error> {
            crate::value::option::deserialize::<D, super::Repr>(deserializer)
                .map(|d| d.map(|r| r.0))
        }
    }
}

/// Reads a string and parses it with `parse`; errors name `expected`.
fn parse_str<'de, D, T>(
    deserializer: D,
    expected: &'static str,
    parse: fn(&str) -> Option<T>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct StrVisitor<T> {
        expected: &'static str,
        parse: fn(&str) -> Option<T>,
    }

    impl<T> Visitor<'_> for StrVisitor<T> {
        type Value = T;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.expected)
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            (self.parse)(v).ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
        }
    }

    deserializer.deserialize_str(StrVisitor { expected, parse })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, TimeZone, Utc};
    use serde::{Deserialize, Serialize};
    use serde_json::json;

    #[derive(Debug, Deserialize, Serialize, PartialEq)]
    struct Row {
        #[serde(default, with = "crate::value::option")]
        count: Option<i64>,
        #[serde(default, deserialize_with = "crate::value::option")]
        name: Option<String>,
    }

    #[test]
    fn false_and_null_are_none() {
        let row: Row = serde_json::from_value(json!({"count": false, "name": null})).unwrap();
        assert_eq!(
            row,
            Row {
                count: None,
                name: None
            }
        );
        let row: Row = serde_json::from_str(r#"{"count": false, "name": false}"#).unwrap();
        assert_eq!(
            row,
            Row {
                count: None,
                name: None
            }
        );
        let row: Row = serde_json::from_str("{}").unwrap();
        assert_eq!(
            row,
            Row {
                count: None,
                name: None
            }
        );
        let row: Row = serde_json::from_str(r#"{"count": 5, "name": "x"}"#).unwrap();
        assert_eq!(
            row,
            Row {
                count: Some(5),
                name: Some("x".into())
            }
        );
    }

    #[test]
    fn other_mismatches_are_errors() {
        assert!(serde_json::from_str::<Row>(r#"{"count": "abc"}"#).is_err());
        assert!(serde_json::from_str::<Row>(r#"{"count": true}"#).is_err());
        assert!(serde_json::from_str::<Row>(r#"{"count": 1.5}"#).is_err());
        assert!(serde_json::from_str::<Row>(r#"{"name": 12}"#).is_err());
        assert!(serde_json::from_str::<OdooOption<i64>>(r#""abc""#).is_err());
        assert!(serde_json::from_str::<OdooOption<i64>>("[1]").is_err());
        // and through a Value too
        assert!(serde_json::from_value::<OdooOption<i64>>(json!("abc")).is_err());
    }

    #[test]
    fn writes_none_as_false() {
        let row = Row {
            count: None,
            name: Some("x".into()),
        };
        assert_eq!(
            serde_json::to_value(&row).unwrap(),
            json!({"count": false, "name": "x"})
        );
        assert_eq!(
            serde_json::to_value(OdooOption::<i64>(None)).unwrap(),
            json!(false)
        );
        assert_eq!(serde_json::to_value(OdooOption(Some(3))).unwrap(), json!(3));
    }

    #[test]
    fn odoo_option_of_every_shape() {
        let v: OdooOption<f64> = serde_json::from_str("3").unwrap();
        assert_eq!(v.0, Some(3.0));
        let v: OdooOption<Vec<i64>> = serde_json::from_str("[1,2]").unwrap();
        assert_eq!(v.0, Some(vec![1, 2]));
        let v: OdooOption<serde_json::Map<String, serde_json::Value>> =
            serde_json::from_str(r#"{"a":1}"#).unwrap();
        assert_eq!(v.0.unwrap()["a"], 1);
        let v: OdooOption<String> = serde_json::from_str(r#""a\"b""#).unwrap();
        assert_eq!(v.0.as_deref(), Some("a\"b"));
        let v: OdooOption<&str> = serde_json::from_str(r#""borrowed""#).unwrap();
        assert_eq!(v.0, Some("borrowed"));
        let v: OdooOption<u64> = serde_json::from_str("18446744073709551615").unwrap();
        assert_eq!(v.0, Some(u64::MAX));
        // a true where a bool is expected is kept
        let v: OdooOption<bool> = serde_json::from_str("true").unwrap();
        assert_eq!(v.0, Some(true));
    }

    #[test]
    fn false_for_a_bool_field_is_false() {
        #[derive(Deserialize)]
        struct R {
            active: bool,
            flag: Option<bool>,
        }
        let r: R = serde_json::from_str(r#"{"active": false, "flag": false}"#).unwrap();
        assert!(!r.active);
        assert_eq!(r.flag, Some(false));
    }

    #[test]
    fn many2one_shapes() {
        let m: Many2One = serde_json::from_str(r#"[3, "Acme"]"#).unwrap();
        assert_eq!(
            m,
            Many2One {
                id: 3,
                name: Some("Acme".into())
            }
        );
        let m: Many2One = serde_json::from_str("3").unwrap();
        assert_eq!(m, Many2One { id: 3, name: None });
        let m: Many2One = serde_json::from_str(r#"[3, false]"#).unwrap();
        assert_eq!(m.name, None);
        let m: Many2One = serde_json::from_str(r#"{"id": 4, "display_name": "B"}"#).unwrap();
        assert_eq!(
            m,
            Many2One {
                id: 4,
                name: Some("B".into())
            }
        );
        let m: OdooOption<Many2One> = serde_json::from_str("false").unwrap();
        assert_eq!(m.0, None);
        let m: Option<Many2One> =
            option(&mut serde_json::Deserializer::from_str(r#"[1,"x"]"#)).unwrap();
        assert_eq!(m.map(|m| m.id), Some(1));
        assert!(serde_json::from_str::<Many2One>("false").is_err());
        assert!(serde_json::from_str::<Many2One>(r#""3""#).is_err());
        assert!(serde_json::from_str::<Many2One>(r#"[3, "a", "b"]"#).is_err());
        assert!(serde_json::from_str::<Many2One>("[]").is_err());
        assert!(serde_json::from_str::<Many2One>(r#"["x", "a"]"#).is_err());
        assert!(serde_json::from_str::<Many2One>("-1").is_ok());
        assert_eq!(
            serde_json::to_value(Many2One { id: 9, name: None }).unwrap(),
            json!(9)
        );
    }

    #[test]
    fn x2many_commands_serialize_to_triplets() {
        let commands: Vec<X2ManyCommand> = vec![
            X2ManyCommand::Create(json!({"name": "a"})),
            X2ManyCommand::Update(7, json!({"name": "b"})),
            X2ManyCommand::Delete(8),
            X2ManyCommand::Unlink(9),
            X2ManyCommand::Link(10),
            X2ManyCommand::Clear,
            X2ManyCommand::Set(vec![1, 2]),
        ];
        let value = serde_json::to_value(&commands).unwrap();
        assert_eq!(
            value,
            json!([[0, 0, {"name": "a"}], [1, 7, {"name": "b"}], [2, 8, 0], [3, 9, 0], [4, 10, 0], [5, 0, 0], [6, 0, [1, 2]]])
        );
        let back: Vec<X2ManyCommand> = serde_json::from_value(value).unwrap();
        assert_eq!(back, commands);
        // Odoo also writes false for unused slots
        let c: X2ManyCommand = serde_json::from_value(json!([4, 3, false])).unwrap();
        assert_eq!(c, X2ManyCommand::Link(3));
        assert!(serde_json::from_value::<X2ManyCommand>(json!([9, 0, 0])).is_err());
        assert!(serde_json::from_value::<X2ManyCommand>(json!([])).is_err());
    }

    #[test]
    fn dates() {
        #[derive(Debug, Deserialize, Serialize, PartialEq)]
        struct D {
            #[serde(with = "crate::value::date")]
            day: NaiveDate,
            #[serde(default, with = "crate::value::date::option")]
            maybe: Option<NaiveDate>,
        }
        let d: D = serde_json::from_str(r#"{"day": "2024-02-29", "maybe": false}"#).unwrap();
        assert_eq!(d.day, NaiveDate::from_ymd_opt(2024, 2, 29).unwrap());
        assert_eq!(d.maybe, None);
        assert_eq!(
            serde_json::to_value(&d).unwrap(),
            json!({"day": "2024-02-29", "maybe": false})
        );
        assert!(serde_json::from_str::<D>(r#"{"day": "2023-02-29"}"#).is_err());
        assert!(serde_json::from_str::<D>(r#"{"day": false}"#).is_err());
        assert!(
            serde_json::from_str::<D>(r#"{"day": "2024-01-01", "maybe": "01/02/2024"}"#).is_err()
        );
        let d: D = serde_json::from_str(r#"{"day": "2024-01-01", "maybe": "2024-01-02"}"#).unwrap();
        assert_eq!(d.maybe, NaiveDate::from_ymd_opt(2024, 1, 2));
    }

    #[test]
    fn datetimes() {
        #[derive(Debug, Deserialize, Serialize, PartialEq)]
        struct T {
            #[serde(with = "crate::value::datetime")]
            at: chrono::DateTime<Utc>,
            #[serde(default, with = "crate::value::datetime::option")]
            maybe: Option<chrono::DateTime<Utc>>,
        }
        let t: T = serde_json::from_str(r#"{"at": "2024-03-01 13:05:09", "maybe": null}"#).unwrap();
        assert_eq!(t.at, Utc.with_ymd_and_hms(2024, 3, 1, 13, 5, 9).unwrap());
        assert_eq!(t.maybe, None);
        assert_eq!(
            serde_json::to_value(&t).unwrap(),
            json!({"at": "2024-03-01 13:05:09", "maybe": false})
        );
        let t: T = serde_json::from_str(
            r#"{"at": "2024-03-01 13:05:09.123456", "maybe": "2024-03-02 00:00:00"}"#,
        )
        .unwrap();
        assert_eq!(t.at.timestamp_subsec_micros(), 123_456);
        assert!(t.maybe.is_some());
        assert!(serde_json::from_str::<T>(r#"{"at": "2024-03-01T13:05:09Z"}"#).is_err());
        assert!(serde_json::from_str::<T>(r#"{"at": "2024-03-01"}"#).is_err());
        assert!(serde_json::from_str::<T>(r#"{"at": 1709298309}"#).is_err());
    }
}
