//! One knob of an experiment and its value: what a `[workload]` key sets and what a
//! sweep varies. The names are the command line's (`backend`, `read_strategy`, ...),
//! and so are the values (`epoll-et`, `short-read`, `4K`, `500ms`).

use crate::backend::Backend;
use crate::names::named_enum;
use crate::protocol::Protocol;
use crate::server::{Model, ReadStrategy};
use crate::transfer::Method;
use crate::units::{parse_duration, parse_size};
use std::time::Duration;

named_enum! {
    /// What an experiment measures: each kind has its own settings.
    pub enum Kind {
        /// The echo server under the load generator (like `compare`).
        Echo => "echo",
        /// libevent's socketpair ring: the multiplexer alone.
        Dispatch => "dispatch",
        /// A file over loopback TCP (like `transfer`).
        Transfer => "transfer",
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Setting {
    Backend(Backend),
    Model(Model),
    ServerThreads(usize),
    Connections(usize),
    IdleConnections(usize),
    Payload(usize),
    Pipeline(usize),
    Protocol(Protocol),
    BufferSize(usize),
    ReadStrategy(ReadStrategy),
    Duration(Duration),
    Warmup(Duration),
    Descriptors(usize),
    Active(usize),
    Writes(usize),
    Iterations(usize),
    Method(Method),
    FileSize(usize),
    Chunk(usize),
    Cold(bool),
}

type Parse = fn(&toml::Value) -> Result<Setting, String>;

/// Every key, the kinds it belongs to, and how its value is read.
const KEYS: &[(&str, &[Kind], Parse)] = {
    use Kind::*;
    use Setting as S;
    &[
        ("backend", &[Echo, Dispatch], |v| {
            choice::<Backend>(v).map(S::Backend)
        }),
        ("model", &[Echo], |v| choice::<Model>(v).map(S::Model)),
        ("server_threads", &[Echo], |v| {
            count(v, 1).map(S::ServerThreads)
        }),
        ("connections", &[Echo], |v| count(v, 1).map(S::Connections)),
        ("idle_connections", &[Echo], |v| {
            count(v, 0).map(S::IdleConnections)
        }),
        ("payload", &[Echo], |v| size(v).map(S::Payload)),
        ("pipeline", &[Echo], |v| count(v, 1).map(S::Pipeline)),
        ("protocol", &[Echo], |v| {
            choice::<Protocol>(v).map(S::Protocol)
        }),
        ("buffer_size", &[Echo], |v| size(v).map(S::BufferSize)),
        ("read_strategy", &[Echo], |v| {
            choice::<ReadStrategy>(v).map(S::ReadStrategy)
        }),
        ("duration", &[Echo], |v| duration(v).map(S::Duration)),
        ("warmup", &[Echo], |v| duration(v).map(S::Warmup)),
        ("descriptors", &[Dispatch], |v| {
            count(v, 2).map(S::Descriptors)
        }),
        ("active", &[Dispatch], |v| count(v, 1).map(S::Active)),
        ("writes", &[Dispatch], |v| count(v, 0).map(S::Writes)),
        ("iterations", &[Dispatch], |v| {
            count(v, 1).map(S::Iterations)
        }),
        ("method", &[Transfer], |v| {
            choice::<Method>(v).map(S::Method)
        }),
        ("file_size", &[Transfer], |v| size(v).map(S::FileSize)),
        ("chunk", &[Transfer], |v| size(v).map(S::Chunk)),
        ("cold", &[Transfer], |v| {
            v.as_bool()
                .map(S::Cold)
                .ok_or_else(|| "give true or false".to_string())
        }),
    ]
};

impl Setting {
    /// Reads `key = value` for an experiment of `kind`.
    pub fn parse(kind: Kind, key: &str, value: &toml::Value) -> Result<Setting, String> {
        let Some((_, kinds, parse)) = KEYS.iter().find(|(k, ..)| *k == key) else {
            return Err(format!(
                "`{key}` is not a setting; the settings of {} experiments: {}",
                kind.name(),
                Self::keys(kind).join(", ")
            ));
        };
        if !kinds.contains(&kind) {
            return Err(format!(
                "`{key}` is not a setting of {} experiments; theirs: {}",
                kind.name(),
                Self::keys(kind).join(", ")
            ));
        }
        parse(value).map_err(|e| format!("{key} = {value}: {e}"))
    }

    pub fn keys(kind: Kind) -> Vec<&'static str> {
        KEYS.iter()
            .filter(|(_, kinds, _)| kinds.contains(&kind))
            .map(|(k, ..)| *k)
            .collect()
    }

    pub fn key(&self) -> &'static str {
        match self {
            Setting::Backend(_) => "backend",
            Setting::Model(_) => "model",
            Setting::ServerThreads(_) => "server_threads",
            Setting::Connections(_) => "connections",
            Setting::IdleConnections(_) => "idle_connections",
            Setting::Payload(_) => "payload",
            Setting::Pipeline(_) => "pipeline",
            Setting::Protocol(_) => "protocol",
            Setting::BufferSize(_) => "buffer_size",
            Setting::ReadStrategy(_) => "read_strategy",
            Setting::Duration(_) => "duration",
            Setting::Warmup(_) => "warmup",
            Setting::Descriptors(_) => "descriptors",
            Setting::Active(_) => "active",
            Setting::Writes(_) => "writes",
            Setting::Iterations(_) => "iterations",
            Setting::Method(_) => "method",
            Setting::FileSize(_) => "file_size",
            Setting::Chunk(_) => "chunk",
            Setting::Cold(_) => "cold",
        }
    }

    /// The value as a number, for a numeric plot axis; None for a name.
    pub fn number(&self) -> Option<f64> {
        match *self {
            Setting::ServerThreads(n)
            | Setting::Connections(n)
            | Setting::IdleConnections(n)
            | Setting::Payload(n)
            | Setting::Pipeline(n)
            | Setting::BufferSize(n)
            | Setting::Descriptors(n)
            | Setting::Active(n)
            | Setting::Writes(n)
            | Setting::Iterations(n)
            | Setting::FileSize(n)
            | Setting::Chunk(n) => Some(n as f64),
            Setting::Duration(d) | Setting::Warmup(d) => Some(d.as_secs_f64()),
            _ => None,
        }
    }

    /// The value in data files: sizes and counts as plain numbers, the rest as text.
    pub fn datum(&self) -> serde_json::Value {
        match self {
            Setting::Cold(c) => (*c).into(),
            Setting::Duration(_) | Setting::Warmup(_) => self.value().into(),
            _ => match self.number() {
                Some(n) => (n as u64).into(),
                None => self.value().into(),
            },
        }
    }

    /// The value as the command line writes it.
    pub fn value(&self) -> String {
        match *self {
            Setting::Backend(b) => b.name().to_string(),
            Setting::Model(m) => m.name().to_string(),
            Setting::Protocol(p) => p.name().to_string(),
            Setting::ReadStrategy(r) => r.name().to_string(),
            Setting::Method(m) => m.name().to_string(),
            Setting::Cold(true) => "cold".to_string(),
            Setting::Cold(false) => "warm".to_string(),
            Setting::Payload(n)
            | Setting::BufferSize(n)
            | Setting::FileSize(n)
            | Setting::Chunk(n) => size_text(n),
            Setting::Duration(d) | Setting::Warmup(d) => format!("{}ms", d.as_millis()),
            _ => self.number().map_or_else(String::new, |n| n.to_string()),
        }
    }
}

