//! Server-side Table output (`meta.k8s.io/v1` `Table`): what `kubectl get` prints.
//!
//! kubectl asks for lists and watches with `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`
//! and prints the columns the server defines. The printers here give the columns and
//! cells of kube-apiserver's printers for every served resource. As in kube-apiserver,
//! rows always carry every column, wide ones included (`priority: 1`); kubectl hides the
//! wide columns unless `-o wide`. AGE and the like are computed on the server as short
//! durations (`5m`, `3h12m`). Each row carries its object as `includeObject` asks:
//! nothing, its metadata as a `PartialObjectMetadata` (the default) or the whole object.

mod core;
mod format;
mod network;
mod pods;
mod workloads;

use jiff::Timestamp;
use k8s_openapi::api::autoscaling::v1::Scale;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::openapi::field_description;
use crate::resources::ResourceInfo;

pub use format::human_duration;

/// The `includeObject` query parameter: what each row carries besides its cells.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    /// A `PartialObjectMetadata` with the object's metadata (the default).
    #[default]
    Metadata,
    Object,
}

impl IncludeObject {
    /// Parses the query value (`None`, `Metadata`, `Object`; absent means `Metadata`).
    pub fn parse(value: Option<&str>) -> Result<Self, UnknownIncludeObject> {
        match value {
            None | Some("") | Some("Metadata") => Ok(IncludeObject::Metadata),
            Some("None") => Ok(IncludeObject::None),
            Some("Object") => Ok(IncludeObject::Object),
            Some(other) => Err(UnknownIncludeObject(other.to_string())),
        }
    }
}

/// An `includeObject` value that is none of `None`, `Metadata`, `Object`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("includeObject: Unsupported value: {0:?}: supported values: \"Metadata\", \"None\", \"Object\"")]
pub struct UnknownIncludeObject(pub String);

/// How to render a table (`metav1.TableOptions` and the request's `includeObject`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableOptions {
    pub include: IncludeObject,
    /// Leave out `columnDefinitions` (`?noHeaders=true`, used for watch events after the first).
    pub no_headers: bool,
}

/// Where a column's description comes from.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Doc {
    Text(&'static str),
    /// The description of a field: (schema name, field).
    Field(&'static str, &'static str),
}

/// One `TableColumnDefinition`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Column {
    pub name: &'static str,
    /// `string`, `integer`, `boolean`.
    pub kind: &'static str,
    /// `name` for the NAME column, else empty.
    pub format: &'static str,
    /// `1` for columns shown only with `-o wide`.
    pub priority: u8,
    pub doc: Doc,
}

pub(crate) const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

pub(crate) const fn col(name: &'static str, kind: &'static str, priority: u8, doc: Doc) -> Column {
    Column { name, kind, format: "", priority, doc }
}

/// The NAME column.
pub(crate) const NAME: Column =
    Column { name: "Name", kind: "string", format: "name", priority: 0, doc: Doc::Field(OBJECT_META, "name") };
/// The AGE column.
pub(crate) const AGE: Column = col("Age", "string", 0, Doc::Field(OBJECT_META, "creationTimestamp"));

/// One row: its cells and `TableRowCondition`s.
pub(crate) struct Row {
    pub cells: Vec<Value>,
    pub conditions: Vec<Value>,
}

impl Row {
    pub fn new(cells: Vec<Value>) -> Self {
        Row { cells, conditions: Vec::new() }
    }
}

/// Turns one object into a row; `None` when the object does not decode as its type.
pub(crate) type RowFn = fn(&Value, Timestamp) -> Option<Row>;

/// A resource's printer: its columns and how to turn one object into a row.
pub(crate) struct Printer {
    pub columns: &'static [Column],
    pub row: RowFn,
}

/// The printer of a resource, by group and plural.
fn printer(res: &ResourceInfo) -> Option<Printer> {
    core::printer(res.group, res.plural)
        .or_else(|| pods::printer(res.group, res.plural))
        .or_else(|| workloads::printer(res.group, res.plural))
        .or_else(|| network::printer(res.group, res.plural))
}

