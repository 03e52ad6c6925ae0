//! Blue/green slots.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Error;

/// One of the two slots of a blue/green deployment.
///
/// Written in lower case everywhere (TOML, JSON, command lines): `"blue"`, `"green"`.
/// [`FromStr`] also accepts any letter case.
///
/// ```
/// use deploy_core::Slot;
///
/// let live: Slot = "blue".parse()?;
/// assert_eq!(live.other(), Slot::Green);
/// assert_eq!(live.to_string(), "blue");
/// # Ok::<(), deploy_core::Error>(())
/// ```
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Slot {
    /// The blue slot.
    Blue,
    /// The green slot.
    Green,
}

impl Slot {
    /// Both slots, blue first.
    pub const ALL: [Slot; 2] = [Slot::Blue, Slot::Green];

    /// The other slot: the one that is not live (or will be after a switch).
    #[must_use]
    pub const fn other(self) -> Slot {
        match self {
            Slot::Blue => Slot::Green,
            Slot::Green => Slot::Blue,
        }
    }

    /// The lower-case name: `"blue"` or `"green"`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Slot::Blue => "blue",
            Slot::Green => "green",
        }
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Slot {
    type Err = Error;

    /// Parses `blue` or `green`, in any letter case.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownSlot`] for anything else.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Slot::ALL
            .into_iter()
            .find(|slot| slot.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| Error::UnknownSlot {
                value: s.to_owned(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_swaps() {
        assert_eq!(Slot::Blue.other(), Slot::Green);
        assert_eq!(Slot::Green.other(), Slot::Blue);
        for slot in Slot::ALL {
            assert_eq!(slot.other().other(), slot);
        }
    }

    #[test]
    fn display_from_str_round_trip() {
        for slot in Slot::ALL {
            assert_eq!(slot.to_string().parse::<Slot>().unwrap(), slot);
        }
        assert_eq!("GREEN".parse::<Slot>().unwrap(), Slot::Green);
    }

    #[test]
    fn from_str_rejects_unknown() {
        let err = "red".parse::<Slot>().unwrap_err();
        assert!(matches!(err, Error::UnknownSlot { ref value } if value == "red"));
        assert!(matches!("".parse::<Slot>(), Err(Error::UnknownSlot { .. })));
    }

    #[test]
    fn serde_uses_lower_case() {
        assert_eq!(serde_json::to_string(&Slot::Blue).unwrap(), "\"blue\"");
        assert_eq!(
            serde_json::from_str::<Slot>("\"green\"").unwrap(),
            Slot::Green
        );
        assert!(serde_json::from_str::<Slot>("\"Blue\"").is_err());

        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct Doc {
            live: Slot,
        }
        let doc: Doc = toml::from_str("live = \"green\"").unwrap();
        assert_eq!(doc, Doc { live: Slot::Green });
        let text = toml::to_string(&doc).unwrap();
        assert_eq!(text.trim(), "live = \"green\"");
        assert_eq!(toml::from_str::<Doc>(&text).unwrap(), doc);
    }
}