/// `4096` as `4K`, `65536` as `64K`, `100` as `100`.
pub fn size_text(n: usize) -> String {
    match n {
        0 => "0".to_string(),
        n if n % (1 << 30) == 0 => format!("{}G", n >> 30),
        n if n % (1 << 20) == 0 => format!("{}M", n >> 20),
        n if n % (1 << 10) == 0 => format!("{}K", n >> 10),
        n => n.to_string(),
    }
}

/// A name the command line accepts for this enum.
fn choice<T: std::str::FromStr<Err = String>>(v: &toml::Value) -> Result<T, String> {
    v.as_str().ok_or("give a name in quotes")?.parse()
}

fn count(v: &toml::Value, least: usize) -> Result<usize, String> {
    let n = v.as_integer().ok_or("give a whole number")?;
    usize::try_from(n)
        .ok()
        .filter(|&n| n >= least)
        .ok_or_else(|| format!("give a whole number of at least {least}"))
}

/// `4096` or `"4K"`.
fn size(v: &toml::Value) -> Result<usize, String> {
    let n = match v {
        toml::Value::Integer(_) => count(v, 1)?,
        toml::Value::String(s) => parse_size(s)?,
        _ => return Err("give a size: 4096 or \"4K\"".into()),
    };
    if n == 0 {
        return Err("give a size of at least 1 byte".into());
    }
    Ok(n)
}

fn duration(v: &toml::Value) -> Result<Duration, String> {
    parse_duration(
        v.as_str()
            .ok_or("give a duration in quotes, e.g. \"1.5s\"")?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(kind: Kind, key: &str, toml_value: &str) -> Result<Setting, String> {
        let table: toml::Table = format!("v = {toml_value}").parse().unwrap();
        Setting::parse(kind, key, &table["v"])
    }

    #[test]
    fn values_read_as_the_command_line_writes_them() {
        assert_eq!(
            parse(Kind::Echo, "backend", "\"epoll-et\""),
            Ok(Setting::Backend(Backend::EpollEt))
        );
        assert_eq!(
            parse(Kind::Echo, "payload", "\"4K\""),
            Ok(Setting::Payload(4096))
        );
        assert_eq!(parse(Kind::Echo, "payload", "64"), Ok(Setting::Payload(64)));
        assert_eq!(
            parse(Kind::Echo, "read_strategy", "\"short-read\"").map(|s| s.value()),
            Ok("short-read".to_string())
        );
        assert_eq!(Setting::Payload(65536).value(), "64K");
        assert_eq!(Setting::Connections(1000).number(), Some(1000.0));
    }

    #[test]
    fn mistakes_are_explained() {
        let e = parse(Kind::Echo, "backend", "\"kqueue\"").unwrap_err();
        assert!(e.contains("epoll-et"), "{e}");
        let e = parse(Kind::Echo, "descriptors", "100").unwrap_err();
        assert!(e.contains("not a setting of echo"), "{e}");
        let e = parse(Kind::Echo, "conections", "1").unwrap_err();
        assert!(e.contains("connections"), "{e}");
        assert!(parse(Kind::Echo, "connections", "0").is_err());
        assert!(parse(Kind::Echo, "payload", "\"0\"").is_err());
        assert!(parse(Kind::Echo, "duration", "5").is_err());
    }
}