/// Columns of resources knet has no printer for: NAME and AGE, as kube's default table.
const DEFAULT_COLUMNS: &[Column] = &[NAME, col("Created At", "date", 0, Doc::Field(OBJECT_META, "creationTimestamp"))];

/// Decodes `v` into its k8s-openapi type and prints it with `f`.
pub(crate) fn typed<T: DeserializeOwned>(v: &Value, now: Timestamp, f: fn(&T, Timestamp) -> Row) -> Option<Row> {
    T::deserialize(v).ok().map(|t| f(&t, now))
}

fn column_json(c: &Column) -> Value {
    let description = match c.doc {
        Doc::Text(t) => t,
        Doc::Field(schema, field) => field_description(schema, field).unwrap_or_default(),
    };
    json!({"name": c.name, "type": c.kind, "format": c.format, "description": description, "priority": c.priority})
}

/// The `columnDefinitions` of a resource's table.
pub fn column_definitions(res: &ResourceInfo) -> Vec<Value> {
    let columns = printer(res).map(|p| p.columns).unwrap_or(DEFAULT_COLUMNS);
    columns.iter().map(column_json).collect()
}

/// A row's cells when the object does not decode as its type: the name, then blanks.
fn fallback_row(obj: &Value, columns: &[Column]) -> Row {
    let name = obj.pointer("/metadata/name").cloned().unwrap_or_else(|| json!(""));
    let mut cells = vec![name];
    cells.resize(columns.len().max(1), json!(""));
    Row::new(cells)
}

/// The object a row carries, per `includeObject`.
fn row_object(kind: &str, api_version: &str, obj: &Value, include: IncludeObject) -> Option<Value> {
    match include {
        IncludeObject::None => None,
        IncludeObject::Metadata => Some(json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
        })),
        IncludeObject::Object => {
            let mut full = obj.clone();
            if let Value::Object(m) = &mut full {
                m.entry("kind").or_insert_with(|| json!(kind));
                m.entry("apiVersion").or_insert_with(|| json!(api_version));
            }
            Some(full)
        }
    }
}

/// A `meta.k8s.io/v1` Table for a list (or a single object, or one watch event's
/// object). `list_meta` is the Table's `metadata` (`resourceVersion`, `continue`,
/// `remainingItemCount`). Every column is included whatever `wide_hint` says, as
/// kube-apiserver does: kubectl drops the `priority: 1` ones unless `-o wide`.
pub fn table(
    res: &ResourceInfo,
    objects: &[Value],
    list_meta: Value,
    include: IncludeObject,
    wide_hint: bool,
) -> Value {
    let _ = wide_hint;
    table_with(res, objects, list_meta, TableOptions { include, no_headers: false }, Timestamp::now())
}

/// [`table`] with all options and an explicit "now" for the AGE-like cells.
pub fn table_with(
    res: &ResourceInfo,
    objects: &[Value],
    list_meta: Value,
    opts: TableOptions,
    now: Timestamp,
) -> Value {
    let p = printer(res);
    let columns = p.as_ref().map(|p| p.columns).unwrap_or(DEFAULT_COLUMNS);
    let api_version = res.api_version();
    let rows: Vec<Value> = objects
        .iter()
        .map(|obj| {
            let row = match &p {
                Some(p) => (p.row)(obj, now).unwrap_or_else(|| fallback_row(obj, columns)),
                None => default_row(obj),
            };
            let mut m = Map::new();
            m.insert("cells".into(), Value::Array(row.cells));
            if !row.conditions.is_empty() {
                m.insert("conditions".into(), Value::Array(row.conditions));
            }
            if let Some(o) = row_object(res.kind, &api_version, obj, opts.include) {
                m.insert("object".into(), o);
            }
            Value::Object(m)
        })
        .collect();
    let metadata = if list_meta.is_object() { list_meta } else { json!({}) };
    let mut out = Map::new();
    out.insert("kind".into(), json!("Table"));
    out.insert("apiVersion".into(), json!("meta.k8s.io/v1"));
    out.insert("metadata".into(), metadata);
    if !opts.no_headers {
        out.insert("columnDefinitions".into(), Value::Array(columns.iter().map(column_json).collect()));
    }
    out.insert("rows".into(), Value::Array(rows));
    Value::Object(out)
}

