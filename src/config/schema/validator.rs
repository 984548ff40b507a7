//! An interpreter for JSON Schema draft-07, for two kinds of schema ([`Dialect`]):
//!
//! - mlplat's own config schema, `schemas/platform.schema.json` ([`Validator::new`]): every
//!   keyword must be one implemented here, nothing may stand beside a `$ref`, and patterns mean
//!   what ECMA-262 (and the `jsonschema` crate) make them mean. The `jsonschema` crate is the
//!   reference: `tests/schema_validator.rs` checks that both report the same violations for
//!   every example config and thousands of mutations of them.
//! - a chart's `values.schema.json` ([`Validator::chart`]), read as Helm reads it (its validator
//!   is santhosh-tekuri/jsonschema): keywords draft-07 does not define are annotations (`x-*`,
//!   `$comment`, `examples`), keywords beside a `$ref` are ignored as draft-07 says, formats
//!   Helm asserts are asserted, and patterns are Go regular expressions. The reference is Helm
//!   itself: `tests/chart_values.rs` compares both on mutated values.
//!
//! It walks the schema `Value` as it is, following local `$ref`s as it meets them, and compiles
//! a `pattern` only when an instance first reaches it. Compiling the whole schema with the
//! `jsonschema` crate cost 44 % of the instructions of a render; this costs one walk of the
//! schema.
//!
//! Both constructors refuse a schema using a draft-07 assertion this module does not implement,
//! so no check is silently weaker than the reference's.

mod format;

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use regex_lite::Regex;
use serde_json::{Map, Number, Value};

/// The only `$schema` understood: the keywords below have draft-07 meaning.
const DRAFT_07: &str = "http://json-schema.org/draft-07/schema#";

/// How a schema is read: see the module's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// mlplat's config schema: only implemented keywords, nothing beside `$ref`, ECMA-262
    /// patterns.
    Strict,
    /// A chart's values schema, as Helm reads a draft-07 one.
    Chart,
}

/// Every keyword draft-07 defines. To a draft-07 validator anything else is an annotation.
const DRAFT_07_KEYWORDS: &[&str] = &[
    "$schema",
    "$id",
    "$ref",
    "$comment",
    "title",
    "description",
    "default",
    "readOnly",
    "writeOnly",
    "examples",
    "definitions",
    "type",
    "enum",
    "const",
    "multipleOf",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "items",
    "additionalItems",
    "maxItems",
    "minItems",
    "uniqueItems",
    "contains",
    "maxProperties",
    "minProperties",
    "required",
    "properties",
    "patternProperties",
    "additionalProperties",
    "dependencies",
    "propertyNames",
    "if",
    "then",
    "else",
    "allOf",
    "anyOf",
    "oneOf",
    "not",
    "format",
    "contentMediaType",
    "contentEncoding",
];

/// Draft-07 annotations a chart schema may use beside those of [`ANNOTATIONS`].
const CHART_ANNOTATIONS: &[&str] = &[
    "$comment",
    "examples",
    "readOnly",
    "writeOnly",
    "contentMediaType",
    "contentEncoding",
];

/// Keywords that describe and never reject anything.
const ANNOTATIONS: &[&str] = &[
    "$schema",
    "$id",
    "$defs",
    "title",
    "description",
    "default",
    "x-expected",
    // A secret's key: its value is never printed (see config::redaction).
    "x-mlplat-secret",
];

/// ECMA-262 `\s` (what JSON Schema patterns mean, and what `jsonschema` matches) as class
/// items; regex-lite's own `\s` is ASCII only.
const ECMA_SPACE: &str =
    r"\t-\r \x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}\x{FEFF}";

/// ECMA-262 `.`: anything but a line terminator (regex-lite's `.` excludes only `\n`).
const ECMA_DOT: &str = r"[^\n\r\x{2028}\x{2029}]";

/// Why a schema cannot be interpreted, and where in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("schema {}: {problem}", if path.is_empty() { "root" } else { path.as_str() })]
pub struct SchemaError {
    /// JSON pointer into the schema.
    pub path: String,
    pub problem: Problem,
}

/// Something this module does not implement, or a shape of it that it does not understand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("keyword `{0}` is not implemented by mlplat's schema validator")]
    Unsupported(String),
    #[error("`{0}` beside `$ref` is ignored in draft-07; move it into the target")]
    BesideRef(String),
    #[error("{0}")]
    Malformed(&'static str),
    #[error("`$ref` {0:?} does not lead to a schema in this document")]
    Unresolved(String),
    #[error("`$schema` must be {DRAFT_07:?}")]
    NotDraft07,
    #[error("format `{0}` is asserted by Helm's validator but not implemented by mlplat's")]
    Format(String),
    #[error("pattern {pattern:?} {problem}")]
    Pattern {
        pattern: String,
        problem: &'static str,
    },
}

impl SchemaError {
    fn new(problem: Problem) -> Self {
        Self {
            path: String::new(),
            problem,
        }
    }

    /// The same error, seen from the schema object (or map) that holds `token`: errors are
    /// rare, so their paths are built on the way out rather than on every step in.
    fn under(mut self, token: &str) -> Self {
        let mut path = String::with_capacity(token.len() + 1 + self.path.len());
        Loc::Key(&Loc::Start(""), token).write(&mut path);
        path.push_str(&self.path);
        self.path = path;
        self
    }
}

/// A JSON type, in the order `jsonschema` lists several.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum JsonType {
    Null,
    Boolean,
    Integer,
    Number,
    String,
    Array,
    Object,
}

impl JsonType {
    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "null" => Self::Null,
            "boolean" => Self::Boolean,
            "integer" => Self::Integer,
            "number" => Self::Number,
            "string" => Self::String,
            "array" => Self::Array,
            "object" => Self::Object,
            _ => return None,
        })
    }

    /// The name the schema uses.
    pub fn name(self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Boolean => "boolean",
            Self::Integer => "integer",
            Self::Number => "number",
            Self::String => "string",
            Self::Array => "array",
            Self::Object => "object",
        }
    }

    /// Draft-07: an integer is any number without a fraction, `1.0` included.
    fn admits(self, value: &Value) -> bool {
        match (self, value) {
            (Self::Null, Value::Null)
            | (Self::Boolean, Value::Bool(_))
            | (Self::Number, Value::Number(_))
            | (Self::String, Value::String(_))
            | (Self::Array, Value::Array(_))
            | (Self::Object, Value::Object(_)) => true,
            (Self::Integer, Value::Number(n)) => {
                n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
            }
            _ => false,
        }
    }
}

impl fmt::Display for JsonType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One way an instance breaks the schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    /// JSON pointer to the offending value.
    pub instance_path: String,
    /// JSON pointer to the failing keyword, from the schema object that holds it (so a `$ref`d
    /// definition is named by its own place: `/$defs/port/minimum`).
    pub schema_path: String,
    /// The offending value.
    pub instance: Value,
    pub kind: ViolationKind,
}

