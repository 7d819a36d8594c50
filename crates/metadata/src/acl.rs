//! ACLs: the bindings the metadata log stores, the filters that find them, and the
//! authorization decision they drive (Kafka's StandardAuthorizer rules).
//!
//! Codes are the wire's, kept as `i8` so that a code a newer client sends can be
//! refused with the protocol's error instead of failing to decode.
//!
//! The decision, for a principal at a host wanting an operation on a resource:
//! 1. a super user may do anything;
//! 2. a matching DENY (the operation itself, or ALL) refuses;
//! 3. a matching ALLOW (the operation, ALL, or an operation that implies it: READ,
//!    WRITE, DELETE and ALTER imply DESCRIBE; ALTER_CONFIGS implies DESCRIBE_CONFIGS)
//!    permits;
//! 4. with no ACL on the resource at all, `allow.everyone.if.no.acl.found` decides;
//! 5. otherwise refused.
//!
//! An ACL matches a resource by type and by pattern: LITERAL names it exactly or is
//! the wildcard `*`, PREFIXED is a prefix of its name. It matches a principal named
//! exactly or `User:*`, and a host named exactly or `*`.

use gregor_protocol::messages::access_control_entry_record::AccessControlEntryRecord;
use gregor_protocol::Uuid;
use std::collections::BTreeSet;

/// Resource types (`ResourceType` in Kafka).
pub mod resource_type {
    pub const UNKNOWN: i8 = 0;
    pub const ANY: i8 = 1;
    pub const TOPIC: i8 = 2;
    pub const GROUP: i8 = 3;
    pub const CLUSTER: i8 = 4;
    pub const TRANSACTIONAL_ID: i8 = 5;
    pub const DELEGATION_TOKEN: i8 = 6;
    pub const USER: i8 = 7;
}

/// Pattern types (`PatternType`); ANY and MATCH exist only in filters.
pub mod pattern_type {
    pub const UNKNOWN: i8 = 0;
    pub const ANY: i8 = 1;
    pub const MATCH: i8 = 2;
    pub const LITERAL: i8 = 3;
    pub const PREFIXED: i8 = 4;
}

/// Operations (`AclOperation`); ANY exists only in filters.
pub mod operation {
    pub const UNKNOWN: i8 = 0;
    pub const ANY: i8 = 1;
    pub const ALL: i8 = 2;
    pub const READ: i8 = 3;
    pub const WRITE: i8 = 4;
    pub const CREATE: i8 = 5;
    pub const DELETE: i8 = 6;
    pub const ALTER: i8 = 7;
    pub const DESCRIBE: i8 = 8;
    pub const CLUSTER_ACTION: i8 = 9;
    pub const DESCRIBE_CONFIGS: i8 = 10;
    pub const ALTER_CONFIGS: i8 = 11;
    pub const IDEMPOTENT_WRITE: i8 = 12;
    pub const CREATE_TOKENS: i8 = 13;
    pub const DESCRIBE_TOKENS: i8 = 14;
    pub const TWO_PHASE_COMMIT: i8 = 15;
}

/// Permission types (`AclPermissionType`); ANY exists only in filters.
pub mod permission {
    pub const UNKNOWN: i8 = 0;
    pub const ANY: i8 = 1;
    pub const DENY: i8 = 2;
    pub const ALLOW: i8 = 3;
}

/// The name every ACL on the cluster resource must use.
pub const CLUSTER_RESOURCE_NAME: &str = "kafka-cluster";
/// A LITERAL resource name, principal or host that matches every one.
pub const WILDCARD: &str = "*";
/// The principal that matches every user.
pub const WILDCARD_PRINCIPAL: &str = "User:*";

/// One ACL: who may (or may not) do what on which resources, from where.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AclBinding {
    pub resource_type: i8,
    pub resource_name: String,
    pub pattern_type: i8,
    pub principal: String,
    pub host: String,
    pub operation: i8,
    pub permission: i8,
}

impl AclBinding {
    pub fn from_record(record: &AccessControlEntryRecord) -> Self {
        Self {
            resource_type: record.resource_type,
            resource_name: record.resource_name.clone(),
            pattern_type: record.pattern_type,
            principal: record.principal.clone(),
            host: record.host.clone(),
            operation: record.operation,
            permission: record.permission_type,
        }
    }

