//! The schema-driven decoder: one protobuf message → the JSON object Kubernetes' JSON codec would give.
//!
//! Proto2 as go-to-protobuf writes it: a non-pointer Go field is always on the wire, so a zero scalar of
//! such a field ([`Card::Opt`]) is left out of the JSON (decoding it or its absence gives the same Go
//! object); a pointer field ([`Card::Ptr`]) is only on the wire when set, so its zero value is kept
//! (`replicas: 0`). Empty repeated fields and maps never reach the wire.

use base64::Engine;
use serde_json::{Map, Value};

use super::schema::MESSAGES;
use super::wire::{Reader, FIXED64, LEN, VARINT};
use super::ProtobufError;

/// How deep messages may nest (the schema's own depth is far below this).
const MAX_DEPTH: usize = 64;

/// What a field holds.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Str,
    Bool,
    I32,
    I64,
    F64,
    /// bytes, base64 in JSON.
    Bytes,
    /// Another message, by full protobuf name.
    Msg(&'static str),
    /// meta/v1 Time (seconds, nanos) → RFC 3339 with second precision.
    Time,
    /// meta/v1 MicroTime → RFC 3339 with microseconds.
    MicroTime,
    /// intstr.IntOrString (type, intVal, strVal) → a number or a string.
    IntOrString,
    /// resource.Quantity (string) → the string.
    Quantity,
    /// A message whose field 1 holds JSON bytes (FieldsV1, RawExtension) → that JSON.
    RawJson,
}

/// How many values a field holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Card {
    /// A non-pointer Go field: a zero value means "unset".
    Opt,
    /// A pointer Go field: a present zero value is meaningful.
    Ptr,
    Repeated,
    /// `map<string, Kind>`.
    Map,
    /// An embedded Go struct without a JSON name: its fields appear in the parent's JSON object.
    Inline,
}

/// One field of a message.
#[derive(Debug)]
pub struct Field {
    pub number: u32,
    pub json: &'static str,
    pub kind: Kind,
    pub card: Card,
}

/// Builds a [`Field`] (keeps the generated table short).
pub const fn f(number: u32, json: &'static str, kind: Kind, card: Card) -> Field {
    Field { number, json, kind, card }
}

/// One message of the schema.
#[derive(Debug)]
pub struct Message {
    pub name: &'static str,
    pub fields: &'static [Field],
}

/// The message with this full protobuf name (e.g. `k8s.io.api.core.v1.Pod`).
pub fn find(name: &str) -> Option<&'static Message> {
    MESSAGES.binary_search_by(|m| m.name.cmp(name)).ok().map(|i| &MESSAGES[i])
}

/// Decodes one encoded message into a JSON object.
pub fn message(msg: &'static Message, buf: &[u8], depth: usize) -> Result<Map<String, Value>, ProtobufError> {
    if depth > MAX_DEPTH {
        return Err(ProtobufError::TooDeep { message: msg.name.to_string() });
    }
    let mut out = Map::new();
    let mut r = Reader::new(buf, msg.name);
    while !r.is_empty() {
        let (number, wire) = r.key()?;
        let field = msg
            .fields
            .iter()
            .find(|f| f.number == number)
            .ok_or_else(|| ProtobufError::UnknownField { message: msg.name.to_string(), field: number })?;
        match field.card {
            Card::Map => {
                expect_wire(msg, field, wire, LEN)?;
                let (k, v) = map_entry(msg, field, r.len_delimited()?, depth)?;
                let m = out.entry(field.json).or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(m) = m {
                    m.insert(k, v);
                }
            }
            Card::Repeated => {
                let values = repeated(msg, field, wire, &mut r, depth)?;
                let a = out.entry(field.json).or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(a) = a {
                    a.extend(values);
                }
            }
            Card::Inline => match value(msg, field, wire, &mut r, depth)? {
                Value::Object(inner) => out.extend(inner),
                _ => return Err(ProtobufError::NoSchema { message: format!("{} field {}", msg.name, field.number) }),
            },
            Card::Opt | Card::Ptr => {
                let v = value(msg, field, wire, &mut r, depth)?;
                if field.card == Card::Ptr || !is_zero(field.kind, &v) {
                    out.insert(field.json.to_string(), v);
                } else {
                    out.remove(field.json);
                }
            }
        }
    }
    Ok(out)
}

fn expect_wire(msg: &Message, field: &Field, found: u8, expected: u8) -> Result<(), ProtobufError> {
    if found == expected {
        Ok(())
    } else {
        Err(ProtobufError::WireType { message: msg.name.to_string(), field: field.number, found, expected })
    }
}