/// NAME and the creation timestamp, for a resource without a printer.
fn default_row(obj: &Value) -> Row {
    let name = obj.pointer("/metadata/name").cloned().unwrap_or_else(|| json!(""));
    let created = obj.pointer("/metadata/creationTimestamp").cloned().unwrap_or(Value::Null);
    Row::new(vec![name, created])
}

/// The Table of an `autoscaling/v1` `Scale` (`kubectl get --subresource=scale`).
pub fn scale_table(scale: &Value, opts: TableOptions, now: Timestamp) -> Value {
    const COLUMNS: &[Column] = &[
        col("Name", "string", 0, Doc::Field(OBJECT_META, "name")),
        col("Desired", "integer", 0, Doc::Field("io.k8s.api.autoscaling.v1.ScaleSpec", "replicas")),
        col("Available", "integer", 0, Doc::Field("io.k8s.api.autoscaling.v1.ScaleStatus", "replicas")),
        AGE,
    ];
    let s = Scale::deserialize(scale).ok();
    let cells = match s {
        Some(s) => vec![
            json!(s.metadata.name.clone().unwrap_or_default()),
            json!(s.spec.as_ref().and_then(|sp| sp.replicas).unwrap_or(0)),
            json!(s.status.as_ref().map(|st| st.replicas).unwrap_or(0)),
            json!(format::since_time(s.metadata.creation_timestamp.as_ref(), now)),
        ],
        None => fallback_row(scale, COLUMNS).cells,
    };
    let mut row = Map::new();
    row.insert("cells".into(), Value::Array(cells));
    if let Some(o) = row_object("Scale", "autoscaling/v1", scale, opts.include) {
        row.insert("object".into(), o);
    }
    let mut out = Map::new();
    out.insert("kind".into(), json!("Table"));
    out.insert("apiVersion".into(), json!("meta.k8s.io/v1"));
    out.insert(
        "metadata".into(),
        json!({"resourceVersion": scale.pointer("/metadata/resourceVersion").cloned().unwrap_or(json!(""))}),
    );
    if !opts.no_headers {
        out.insert("columnDefinitions".into(), Value::Array(COLUMNS.iter().map(column_json).collect()));
    }
    out.insert("rows".into(), json!([Value::Object(row)]));
    Value::Object(out)
}

#[cfg(test)]
pub(crate) mod testutil {
    use jiff::Timestamp;
    use serde_json::Value;

    use crate::resources::{find, ResourceInfo};

    /// 2024-05-01T12:00:00Z, the "now" of every printer test.
    pub fn now() -> Timestamp {
        "2024-05-01T12:00:00Z".parse().unwrap_or(Timestamp::UNIX_EPOCH)
    }

    /// An RFC 3339 time `secs` seconds before [`now`].
    pub fn ago(secs: i64) -> String {
        let t = now().as_second() - secs;
        Timestamp::from_second(t).map(|t| t.to_string()).unwrap_or_default()
    }