    pub fn to_record(&self, id: Uuid) -> AccessControlEntryRecord {
        AccessControlEntryRecord {
            id,
            resource_type: self.resource_type,
            resource_name: self.resource_name.clone(),
            pattern_type: self.pattern_type,
            principal: self.principal.clone(),
            host: self.host.clone(),
            operation: self.operation,
            permission_type: self.permission,
            ..Default::default()
        }
    }

    /// Whether this ACL's pattern covers the resource `name` of `resource_type`.
    fn covers(&self, resource_type: i8, name: &str) -> bool {
        self.resource_type == resource_type && pattern_covers(self.pattern_type, &self.resource_name, name)
    }

    /// Kafka's checks of a new ACL; `Err` is the INVALID_REQUEST message.
    pub fn validate(&self) -> Result<(), String> {
        if matches!(self.resource_type, resource_type::UNKNOWN | resource_type::ANY)
            || !(resource_type::TOPIC..=resource_type::USER).contains(&self.resource_type)
        {
            return Err(format!("Invalid resourceType {}", self.resource_type));
        }
        if !matches!(self.pattern_type, pattern_type::LITERAL | pattern_type::PREFIXED) {
            return Err(format!("Invalid patternType {}", self.pattern_type));
        }
        if matches!(self.operation, operation::UNKNOWN | operation::ANY)
            || !(operation::ALL..=operation::TWO_PHASE_COMMIT).contains(&self.operation)
        {
            return Err(format!("Invalid operation {}", self.operation));
        }
        if !matches!(self.permission, permission::DENY | permission::ALLOW) {
            return Err(format!("Invalid permissionType {}", self.permission));
        }
        if self.resource_name.is_empty() {
            return Err("Resource name should not be empty".to_string());
        }
        if self.resource_type == resource_type::CLUSTER && self.resource_name != CLUSTER_RESOURCE_NAME {
            return Err(format!("The only valid name for the CLUSTER resource is {CLUSTER_RESOURCE_NAME}"));
        }
        parse_principal(&self.principal)?;
        Ok(())
    }
}

fn pattern_covers(pattern_type: i8, pattern: &str, name: &str) -> bool {
    match pattern_type {
        pattern_type::LITERAL => pattern == name || pattern == WILDCARD,
        pattern_type::PREFIXED => name.starts_with(pattern),
        _ => false,
    }
}

/// Splits `Type:name`; both parts must be present.
pub fn parse_principal(principal: &str) -> Result<(&str, &str), String> {
    match principal.split_once(':') {
        Some((kind, name)) if !kind.is_empty() => Ok((kind, name)),
        _ => Err(format!("Could not parse principal from `{principal}` (no colon is present separating the principal type from the principal name)")),
    }
}

/// What DescribeAcls and DeleteAcls select. `None` strings match anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclFilter {
    pub resource_type: i8,
    pub resource_name: Option<String>,
    pub pattern_type: i8,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: i8,
    pub permission: i8,
}

impl AclFilter {
    /// A filter with an UNKNOWN element matches nothing meaningful; Kafka refuses it.
    pub fn validate(&self) -> Result<(), String> {
        if self.resource_type == resource_type::UNKNOWN
            || self.pattern_type == pattern_type::UNKNOWN
            || self.operation == operation::UNKNOWN
            || self.permission == permission::UNKNOWN
        {
            return Err("The filter contains UNKNOWN elements".to_string());
        }
        if !(resource_type::ANY..=resource_type::USER).contains(&self.resource_type)
            || !(pattern_type::ANY..=pattern_type::PREFIXED).contains(&self.pattern_type)
            || !(operation::ANY..=operation::TWO_PHASE_COMMIT).contains(&self.operation)
            || !(permission::ANY..=permission::ALLOW).contains(&self.permission)
        {
            return Err("The filter contains values this broker does not know".to_string());
        }
        Ok(())
    }

    pub fn matches(&self, acl: &AclBinding) -> bool {
        self.matches_pattern(acl) && self.matches_entry(acl)
    }

    fn matches_pattern(&self, acl: &AclBinding) -> bool {
        if self.resource_type != resource_type::ANY && self.resource_type != acl.resource_type {
            return false;
        }
        if !matches!(self.pattern_type, pattern_type::ANY | pattern_type::MATCH)
            && self.pattern_type != acl.pattern_type
        {
            return false;
        }
        let Some(name) = &self.resource_name else {
            return true;
        };
        // MATCH selects every pattern that would apply to the named resource; the
        // other filter types compare names exactly.
        if self.pattern_type == pattern_type::MATCH {
            pattern_covers(acl.pattern_type, &acl.resource_name, name)
        } else {
            *name == acl.resource_name
        }
    }