/// The failing keyword, with what its message needs.
#[derive(Debug, Clone, PartialEq)]
pub enum ViolationKind {
    Type {
        expected: Vec<JsonType>,
    },
    Enum {
        options: Vec<Value>,
    },
    Pattern {
        pattern: String,
    },
    MinLength {
        limit: u64,
    },
    MaxLength {
        limit: u64,
    },
    Minimum {
        limit: Number,
    },
    Maximum {
        limit: Number,
    },
    MinItems {
        limit: u64,
    },
    UniqueItems,
    MinProperties {
        limit: u64,
    },
    MaxProperties {
        limit: u64,
    },
    Required {
        property: String,
    },
    /// `additionalProperties: false`: every key of the object the schema does not name.
    AdditionalProperties {
        unexpected: Vec<String>,
    },
    /// A key of the object broke `propertyNames`; `error` is about the key as a string.
    PropertyNames {
        error: Box<Violation>,
    },
    Const {
        value: Value,
    },
    ExclusiveMinimum {
        limit: Number,
    },
    ExclusiveMaximum {
        limit: Number,
    },
    MaxItems {
        limit: u64,
    },
    Format {
        format: String,
        /// What is wrong with the text, without the text.
        problem: &'static str,
    },
    /// No branch of `anyOf` (or `oneOf`) holds. `closest` holds the violations of the branch
    /// that came closest (see [`closest_branch`]): what would make the value pass.
    NoBranch {
        keyword: &'static str,
        branches: usize,
        closest: Vec<Violation>,
    },
    /// More than one branch of `oneOf` holds.
    SeveralBranches {
        matched: Vec<usize>,
    },
    /// The schema of `not` holds.
    Not,
}

impl ViolationKind {
    /// The schema keyword that failed.
    pub fn keyword(&self) -> &'static str {
        match self {
            Self::Type { .. } => "type",
            Self::Enum { .. } => "enum",
            Self::Pattern { .. } => "pattern",
            Self::MinLength { .. } => "minLength",
            Self::MaxLength { .. } => "maxLength",
            Self::Minimum { .. } => "minimum",
            Self::Maximum { .. } => "maximum",
            Self::MinItems { .. } => "minItems",
            Self::UniqueItems => "uniqueItems",
            Self::MinProperties { .. } => "minProperties",
            Self::MaxProperties { .. } => "maxProperties",
            Self::Required { .. } => "required",
            Self::AdditionalProperties { .. } => "additionalProperties",
            Self::PropertyNames { .. } => "propertyNames",
            Self::Const { .. } => "const",
            Self::ExclusiveMinimum { .. } => "exclusiveMinimum",
            Self::ExclusiveMaximum { .. } => "exclusiveMaximum",
            Self::MaxItems { .. } => "maxItems",
            Self::Format { .. } => "format",
            Self::NoBranch { keyword, .. } => keyword,
            Self::SeveralBranches { .. } => "oneOf",
            Self::Not => "not",
        }
    }
}

/// The message `jsonschema` gives the same violation, word for word: mlplat shows it where it
/// has no wording of its own.
impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = &self.instance;
        let plural =
            |n: u64, one: &'static str, many: &'static str| if n == 1 { one } else { many };
        match &self.kind {
            ViolationKind::Type { expected } => match expected.as_slice() {
                [one] => write!(f, "{v} is not of type \"{one}\""),
                many => {
                    let names: Vec<String> = many.iter().map(|t| format!("\"{t}\"")).collect();
                    write!(f, "{v} is not of types {}", names.join(", "))
                }
            },
            ViolationKind::Enum { options } => write_enum(f, v, options),
            ViolationKind::Pattern { pattern } => write!(f, "{v} does not match \"{pattern}\""),
            ViolationKind::MinLength { limit } => write!(
                f,
                "{v} is shorter than {limit} {}",
                plural(*limit, "character", "characters")
            ),
            ViolationKind::MaxLength { limit } => write!(
                f,
                "{v} is longer than {limit} {}",
                plural(*limit, "character", "characters")
            ),
            ViolationKind::Minimum { limit } => {
                write!(f, "{v} is less than the minimum of {limit}")
            }
            ViolationKind::Maximum { limit } => {
                write!(f, "{v} is greater than the maximum of {limit}")
            }
            ViolationKind::MinItems { limit } => {
                write!(
                    f,
                    "{v} has less than {limit} {}",
                    plural(*limit, "item", "items")
                )
            }
            ViolationKind::UniqueItems => write!(f, "{v} has non-unique elements"),
            ViolationKind::MinProperties { limit } => write!(
                f,
                "{v} has less than {limit} {}",
                plural(*limit, "property", "properties")
            ),
            ViolationKind::MaxProperties { limit } => write!(
                f,
                "{v} has more than {limit} {}",
                plural(*limit, "property", "properties")
            ),
            ViolationKind::Required { property } => {
                write!(
                    f,
                    "{} is a required property",
                    Value::from(property.as_str())
                )
            }
            ViolationKind::AdditionalProperties { unexpected } => {
                let keys: Vec<String> = unexpected.iter().map(|k| format!("'{k}'")).collect();
                let verb = if keys.len() == 1 { "was" } else { "were" };
                write!(
                    f,
                    "Additional properties are not allowed ({} {verb} unexpected)",
                    keys.join(", ")
                )
            }
            ViolationKind::PropertyNames { error } => error.fmt(f),
            ViolationKind::Const { value } => write!(f, "{value} was expected"),
            ViolationKind::ExclusiveMinimum { limit } => {
                write!(f, "{v} is less than or equal to the minimum of {limit}")
            }
            ViolationKind::ExclusiveMaximum { limit } => {
                write!(f, "{v} is greater than or equal to the maximum of {limit}")
            }
            ViolationKind::MaxItems { limit } => write!(
                f,
                "{v} has more than {limit} {}",
                plural(*limit, "item", "items")
            ),
            ViolationKind::Format { format, problem } => {
                write!(f, "{v} is not a \"{format}\": {problem}")
            }
            ViolationKind::NoBranch {
                keyword, branches, ..
            } => {
                let how = if *keyword == "oneOf" {
                    "exactly one"
                } else {
                    "any"
                };
                write!(
                    f,
                    "{v} is not valid under {how} of the {branches} schemas of `{keyword}`"
                )
            }
            ViolationKind::SeveralBranches { matched } => {
                let m: Vec<String> = matched.iter().map(usize::to_string).collect();
                write!(
                    f,
                    "{v} is valid under more than one of the schemas of `oneOf` ({})",
                    m.join(", ")
                )
            }
            ViolationKind::Not => write!(f, "{v} is valid under the schema of `not`"),
        }
    }
}

/// `"x" is not one of "a", "b" or "c"`; past three options, the first two and a count.
fn write_enum(f: &mut fmt::Formatter<'_>, value: &Value, options: &[Value]) -> fmt::Result {
    write!(f, "{value} is not one of ")?;
    let shown: Vec<String> = options.iter().map(Value::to_string).collect();
    match shown.as_slice() {
        [] => Ok(()),
        [only] => f.write_str(only),
        [init @ .., last] if shown.len() <= 3 => write!(f, "{} or {last}", init.join(", ")),
        _ => write!(
            f,
            "{} or {} other candidates",
            shown[..2].join(", "),
            shown.len() - 2
        ),
    }
}