    pub fn res(group: &str, plural: &str) -> &'static ResourceInfo {
        find(group, "v1", plural).unwrap_or_else(|| panic!("{plural} not served"))
    }

    /// The cells of one object's row.
    pub fn cells(group: &str, plural: &str, obj: Value) -> Vec<Value> {
        let t = super::table_with(res(group, plural), &[obj], serde_json::json!({}), Default::default(), now());
        t["rows"][0]["cells"].as_array().cloned().unwrap_or_default()
    }

    /// The column names and priorities of a resource's table.
    pub fn columns(group: &str, plural: &str) -> Vec<(String, u64)> {
        super::column_definitions(res(group, plural))
            .iter()
            .map(|c| (c["name"].as_str().unwrap_or_default().to_string(), c["priority"].as_u64().unwrap_or(9)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;
    use crate::resources::RESOURCES;

    #[test]
    fn every_served_resource_has_a_printer_whose_rows_fit_its_columns() {
        for r in RESOURCES {
            let p = printer(r).unwrap_or_else(|| panic!("{} has no printer", r.plural));
            let obj = json!({"metadata": {"name": "x", "creationTimestamp": ago(30)}});
            let t = table_with(r, &[obj], json!({}), TableOptions::default(), now());
            let cells = t["rows"][0]["cells"].as_array().expect("cells");
            assert_eq!(cells.len(), p.columns.len(), "{}: cells vs columns", r.plural);
            let cols = t["columnDefinitions"].as_array().expect("columns");
            assert_eq!(cols.iter().filter(|c| c["format"] == "name").count(), 1, "{}: one NAME column", r.plural);
            for c in t["columnDefinitions"].as_array().expect("columns") {
                assert!(
                    c["description"].as_str().is_some_and(|d| !d.is_empty()),
                    "{}: {} undocumented",
                    r.plural,
                    c["name"]
                );
            }
        }
    }

    #[test]
    fn rows_carry_the_object_as_asked() {
        let r = res("", "configmaps");
        let obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "resourceVersion": "7"}, "data": {"k": "v"}});
        let meta =
            table_with(r, std::slice::from_ref(&obj), json!({"resourceVersion": "9"}), TableOptions::default(), now());
        assert_eq!(meta["kind"], "Table");
        assert_eq!(meta["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(meta["metadata"]["resourceVersion"], "9");
        assert_eq!(meta["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(meta["rows"][0]["object"]["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(meta["rows"][0]["object"]["metadata"]["resourceVersion"], "7");
        assert!(meta["rows"][0]["object"].get("data").is_none());
        let opts = TableOptions { include: IncludeObject::Object, no_headers: true };
        let full = table_with(r, std::slice::from_ref(&obj), json!({}), opts, now());
        assert_eq!(full["rows"][0]["object"]["data"]["k"], "v");
        assert!(full.get("columnDefinitions").is_none());
        let none =
            table_with(r, &[obj], json!({}), TableOptions { include: IncludeObject::None, no_headers: false }, now());
        assert!(none["rows"][0].get("object").is_none());
    }

    #[test]
    fn include_object_parses_like_kube() {
        assert_eq!(IncludeObject::parse(None), Ok(IncludeObject::Metadata));
        assert_eq!(IncludeObject::parse(Some("Object")), Ok(IncludeObject::Object));
        assert_eq!(IncludeObject::parse(Some("None")), Ok(IncludeObject::None));
        assert!(IncludeObject::parse(Some("everything")).is_err());
    }

    #[test]
    fn undecodable_objects_still_get_a_row() {
        // spec.ports must be a list: the printer cannot decode this, the row still fits.
        let obj = json!({"metadata": {"name": "odd"}, "spec": {"ports": "80"}});
        let c = cells("", "services", obj);
        assert_eq!(c.len(), columns("", "services").len());
        assert_eq!(c[0], "odd");
    }

    #[test]
    fn name_and_age_columns_are_documented_from_object_meta() {
        let cols = column_definitions(res("", "services"));
        assert!(cols[0]["description"]
            .as_str()
            .is_some_and(|d| d.starts_with("Name must be unique within a namespace")));
        let age = cols.iter().find(|c| c["name"] == "Age").expect("age");
        assert!(age["description"].as_str().is_some_and(|d| d.contains("CreationTimestamp")));
    }

    #[test]
    fn scale_subresource_table() {
        let s = json!({"metadata": {"name": "web", "creationTimestamp": ago(90)}, "spec": {"replicas": 3}, "status": {"replicas": 2}});
        let t = scale_table(&s, TableOptions::default(), now());
        assert_eq!(t["rows"][0]["cells"], json!(["web", 3, 2, "90s"]));
        assert_eq!(t["columnDefinitions"][0]["format"], "");
    }
}
