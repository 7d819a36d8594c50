//! The vocabulary shared by broker and topic definitions: sources, types, validators.

use crate::error::ConfigError;

/// Where the value in effect for a key came from, as DescribeConfigs reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConfigSource {
    /// The built-in default of the key.
    Default,
    /// The broker's configuration file, environment or command-line overrides.
    StaticBroker,
    /// An override on one topic.
    DynamicTopic,
    /// Set through AlterConfigs for this broker only.
    DynamicBroker,
    /// Set through AlterConfigs as the default of every broker in the cluster.
    DynamicDefaultBroker,
    /// An override on one group (Kafka 4.0's group configs).
    DynamicGroup,
}

impl ConfigSource {
    /// The `ConfigSource` code of DescribeConfigs responses (v1+).
    pub fn code(&self) -> i8 {
        match self {
            ConfigSource::DynamicTopic => 1,
            ConfigSource::DynamicBroker => 2,
            ConfigSource::DynamicDefaultBroker => 3,
            ConfigSource::StaticBroker => 4,
            ConfigSource::Default => 5,
            ConfigSource::DynamicGroup => 8,
        }
    }
}

/// The type of a key's value, as DescribeConfigs v3+ reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConfigType {
    Boolean,
    String,
    Int,
    Short,
    Long,
    Double,
    List,
    Class,
    Password,
}

impl ConfigType {
    /// The `ConfigType` code of DescribeConfigs v3+ (0 is UNKNOWN and never ours).
    pub fn code(&self) -> i8 {
        match self {
            ConfigType::Boolean => 1,
            ConfigType::String => 2,
            ConfigType::Int => 3,
            ConfigType::Short => 4,
            ConfigType::Long => 5,
            ConfigType::Double => 6,
            ConfigType::List => 7,
            ConfigType::Class => 8,
            ConfigType::Password => 9,
        }
    }
}

/// The rule a value must follow beyond parsing as its type.
#[derive(Debug, Clone, Copy)]
pub enum Validator {
    /// Any value of the type.
    Any,
    /// An integer (Int, Short or Long) within `min..=max`.
    Range { min: i64, max: i64 },
    /// A double within `min..=max`.
    DoubleRange { min: f64, max: f64 },
    /// A string equal to one of these (case-sensitive, as Kafka's `ValidString`).
    OneOf(&'static [&'static str]),
    /// A string equal to one of these ignoring ASCII case.
    OneOfIgnoreCase(&'static [&'static str]),
    /// A list whose every element is one of these, without duplicates.
    ListOf(&'static [&'static str]),
    /// A non-empty list without duplicates or empty elements.
    NonEmptyList,
    /// A rule too specific for the variants above.
    Custom(fn(&str) -> Result<(), String>),
}

/// The definition of one configuration key.
#[derive(Debug, Clone, Copy)]
pub struct ConfigDef {
    pub name: &'static str,
    pub config_type: ConfigType,
    /// The default as text, `None` when the key has no default (Kafka's `null`).
    pub default: Option<&'static str>,
    pub documentation: &'static str,
    /// Not alterable while the broker runs (DescribeConfigs `read_only`).
    pub read_only: bool,
    /// The value is a secret and is never described.
    pub sensitive: bool,
    pub validator: Validator,
}

impl ConfigDef {
    /// Checks that `value` parses as this key's type and follows its rule.
    pub fn validate(&self, value: &str) -> Result<(), ConfigError> {
        check(self.config_type, self.validator, value).map_err(|reason| {
            // A secret must not leak into logs through an error message.
            let shown = if self.sensitive { "[hidden]" } else { value };
            ConfigError::invalid(self.name, shown, reason)
        })
    }
}

/// Parses and validates `value` as `config_type` under `validator`.
pub(crate) fn check(config_type: ConfigType, validator: Validator, value: &str) -> Result<(), String> {
    match config_type {
        ConfigType::Boolean => {
            parse_bool(value)?;
            match validator {
                Validator::Custom(f) => f(value),
                _ => Ok(()),
            }
        }
        ConfigType::Int => check_int(parse_int::<i32>(value)?.into(), validator),
        ConfigType::Short => check_int(parse_int::<i16>(value)?.into(), validator),
        ConfigType::Long => check_int(parse_int::<i64>(value)?, validator),
        ConfigType::Double => {
            let v = parse_double(value)?;
            match validator {
                Validator::DoubleRange { min, max } if v < min || v > max => {
                    Err(format!("must be between {min} and {max}"))
                }
                _ => Ok(()),
            }
        }
        ConfigType::List => check_list(&parse_list(value), validator),
        ConfigType::String | ConfigType::Class | ConfigType::Password => match validator {
            Validator::OneOf(allowed) if !allowed.contains(&value) => {
                Err(format!("must be one of {}", allowed.join(", ")))
            }
            Validator::OneOfIgnoreCase(allowed) if !allowed.iter().any(|a| a.eq_ignore_ascii_case(value)) => {
                Err(format!("must be one of {}", allowed.join(", ")))
            }
            Validator::Custom(f) => f(value),
            _ => Ok(()),
        },
    }
}