fn wire_of(kind: Kind) -> u8 {
    match kind {
        Kind::Bool | Kind::I32 | Kind::I64 => VARINT,
        Kind::F64 => FIXED64,
        _ => LEN,
    }
}

/// The values of one occurrence of a repeated field (several when scalars are packed).
fn repeated(
    msg: &'static Message,
    field: &Field,
    wire: u8,
    r: &mut Reader<'_>,
    depth: usize,
) -> Result<Vec<Value>, ProtobufError> {
    let scalar_wire = wire_of(field.kind);
    if wire == LEN && scalar_wire != LEN {
        let mut packed = Reader::new(r.len_delimited()?, msg.name);
        let mut out = Vec::new();
        while !packed.is_empty() {
            out.push(value(msg, field, scalar_wire, &mut packed, depth)?);
        }
        return Ok(out);
    }
    Ok(vec![value(msg, field, wire, r, depth)?])
}

/// One value of a field, read from `r`.
fn value(
    msg: &'static Message,
    field: &Field,
    wire: u8,
    r: &mut Reader<'_>,
    depth: usize,
) -> Result<Value, ProtobufError> {
    expect_wire(msg, field, wire, wire_of(field.kind))?;
    Ok(match field.kind {
        Kind::Bool => Value::Bool(r.varint()? != 0),
        // int32 is sign-extended to 64 bits on the wire; truncation gives the value back.
        Kind::I32 => Value::from(r.varint()? as i64 as i32),
        Kind::I64 => Value::from(r.varint()? as i64),
        Kind::F64 => {
            let x = f64::from_bits(r.fixed64()?);
            serde_json::Number::from_f64(x).map(Value::Number).ok_or_else(|| ProtobufError::Malformed {
                message: msg.name.to_string(),
                what: format!("field {} is not a finite number", field.number),
            })?
        }
        Kind::Str => Value::String(utf8(msg, field, r.len_delimited()?)?),
        Kind::Bytes => Value::String(base64::engine::general_purpose::STANDARD.encode(r.len_delimited()?)),
        Kind::Msg(name) => {
            let sub = find(name).ok_or_else(|| ProtobufError::NoSchema { message: name.to_string() })?;
            Value::Object(message(sub, r.len_delimited()?, depth + 1)?)
        }
        Kind::Time => time(msg, field, r.len_delimited()?, false)?,
        Kind::MicroTime => time(msg, field, r.len_delimited()?, true)?,
        Kind::IntOrString => int_or_string(msg, field, r.len_delimited()?)?,
        Kind::Quantity => quantity(msg, field, r.len_delimited()?)?,
        Kind::RawJson => raw_json(msg, field, r.len_delimited()?)?,
    })
}

/// Whether a decoded value is its kind's zero (left out for non-pointer fields).
fn is_zero(kind: Kind, v: &Value) -> bool {
    match (kind, v) {
        (Kind::Msg(_), _) => false,
        (_, Value::Null) => true,
        (_, Value::String(s)) => s.is_empty(),
        (_, Value::Bool(b)) => !b,
        (_, Value::Number(n)) => n.as_f64() == Some(0.0),
        _ => false,
    }
}

fn utf8(msg: &Message, field: &Field, b: &[u8]) -> Result<String, ProtobufError> {
    String::from_utf8(b.to_vec())
        .map_err(|_| ProtobufError::Utf8 { message: msg.name.to_string(), field: field.number })
}

/// A `map<string, V>` entry: key is field 1, value field 2.
fn map_entry(msg: &'static Message, field: &Field, b: &[u8], depth: usize) -> Result<(String, Value), ProtobufError> {
    let mut r = Reader::new(b, msg.name);
    let mut key = String::new();
    let mut val = None;
    while !r.is_empty() {
        match r.key()? {
            (1, wire) => {
                expect_wire(msg, field, wire, LEN)?;
                key = utf8(msg, field, r.len_delimited()?)?;
            }
            (2, wire) => val = Some(value(msg, field, wire, &mut r, depth)?),
            (n, _) => {
                return Err(ProtobufError::UnknownField {
                    message: format!("{} map entry of field {}", msg.name, field.number),
                    field: n,
                })
            }
        }
    }
    let val = match (val, field.kind) {
        (Some(v), _) => v,
        (None, Kind::Msg(_)) => Value::Object(Map::new()),
        (None, Kind::Quantity) => Value::String("0".into()),
        (None, Kind::Str | Kind::Bytes) => Value::String(String::new()),
        (None, _) => Value::Null,
    };
    Ok((key, val))
}

