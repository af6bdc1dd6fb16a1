//! Enums chosen by name: on the command line, in experiment files, in JSON and in
//! tables. Each value's name is written once, in its `named_enum!` invocation, and
//! `name()`, `FromStr`, `Display`, clap's `ValueEnum` and serde all read it there.
//!
//! Layer: the bottom; uses nothing of ours.

/// A field-less enum with `ALL`, `COUNT` and a stable name per value. The doc
/// comment of a value is its help text on the command line.
macro_rules! named_enum {
    ($(#[$m:meta])* $vis:vis enum $name:ident {
        $($(#[doc = $doc:literal])* $var:ident => $text:literal,)*
    }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        $vis enum $name { $($(#[doc = $doc])* $var,)* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$var,)*];
            pub const COUNT: usize = $name::ALL.len();

            pub fn name(self) -> &'static str {
                match self { $($name::$var => $text,)* }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(text: &str) -> Result<Self, String> {
                $name::ALL.iter().copied().find(|v| v.name() == text).ok_or_else(|| {
                    let names: Vec<&str> = $name::ALL.iter().map(|v| v.name()).collect();
                    format!("`{text}` is not one of: {}", names.join(", "))
                })
            }
        }

        impl clap::ValueEnum for $name {
            fn value_variants<'a>() -> &'a [Self] {
                $name::ALL
            }
            fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
                let help: &str = match self { $($name::$var => concat!($($doc),*),)* };
                let value = clap::builder::PossibleValue::new(self.name());
                Some(match help.trim() {
                    "" => value,
                    help => value.help(help.to_string()),
                })
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.name())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

pub(crate) use named_enum;

#[cfg(test)]
mod tests {
    named_enum! {
        /// A test enum.
        enum Colour {
            /// the first
            /// of two lines
            Red => "red",
            Dark => "dark-blue",
        }
    }

    #[test]
    fn names_parse_print_and_serialise_the_same() {
        use clap::ValueEnum;
        for &c in Colour::ALL {
            assert_eq!(c.name().parse::<Colour>(), Ok(c));
            assert_eq!(c.to_string(), c.name());
            assert_eq!(serde_json::to_string(&c).unwrap(), format!("\"{c}\""));
            assert_eq!(
                serde_json::from_str::<Colour>(&format!("\"{c}\"")).unwrap(),
                c
            );
            assert_eq!(c.to_possible_value().unwrap().get_name(), c.name());
        }
        assert_eq!(
            "blue".parse::<Colour>(),
            Err("`blue` is not one of: red, dark-blue".to_string())
        );
        let help = Colour::Red.to_possible_value().unwrap();
        assert_eq!(
            help.get_help().unwrap().to_string(),
            "the first of two lines"
        );
        assert_eq!(Colour::COUNT, 2);
    }
}