    fn matches_entry(&self, acl: &AclBinding) -> bool {
        self.principal.as_ref().is_none_or(|principal| *principal == acl.principal)
            && self.host.as_ref().is_none_or(|host| *host == acl.host)
            && (self.operation == operation::ANY || self.operation == acl.operation)
            && (self.permission == permission::ANY || self.permission == acl.permission)
    }
}

/// The operations Kafka reports as authorized operations for a resource type, in
/// the order of their codes.
pub fn supported_operations(resource_type: i8) -> &'static [i8] {
    use operation::*;
    match resource_type {
        resource_type::TOPIC => &[READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS],
        resource_type::GROUP => &[READ, DELETE, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS],
        resource_type::CLUSTER => {
            &[CREATE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE]
        }
        resource_type::TRANSACTIONAL_ID => &[WRITE, DESCRIBE, TWO_PHASE_COMMIT],
        resource_type::DELEGATION_TOKEN => &[DESCRIBE],
        resource_type::USER => &[CREATE_TOKENS, DESCRIBE_TOKENS],
        _ => &[],
    }
}

/// The bit field of `operations` as authorized-operations fields carry it.
pub fn operations_bit_field(operations: impl IntoIterator<Item = i8>) -> i32 {
    operations.into_iter().filter(|op| (0..32).contains(op)).fold(0, |bits, op| bits | (1 << op))
}

/// Who is asking: the authenticated principal and the client's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requester<'a> {
    pub principal: &'a str,
    pub host: &'a str,
}

/// The authorizer's settings (`super.users`, `allow.everyone.if.no.acl.found`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizerSettings {
    pub super_users: Vec<String>,
    pub allow_everyone_if_no_acl_found: bool,
}

/// The operations whose ALLOW also allows `wanted`.
fn implied_by(wanted: i8) -> &'static [i8] {
    use operation::*;
    match wanted {
        DESCRIBE => &[DESCRIBE, READ, WRITE, DELETE, ALTER, ALL],
        DESCRIBE_CONFIGS => &[DESCRIBE_CONFIGS, ALTER_CONFIGS, ALL],
        READ => &[READ, ALL],
        WRITE => &[WRITE, ALL],
        CREATE => &[CREATE, ALL],
        DELETE => &[DELETE, ALL],
        ALTER => &[ALTER, ALL],
        CLUSTER_ACTION => &[CLUSTER_ACTION, ALL],
        ALTER_CONFIGS => &[ALTER_CONFIGS, ALL],
        IDEMPOTENT_WRITE => &[IDEMPOTENT_WRITE, ALL],
        CREATE_TOKENS => &[CREATE_TOKENS, ALL],
        DESCRIBE_TOKENS => &[DESCRIBE_TOKENS, ALL],
        TWO_PHASE_COMMIT => &[TWO_PHASE_COMMIT, ALL],
        _ => &[ALL],
    }
}

/// Whether `requester` may do `wanted` on the resource `name` of `resource_type`,
/// given every ACL of the cluster.
pub fn authorize<'a>(
    acls: impl IntoIterator<Item = &'a AclBinding>,
    settings: &AuthorizerSettings,
    requester: &Requester<'_>,
    wanted: i8,
    resource_type: i8,
    name: &str,
) -> bool {
    if settings.super_users.iter().any(|user| user == requester.principal) {
        return true;
    }
    let user_principal = requester.principal.starts_with("User:");
    let mut any_acl_on_resource = false;
    let mut allowed = false;
    for acl in acls {
        if !acl.covers(resource_type, name) {
            continue;
        }
        any_acl_on_resource = true;
        let principal_matches =
            acl.principal == requester.principal || (user_principal && acl.principal == WILDCARD_PRINCIPAL);
        if !principal_matches || !(acl.host == requester.host || acl.host == WILDCARD) {
            continue;
        }
        match acl.permission {
            permission::DENY if acl.operation == wanted || acl.operation == operation::ALL => return false,
            permission::ALLOW if implied_by(wanted).contains(&acl.operation) => allowed = true,
            _ => {}
        }
    }
    allowed || (!any_acl_on_resource && settings.allow_everyone_if_no_acl_found)
}