fn check_int(v: i64, validator: Validator) -> Result<(), String> {
    match validator {
        Validator::Range { min, max } if v < min || v > max => Err(describe_range(min, max)),
        Validator::Custom(f) => f(&v.to_string()),
        _ => Ok(()),
    }
}

fn describe_range(min: i64, max: i64) -> String {
    // Open-ended ranges read better without the type's extreme bound.
    if max == i64::MAX || max == i64::from(i32::MAX) {
        format!("must be at least {min}")
    } else {
        format!("must be between {min} and {max}")
    }
}

fn check_list(items: &[String], validator: Validator) -> Result<(), String> {
    let mut seen = std::collections::BTreeSet::new();
    match validator {
        Validator::ListOf(allowed) => {
            for item in items {
                if !allowed.contains(&item.as_str()) {
                    return Err(format!("{item:?} is not one of {}", allowed.join(", ")));
                }
                if !seen.insert(item) {
                    return Err(format!("{item:?} is listed twice"));
                }
            }
            Ok(())
        }
        Validator::NonEmptyList => {
            if items.is_empty() {
                return Err("must not be empty".into());
            }
            for item in items {
                if item.is_empty() {
                    return Err("must not contain empty elements".into());
                }
                if !seen.insert(item) {
                    return Err(format!("{item:?} is listed twice"));
                }
            }
            Ok(())
        }
        Validator::Custom(f) => f(&items.join(",")),
        _ => Ok(()),
    }
}

/// Kafka booleans: `true` or `false` in any case, surrounding blanks ignored.
pub fn parse_bool(value: &str) -> Result<bool, String> {
    let v = value.trim();
    if v.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if v.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err("expected true or false".into())
    }
}

/// Kafka integers: decimal, surrounding blanks ignored, within the type's width.
pub fn parse_int<T: std::str::FromStr>(value: &str) -> Result<T, String> {
    let v = value.trim();
    v.strip_prefix('+')
        .unwrap_or(v)
        .parse::<T>()
        .map_err(|_| format!("expected an integer of at most {} bits", std::mem::size_of::<T>() * 8))
}

/// Kafka doubles: finite decimal numbers (Java spellings like `1.5E3` included).
pub fn parse_double(value: &str) -> Result<f64, String> {
    match value.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err("expected a finite number".into()),
    }
}

/// Kafka lists: comma-separated, blanks around elements ignored, empty text is empty.
pub fn parse_list(value: &str) -> Vec<String> {
    let v = value.trim();
    if v.is_empty() {
        return Vec::new();
    }
    v.split(',').map(|s| s.trim().to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_describe_configs() {
        assert_eq!(ConfigSource::DynamicTopic.code(), 1);
        assert_eq!(ConfigSource::Default.code(), 5);
        assert_eq!(ConfigType::Boolean.code(), 1);
        assert_eq!(ConfigType::Password.code(), 9);
    }

    #[test]
    fn scalar_parsing() {
        assert_eq!(parse_bool(" TRUE "), Ok(true));
        assert!(parse_bool("yes").is_err());
        assert_eq!(parse_int::<i32>(" 42 "), Ok(42));
        assert!(parse_int::<i32>("2147483648").is_err());
        assert!(parse_int::<i16>("40000").is_err());
        assert!(parse_double("NaN").is_err());
        assert_eq!(parse_list(" a , b,c "), vec!["a", "b", "c"]);
        assert!(parse_list("  ").is_empty());
    }

    #[test]
    fn validators() {
        let range = Validator::Range { min: 1, max: i64::MAX };
        assert!(check(ConfigType::Int, range, "0").is_err());
        assert!(check(ConfigType::Int, range, "1").is_ok());
        let policy = Validator::ListOf(&["compact", "delete"]);
        assert!(check(ConfigType::List, policy, "compact,delete").is_ok());
        assert!(check(ConfigType::List, policy, "compact,compact").is_err());
        assert!(check(ConfigType::List, policy, "archive").is_err());
        assert!(check(ConfigType::List, Validator::NonEmptyList, "").is_err());
        let ts = Validator::OneOf(&["CreateTime", "LogAppendTime"]);
        assert!(check(ConfigType::String, ts, "createtime").is_err());
    }
}