/// A schema checked to use only what this module implements, ready to validate instances.
#[derive(Debug)]
pub struct Validator {
    root: Value,
    dialect: Dialect,
    /// Every `pattern` of the schema, keyed by its text; each is compiled on first use.
    patterns: HashMap<String, Pattern>,
}

#[derive(Debug)]
struct Pattern {
    /// The pattern rewritten so regex-lite reads it as ECMA-262 does.
    translated: String,
    regex: OnceLock<Regex>,
}

impl Validator {
    /// Takes mlplat's config schema ([`Dialect::Strict`]), or says what in it this module would
    /// not enforce.
    pub fn new(schema: Value) -> Result<Self, SchemaError> {
        Self::with_dialect(schema, Dialect::Strict)
    }

    /// Takes a chart's draft-07 values schema ([`Dialect::Chart`]), or says what in it this
    /// module would not enforce as Helm does.
    pub fn chart(schema: Value) -> Result<Self, SchemaError> {
        Self::with_dialect(schema, Dialect::Chart)
    }

    fn with_dialect(schema: Value, dialect: Dialect) -> Result<Self, SchemaError> {
        let declared = schema.get("$schema").and_then(Value::as_str);
        // `…/draft-07/schema` without the empty fragment names the same meta-schema.
        if declared.map(|s| s.trim_end_matches('#')) != Some(DRAFT_07.trim_end_matches('#')) {
            return Err(SchemaError::new(Problem::NotDraft07).under("$schema"));
        }
        let mut patterns = HashMap::new();
        Census {
            root: &schema,
            dialect,
            patterns: &mut patterns,
        }
        .schema(&schema, true)?;
        Ok(Self {
            root: schema,
            dialect,
            patterns,
        })
    }

    /// Whether `instance` breaks nothing (cheaper than counting [`Self::violations`]).
    pub fn is_valid(&self, instance: &Value) -> bool {
        self.violations(instance).is_empty()
    }

    /// The schema as given.
    pub fn schema(&self) -> &Value {
        &self.root
    }

    /// How the schema is read.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Every violation of the schema by `instance`, in the order `jsonschema` reports them.
    pub fn violations(&self, instance: &Value) -> Vec<Violation> {
        let mut out = Vec::new();
        let root = Loc::Start("");
        self.visit(&self.root, root, instance, root, &mut out);
        out
    }

    /// Checks `instance` (at `path`) against the schema at `at`.
    fn visit(
        &self,
        schema: &Value,
        at: Loc<'_>,
        instance: &Value,
        path: Loc<'_>,
        out: &mut Vec<Violation>,
    ) {
        let Value::Object(schema) = schema else {
            return;
        };
        // Draft-07: `$ref` replaces its schema object; `new` made sure nothing beside it counts.
        if let Some(Value::String(target)) = schema.get("$ref") {
            let pointer = target.trim_start_matches('#');
            if let Some(resolved) = self.root.pointer(pointer) {
                self.visit(resolved, Loc::Start(pointer), instance, path, out);
            }
            return;
        }
        let site = Site {
            schema,
            at,
            instance,
            path,
        };
        // Keyword order is `jsonschema`'s, so the violations come in the same order.
        if let Some(types) = schema.get("type") {
            if !type_names(types).any(|t| t.admits(instance)) {
                let expected = type_list(types);
                out.push(site.violation("type", ViolationKind::Type { expected }));
            }
        }
        if let Some(Value::Array(options)) = schema.get("enum") {
            if !options.iter().any(|o| json_equal(o, instance)) {
                let options = options.clone();
                out.push(site.violation("enum", ViolationKind::Enum { options }));
            }
        }
        if let Some(value) = schema.get("const") {
            if !json_equal(value, instance) {
                let value = value.clone();
                out.push(site.violation("const", ViolationKind::Const { value }));
            }
        }
        match instance {
            Value::Number(n) => site.number(n, out),
            Value::String(s) => self.string(&site, s, out),
            Value::Array(items) => self.array(&site, items, out),
            Value::Object(members) => self.object(&site, members, out),
            Value::Null | Value::Bool(_) => {}
        }
        self.applicators(&site, out);
    }

    /// The violations of `instance` against the subschema at `at`.
    fn sub(&self, schema: &Value, at: Loc<'_>, instance: &Value, path: Loc<'_>) -> Vec<Violation> {
        let mut out = Vec::new();
        self.visit(schema, at, instance, path, &mut out);
        out
    }

    /// `allOf`, `anyOf`, `oneOf`, `not` and `if`/`then`/`else`.
    fn applicators(&self, site: &Site<'_>, out: &mut Vec<Violation>) {
        let branches = |keyword| match site.schema.get(keyword) {
            Some(Value::Array(list)) => list.as_slice(),
            _ => &[],
        };
        let all_of = Loc::Key(&site.at, "allOf");
        for (i, schema) in branches("allOf").iter().enumerate() {
            self.visit(
                schema,
                Loc::Index(&all_of, i),
                site.instance,
                site.path,
                out,
            );
        }
        for keyword in ["anyOf", "oneOf"] {
            let list = branches(keyword);
            if list.is_empty() {
                continue;
            }
            let at = Loc::Key(&site.at, keyword);
            let results: Vec<Vec<Violation>> = list
                .iter()
                .enumerate()
                .map(|(i, schema)| self.sub(schema, Loc::Index(&at, i), site.instance, site.path))
                .collect();
            let matched: Vec<usize> = (0..results.len())
                .filter(|i| results[*i].is_empty())
                .collect();
            if matched.is_empty() {
                let closest = closest_branch(results);
                let kind = ViolationKind::NoBranch {
                    keyword,
                    branches: list.len(),
                    closest,
                };
                out.push(site.violation(keyword, kind));
            } else if keyword == "oneOf" && matched.len() > 1 {
                out.push(site.violation("oneOf", ViolationKind::SeveralBranches { matched }));
            }
        }
        if let Some(schema) = site.schema.get("not") {
            let at = Loc::Key(&site.at, "not");
            if self.sub(schema, at, site.instance, site.path).is_empty() {
                out.push(site.violation("not", ViolationKind::Not));
            }
        }
        if let Some(condition) = site.schema.get("if") {
            let holds = self
                .sub(
                    condition,
                    Loc::Key(&site.at, "if"),
                    site.instance,
                    site.path,
                )
                .is_empty();
            let branch = if holds { "then" } else { "else" };
            if let Some(schema) = site.schema.get(branch) {
                self.visit(
                    schema,
                    Loc::Key(&site.at, branch),
                    site.instance,
                    site.path,
                    out,
                );
            }
        }
    }

    fn string(&self, site: &Site<'_>, text: &str, out: &mut Vec<Violation>) {
        let length = text.chars().count() as u64;
        if let Some(limit) = site.count("minLength").filter(|l| length < *l) {
            out.push(site.violation("minLength", ViolationKind::MinLength { limit }));
        }
        if let Some(limit) = site.count("maxLength").filter(|l| length > *l) {
            out.push(site.violation("maxLength", ViolationKind::MaxLength { limit }));
        }
        if let Some(Value::String(pattern)) = site.schema.get("pattern") {
            if !self.matches(pattern, text) {
                let pattern = pattern.clone();
                out.push(site.violation("pattern", ViolationKind::Pattern { pattern }));
            }
        }
        if let Some(Value::String(name)) = site.schema.get("format") {
            if let Some(Err(problem)) = format::check(name, text) {
                let format = name.clone();
                out.push(site.violation("format", ViolationKind::Format { format, problem }));
            }
        }
    }