/// Whether `requester` may do `wanted` on some resource of `resource_type`, as
/// Kafka's `Authorizer.authorizeByResourceType` decides it (KIP-679: an idempotent
/// producer needs WRITE on some topic when it lacks IDEMPOTENT_WRITE on the cluster).
///
/// First the ordinary decision for a resource no ACL names explicitly, so that super
/// users and `allow.everyone.if.no.acl.found` (with no pattern covering that name)
/// pass whatever the DENYs say. Then only the requester's ACLs for exactly `wanted`
/// or ALL count (no implied operations): a LITERAL `*` DENY refuses, a LITERAL `*`
/// ALLOW permits, and otherwise some ALLOW pattern must survive the DENYs: a LITERAL
/// ALLOW is cancelled by a LITERAL DENY of the same name, and any ALLOW by a PREFIXED
/// DENY whose prefix starts its name.
pub fn authorize_by_resource_type<'a>(
    acls: impl IntoIterator<Item = &'a AclBinding> + Clone,
    settings: &AuthorizerSettings,
    requester: &Requester<'_>,
    wanted: i8,
    resource_type: i8,
) -> bool {
    // Kafka checks this made-up name; only wildcard or prefix patterns can cover it.
    const UNNAMED_RESOURCE: &str = "hardcode";
    if authorize(acls.clone(), settings, requester, wanted, resource_type, UNNAMED_RESOURCE) {
        return true;
    }
    let mut denied_literals: BTreeSet<&str> = BTreeSet::new();
    let mut denied_prefixes: BTreeSet<&str> = BTreeSet::new();
    let mut allowed: Vec<(i8, &str)> = Vec::new();
    for acl in acls {
        let applies = acl.resource_type == resource_type
            && (acl.host == requester.host || acl.host == WILDCARD)
            && (acl.principal == requester.principal || acl.principal == WILDCARD_PRINCIPAL)
            && (acl.operation == wanted || acl.operation == operation::ALL);
        if !applies {
            continue;
        }
        let name = acl.resource_name.as_str();
        match (acl.permission, acl.pattern_type) {
            (permission::DENY, pattern_type::LITERAL) if name == WILDCARD => return false,
            (permission::DENY, pattern_type::LITERAL) => {
                denied_literals.insert(name);
            }
            (permission::DENY, pattern_type::PREFIXED) => {
                denied_prefixes.insert(name);
            }
            (permission::ALLOW, pattern_type::LITERAL | pattern_type::PREFIXED) => {
                allowed.push((acl.pattern_type, name))
            }
            _ => {}
        }
    }
    if allowed.iter().any(|&(pattern, name)| pattern == pattern_type::LITERAL && name == WILDCARD) {
        return true;
    }
    allowed.iter().any(|&(pattern, name)| {
        let denied_literal = pattern == pattern_type::LITERAL && denied_literals.contains(name);
        let denied_prefix = name.char_indices().any(|(at, ch)| denied_prefixes.contains(&name[..at + ch.len_utf8()]));
        !denied_literal && !denied_prefix
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(resource_type: i8, name: &str, pattern: i8, principal: &str, op: i8, perm: i8) -> AclBinding {
        AclBinding {
            resource_type,
            resource_name: name.to_string(),
            pattern_type: pattern,
            principal: principal.to_string(),
            host: WILDCARD.to_string(),
            operation: op,
            permission: perm,
        }
    }

    const ALICE: Requester<'static> = Requester { principal: "User:alice", host: "10.0.0.1" };

    fn decide(acls: &[AclBinding], settings: &AuthorizerSettings, op: i8, topic: &str) -> bool {
        authorize(acls, settings, &ALICE, op, resource_type::TOPIC, topic)
    }

    #[test]
    fn no_acl_follows_the_allow_everyone_setting_and_super_users_pass() {
        let open = AuthorizerSettings { super_users: vec![], allow_everyone_if_no_acl_found: true };
        let closed = AuthorizerSettings::default();
        assert!(decide(&[], &open, operation::WRITE, "t"));
        assert!(!decide(&[], &closed, operation::WRITE, "t"));
        let root = AuthorizerSettings { super_users: vec!["User:alice".into()], ..Default::default() };
        let deny =
            [acl(resource_type::TOPIC, "t", pattern_type::LITERAL, "User:alice", operation::ALL, permission::DENY)];
        assert!(decide(&deny, &root, operation::WRITE, "t"));
    }

    #[test]
    fn an_acl_for_someone_else_closes_the_resource_even_when_open() {
        let open = AuthorizerSettings { super_users: vec![], allow_everyone_if_no_acl_found: true };
        let bob =
            [acl(resource_type::TOPIC, "t", pattern_type::LITERAL, "User:bob", operation::READ, permission::ALLOW)];
        assert!(!decide(&bob, &open, operation::READ, "t"));
        assert!(decide(&bob, &open, operation::READ, "other"));
    }

    #[test]
    fn patterns_wildcards_and_implied_operations() {
        let closed = AuthorizerSettings::default();
        let prefixed = [acl(
            resource_type::TOPIC,
            "orders-",
            pattern_type::PREFIXED,
            "User:*",
            operation::READ,
            permission::ALLOW,
        )];
        assert!(decide(&prefixed, &closed, operation::READ, "orders-eu"));
        assert!(decide(&prefixed, &closed, operation::DESCRIBE, "orders-eu"), "READ implies DESCRIBE");
        assert!(!decide(&prefixed, &closed, operation::WRITE, "orders-eu"));
        assert!(!decide(&prefixed, &closed, operation::READ, "order"));
        let wildcard =
            [acl(resource_type::TOPIC, "*", pattern_type::LITERAL, "User:alice", operation::ALL, permission::ALLOW)];
        assert!(decide(&wildcard, &closed, operation::ALTER_CONFIGS, "any"));
        let configs = [acl(
            resource_type::TOPIC,
            "t",
            pattern_type::LITERAL,
            "User:alice",
            operation::ALTER_CONFIGS,
            permission::ALLOW,
        )];
        assert!(decide(&configs, &closed, operation::DESCRIBE_CONFIGS, "t"));
        assert!(!decide(&configs, &closed, operation::DESCRIBE, "t"));
    }

    #[test]
    fn deny_wins_and_hosts_must_match() {
        let closed = AuthorizerSettings::default();
        let mut acls = vec![
            acl(resource_type::TOPIC, "t", pattern_type::LITERAL, "User:alice", operation::ALL, permission::ALLOW),
            acl(resource_type::TOPIC, "t", pattern_type::PREFIXED, "User:*", operation::WRITE, permission::DENY),
        ];
        assert!(decide(&acls, &closed, operation::READ, "t"));
        assert!(!decide(&acls, &closed, operation::WRITE, "t"));
        acls[1].host = "10.9.9.9".into();
        assert!(decide(&acls, &closed, operation::WRITE, "t"));
        acls[0].host = "10.9.9.9".into();
        assert!(!decide(&acls, &closed, operation::READ, "t"));
    }

    #[test]
    fn by_resource_type_a_covering_deny_cancels_an_allow() {
        let closed = AuthorizerSettings::default();
        let some_topic = |acls: &[AclBinding], settings: &AuthorizerSettings| {
            authorize_by_resource_type(acls, settings, &ALICE, operation::WRITE, resource_type::TOPIC)
        };
        let topic = |name: &str, pattern: i8, principal: &str, op: i8, perm: i8| {
            acl(resource_type::TOPIC, name, pattern, principal, op, perm)
        };
        let allow_prefix = topic("a", pattern_type::PREFIXED, "User:alice", operation::WRITE, permission::ALLOW);
        assert!(some_topic(std::slice::from_ref(&allow_prefix), &closed));
        // The same prefix denied, or a shorter one: nothing is left to write to.
        let deny_prefix = topic("a", pattern_type::PREFIXED, "User:*", operation::WRITE, permission::DENY);
        assert!(!some_topic(&[allow_prefix.clone(), deny_prefix.clone()], &closed));
        let allow_literal = topic("abc", pattern_type::LITERAL, "User:alice", operation::ALL, permission::ALLOW);
        assert!(!some_topic(&[allow_literal.clone(), deny_prefix.clone()], &closed));
        // A longer denied prefix leaves the rest of "a" writable.
        let deny_longer = topic("ab", pattern_type::PREFIXED, "User:*", operation::WRITE, permission::DENY);
        assert!(some_topic(&[allow_prefix.clone(), deny_longer.clone()], &closed));
        assert!(!some_topic(&[allow_literal.clone(), deny_longer], &closed));
        // A literal DENY cancels only the same literal ALLOW, not a prefix.
        let deny_literal = topic("abc", pattern_type::LITERAL, "User:alice", operation::WRITE, permission::DENY);
        assert!(!some_topic(&[allow_literal.clone(), deny_literal.clone()], &closed));
        let allow_literal_prefix =
            topic("abc", pattern_type::PREFIXED, "User:alice", operation::WRITE, permission::ALLOW);
        assert!(some_topic(&[allow_literal_prefix, deny_literal], &closed));
        // Wildcards: a `*` DENY refuses everything, a `*` ALLOW survives prefix DENYs.
        let deny_all = topic("*", pattern_type::LITERAL, "User:*", operation::ALL, permission::DENY);
        assert!(!some_topic(&[allow_prefix.clone(), deny_all.clone()], &closed));
        let allow_all = topic("*", pattern_type::LITERAL, "User:alice", operation::WRITE, permission::ALLOW);
        assert!(some_topic(&[allow_all, deny_prefix.clone()], &closed));
        // Only the operation itself or ALL counts, and only the requester's ACLs.
        let read_only = topic("a", pattern_type::PREFIXED, "User:alice", operation::READ, permission::ALLOW);
        assert!(!some_topic(&[read_only], &closed));
        let bobs = topic("a", pattern_type::PREFIXED, "User:bob", operation::WRITE, permission::ALLOW);
        assert!(!some_topic(&[bobs], &closed));
        // Super users pass any DENY; allow.everyone passes while no pattern covers an
        // unnamed topic, whatever literal ACLs exist.
        let root = AuthorizerSettings { super_users: vec!["User:alice".into()], ..Default::default() };
        assert!(some_topic(&[allow_prefix.clone(), deny_all.clone()], &root));
        let open = AuthorizerSettings { super_users: vec![], allow_everyone_if_no_acl_found: true };
        assert!(some_topic(&[allow_literal, deny_prefix.clone()], &open));
        assert!(!some_topic(&[deny_all], &open));
        assert!(some_topic(&[], &open) && !some_topic(&[], &closed));
    }

    #[test]
    fn filters_select_as_kafka_does() {
        let literal =
            acl(resource_type::TOPIC, "orders", pattern_type::LITERAL, "User:a", operation::READ, permission::ALLOW);
        let prefixed =
            acl(resource_type::TOPIC, "ord", pattern_type::PREFIXED, "User:b", operation::WRITE, permission::DENY);
        let wildcard =
            acl(resource_type::TOPIC, "*", pattern_type::LITERAL, "User:c", operation::ALL, permission::ALLOW);
        let any = AclFilter {
            resource_type: resource_type::ANY,
            resource_name: None,
            pattern_type: pattern_type::ANY,
            principal: None,
            host: None,
            operation: operation::ANY,
            permission: permission::ANY,
        };
        assert!([&literal, &prefixed, &wildcard].iter().all(|acl| any.matches(acl)));
        let matching =
            AclFilter { pattern_type: pattern_type::MATCH, resource_name: Some("orders".into()), ..any.clone() };
        assert!([&literal, &prefixed, &wildcard].iter().all(|acl| matching.matches(acl)));
        let exact = AclFilter { pattern_type: pattern_type::ANY, resource_name: Some("orders".into()), ..any.clone() };
        assert!(exact.matches(&literal) && !exact.matches(&prefixed) && !exact.matches(&wildcard));
        let by_type = AclFilter { pattern_type: pattern_type::PREFIXED, permission: permission::DENY, ..any.clone() };
        assert!(by_type.matches(&prefixed) && !by_type.matches(&literal));
        assert!(AclFilter { operation: operation::UNKNOWN, ..any }.validate().is_err());
    }

    #[test]
    fn new_acls_are_checked() {
        let good = acl(resource_type::TOPIC, "t", pattern_type::LITERAL, "User:a", operation::READ, permission::ALLOW);
        assert_eq!(good.validate(), Ok(()));
        for bad in [
            AclBinding { resource_type: resource_type::ANY, ..good.clone() },
            AclBinding { pattern_type: pattern_type::MATCH, ..good.clone() },
            AclBinding { operation: operation::ANY, ..good.clone() },
            AclBinding { permission: permission::ANY, ..good.clone() },
            AclBinding { resource_name: String::new(), ..good.clone() },
            AclBinding { principal: "alice".into(), ..good.clone() },
            AclBinding { resource_type: resource_type::CLUSTER, resource_name: "c".into(), ..good.clone() },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
        assert_eq!(operations_bit_field(supported_operations(resource_type::TOPIC).iter().copied()), 0b1101_1111_1000);
    }
}
