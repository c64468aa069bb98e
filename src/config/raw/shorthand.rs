//! Short forms: a bare name where a block of keys is expected. `train: data.csv` for a file
//! source, `categorical: [user, item]` and `numeric: [age]` for plain features, `label: click`
//! for a 0/1 column. A block keeps its own strict parsing and its own errors.

use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{DeserializeOwned, Deserializer, MapAccess, Visitor, value::MapAccessDeserializer};

/// A block that a bare string can stand for.
pub trait Shorthand: DeserializeOwned {
    /// What the YAML should hold, for type errors.
    const EXPECTING: &'static str;
    fn from_shorthand(name: &str) -> Self;
}

struct Either<T>(PhantomData<T>);

impl<'de, T: Shorthand> Visitor<'de> for Either<T> {
    type Value = T;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(T::EXPECTING)
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<T, E> {
        Ok(T::from_shorthand(v))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map))
    }
}

/// A field that is a block or its short form.
pub fn one<'de, D: Deserializer<'de>, T: Shorthand>(d: D) -> Result<T, D::Error> {
    d.deserialize_any(Either(PhantomData))
}

/// An optional field that is a block or its short form (absent: `None`, with `serde(default)`).
pub fn option<'de, D: Deserializer<'de>, T: Shorthand>(d: D) -> Result<Option<T>, D::Error> {
    one(d).map(Some)
}

/// A list whose items are blocks or their short forms.
pub fn list<'de, D: Deserializer<'de>, T: Shorthand>(d: D) -> Result<Vec<T>, D::Error> {
    struct Item<T>(T);
    impl<'de, T: Shorthand> Deserialize<'de> for Item<T> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            one(d).map(Item)
        }
    }
    Vec::<Item<T>>::deserialize(d).map(|v| v.into_iter().map(|i| i.0).collect())
}