    fn array(&self, site: &Site<'_>, items: &[Value], out: &mut Vec<Violation>) {
        if let Some(limit) = site.count("minItems").filter(|l| (items.len() as u64) < *l) {
            out.push(site.violation("minItems", ViolationKind::MinItems { limit }));
        }
        if let Some(limit) = site.count("maxItems").filter(|l| (items.len() as u64) > *l) {
            out.push(site.violation("maxItems", ViolationKind::MaxItems { limit }));
        }
        if site.schema.get("uniqueItems") == Some(&Value::Bool(true)) && has_duplicates(items) {
            out.push(site.violation("uniqueItems", ViolationKind::UniqueItems));
        }
        if let Some(schema) = site.schema.get("items") {
            let at = Loc::Key(&site.at, "items");
            for (i, item) in items.iter().enumerate() {
                self.visit(schema, at, item, Loc::Index(&site.path, i), out);
            }
        }
    }

    fn object(&self, site: &Site<'_>, members: &Map<String, Value>, out: &mut Vec<Violation>) {
        let count = members.len() as u64;
        if let Some(limit) = site.count("minProperties").filter(|l| count < *l) {
            out.push(site.violation("minProperties", ViolationKind::MinProperties { limit }));
        }
        if let Some(limit) = site.count("maxProperties").filter(|l| count > *l) {
            out.push(site.violation("maxProperties", ViolationKind::MaxProperties { limit }));
        }
        if let Some(Value::Array(required)) = site.schema.get("required") {
            for property in required.iter().filter_map(Value::as_str) {
                if !members.contains_key(property) {
                    let property = property.to_owned();
                    out.push(site.violation("required", ViolationKind::Required { property }));
                }
            }
        }
        self.members(site, members, out);
        if let Some(schema) = site.schema.get("propertyNames") {
            let at = Loc::Key(&site.at, "propertyNames");
            for name in members.keys() {
                let mut about_name = Vec::new();
                self.visit(
                    schema,
                    at,
                    &Value::from(name.as_str()),
                    site.path,
                    &mut about_name,
                );
                for error in about_name {
                    out.push(Violation {
                        instance_path: site.path.pointer(),
                        schema_path: error.schema_path.clone(),
                        instance: site.instance.clone(),
                        kind: ViolationKind::PropertyNames {
                            error: Box::new(error),
                        },
                    });
                }
            }
        }
    }

    /// `properties` and `additionalProperties`, member by member; the keys
    /// `additionalProperties: false` rejects are reported together, after the members' own
    /// violations.
    fn members(&self, site: &Site<'_>, members: &Map<String, Value>, out: &mut Vec<Violation>) {
        let properties = site.schema.get("properties").and_then(Value::as_object);
        let patterns = site
            .schema
            .get("patternProperties")
            .and_then(Value::as_object);
        let additional = site.schema.get("additionalProperties");
        let mut unexpected = Vec::new();
        for (key, value) in members {
            let path = Loc::Key(&site.path, key);
            let mut known = false;
            if let Some(schema) = properties.and_then(|p| p.get(key)) {
                let properties = Loc::Key(&site.at, "properties");
                self.visit(schema, Loc::Key(&properties, key), value, path, out);
                known = true;
            }
            for (pattern, schema) in patterns.into_iter().flatten() {
                if self.matches(pattern, key) {
                    let at = Loc::Key(&site.at, "patternProperties");
                    self.visit(schema, Loc::Key(&at, pattern), value, path, out);
                    known = true;
                }
            }
            if !known {
                match additional {
                    Some(Value::Bool(false)) => unexpected.push(key.clone()),
                    Some(schema @ Value::Object(_)) => {
                        let at = Loc::Key(&site.at, "additionalProperties");
                        self.visit(schema, at, value, path, out);
                    }
                    _ => {}
                }
            }
        }
        if !unexpected.is_empty() {
            let kind = ViolationKind::AdditionalProperties { unexpected };
            out.push(site.violation("additionalProperties", kind));
        }
    }

    /// Whether `text` matches `pattern`, a pattern of the schema (false for any other).
    pub fn matches_pattern(&self, pattern: &str, text: &str) -> bool {
        self.patterns.contains_key(pattern) && self.matches(pattern, text)
    }

    /// Unanchored search, as JSON Schema's `pattern` is.
    // `every_pattern_of_the_schema_compiles` compiles each pattern of the embedded schema:
    // failing here is a build defect.
    #[allow(clippy::expect_used)]
    fn matches(&self, pattern: &str, text: &str) -> bool {
        // `new` registered every pattern of the schema.
        let p = &self.patterns[pattern];
        p.regex
            .get_or_init(|| {
                Regex::new(&p.translated).expect("schema pattern compiles with regex-lite")
            })
            .is_match(text)
    }
}

/// A JSON pointer as a chain of tokens on the stack: walking builds no string, a violation
/// writes its pointers out.
#[derive(Debug, Clone, Copy)]
enum Loc<'a> {
    /// A pointer as written, already escaped: the root (`""`) or a `$ref` target.
    Start(&'a str),
    Key(&'a Loc<'a>, &'a str),
    Index(&'a Loc<'a>, usize),
}

impl Loc<'_> {
    fn write(&self, out: &mut String) {
        match self {
            Loc::Start(pointer) => out.push_str(pointer),
            Loc::Key(parent, key) => {
                parent.write(out);
                out.push('/');
                for c in key.chars() {
                    match c {
                        '~' => out.push_str("~0"),
                        '/' => out.push_str("~1"),
                        c => out.push(c),
                    }
                }
            }
            Loc::Index(parent, i) => {
                parent.write(out);
                out.push('/');
                out.push_str(&i.to_string());
            }
        }
    }

    fn pointer(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }
}

/// Where the walk is: the schema object and its location, the instance and its location.
struct Site<'a> {
    schema: &'a Map<String, Value>,
    at: Loc<'a>,
    instance: &'a Value,
    path: Loc<'a>,
}

