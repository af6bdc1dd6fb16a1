//! One knob of an experiment and its value: what a `[workload]` key sets and what a
//! sweep varies. The names are the command line's (`backend`, `read_strategy`, ...),
//! and so are the values (`epoll-et`, `short-read`, `4K`, `500ms`).

use crate::backend::Backend;
use crate::bench::RealServer;
use crate::load::Driver;
use crate::names::named_enum;
use crate::protocol::Protocol;
use crate::server::{Model, ReadStrategy, RingSetup};
use crate::transfer::Method;
use crate::units::{CpuList, parse_cpu_list, parse_duration, parse_size};
use std::time::Duration;

named_enum! {
    /// What an experiment measures: each kind has its own settings.
    pub enum Kind {
        /// The echo server under the load generator (like `compare`).
        Echo => "echo",
        /// libevent's socketpair ring: the multiplexer alone, no TCP.
        Ring => "ring",
        /// A file over loopback TCP (like `transfer`).
        Transfer => "transfer",
    }
}

type Parse = fn(&toml::Value) -> Result<Setting, String>;

/// Declares each setting once: its variant and value, its key in experiment files,
/// the kinds of experiment it belongs to, and how its value is read.
macro_rules! settings {
    ($($var:ident($value:ty) = $key:literal for [$($kind:ident),+] by $parse:expr;)*) => {
        #[derive(Clone, Debug, PartialEq)]
        pub enum Setting {
            $($var($value),)*
        }

        impl Setting {
            pub fn key(&self) -> &'static str {
                match self {
                    $(Setting::$var(_) => $key,)*
                }
            }
        }

        /// Every key, the kinds it belongs to, and how its value is read.
        const KEYS: &[(&str, &[Kind], Parse)] = &[
            $(($key, &[$(Kind::$kind),+], |v| ($parse)(v).map(Setting::$var)),)*
        ];
    };
}

settings! {
    Backend(Backend) = "backend" for [Echo, Ring] by choice;
    Model(Model) = "model" for [Echo] by choice;
    ServerThreads(usize) = "server_threads" for [Echo] by |v| count(v, 1);
    External(RealServer) = "external" for [Echo] by choice;
    ServerCpus(CpuList) = "server_cpus" for [Echo] by cpu_list;
    ClientCpus(CpuList) = "client_cpus" for [Echo] by cpu_list;
    Connections(usize) = "connections" for [Echo] by |v| count(v, 1);
    IdleConnections(usize) = "idle_connections" for [Echo] by |v| count(v, 0);
    Payload(usize) = "payload" for [Echo] by size;
    Pipeline(usize) = "pipeline" for [Echo] by |v| count(v, 1);
    Protocol(Protocol) = "protocol" for [Echo] by choice;
    Driver(Driver) = "driver" for [Echo] by choice;
    BufferSize(usize) = "buffer_size" for [Echo] by size;
    ReadStrategy(ReadStrategy) = "read_strategy" for [Echo] by choice;
    Ring(RingSetup) = "ring" for [Echo] by choice;
    KernelCounts(bool) = "kernel_counts" for [Echo] by boolean;
    Duration(Duration) = "duration" for [Echo] by duration;
    Warmup(Duration) = "warmup" for [Echo] by duration;
    Descriptors(usize) = "descriptors" for [Ring] by |v| count(v, 2);
    Active(usize) = "active" for [Ring] by |v| count(v, 1);
    Writes(usize) = "writes" for [Ring] by |v| count(v, 0);
    Iterations(usize) = "iterations" for [Ring] by |v| count(v, 1);
    Method(Method) = "method" for [Transfer] by choice;
    FileSize(usize) = "file_size" for [Transfer] by size;
    Chunk(usize) = "chunk" for [Transfer] by size;
    Cold(bool) = "cold" for [Transfer] by boolean;
}

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
            Setting::Cold(c) | Setting::KernelCounts(c) => (*c).into(),
            Setting::Duration(_) | Setting::Warmup(_) => self.value().into(),
            _ => match self.number() {
                Some(n) => (n as u64).into(),
                None => self.value().into(),
            },
        }
    }

    /// The setting in a label: a name stands alone ("epoll-et"), a number or a CPU
    /// list says what it is ("active=1", "server_cpus=0-3").
    pub fn label(&self) -> String {
        match (self.number(), self) {
            (Some(_), _) | (_, Setting::ServerCpus(_) | Setting::ClientCpus(_)) => {
                format!("{}={}", self.key(), self.value())
            }
            _ => self.value(),
        }
    }

    /// The value as the command line writes it.
    pub fn value(&self) -> String {
        match *self {
            Setting::Backend(b) => b.name().to_string(),
            Setting::Model(m) => m.name().to_string(),
            Setting::Protocol(p) => p.name().to_string(),
            Setting::Driver(d) => d.name().to_string(),
            Setting::ReadStrategy(r) => r.name().to_string(),
            Setting::Ring(r) => r.name().to_string(),
            Setting::Method(m) => m.name().to_string(),
            Setting::External(r) => r.name().to_string(),
            Setting::ServerCpus(ref l) | Setting::ClientCpus(ref l) => l.to_string(),
            Setting::Cold(true) => "cold".to_string(),
            Setting::Cold(false) => "warm".to_string(),
            Setting::KernelCounts(true) => "kernel counts".to_string(),
            Setting::KernelCounts(false) => "own counts".to_string(),
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

/// `"0-3"`, `"0,2"` or `1`.
fn cpu_list(v: &toml::Value) -> Result<CpuList, String> {
    match v {
        toml::Value::Integer(_) => Ok(CpuList(vec![count(v, 0)?])),
        toml::Value::String(s) => parse_cpu_list(s),
        _ => Err("give a CPU list in quotes, e.g. \"0-3\" or \"0,2\"".into()),
    }
}

fn boolean(v: &toml::Value) -> Result<bool, String> {
    v.as_bool().ok_or_else(|| "give true or false".to_string())
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
        assert_eq!(
            parse(Kind::Echo, "driver", "\"io-uring\""),
            Ok(Setting::Driver(Driver::IoUring))
        );
        assert_eq!(Setting::Driver(Driver::IoUring).label(), "io-uring");
        assert_eq!(Setting::Payload(65536).value(), "64K");
        assert_eq!(Setting::Connections(1000).number(), Some(1000.0));
        assert_eq!(
            parse(Kind::Echo, "server_cpus", "\"0-3\"").map(|s| s.label()),
            Ok("server_cpus=0-3".to_string())
        );
        assert_eq!(
            parse(Kind::Echo, "external", "\"memcached\""),
            Ok(Setting::External(RealServer::Memcached))
        );
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
        let e = parse(Kind::Echo, "client_cpus", "\"3-1\"").unwrap_err();
        assert!(e.contains("not a CPU list"), "{e}");
        assert!(parse(Kind::Echo, "external", "\"nginx\"").is_err());
    }
}