/// One field of a small fixed message: (wire type, varint value, bytes).
type SmallField = Option<(u8, u64, Vec<u8>)>;

/// Reads the fields of a small fixed message (numbers 1..=3) without a schema entry.
fn small_fields(msg: &Message, field: &Field, b: &[u8]) -> Result<[SmallField; 3], ProtobufError> {
    let mut out: [SmallField; 3] = [None, None, None];
    let mut r = Reader::new(b, msg.name);
    while !r.is_empty() {
        let (n, wire) = r.key()?;
        let slot = out.get_mut((n as usize).wrapping_sub(1)).ok_or_else(|| ProtobufError::UnknownField {
            message: format!("{} field {} ({:?})", msg.name, field.number, field.kind),
            field: n,
        })?;
        *slot = Some(match wire {
            VARINT => (wire, r.varint()?, Vec::new()),
            LEN => (wire, 0, r.len_delimited()?.to_vec()),
            found => {
                return Err(ProtobufError::WireType {
                    message: msg.name.to_string(),
                    field: field.number,
                    found,
                    expected: LEN,
                })
            }
        });
    }
    Ok(out)
}

fn varint_of(msg: &Message, field: &Field, f: &SmallField) -> Result<u64, ProtobufError> {
    match f {
        None => Ok(0),
        Some((VARINT, v, _)) => Ok(*v),
        Some((w, _, _)) => Err(ProtobufError::WireType {
            message: msg.name.to_string(),
            field: field.number,
            found: *w,
            expected: VARINT,
        }),
    }
}

fn string_of(msg: &Message, field: &Field, f: &SmallField) -> Result<String, ProtobufError> {
    match f {
        None => Ok(String::new()),
        Some((LEN, _, b)) => utf8(msg, field, b),
        Some((w, _, _)) => Err(ProtobufError::WireType {
            message: msg.name.to_string(),
            field: field.number,
            found: *w,
            expected: LEN,
        }),
    }
}

fn time(msg: &Message, field: &Field, b: &[u8], micro: bool) -> Result<Value, ProtobufError> {
    let [s, n, _] = small_fields(msg, field, b)?;
    let seconds = varint_of(msg, field, &s)? as i64;
    let nanos = varint_of(msg, field, &n)? as i64 as i32;
    if seconds == 0 && nanos == 0 {
        return Ok(Value::Null);
    }
    let bad = || ProtobufError::Malformed {
        message: msg.name.to_string(),
        what: format!("field {} is not a valid time ({seconds}s, {nanos}ns)", field.number),
    };
    let ts = jiff::Timestamp::new(seconds, if micro { nanos } else { 0 }).map_err(|_| bad())?;
    let text = if micro {
        format!("{}.{:06}Z", ts.strftime("%Y-%m-%dT%H:%M:%S"), ts.subsec_microsecond())
    } else {
        ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    };
    Ok(Value::String(text))
}

fn int_or_string(msg: &Message, field: &Field, b: &[u8]) -> Result<Value, ProtobufError> {
    let [t, i, s] = small_fields(msg, field, b)?;
    Ok(match varint_of(msg, field, &t)? {
        0 => Value::from(varint_of(msg, field, &i)? as i64 as i32),
        1 => Value::String(string_of(msg, field, &s)?),
        other => {
            return Err(ProtobufError::Malformed {
                message: msg.name.to_string(),
                what: format!("field {} has IntOrString type {other}", field.number),
            })
        }
    })
}

fn quantity(msg: &Message, field: &Field, b: &[u8]) -> Result<Value, ProtobufError> {
    let [s, _, _] = small_fields(msg, field, b)?;
    Ok(Value::String(string_of(msg, field, &s)?))
}

fn raw_json(msg: &Message, field: &Field, b: &[u8]) -> Result<Value, ProtobufError> {
    let [raw, _, _] = small_fields(msg, field, b)?;
    let bytes = match &raw {
        None => return Ok(Value::Null),
        Some((LEN, _, b)) => b.clone(),
        Some((w, _, _)) => {
            return Err(ProtobufError::WireType {
                message: msg.name.to_string(),
                field: field.number,
                found: *w,
                expected: LEN,
            })
        }
    };
    serde_json::from_slice(&bytes).map_err(|e| ProtobufError::Malformed {
        message: msg.name.to_string(),
        what: format!("field {} does not hold JSON: {e}", field.number),
    })
}