impl Site<'_> {
    fn violation(&self, keyword: &'static str, kind: ViolationKind) -> Violation {
        Violation {
            instance_path: self.path.pointer(),
            schema_path: Loc::Key(&self.at, keyword).pointer(),
            instance: self.instance.clone(),
            kind,
        }
    }

    /// A count keyword (`minLength`, `maxProperties`, …).
    fn count(&self, keyword: &str) -> Option<u64> {
        self.schema.get(keyword).and_then(Value::as_u64)
    }

    fn number(&self, n: &Number, out: &mut Vec<Violation>) {
        if let Some(Value::Number(limit)) = self.schema.get("minimum") {
            if compare(n, limit) == Ordering::Less {
                let limit = limit.clone();
                out.push(self.violation("minimum", ViolationKind::Minimum { limit }));
            }
        }
        if let Some(Value::Number(limit)) = self.schema.get("maximum") {
            if compare(n, limit) == Ordering::Greater {
                let limit = limit.clone();
                out.push(self.violation("maximum", ViolationKind::Maximum { limit }));
            }
        }
        if let Some(Value::Number(limit)) = self.schema.get("exclusiveMinimum") {
            if compare(n, limit) != Ordering::Greater {
                let limit = limit.clone();
                let kind = ViolationKind::ExclusiveMinimum { limit };
                out.push(self.violation("exclusiveMinimum", kind));
            }
        }
        if let Some(Value::Number(limit)) = self.schema.get("exclusiveMaximum") {
            if compare(n, limit) != Ordering::Less {
                let limit = limit.clone();
                let kind = ViolationKind::ExclusiveMaximum { limit };
                out.push(self.violation("exclusiveMaximum", kind));
            }
        }
    }
}

/// The types a `type` keyword names (one name, or a list).
fn type_names(types: &Value) -> impl Iterator<Item = JsonType> + '_ {
    let names = match types {
        Value::Array(names) => names.as_slice(),
        one => std::slice::from_ref(one),
    };
    names
        .iter()
        .filter_map(|n| n.as_str().and_then(JsonType::from_name))
}

/// The types a `type` keyword names, in `jsonschema`'s order.
fn type_list(types: &Value) -> Vec<JsonType> {
    let mut list: Vec<JsonType> = type_names(types).collect();
    list.sort();
    list.dedup();
    list
}

/// JSON Schema equality: numbers by value (`1 == 1.0`), everything else structurally.
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => compare(x, y) == Ordering::Equal,
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_equal(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

fn has_duplicates(items: &[Value]) -> bool {
    items
        .iter()
        .enumerate()
        .any(|(i, a)| items[i + 1..].iter().any(|b| json_equal(a, b)))
}

/// Exact order of two JSON numbers, whether integers or floats (serde_json holds no NaN).
fn compare(a: &Number, b: &Number) -> Ordering {
    match (integer(a), integer(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(x), None) => int_vs_float(x, float(b)),
        (None, Some(y)) => int_vs_float(y, float(a)).reverse(),
        (None, None) => float(a).total_cmp(&float(b)),
    }
}

fn integer(n: &Number) -> Option<i128> {
    n.as_i64()
        .map(i128::from)
        .or_else(|| n.as_u64().map(i128::from))
}

fn float(n: &Number) -> f64 {
    n.as_f64().unwrap_or_default()
}

/// Compares without rounding the integer to a float: by the float's floor, then its fraction.
fn int_vs_float(i: i128, f: f64) -> Ordering {
    // Every i64 and u64 lies strictly between these.
    const BELOW: f64 = -1.8e19;
    const ABOVE: f64 = 1.9e19;
    if f < BELOW {
        return Ordering::Greater;
    }
    if f > ABOVE {
        return Ordering::Less;
    }
    let floor = f.floor();
    // In range, a float's floor is a whole number an i128 holds exactly.
    match i.cmp(&(floor as i128)) {
        Ordering::Equal if f > floor => Ordering::Less,
        other => other,
    }
}

/// Checks, once, that every schema object uses only the keywords implemented here, in shapes
/// understood here, and registers every pattern.
struct Census<'a> {
    root: &'a Value,
    dialect: Dialect,
    patterns: &'a mut HashMap<String, Pattern>,
}

impl Census<'_> {
    fn schema(&mut self, schema: &Value, is_root: bool) -> Result<(), SchemaError> {
        let Value::Object(map) = schema else {
            return Err(malformed("a schema must be an object"));
        };
        let has_ref = map.contains_key("$ref");
        let chart = self.dialect == Dialect::Chart;
        for (keyword, value) in map {
            let checked = if ANNOTATIONS.contains(&keyword.as_str())
                || (chart && CHART_ANNOTATIONS.contains(&keyword.as_str()))
            {
                self.annotation(keyword, value, is_root)
            } else if chart && keyword == "definitions" {
                self.schemas(value)
            } else if chart && !DRAFT_07_KEYWORDS.contains(&keyword.as_str()) {
                // Not a draft-07 keyword (`x-kubernetes-…`, `x-docsSection`): an annotation.
                Ok(())
            } else if has_ref && keyword != "$ref" {
                if chart {
                    // Draft-07: "All other properties in a `$ref` object MUST be ignored."
                    Ok(())
                } else {
                    Err(SchemaError::new(Problem::BesideRef(keyword.clone())))
                }
            } else {
                self.keyword(keyword, value)
            };
            checked.map_err(|e| e.under(keyword))?;
        }
        Ok(())
    }

    fn annotation(
        &mut self,
        keyword: &str,
        value: &Value,
        is_root: bool,
    ) -> Result<(), SchemaError> {
        match keyword {
            // Below the root, both would change how `$ref`s resolve.
            "$schema" | "$id" if !is_root => {
                Err(SchemaError::new(Problem::Unsupported(keyword.to_owned())))
            }
            "$defs" => self.schemas(value),
            _ => Ok(()),
        }
    }

    fn keyword(&mut self, keyword: &str, value: &Value) -> Result<(), SchemaError> {
        let ok = match keyword {
            "$ref" => return self.reference(value),
            "type" => match value {
                Value::Array(names) => {
                    !names.is_empty() && type_names(value).count() == names.len()
                }
                _ => type_names(value).count() == 1,
            },
            "enum" => value.is_array(),
            "required" => value
                .as_array()
                .is_some_and(|a| a.iter().all(Value::is_string)),
            "minLength" | "maxLength" | "minItems" | "maxItems" | "minProperties"
            | "maxProperties" => value.is_u64(),
            "minimum" | "maximum" | "exclusiveMinimum" | "exclusiveMaximum" => value.is_number(),
            "uniqueItems" => value.is_boolean(),
            "const" => true,
            "pattern" => return self.pattern(value),
            "format" => return self.format(value),
            "properties" => return self.schemas(value),
            "patternProperties" => return self.pattern_properties(value),
            "additionalProperties" if value.is_boolean() => true,
            "additionalProperties" | "items" | "propertyNames" | "not" | "if" | "then" | "else" => {
                return self.schema(value, false);
            }
            "allOf" | "anyOf" | "oneOf" => return self.branches(value),
            _ => {
                return Err(SchemaError::new(Problem::Unsupported(keyword.to_owned())));
            }
        };
        if ok {
            Ok(())
        } else {
            Err(malformed("not a value this keyword takes in draft-07"))
        }
    }

    /// `allOf`, `anyOf`, `oneOf`: a non-empty list of schemas.
    fn branches(&mut self, value: &Value) -> Result<(), SchemaError> {
        let Some(list) = value.as_array().filter(|l| !l.is_empty()) else {
            return Err(malformed("expected a non-empty list of schemas"));
        };
        for (i, schema) in list.iter().enumerate() {
            self.schema(schema, false)
                .map_err(|e| e.under(&i.to_string()))?;
        }
        Ok(())
    }

    /// `patternProperties`: patterns to schemas; each pattern is registered like `pattern`'s.
    fn pattern_properties(&mut self, value: &Value) -> Result<(), SchemaError> {
        let Value::Object(map) = value else {
            return Err(malformed("expected a mapping of patterns to schemas"));
        };
        for (pattern, schema) in map {
            self.pattern(&Value::from(pattern.as_str()))
                .and_then(|()| self.schema(schema, false))
                .map_err(|e| e.under(pattern))?;
        }
        Ok(())
    }

    /// A format is checked when this module implements it, ignored when Helm's validator
    /// ignores it too (`int32`, `byte`, …), and refused otherwise.
    fn format(&mut self, value: &Value) -> Result<(), SchemaError> {
        let Value::String(name) = value else {
            return Err(malformed("a format must be a string"));
        };
        if format::ASSERTED_ELSEWHERE.contains(&name.as_str()) {
            return Err(SchemaError::new(Problem::Format(name.clone())));
        }
        Ok(())
    }

    /// A map of names to schemas (`properties`, `$defs`).
    fn schemas(&mut self, value: &Value) -> Result<(), SchemaError> {
        let Value::Object(map) = value else {
            return Err(malformed("expected a mapping of names to schemas"));
        };
        for (name, schema) in map {
            self.schema(schema, false).map_err(|e| e.under(name))?;
        }
        Ok(())
    }

    /// A local reference (`#` or `#/json/pointer`) to a schema object that is not itself only a
    /// chain of `$ref`s back to where it started.
    fn reference(&mut self, value: &Value) -> Result<(), SchemaError> {
        let target = value.as_str().unwrap_or_default();
        let unresolved = || SchemaError::new(Problem::Unresolved(target.to_owned()));
        let mut seen = Vec::new();
        let mut next = target;
        loop {
            let pointer = next.strip_prefix('#').ok_or_else(unresolved)?;
            if pointer.contains('%') || seen.contains(&pointer) {
                return Err(unresolved());
            }
            seen.push(pointer);
            match self.root.pointer(pointer) {
                Some(Value::Object(map)) => match map.get("$ref") {
                    Some(Value::String(further)) => next = further,
                    Some(_) => return Err(unresolved()),
                    None => return Ok(()),
                },
                _ => return Err(unresolved()),
            }
        }
    }

    fn pattern(&mut self, value: &Value) -> Result<(), SchemaError> {
        let Value::String(pattern) = value else {
            return Err(malformed("a pattern must be a string"));
        };
        let translate = match self.dialect {
            Dialect::Strict => translate,
            Dialect::Chart => translate_go,
        };
        let translated = translate(pattern).map_err(|problem| {
            SchemaError::new(Problem::Pattern {
                pattern: pattern.clone(),
                problem,
            })
        })?;
        self.patterns.insert(
            pattern.clone(),
            Pattern {
                translated,
                regex: OnceLock::new(),
            },
        );
        Ok(())
    }
}

