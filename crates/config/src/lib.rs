//! # gregor-config
//!
//! Broker and topic configuration under Kafka's own names and defaults.
//!
//! **Owns:** the definition of every config key Gregor understands (type, default,
//! validity, synonyms between topic keys and broker keys), parsing the sources a value
//! can come from (Java properties files, YAML, environment variables in the apache/kafka
//! image's convention, `--override key=value`), and the typed, resolved view the rest of
//! the broker reads.
//!
//! **Never:** I/O beyond reading the file it is handed, logging set-up, or knowing about
//! sockets, storage or metadata records.