/// Of the violations of each branch of an `anyOf` or `oneOf`, those of the branch that came
/// closest: the fewest violations that are not about the type of the value itself (a branch
/// for another type says little about what was meant), then the fewest violations.
fn closest_branch(results: Vec<Vec<Violation>>) -> Vec<Violation> {
    let rank = |v: &Vec<Violation>| {
        let wrong_type = v
            .iter()
            .any(|e| matches!(e.kind, ViolationKind::Type { .. }));
        (wrong_type, v.len())
    };
    results
        .into_iter()
        .min_by_key(|v| rank(v))
        .unwrap_or_default()
}

/// Rewrites a pattern of a chart's schema so regex-lite matches what Go's `regexp` (RE2, which
/// Helm's validator uses) matches. The two agree on nearly everything (`.` excludes only `\n`,
/// `\d`, `\w` and `\b` are ASCII); `\s` is `[\t\n\f\r ]` in Go, without regex-lite's `\v`.
/// Refuses what regex-lite would read otherwise: `\S` inside a class, and the set syntax it
/// reads inside a class (`[`, a doubled `&`, `-` or `~`).
fn translate_go(pattern: &str) -> Result<String, &'static str> {
    const GO_SPACE: &str = r"\t\n\x0C\r ";
    let mut out = String::with_capacity(pattern.len());
    let mut in_class = false;
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(escaped) = chars.next() else {
                    return Err("ends in a lone `\\`");
                };
                match (escaped, in_class) {
                    ('s', true) => out.push_str(GO_SPACE),
                    ('s', false) => out.push_str(&format!("[{GO_SPACE}]")),
                    ('S', false) => out.push_str(&format!("[^{GO_SPACE}]")),
                    ('S', true) => {
                        return Err("has `\\S` inside a class, which regex-lite reads otherwise");
                    }
                    _ => {
                        out.push('\\');
                        out.push(escaped);
                    }
                }
                continue;
            }
            '[' if in_class => {
                return Err(
                    "has `[` inside a class: a POSIX class or a literal in Go, a nested class in regex-lite",
                );
            }
            '[' => {
                in_class = true;
                out.push('[');
                if chars.peek() == Some(&'^') {
                    out.extend(chars.next());
                }
                // A `]` right after the opening is a literal in both.
                if chars.peek() == Some(&']') {
                    out.push_str("\\]");
                    chars.next();
                }
                continue;
            }
            ']' if in_class => in_class = false,
            '&' | '-' | '~' if in_class && chars.peek() == Some(&c) => {
                return Err(
                    "has a doubled `&`, `-` or `~` inside a class: literal in Go, set syntax in regex-lite",
                );
            }
            _ => {}
        }
        out.push(c);
    }
    Ok(out)
}

fn malformed(expected: &'static str) -> SchemaError {
    SchemaError::new(Problem::Malformed(expected))
}

/// Rewrites an ECMA-262 pattern so regex-lite matches what `jsonschema` matches: `\s`, `\S` and
/// `.` get their ECMA-262 (Unicode-aware) meaning. Refuses what would still differ: word
/// boundaries (ASCII in regex-lite), `\S` inside a class, and inside a class a `[`, a leading
/// `]`, or a doubled `&`, `-` or `~`.
fn translate(pattern: &str) -> Result<String, &'static str> {
    let mut out = String::with_capacity(pattern.len());
    let mut in_class = false;
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(escaped) = chars.next() else {
                    return Err("ends in a lone `\\`");
                };
                match (escaped, in_class) {
                    ('s', true) => out.push_str(ECMA_SPACE),
                    ('s', false) => out.push_str(&format!("[{ECMA_SPACE}]")),
                    ('S', false) => out.push_str(&format!("[^{ECMA_SPACE}]")),
                    ('S', true) => {
                        return Err(
                            "has `\\S` inside a class, which regex-lite cannot spell as ECMA-262 means it",
                        );
                    }
                    ('b' | 'B', _) => {
                        return Err("has a word boundary, which regex-lite reads as ASCII only");
                    }
                    _ => {
                        out.push('\\');
                        out.push(escaped);
                    }
                }
                continue;
            }
            '[' if in_class => {
                return Err(
                    "has `[` inside a class: a literal in ECMA-262, a nested class in regex-lite",
                );
            }
            '[' => {
                in_class = true;
                out.push('[');
                // `[]` matches nothing and `[^]` anything in ECMA-262; regex-lite reads on.
                if chars.peek() == Some(&'^') {
                    out.extend(chars.next());
                }
                if chars.peek() == Some(&']') {
                    return Err(
                        "has a class starting with `]`: empty in ECMA-262, a literal in regex-lite",
                    );
                }
                continue;
            }
            ']' if in_class => in_class = false,
            '&' | '-' | '~' if in_class && chars.peek() == Some(&c) => {
                return Err(
                    "has a doubled `&`, `-` or `~` inside a class: literal in ECMA-262, set syntax in regex-lite",
                );
            }
            '.' if !in_class => {
                out.push_str(ECMA_DOT);
                continue;
            }
            _ => {}
        }
        out.push(c);
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn draft7(schema: Value) -> Value {
        let mut schema = schema;
        schema["$schema"] = json!(DRAFT_07);
        schema
    }

    fn kinds(schema: Value, instance: Value) -> Vec<ViolationKind> {
        Validator::new(draft7(schema))
            .unwrap()
            .violations(&instance)
            .into_iter()
            .map(|v| v.kind)
            .collect()
    }

    #[test]
    fn a_keyword_it_does_not_implement_is_refused() {
        let err = Validator::new(draft7(json!({
            "properties": {"a": {"contains": {"type": "string"}}}
        })))
        .unwrap_err();
        assert_eq!(err.path, "/properties/a/contains");
        assert_eq!(err.problem, Problem::Unsupported("contains".to_owned()));
        assert_eq!(
            err.to_string(),
            "schema /properties/a/contains: keyword `contains` is not implemented by mlplat's schema validator"
        );
        // Strict: an unknown keyword is refused too; a chart schema takes it as an annotation.
        let unknown = draft7(json!({"properties": {"a": {"x-docs": "d"}}}));
        assert!(Validator::new(unknown.clone()).is_err());
        assert!(Validator::chart(unknown).is_ok());
    }

    #[test]
    fn what_draft_07_would_ignore_or_read_otherwise_is_refused() {
        let refused = |schema: Value| {
            let e = Validator::new(schema).unwrap_err();
            (e.path, e.problem)
        };
        assert_eq!(
            refused(json!({"type": "string"})),
            ("/$schema".to_owned(), Problem::NotDraft07)
        );
        assert_eq!(
            refused(draft7(json!({"properties": {"x": {"$schema": DRAFT_07}}}))),
            (
                "/properties/x/$schema".to_owned(),
                Problem::Unsupported("$schema".to_owned())
            )
        );
        assert_eq!(
            refused(draft7(json!({
                "$defs": {"a": {"type": "string"}},
                "properties": {"x": {"$ref": "#/$defs/a", "maxLength": 3}}
            }))),
            (
                "/properties/x/maxLength".to_owned(),
                Problem::BesideRef("maxLength".to_owned())
            )
        );
        assert_eq!(
            refused(draft7(
                json!({"properties": {"x~y": {"$ref": "#/$defs/nowhere"}}})
            )),
            (
                "/properties/x~0y/$ref".to_owned(),
                Problem::Unresolved("#/$defs/nowhere".to_owned())
            )
        );
        let cycle = json!({"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}});
        assert!(matches!(refused(draft7(cycle)).1, Problem::Unresolved(_)));
        assert!(matches!(
            refused(draft7(json!({"items": [{"type": "string"}]}))).1,
            Problem::Malformed(_)
        ));
        assert!(matches!(
            refused(draft7(json!({"minLength": -1}))).1,
            Problem::Malformed(_)
        ));
        assert!(matches!(
            refused(draft7(json!({"type": ["string", "text"]}))).1,
            Problem::Malformed(_)
        ));
        assert!(matches!(
            refused(draft7(json!({"pattern": "\\bword\\b"}))).1,
            Problem::Pattern { .. }
        ));
    }

    fn chart_kinds(schema: Value, instance: Value) -> Vec<ViolationKind> {
        Validator::chart(draft7(schema))
            .unwrap()
            .violations(&instance)
            .into_iter()
            .map(|v| v.kind)
            .collect()
    }

    #[test]
    fn a_chart_schema_is_read_as_draft_07_reads_it() {
        // Beside `$ref`, nothing counts; unknown keywords are annotations.
        let schema = json!({
            "definitions": {"s": {"type": "string"}},
            "properties": {"a": {"$ref": "#/definitions/s", "minLength": 5, "type": "integer",
                                 "x-kubernetes-list-type": "atomic", "$comment": "c"}}
        });
        assert!(chart_kinds(schema.clone(), json!({"a": "ab"})).is_empty());
        assert_eq!(
            chart_kinds(schema.clone(), json!({"a": 1})),
            vec![ViolationKind::Type {
                expected: vec![JsonType::String]
            }]
        );
        // The strict dialect refuses both.
        assert!(Validator::new(draft7(schema)).is_err());
        // `…/draft-07/schema` without `#` is draft-07 too; another draft is refused.
        let mut no_hash = json!({"type": "string"});
        no_hash["$schema"] = json!("http://json-schema.org/draft-07/schema");
        assert!(Validator::chart(no_hash).is_ok());
        assert!(Validator::chart(json!({"$schema": "http://json-schema.org/schema#"})).is_err());
        // Draft-07 assertions not implemented here are refused, not ignored.
        for refused in [
            json!({"contains": {"type": "string"}}),
            json!({"dependencies": {"a": ["b"]}}),
            json!({"properties": {"e": {"format": "email"}}}),
        ] {
            assert!(
                Validator::chart(draft7(refused.clone())).is_err(),
                "{refused}"
            );
        }
    }

    #[test]
    fn applicators_and_the_keywords_charts_use() {
        let one_of = json!({"oneOf": [{"type": "string"}, {"type": "object", "required": ["name"],
            "properties": {"name": {"type": "string"}}, "additionalProperties": false}]});
        assert!(chart_kinds(one_of.clone(), json!("host")).is_empty());
        assert!(chart_kinds(one_of.clone(), json!({"name": "host"})).is_empty());
        let kinds = chart_kinds(one_of, json!({"name": "h", "tls": {}}));
        let [
            ViolationKind::NoBranch {
                keyword: "oneOf",
                branches: 2,
                closest,
            },
        ] = kinds.as_slice()
        else {
            panic!("{kinds:?}");
        };
        // The closest branch is the object one: it says which key is wrong.
        assert!(matches!(
            &closest[..],
            [Violation { kind: ViolationKind::AdditionalProperties { unexpected }, .. }] if unexpected == &["tls"]
        ));
        let both = json!({"oneOf": [{"type": "integer"}, {"minimum": 0}]});
        assert_eq!(
            chart_kinds(both, json!(3)),
            vec![ViolationKind::SeveralBranches {
                matched: vec![0, 1]
            }]
        );
        let any_of = json!({"anyOf": [{"required": ["value"]}, {"required": ["valueFrom"]}]});
        assert!(chart_kinds(any_of.clone(), json!({"value": "x"})).is_empty());
        assert!(matches!(
            chart_kinds(any_of, json!({"name": "x"}))[..],
            [ViolationKind::NoBranch {
                keyword: "anyOf",
                ..
            }]
        ));
        let if_then = json!({"if": {"properties": {"type": {"const": "postgres"}}},
            "then": {"required": ["url"]}, "else": {"not": {"required": ["url"]}}});
        assert!(chart_kinds(if_then.clone(), json!({"type": "postgres", "url": "u"})).is_empty());
        assert_eq!(
            chart_kinds(if_then.clone(), json!({"type": "postgres"})),
            vec![ViolationKind::Required {
                property: "url".into()
            }]
        );
        assert_eq!(
            chart_kinds(if_then, json!({"type": "sqlite", "url": "u"})),
            vec![ViolationKind::Not]
        );
        let patterns = json!({"patternProperties": {"^[A-Z]": {"type": "string"}},
            "properties": {"known": {}}, "additionalProperties": false});
        assert!(chart_kinds(patterns.clone(), json!({"Upper": "x", "known": 1})).is_empty());
        let kinds = chart_kinds(patterns, json!({"Upper": 1, "lower": 1}));
        assert!(matches!(kinds[0], ViolationKind::Type { .. }), "{kinds:?}");
        assert!(
            matches!(&kinds[1], ViolationKind::AdditionalProperties { unexpected } if unexpected == &["lower"])
        );
        assert_eq!(
            chart_kinds(json!({"maxItems": 1, "exclusiveMinimum": 0}), json!([1, 2])),
            vec![ViolationKind::MaxItems { limit: 1 }]
        );
        assert_eq!(
            chart_kinds(json!({"exclusiveMinimum": 0}), json!(0)),
            vec![ViolationKind::ExclusiveMinimum { limit: 0.into() }]
        );
        assert!(matches!(
            chart_kinds(json!({"format": "date-time"}), json!("yesterday"))[..],
            [ViolationKind::Format { .. }]
        ));
        assert!(chart_kinds(json!({"format": "int32"}), json!(1e12)).is_empty());
    }

    #[test]
    fn chart_patterns_are_go_regular_expressions() {
        let v = Validator::chart(draft7(json!({"pattern": "^a.b\\s$"}))).unwrap();
        let ok = |s: &str| v.violations(&json!(s)).is_empty();
        assert!(ok("a\rb "), "Go's `.` matches \\r");
        assert!(!ok("a\nb "), "but not \\n");
        assert!(!ok("axb\u{a0}"), "Go's \\s is ASCII");
        assert!(!ok("axb\u{b}"), "and has no \\v");
        assert_eq!(translate_go("[]a]").unwrap(), "[\\]a]");
        assert!(translate_go("[[:alpha:]]").is_err());
    }

    #[test]
    fn every_pattern_of_the_schema_compiles() {
        let v = Validator::new(serde_json::from_str(super::super::SCHEMA_TEXT).unwrap()).unwrap();
        assert!(v.patterns.len() >= 20, "{} patterns", v.patterns.len());
        for (pattern, p) in &v.patterns {
            if let Err(e) = Regex::new(&p.translated) {
                panic!(
                    "regex-lite refuses {pattern:?} (as {:?}): {e}",
                    p.translated
                );
            }
        }
    }

    #[test]
    fn patterns_search_and_mean_what_ecma_262_means() {
        let v = Validator::new(draft7(json!({"pattern": "^[^@\\s]+@x"}))).unwrap();
        let ok = |s: &str| v.violations(&json!(s)).is_empty();
        assert!(ok("me@x.org"), "a search, not a whole match");
        assert!(!ok("m\u{a0}e@x"), "no-break space is ECMA whitespace");
        assert!(ok("m\u{85}e@x"), "NEL is not");
        assert_eq!(translate("a.b").unwrap(), format!("a{ECMA_DOT}b"));
        assert_eq!(translate("[.-]").unwrap(), "[.-]");
        assert!(translate("[a[b]").is_err());
        assert!(translate("[a--b]").is_err());
    }

    #[test]
    fn numbers_follow_draft_07() {
        let schema = json!({"type": "integer", "minimum": 1, "maximum": 3});
        assert!(
            kinds(schema.clone(), json!(2.0)).is_empty(),
            "2.0 is an integer"
        );
        assert_eq!(
            kinds(schema.clone(), json!(2.5)),
            vec![ViolationKind::Type {
                expected: vec![JsonType::Integer]
            }]
        );
        assert_eq!(
            kinds(schema, json!(0.5)).last(),
            Some(&ViolationKind::Minimum { limit: 1.into() })
        );
        assert_eq!(
            compare(&u64::MAX.into(), &Number::from_f64(1.8e19).unwrap()),
            Ordering::Greater
        );
        assert_eq!(
            compare(&(-3).into(), &Number::from_f64(-2.5).unwrap()),
            Ordering::Less
        );
        assert_eq!(
            compare(&3.into(), &Number::from_f64(3.0).unwrap()),
            Ordering::Equal
        );
    }

    #[test]
    fn enum_and_unique_items_use_json_equality() {
        assert!(kinds(json!({"enum": [1, "a"]}), json!(1.0)).is_empty());
        assert_eq!(
            kinds(json!({"uniqueItems": true}), json!([{"a": 1}, {"a": 1.0}])),
            vec![ViolationKind::UniqueItems]
        );
        assert!(kinds(json!({"uniqueItems": true}), json!([1, "1", true])).is_empty());
    }

    #[test]
    fn lengths_count_code_points() {
        let schema = json!({"maxLength": 2});
        assert!(kinds(schema.clone(), json!("éé")).is_empty());
        assert_eq!(
            kinds(schema, json!("ééé")),
            vec![ViolationKind::MaxLength { limit: 2 }]
        );
    }

    #[test]
    fn violations_name_both_places() {
        let v = Validator::new(draft7(json!({
            "$defs": {"port": {"type": "integer", "maximum": 9}},
            "additionalProperties": false,
            "properties": {"p": {"$ref": "#/$defs/port"}, "a/b": {"type": "string"}},
            "propertyNames": {"maxLength": 3}
        })))
        .unwrap();
        let found: Vec<(String, String, String)> = v
            .violations(&json!({"p": 10, "a/b": 1, "long": true}))
            .into_iter()
            .map(|e| {
                (
                    e.instance_path.clone(),
                    e.schema_path.clone(),
                    e.to_string(),
                )
            })
            .collect();
        let expect = |i: &str, s: &str, m: &str| (i.to_owned(), s.to_owned(), m.to_owned());
        assert_eq!(
            found,
            vec![
                expect(
                    "/a~1b",
                    "/properties/a~1b/type",
                    "1 is not of type \"string\""
                ),
                expect(
                    "/p",
                    "/$defs/port/maximum",
                    "10 is greater than the maximum of 9"
                ),
                expect(
                    "",
                    "/additionalProperties",
                    "Additional properties are not allowed ('long' was unexpected)"
                ),
                expect(
                    "",
                    "/propertyNames/maxLength",
                    "\"long\" is longer than 3 characters"
                ),
            ]
        );
    }
}
